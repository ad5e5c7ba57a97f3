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

#include "mlir/Dialect/Func/IR/FuncOps.h"
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

/// The buffer dims a vector transfer covers (its permutation map's dims;
/// broadcast results cover none).
SmallVector<int64_t> transferDims(AffineMap map) {
  SmallVector<int64_t> dims;
  for (AffineExpr result : map.getResults())
    if (auto dim = dyn_cast<AffineDimExpr>(result))
      dims.push_back(dim.getPosition());
  return dims;
}

/// The buffer dims a vector.load or vector.store of `vector` covers: its
/// trailing ones.
SmallVector<int64_t> trailingDims(MemRefType memref, VectorType vector) {
  SmallVector<int64_t> dims;
  for (int64_t d = memref.getRank() - vector.getRank(); d < memref.getRank();
       ++d)
    dims.push_back(d);
  return dims;
}

/// Whether `value` is an allocation no other value can alias: every use,
/// followed through views of it, is a view, an access, or anything else
/// that makes no value of it (no memref result, no branch or yield passing
/// it on; returning it is fine: that is after the loops).
bool isFresh(Value value) {
  if (!value.getDefiningOp<memref::AllocOp>() &&
      !value.getDefiningOp<memref::AllocaOp>())
    return false;
  SmallVector<Value> worklist = {value};
  while (!worklist.empty()) {
    Value current = worklist.pop_back_val();
    for (Operation *user : current.getUsers()) {
      if (auto view = dyn_cast<ViewLikeOpInterface>(user);
          view && view.getViewSource() == current) {
        worklist.push_back(view->getResult(0));
        continue;
      }
      if (isa<func::ReturnOp>(user))
        continue;
      if (user->hasTrait<OpTrait::IsTerminator>() ||
          llvm::any_of(user->getResultTypes(), llvm::IsaPred<BaseMemRefType>))
        return false;
    }
  }
  return true;
}

/// Every buffer `loop` reads or writes, keyed by its root, or nullopt when
/// something in it has effects this pass does not follow (a call, a copy,
/// an allocation: each would need its own reasoning).
std::optional<llvm::DenseMap<Value, Use>> usesOf(scf::ParallelOp loop) {
  llvm::DenseMap<Value, Use> uses;
  SmallVector<Value> ivs = loop.getInductionVars();
  // `dims`: which dims of the buffer the access covers beyond its
  // indices' element (a vector's); they must all come after the row.
  auto record = [&](Value memref, ValueRange indices, bool writes,
                    ArrayRef<int64_t> dims = {}) {
    Use &use = uses[rootOf(memref)];
    use.writes |= writes;
    for (int64_t dim : dims)
      if (dim < static_cast<int64_t>(ivs.size()))
        use.rowLocal = false;
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
      record(read.getBase(), read.getIndices(), false,
             transferDims(read.getPermutationMap()));
    else if (auto write = dyn_cast<vector::TransferWriteOp>(op))
      record(write.getBase(), write.getIndices(), true,
             transferDims(write.getPermutationMap()));
    else if (auto load = dyn_cast<vector::LoadOp>(op))
      record(load.getBase(), load.getIndices(), false,
             trailingDims(load.getMemRefType(), load.getVectorType()));
    else if (auto store = dyn_cast<vector::StoreOp>(op))
      record(store.getBase(), store.getIndices(), true,
             trailingDims(store.getMemRefType(), store.getVectorType()));
    else if (auto effects = dyn_cast<MemoryEffectOpInterface>(op)) {
      // Any other access (a linalg op on buffers, a copy, an atomic):
      // not followed.
      if (!effects.hasNoEffect())
        return WalkResult::interrupt();
    } else if (!op->hasTrait<OpTrait::HasRecursiveMemoryEffects>()) {
      // Unknown effects (a call).
      return WalkResult::interrupt();
    }
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
  // A buffer both touch and one writes (a fresh allocation, by `fresh`
  // below): both only at their own rows.
  auto check = [](const llvm::DenseMap<Value, Use> &mine,
                  const llvm::DenseMap<Value, Use> &theirs) {
    for (const auto &[root, use] : mine) {
      auto other = theirs.find(root);
      if (other == theirs.end() || (!use.writes && !other->second.writes))
        continue;
      if (!use.rowLocal || !other->second.rowLocal)
        return false;
    }
    return true;
  };
  // A buffer written by one loop that the other does not touch needs only
  // not to alias anything the other touches: a fresh allocation.
  auto fresh = [](const llvm::DenseMap<Value, Use> &mine) {
    for (const auto &[root, use] : mine)
      if (use.writes && !isFresh(root))
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
    // Inner blocks first (post-order): fusing in a block erases loops
    // whose bodies, nested in it, were visited before it.
    SmallVector<Block *> blocks;
    getOperation().walk<WalkOrder::PostOrder>(
        [&](Block *block) { blocks.push_back(block); });
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
