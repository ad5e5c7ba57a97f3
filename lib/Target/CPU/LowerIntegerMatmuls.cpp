//===- LowerIntegerMatmuls.cpp - int8 matmul kernels ----------------------===//
//
// kiln.integer_matmul reaches the CPU backend as a buffer-form contraction
// generic: sign-extended i8 lhs [M, K] and rhs [N, K] (a weight read
// transposed) summed into an i32 [M, N] output. The f32 register tiles of
// kiln-tile-and-vectorize-contractions multiply with outer products of
// FMAs; 8-bit products instead come four to a 32-bit lane: AVX-512 VNNI's
// vpdpbusd adds, per lane, the four products of 4 unsigned lhs bytes with
// 4 signed rhs bytes to an i32 sum. So k is walked in groups of 4 bytes:
// the lhs is copied into [M, K/4] 32-bit words (shifted to unsigned,
// x + 128), each column panel packs its rhs as [K/4, panel] words (for a
// transposed rhs a transpose of words) and its column sums, and a register
// tile broadcasts one word per row against each 16-lane vector of the
// panel. The shift comes off in the epilogue: Σ (x + 128)·w = Σ x·w +
// 128·Σ w. (Sums wrap modulo 2^32 on the way; the true sum fits, so the
// result is exact.) The buffers it allocates are freed by the buffer
// deallocation pipeline that runs after it.
//
//===----------------------------------------------------------------------===//

#include "MatmulRows.h"
#include "kiln/Target/CPU/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Utils/StructuredOpsUtils.h"
#include "mlir/IR/PatternMatch.h"

namespace mlir::kiln {
#define GEN_PASS_DEF_LOWERINTEGERMATMULSPASS
#include "kiln/Target/CPU/Passes.h.inc"
} // namespace mlir::kiln

using namespace mlir;

