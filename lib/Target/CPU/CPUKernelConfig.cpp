//===- CPUKernelConfig.cpp - Kernel shapes chosen for the target CPU ------===//

#include "kiln/Target/CPU/CPUKernelConfig.h"
#include "kiln/Runtime/ArtifactAbi.h"

#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/MC/MCSubtargetInfo.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Target/TargetMachine.h"

#include <algorithm>
#include <optional>

using namespace mlir;
using namespace mlir::kiln;

namespace {
/// The size in bytes of this machine's unified or data cache of `level`
/// (sysfs: "32K", "1024K", "32M"), if the kernel reports one.
std::optional<int64_t> hostCacheBytes(int level) {
  for (int index = 0; index < 8; ++index) {
    std::string dir =
        "/sys/devices/system/cpu/cpu0/cache/index" + std::to_string(index);
    // Read as a stream: sysfs reports a size of a page for every file.
    auto read = [&](const char *name) -> std::string {
      auto buffer = llvm::MemoryBuffer::getFileAsStream(dir + "/" + name);
      return buffer ? (*buffer)->getBuffer().trim().str() : std::string();
    };
    std::string levelText = read("level");
    if (levelText.empty())
      break;
    if (levelText != std::to_string(level) || read("type") == "Instruction")
      continue;
    std::string sizeText = read("size");
    llvm::StringRef size = sizeText;
    int64_t scale = 1;
    if (size.consume_back("K"))
      scale = 1 << 10;
    else if (size.consume_back("M"))
      scale = 1 << 20;
    int64_t value = 0;
    if (size.getAsInteger(10, value) || value <= 0)
      return std::nullopt;
    return value * scale;
  }
  return std::nullopt;
}
/// Steps of k whose [k, tileN] f32 rhs rows fill half the L1 data cache
/// (a multiple of 16, at least 64).
int64_t kBlockFor(const CPUKernelConfig &config) {
  int64_t steps = config.l1Bytes / 2 / (4 * config.tileN);
  return std::max<int64_t>(64, steps / 16 * 16);
}
} // namespace

void CPUKernelConfig::chooseInt8Dot(const std::string &dot) {
  int8Dot = dot;
  if (dot == "amx") {
    // 32 x 32 blocks of four 16 x 16 i32 tiles.
    int8TileM = 32;
    int8TileN = 32;
  } else if (dot == "vnni") {
    // 8 rows x 2 zmm: 16 accumulators, 2 rhs vectors, the broadcast.
    int8TileM = 8;
    int8TileN = 32;
  } else if (dot == "avx2") {
    // 6 rows x 2 ymm (8 lanes each): 12 accumulators of 16 registers.
    int8TileM = 6;
    int8TileN = 16;
  } else {
    int8TileM = 4;
    int8TileN = 16;
  }
}

std::string CPUKernelConfig::tile() const {
  return std::to_string(tileM) + "x" + std::to_string(tileN);
}

std::map<std::string, std::string> CPUKernelConfig::manifestOptions() const {
  std::map<std::string, std::string> options = {
      {"vector_isa", isa},
      {"vector_bits", std::to_string(vectorBits)},
      {"matmul_tile", tile()},
      {"matmul_k_block", std::to_string(kBlock)},
      {"int8_dot", int8Dot},
      {"bf16_dot", bf16Dot},
      {"int8_matmul_tile",
       std::to_string(int8TileM) + "x" + std::to_string(int8TileN)},
      {"l1_bytes", std::to_string(l1Bytes)},
      {"l2_bytes", std::to_string(l2Bytes)},
      {"l3_bytes", std::to_string(l3Bytes)},
      {"cache_sizes_from", cacheSource}};
  if (cpuFeatures)
    options[KILN_CPU_FEATURES_OPTION] = *cpuFeatures;
  return options;
}

