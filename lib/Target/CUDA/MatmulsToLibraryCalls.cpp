//===- MatmulsToLibraryCalls.cpp - matmuls to cuBLASLt calls --------------===//
//
// f32, f16 and bf16 contractions on buffers, and int8 x int8 -> int32 ones
// in the layout cuBLASLt's int8 kernels take, become kiln_gpu_gemm calls
// (cuBLASLt through the runtime; see Passes.td).
//
//===----------------------------------------------------------------------===//

#include "Utils.h"
#include "kiln/Target/CUDA/Passes.h"

#include "kiln/Runtime/GpuApi.h"
#include "kiln/Target/Common/Pipelines.h"

namespace mlir::kiln {
#define GEN_PASS_DEF_MATMULSTOLIBRARYCALLSPASS
#include "kiln/Target/CUDA/Passes.h.inc"
} // namespace mlir::kiln

using namespace mlir;
using namespace mlir::kiln;
using namespace mlir::kiln::cuda;

namespace {

constexpr llvm::StringLiteral kGemmFunction = "kiln_gpu_gemm";
constexpr llvm::StringLiteral kScaledGemmFunction = "kiln_gpu_gemm_scaled";

/// Rewrites each f32, f16 or bf16 (batch..., m, k, n) contraction on
/// buffers into calls
/// of kiln_gpu_gemm: one call per index of the batch dims but the last,
/// which becomes the call's strided batch. An operand whose layout cuBLASLt
/// cannot take (no unit stride along either of its matrix dims, or strides
/// unknown at compile time) leaves the op to the generated kernels.
struct MatmulsToLibraryCallsPass
    : kiln::impl::MatmulsToLibraryCallsPassBase<MatmulsToLibraryCallsPass> {
  /// How one operand enters the call: its memref, the positions of its two
  /// matrix dims in the memref and whether it is stored transposed.
  struct Operand {
    Value memref;
    AffineMap map;
    int64_t rowPos = -1, colPos = -1; // memref dims of (m,k), (k,n) or (m,n)
    bool transposed = false;
  };

  /// Finds where loop dims `row` and `col` sit in `map` and picks the
  /// layout: unit stride along `col` (plain) or along `row` (transposed).
  static std::optional<Operand> classify(Value memref, AffineMap map,
                                         unsigned row, unsigned col) {
    auto type = dyn_cast<MemRefType>(memref.getType());
    if (!type)
      return std::nullopt;
    Operand operand{memref, map};
    for (unsigned p = 0; p < map.getNumResults(); ++p) {
      if (map.getResult(p) == getAffineDimExpr(row, map.getContext()))
        operand.rowPos = p;
      if (map.getResult(p) == getAffineDimExpr(col, map.getContext()))
        operand.colPos = p;
    }
    if (operand.rowPos < 0 || operand.colPos < 0)
      return std::nullopt;
    SmallVector<int64_t> strides;
    int64_t offset;
    if (failed(type.getStridesAndOffset(strides, offset)))
      return std::nullopt;
    if (strides[operand.colPos] == 1)
      return operand;
    if (strides[operand.rowPos] == 1) {
      operand.transposed = true;
      return operand;
    }
    return std::nullopt;
  }

  /// Whether `op`'s body is `out + sext(lhs) * sext(rhs)` in i32 (what
  /// kiln.integer_matmul lowers to): zero-extended codes would be another
  /// product than cuBLASLt's signed one.
  static bool isSignedInt8Product(linalg::GenericOp op) {
    Block *body = op.getBody();
    auto yield = cast<linalg::YieldOp>(body->getTerminator());
    auto add = yield.getOperand(0).getDefiningOp<arith::AddIOp>();
    if (!add)
      return false;
    Value out = body->getArgument(2);
    Value product = add.getLhs() == out ? add.getRhs() : add.getLhs();
    if (!llvm::is_contained(add->getOperands(), out))
      return false;
    auto mul = product.getDefiningOp<arith::MulIOp>();
    if (!mul)
      return false;
    SmallVector<Value, 2> extended;
    for (Value factor : mul->getOperands()) {
      auto ext = factor.getDefiningOp<arith::ExtSIOp>();
      if (!ext)
        return false;
      extended.push_back(ext.getIn());
    }
    Value lhs = body->getArgument(0), rhs = body->getArgument(1);
    return (extended[0] == lhs && extended[1] == rhs) ||
           (extended[0] == rhs && extended[1] == lhs);
  }

  /// The KILN_GPU_* type of a contraction cuBLASLt takes: both inputs of
  /// one type (f32, f16, bf16), the result of that type or f32 (kiln's
  /// narrow matmuls accumulate in f32 and round afterwards); or signed i8
  /// inputs into an i32 result.
  static std::optional<int32_t> gemmType(linalg::GenericOp op) {
    Type result = getElementTypeOrSelf(op.getDpsInits()[0].getType());
    Type input = getElementTypeOrSelf(op.getDpsInputs()[0].getType());
    if (getElementTypeOrSelf(op.getDpsInputs()[1].getType()) != input)
      return std::nullopt;
    if (input.isInteger(8) && result.isInteger(32))
      return isSignedInt8Product(op) ? std::optional<int32_t>(KILN_GPU_I8_I32)
                                     : std::nullopt;
    if (result == input) {
      if (input.isF32())
        return KILN_GPU_F32;
      if (input.isF16())
        return KILN_GPU_F16;
      if (input.isBF16())
        return KILN_GPU_BF16;
    } else if (result.isF32()) {
      if (input.isF16())
        return KILN_GPU_F16_F32;
      if (input.isBF16())
        return KILN_GPU_BF16_F32;
    }
    return std::nullopt;
  }

  /// Whether `op` is what kiln.scaled_fp8_matmul lowers to on buffers: a
  /// (batch..., m, k, n) reduction of two f8E4M3FN operands and two
  /// one-element f32 scales (read through constant maps) into an f32
  /// output. Its body is the lowering's own (f8E4M3FN buffers come from
  /// kiln's e4m3 ops only).
  static bool isScaledFp8Contraction(linalg::GenericOp op) {
    if (!op.hasPureBufferSemantics() || op.getNumDpsInputs() != 4 ||
        op.getNumDpsInits() != 1)
      return false;
    auto iterators = op.getIteratorTypesArray();
    int64_t loops = iterators.size();
    if (loops < 3)
      return false;
    for (int64_t i = 0; i < loops; ++i)
      if (iterators[i] != (i == loops - 2 ? utils::IteratorType::reduction
                                          : utils::IteratorType::parallel))
        return false;
    auto inputs = op.getDpsInputs();
    for (int i = 0; i < 2; ++i)
      if (!isa<Float8E4M3FNType>(getElementTypeOrSelf(inputs[i].getType())))
        return false;
    for (int i = 2; i < 4; ++i) {
      auto type = dyn_cast<MemRefType>(inputs[i].getType());
      AffineMap map = op.getMatchingIndexingMap(op.getDpsInputOperand(i));
      if (!type || !type.getElementType().isF32() || type.getRank() != 1 ||
          type.getDimSize(0) != 1 || map.getNumResults() != 1 ||
          map.getResult(0) != getAffineConstantExpr(0, op.getContext()))
        return false;
    }
    if (!getElementTypeOrSelf(op.getDpsInits()[0].getType()).isF32())
      return false;
    // An accumulation into the output of the lowering's term, out +
    // (f(lhs) · g(rhs)) · (s_l · s_r) (either order in each product), with
    // f and g computed from one code each (the decoding): a reduction of
    // another form (a row sum, a product without the scales) is not the
    // gemm cuBLASLt would compute.
    Block *body = op.getBody();
    auto yield = cast<linalg::YieldOp>(body->getTerminator());
    auto add = yield.getOperand(0).getDefiningOp<arith::AddFOp>();
    Value acc = body->getArgument(4);
    if (!add || !llvm::is_contained(add->getOperands(), acc))
      return false;
    auto term = (add.getLhs() == acc ? add.getRhs() : add.getLhs())
                    .getDefiningOp<arith::MulFOp>();
    if (!term)
      return false;
    auto isProductOf = [](Value value, auto matchFirst, auto matchSecond) {
      auto mul = value.getDefiningOp<arith::MulFOp>();
      return mul && ((matchFirst(mul.getLhs()) && matchSecond(mul.getRhs())) ||
                     (matchFirst(mul.getRhs()) && matchSecond(mul.getLhs())));
    };
    auto isArg = [&](unsigned index) {
      return [=](Value value) { return value == body->getArgument(index); };
    };
    auto fromArg = [&](unsigned index) {
      return [=](Value value) { return computedFromOnly(value, body, index); };
    };
    auto isScales = [&](Value value) {
      return isProductOf(value, isArg(2), isArg(3));
    };
    auto isCodes = [&](Value value) {
      return isProductOf(value, fromArg(0), fromArg(1));
    };
    return isProductOf(term.getResult(), isCodes, isScales);
  }

  /// Whether `value` is computed, by ops without regions, from block
  /// argument `index` of `body` and constants only (and uses it).
  static bool computedFromOnly(Value value, Block *body, unsigned index) {
    SmallVector<Value> work = {value};
    llvm::SmallPtrSet<Operation *, 16> seen;
    bool uses = false;
    while (!work.empty()) {
      Value v = work.pop_back_val();
      if (auto arg = dyn_cast<BlockArgument>(v)) {
        if (arg.getOwner() != body || arg.getArgNumber() != index)
          return false;
        uses = true;
        continue;
      }
      Operation *def = v.getDefiningOp();
      if (def->getNumRegions() != 0)
        return false;
      if (!seen.insert(def).second)
        continue;
      if (def->getBlock() != body && def->getNumOperands() != 0)
        return false;
      llvm::append_range(work, def->getOperands());
    }
    return uses;
  }

  void runOnOperation() final {
    ModuleOp module = getOperation();
    SmallVector<linalg::GenericOp> contractions;
    module.walk([&](linalg::GenericOp op) {
      if ((op.hasPureBufferSemantics() &&
           isKilnContraction(op, /*requireF32=*/false) && gemmType(op)) ||
          isScaledFp8Contraction(op))
        contractions.push_back(op);
    });
    if (contractions.empty())
      return;
    for (linalg::GenericOp op : contractions)
      rewrite(op);
  }

  /// Declares kiln_gpu_gemm (or, `scaled`, kiln_gpu_gemm_scaled with its
  /// two scale pointers) in the module, once, when a call is made.
  void declareGemm(bool scaled) {
    ModuleOp module = getOperation();
    StringRef name = scaled ? kScaledGemmFunction : kGemmFunction;
    if (module.lookupSymbol<func::FuncOp>(name))
      return;
    OpBuilder builder(&getContext());
    Type i32 = builder.getI32Type(), i64 = builder.getI64Type(),
         f32 = builder.getF32Type();
    builder.setInsertionPointToEnd(module.getBody());
    SmallVector<Type> args = {i32, i32, i32, i64, i64, i64, i64, i64, i64,
                              i64, i64, i64, i64, i64, i64, i64, f32, f32};
    if (scaled)
      args.append({i64, i64});
    auto decl = func::FuncOp::create(builder, module.getLoc(), name,
                                     builder.getFunctionType(args, {}));
    decl.setPrivate();
  }

  /// The linalg.fill of zero into `output` that directly precedes `op`
  /// in its block, with no other use of `output` in between, if any.
  static linalg::FillOp zeroFillBefore(linalg::GenericOp op, Value output) {
    for (Operation *prev = op->getPrevNode(); prev;
         prev = prev->getPrevNode()) {
      if (auto fill = dyn_cast<linalg::FillOp>(prev)) {
        if (fill.getDpsInits()[0] != output)
          continue;
        if (!fill.hasPureBufferSemantics() ||
            !(matchPattern(fill.getDpsInputs()[0], m_AnyZeroFloat()) ||
              matchPattern(fill.getDpsInputs()[0], m_Zero())))
          return nullptr;
        return fill;
      }
      // Any other op touching the output (or anything we cannot see
      // through) ends the search.
      if (llvm::is_contained(prev->getOperands(), output) ||
          prev->getNumRegions() != 0)
        return nullptr;
    }
    return nullptr;
  }

  /// A number every value of the stride of memref dim `pos` (or of the
  /// offset, for pos -1) is a multiple of: the static value, or for a
  /// dynamic stride of a contiguous (identity layout) memref the product of
  /// the static sizes inside it; 1 when nothing is known. (0 is a multiple
  /// of everything: a static 0 returns 0.)
  static int64_t knownDivisor(MemRefType type, int64_t pos) {
    SmallVector<int64_t> strides;
    int64_t offset;
    if (failed(type.getStridesAndOffset(strides, offset)))
      return 1;
    int64_t value = pos < 0 ? offset : strides[pos];
    if (!ShapedType::isDynamic(value))
      return value;
    if (pos < 0 || !type.getLayout().isIdentity())
      return 1;
    int64_t product = 1;
    for (int64_t d = pos + 1; d < type.getRank(); ++d)
      if (!type.isDynamicDim(d))
        product *= type.getDimSize(d);
    return product;
  }

  /// Whether the contraction meets the layout rules of cuBLASLt's
  /// integer or fp8 kernels: "TN" (a not transposed, b transposed), n and
  /// k static multiples of `dims`, and on every operand the offset and
  /// every stride but the unit one (the leading dim and the batch strides)
  /// a multiple of `inputs` elements for a and b, of `output` elements for
  /// c.
  static bool fitsLtLayout(linalg::GenericOp op, const Operand &a,
                           const Operand &b, const Operand &c, int64_t dims,
                           int64_t inputs, int64_t output) {
    if (a.transposed || !b.transposed)
      return false;
    SmallVector<int64_t> ranges = op.getStaticLoopRanges();
    int64_t loops = ranges.size();
    int64_t n = ranges[loops - 1], k = ranges[loops - 2];
    if (ShapedType::isDynamic(n) || ShapedType::isDynamic(k) || n % dims != 0 ||
        k % dims != 0)
      return false;
    for (const Operand *operand : {&a, &b, &c}) {
      auto type = cast<MemRefType>(operand->memref.getType());
      int64_t multiple = operand == &c ? output : inputs;
      for (int64_t pos = -1; pos < type.getRank(); ++pos) {
        if (pos == (operand->transposed ? operand->rowPos : operand->colPos))
          continue;
        if (knownDivisor(type, pos) % multiple != 0)
          return false;
      }
    }
    return true;
  }

  /// Whether an int8 contraction meets cuBLASLt's int8 (IMMA) kernels'
  /// rules for the regular column-major order, which the row-major call
  /// becomes with A and B swapped (CublasLt.cpp): "TN" (its A, our rhs,
  /// transposed: our rhs stored [n, k], transB; its B, our lhs, not:
  /// transA = 0), its m and k (our n and k) multiples of 4, every leading
  /// dim a multiple of 4 and every pointer 4-byte aligned (offsets and
  /// batch strides multiples of 4 bytes). Shapes that miss one stay
  /// generated kernels.
  static bool fitsInt8Kernels(linalg::GenericOp op, const Operand &a,
                              const Operand &b, const Operand &c) {
    // i8 and i32 elements are 1 and 4 bytes, so the i32 output is aligned
    // whatever they are, but cuBLASLt wants its ld a multiple of 4 too.
    return fitsLtLayout(op, a, b, c, /*dims=*/4, /*inputs=*/4, /*output=*/4);
  }

  /// Whether an fp8 contraction meets cuBLASLt's fp8 kernels' rules for
  /// the regular order: "TN" as for int8, its m and k (our n and k) static
  /// multiples of 16, the e4m3 operands' offsets, leading dims and batch
  /// strides multiples of 16 elements (bytes), the f32 output's multiples
  /// of 4 (16 bytes; buffers are at least 16-byte aligned). Shapes that
  /// miss one stay generated kernels (kiln-quantize only makes fp8 layers
  /// of in and out multiples of 16, so this is for hand-written IR).
  static bool fitsFp8Kernels(linalg::GenericOp op, const Operand &a,
                             const Operand &b, const Operand &c) {
    return fitsLtLayout(op, a, b, c, /*dims=*/16, /*inputs=*/16, /*output=*/4);
  }

  void rewrite(linalg::GenericOp op) {
    unsigned loops = op.getNumLoops();
    unsigned batch = loops - 3, m = loops - 3, k = loops - 2, n = loops - 1;
    bool fp8 = isScaledFp8Contraction(op);
    auto maps = op.getIndexingMapsArray();
    auto a = classify(op.getDpsInputs()[0], maps[0], m, k);
    auto b = classify(op.getDpsInputs()[1], maps[1], k, n);
    auto c = classify(op.getDpsInits()[0],
                      op.getMatchingIndexingMap(op.getDpsInitOperand(0)), m, n);
    // The result must be written row-major (cuBLASLt's transposed output
    // is not offered through kiln_gpu_gemm).
    if (!a || !b || !c || c->transposed)
      return;
    int32_t dtype = fp8 ? KILN_GPU_E4M3_F32 : *gemmType(op);
    if (dtype == KILN_GPU_I8_I32 && !fitsInt8Kernels(op, *a, *b, *c))
      return;
    if (fp8 && !fitsFp8Kernels(op, *a, *b, *c))
      return;
    // cuBLASLt's fp8 product overwrites its output here (beta 0): an
    // output that is not freshly zeroed keeps the generated kernel.
    if (fp8 && !zeroFillBefore(op, c->memref))
      return;
    // Where each batch loop dim sits in the output (the output of a
    // contraction has every parallel dim, in any order).
    SmallVector<unsigned> outputPos;
    for (unsigned d = 0; d < batch; ++d) {
      std::optional<unsigned> pos = c->map.getResultPosition(
          getAffineDimExpr(d, op.getContext()));
      if (!pos)
        return;
      outputPos.push_back(*pos);
    }
    declareGemm(fp8);
    // Before any op is added in front of `op`.
    linalg::FillOp zeroFill = zeroFillBefore(op, c->memref);

    OpBuilder builder(op);
    Location loc = op.getLoc();
    auto index = [&](int64_t v) {
      return arith::ConstantIndexOp::create(builder, loc, v).getResult();
    };
    auto toI64 = [&](Value v) {
      return arith::IndexCastOp::create(builder, loc, builder.getI64Type(), v)
          .getResult();
    };
    struct Meta {
      Value aligned, offset;
      SmallVector<Value> sizes, strides;
    };
    auto metadata = [&](Operand &operand) {
      auto meta = memref::ExtractStridedMetadataOp::create(builder, loc,
                                                           operand.memref);
      Meta result;
      result.aligned = memref::ExtractAlignedPointerAsIndexOp::create(
          builder, loc, meta.getBaseBuffer());
      result.offset = meta.getOffset();
      result.sizes.assign(meta.getSizes().begin(), meta.getSizes().end());
      result.strides.assign(meta.getStrides().begin(), meta.getStrides().end());
      return result;
    };
    Meta ma = metadata(*a), mb = metadata(*b), mc = metadata(*c);
    // The stride of loop dim `d` in an operand (0 when the operand does not
    // vary along it: broadcast).
    auto loopStride = [&](Operand &operand, Meta &meta, unsigned d) -> Value {
      for (unsigned p = 0; p < operand.map.getNumResults(); ++p)
        if (operand.map.getResult(p) == getAffineDimExpr(d, op.getContext()))
          return meta.strides[p];
      return index(0);
    };
    auto leading = [&](Operand &operand, Meta &meta) {
      // Row stride of the stored matrix: along the row dim when plain,
      // along the column dim when stored transposed.
      return meta.strides[operand.transposed ? operand.colPos : operand.rowPos];
    };
    Value sizeM = mc.sizes[c->rowPos], sizeN = mc.sizes[c->colPos];
    Value sizeK = ma.sizes[a->colPos];
    Value batchCount = index(1);
    Value strideA = index(0), strideB = index(0), strideC = index(0);
    if (batch > 0) {
      unsigned last = batch - 1;
      batchCount = mc.sizes[outputPos[last]];
      strideA = loopStride(*a, ma, last);
      strideB = loopStride(*b, mb, last);
      strideC = loopStride(*c, mc, last);
    }

    // Host loops over the outer batch dims.
    SmallVector<Value> ivs;
    for (unsigned d = 0; d + 1 < batch; ++d) {
      auto loop = scf::ForOp::create(
          builder, loc, index(0), mc.sizes[outputPos[d]], index(1));
      builder.setInsertionPoint(loop.getBody()->getTerminator());
      ivs.push_back(loop.getInductionVar());
    }
    auto pointer = [&](Operand &operand, Meta &meta) {
      Value offset = meta.offset;
      for (unsigned d = 0; d < ivs.size(); ++d)
        offset = arith::AddIOp::create(
            builder, loc, offset,
            arith::MulIOp::create(builder, loc, ivs[d],
                                  loopStride(operand, meta, d)));
      int64_t elementBytes = getElementTypeOrSelf(operand.memref.getType())
                                 .getIntOrFloatBitWidth() /
                             8;
      Value bytes =
          arith::MulIOp::create(builder, loc, offset, index(elementBytes));
      return toI64(arith::AddIOp::create(builder, loc, meta.aligned, bytes));
    };
    auto i32 = [&](int64_t v) {
      return arith::ConstantIntOp::create(builder, loc, builder.getI32Type(), v)
          .getResult();
    };
    Value one = arith::ConstantFloatOp::create(
        builder, loc, builder.getF32Type(), APFloat(1.0f));
    // The generic accumulates into its output. When that output was just
    // zero-filled, the fill goes and the product overwrites (beta 0);
    // otherwise it accumulates (beta 1).
    Value beta = one;
    if (zeroFill) {
      beta = arith::ConstantFloatOp::create(builder, loc, builder.getF32Type(),
                                            APFloat(0.0f));
      zeroFill.erase();
    }
    SmallVector<Value> args = {i32(dtype), // a KILN_GPU_* type
                               i32(a->transposed),
                               i32(b->transposed),
                               toI64(batchCount),
                               toI64(sizeM),
                               toI64(sizeN),
                               toI64(sizeK),
                               pointer(*a, ma),
                               toI64(leading(*a, ma)),
                               toI64(strideA),
                               pointer(*b, mb),
                               toI64(leading(*b, mb)),
                               toI64(strideB),
                               pointer(*c, mc),
                               toI64(leading(*c, mc)),
                               toI64(strideC),
                               one,
                               beta};
    if (fp8) {
      // The scales' addresses (one f32 each, device memory).
      for (Value scale : {op.getDpsInputs()[2], op.getDpsInputs()[3]}) {
        auto meta =
            memref::ExtractStridedMetadataOp::create(builder, loc, scale);
        Value aligned = memref::ExtractAlignedPointerAsIndexOp::create(
            builder, loc, meta.getBaseBuffer());
        Value bytes =
            arith::MulIOp::create(builder, loc, meta.getOffset(), index(4));
        args.push_back(
            toI64(arith::AddIOp::create(builder, loc, aligned, bytes)));
      }
    }
    func::CallOp::create(builder, loc,
                         fp8 ? kScaledGemmFunction : kGemmFunction, TypeRange{},
                         args);
    op.erase();
  }
};

} // namespace
