// RUN: kiln-opt %s --kiln-cost-report -o /dev/null | FileCheck %s
// RUN: kiln-opt %s '--kiln-cost-report=json=true' -o /dev/null | FileCheck %s --check-prefix=JSON
// RUN: kiln-opt %s '--kiln-cost-report=per-op=true function=small' -o /dev/null | FileCheck %s --check-prefix=PEROP
// RUN: kiln-opt %s '--kiln-cost-report=dynamic-dim-size=32 function=dyn' -o /dev/null | FileCheck %s --check-prefix=DYN
// RUN: kiln-opt %s '--kiln-cost-report=dynamic-dim-size=32 function=dyn json=true per-op=true' -o /dev/null | FileCheck %s --check-prefix=DYNJSON
// RUN: kiln-opt %s '--kiln-cost-report=function=small' | FileCheck %s --check-prefix=IR
// RUN: not kiln-opt %s '--kiln-cost-report=function=nope' -o /dev/null 2>&1 | FileCheck %s --check-prefix=ERR
// RUN: not kiln-opt %s '--kiln-cost-report=peak-gflops=0' -o /dev/null 2>&1 | FileCheck %s --check-prefix=ERR-OPTS
// RUN: kiln-opt %s '--kiln-cost-report=output-file=%t.report title=tiny-model' -o /dev/null | count 0
// RUN: FileCheck %s --check-prefix=FILE < %t.report
// RUN: not kiln-opt %s '--kiln-cost-report=output-file=%t.missing/dir/report' -o /dev/null 2>&1 | FileCheck %s --check-prefix=ERR-FILE

// output-file= writes the report there (stdout stays empty); title= names it.
// FILE: Kiln cost report - tiny-model
// FILE-NEXT: parameters  38,609,680 in 3 tensors
// ERR-FILE: error: kiln-cost-report: {{.*}}

// Defaults: 520 GFLOP/s, 60 GB/s, 65 W, 0.30 per kWh, 10^6 calls, `?` = 1.

// 50257·768 + 2304 + 1000·10 elements; the first two trainable; bytes
// 4·(50257·768 + 2304) + 2·10000 = 154,418,720.
kiln.parameter @"transformer.wte.weight" : tensor<50257x768xf32> init normal std = 2.000000e-02 trainable
kiln.parameter @"lm.bias" : tensor<2304xf32> init zeros trainable
kiln.parameter @"frozen" : tensor<1000x10xbf16> init ones

// CHECK:      Kiln cost report
// CHECK-NEXT:   parameters  38,609,680 in 3 tensors (38,599,680 trainable), 154.42 MB
// CHECK-NEXT:   roofline    520.00 GFLOP/s peak, 60.00 GB/s memory; dynamic dims taken as 1

// 2·128·2304·768 = 452,984,832 FLOPs; reads 4·(128·768 + 768·2304), writes
// 4·128·2304; intensity 452984832 / 8650752 = 52.36; compute bound, so
// 452984832 / 520e9 s = 871.125 us; 65 W gives 0.0566 J per call, 0.0157 kWh
// per million calls, 0.0047 at 0.30/kWh.
// CHECK-LABEL: function @mm
// CHECK:        kiln.matmul 1 452.98 MFLOP 7.47 MB 1.18 MB 52.36 871.125 us compute
// CHECK:        total 1 452.98 MFLOP 7.47 MB 1.18 MB 52.36 871.125 us compute
// CHECK-NEXT:   FLOPs per call 452,984,832
// CHECK-NEXT:   bytes per call 7,471,104 read, 1,179,648 written
// CHECK-NEXT:   arithmetic intensity 52.36 FLOP/byte
// CHECK-NEXT:   time per call 871.125 us (roofline estimate)
// CHECK-NEXT:   energy 0.057 J per call; 0.016 kWh for 1,000,000 calls at 65.00 W
// CHECK-NEXT:   money 0.0047 for 1,000,000 calls at 0.30/kWh
func.func @mm(%a: tensor<128x768xf32>, %b: tensor<768x2304xf32>) -> tensor<128x2304xf32> {
  %0 = kiln.matmul %a, %b : (tensor<128x768xf32>, tensor<768x2304xf32>) -> tensor<128x2304xf32>
  return %0 : tensor<128x2304xf32>
}

// 2·4·16·8 = 1024 for the matmul, 64 each for exp and add. Rows per kind are
// sorted by time, slowest first.
// CHECK-LABEL: function @small
// CHECK:        kiln.matmul 1 1.02 KFLOP 640.00 B 256.00 B 1.14 0.015 us memory
// CHECK-NEXT:   kiln.add 1 64.00 FLOP 512.00 B 256.00 B 0.08 0.013 us memory
// CHECK-NEXT:   kiln.exp 1 64.00 FLOP 256.00 B 256.00 B 0.12 0.009 us memory
// CHECK:        total 3 1.15 KFLOP 1.41 KB 768.00 B 0.53 0.036 us memory
// CHECK-NEXT:   FLOPs per call 1,152
// CHECK-NEXT:   bytes per call 1,408 read, 768 written

