// RUN: kiln-opt %s --split-input-file --verify-diagnostics --kiln-gpu-device-memory | FileCheck %s

// kiln-gpu-device-memory makes every pointer the host code holds a device
// pointer: host memref.alloc and memref.dealloc become gpu.alloc and
// gpu.dealloc in their async form (each on a stream of its own,
// gpu.wait async, and waited for right after), each memref.get_global
// gets a device copy (gpu.alloc, gpu.memcpy from the global) that replaces
// its uses and is freed before every return, and any other host access to
// memory (memref.load, store, copy, alloca, linalg ops) is an error: the
// CUDA pipeline maps every access to a kernel. Code inside gpu.launch is
// device code and stays as it is, and so does the small host buffer that
// holds the shape of a dynamic memref.reshape (only the host reads it).
// The test holds it to the ops it makes and their operands (sizes,
// tokens, the replaced uses), to what it leaves alone, and to its errors.

// A result buffer of dynamic size and a temporary: device allocations,
// each waited for; the temporary's dealloc becomes a waited-for
// gpu.dealloc; the kernel body uses the device buffers and is otherwise
// unchanged (its alloca and accesses are device code).
// CHECK-LABEL: func.func @buffers(
// CHECK-SAME: %[[X:[^:]*]]: memref<?x4xf32>, %[[N:[^:]*]]: index) -> memref<?x4xf32>
// CHECK-NOT: memref.alloc(
// CHECK: %[[S0:.*]] = gpu.wait async
// CHECK-NEXT: %[[OUT:.*]], %[[T0:.*]] = gpu.alloc async [%[[S0]]] (%[[N]]) : memref<?x4xf32>
// CHECK-NEXT: gpu.wait [%[[T0]]]
// CHECK-NEXT: %[[S1:.*]] = gpu.wait async
// CHECK-NEXT: %[[TMP:.*]], %[[T1:.*]] = gpu.alloc async [%[[S1]]] () : memref<4xf32>
// CHECK-NEXT: gpu.wait [%[[T1]]]
// CHECK-NEXT: gpu.launch blocks(%[[BX:[^,]*]], %{{.*}}) in {{.*}} threads(%[[TX:[^,]*]], %{{.*}}) in
// CHECK-NEXT: memref.alloca() : memref<2xf32>
// CHECK-NEXT: %[[V:.*]] = memref.load %[[X]][%[[BX]], %[[TX]]] : memref<?x4xf32>
// CHECK-NEXT: memref.store %[[V]], %[[TMP]][%[[TX]]] : memref<4xf32>
// CHECK-NEXT: %[[U:.*]] = memref.load %[[TMP]][%[[TX]]] : memref<4xf32>
// CHECK-NEXT: memref.store %[[U]], %[[OUT]][%[[BX]], %[[TX]]] : memref<?x4xf32>
// CHECK-NEXT: gpu.terminator
// CHECK-NEXT: }
// CHECK-NEXT: %[[S2:.*]] = gpu.wait async
// CHECK-NEXT: %[[T2:.*]] = gpu.dealloc async [%[[S2]]] %[[TMP]] : memref<4xf32>
// CHECK-NEXT: gpu.wait [%[[T2]]]
// CHECK-NEXT: return %[[OUT]] : memref<?x4xf32>
func.func @buffers(%x: memref<?x4xf32>, %n: index) -> memref<?x4xf32> {
  %c1 = arith.constant 1 : index
  %c4 = arith.constant 4 : index
  %out = memref.alloc(%n) {alignment = 64 : i64} : memref<?x4xf32>
  %tmp = memref.alloc() : memref<4xf32>
  gpu.launch blocks(%bx, %by, %bz) in (%gx = %n, %gy = %c1, %gz = %c1) threads(%tx, %ty, %tz) in (%sx = %c4, %sy = %c1, %sz = %c1) {
    %scratch = memref.alloca() : memref<2xf32>
    %v = memref.load %x[%bx, %tx] : memref<?x4xf32>
    memref.store %v, %tmp[%tx] : memref<4xf32>
    %u = memref.load %tmp[%tx] : memref<4xf32>
    memref.store %u, %out[%bx, %tx] : memref<?x4xf32>
    gpu.terminator
  }
  memref.dealloc %tmp : memref<4xf32>
  return %out : memref<?x4xf32>
}

