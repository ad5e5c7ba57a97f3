/*===- ArtifactAbi.h - The artifact contract, as both sides spell it -*- C -*-===*\
|*                                                                            *|
|* An artifact (docs/artifacts.md) is a directory that kiln-compile writes    *|
|* and libkiln_runtime reads: manifest.json, module.so, weights.safetensors.  *|
|* Every name and number the two sides must agree on is defined here, once,   *|
|* and included by the compiler (lib/Compiler, lib/Target), the runtime       *|
|* (lib/Runtime), the training driver (lib/Train) and the C test modules.     *|
|* The GPU services a CUDA module.so calls are the other half of its ABI      *|
|* (GpuApi.h).                                                                *|
|*                                                                            *|
|* Changing the meaning of anything here changes the ABI: bump                *|
|* KILN_MODULE_ABI_VERSION (module.so) or KILN_ARTIFACT_FORMAT_VERSION        *|
|* (manifest.json) with it, so that old artifacts are refused, not misread.   *|
|*                                                                            *|
\*===----------------------------------------------------------------------===*/

#ifndef KILN_RUNTIME_ARTIFACTABI_H
#define KILN_RUNTIME_ARTIFACTABI_H

#include <stdint.h>

/*===--------------------------------------------------------------------===*
 * The directory and the manifest
 *===--------------------------------------------------------------------===*/

#define KILN_MANIFEST_FILE "manifest.json"
#define KILN_MODULE_FILE "module.so"
#define KILN_WEIGHTS_FILE "weights.safetensors"

/* manifest.json's "format" and "format_version". */
#define KILN_ARTIFACT_FORMAT "kiln-artifact"
#define KILN_ARTIFACT_FORMAT_VERSION 1

/*===--------------------------------------------------------------------===*
 * module.so's exports
 *===--------------------------------------------------------------------===*/

/* int kiln_abi_version(void): the version of everything in this section. */
#define KILN_MODULE_ABI_VERSION 2
#define KILN_ABI_VERSION_SYMBOL "kiln_abi_version"

/* const char kiln_module_signature[]: the manifest's signature
 * (kiln::runtime::moduleSignature), NUL-terminated; the runtime refuses a
 * module whose signature differs from its manifest's. */
#define KILN_MODULE_SIGNATURE_SYMBOL "kiln_module_signature"

/* void kiln_entry_<name>(void **args), one per entry point. args[0] points at
 * the results (one memref descriptor per output, laid out one after another,
 * filled by the callee); args[1..] each point at one descriptor: the inputs
 * in manifest order, then the entry point's parameters in its "parameters"
 * order. */
#define KILN_ENTRY_PREFIX "kiln_entry_"

/* The entry points the driver looks for by name. */
#define KILN_ENTRY_FORWARD "forward"
/* kiln-compile --mode calibrate: input_ids -> <weight>.input_absmax. */
#define KILN_ENTRY_CALIBRATE "calibrate"
#define KILN_ENTRY_TRAIN_STEP "train_step"
#define KILN_ENTRY_EVAL_STEP "eval_step"
/* Training artifacts of the preference and policy objectives:
 * (inputs, targets) -> the log-probability of each target token. */
#define KILN_ENTRY_TOKEN_LOGPROBS "token_logprobs"

/*===--------------------------------------------------------------------===*
 * The CPU a cpu artifact needs
 *===--------------------------------------------------------------------===*/

/* target_options.cpu_features of a cpu artifact for x86-64: those of the
 * x86 features below (LLVM's names) that its --cpu has, so its code may use,
 * comma-separated. The runtime refuses to load the artifact on a machine
 * that lacks one (module.so would stop at the first such instruction with
 * SIGILL). A name the runtime does not know is refused too. */
#define KILN_CPU_FEATURES_OPTION "cpu_features"
#define KILN_CHECKED_X86_FEATURES                                              \
  "sse4.2,popcnt,lzcnt,movbe,sse4a,avx,fma,f16c,bmi,bmi2,avx2,fma4,xop,tbm,"   \
  "avx512f,avx512dq,avx512cd,avx512bw,avx512vl,avx512ifma,avx512vbmi,"         \
  "avx512vbmi2,avx512vnni,avx512bitalg,avx512vpopcntdq,avx512bf16,"            \
  "avx512fp16,avxvnni,gfni,vaes,vpclmulqdq,amx-tile,amx-bf16,amx-int8"

/*===--------------------------------------------------------------------===*
 * Memref descriptors (MLIR's ranked memref descriptor, as int64 words)
 *===--------------------------------------------------------------------===*
 *
 *   word 0           allocated pointer (what the owner frees)
 *   word 1           aligned pointer (where element 0 of the buffer lies)
 *   word 2           offset, in elements, from the aligned pointer
 *   words 3..3+r-1   sizes
 *   words 3+r..3+2r-1 strides, in elements
 *
 * for a tensor of rank r. Results are buffers the module malloc'ed (the
 * runtime adopts and frees them), or pointers into buffers the runtime lent
 * (inputs, parameters), which it copies instead.
 */
#define KILN_DESCRIPTOR_ALLOCATED 0
#define KILN_DESCRIPTOR_ALIGNED 1
#define KILN_DESCRIPTOR_OFFSET 2
#define KILN_DESCRIPTOR_SIZES 3
#define KILN_DESCRIPTOR_WORDS(rank) (3 + 2 * (rank))

#endif /* KILN_RUNTIME_ARTIFACTABI_H */
