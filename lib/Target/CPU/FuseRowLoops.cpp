//===- FuseRowLoops.cpp - Adjacent row loops as one parallel loop ---------===//
//
// After linalg becomes loops, a layer norm is thirteen parallel loops over
// its rows (fills, partial sums, their sum, a division, the centring, ...),
// each an OpenMP region of its own, each a pass over its buffers. Each
// touches only its own row of every buffer another of them writes, so the
// rows can run one after another through all of them: one region, a row's
// temporaries still in L1 when the next step reads them (see Passes.td).
//
//===----------------------------------------------------------------------===//

#include "kiln/Target/CPU/Passes.h"

#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/Utils/StaticValueUtils.h"
#include "mlir/IR/Dominance.h"
#include "mlir/IR/IRMapping.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"
#include "mlir/Interfaces/ViewLikeInterface.h"

#include "llvm/ADT/DenseMap.h"

namespace mlir::kiln {
#define GEN_PASS_DEF_FUSEROWLOOPSPASS
#include "kiln/Target/CPU/Passes.h.inc"
} // namespace mlir::kiln

using namespace mlir;

namespace {
/// How a loop touches a buffer: whether it writes it, and whether every
/// access is at the loop's own row (the leading indices are the loop's
/// induction variables, the buffer accessed as it was allocated or, for a
/// one-dimensional loop, through reshapes that keep its leading dim).
struct Use {
  bool writes = false;
  bool rowLocal = true;
};

/// The buffer `value` is a view of (or `value`).
Value rootOf(Value value) {
  while (auto view = value.getDefiningOp<ViewLikeOpInterface>())
    value = view.getViewSource();
  return value;
}

/// Whether the view `value` is of a buffer through reshapes that keep its
/// leading dim as their own (expand or collapse shapes whose first group is
/// that dim, alone or with dims of size 1: index i of one is index i of the
/// other).
bool keepsLeadingDim(Value value) {
  while (Operation *op = value.getDefiningOp()) {
    if (auto expand = dyn_cast<memref::ExpandShapeOp>(op)) {
      ReassociationIndices first = expand.getReassociationIndices().front();
      for (int64_t d : ArrayRef(first).drop_front())
        if (expand.getResultType().getDimSize(d) != 1)
          return false;
      value = expand.getSrc();
    } else if (auto collapse = dyn_cast<memref::CollapseShapeOp>(op)) {
      ReassociationIndices first = collapse.getReassociationIndices().front();
      for (int64_t d : ArrayRef(first).drop_front())
        if (collapse.getSrcType().getDimSize(d) != 1)
          return false;
      value = collapse.getSrc();
    } else if (isa<ViewLikeOpInterface>(op)) {
      return false;
    } else {
      return true;
    }
  }
  return true;
}

/// Every buffer `loop` reads or writes, keyed by its root, or nullopt when
/// something in it has effects this pass does not follow (a call, a copy,
/// an allocation: each would need its own reasoning).
std::optional<llvm::DenseMap<Value, Use>> usesOf(scf::ParallelOp loop) {
  llvm::DenseMap<Value, Use> uses;
  ValueRange ivs = loop.getInductionVars();
  auto record = [&](Value memref, ValueRange indices, bool writes) {
    Use &use = uses[rootOf(memref)];
    use.writes |= writes;
    // One loop index: the row may be reached through reshapes that keep
    // it; several: only the buffer itself.
    bool local = (rootOf(memref) == memref ||
                  (ivs.size() == 1 && keepsLeadingDim(memref))) &&
                 indices.size() >= ivs.size();
    for (size_t d = 0; local && d < ivs.size(); ++d)
      local = indices[d] == ivs[d];
    use.rowLocal &= local;
  };
  WalkResult walk = loop.getBody()->walk([&](Operation *op) {
    if (auto load = dyn_cast<memref::LoadOp>(op))
      record(load.getMemRef(), load.getIndices(), false);
    else if (auto store = dyn_cast<memref::StoreOp>(op))
      record(store.getMemRef(), store.getIndices(), true);
    else if (auto read = dyn_cast<vector::TransferReadOp>(op))
      record(read.getBase(), read.getIndices(), false);
    else if (auto write = dyn_cast<vector::TransferWriteOp>(op))
      record(write.getBase(), write.getIndices(), true);
    else if (auto load = dyn_cast<vector::LoadOp>(op))
      record(load.getBase(), load.getIndices(), false);
    else if (auto store = dyn_cast<vector::StoreOp>(op))
      record(store.getBase(), store.getIndices(), true);
    else if (!isMemoryEffectFree(op) &&
             !op->hasTrait<OpTrait::HasRecursiveMemoryEffects>())
      return WalkResult::interrupt();
    return WalkResult::advance();
  });
  if (walk.wasInterrupted())
    return std::nullopt;
  return uses;
}

/// Whether `first`, then `second`, may run as one loop whose iteration i
/// runs the first's iteration i and then the second's: neither has
/// results, the bounds are the same, and every buffer one of them writes
/// is a fresh allocation (no other buffer aliases it) that both touch
/// only at their own rows.
bool canFuse(scf::ParallelOp first, scf::ParallelOp second) {
  if (!first.getInitVals().empty() || !second.getInitVals().empty() ||
      first.getNumLoops() != second.getNumLoops())
    return false;
  auto same = [](ValueRange a, ValueRange b) {
    for (auto [x, y] : llvm::zip_equal(a, b)) {
      if (x == y)
        continue;
      std::optional<int64_t> cx = getConstantIntValue(x),
                             cy = getConstantIntValue(y);
      if (!cx || !cy || *cx != *cy)
        return false;
    }
    return true;
  };
  if (!same(first.getLowerBound(), second.getLowerBound()) ||
      !same(first.getUpperBound(), second.getUpperBound()) ||
      !same(first.getStep(), second.getStep()))
    return false;
  auto a = usesOf(first), b = usesOf(second);
  if (!a || !b)
    return false;
  auto check = [](const llvm::DenseMap<Value, Use> &mine,
                  const llvm::DenseMap<Value, Use> &theirs) {
    for (const auto &[root, use] : mine) {
      auto other = theirs.find(root);
      if (other == theirs.end() || (!use.writes && !other->second.writes))
        continue;
      if (!root.getDefiningOp<memref::AllocOp>() &&
          !root.getDefiningOp<memref::AllocaOp>())
        return false;
      if (!use.rowLocal || !other->second.rowLocal)
        return false;
    }
    return true;
  };
  // A buffer written by one loop that the other does not touch needs only
  // not to alias anything the other touches: a fresh allocation.
  auto fresh = [](const llvm::DenseMap<Value, Use> &mine) {
    for (const auto &[root, use] : mine)
      if (use.writes && !root.getDefiningOp<memref::AllocOp>() &&
          !root.getDefiningOp<memref::AllocaOp>())
        return false;
    return true;
  };
  return fresh(*a) && fresh(*b) && check(*a, *b);
}

/// Whether `op`, between two loops, can move above the first: an
/// allocation or an op without memory effects (it runs either way: the
/// two are in one block), whose operands are defined above `loop`.
bool canHoistAbove(Operation *op, scf::ParallelOp loop, DominanceInfo &dom) {
  if (op->getNumRegions() != 0 || op->hasTrait<OpTrait::IsTerminator>())
    return false;
  if (!isa<memref::AllocOp, memref::AllocaOp>(op) && !isMemoryEffectFree(op))
    return false;
  return llvm::all_of(op->getOperands(), [&](Value operand) {
    return dom.properlyDominates(operand, loop);
  });
}

/// Appends `second`'s body to `first`'s (its induction variables replaced)
/// and erases `second`.
void appendBody(scf::ParallelOp first, scf::ParallelOp second) {
  IRMapping mapping;
  mapping.map(second.getInductionVars(), first.getInductionVars());
  OpBuilder builder(first.getBody()->getTerminator());
  for (Operation &op : second.getBody()->without_terminator())
    builder.clone(op, mapping);
  second.erase();
}

struct FuseRowLoopsPass : kiln::impl::FuseRowLoopsPassBase<FuseRowLoopsPass> {
  void runOnOperation() final {
    SmallVector<Block *> blocks;
    getOperation().walk([&](Block *block) { blocks.push_back(block); });
    for (Block *block : blocks)
      fuseIn(block);
  }

  void fuseIn(Block *block) {
    DominanceInfo dom(getOperation());
    scf::ParallelOp current;
    for (Operation *op = &block->front(); op;) {
      Operation *next = op->getNextNode();
      if (auto loop = dyn_cast<scf::ParallelOp>(op)) {
        // Nested parallel loops were made sequential; one inside another's
        // body is not this pass's business.
        if (current && canFuse(current, loop)) {
          appendBody(current, loop);
        } else {
          current = loop;
        }
      } else if (current && canHoistAbove(op, current, dom)) {
        op->moveBefore(current);
      } else {
        current = {};
      }
      op = next;
    }
  }
};
} // namespace