// A constant gets a device copy right after its get_global; the kernel
// reads the copy, which is freed before each of the two returns.
// CHECK-LABEL: func.func @constant(
// CHECK: %[[G:.*]] = memref.get_global @weights : memref<4xf32>
// CHECK-NEXT: %[[S0:.*]] = gpu.wait async
// CHECK-NEXT: %[[W:.*]], %[[T0:.*]] = gpu.alloc async [%[[S0]]] () : memref<4xf32>
// CHECK-NEXT: %[[T1:.*]] = gpu.memcpy async [%[[T0]]] %[[W]], %[[G]] : memref<4xf32>, memref<4xf32>
// CHECK-NEXT: gpu.wait [%[[T1]]]
// CHECK-NEXT: gpu.launch
// CHECK-NEXT: memref.load %[[W]][%{{.*}}] : memref<4xf32>
// CHECK-NOT: %[[G]]
// CHECK: cf.cond_br
// CHECK: ^bb1:
// CHECK-NEXT: %[[S1:.*]] = gpu.wait async
// CHECK-NEXT: %[[T2:.*]] = gpu.dealloc async [%[[S1]]] %[[W]] : memref<4xf32>
// CHECK-NEXT: gpu.wait [%[[T2]]]
// CHECK-NEXT: return
// CHECK: ^bb2:
// CHECK-NEXT: %[[S2:.*]] = gpu.wait async
// CHECK-NEXT: %[[T3:.*]] = gpu.dealloc async [%[[S2]]] %[[W]] : memref<4xf32>
// CHECK-NEXT: gpu.wait [%[[T3]]]
// CHECK-NEXT: return
memref.global "private" constant @weights : memref<4xf32> = dense<[1.0, 2.0, 3.0, 4.0]>
func.func @constant(%y: memref<4xf32>, %flag: i1) {
  %c1 = arith.constant 1 : index
  %c4 = arith.constant 4 : index
  %w = memref.get_global @weights : memref<4xf32>
  gpu.launch blocks(%bx, %by, %bz) in (%gx = %c1, %gy = %c1, %gz = %c1) threads(%tx, %ty, %tz) in (%sx = %c4, %sy = %c1, %sz = %c1) {
    %v = memref.load %w[%tx] : memref<4xf32>
    memref.store %v, %y[%tx] : memref<4xf32>
    gpu.terminator
  }
  cf.cond_br %flag, ^early, ^late
^early:
  return
^late:
  return
}

// Host ops that only compute with memref descriptors (views, sizes) and
// calls stay as they are.
// CHECK-LABEL: func.func @descriptors(
// CHECK-NEXT: arith.constant
// CHECK-NEXT: memref.dim
// CHECK-NEXT: memref.subview
// CHECK-NEXT: memref.collapse_shape
// CHECK-NEXT: memref.cast
// CHECK-NEXT: call @consume(
// CHECK-NEXT: return
func.func private @consume(memref<?xf32, strided<[1], offset: ?>>, index)
func.func @descriptors(%x: memref<8x4xf32>) {
  %c0 = arith.constant 0 : index
  %d = memref.dim %x, %c0 : memref<8x4xf32>
  %v = memref.subview %x[2, 0] [2, 4] [1, 1] : memref<8x4xf32> to memref<2x4xf32, strided<[4, 1], offset: 8>>
  %f = memref.collapse_shape %v [[0, 1]] : memref<2x4xf32, strided<[4, 1], offset: 8>> into memref<8xf32, strided<[1], offset: 8>>
  %c = memref.cast %f : memref<8xf32, strided<[1], offset: 8>> to memref<?xf32, strided<[1], offset: ?>>
  call @consume(%c, %d) : (memref<?xf32, strided<[1], offset: ?>>, index) -> ()
  return
}

// -----

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

func.func @host_store(%x: memref<4xf32>, %v: f32) {
  %c0 = arith.constant 0 : index
  // expected-error @+1 {{'memref.store' op would run on the host and touch device memory}}
  memref.store %v, %x[%c0] : memref<4xf32>
  return
}

// -----

func.func @host_linalg(%x: memref<4xf32>) {
  %zero = arith.constant 0.0 : f32
  // expected-error @+1 {{'linalg.fill' op would run on the host and touch device memory}}
  linalg.fill ins(%zero : f32) outs(%x : memref<4xf32>)
  return
}

// -----

// A host alloca that a kernel uses is not a shape buffer.
func.func @host_alloca(%n: index) {
  %c1 = arith.constant 1 : index
  // expected-error @+1 {{'memref.alloca' op would run on the host and touch device memory}}
  %a = memref.alloca() : memref<4xf32>
  gpu.launch blocks(%bx, %by, %bz) in (%gx = %c1, %gy = %c1, %gz = %c1) threads(%tx, %ty, %tz) in (%sx = %c1, %sy = %c1, %sz = %c1) {
    %zero = arith.constant 0.0 : f32
    memref.store %zero, %a[%tx] : memref<4xf32>
    gpu.terminator
  }
  return
}

// -----

// A shape buffer only the host reads stays in host memory.
// CHECK-LABEL: func.func @shape_buffer(
// CHECK-SAME: %[[X:[^:]*]]: memref<?xf32>, %[[N:[^:]*]]: index)
// CHECK-NOT: gpu.
// CHECK: %[[SHAPE:.*]] = memref.alloc() : memref<2xindex>
// CHECK: memref.store %[[N]], %[[SHAPE]][%{{.*}}] : memref<2xindex>
// CHECK: memref.store %{{.*}}, %[[SHAPE]][%{{.*}}] : memref<2xindex>
// CHECK: memref.reshape %[[X]](%[[SHAPE]])
// CHECK-NOT: gpu.
// CHECK: return
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
