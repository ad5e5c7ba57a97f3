//===- kiln-compile.cpp - Model configs and kiln IR to graphs and costs ---===//
//
// The compiler driver: reads a model config (`*.json`, built with the model
// builders) or kiln IR (`*.mlir`), and prints the graph as built, the graph
// decomposed into primitives, or its cost report.
//
//===----------------------------------------------------------------------===//

#include "kiln/Dialect/Kiln/IR/KilnDialect.h"
#include "kiln/Dialect/Kiln/Transforms/Passes.h"
#include "kiln/Models/ModelBuilder.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Quant/IR/Quant.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/DialectRegistry.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/IR/Verifier.h"
#include "mlir/Parser/Parser.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Support/FileUtilities.h"
#include "mlir/Transforms/Passes.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/SourceMgr.h"
#include "llvm/Support/ToolOutputFile.h"
#include "llvm/Support/WithColor.h"
#include "llvm/Support/raw_ostream.h"

#include <unistd.h>

using namespace mlir;
namespace cl = llvm::cl;

namespace {
enum class EmitKind { Kiln, Decomposed, Cost };

cl::OptionCategory category("kiln-compile options");

cl::opt<std::string> inputPath(cl::Positional, cl::Required,
                               cl::desc("<model config .json | kiln IR .mlir>"),
                               cl::cat(category));

cl::opt<EmitKind> emit(
    "emit", cl::desc("What to print"), cl::init(EmitKind::Kiln),
    cl::values(
        clEnumValN(EmitKind::Kiln, "kiln",
                   "the kiln graph as built or parsed (verified)"),
        clEnumValN(EmitKind::Decomposed, "decomposed",
                   "composites decomposed into primitives "
                   "(kiln-decompose, canonicalize, cse)"),
        clEnumValN(EmitKind::Cost, "cost",
                   "the cost report (kiln-cost-report): parameters, FLOPs, "
                   "bytes, roofline time")),
    cl::cat(category));

cl::opt<int64_t> batch("batch",
                       cl::desc("Batch size of the inputs of a config "
                                "(default: dynamic; 1 with --emit=cost)"),
                       cl::init(0), cl::cat(category));
cl::opt<int64_t> seq("seq",
                     cl::desc("Sequence length of the inputs of a config "
                              "(default: dynamic; 128 with --emit=cost)"),
                     cl::init(0), cl::cat(category));

cl::opt<std::string> outputPath("o", cl::desc("Output file (default: stdout)"),
                                cl::value_desc("file"), cl::init("-"),
                                cl::cat(category));

cl::opt<bool> json("json", cl::desc("Cost report as JSON (--emit=cost)"),
                   cl::init(false), cl::cat(category));
cl::opt<bool> perOp("per-op",
                    cl::desc("Cost report row per op instead of per op kind "
                             "(--emit=cost)"),
                    cl::init(false), cl::cat(category));
cl::opt<double> peakGflops(
    "peak-gflops",
    cl::desc("Peak compute of the target in GFLOP/s (--emit=cost; default: "
             "kiln-cost-report's, 520)"),
    cl::init(520.0), cl::cat(category));
cl::opt<double> bandwidthGbs(
    "bandwidth-gbs",
    cl::desc("Memory bandwidth of the target in GB/s (--emit=cost; default: "
             "kiln-cost-report's, 60)"),
    cl::init(60.0), cl::cat(category));
cl::opt<int64_t> dynamicDimSize(
    "dynamic-dim-size",
    cl::desc("Size assumed for dynamic dimensions left in the graph "
             "(--emit=cost; mainly for .mlir inputs)"),
    cl::init(1), cl::cat(category));

const char *overview = R"(Kiln compiler driver

Reads a model config (.json, Hugging Face style keys; "model_type" selects
the family) or a kiln IR file (.mlir) and prints:
  --emit=kiln        the graph as built (or parsed), verified
  --emit=decomposed  the graph after kiln-decompose, canonicalize and cse
  --emit=cost        the kiln-cost-report of the graph

For configs, --batch and --seq fix the input shapes (0 means dynamic, `?`).
Unset, they are dynamic, except with --emit=cost, where they default to
batch 1 and seq 128 (the report's first line says which were used).
For .mlir inputs, --batch and --seq are ignored; dynamic dimensions count as
--dynamic-dim-size in the cost report.

Examples:
  kiln-compile models/gpt2-small.json --emit=kiln --batch 1 --seq 1024
  kiln-compile models/bert-base.json --emit=cost --seq 512 --json
  kiln-compile models/mlp.mlir --emit=decomposed -o mlp.decomposed.mlir
)";

/// The size a config's input dimension gets: the option when given (0 means
/// dynamic), else dynamic, or `costDefault` for the cost report.
int64_t getInputSize(const cl::opt<int64_t> &option, int64_t costDefault) {
  if (option.getNumOccurrences())
    return option > 0 ? option.getValue() : ShapedType::kDynamic;
  return emit == EmitKind::Cost ? costDefault : ShapedType::kDynamic;
}

std::string formatSize(int64_t size) {
  return ShapedType::isDynamic(size) ? "? (dynamic)" : std::to_string(size);
}

int fail(const llvm::Twine &message) {
  llvm::WithColor::error(llvm::errs(), "kiln-compile") << message << "\n";
  return 1;
}

/// Loads the input as a module: builds it from a config, or parses IR.
FailureOr<OwningOpRef<ModuleOp>> loadInput(MLIRContext &context) {
  if (inputPath != "-" && !llvm::sys::fs::exists(inputPath)) {
    fail("no such file: '" + inputPath + "'");
    return failure();
  }
  if (llvm::sys::path::extension(inputPath) == ".json") {
    auto config = kiln::loadModelConfig(inputPath);
    if (!config) {
      fail(llvm::toString(config.takeError()));
      return failure();
    }
    kiln::BuildOptions options;
    options.batch = getInputSize(batch, /*costDefault=*/1);
    options.seq = getInputSize(seq, /*costDefault=*/128);
    auto module = kiln::buildModel(context, *config, options);
    if (!module) {
      fail(inputPath + ": " + llvm::toString(module.takeError()));
      return failure();
    }
    return std::move(*module);
  }

  std::string message;
  auto file = openInputFile(inputPath, &message);
  if (!file) {
    fail(message);
    return failure();
  }
  llvm::SourceMgr sourceMgr;
  sourceMgr.AddNewSourceBuffer(std::move(file), llvm::SMLoc());
  // Parse errors are reported through the default handler with locations.
  OwningOpRef<ModuleOp> module =
      parseSourceFile<ModuleOp>(sourceMgr, ParserConfig(&context));
  if (!module) {
    fail("could not parse '" + inputPath + "'");
    return failure();
  }
  return std::move(module);
}
} // namespace

