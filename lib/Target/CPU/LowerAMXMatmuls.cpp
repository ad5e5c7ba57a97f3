//===- LowerAMXMatmuls.cpp - bf16 matmuls on AMX tiles --------------------===//
//
// A bf16 matmul reaches the CPU backend as a buffer-form contraction: bf16
// lhs [..., M, K] and rhs [K, N] (or [N, K], a weight read transposed),
// each widened to f32, multiplied and summed into an f32 [..., M, N] output
// (convert-kiln-to-linalg accumulates narrow floats in f32 and rounds once,
// later). AMX multiplies such operands a tile at a time: `tdpbf16ps` adds
// to a 16 x 16 f32 tile the products of a 16 x 32 bf16 lhs tile (16 rows,
// 32 steps of k) with a 16 x 32 bf16 rhs tile in the "VNNI" layout (16
// pairs of k, each holding the 2 values of 16 columns side by side). Eight
// tile registers hold a 32 x 32 block of sums (4 tiles), two lhs tiles and
// two rhs tiles.
//
// So the kernel spreads column panels over threads; each packs its rhs
// columns into pairs of k ([Kp/2, panel] 32-bit words of two bf16: for a
// transposed rhs a transpose of words, for a row-major one an interleave
// of two rows), then runs 32-row blocks of the lhs through it, 32 columns
// at a time, with the block's tiles loaded straight from the lhs (a copy
// zero-padded to 32 rows and to a multiple of 32 in k where the lhs is
// ragged). Each block's sums go through a small f32 buffer into the
// output (added, as the contraction accumulates). The products are exact
// in f32 and summed in f32, as the plain loops sum them, though in another
// order.
//
// Tile instructions fault until the process asks the kernel for the AMX
// state (arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA)); the pass
// adds a constructor that asks when module.so is loaded, and the runtime
// asks again (and reports a refusal) for artifacts whose manifest says
// bf16_dot amx.
//
//===----------------------------------------------------------------------===//

#include "MatmulRows.h"
#include "kiln/Target/CPU/Passes.h"
#include "kiln/Target/Common/Pipelines.h"

#include "mlir/Dialect/AMX/AMXDialect.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Utils/StructuredOpsUtils.h"
#include "mlir/Dialect/X86Vector/X86VectorDialect.h"
#include "mlir/IR/Matchers.h"
#include "mlir/IR/PatternMatch.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"
#include "mlir/Interfaces/ViewLikeInterface.h"

namespace mlir::kiln {
#define GEN_PASS_DEF_LOWERAMXMATMULSPASS
#include "kiln/Target/CPU/Passes.h.inc"
} // namespace mlir::kiln

using namespace mlir;

