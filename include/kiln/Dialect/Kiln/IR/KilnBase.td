//===- KilnBase.td - Kiln dialect definition and base classes -*- tablegen -*-===//
//
// The kiln dialect: the dialect itself, the element and tensor type constraints
// every op uses, the enums shared by several ops, and the base op classes.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_BASE_TD
#define KILN_BASE_TD

include "mlir/IR/OpBase.td"
include "mlir/IR/AttrTypeBase.td"
include "mlir/IR/EnumAttr.td"
include "mlir/Interfaces/SideEffectInterfaces.td"
include "mlir/Interfaces/InferTypeOpInterface.td"
include "mlir/Dialect/Quant/IR/QuantBase.td"
include "kiln/Dialect/Kiln/IR/KilnInterfaces.td"

def Kiln_Dialect : Dialect {
  let name = "kiln";
  let cppNamespace = "::mlir::kiln";
  let summary = "Tensor-level graphs of large models: forward, loss and training steps";
  let description = [{
    Kiln graphs are `func.func`s over ranked tensors. Model parameters are
    module-level `kiln.parameter` symbols named as in a state dict and read
    with `kiln.read_param`. Primitive ops (matmul, elementwise math,
    reductions, shape manipulation) are what backends lower; composite ops
    (softmax, layer_norm, attention, ...) are what people and fused kernels
    want, and every composite decomposes into primitives
    (`kiln-decompose`). Every op reports its cost (FLOPs and bytes moved)
    through `CostOpInterface`.
  }];
  let dependentDialects = ["::mlir::tensor::TensorDialect",
                           "::mlir::quant::QuantDialect"];
  let hasConstantMaterializer = 1;
  let useDefaultAttributePrinterParser = 0;
}

//===----------------------------------------------------------------------===//
// Type constraints
//===----------------------------------------------------------------------===//

def Kiln_FloatElement : AnyTypeOf<[F32, BF16, F16]>;
def Kiln_IntElement : AnyTypeOf<[I64, I32]>;
def Kiln_ElementType : AnyTypeOf<[F32, BF16, F16, I64, I32, I16, I8, I1,
                                  F8E4M3FN,
                                  quant_QuantizedType]>;

def Kiln_Tensor : RankedTensorOf<[Kiln_ElementType]>;
def Kiln_FloatTensor : RankedTensorOf<[Kiln_FloatElement]>;
def Kiln_IndexTensor : RankedTensorOf<[Kiln_IntElement]>;
def Kiln_BoolTensor : RankedTensorOf<[I1]>;
def Kiln_NumericTensor : RankedTensorOf<[F32, BF16, F16, I64, I32]>;
def Kiln_MaskInputTensor : RankedTensorOf<[I64, I32, I1]>;
def Kiln_SeedTensor : 0DTensorOf<[I64]>;

//===----------------------------------------------------------------------===//
// Enums
//===----------------------------------------------------------------------===//

def Kiln_InitKind : I32EnumAttr<"InitKind",
    "how a parameter is initialized when no weights are given", [
      I32EnumAttrCase<"zeros", 0>,
      I32EnumAttrCase<"ones", 1>,
      I32EnumAttrCase<"normal", 2>,
      I32EnumAttrCase<"uniform", 3>]> {
  let cppNamespace = "::mlir::kiln";
}

def Kiln_ReduceKind : I32EnumAttr<"ReduceKind", "reduction combiner", [
      I32EnumAttrCase<"sum", 0>,
      I32EnumAttrCase<"mean", 1>,
      I32EnumAttrCase<"max", 2>,
      I32EnumAttrCase<"min", 3>]> {
  let cppNamespace = "::mlir::kiln";
}

def Kiln_ComparePredicate : I32EnumAttr<"ComparePredicate",
    "elementwise comparison", [
      I32EnumAttrCase<"eq", 0>,
      I32EnumAttrCase<"ne", 1>,
      I32EnumAttrCase<"lt", 2>,
      I32EnumAttrCase<"le", 3>,
      I32EnumAttrCase<"gt", 4>,
      I32EnumAttrCase<"ge", 5>]> {
  let cppNamespace = "::mlir::kiln";
}

def Kiln_GeluApproximation : I32EnumAttr<"GeluApproximation",
    "which form of GELU", [
      I32EnumAttrCase<"erf", 0>,
      I32EnumAttrCase<"tanh", 1>]> {
  let cppNamespace = "::mlir::kiln";
}