// Per op, in program order.
// PEROP:      Kiln cost report
// PEROP-NOT:  function @mm
// PEROP:      function @small
// PEROP:        kiln.matmul 1 1.02 KFLOP
// PEROP-NEXT:   kiln.exp 1 64.00 FLOP
// PEROP-NEXT:   kiln.add 1 64.00 FLOP
// PEROP:        total 3 1.15 KFLOP
// PEROP-NOT:  function @dyn
func.func @small(%a: tensor<4x8xf32>, %b: tensor<8x16xf32>) -> tensor<4x16xf32> {
  %0 = kiln.matmul %a, %b : (tensor<4x8xf32>, tensor<8x16xf32>) -> tensor<4x16xf32>
  %1 = kiln.exp %0 : tensor<4x16xf32>
  %2 = kiln.add %0, %1 : (tensor<4x16xf32>, tensor<4x16xf32>) -> tensor<4x16xf32>
  return %2 : tensor<4x16xf32>
}

// `?` = 1 by default: 2·1·1·64 = 128; with 32: 2·32·32·64 = 131,072.
// CHECK-LABEL: function @dyn
// CHECK:        FLOPs per call 128
// CHECK-NEXT:   bytes per call 512 read, 4 written

// DYN:        dynamic dims taken as 32
// DYN-NOT:    function @mm
// DYN:        function @dyn
// DYN:          FLOPs per call 131,072
// DYN-NEXT:     bytes per call 16,384 read, 4,096 written
// DYN-NEXT:     arithmetic intensity 6.40 FLOP/byte
func.func @dyn(%a: tensor<?x64xf32>, %b: tensor<64x?xf32>) -> tensor<?x?xf32> {
  %0 = kiln.matmul %a, %b : (tensor<?x64xf32>, tensor<64x?xf32>) -> tensor<?x?xf32>
  return %0 : tensor<?x?xf32>
}

// JSON (keys sorted).
// JSON:      "assumptions": {
// JSON-NEXT:   "bandwidth_gbs": 60,
// JSON-NEXT:   "calls": 1000000,
// JSON-NEXT:   "dynamic_dim_size": 1,
// JSON-NEXT:   "peak_gflops": 520,
// JSON-NEXT:   "price_per_kwh": 0.29
// JSON-NEXT:   "watts": 65
// JSON:      "functions": [
// JSON:        "by_kind": [
// JSON:            "flops": 452984832,
// JSON:            "op": "kiln.matmul",
// JSON:        "cost": 0.0047185
// JSON-NEXT:   "energy_j_per_call": 0.05662310
// JSON-NEXT:   "energy_kwh": 0.0157286
// JSON-NEXT:   "name": "mm",
// JSON-NEXT:   "total": {
// JSON-NEXT:     "bytes_read": 7471104,
// JSON-NEXT:     "bytes_written": 1179648,
// JSON-NEXT:     "compute_bound_fraction": 1,
// JSON-NEXT:     "count": 1,
// JSON-NEXT:     "flops": 452984832,
// JSON-NEXT:     "intensity": 52.3636
// JSON-NEXT:     "op": "total",
// JSON-NEXT:     "time_s": 0.000871124
// JSON:        "name": "small",
// JSON:          "count": 3,
// JSON-NEXT:     "flops": 1152,
// JSON:        "name": "dyn",
// JSON:      "parameters": {
// JSON-NEXT:   "bytes": 154418720,
// JSON-NEXT:   "count": 38609680,
// JSON-NEXT:   "quantized": 0,
// JSON-NEXT:   "tensors": 3,
// JSON-NEXT:   "trainable": 38599680
// JSON-NOT:  "ops"

// DYNJSON:      "dynamic_dim_size": 32,
// DYNJSON:      "functions": [
// DYNJSON-NOT:  "name": "mm"
// DYNJSON:      "name": "dyn",
// DYNJSON-NEXT: "ops": [
// DYNJSON-NEXT:   {
// DYNJSON-NEXT:     "bytes_read": 16384,
// DYNJSON-NEXT:     "bytes_written": 4096,
// DYNJSON-NEXT:     "compute_bound_fraction": 0,
// DYNJSON-NEXT:     "count": 1,
// DYNJSON-NEXT:     "flops": 131072,
// DYNJSON-NEXT:     "intensity": 6.4
// DYNJSON-NEXT:     "op": "kiln.matmul",

// The report goes to stdout before the IR, which is unchanged.
// IR:       function @small
// IR:       module {
// IR:         kiln.parameter @transformer.wte.weight
// IR:         func.func @mm(
// IR-NEXT:      kiln.matmul

// ERR: error: kiln-cost-report: no function named 'nope'
// ERR-OPTS: error: kiln-cost-report: peak-gflops and bandwidth-gbs must be positive and dynamic-dim-size non-negative
