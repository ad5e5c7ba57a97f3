//===- KilnInterfaces.td - Cross-cutting op rules ------------*- tablegen -*-===//
//
// The rules every kiln op states where it is defined: its cost (used by the
// cost report and fusion heuristics), its decomposition into primitives
// (composites only) and its gradient (used by autodiff).
//
//===----------------------------------------------------------------------===//

#ifndef KILN_INTERFACES_TD
#define KILN_INTERFACES_TD

include "mlir/IR/OpBase.td"

def Kiln_CostOpInterface : OpInterface<"CostOpInterface"> {
  let cppNamespace = "::mlir::kiln";
  let description = [{
    The cost of one execution of the op: floating-point operations and bytes
    read and written, counted from operand and result types. Dynamic
    dimensions are taken as `CostOptions::dynamicDimSize`. The default counts
    no FLOPs and the bytes of every operand and result, which is right for
    pure data movement.
  }];
  let methods = [
    InterfaceMethod<
      /*desc=*/"Returns FLOPs and bytes moved for one execution of the op.",
      /*retTy=*/"::mlir::kiln::OpCost",
      /*methodName=*/"getCost",
      /*args=*/(ins "const ::mlir::kiln::CostOptions &":$options),
      /*methodBody=*/"",
      /*defaultImplementation=*/[{
        return ::mlir::kiln::estimateDataMovementCost($_op.getOperation(),
                                                      options);
      }]>
  ];
}

def Kiln_DecomposableOpInterface : OpInterface<"DecomposableOpInterface"> {
  let cppNamespace = "::mlir::kiln";
  let description = [{
    A composite op that can be rewritten into kiln primitives computing the
    same function (up to floating-point reassociation where a sum is split
    differently, which the op's documentation states).
  }];
  let methods = [
    InterfaceMethod<
      /*desc=*/[{Builds the decomposition at the builder's insertion point
                  and returns the values replacing the op's results.}],
      /*retTy=*/"::mlir::FailureOr<::llvm::SmallVector<::mlir::Value>>",
      /*methodName=*/"decompose",
      /*args=*/(ins "::mlir::OpBuilder &":$builder)>
  ];
}

def Kiln_GradientOpInterface : OpInterface<"GradientOpInterface"> {
  let cppNamespace = "::mlir::kiln";
  let description = [{
    The reverse-mode derivative rule of an op: given the gradients of the
    op's results (null for a result nothing depends on), build the gradients
    of its operands (null for a non-differentiable operand, such as integer
    indices). `kiln-autodiff` composes these rules.
  }];
  let methods = [
    InterfaceMethod<
      /*desc=*/[{Builds the operand gradients at the builder's insertion
                  point.}],
      /*retTy=*/"::mlir::FailureOr<::llvm::SmallVector<::mlir::Value>>",
      /*methodName=*/"buildGradient",
      /*args=*/(ins "::mlir::OpBuilder &":$builder,
                    "::mlir::ValueRange":$resultGradients)>
  ];
}

#endif // KILN_INTERFACES_TD