namespace {
/// Words per packing block (a 16 x 16 block of 32-bit words is transposed
/// in registers) and per vector run of a row.
constexpr int64_t kLanes = 16;

/// The operands of an integer matmul this pass lowers.
struct IntegerMatmul {
  Value lhs, rhs, out;
  int64_t k = 0, n = 0;
};

/// Whether `type` is a memref whose rows are contiguous (unit last stride).
bool hasContiguousRows(MemRefType type) {
  SmallVector<int64_t> strides;
  int64_t offset;
  return succeeded(type.getStridesAndOffset(strides, offset)) &&
         !strides.empty() && strides.back() == 1;
}

/// `op` as the contraction kiln.integer_matmul lowers to, if it is one:
/// buffers, loops (batch..., m, k, n), lhs (batch..., m, k), rhs (n, k),
/// output (batch..., m, n), a body of two sign extensions of i8, a multiply
/// and an add into i32; static K and N; lhs and output whose leading dims
/// collapse into one (the kernel sees [M, K] and [M, N]).
std::optional<IntegerMatmul> matchIntegerMatmul(linalg::GenericOp op) {
  if (!op.hasPureBufferSemantics() || op.getNumDpsInputs() != 2 ||
      op.getNumDpsInits() != 1 || op.getNumLoops() < 3)
    return std::nullopt;
  int64_t loops = op.getNumLoops();
  int64_t m = loops - 3, k = loops - 2, n = loops - 1;
  auto iterators = op.getIteratorTypesArray();
  for (int64_t d = 0; d < loops; ++d)
    if (iterators[d] != (d == k ? utils::IteratorType::reduction
                                : utils::IteratorType::parallel))
      return std::nullopt;
  MLIRContext *ctx = op.getContext();
  SmallVector<AffineExpr> lhsExprs, outExprs;
  for (int64_t d = 0; d < m; ++d) {
    lhsExprs.push_back(getAffineDimExpr(d, ctx));
    outExprs.push_back(getAffineDimExpr(d, ctx));
  }
  lhsExprs.append({getAffineDimExpr(m, ctx), getAffineDimExpr(k, ctx)});
  outExprs.append({getAffineDimExpr(m, ctx), getAffineDimExpr(n, ctx)});
  SmallVector<AffineMap> maps = op.getIndexingMapsArray();
  if (maps[0] != AffineMap::get(loops, 0, lhsExprs, ctx) ||
      maps[1] !=
          AffineMap::get(loops, 0,
                         {getAffineDimExpr(n, ctx), getAffineDimExpr(k, ctx)},
                         ctx) ||
      maps[2] != AffineMap::get(loops, 0, outExprs, ctx))
    return std::nullopt;
  auto lhs = dyn_cast<MemRefType>(op.getDpsInputs()[0].getType());
  auto rhs = dyn_cast<MemRefType>(op.getDpsInputs()[1].getType());
  auto out = dyn_cast<MemRefType>(op.getDpsInits()[0].getType());
  if (!lhs || !rhs || !out || !lhs.getElementType().isInteger(8) ||
      !rhs.getElementType().isInteger(8) || !out.getElementType().isInteger(32))
    return std::nullopt;
  if (!rhs.hasStaticShape() || !hasContiguousRows(lhs) ||
      !hasContiguousRows(rhs) || !hasContiguousRows(out))
    return std::nullopt;
  if (!kiln::rowsCollapse(lhs, out))
    return std::nullopt;
  // The body: extsi, extsi, muli, addi (with the accumulator), yield.
  Block &body = op.getRegion().front();
  int extensions = 0, multiplies = 0, adds = 0;
  for (Operation &inner : body.without_terminator()) {
    if (auto ext = dyn_cast<arith::ExtSIOp>(inner)) {
      extensions += ext.getIn().getType().isInteger(8);
      continue;
    }
    if (isa<arith::MulIOp>(inner))
      ++multiplies;
    else if (isa<arith::AddIOp>(inner))
      ++adds;
    else
      return std::nullopt;
  }
  if (extensions != 2 || multiplies != 1 || adds != 1 ||
      !linalg::isaContractionOpInterface(op))
    return std::nullopt;
  return IntegerMatmul{op.getDpsInputs()[0], op.getDpsInputs()[1],
                       op.getDpsInits()[0], rhs.getDimSize(1),
                       rhs.getDimSize(0)};
}

/// How a kernel multiplies: k is taken `bytesPerWord` codes at a time,
/// packed into a 32-bit word (4 bytes, or 2 sign-extended 16-bit halves),
/// and a dot product adds, per 32-bit lane of a `lanes`-wide vector, the
/// products of a word of the lhs with a word of the rhs.
struct DotKind {
  /// vnni: vpdpbusd (u8 x s8, 4 per lane, 16 lanes); avx2: vpmaddwd
  /// (i16 x i16, 2 per lane, 8 lanes); generic: portable vector ops (4 per
  /// lane, 16 lanes).
  enum Kind { Vnni, Avx2, Generic } kind = Vnni;
  int64_t bytesPerWord = 4;
  int64_t lanes = 16;
  /// The intrinsic called for the dot product (a function named after it,
  /// which LLVM takes for the intrinsic; buffer deallocation accepts a
  /// call where it refuses llvm.call_intrinsic).
  StringRef intrinsic() const {
    return kind == Vnni   ? "llvm.x86.avx512.vpdpbusd.512"
           : kind == Avx2 ? "llvm.x86.avx2.pmadd.wd"
                          : "";
  }
};

struct LowerIntegerMatmulsPass
    : kiln::impl::LowerIntegerMatmulsPassBase<LowerIntegerMatmulsPass> {
  using Base::Base;

  DotKind dot;
  func::FuncOp dotFunction;

  void runOnOperation() final {
    if (int8Dot == "vnni")
      dot = {DotKind::Vnni, 4, 16};
    else if (int8Dot == "avx2")
      dot = {DotKind::Avx2, 2, 8};
    else if (int8Dot == "generic")
      dot = {DotKind::Generic, 4, 16};
    else {
      getOperation().emitError()
          << "kiln-lower-integer-matmuls: int8-dot must be vnni, avx2 or "
             "generic (got '"
          << int8Dot << "')";
      return signalPassFailure();
    }
    if (tileM < 1 || tileN < kLanes || tileN % kLanes != 0) {
      getOperation().emitError()
          << "kiln-lower-integer-matmuls: tile-m must be positive and tile-n "
             "a positive multiple of 16 (got "
          << static_cast<int64_t>(tileM) << ", " << static_cast<int64_t>(tileN)
          << ")";
      return signalPassFailure();
    }
    SmallVector<std::pair<linalg::GenericOp, IntegerMatmul>> work;
    getOperation().walk([&](linalg::GenericOp op) {
      if (auto matmul = matchIntegerMatmul(op))
        work.push_back({op, *matmul});
    });
    if (work.empty())
      return;
    IRRewriter rewriter(&getContext());
    if (!dot.intrinsic().empty()) {
      ModuleOp module = getOperation();
      dotFunction = module.lookupSymbol<func::FuncOp>(dot.intrinsic());
      if (!dotFunction) {
        rewriter.setInsertionPointToEnd(module.getBody());
        auto lanes = VectorType::get({dot.lanes}, rewriter.getI32Type());
        FunctionType type;
        if (dot.kind == DotKind::Vnni) {
          auto bytes = VectorType::get({4 * dot.lanes}, rewriter.getI8Type());
          type = rewriter.getFunctionType({lanes, bytes, bytes}, {lanes});
        } else {
          auto halves = VectorType::get({2 * dot.lanes}, rewriter.getI16Type());
          type = rewriter.getFunctionType({halves, halves}, {lanes});
        }
        dotFunction = func::FuncOp::create(rewriter, module.getLoc(),
                                           dot.intrinsic(), type);
        dotFunction.setPrivate();
      }
    }
    for (auto &[op, matmul] : work) {
      rewriter.setInsertionPoint(op);
      lower(rewriter, op.getLoc(), matmul);
      rewriter.eraseOp(op);
    }
  }

  void lower(OpBuilder &b, Location loc, IntegerMatmul mm) {
    // [batch..., M, K] and [batch..., M, N] as [M', K] and [M', N].
    mm.lhs = kiln::collapseToRows(b, loc, mm.lhs);
    mm.out = kiln::collapseToRows(b, loc, mm.out);
    const bool vnni = dot.kind == DotKind::Vnni;
    const int64_t per = dot.bytesPerWord;
    Type i8 = b.getI8Type(), i16 = b.getI16Type(), i32 = b.getI32Type();
    auto index = [&](int64_t value) -> Value {
      return arith::ConstantIndexOp::create(b, loc, value);
    };
    int64_t words = llvm::divideCeil(mm.k, per);
    bool ragged = mm.k % per != 0;
    Value zero = index(0), one = index(1), perWord = index(per);
    Value rows = memref::DimOp::create(b, loc, mm.lhs, 0);

    // `count` words from `per * count` bytes: for VNNI the lhs bytes
    // shifted to unsigned (x xor 0x80 = x + 128); for avx2 pairs of bytes
    // sign-extended to 16 bits.
    auto wordsFrom = [&](OpBuilder &nb, Location l, Value run, bool lhs,
                         int64_t count) -> Value {
      auto type = cast<VectorType>(run.getType());
      if (vnni && lhs) {
        Value flip = arith::ConstantOp::create(
            nb, l, DenseElementsAttr::get(type, nb.getI8IntegerAttr(-128)));
        run = arith::XOrIOp::create(nb, l, run, flip);
      }
      if (per == 2)
        run = arith::ExtSIOp::create(
            nb, l, VectorType::get(type.getShape(), i16), run);
      return vector::BitCastOp::create(nb, l, VectorType::get({count}, i32),
                                       run);
    };
    // The word of row `row` of `source` at word `w` (bytes past K read as
    // the value that makes a 0 code).
    auto loadWord = [&](OpBuilder &nb, Location l, Value source, Value row,
                        Value w) -> Value {
      bool lhs = source == mm.lhs;
      Value col = arith::MulIOp::create(nb, l, w, perWord);
      Value padding =
          arith::ConstantIntOp::create(nb, l, i8, vnni && lhs ? -128 : 0);
      Value group = vector::TransferReadOp::create(
          nb, l, VectorType::get({per}, i8), source, ValueRange{row, col},
          padding, ArrayRef<bool>{!ragged});
      return vector::ExtractOp::create(nb, l, wordsFrom(nb, l, group, lhs, 1),
                                       ArrayRef<int64_t>{0});
    };

    // 1. The lhs as words, [M, words] i32; whole runs of 16 words as
    // vectors, the rest word by word.
    auto lhsWordsType = MemRefType::get({ShapedType::kDynamic, words}, i32);
    Value lhsWords =
        memref::AllocOp::create(b, loc, lhsWordsType, ValueRange{rows});
    int64_t vectorWords = mm.k / per / kLanes * kLanes;
    auto run = VectorType::get({per * kLanes}, i8);
    scf::ForOp::create(
        b, loc, zero, rows, one, ValueRange{},
        [&](OpBuilder &nb, Location l, Value row, ValueRange) {
          scf::ForOp::create(
              nb, l, zero, index(vectorWords), index(kLanes), ValueRange{},
              [&](OpBuilder &ib, Location il, Value w, ValueRange) {
                Value col = arith::MulIOp::create(ib, il, w, perWord);
                Value bytes = vector::LoadOp::create(ib, il, run, mm.lhs,
                                                     ValueRange{row, col});
                vector::StoreOp::create(
                    ib, il, wordsFrom(ib, il, bytes, true, kLanes), lhsWords,
                    ValueRange{row, w});
                scf::YieldOp::create(ib, il);
              });
          scf::ForOp::create(
              nb, l, index(vectorWords), index(words), one, ValueRange{},
              [&](OpBuilder &ib, Location il, Value w, ValueRange) {
                memref::StoreOp::create(ib, il,
                                        loadWord(ib, il, mm.lhs, row, w),
                                        lhsWords, ValueRange{row, w});
                scf::YieldOp::create(ib, il);
              });
          scf::YieldOp::create(nb, l);
        });

    // 2. Column panels in parallel.
    int64_t panels = llvm::divideCeil(mm.n, static_cast<int64_t>(tileN));
    scf::ParallelOp::create(
        b, loc, ValueRange{zero}, ValueRange{index(panels)}, ValueRange{one},
        [&](OpBuilder &pb, Location l, ValueRange ivs) {
          emitPanel(pb, l, mm, ivs[0], rows, lhsWords, words, vectorWords,
                    wordsFrom, loadWord);
        });
  }

  template <typename WordsFrom, typename LoadWord>
  void emitPanel(OpBuilder &b, Location loc, const IntegerMatmul &mm,
                 Value panelIndex, Value rows, Value lhsWords, int64_t words,
                 int64_t vectorWords, WordsFrom &wordsFrom,
                 LoadWord &loadWord) {
    const bool vnni = dot.kind == DotKind::Vnni;
    const int64_t per = dot.bytesPerWord, panel = tileN;
    const int64_t vectors = panel / dot.lanes;
    const bool raggedColumns = mm.n % panel != 0;
    Type i8 = b.getI8Type(), i16 = b.getI16Type(), i32 = b.getI32Type();
    auto lanes = VectorType::get({dot.lanes}, i32);
    auto index = [&](int64_t value) -> Value {
      return arith::ConstantIndexOp::create(b, loc, value);
    };
    Value zero = index(0), one = index(1);
    Value firstColumn = arith::MulIOp::create(b, loc, panelIndex, index(panel));

    // The panel's rhs as [words, panel]: column j's words are row n0 + j of
    // the transposed rhs; columns past N are 0.
    auto packedType = MemRefType::get({words, panel}, i32);
    Value packed = memref::AllocOp::create(b, loc, packedType);
    Value zeroWord = arith::ConstantIntOp::create(b, loc, i32, 0);
    // Word by word, from word `start`.
    auto packWords = [&](OpBuilder &ob, Location ol, int64_t start) {
      scf::ForOp::create(
          ob, ol, zero, index(panel), one, ValueRange{},
          [&](OpBuilder &nb, Location l, Value column, ValueRange) {
            Value n = arith::AddIOp::create(nb, l, firstColumn, column);
            auto fill = [&](OpBuilder &fb, Location fl, bool inRange) {
              scf::ForOp::create(
                  fb, fl, index(start), index(words), one, ValueRange{},
                  [&](OpBuilder &ib, Location il, Value w, ValueRange) {
                    Value v =
                        inRange ? loadWord(ib, il, mm.rhs, n, w) : zeroWord;
                    memref::StoreOp::create(ib, il, v, packed,
                                            ValueRange{w, column});
                    scf::YieldOp::create(ib, il);
                  });
            };
            if (!raggedColumns) {
              fill(nb, l, true);
            } else {
              Value inRange = arith::CmpIOp::create(
                  nb, l, arith::CmpIPredicate::slt, n, index(mm.n));
              scf::IfOp::create(
                  nb, l, inRange,
                  [&](OpBuilder &tb, Location tl) {
                    fill(tb, tl, true);
                    scf::YieldOp::create(tb, tl);
                  },
                  [&](OpBuilder &eb, Location el) {
                    fill(eb, el, false);
                    scf::YieldOp::create(eb, el);
                  });
            }
            scf::YieldOp::create(nb, l);
          });
    };
    // A whole panel: 16 x 16 blocks of words (16 rows of 16 words)
    // transposed in registers, then the words past the last block.
    auto packBlocks = [&](OpBuilder &ob, Location ol) {
      auto block = VectorType::get({kLanes, kLanes}, i32);
      auto run = VectorType::get({per * kLanes}, i8);
      scf::ForOp::create(
          ob, ol, zero, index(vectorWords), index(kLanes), ValueRange{},
          [&](OpBuilder &nb, Location l, Value w, ValueRange) {
            Value col = arith::MulIOp::create(nb, l, w, index(per));
            for (int64_t v = 0; v < panel / kLanes; ++v) {
              Value tile = arith::ConstantOp::create(
                  nb, l,
                  DenseElementsAttr::get(block, nb.getI32IntegerAttr(0)));
              for (int64_t i = 0; i < kLanes; ++i) {
                Value n = arith::AddIOp::create(nb, l, firstColumn,
                                                index(v * kLanes + i));
                Value bytes = vector::LoadOp::create(nb, l, run, mm.rhs,
                                                     ValueRange{n, col});
                tile = vector::InsertOp::create(
                    nb, l, wordsFrom(nb, l, bytes, false, kLanes), tile,
                    ArrayRef<int64_t>{i});
              }
              Value transposed =
                  vector::TransposeOp::create(nb, l, tile, {1, 0});
              for (int64_t i = 0; i < kLanes; ++i) {
                Value word = arith::AddIOp::create(nb, l, w, index(i));
                vector::StoreOp::create(
                    nb, l,
                    vector::ExtractOp::create(nb, l, transposed,
                                              ArrayRef<int64_t>{i}),
                    packed, ValueRange{word, index(v * kLanes)});
              }
            }
            scf::YieldOp::create(nb, l);
          });
      if (vectorWords < words)
        packWords(ob, ol, vectorWords);
    };
    if (vectorWords == 0) {
      packWords(b, loc, 0);
    } else if (!raggedColumns) {
      packBlocks(b, loc);
    } else {
      // Only the last panel is ragged.
      Value whole = arith::CmpIOp::create(
          b, loc, arith::CmpIPredicate::sle,
          arith::AddIOp::create(b, loc, firstColumn, index(panel)),
          index(mm.n));
      scf::IfOp::create(
          b, loc, whole,
          [&](OpBuilder &tb, Location tl) {
            packBlocks(tb, tl);
            scf::YieldOp::create(tb, tl);
          },
          [&](OpBuilder &eb, Location el) {
            packWords(eb, el, 0);
            scf::YieldOp::create(eb, el);
          });
    }

    Value zeroLanes = arith::ConstantOp::create(
        b, loc, DenseElementsAttr::get(lanes, b.getI32IntegerAttr(0)));
    auto loadPacked = [&](OpBuilder &nb, Location l, Value w,
                          int64_t v) -> Value {
      return vector::LoadOp::create(nb, l, lanes, packed,
                                    ValueRange{w, index(v * dot.lanes)});
    };
    // acc + Σ of each lane's products of a word of `a` with one of `w`.
    auto multiplyAdd = [&](OpBuilder &nb, Location l, Value acc, Value a,
                           Value w) -> Value {
      switch (dot.kind) {
      case DotKind::Vnni: {
        auto bytes = VectorType::get({4 * dot.lanes}, i8);
        return func::CallOp::create(
                   nb, l, dotFunction,
                   ValueRange{acc, vector::BitCastOp::create(nb, l, bytes, a),
                              vector::BitCastOp::create(nb, l, bytes, w)})
            .getResult(0);
      }
      case DotKind::Avx2: {
        auto halves = VectorType::get({2 * dot.lanes}, i16);
        Value pairs =
            func::CallOp::create(
                nb, l, dotFunction,
                ValueRange{vector::BitCastOp::create(nb, l, halves, a),
                           vector::BitCastOp::create(nb, l, halves, w)})
                .getResult(0);
        return arith::AddIOp::create(nb, l, acc, pairs);
      }
      case DotKind::Generic: {
        // Lane i sums bytes 4i..4i+3: four strided shuffles of
        // sign-extended bytes.
        auto bytes = VectorType::get({4 * dot.lanes}, i8);
        Value ab = vector::BitCastOp::create(nb, l, bytes, a);
        Value wb = vector::BitCastOp::create(nb, l, bytes, w);
        for (int64_t t = 0; t < 4; ++t) {
          SmallVector<int64_t> mask;
          for (int64_t i = 0; i < dot.lanes; ++i)
            mask.push_back(4 * i + t);
          auto pick = [&](Value from) -> Value {
            Value part = vector::ShuffleOp::create(nb, l, from, from, mask);
            return arith::ExtSIOp::create(nb, l, lanes, part);
          };
          acc = arith::AddIOp::create(
              nb, l, acc, arith::MulIOp::create(nb, l, pick(ab), pick(wb)));
        }
        return acc;
      }
      }
      llvm_unreachable("dot kinds are covered");
    };

    // VNNI: 128 · the column sums, which the shifted lhs added.
    SmallVector<Value> shifts;
    if (vnni) {
      Value ones = arith::ConstantOp::create(
          b, loc, DenseElementsAttr::get(lanes, b.getI32IntegerAttr(0x01010101)));
      auto sums = scf::ForOp::create(
          b, loc, zero, index(words), one,
          SmallVector<Value>(vectors, zeroLanes),
          [&](OpBuilder &nb, Location l, Value w, ValueRange acc) {
            SmallVector<Value> next;
            for (int64_t v = 0; v < vectors; ++v)
              next.push_back(
                  multiplyAdd(nb, l, acc[v], ones, loadPacked(nb, l, w, v)));
            scf::YieldOp::create(nb, l, next);
          });
      Value shift = arith::ConstantOp::create(
          b, loc, DenseElementsAttr::get(lanes, b.getI32IntegerAttr(7)));
      for (Value sum : sums.getResults())
        shifts.push_back(arith::ShLIOp::create(b, loc, sum, shift));
    }

    // Register tiles of `tile` rows from `row0`.
    auto emitTile = [&](OpBuilder &nb, Location l, Value row0, int64_t tile) {
      SmallVector<Value> rowIndex;
      for (int64_t r = 0; r < tile; ++r)
        rowIndex.push_back(
            r == 0 ? row0 : arith::AddIOp::create(nb, l, row0, index(r)));
      auto loop = scf::ForOp::create(
          nb, l, zero, index(words), one,
          SmallVector<Value>(tile * vectors, zeroLanes),
          [&](OpBuilder &kb, Location kl, Value w, ValueRange acc) {
            SmallVector<Value> rhsWords;
            for (int64_t v = 0; v < vectors; ++v)
              rhsWords.push_back(loadPacked(kb, kl, w, v));
            SmallVector<Value> next;
            for (int64_t r = 0; r < tile; ++r) {
              Value lhsWord = memref::LoadOp::create(
                  kb, kl, lhsWords, ValueRange{rowIndex[r], w});
              Value broadcast =
                  vector::BroadcastOp::create(kb, kl, lanes, lhsWord);
              for (int64_t v = 0; v < vectors; ++v)
                next.push_back(multiplyAdd(kb, kl, acc[r * vectors + v],
                                           broadcast, rhsWords[v]));
            }
            scf::YieldOp::create(kb, kl, next);
          });
      for (int64_t r = 0; r < tile; ++r)
        for (int64_t v = 0; v < vectors; ++v) {
          Value sum = loop.getResult(r * vectors + v);
          if (vnni)
            sum = arith::SubIOp::create(nb, l, sum, shifts[v]);
          Value column = arith::AddIOp::create(nb, l, firstColumn,
                                               index(v * dot.lanes));
          Value padding = arith::ConstantIntOp::create(nb, l, i32, 0);
          SmallVector<bool, 1> inBounds = {!raggedColumns};
          Value old = vector::TransferReadOp::create(
              nb, l, lanes, mm.out, ValueRange{rowIndex[r], column}, padding,
              inBounds);
          vector::TransferWriteOp::create(
              nb, l, arith::AddIOp::create(nb, l, old, sum), mm.out,
              ValueRange{rowIndex[r], column}, inBounds);
        }
    };
    Value tiles =
        arith::DivUIOp::create(b, loc, rows, index(tileM));
    Value fullRows = arith::MulIOp::create(b, loc, tiles, index(tileM));
    scf::ForOp::create(b, loc, zero, fullRows, index(tileM), ValueRange{},
                       [&](OpBuilder &nb, Location l, Value row0, ValueRange) {
                         emitTile(nb, l, row0, tileM);
                         scf::YieldOp::create(nb, l);
                       });
    if (tileM > 1)
      scf::ForOp::create(b, loc, fullRows, rows, one, ValueRange{},
                         [&](OpBuilder &nb, Location l, Value row, ValueRange) {
                           emitTile(nb, l, row, 1);
                           scf::YieldOp::create(nb, l);
                         });
  }
};
} // namespace