llvm::Expected<CPUKernelConfig>
mlir::kiln::selectCPUKernelConfig(const CPUTargetOptions &host) {
  auto machine = createCPUTargetMachine(host);
  if (!machine)
    return machine.takeError();
  const llvm::MCSubtargetInfo *subtarget = (*machine)->getMCSubtargetInfo();
  auto has = [&](llvm::StringRef feature) {
    return subtarget->checkFeatures(("+" + feature).str());
  };
  CPUKernelConfig config;
  // What the runtime checks of the machine that loads the artifact.
  if ((*machine)->getTargetTriple().isX86()) {
    llvm::SmallVector<llvm::StringRef> checked, present;
    llvm::StringRef(KILN_CHECKED_X86_FEATURES).split(checked, ',');
    for (llvm::StringRef feature : checked)
      if (has(feature))
        present.push_back(feature);
    config.cpuFeatures = llvm::join(present, ",");
  }
  if (has("avx512f")) {
    config.isa = "avx512";
    config.vectorBits = 512;
    config.vectorRegisters = 32;
    if ((*machine)->getTargetCPU().starts_with("znver")) {
      // AMD (Zen 4, Zen 5): 8 x 2 accumulators, the rhs row, the
      // broadcast; 91-93% of the FMA peak on a Zen 5.
      config.tileM = 8;
      config.tileN = 32;
    } else {
      // Intel: 6 x 4 accumulators, four rhs vectors, the broadcast. Fewer
      // broadcasts per fused multiply-add and twice the columns per
      // panel: on a Xeon with AMX 1024^3 measured 297-305 GFLOP/s
      // against 256-278 with 8 x 32, the gpt2-small train step 4% faster.
      config.tileM = 6;
      config.tileN = 64;
    }
  } else if (has("avx2") && has("fma")) {
    // 16 ymm: 6 x 2 accumulators, two rhs vectors, the broadcast (the
    // shape of BLIS's and OpenBLAS's Haswell sgemm kernels).
    config.isa = "avx2";
    config.vectorBits = 256;
    config.vectorRegisters = 16;
    config.tileM = 6;
    config.tileN = 16;
  } else {
    // 16 xmm, no FMA.
    config.isa = "sse";
    config.vectorBits = 128;
    config.vectorRegisters = 16;
    config.tileM = 6;
    config.tileN = 8;
  }
  // int8 dot products, best first: VNNI (16 lanes of 4 products per zmm),
  // vpmaddwd (8 lanes of 2 per ymm), portable vector ops.
  config.int8Dots.clear();
  if (has("amx-int8") && has("amx-tile"))
    config.int8Dots.push_back("amx");
  if (has("avx512vnni") && has("avx512bw"))
    config.int8Dots.push_back("vnni");
  if (has("avx2"))
    config.int8Dots.push_back("avx2");
  config.int8Dots.push_back("generic");
  config.chooseInt8Dot(config.int8Dots.front());
  // bf16 matmuls on AMX tiles (16 x 32 bf16 operand tiles, 16 x 16 f32
  // sums), in zmm registers with AVX512-BF16's vdpbf16ps (pairs of bf16
  // products per f32 lane), or widened to f32 for the f32 register tiles.
  // An Intel core without AMX (or one in a virtual machine that hides it)
  // issues vdpbf16ps once every two cycles where it issues two FMAs per
  // cycle (measured on a Xeon with AVX512-BF16: 1.35 against 5.49 G
  // instructions/s), so its 64 flops per instruction run at half the f32
  // peak and the widened operands on the f32 tiles are faster; AMD's
  // Zen 4 and Zen 5 keep vdpbf16ps (not measured against widening).
  config.bf16Dots.clear();
  if (has("amx-bf16") && has("amx-tile"))
    config.bf16Dots.push_back("amx");
  bool amd = (*machine)->getTargetCPU().starts_with("znver");
  bool vdpbf16ps = has("avx512bf16") && has("avx512bw");
  if (vdpbf16ps && amd)
    config.bf16Dots.push_back("avx512");
  config.bf16Dots.push_back("f32");
  if (vdpbf16ps && !amd)
    config.bf16Dots.push_back("avx512");
  config.bf16Dots.push_back("none");
  config.bf16Dot = config.bf16Dots.front();
  if (host.cpu == "native") {
    std::optional<int64_t> l1 = hostCacheBytes(1), l2 = hostCacheBytes(2),
                           l3 = hostCacheBytes(3);
    if (l1)
      config.l1Bytes = *l1;
    if (l2)
      config.l2Bytes = *l2;
    if (l3)
      config.l3Bytes = *l3;
    if (l1 || l2 || l3)
      config.cacheSource = "this machine";
  }
  config.kBlock = kBlockFor(config);
  return config;
}

