// RUN: kiln-opt %s --split-input-file --verify-diagnostics --kiln-gpu-merge-kernel-modules | FileCheck %s

// kiln-gpu-merge-kernel-modules moves the kernels of the gpu.modules that
// gpu-kernel-outlining makes (one gpu.func each, named after the function
// it came from, so the names repeat) into one gpu.module, @kiln_kernels,
// each kernel renamed after the module it came from, and points every
// gpu.launch_func at its kernel's new symbol. It changes nothing when
// there are fewer than two such modules, or when any gpu.module is not of
// that shape; it is an error when a symbol is already named kiln_kernels,
// or when a launch (in any nested module too) names a kernel of no merged
// module. (kiln-cuda-kernel-pipeline.mlir checks the merged module
// at the end of the whole pipeline; this test checks the pass alone.) The
// test holds it to the merged module's kernels (names, signatures, bodies,
// attributes), the launches' new symbols with their operands unchanged,
// the old modules gone, and to the cases it leaves alone or refuses.

// Three kernels from two functions, two of them named @f_kernel.
// CHECK-LABEL: module attributes {gpu.container_module}
// CHECK: func.func @f(%[[X:[^:]*]]: memref<256xf32>, %[[N:[^:]*]]: index)
// CHECK: gpu.launch_func @kiln_kernels::@f_kernel blocks in (%[[N]], %c1, %c1) threads in (%c256, %c1, %c1) args(%[[X]] : memref<256xf32>)
// CHECK-NEXT: gpu.launch_func @kiln_kernels::@f_kernel_0 blocks in (%c1, %c1, %c1) threads in (%c256, %c1, %c1) args(%[[X]] : memref<256xf32>, %[[N]] : index)
// CHECK-NEXT: return
// CHECK: func.func @g(%[[Y:[^:]*]]: memref<256xf32>)
// CHECK: gpu.launch_func @kiln_kernels::@g_kernel blocks in {{.*}} args(%[[Y]] : memref<256xf32>)
// CHECK-NEXT: gpu.launch_func @kiln_kernels::@f_kernel blocks in {{.*}} args(%[[Y]] : memref<256xf32>)
// CHECK-NOT: gpu.module @f_kernel
// CHECK: gpu.module @kiln_kernels {
// CHECK-NEXT: gpu.func @f_kernel(%[[A:[^:]*]]: memref<256xf32>) kernel attributes {known_block_size = array<i32: 256, 1, 1>} {
// CHECK-NEXT: %[[T:.*]] = gpu.thread_id x
// CHECK-NEXT: %[[V:.*]] = memref.load %[[A]][%[[T]]] : memref<256xf32>
// CHECK-NEXT: %[[D:.*]] = arith.addf %[[V]], %[[V]] : f32
// CHECK-NEXT: memref.store %[[D]], %[[A]][%[[T]]] : memref<256xf32>
// CHECK-NEXT: gpu.return
// CHECK-NEXT: }
// CHECK-NEXT: gpu.func @f_kernel_0(%{{[^:]*}}: memref<256xf32>, %{{[^:]*}}: index) kernel {
// CHECK-NEXT: arith.constant 0 : index
// CHECK-NEXT: arith.constant 0.000000e+00 : f32
// CHECK-NEXT: memref.store
// CHECK-NEXT: gpu.return
// CHECK-NEXT: }
// CHECK-NEXT: gpu.func @g_kernel(%{{[^:]*}}: memref<256xf32>) kernel {
// CHECK-NEXT: gpu.return
// CHECK-NEXT: }
// CHECK-NEXT: }
// CHECK-NOT: gpu.module
module attributes {gpu.container_module} {
  func.func @f(%x: memref<256xf32>, %n: index) {
    %c1 = arith.constant 1 : index
    %c256 = arith.constant 256 : index
    gpu.launch_func @f_kernel::@f_kernel blocks in (%n, %c1, %c1) threads in (%c256, %c1, %c1) args(%x : memref<256xf32>)
    gpu.launch_func @f_kernel_0::@f_kernel blocks in (%c1, %c1, %c1) threads in (%c256, %c1, %c1) args(%x : memref<256xf32>, %n : index)
    return
  }
  func.func @g(%y: memref<256xf32>) {
    %c1 = arith.constant 1 : index
    gpu.launch_func @g_kernel::@g_kernel blocks in (%c1, %c1, %c1) threads in (%c1, %c1, %c1) args(%y : memref<256xf32>)
    gpu.launch_func @f_kernel::@f_kernel blocks in (%c1, %c1, %c1) threads in (%c1, %c1, %c1) args(%y : memref<256xf32>)
    return
  }
  gpu.module @f_kernel {
    gpu.func @f_kernel(%x: memref<256xf32>) kernel attributes {known_block_size = array<i32: 256, 1, 1>} {
      %t = gpu.thread_id x
      %v = memref.load %x[%t] : memref<256xf32>
      %d = arith.addf %v, %v : f32
      memref.store %d, %x[%t] : memref<256xf32>
      gpu.return
    }
  }
  gpu.module @f_kernel_0 {
    gpu.func @f_kernel(%x: memref<256xf32>, %n: index) kernel {
      %c0 = arith.constant 0 : index
      %zero = arith.constant 0.0 : f32
      memref.store %zero, %x[%c0] : memref<256xf32>
      gpu.return
    }
  }
  gpu.module @g_kernel {
    gpu.func @g_kernel(%y: memref<256xf32>) kernel {
      gpu.return
    }
  }
}