int main(int argc, char **argv) {
  llvm::InitLLVM initLLVM(argc, argv);
  cl::HideUnrelatedOptions(category);
  cl::ParseCommandLineOptions(argc, argv, overview);

  if (batch < 0 || seq < 0)
    return fail("--batch and --seq must be positive (or 0 for dynamic)");
  if ((peakGflops.getNumOccurrences() && peakGflops <= 0) ||
      (bandwidthGbs.getNumOccurrences() && bandwidthGbs <= 0))
    return fail("--peak-gflops and --bandwidth-gbs must be positive");
  if (dynamicDimSize < 0)
    return fail("--dynamic-dim-size must be non-negative");

  DialectRegistry registry;
  registry.insert<kiln::KilnDialect, func::FuncDialect, tensor::TensorDialect,
                  arith::ArithDialect, quant::QuantDialect>();
  MLIRContext context(registry);
  context.loadAllAvailableDialects();

  auto module = loadInput(context);
  if (failed(module))
    return 1;
  if (failed(verify(**module)))
    return fail("'" + inputPath + "' does not verify");

  if (emit != EmitKind::Cost) {
    std::string message;
    auto output = openOutputFile(outputPath, &message);
    if (!output)
      return fail(message);
    if (emit == EmitKind::Decomposed) {
      PassManager pm(&context);
      pm.addNestedPass<func::FuncOp>(kiln::createKilnDecomposePass());
      pm.addPass(createCanonicalizerPass());
      pm.addPass(createCSEPass());
      if (failed(pm.run(**module)))
        return fail("decomposing '" + inputPath + "' failed");
    }
    (*module)->print(output->os());
    output->os() << "\n";
    output->keep();
    return 0;
  }

  PassManager pm(&context);

  kiln::KilnCostReportPassOptions options;
  if (peakGflops.getNumOccurrences())
    options.peakGflops = peakGflops;
  if (bandwidthGbs.getNumOccurrences())
    options.bandwidthGbs = bandwidthGbs;
  options.dynamicDimSize = dynamicDimSize;
  options.json = json;
  options.perOp = perOp;
  pm.addPass(kiln::createKilnCostReportPass(options));

  // The pass prints to stdout; send stdout to the output file meanwhile.
  llvm::outs().flush();
  int savedStdout = -1;
  if (outputPath != "-") {
    int fd;
    if (std::error_code ec = llvm::sys::fs::openFileForWrite(outputPath, fd))
      return fail("cannot open '" + outputPath + "': " + ec.message());
    savedStdout = ::dup(STDOUT_FILENO);
    ::dup2(fd, STDOUT_FILENO);
    ::close(fd);
  }
  if (!json && llvm::sys::path::extension(inputPath) == ".json")
    llvm::outs() << "# " << inputPath << ": batch "
                 << formatSize(getInputSize(batch, 1)) << ", seq "
                 << formatSize(getInputSize(seq, 128))
                 << " (set with --batch / --seq)\n";
  LogicalResult result = pm.run(**module);
  llvm::outs().flush();
  if (savedStdout >= 0) {
    ::dup2(savedStdout, STDOUT_FILENO);
    ::close(savedStdout);
  }
  if (failed(result))
    return fail("the cost report for '" + inputPath + "' failed");
  return 0;
}