namespace {
/// Rows of a tile, and 32-bit words (pairs of bf16) in a tile row.
constexpr int64_t kTileRows = 16;
/// Rows and columns of the block of sums four tiles hold; also the steps of
/// k an lhs tile covers.
constexpr int64_t kBlock = 32;
/// Rows of a register tile of the avx512 bf16 kernel (8 rows x 2 zmm of
/// f32 sums: 16 accumulators, 2 rhs vectors; the lhs pair is broadcast
/// from memory), and f32 lanes of a zmm.
constexpr int64_t kRegisterRows = 8;
constexpr int64_t kLanes = 16;

/// The operands of a matmul this pass lowers.
struct TileMatmul {
  Value lhs, rhs, out;
  int64_t k = 0, n = 0;
  /// i8 x i8 -> i32 sums (tdpbssd) rather than bf16 x bf16 -> f32.
  bool integer = false;
  /// rhs is [N, K] (read transposed) rather than [K, N].
  bool rhsTransposed = false;
  /// rhs holds f32 values the kernel rounds to bf16 as it packs them (an
  /// f32 weight whose cast to bf16 only this matmul read).
  bool rhsFromF32 = false;
  /// lhs is [K, M] (a transposed lhs read from the transpose's source:
  /// packed into zero-padded [M', K'] rows before the panels run).
  bool lhsTransposed = false;
  /// The output was zero-filled just before: sums are stored, not added.
  bool overwrite = false;
  /// rhs is the weight stored as panels of pairs ([P, K / 2, panel, 2],
  /// kiln-pack-weights): each panel is read where it lies, not packed.
  bool rhsStoredPairs = false;
};

/// Whether `type` is a memref with contiguous rows a static stride apart
/// (the stride a tile load takes).
bool hasStaticContiguousRows(MemRefType type) {
  SmallVector<int64_t> strides;
  int64_t offset;
  return succeeded(type.getStridesAndOffset(strides, offset)) &&
         strides.size() >= 2 && strides.back() == 1 &&
         !ShapedType::isDynamic(strides[strides.size() - 2]);
}

/// `op` as a bf16 matmul, if it is one: buffers, one reduction loop k and
/// parallel loops; lhs (m..., k), output (m..., n) with the same leading
/// dims in order, rhs (k, n) or (n, k); bf16 operands widened to f32 and
/// summed into f32 (extf, extf, mulf, addf); static K and N; lhs and output
/// whose leading dims collapse into one, with contiguous rows.
std::optional<TileMatmul> matchTileMatmul(linalg::GenericOp op, bool bf16,
                                          bool int8) {
  if (!op.hasPureBufferSemantics() || op.getNumDpsInputs() != 2 ||
      op.getNumDpsInits() != 1 || op.getNumLoops() < 3)
    return std::nullopt;
  auto lhs = dyn_cast<MemRefType>(op.getDpsInputs()[0].getType());
  auto rhs = dyn_cast<MemRefType>(op.getDpsInputs()[1].getType());
  auto out = dyn_cast<MemRefType>(op.getDpsInits()[0].getType());
  if (!lhs || !rhs || !out || lhs.getRank() != out.getRank())
    return std::nullopt;
  // A bf16 weight stored as panels of pairs ([P, K / 2, w, 2], read through
  // (n floordiv w, k floordiv 2, n mod w, k mod 2)), or a plain [K, N] /
  // [N, K] rhs.
  bool storedPairs = rhs.getRank() == 4;
  if (!storedPairs && rhs.getRank() != 2)
    return std::nullopt;
  Builder builder(op.getContext());
  auto types = [&](Type operand, Type sum) {
    return lhs.getElementType() == operand && rhs.getElementType() == operand &&
           out.getElementType() == sum;
  };
  bool integer =
      int8 && types(builder.getIntegerType(8), builder.getIntegerType(32));
  if (!integer && !(bf16 && types(builder.getBF16Type(), builder.getF32Type())))
    return std::nullopt;
  int64_t loops = op.getNumLoops();
  auto iterators = op.getIteratorTypesArray();
  if (llvm::count(iterators, utils::IteratorType::reduction) != 1)
    return std::nullopt;
  int64_t k =
      llvm::find(iterators, utils::IteratorType::reduction) - iterators.begin();
  SmallVector<AffineMap> maps = op.getIndexingMapsArray();
  auto dimsOf = [](AffineMap map) -> std::optional<SmallVector<int64_t>> {
    SmallVector<int64_t> dims;
    for (AffineExpr e : map.getResults()) {
      auto dim = dyn_cast<AffineDimExpr>(e);
      if (!dim)
        return std::nullopt;
      dims.push_back(dim.getPosition());
    }
    return dims;
  };
  auto lhsDims = dimsOf(maps[0]), outDims = dimsOf(maps[2]);
  if (!lhsDims || !outDims || lhsDims->back() != k)
    return std::nullopt;
  int64_t n = outDims->back();
  std::optional<SmallVector<int64_t>> rhsDims;
  if (storedPairs) {
    if (integer || !rhs.hasStaticShape() || !rhs.getLayout().isIdentity() ||
        rhs.getDimSize(3) != 2 ||
        maps[1] != kiln::storedPairsMap(op.getContext(), loops, k, n,
                                        rhs.getDimSize(2)))
      return std::nullopt;
    rhsDims = SmallVector<int64_t>{k, n};
  } else {
    rhsDims = dimsOf(maps[1]);
  }
  if (!rhsDims)
    return std::nullopt;
  if (n == k ||
      ArrayRef(*lhsDims).drop_back() != ArrayRef(*outDims).drop_back())
    return std::nullopt;
  bool transposed;
  if (*rhsDims == SmallVector<int64_t>{k, n})
    transposed = false;
  else if (*rhsDims == SmallVector<int64_t>{n, k})
    transposed = true;
  else
    return std::nullopt;
  // int8 words of 4 codes come only from a transposed rhs ([N, K]: the
  // codes kiln-quantize stores). Fewer rows than a tile known at compile
  // time (a decoding step) are left to the VNNI kernel, which does not pad
  // them to 32.
  if (integer && !transposed)
    return std::nullopt;
  if (integer && lhs.hasStaticShape() && lhs.getShape().back() > 0 &&
      lhs.getNumElements() / lhs.getShape().back() < kTileRows)
    return std::nullopt;
  // Every loop appears: m... in lhs and output, n, k.
  if (static_cast<int64_t>(outDims->size()) + 1 != loops)
    return std::nullopt;
  if (!rhs.hasStaticShape() || !hasStaticContiguousRows(rhs) ||
      !hasStaticContiguousRows(lhs) || !hasStaticContiguousRows(out) ||
      ShapedType::isDynamic(lhs.getShape().back()))
    return std::nullopt;
  if (!kiln::rowsCollapse(lhs, out))
    return std::nullopt;
  // The body: two extensions of the operands (extf bf16 -> f32, or extsi
  // i8 -> i32), a multiply and an add with the accumulator.
  Block &body = op.getRegion().front();
  int extensions = 0, multiplies = 0, adds = 0;
  for (Operation &inner : body.without_terminator()) {
    if (auto ext = dyn_cast<arith::ExtFOp>(inner); ext && !integer) {
      extensions += ext.getIn().getType().isBF16();
      continue;
    }
    if (auto ext = dyn_cast<arith::ExtSIOp>(inner); ext && integer) {
      extensions += ext.getIn().getType().isInteger(8);
      continue;
    }
    if (integer ? isa<arith::MulIOp>(inner) : isa<arith::MulFOp>(inner))
      ++multiplies;
    else if (integer ? isa<arith::AddIOp>(inner) : isa<arith::AddFOp>(inner))
      ++adds;
    else
      return std::nullopt;
  }
  if (extensions != 2 || multiplies != 1 || adds != 1 ||
      (!storedPairs && !linalg::isaContractionOpInterface(op)) ||
      (storedPairs && !kiln::isWidenedSumOfProducts(body)))
    return std::nullopt;
  int64_t kSize = lhs.getShape().back();
  int64_t nSize;
  if (storedPairs) {
    // Whole tiles of k (the stored rows are the kernel's pairs as they
    // are), and the output's columns within the panels.
    nSize = out.getShape().back();
    if (2 * rhs.getDimSize(1) != kSize || kSize % (2 * kTileRows) != 0 ||
        ShapedType::isDynamic(nSize) ||
        nSize > rhs.getDimSize(0) * rhs.getDimSize(2))
      return std::nullopt;
  } else {
    nSize = transposed ? rhs.getDimSize(0) : rhs.getDimSize(1);
    if (rhs.getDimSize(transposed ? 1 : 0) != kSize)
      return std::nullopt;
  }
  TileMatmul matmul{op.getDpsInputs()[0],
                    op.getDpsInputs()[1],
                    op.getDpsInits()[0],
                    kSize,
                    nSize,
                    integer};
  matmul.rhsTransposed = transposed;
  matmul.rhsStoredPairs = storedPairs;
  return matmul;
}

/// Whether `op` overwrites all of `buffer` without reading it: a transpose
/// of the last two dims into it.
bool isTransposeInto(Operation *op, Value buffer) {
  auto transpose = dyn_cast<linalg::TransposeOp>(op);
  return transpose && transpose.getInit() == buffer &&
         transpose.getPermutation() == ArrayRef<int64_t>{1, 0};
}

/// Whether `op` is an elementwise cast of an f32 buffer into all of `rhs`
/// (identity maps, a body of one arith.truncf), from a static f32 buffer
/// with contiguous rows.
bool isCastInto(Operation *op, Value rhs) {
  auto cast = dyn_cast<linalg::GenericOp>(op);
  if (!cast || cast.getNumDpsInputs() != 1 || cast.getNumDpsInits() != 1 ||
      cast.getDpsInits()[0] != rhs || !cast.hasPureBufferSemantics() ||
      !llvm::all_of(cast.getIndexingMapsArray(),
                    [](AffineMap map) { return map.isIdentity(); }))
    return false;
  Block &body = cast.getRegion().front();
  auto truncf = dyn_cast<arith::TruncFOp>(body.front());
  if (!truncf || truncf.getRoundingmodeAttr() ||
      truncf->getNextNode() != body.getTerminator() ||
      truncf.getIn() != body.getArgument(0) ||
      body.getTerminator()->getOperand(0) != truncf.getResult())
    return false;
  auto source = dyn_cast<MemRefType>(cast.getDpsInputs()[0].getType());
  return source && source.getElementType().isF32() && source.hasStaticShape() &&
         hasStaticContiguousRows(source);
}

/// Whether `op` is a copy the kernel can read through: a transpose or a
/// cast that overwrites all of `buffer`.
bool isCopyInto(Operation *op, Value buffer) {
  return isTransposeInto(op, buffer) || isCastInto(op, buffer);
}

/// The copy (isCopyInto) that wrote the buffer `copy` just before the
/// matmul `op` reads it, if `op` is the only reader of what it wrote: every
/// use of the buffer is in `op`'s block, and the use after `op`, if any,
/// overwrites it again with a copy (bufferization may give every layer's
/// copy one buffer).
Operation *soleWriterBefore(Value copy, Operation *op) {
  // The copy's buffer lives and dies in `op`'s block (no loop carries it),
  // is seen through no view, and `op` reads it once.
  auto alloc = copy.getDefiningOp<memref::AllocOp>();
  if (!alloc || alloc->getBlock() != op->getBlock() ||
      llvm::count(op->getOperands(), copy) != 1)
    return nullptr;
  Operation *before = nullptr, *after = nullptr;
  for (Operation *user : alloc->getUsers()) {
    if (user == op)
      continue;
    if (user->getBlock() != op->getBlock() || isa<ViewLikeOpInterface>(user))
      return nullptr;
    if (user->isBeforeInBlock(op)) {
      if (!before || before->isBeforeInBlock(user))
        before = user;
    } else if (!after || user->isBeforeInBlock(after)) {
      after = user;
    }
  }
  if (!before || !isCopyInto(before, copy) ||
      (after && !isCopyInto(after, copy)))
    return nullptr;
  // The matmul will read the writer's source where it stands: nothing in
  // between may write that source (or anything of unknown effects run).
  Value source = before->getOperand(0);
  auto root = [](Value value) {
    while (auto view = value.getDefiningOp<ViewLikeOpInterface>())
      value = view.getViewSource();
    return value;
  };
  Value sourceRoot = root(source);
  for (Operation *between = before->getNextNode(); between != op;
       between = between->getNextNode()) {
    WalkResult walk = between->walk([&](Operation *inner) {
      auto effects = dyn_cast<MemoryEffectOpInterface>(inner);
      if (!effects) {
        return inner->hasTrait<OpTrait::HasRecursiveMemoryEffects>() ||
                       isPure(inner)
                   ? WalkResult::advance()
                   : WalkResult::interrupt();
      }
      SmallVector<MemoryEffects::EffectInstance> list;
      effects.getEffects(list);
      for (const MemoryEffects::EffectInstance &effect : list) {
        if (!isa<MemoryEffects::Write, MemoryEffects::Free>(effect.getEffect()))
          continue;
        Value written = effect.getValue();
        if (!written || root(written) == sourceRoot)
          return WalkResult::interrupt();
      }
      return WalkResult::advance();
    });
    if (walk.wasInterrupted())
      return nullptr;
  }
  return before;
}

/// The transpose that fills `copy` ([K, N] or [M, K]) from a transposed
/// buffer when the matmul `op` alone reads it: kiln's lowering copies a
/// transposed operand (a tied LM head's 50257 x 768 table, a weight
/// gradient's xᵀ) to the plain layout, and the kernel packs from the
/// source as cheaply, so it reads the transpose's input (static, with
/// contiguous rows) and the copy goes.
linalg::TransposeOp transposedSource(Value copy, Operation *op) {
  auto transpose =
      dyn_cast_or_null<linalg::TransposeOp>(soleWriterBefore(copy, op));
  if (!transpose)
    return {};
  auto source = cast<MemRefType>(transpose.getInput().getType());
  return source.hasStaticShape() && hasStaticContiguousRows(source)
             ? transpose
             : linalg::TransposeOp();
}

/// The elementwise cast that fills the bf16 `rhs` from an f32 buffer of the
/// same shape (a mixed-precision model's f32 weight cast where it is used)
/// when the matmul `op` alone reads what it wrote: the kernel rounds the
/// f32 values as it packs them, instead of a pass over the whole weight
/// writing a bf16 copy that the packing reads again.
linalg::GenericOp castSource(Value rhs, Operation *op) {
  // The only generic a copy can be is such a cast (isCopyInto).
  return dyn_cast_or_null<linalg::GenericOp>(soleWriterBefore(rhs, op));
}

/// Erases the copy `writer` read through, and its buffer once nothing else
/// uses it (layers that shared it may still).
void eraseCopy(RewriterBase &rewriter, Operation *writer) {
  Operation *alloc = cast<DestinationStyleOpInterface>(writer)
                         .getDpsInits()[0]
                         .getDefiningOp();
  rewriter.eraseOp(writer);
  if (alloc->use_empty())
    rewriter.eraseOp(alloc);
}

struct LowerAMXMatmulsPass
    : kiln::impl::LowerAMXMatmulsPassBase<LowerAMXMatmulsPass> {
  using Base::Base;

  void runOnOperation() final {
    if (panelBlocks < 1) {
      getOperation().emitError()
          << "kiln-lower-amx-matmuls: panel-blocks must be positive (got "
          << static_cast<int64_t>(panelBlocks) << ")";
      return signalPassFailure();
    }
    if (bf16Dot != "amx" && bf16Dot != "avx512") {
      getOperation().emitError()
          << "kiln-lower-amx-matmuls: bf16-dot must be amx or avx512 (got '"
          << bf16Dot << "')";
      return signalPassFailure();
    }
    SmallVector<std::pair<linalg::GenericOp, TileMatmul>> work;
    getOperation().walk([&](linalg::GenericOp op) {
      auto matmul = matchTileMatmul(op, bf16, int8);
      // Stored panels of another width than this kernel's are left to the
      // loops (correct, slow).
      if (matmul && matmul->rhsStoredPairs &&
          cast<MemRefType>(matmul->rhs.getType()).getDimSize(2) !=
              kBlock * panelBlocks)
        matmul.reset();
      if (matmul)
        work.push_back({op, *matmul});
    });
    IRRewriter rewriter(&getContext());
    for (auto &[op, matmul] : work) {
      linalg::TransposeOp transpose;
      if (!matmul.rhsTransposed && !matmul.integer && !matmul.rhsStoredPairs)
        if ((transpose = transposedSource(matmul.rhs, op))) {
          matmul.rhs = transpose.getInput();
          matmul.rhsTransposed = true;
        }
      // A transposed lhs (a weight gradient's xᵀ·dy) is packed from its
      // source, not from kiln's transposed copy.
      linalg::TransposeOp lhsTranspose;
      if (!matmul.integer &&
          cast<MemRefType>(matmul.lhs.getType()).getRank() == 2)
        if ((lhsTranspose = transposedSource(matmul.lhs, op))) {
          matmul.lhs = lhsTranspose.getInput();
          matmul.lhsTransposed = true;
        }
      linalg::GenericOp cast;
      if (!matmul.integer && !matmul.rhsStoredPairs)
        cast = castSource(matmul.rhs, op);
      if (cast) {
        matmul.rhs = cast.getDpsInputs()[0];
        matmul.rhsFromF32 = true;
      }
      // The zero fill right before the matmul (the lowering's init of its
      // sums): every output element gets exactly one block's sums, so they
      // are stored and the fill goes.
      auto fill = dyn_cast_or_null<linalg::FillOp>(op->getPrevNode());
      if (fill && fill.hasPureBufferSemantics() &&
          fill.getDpsInits()[0] == op->getOperand(2) &&
          (matchPattern(fill.getDpsInputs()[0], m_PosZeroFloat()) ||
           matchPattern(fill.getDpsInputs()[0], m_Zero())))
        matmul.overwrite = true;
      else
        fill = {};
      rewriter.setInsertionPoint(op);
      lower(rewriter, op.getLoc(), matmul);
      rewriter.eraseOp(op);
      if (fill)
        rewriter.eraseOp(fill);
      for (Operation *copy : {cast.getOperation(), transpose.getOperation(),
                              lhsTranspose.getOperation()})
        if (copy)
          eraseCopy(rewriter, copy);
    }
    // For these kernels and any other tile code (kiln-lower-amx-attention).
    bool usesTiles = false;
    getOperation().walk([&](Operation *op) {
      if (isa_and_nonnull<amx::AMXDialect>(op->getDialect()))
        usesTiles = true;
      return usesTiles ? WalkResult::interrupt() : WalkResult::advance();
    });
    if (usesTiles)
      addPermissionRequest(rewriter);
  }

  /// A constructor of the module that asks Linux for the AMX tile state:
  /// syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA).
  void addPermissionRequest(OpBuilder &b) {
    ModuleOp module = getOperation();
    constexpr StringLiteral name = "kiln_request_amx_state";
    if (module.lookupSymbol(name))
      return;
    Location loc = module.getLoc();
    b.setInsertionPointToEnd(module.getBody());
    auto i64 = b.getI64Type();
    auto syscallType =
        LLVM::LLVMFunctionType::get(i64, {i64}, /*isVarArg=*/true);
    if (!module.lookupSymbol("syscall"))
      LLVM::LLVMFuncOp::create(b, loc, "syscall", syscallType);
    auto request = LLVM::LLVMFuncOp::create(
        b, loc, name,
        LLVM::LLVMFunctionType::get(LLVM::LLVMVoidType::get(b.getContext()),
                                    {}));
    request.setLinkage(LLVM::Linkage::Internal);
    Block *entry = request.addEntryBlock(b);
    OpBuilder body = OpBuilder::atBlockBegin(entry);
    auto constant = [&](int64_t value) -> Value {
      return LLVM::ConstantOp::create(body, loc, i64,
                                      body.getI64IntegerAttr(value));
    };
    // SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA.
    LLVM::CallOp::create(
        body, loc, syscallType, "syscall",
        ValueRange{constant(158), constant(0x1023), constant(18)});
    LLVM::ReturnOp::create(body, loc, ValueRange{});
    b.setInsertionPointToEnd(module.getBody());
    LLVM::GlobalCtorsOp::create(
        b, loc, b.getArrayAttr({FlatSymbolRefAttr::get(request)}),
        b.getI32ArrayAttr({65535}),
        b.getArrayAttr({LLVM::ZeroAttr::get(b.getContext())}));
  }

  void lower(OpBuilder &b, Location loc, TileMatmul mm) {
    // [batch..., M, K] and [batch..., M, N] as [M', K] and [M', N].
    mm.lhs = kiln::collapseToRows(b, loc, mm.lhs);
    mm.out = kiln::collapseToRows(b, loc, mm.out);
    auto index = [&](int64_t value) -> Value {
      return arith::ConstantIndexOp::create(b, loc, value);
    };
    const int64_t panel = kBlock * panelBlocks;
    int64_t panels = llvm::divideCeil(mm.n, panel);
    Value zero = index(0), one = index(1);
    Value rows;
    if (mm.lhsTransposed) {
      rows = index(cast<MemRefType>(mm.lhs.getType()).getDimSize(1));
      mm.lhs = packTransposedLhs(b, loc, mm);
    } else {
      rows = memref::DimOp::create(b, loc, mm.lhs, 0);
    }
    scf::ParallelOp::create(b, loc, ValueRange{zero}, ValueRange{index(panels)},
                            ValueRange{one},
                            [&](OpBuilder &pb, Location l, ValueRange ivs) {
                              emitPanel(pb, l, mm, ivs[0], rows);
                            });
  }

  /// The transposed lhs `mm.lhs` ([K, M] bf16) as zero-padded rows,
  /// [align(M, 32), align(K, 32)] bf16, in parallel 16-row stripes: 32 rows
  /// of k by 16 columns of m are read at a time, pairs of k interleaved into
  /// 32-bit words (as the row-major rhs packs) and the 16 x 16 words
  /// transposed in registers.
  Value packTransposedLhs(OpBuilder &b, Location loc, const TileMatmul &mm) {
    auto source = cast<MemRefType>(mm.lhs.getType());
    const int64_t k = source.getDimSize(0), m = source.getDimSize(1);
    const int64_t paddedK = llvm::alignTo(k, kBlock);
    const int64_t paddedM = llvm::alignTo(m, kBlock);
    Type bf16 = b.getBF16Type(), i32 = b.getI32Type();
    auto index = [&](int64_t value) -> Value {
      return arith::ConstantIndexOp::create(b, loc, value);
    };
    Value packed = memref::AllocOp::create(
        b, loc, MemRefType::get({paddedM, paddedK}, bf16));
    Value zero = index(0), one = index(1);
    Value stripes = index(paddedM / kTileRows);
    Value zeroBf16 = arith::ConstantOp::create(b, loc, b.getZeroAttr(bf16));
    auto readType = VectorType::get({2 * kTileRows, kTileRows}, bf16);
    auto rowsType = VectorType::get({kTileRows, 2 * kTileRows}, bf16);
    auto wordsType = VectorType::get({kTileRows, kTileRows}, i32);
    SmallVector<int64_t> interleave;
    for (int64_t i = 0; i < kTileRows; ++i)
      interleave.append({i, i + kTileRows});
    // Stripes run to the padded M (a multiple of 32).
    bool inBoundsK = k % kBlock == 0, inBoundsM = m % kBlock == 0;
    scf::ParallelOp::create(
        b, loc, ValueRange{zero}, ValueRange{stripes}, ValueRange{one},
        [&](OpBuilder &pb, Location l, ValueRange ivs) {
          Value m0 = arith::MulIOp::create(pb, l, ivs[0], index(kTileRows));
          Value kEnd = index(paddedK), kStep = index(kBlock);
          scf::ForOp::create(
              pb, l, zero, kEnd, kStep, ValueRange{},
              [&](OpBuilder &nb, Location nl, Value k0, ValueRange) {
                Value block = vector::TransferReadOp::create(
                    nb, nl, readType, mm.lhs, ValueRange{k0, m0}, zeroBf16,
                    ArrayRef<bool>{inBoundsK, inBoundsM});
                Value pairs =
                    arith::ConstantOp::create(nb, nl, nb.getZeroAttr(rowsType));
                for (int64_t j = 0; j < kTileRows; ++j) {
                  Value even = vector::ExtractOp::create(
                      nb, nl, block, ArrayRef<int64_t>{2 * j});
                  Value odd = vector::ExtractOp::create(
                      nb, nl, block, ArrayRef<int64_t>{2 * j + 1});
                  Value words =
                      vector::ShuffleOp::create(nb, nl, even, odd, interleave);
                  pairs = vector::InsertOp::create(nb, nl, words, pairs,
                                                   ArrayRef<int64_t>{j});
                }
                Value asWords =
                    vector::BitCastOp::create(nb, nl, wordsType, pairs);
                Value transposed =
                    vector::TransposeOp::create(nb, nl, asWords, {1, 0});
                Value asRows =
                    vector::BitCastOp::create(nb, nl, rowsType, transposed);
                vector::TransferWriteOp::create(nb, nl, asRows, packed,
                                                ValueRange{m0, k0},
                                                ArrayRef<bool>{true, true});
                scf::YieldOp::create(nb, nl);
              });
          scf::ReduceOp::create(pb, l);
        });
    return packed;
  }

  void emitPanel(OpBuilder &b, Location loc, const TileMatmul &mm,
                 Value panelIndex, Value rows) {
    Type bf16 = b.getBF16Type(), i32 = b.getI32Type(), i8 = b.getI8Type();
    // Operand elements (bf16 or i8), per 32-bit word (2 or 4), sums (f32 or
    // i32), and the steps of k one operand tile covers (32 or 64).
    const bool integer = mm.integer;
    Type element = integer ? i8 : bf16;
    Type sumType = integer ? i32 : b.getF32Type();
    const int64_t perWord = integer ? 4 : 2;
    const int64_t kStep = kTileRows * perWord;
    auto index = [&](int64_t value) -> Value {
      return arith::ConstantIndexOp::create(b, loc, value);
    };
    const int64_t panel = kBlock * panelBlocks;
    const int64_t paddedK = llvm::alignTo(mm.k, kStep);
    const int64_t words = paddedK / perWord;
    const bool raggedK = mm.k % kStep != 0;
    const bool raggedN = mm.n % panel != 0;
    Value zero = index(0), one = index(1);
    Value firstColumn = arith::MulIOp::create(b, loc, panelIndex, index(panel));

    // The panel's rhs as [words, panel] 32-bit words, each two bf16 (four
    // i8) of consecutive k (zero past K and N); the same bytes as
    // [words, perWord * panel] elements for the tile loads. A weight
    // stored so is read where it lies: panel p of [P, words, panel, 2].
    Value packedPairs, packedWords;
    if (mm.rhsStoredPairs) {
      SmallVector<OpFoldResult> offsets = {
          panelIndex, b.getIndexAttr(0), b.getIndexAttr(0), b.getIndexAttr(0)};
      SmallVector<OpFoldResult> sizes = {
          b.getIndexAttr(1), b.getIndexAttr(words), b.getIndexAttr(panel),
          b.getIndexAttr(2)};
      SmallVector<OpFoldResult> strides(4, b.getIndexAttr(1));
      auto panelType = memref::SubViewOp::inferRankReducedResultType(
          {words, panel, 2}, cast<MemRefType>(mm.rhs.getType()), offsets, sizes,
          strides);
      Value stored = memref::SubViewOp::create(
          b, loc, cast<MemRefType>(panelType), mm.rhs, offsets, sizes, strides);
      packedPairs = memref::CollapseShapeOp::create(
          b, loc, stored, SmallVector<ReassociationIndices>{{0}, {1, 2}});
    } else {
      Value bytes = memref::AllocOp::create(
          b, loc, MemRefType::get({words * panel * 4}, i8));
      packedWords =
          memref::ViewOp::create(b, loc, MemRefType::get({words, panel}, i32),
                                 bytes, zero, ValueRange{});
      packedPairs = memref::ViewOp::create(
          b, loc, MemRefType::get({words, perWord * panel}, element), bytes,
          zero, ValueRange{});
    }
    Value zeroElement =
        arith::ConstantOp::create(b, loc, b.getZeroAttr(element));
    // A read of the rhs as bf16: f32 values are read and rounded.
    Type rhsElement = mm.rhsFromF32 ? b.getF32Type() : element;
    Value rhsPadding =
        mm.rhsFromF32
            ? arith::ConstantOp::create(b, loc, b.getZeroAttr(rhsElement))
                  .getResult()
            : zeroElement;
    auto readRhs = [&](OpBuilder &nb, Location l, ArrayRef<int64_t> shape,
                       ValueRange indices, ArrayRef<bool> inBounds) -> Value {
      Value read = vector::TransferReadOp::create(
          nb, l, VectorType::get(shape, rhsElement), mm.rhs, indices,
          rhsPadding, inBounds);
      if (!mm.rhsFromF32)
        return read;
      return arith::TruncFOp::create(nb, l, VectorType::get(shape, bf16), read);
    };
    if (mm.rhsStoredPairs) {
      // Already packed.
    } else if (mm.rhsTransposed) {
      // Column j's words are row n0 + j of the rhs: 16 x 16 blocks of
      // words transposed in registers.
      auto rowsType = VectorType::get({kTileRows, kStep}, element);
      auto wordsType = VectorType::get({kTileRows, kTileRows}, i32);
      Value wordCount = index(words), blockWords = index(kTileRows);
      scf::ForOp::create(
          b, loc, zero, wordCount, blockWords, ValueRange{},
          [&](OpBuilder &nb, Location l, Value w, ValueRange) {
            Value col = arith::MulIOp::create(nb, l, w, index(perWord));
            for (int64_t v = 0; v < panel / kTileRows; ++v) {
              Value n = arith::AddIOp::create(nb, l, firstColumn,
                                              index(v * kTileRows));
              Value block =
                  readRhs(nb, l, rowsType.getShape(), ValueRange{n, col},
                          ArrayRef<bool>{!raggedN, !raggedK});
              Value transposed = vector::TransposeOp::create(
                  nb, l, vector::BitCastOp::create(nb, l, wordsType, block),
                  {1, 0});
              vector::TransferWriteOp::create(
                  nb, l, transposed, packedWords,
                  ValueRange{w, index(v * kTileRows)},
                  ArrayRef<bool>{true, true});
            }
            scf::YieldOp::create(nb, l);
          });
    } else {
      // Word (w, j) holds rows 2w and 2w + 1 of column n0 + j: two rows
      // interleaved.
      auto pairType = VectorType::get({2, kTileRows}, bf16);
      SmallVector<int64_t> interleave;
      for (int64_t i = 0; i < kTileRows; ++i)
        interleave.append({i, i + kTileRows});
      scf::ForOp::create(
          b, loc, zero, index(words), one, ValueRange{},
          [&](OpBuilder &nb, Location l, Value w, ValueRange) {
            Value row = arith::MulIOp::create(nb, l, w, index(2));
            for (int64_t v = 0; v < panel / kTileRows; ++v) {
              Value n = arith::AddIOp::create(nb, l, firstColumn,
                                              index(v * kTileRows));
              Value pair =
                  readRhs(nb, l, pairType.getShape(), ValueRange{row, n},
                          ArrayRef<bool>{!raggedK, !raggedN});
              Value even =
                  vector::ExtractOp::create(nb, l, pair, ArrayRef<int64_t>{0});
              Value odd =
                  vector::ExtractOp::create(nb, l, pair, ArrayRef<int64_t>{1});
              Value pairs =
                  vector::ShuffleOp::create(nb, l, even, odd, interleave);
              vector::StoreOp::create(nb, l, pairs, packedPairs,
                                      ValueRange{w, index(2 * v * kTileRows)});
            }
            scf::YieldOp::create(nb, l);
          });
    }

    // Sums of a block pass through `sums` into the output; blocks whose
    // lhs rows are ragged (the last one, or all of them where K is) are
    // copied zero-padded into `padded` first.
    Value sums = memref::AllocOp::create(
        b, loc, MemRefType::get({kBlock, kBlock}, sumType));
    auto paddedType = MemRefType::get({kBlock, paddedK}, element);
    auto sumTile = amx::TileType::get({kTileRows, kTileRows}, sumType);
    auto operandTile = amx::TileType::get({kTileRows, kStep}, element);

    // The 32 x 32 block of sums of lhs rows [r0, r0 + 32) of `source` by
    // the panel's sub-panel `s`, into `sums`, in zmm registers: four tiles
    // of 8 rows, each step of k a pair, whose two bf16 per row are
    // broadcast as a 32-bit word against the two 32-bf16 vectors of the
    // sub-panel's packed row (vdpbf16ps adds both products to each lane).
    // Only the tiles that hold some of the block's `count` real rows run
    // (a decoding step's one row: one tile, not four).
    auto multiplyBlockInRegisters = [&](OpBuilder &nb, Location l, Value source,
                                        Value r0, Value count, Value subPanel) {
      auto lanes = VectorType::get({kLanes}, b.getF32Type());
      auto pairVector = VectorType::get({2 * kLanes}, bf16);
      auto pair = VectorType::get({2}, bf16);
      auto word = VectorType::get({1}, i32);
      auto words16 = VectorType::get({kLanes}, i32);
      constexpr int64_t vectors = kBlock / kLanes;
      Value zeroLanes = arith::ConstantOp::create(nb, l, nb.getZeroAttr(lanes));
      Value pairColumn =
          arith::MulIOp::create(nb, l, subPanel, index(2 * kBlock));
      scf::ForOp::create(
          nb, l, zero, count, index(kRegisterRows), ValueRange{},
          [&](OpBuilder &tb, Location tl, Value t, ValueRange) {
            Value tileRow = arith::AddIOp::create(tb, tl, r0, t);
            SmallVector<Value> rowIndex;
            for (int64_t r = 0; r < kRegisterRows; ++r)
              rowIndex.push_back(
                  r == 0 ? tileRow
                         : arith::AddIOp::create(tb, tl, tileRow, index(r))
                               .getResult());
            auto loop = scf::ForOp::create(
                tb, tl, zero, index(words), one,
                SmallVector<Value>(kRegisterRows * vectors, zeroLanes),
                [&](OpBuilder &kb, Location kl, Value w, ValueRange acc) {
                  SmallVector<Value> rhs;
                  for (int64_t v = 0; v < vectors; ++v) {
                    Value column = arith::AddIOp::create(kb, kl, pairColumn,
                                                         index(v * 2 * kLanes));
                    rhs.push_back(
                        vector::LoadOp::create(kb, kl, pairVector, packedPairs,
                                               ValueRange{w, column}));
                  }
                  Value k0 = arith::MulIOp::create(kb, kl, w, index(2));
                  SmallVector<Value> next;
                  for (int64_t r = 0; r < kRegisterRows; ++r) {
                    Value both = vector::LoadOp::create(
                        kb, kl, pair, source, ValueRange{rowIndex[r], k0});
                    Value asWord = vector::ExtractOp::create(
                        kb, kl, vector::BitCastOp::create(kb, kl, word, both),
                        ArrayRef<int64_t>{0});
                    Value broadcast = vector::BitCastOp::create(
                        kb, kl, pairVector,
                        vector::BroadcastOp::create(kb, kl, words16, asWord));
                    for (int64_t v = 0; v < vectors; ++v)
                      next.push_back(x86vector::DotBF16Op::create(
                          kb, kl, lanes, acc[r * vectors + v], broadcast,
                          rhs[v]));
                  }
                  scf::YieldOp::create(kb, kl, next);
                });
            for (int64_t r = 0; r < kRegisterRows; ++r) {
              Value row = arith::AddIOp::create(tb, tl, t, index(r));
              for (int64_t v = 0; v < vectors; ++v)
                vector::StoreOp::create(tb, tl, loop.getResult(r * vectors + v),
                                        sums,
                                        ValueRange{row, index(v * kLanes)});
            }
            scf::YieldOp::create(tb, tl);
          });
    };
    // The 32 x 32 block of sums of lhs rows [r0, r0 + 32) of `source` by
    // the panel's sub-panel `s`, into `sums`.
    auto multiplyBlock = [&](OpBuilder &nb, Location l, Value source, Value r0,
                             Value count, Value subPanel) {
      if (!integer && bf16Dot == "avx512")
        return multiplyBlockInRegisters(nb, l, source, r0, count, subPanel);
      // A zero tile per sum: one shared would be copied through memory.
      SmallVector<Value> zeros;
      for (int64_t t = 0; t < 4; ++t)
        zeros.push_back(amx::TileZeroOp::create(nb, l, sumTile));
      Value r1 = arith::AddIOp::create(nb, l, r0, index(kTileRows));
      Value pairColumn =
          arith::MulIOp::create(nb, l, subPanel, index(perWord * kBlock));
      Value pairColumn1 =
          arith::AddIOp::create(nb, l, pairColumn, index(perWord * kTileRows));
      Value kEnd = index(paddedK), kSteps = index(kStep);
      auto loop = scf::ForOp::create(
          nb, l, zero, kEnd, kSteps, zeros,
          [&](OpBuilder &kb, Location kl, Value k0, ValueRange acc) {
            Value a0 = amx::TileLoadOp::create(kb, kl, operandTile, source,
                                               ValueRange{r0, k0});
            Value a1 = amx::TileLoadOp::create(kb, kl, operandTile, source,
                                               ValueRange{r1, k0});
            Value w = arith::DivUIOp::create(kb, kl, k0, index(perWord));
            Value b0 = amx::TileLoadOp::create(kb, kl, operandTile, packedPairs,
                                               ValueRange{w, pairColumn});
            Value b1 = amx::TileLoadOp::create(kb, kl, operandTile, packedPairs,
                                               ValueRange{w, pairColumn1});
            // tdpbf16ps, or tdpbssd (signed by signed bytes).
            auto multiply = [&](Value a, Value w, Value sum) -> Value {
              if (integer)
                return amx::TileMulIOp::create(kb, kl, sumTile, a, w, sum);
              return amx::TileMulFOp::create(kb, kl, sumTile, a, w, sum);
            };
            SmallVector<Value> next = {
                multiply(a0, b0, acc[0]), multiply(a0, b1, acc[1]),
                multiply(a1, b0, acc[2]), multiply(a1, b1, acc[3])};
            scf::YieldOp::create(kb, kl, next);
          });
      for (int64_t t = 0; t < 4; ++t)
        amx::TileStoreOp::create(
            nb, l, sums,
            ValueRange{index(t / 2 * kTileRows), index(t % 2 * kTileRows)},
            loop.getResult(t));
    };
    // out[r0 + r, column of sub-panel s] += sums[r] for r < `count`.
    auto addBlock = [&](OpBuilder &nb, Location l, Value r0, Value count,
                        Value subPanel) {
      auto lanes = VectorType::get({kTileRows}, sumType);
      Value column0 = arith::AddIOp::create(
          nb, l, firstColumn,
          arith::MulIOp::create(nb, l, subPanel, index(kBlock)));
      Value padding = arith::ConstantOp::create(nb, l, nb.getZeroAttr(sumType));
      scf::ForOp::create(
          nb, l, zero, count, one, ValueRange{},
          [&](OpBuilder &rb, Location rl, Value r, ValueRange) {
            Value row = arith::AddIOp::create(rb, rl, r0, r);
            for (int64_t v = 0; v < kBlock / kTileRows; ++v) {
              Value column =
                  arith::AddIOp::create(rb, rl, column0, index(v * kTileRows));
              Value sum = vector::LoadOp::create(
                  rb, rl, lanes, sums, ValueRange{r, index(v * kTileRows)});
              Value added = sum;
              if (!mm.overwrite) {
                Value old = vector::TransferReadOp::create(
                    rb, rl, lanes, mm.out, ValueRange{row, column}, padding,
                    ArrayRef<bool>{!raggedN});
                added = integer
                            ? arith::AddIOp::create(rb, rl, old, sum).getResult()
                            : arith::AddFOp::create(rb, rl, old, sum).getResult();
              }
              vector::TransferWriteOp::create(rb, rl, added, mm.out,
                                              ValueRange{row, column},
                                              ArrayRef<bool>{!raggedN});
            }
            scf::YieldOp::create(rb, rl);
          });
    };
    // Rows [r0, r0 + count) of the lhs into `padded` (zero past K and past
    // `count` rows).
    auto copyRows = [&](OpBuilder &nb, Location l, Value padded, Value r0,
                        Value count) {
      linalg::FillOp::create(nb, l, zeroElement, padded);
      auto run = VectorType::get({kStep}, element);
      scf::ForOp::create(
          nb, l, zero, count, one, ValueRange{},
          [&](OpBuilder &rb, Location rl, Value r, ValueRange) {
            Value row = arith::AddIOp::create(rb, rl, r0, r);
            Value kEnd = index(paddedK), kSteps = index(kStep);
            scf::ForOp::create(
                rb, rl, zero, kEnd, kSteps, ValueRange{},
                [&](OpBuilder &cb, Location cl, Value c, ValueRange) {
                  Value values = vector::TransferReadOp::create(
                      cb, cl, run, mm.lhs, ValueRange{row, c}, zeroElement,
                      ArrayRef<bool>{!raggedK});
                  vector::StoreOp::create(cb, cl, values, padded,
                                          ValueRange{r, c});
                  scf::YieldOp::create(cb, cl);
                });
            scf::YieldOp::create(rb, rl);
          });
    };
    // Every sub-panel of the block of `count` rows at r0, read from
    // `source` at `sourceRow`.
    auto emitBlock = [&](OpBuilder &nb, Location l, Value source,
                         Value sourceRow, Value r0, Value count) {
      Value subPanels = index(panelBlocks);
      if (raggedN) {
        // The last panel stops at the last sub-panel with a column < N.
        Value left = arith::SubIOp::create(nb, l, index(mm.n), firstColumn);
        Value needed = arith::CeilDivUIOp::create(nb, l, left, index(kBlock));
        subPanels = arith::MinUIOp::create(nb, l, needed, subPanels);
      }
      scf::ForOp::create(nb, l, zero, subPanels, one, ValueRange{},
                         [&](OpBuilder &sb, Location sl, Value s, ValueRange) {
                           multiplyBlock(sb, sl, source, sourceRow, count, s);
                           addBlock(sb, sl, r0, count, s);
                           scf::YieldOp::create(sb, sl);
                         });
    };

    Value blockRows = index(kBlock);
    if (mm.lhsTransposed) {
      // The packed lhs is padded to whole blocks of rows and of k: every
      // block loads its tiles from it, and adds its real rows.
      Value end = index(llvm::alignTo(
          cast<MemRefType>(mm.lhs.getType()).getDimSize(0), kBlock));
      scf::ForOp::create(b, loc, zero, end, blockRows, ValueRange{},
                         [&](OpBuilder &nb, Location l, Value r0, ValueRange) {
                           Value left = arith::SubIOp::create(nb, l, rows, r0);
                           Value count =
                               arith::MinUIOp::create(nb, l, left, blockRows);
                           emitBlock(nb, l, mm.lhs, r0, r0, count);
                           scf::YieldOp::create(nb, l);
                         });
      return;
    }
    Value blocks = arith::DivUIOp::create(b, loc, rows, blockRows);
    Value whole = arith::MulIOp::create(b, loc, blocks, blockRows);
    Value padded;
    if (raggedK)
      padded = memref::AllocOp::create(b, loc, paddedType);
    scf::ForOp::create(b, loc, zero, whole, blockRows, ValueRange{},
                       [&](OpBuilder &nb, Location l, Value r0, ValueRange) {
                         if (raggedK) {
                           copyRows(nb, l, padded, r0, blockRows);
                           emitBlock(nb, l, padded, zero, r0, blockRows);
                         } else {
                           emitBlock(nb, l, mm.lhs, r0, r0, blockRows);
                         }
                         scf::YieldOp::create(nb, l);
                       });
    // The last rows, fewer than a block.
    Value left = arith::SubIOp::create(b, loc, rows, whole);
    Value some =
        arith::CmpIOp::create(b, loc, arith::CmpIPredicate::ne, left, zero);
    scf::IfOp::create(b, loc, some, [&](OpBuilder &tb, Location tl) {
      Value tail =
          raggedK ? padded : memref::AllocOp::create(tb, tl, paddedType);
      copyRows(tb, tl, tail, whole, left);
      emitBlock(tb, tl, tail, zero, whole, left);
      scf::YieldOp::create(tb, tl);
    });
  }
};
} // namespace
