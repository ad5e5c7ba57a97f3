//===- CPUKernelConfig.h - Kernel shapes chosen for the target CPU -*- C++ -*-===//
//
// What the CPU pipeline's kernels are shaped by: the register tile of the
// matmuls (sized so that its accumulators fit the vector register file
// with room for the rhs row and the broadcast lhs element) and the cache
// sizes that blocking keeps operands within. kiln-compile picks one for the
// CPU it generates code for and records it in the manifest's
// target_options, so that an artifact says which kernels it carries.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_TARGET_CPU_CPUKERNELCONFIG_H
#define KILN_TARGET_CPU_CPUKERNELCONFIG_H

#include "kiln/Target/Common/ObjectEmission.h"

#include "llvm/ADT/StringRef.h"
#include "llvm/Support/Error.h"

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace mlir::kiln {

/// Columns of the AMX bf16 kernel's parallel panel (kiln-lower-amx-matmuls'
/// default 4 blocks of 32): the width of bf16 weights stored in pairs.
constexpr int64_t kAMXPanelColumns = 128;

/// How an inference artifact's linear weights become the CPU matmul's
/// column panels: not at all (each call copies a panel at a time), by the
/// runtime when it loads the artifact, or in the artifact's weights file.
enum class WeightPacking { None, AtLoad, InFile };

struct CPUKernelConfig {
  /// The widest vector the generated code uses ("avx512", "avx2", "sse").
  std::string isa = "avx512";
  int64_t vectorBits = 512;
  int64_t vectorRegisters = 32;
  /// The matmul register tile: rows (lhs broadcasts per step of k) and
  /// columns (a multiple of the f32 lanes; also the parallel panel width).
  int64_t tileM = 8, tileN = 32;
  /// Steps of k a matmul panel takes at a time: its [kBlock, tileN] rhs
  /// rows fill half the L1 data cache.
  int64_t kBlock = 128;
  /// int8 matmuls (kiln.integer_matmul): "amx" (AMX-INT8 tiles, tdpbssd),
  /// "vnni" (AVX-512 VNNI's vpdpbusd), "avx2" (vpmaddwd on sign-extended
  /// pairs) or "generic" (portable vector ops), and their register tile
  /// (columns a multiple of 16); the dots the CPU can run, best first.
  std::string int8Dot = "vnni";
  int64_t int8TileM = 8, int8TileN = 32;
  std::vector<std::string> int8Dots = {"vnni", "avx2", "generic"};
  /// Sets int8Dot and its tile.
  void chooseInt8Dot(const std::string &dot);
  /// bf16 matmuls: "amx" (AMX-BF16 tiles, kiln-lower-amx-matmuls),
  /// "avx512" (AVX512-BF16's vdpbf16ps in register tiles, the same pass),
  /// "f32" (operands widened to f32 for the f32 register tiles,
  /// kiln-widen-bf16-matmuls) or "none" (the plain loops); the kernels the
  /// CPU can run, in the order they are preferred.
  std::string bf16Dot = "none";
  std::vector<std::string> bf16Dots = {"none"};
  /// Whether an inference artifact's matmuls read their linear weights as
  /// column panels (kiln-pack-weights; kiln-compile --pack-weights), and
  /// whether the runtime packs them when it loads the artifact (the
  /// weights file a checkpoint of the model) or the file holds the panels
  /// (docs/artifacts.md).
  WeightPacking packWeights = WeightPacking::AtLoad;
  /// Per-core L1 data and L2, shared L3, in bytes.
  int64_t l1Bytes = 32 << 10;
  int64_t l2Bytes = 1 << 20;
  int64_t l3Bytes = 32 << 20;
  /// Where the cache sizes came from ("this machine" or "defaults").
  std::string cacheSource = "defaults";
  /// For x86: the features of KILN_CHECKED_X86_FEATURES the target CPU has
  /// (comma-separated), which the runtime checks the loading machine for.
  std::optional<std::string> cpuFeatures;

  /// "MxN".
  std::string tile() const;
  /// The manifest's target_options entries for this configuration.
  std::map<std::string, std::string> manifestOptions() const;
};

/// The configuration for `host`: vector width and register count from the
/// CPU's features (an AVX-512 CPU gets 8 x 32 tiles of zmm accumulators on
/// AMD, 6 x 64 on Intel; an AVX2 one 6 x 16 of ymm, others 6 x 8 of xmm), the
/// cache sizes of this machine when host.cpu is "native" (sysfs), defaults
/// otherwise. An unknown CPU name is an error.
llvm::Expected<CPUKernelConfig>
selectCPUKernelConfig(const CPUTargetOptions &host);

/// What a user may choose instead of selectCPUKernelConfig
/// (kiln-compile's --matmul-tile and --matmul-k-block).
struct CPUKernelOverrides {
  /// "MxN" (1 <= M <= 32, 1 <= N <= 256); empty: keep the chosen tile.
  std::string matmulTile;
  /// Steps of k per block, 0 for none (must not be negative); unset: the
  /// one chosen for the tile.
  std::optional<int64_t> matmulKBlock;
  /// "amx", "vnni", "avx2" or "generic"; empty: the one chosen for the
  /// CPU. One the CPU cannot run (amx without AMX-INT8, vnni without
  /// AVX-512 VNNI, avx2 without AVX2) is an error.
  std::string int8Dot;
  /// "amx", "avx512" or "none"; empty: the one chosen for the CPU. amx on
  /// a CPU without AMX-BF16, avx512 on one without AVX512-BF16, is an
  /// error.
  std::string bf16Dot;
  /// How inference weights become column panels; unset: at load.
  std::optional<WeightPacking> packWeights;
};

/// Applies `overrides` to `config`; a malformed tile or a negative k block
/// is an error.
llvm::Error applyKernelOverrides(CPUKernelConfig &config,
                                 const CPUKernelOverrides &overrides);

} // namespace mlir::kiln

#endif // KILN_TARGET_CPU_CPUKERNELCONFIG_H
