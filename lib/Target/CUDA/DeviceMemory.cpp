//===- DeviceMemory.cpp - host code holds device pointers only ------------===//
//
// Host allocations become gpu.alloc, constants are copied to the device
// where used, and no host op may touch memory (see Passes.td).
//
//===----------------------------------------------------------------------===//

#include "Utils.h"
#include "kiln/Target/CUDA/Passes.h"

namespace mlir::kiln {
#define GEN_PASS_DEF_DEVICEMEMORYPASS
#include "kiln/Target/CUDA/Passes.h.inc"
} // namespace mlir::kiln

using namespace mlir;
using namespace mlir::kiln;
using namespace mlir::kiln::cuda;

namespace {

/// A small host buffer that only the host reads: the shape operand of a
/// dynamic memref.reshape, filled with stores before it.
bool isHostShapeBuffer(Value buffer) {
  if (!buffer || !isa_and_nonnull<memref::AllocOp, memref::AllocaOp>(
                     buffer.getDefiningOp()))
    return false;
  return llvm::all_of(buffer.getUsers(), [&](Operation *user) {
    if (isInDeviceCode(user))
      return false;
    if (auto reshape = dyn_cast<memref::ReshapeOp>(user))
      return reshape.getShape() == buffer && reshape.getSource() != buffer;
    return isa<memref::StoreOp, memref::LoadOp, memref::DeallocOp>(user);
  });
}

/// The memref a host op reads, writes or frees (or its single result).
Value memrefOperand(Operation *op) {
  if (auto load = dyn_cast<memref::LoadOp>(op))
    return load.getMemRef();
  if (auto store = dyn_cast<memref::StoreOp>(op))
    return store.getMemRef();
  if (auto dealloc = dyn_cast<memref::DeallocOp>(op))
    return dealloc.getMemref();
  return op->getNumResults() == 1 ? op->getResult(0) : Value();
}

/// gpu-to-llvm lowers gpu.alloc, gpu.dealloc and gpu.memcpy in their async
/// form only: each gets a stream of its own (gpu.wait async), and the host
/// waits for it after (the runtime's single stream keeps them in order).
Value newStream(OpBuilder &builder, Location loc) {
  return gpu::WaitOp::create(builder, loc,
                             gpu::AsyncTokenType::get(builder.getContext()),
                             ValueRange{})
      .getAsyncToken();
}
void waitFor(OpBuilder &builder, Location loc, Value token) {
  gpu::WaitOp::create(builder, loc, Type(), ValueRange{token});
}
void emitDeviceDealloc(OpBuilder &builder, Location loc, Value memref) {
  auto done = gpu::DeallocOp::create(
      builder, loc, gpu::AsyncTokenType::get(builder.getContext()),
      ValueRange{newStream(builder, loc)}, memref);
  waitFor(builder, loc, done.getAsyncToken());
}

/// Host allocations become device allocations, constants are copied to
/// device memory where they are used, and nothing else on the host may
/// touch memory: every pointer the host code holds is a device pointer.
struct DeviceMemoryPass : kiln::impl::DeviceMemoryPassBase<DeviceMemoryPass> {
  void runOnOperation() final {
    func::FuncOp func = getOperation();
    IRRewriter rewriter(&getContext());
    SmallVector<Operation *> work;
    func.walk([&](Operation *op) {
      if (!isInDeviceCode(op))
        work.push_back(op);
    });
    SmallVector<Value> constantCopies;
    Type token = gpu::AsyncTokenType::get(&getContext());
    for (Operation *op : work) {
      Location loc = op->getLoc();
      rewriter.setInsertionPoint(op);
      if (isa<memref::AllocOp, memref::AllocaOp, memref::LoadOp,
              memref::StoreOp, memref::DeallocOp>(op) &&
          isHostShapeBuffer(memrefOperand(op)))
        continue;
      if (auto alloc = dyn_cast<memref::AllocOp>(op)) {
        auto device = gpu::AllocOp::create(
            rewriter, loc, alloc.getType(), token,
            ValueRange{newStream(rewriter, loc)}, alloc.getDynamicSizes(),
            alloc.getSymbolOperands());
        waitFor(rewriter, loc, device.getAsyncToken());
        rewriter.replaceOp(alloc, device.getMemref());
      } else if (auto dealloc = dyn_cast<memref::DeallocOp>(op)) {
        emitDeviceDealloc(rewriter, loc, dealloc.getMemref());
        rewriter.eraseOp(dealloc);
      } else if (auto global = dyn_cast<memref::GetGlobalOp>(op)) {
        // The global lives in module.so's (host) data: each use gets a
        // device copy.
        auto type = global.getType();
        if (!type.hasStaticShape()) {
          op->emitOpError("a dynamically shaped constant cannot be copied "
                          "to the GPU");
          return signalPassFailure();
        }
        rewriter.setInsertionPointAfter(global);
        auto device = gpu::AllocOp::create(rewriter, loc, type, token,
                                           ValueRange{newStream(rewriter, loc)},
                                           ValueRange{}, ValueRange{});
        rewriter.replaceAllUsesExcept(global, device.getMemref(),
                                      device.getOperation());
        auto copied = gpu::MemcpyOp::create(rewriter, loc, token,
                                            ValueRange{device.getAsyncToken()},
                                            device.getMemref(), global);
        waitFor(rewriter, loc, copied.getAsyncToken());
        // Freed when the function returns (results never alias constants:
        // bufferization returns clones of them).
        constantCopies.push_back(device.getMemref());
      } else if (isa<memref::AllocaOp, memref::LoadOp, memref::StoreOp,
                     memref::CopyOp, linalg::LinalgOp>(op)) {
        op->emitOpError("would run on the host and touch device memory; the "
                        "CUDA pipeline maps every access to a kernel");
        return signalPassFailure();
      }
    }
    func.walk([&](func::ReturnOp ret) {
      rewriter.setInsertionPoint(ret);
      for (Value copy : constantCopies)
        emitDeviceDealloc(rewriter, ret.getLoc(), copy);
    });
  }
};

} // namespace
