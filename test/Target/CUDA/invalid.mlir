// RUN: kiln-opt %s --split-input-file --verify-diagnostics --kiln-gpu-device-memory

// Host code that would read device memory is refused: every access must
// be inside a kernel.
func.func @host_load(%x: memref<4xf32>) -> f32 {
  %c0 = arith.constant 0 : index
  // expected-error @+1 {{'memref.load' op would run on the host and touch device memory; the CUDA pipeline maps every access to a kernel}}
  %v = memref.load %x[%c0] : memref<4xf32>
  return %v : f32
}

// -----

func.func @host_copy(%x: memref<4xf32>, %y: memref<4xf32>) {
  // expected-error @+1 {{'memref.copy' op would run on the host and touch device memory}}
  memref.copy %x, %y : memref<4xf32> to memref<4xf32>
  return
}

// -----

// A shape buffer only the host reads stays in host memory.
func.func @shape_buffer(%x: memref<?xf32>, %n: index) -> memref<?x4xf32> {
  %c0 = arith.constant 0 : index
  %c4 = arith.constant 4 : index
  %shape = memref.alloc() : memref<2xindex>
  memref.store %n, %shape[%c0] : memref<2xindex>
  %c1 = arith.constant 1 : index
  memref.store %c4, %shape[%c1] : memref<2xindex>
  %r = memref.reshape %x(%shape) : (memref<?xf32>, memref<2xindex>) -> memref<?x4xf32>
  return %r : memref<?x4xf32>
}