def Kiln_LossReduction : I32EnumAttr<"LossReduction",
    "how per-element losses are combined", [
      I32EnumAttrCase<"mean", 0>,
      I32EnumAttrCase<"sum", 1>,
      I32EnumAttrCase<"none", 2>,
      I32EnumAttrCase<"batchmean", 3>]> {
  let cppNamespace = "::mlir::kiln";
}

//===----------------------------------------------------------------------===//
// Base op classes
//===----------------------------------------------------------------------===//

class Kiln_Op<string mnemonic, list<Trait> traits = []>
    : Op<Kiln_Dialect, mnemonic, traits>;

/// An op whose result types follow from its operands and attributes. The
/// declared result type may be more static than the inferred one (a `?` may
/// be refined to a size) but never contradict it.
class Kiln_InferredOp<string mnemonic, list<Trait> traits = []>
    : Kiln_Op<mnemonic, !listconcat(traits,
          [Pure, InferTypeOpAdaptorWithIsCompatible])> {
  code kilnExtraClassDefinition = "";
  let extraClassDefinition = [{
    bool $cppClass::isCompatibleReturnTypes(::mlir::TypeRange inferred,
                                            ::mlir::TypeRange actual) {
      return ::mlir::kiln::areCompatibleReturnTypes(inferred, actual);
    }
  }] # kilnExtraClassDefinition;
}

/// A composite op: it decomposes into primitives. Autodiff differentiates
/// its decomposition unless it also states a gradient rule.
class Kiln_CompositeOp<string mnemonic, list<Trait> traits = []>
    : Kiln_InferredOp<mnemonic, !listconcat(traits, [
          DeclareOpInterfaceMethods<Kiln_DecomposableOpInterface>,
          DeclareOpInterfaceMethods<Kiln_CostOpInterface, ["getCost"]>])>;

/// Elementwise op on one operand. `flops` is the FLOP count per element.
class Kiln_UnaryElementwiseOp<string mnemonic, string flops,
                              Type operandType = Kiln_FloatTensor,
                              list<Trait> traits = []>
    : Kiln_InferredOp<mnemonic, !listconcat(traits, [
          Elementwise,
          DeclareOpInterfaceMethods<Kiln_CostOpInterface, ["getCost"]>,
          DeclareOpInterfaceMethods<Kiln_GradientOpInterface>])> {
  let arguments = (ins operandType:$input);
  let results = (outs operandType:$result);
  let assemblyFormat = "$input attr-dict `:` type($input)";
  let kilnExtraClassDefinition = [{
    ::mlir::LogicalResult $cppClass::inferReturnTypes(
        ::mlir::MLIRContext *context, std::optional<::mlir::Location> loc,
        Adaptor adaptor, ::llvm::SmallVectorImpl<::mlir::Type> &types) {
      types.push_back(adaptor.getInput().getType());
      return ::mlir::success();
    }
    ::mlir::kiln::OpCost $cppClass::getCost(
        const ::mlir::kiln::CostOptions &options) {
      return ::mlir::kiln::estimateElementwiseCost(getOperation(), options,
                                                   }] # flops # [{);
    }
  }];
}

/// Elementwise op on two operands with NumPy-style broadcasting.
class Kiln_BinaryElementwiseOp<string mnemonic, string flops,
                               Type operandType = Kiln_NumericTensor,
                               list<Trait> traits = []>
    : Kiln_InferredOp<mnemonic, !listconcat(traits, [
          DeclareOpInterfaceMethods<Kiln_CostOpInterface, ["getCost"]>,
          DeclareOpInterfaceMethods<Kiln_GradientOpInterface>])> {
  let arguments = (ins operandType:$lhs, operandType:$rhs);
  let results = (outs operandType:$result);
  let assemblyFormat =
      "$lhs `,` $rhs attr-dict `:` functional-type(operands, results)";
  let kilnExtraClassDefinition = [{
    ::mlir::LogicalResult $cppClass::inferReturnTypes(
        ::mlir::MLIRContext *context, std::optional<::mlir::Location> loc,
        Adaptor adaptor, ::llvm::SmallVectorImpl<::mlir::Type> &types) {
      return ::mlir::kiln::inferBroadcastElementwiseType(
          loc, adaptor.getLhs().getType(), adaptor.getRhs().getType(),
          types);
    }
    ::mlir::kiln::OpCost $cppClass::getCost(
        const ::mlir::kiln::CostOptions &options) {
      return ::mlir::kiln::estimateElementwiseCost(getOperation(), options,
                                                   }] # flops # [{);
    }
  }];
}

#endif // KILN_BASE_TD
