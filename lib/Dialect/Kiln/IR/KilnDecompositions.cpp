//===- KilnDecompositions.cpp - Composites in terms of primitives ---------===//
//
// PLACEHOLDER: being written.
//
//===----------------------------------------------------------------------===//

#include "kiln/Dialect/Kiln/IR/KilnOps.h"

using namespace mlir;
using namespace mlir::kiln;

FailureOr<SmallVector<Value>> SoftmaxOp::decompose(OpBuilder &builder) {
  return emitOpError("decomposition not implemented yet");
}

FailureOr<SmallVector<Value>> LogSoftmaxOp::decompose(OpBuilder &builder) {
  return emitOpError("decomposition not implemented yet");
}

FailureOr<SmallVector<Value>> LayerNormOp::decompose(OpBuilder &builder) {
  return emitOpError("decomposition not implemented yet");
}

FailureOr<SmallVector<Value>> RMSNormOp::decompose(OpBuilder &builder) {
  return emitOpError("decomposition not implemented yet");
}

FailureOr<SmallVector<Value>> GeluOp::decompose(OpBuilder &builder) {
  return emitOpError("decomposition not implemented yet");
}

FailureOr<SmallVector<Value>> SiluOp::decompose(OpBuilder &builder) {
  return emitOpError("decomposition not implemented yet");
}

FailureOr<SmallVector<Value>> LinearOp::decompose(OpBuilder &builder) {
  return emitOpError("decomposition not implemented yet");
}

FailureOr<SmallVector<Value>> EmbeddingOp::decompose(OpBuilder &builder) {
  return emitOpError("decomposition not implemented yet");
}

FailureOr<SmallVector<Value>> AttentionOp::decompose(OpBuilder &builder) {
  return emitOpError("decomposition not implemented yet");
}

FailureOr<SmallVector<Value>> RopeOp::decompose(OpBuilder &builder) {
  return emitOpError("decomposition not implemented yet");
}

FailureOr<SmallVector<Value>> Conv2dOp::decompose(OpBuilder &builder) {
  return emitOpError("decomposition not implemented yet");
}

FailureOr<SmallVector<Value>> MaxPool2dOp::decompose(OpBuilder &builder) {
  return emitOpError("decomposition not implemented yet");
}

FailureOr<SmallVector<Value>> AvgPool2dOp::decompose(OpBuilder &builder) {
  return emitOpError("decomposition not implemented yet");
}

FailureOr<SmallVector<Value>> GRUCellOp::decompose(OpBuilder &builder) {
  return emitOpError("decomposition not implemented yet");
}

FailureOr<SmallVector<Value>> LSTMCellOp::decompose(OpBuilder &builder) {
  return emitOpError("decomposition not implemented yet");
}

FailureOr<SmallVector<Value>> DropoutOp::decompose(OpBuilder &builder) {
  return emitOpError("decomposition not implemented yet");
}

FailureOr<SmallVector<Value>> CrossEntropyOp::decompose(OpBuilder &builder) {
  return emitOpError("decomposition not implemented yet");
}

FailureOr<SmallVector<Value>> MSEOp::decompose(OpBuilder &builder) {
  return emitOpError("decomposition not implemented yet");
}

FailureOr<SmallVector<Value>> KLDivOp::decompose(OpBuilder &builder) {
  return emitOpError("decomposition not implemented yet");
}
