//===- LinearWeights.cpp - Which parameters are linear weights ------------===//

#include "LinearWeights.h"

#include "llvm/ADT/StringMap.h"
#include "llvm/ADT/StringSet.h"

using namespace mlir;
using namespace mlir::kiln;

bool mlir::kiln::isFilledByCompiler(ParameterOp param) {
  return llvm::any_of(param->getAttrs(), [](NamedAttribute attr) {
    return attr.getName().strref().starts_with("kiln.");
  });
}

std::optional<SmallVector<LinearOp>> mlir::kiln::linearUses(ReadParamOp read) {
  SmallVector<LinearOp> linears;
  for (OpOperand &use : read.getResult().getUses()) {
    if (auto linear = dyn_cast<LinearOp>(use.getOwner());
        linear && use.get() == linear.getWeight() &&
        use.getOperandNumber() == 1) {
      linears.push_back(linear);
      continue;
    }
    auto cast = dyn_cast<CastOp>(use.getOwner());
    if (!cast || !isa<FloatType>(cast.getType().getElementType()))
      return std::nullopt;
    for (OpOperand &castUse : cast.getResult().getUses()) {
      auto linear = dyn_cast<LinearOp>(castUse.getOwner());
      if (!linear || castUse.getOperandNumber() != 1)
        return std::nullopt;
      linears.push_back(linear);
    }
  }
  return linears;
}

void mlir::kiln::parameterMatmulsToLinears(ModuleOp module) {
  SmallVector<MatmulOp> matmuls;
  module.walk([&](MatmulOp matmul) {
    auto read = matmul.getRhs().getDefiningOp<ReadParamOp>();
    if (read && !matmul.getTransposeLhs() &&
        matmul.getRhs().getType().getRank() == 2 &&
        matmul.getLhs().getType().getRank() >= 2 &&
        isa<FloatType>(matmul.getRhs().getType().getElementType()))
      matmuls.push_back(matmul);
  });
  for (MatmulOp matmul : matmuls) {
    OpBuilder b(matmul);
    Value linear = LinearOp::create(
        b, matmul.getLoc(), matmul.getType(), matmul.getLhs(), matmul.getRhs(),
        /*bias=*/Value(),
        matmul.getTransposeRhs() ? UnitAttr() : b.getUnitAttr());
    matmul.replaceAllUsesWith(linear);
    matmul.erase();
  }
}

/// The linears a read feeds directly as their weight. Any other use sets
/// `other`, but for the table of kiln.embedding ops with `tables`.
static SmallVector<LinearOp> directLinearUses(ReadParamOp read, bool tables,
                                              bool &other) {
  SmallVector<LinearOp> linears;
  for (OpOperand &use : read.getResult().getUses()) {
    if (auto linear = dyn_cast<LinearOp>(use.getOwner());
        linear && use.getOperandNumber() == 1)
      linears.push_back(linear);
    else if (!tables || !isa<EmbeddingOp>(use.getOwner()) ||
             use.getOperandNumber() != 0)
      other = true;
  }
  return linears;
}

FailureOr<ParameterSelection>
ParameterSelection::create(Operation *anchor, ArrayRef<std::string> only,
                           ArrayRef<std::string> skip, bool lmHead) {
  ParameterSelection selection;
  selection.lmHead = lmHead;
  auto compile = [&](ArrayRef<std::string> globs,
                     SmallVectorImpl<llvm::GlobPattern> &out) {
    for (const std::string &glob : globs) {
      auto pattern = llvm::GlobPattern::create(glob);
      if (!pattern) {
        anchor->emitError("bad parameter pattern '")
            << glob << "': " << llvm::toString(pattern.takeError());
        return failure();
      }
      out.push_back(std::move(*pattern));
    }
    return success();
  };
  if (failed(compile(only, selection.only)) ||
      failed(compile(skip, selection.skip)))
    return failure();
  return selection;
}

bool ParameterSelection::operator()(StringRef name) const {
  auto matches = [&](ArrayRef<llvm::GlobPattern> patterns) {
    return llvm::any_of(patterns, [&](const llvm::GlobPattern &pattern) {
      return pattern.match(name);
    });
  };
  if (!only.empty() && !matches(only))
    return false;
  if (matches(skip))
    return false;
  bool lmHeadName = name.starts_with("lm_head.") || name.contains(".lm_head.");
  return !lmHeadName || lmHead;
}

SmallVector<LinearWeight> mlir::kiln::linearWeights(ModuleOp module,
                                                    OtherUses others) {
  llvm::StringMap<SmallVector<ReadParamOp>> reads;
  llvm::StringSet<llvm::MallocAllocator> written;
  module.walk(
      [&](ReadParamOp read) { reads[read.getName()].push_back(read); });
  module.walk([&](WriteParamOp write) { written.insert(write.getName()); });
  SmallVector<LinearWeight> result;
  for (ParameterOp param : module.getOps<ParameterOp>()) {
    StringRef name = param.getSymName();
    auto type = param.getTensorType();
    if (type.getRank() != 2 || !isa<FloatType>(type.getElementType()) ||
        written.contains(name))
      continue;
    auto found = reads.find(name);
    if (found == reads.end())
      continue;
    LinearWeight weight{param, found->second, {}, false, false};
    // Every read feeding only linears (a cast between allowed) first.
    bool onlyLinears = true;
    for (ReadParamOp read : found->second) {
      auto uses = linearUses(read);
      if (!uses) {
        onlyLinears = false;
        break;
      }
      llvm::append_range(weight.linears, *uses);
    }
    // Else the linears the reads feed directly, and what else they feed:
    // with Tables, a read that feeds only linears keeps its casts; with
    // Any, only direct uses count (a cast is another use, which keeps the
    // float parameter for it).
    if (!onlyLinears) {
      if (others == OtherUses::None)
        continue;
      weight.linears.clear();
      bool other = false;
      for (ReadParamOp read : found->second) {
        if (others == OtherUses::Tables) {
          if (auto uses = linearUses(read)) {
            llvm::append_range(weight.linears, *uses);
            continue;
          }
        }
        llvm::append_range(
            weight.linears,
            directLinearUses(read, others == OtherUses::Tables, other));
      }
      if (other && others != OtherUses::Any)
        continue;
      weight.shared = other;
    }
    if (weight.linears.empty())
      continue;
    weight.transposed = weight.linears.front().getWeightInOut();
    if (llvm::any_of(weight.linears, [&](LinearOp linear) {
          return linear.getWeightInOut() != weight.transposed;
        }))
      continue;
    result.push_back(std::move(weight));
  }
  return result;
}