// -----

// One kernel module: nothing to merge, it keeps its name.
// CHECK-LABEL: module attributes {gpu.container_module}
// CHECK: gpu.launch_func @only_kernel::@only_kernel
// CHECK: gpu.module @only_kernel {
// CHECK-NEXT: gpu.func @only_kernel(
// CHECK-NOT: kiln_kernels
module attributes {gpu.container_module} {
  func.func @only() {
    %c1 = arith.constant 1 : index
    gpu.launch_func @only_kernel::@only_kernel blocks in (%c1, %c1, %c1) threads in (%c1, %c1, %c1)
    return
  }
  gpu.module @only_kernel {
    gpu.func @only_kernel() kernel {
      gpu.return
    }
  }
}

// -----

// A gpu.module that outlining did not make (two kernels) leaves every
// module as it is, the outlined ones included.
// CHECK-LABEL: module attributes {gpu.container_module}
// CHECK: gpu.launch_func @a_kernel::@a_kernel
// CHECK-NEXT: gpu.launch_func @b_kernel::@b_kernel
// CHECK-NEXT: gpu.launch_func @library::@one
// CHECK: gpu.module @a_kernel {
// CHECK: gpu.module @b_kernel {
// CHECK: gpu.module @library {
// CHECK-NEXT: gpu.func @one() kernel
// CHECK: gpu.func @two() kernel
// CHECK-NOT: kiln_kernels
module attributes {gpu.container_module} {
  func.func @mixed() {
    %c1 = arith.constant 1 : index
    gpu.launch_func @a_kernel::@a_kernel blocks in (%c1, %c1, %c1) threads in (%c1, %c1, %c1)
    gpu.launch_func @b_kernel::@b_kernel blocks in (%c1, %c1, %c1) threads in (%c1, %c1, %c1)
    gpu.launch_func @library::@one blocks in (%c1, %c1, %c1) threads in (%c1, %c1, %c1)
    return
  }
  gpu.module @a_kernel {
    gpu.func @a_kernel() kernel {
      gpu.return
    }
  }
  gpu.module @b_kernel {
    gpu.func @b_kernel() kernel {
      gpu.return
    }
  }
  gpu.module @library {
    gpu.func @one() kernel {
      gpu.return
    }
    gpu.func @two() kernel {
      gpu.return
    }
  }
}

// -----

// The merged module's name is taken.
// expected-error @+1 {{a symbol is already named 'kiln_kernels'}}
module attributes {gpu.container_module} {
  func.func private @kiln_kernels()
  func.func @taken() {
    %c1 = arith.constant 1 : index
    gpu.launch_func @a_kernel::@a_kernel blocks in (%c1, %c1, %c1) threads in (%c1, %c1, %c1)
    gpu.launch_func @b_kernel::@b_kernel blocks in (%c1, %c1, %c1) threads in (%c1, %c1, %c1)
    return
  }
  gpu.module @a_kernel {
    gpu.func @a_kernel() kernel {
      gpu.return
    }
  }
  gpu.module @b_kernel {
    gpu.func @b_kernel() kernel {
      gpu.return
    }
  }
}

// -----

// Launches are looked for in nested modules too: one whose kernel is not
// among the merged modules (here, in its own nested module) is refused.
module attributes {gpu.container_module} {
  func.func @outer() {
    %c1 = arith.constant 1 : index
    gpu.launch_func @a_kernel::@a_kernel blocks in (%c1, %c1, %c1) threads in (%c1, %c1, %c1)
    gpu.launch_func @b_kernel::@b_kernel blocks in (%c1, %c1, %c1) threads in (%c1, %c1, %c1)
    return
  }
  gpu.module @a_kernel {
    gpu.func @a_kernel() kernel {
      gpu.return
    }
  }
  gpu.module @b_kernel {
    gpu.func @b_kernel() kernel {
      gpu.return
    }
  }
  module @inner attributes {gpu.container_module} {
    func.func @nested() {
      %c1 = arith.constant 1 : index
      // expected-error @+1 {{'gpu.launch_func' op launches a kernel of no outlined module}}
      gpu.launch_func @c_kernel::@c_kernel blocks in (%c1, %c1, %c1) threads in (%c1, %c1, %c1)
      return
    }
    gpu.module @c_kernel {
      gpu.func @c_kernel() kernel {
        gpu.return
      }
    }
  }
}