llvm::Error
mlir::kiln::applyKernelOverrides(CPUKernelConfig &config,
                                 const CPUKernelOverrides &overrides) {
  if (overrides.packWeights)
    config.packWeights = *overrides.packWeights;
  if (!overrides.matmulTile.empty()) {
    llvm::StringRef tile = overrides.matmulTile;
    auto [rowsText, colsText] = tile.split('x');
    int64_t rows = 0, cols = 0;
    if (rowsText.getAsInteger(10, rows) || colsText.getAsInteger(10, cols) ||
        rows < 1 || rows > 32 || cols < 1 || cols > 256)
      return llvm::createStringError(
          "--matmul-tile '" + tile +
          "': expected ROWSxCOLUMNS with 1 <= ROWS <= 32 and 1 <= COLUMNS "
          "<= 256, such as 6x16");
    // LLVM splits a vector of a power-of-two length into whole registers;
    // others (vector<48xf32>) it legalized through the stack, 30 times
    // slower.
    if (!llvm::isPowerOf2_64(cols))
      return llvm::createStringError(
          "--matmul-tile '" + tile + "': the columns (" + std::to_string(cols) +
          ") must be a power of two (the tile is vectorized as one vector "
          "per row, which only then splits into whole registers)");
    config.tileM = rows;
    config.tileN = cols;
    config.kBlock = kBlockFor(config);
  }
  if (!overrides.int8Dot.empty()) {
    const std::string &dot = overrides.int8Dot;
    if (dot != "amx" && dot != "vnni" && dot != "avx2" && dot != "generic")
      return llvm::createStringError("--int8-dot '" + dot +
                                     "': expected amx, vnni, avx2 or generic");
    if (!llvm::is_contained(config.int8Dots, dot))
      return llvm::createStringError(
          "--int8-dot " + dot + ": the target CPU has no " +
          (dot == "amx"    ? "AMX-INT8"
           : dot == "vnni" ? "AVX-512 VNNI"
                           : "AVX2") +
          " (it can run: " + llvm::join(config.int8Dots, ", ") + ")");
    config.chooseInt8Dot(dot);
  }
  if (!overrides.bf16Dot.empty()) {
    const std::string &dot = overrides.bf16Dot;
    if (dot != "amx" && dot != "avx512" && dot != "f32" && dot != "none")
      return llvm::createStringError("--bf16-dot '" + dot +
                                     "': expected amx, avx512, f32 or none");
    if (!llvm::is_contained(config.bf16Dots, dot))
      return llvm::createStringError(
          "--bf16-dot " + dot + ": the target CPU has no " +
          (dot == "amx" ? "AMX-BF16" : "AVX512-BF16") +
          " (choose a --cpu that has it, such as " +
          (dot == "amx" ? "sapphirerapids" : "cooperlake or sapphirerapids") +
          "; it can run: " + llvm::join(config.bf16Dots, ", ") + ")");
    config.bf16Dot = dot;
  }
  if (overrides.matmulKBlock) {
    if (*overrides.matmulKBlock < 0)
      return llvm::createStringError(
          "--matmul-k-block " + std::to_string(*overrides.matmulKBlock) +
          ": expected 0 (all of K at once) or a positive number of steps");
    config.kBlock = *overrides.matmulKBlock;
  }
  return llvm::Error::success();
}
