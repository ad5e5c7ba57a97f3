//===- kiln-compile.cpp - Model configs and kiln IR to graphs and costs ---===//
//
// The compiler driver: reads a model config (`*.json`, built with the model
// builders) or kiln IR (`*.mlir`), and prints the graph as built, the graph
// decomposed into primitives, or its cost report.
//
//===----------------------------------------------------------------------===//

#include "kiln/Compiler/Calibration.h"
#include "kiln/Compiler/Compiler.h"
#include "kiln/Compiler/StructuredPruning.h"
#include "kiln/Compiler/TrainingGraph.h"
#include "kiln/Conversion/Passes.h"
#include "kiln/Dialect/Kiln/IR/KilnDialect.h"
#include "kiln/Dialect/Kiln/Transforms/Passes.h"
#include "kiln/Dialect/Kiln/Transforms/Pruning.h"
#include "kiln/Dialect/Kiln/Transforms/Quantization.h"
#include "kiln/Models/ModelBuilder.h"
#include "kiln/Target/CPU/CPUPipeline.h"
#include "kiln/Target/CPU/CPUTarget.h"
#include "kiln/Target/CUDA/CUDATarget.h"
#include "kiln/Target/Common/Passes.h"
#include "llvm/IR/LLVMContext.h"
#include "llvm/IR/Module.h"
#include "llvm/Support/MemoryBuffer.h"

#include "kiln/Dialect/Kiln/IR/KilnOps.h"
#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Quant/IR/Quant.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/DialectRegistry.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/IR/Verifier.h"
#include "mlir/Parser/Parser.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Support/FileUtilities.h"
#include "mlir/Support/Timing.h"
#include "mlir/Transforms/Passes.h"
#include "llvm/ADT/MapVector.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/SourceMgr.h"
#include "llvm/Support/ToolOutputFile.h"
#include "llvm/Support/WithColor.h"
#include "llvm/Support/raw_ostream.h"

#include <cstdlib>

using namespace mlir;
namespace cl = llvm::cl;

namespace {
enum class EmitKind { Kiln, Decomposed, Cost, Summary, LLVM, PTX };

cl::OptionCategory category("kiln-compile options");

cl::opt<std::string> inputPath(cl::Positional,
                               cl::desc("<model config .json | save_pretrained "
                                        "directory | kiln IR .mlir>"),
                               cl::cat(category));

cl::opt<EmitKind> emit(
    "emit", cl::desc("What to print"), cl::init(EmitKind::Kiln),
    cl::values(
        clEnumValN(EmitKind::Kiln, "kiln",
                   "the kiln graph as built or parsed (verified)"),
        clEnumValN(EmitKind::Decomposed, "decomposed",
                   "composites decomposed into primitives "
                   "(kiln-decompose, canonicalize, cse)"),
        clEnumValN(EmitKind::Cost, "cost",
                   "the cost report (kiln-cost-report): parameters, FLOPs, "
                   "bytes, roofline time"),
        clEnumValN(EmitKind::Summary, "summary",
                   "a short summary: parameters, entry points, op counts"),
        clEnumValN(EmitKind::LLVM, "llvm",
                   "the optimized LLVM IR the CPU backend generates"),
        clEnumValN(EmitKind::PTX, "ptx",
                   "the PTX of every kernel the CUDA backend generates "
                   "(for --cuda-arch)")),
    cl::cat(category));

cl::opt<int64_t> batch("batch",
                       cl::desc("Batch size of the inputs of a config "
                                "(default: dynamic; 1 with --emit=cost)"),
                       cl::init(0), cl::cat(category));
cl::opt<int64_t> seq("seq",
                     cl::desc("Sequence length of the inputs of a config "
                              "(default: dynamic; 128 with --emit=cost)"),
                     cl::init(0), cl::cat(category));

cl::opt<std::string> dtype(
    "dtype",
    cl::desc("Compute type of a model config: f32 (default), bf16 or f16 "
             "(mixed precision: f32 parameters cast to it where used, f32 "
             "logits and loss)"),
    cl::init("f32"), cl::cat(category));

/// The backends an artifact can be built for (TargetBackend.h).
enum class TargetKind { CPU, CUDA };
cl::opt<TargetKind> target(
    "target",
    cl::desc("Build an artifact for this target in the -o directory instead "
             "of printing"),
    cl::values(clEnumValN(TargetKind::CPU, "cpu",
                          "this machine's CPU (or --cpu): code through "
                          "kiln-cpu-pipeline, OpenMP threads"),
               clEnumValN(TargetKind::CUDA, "cuda",
                          "NVIDIA GPUs (--cuda-arch): host code plus "
                          "kernels through kiln-cuda-pipeline")),
    cl::cat(category));
cl::opt<std::string> cudaArch(
    "cuda-arch",
    cl::desc("GPU architecture of --target cuda and --emit=ptx: sm_90 "
             "(default, H100/H200), sm_80 (A100), ..."),
    cl::init("sm_90"), cl::cat(category));
cl::opt<std::string> cudaImage(
    "cuda-image",
    cl::desc("Kernels embedded in a cuda module.so: ptx (default; the "
             "driver compiles them at load), cubin or fatbin (need ptxas "
             "here and a driver as new as the toolkit there)"),
    cl::init("ptx"), cl::cat(category));
cl::opt<std::string> cudaToolkit(
    "cuda-toolkit",
    cl::desc("CUDA toolkit directory; its ptxas checks every kernel "
             "(default /usr/local/cuda)"),
    cl::init("/usr/local/cuda"), cl::cat(category));
cl::opt<std::string> weightsPath(
    "weights",
    cl::desc("Weights for the artifact: a safetensors file, a sharded "
             "checkpoint's model.safetensors.index.json, or a save_pretrained "
             "directory; matched by name (a base or task class's prefix is "
             "mapped) and shape, floats cast to the parameters' dtype "
             "(default: a directory input's own weights, else initialize "
             "from the init rules)"),
    cl::value_desc("path"), cl::init(""), cl::cat(category));
cl::opt<uint64_t> seed("seed",
                       cl::desc("Seed of the init rules (default 0)"),
                       cl::init(0), cl::cat(category));
cl::opt<std::string> cpu(
    "cpu",
    cl::desc("CPU to generate code for: native (default for --target cpu), "
             "x86-64-v3, x86-64-v4; the host code of --target cuda defaults "
             "to x86-64, for any GPU machine"),
    cl::init("native"), cl::cat(category));
cl::opt<std::string> matmulTile(
    "matmul-tile",
    cl::desc("Register tile of the CPU matmuls, ROWSxCOLUMNS (default: "
             "chosen for --cpu: 8x32 with AVX-512 on AMD, 6x64 on Intel, 6x16 "
             "with AVX2; COLUMNS a power of two; recorded "
             "in the manifest's target_options)"),
    cl::value_desc("MxN"), cl::init(""), cl::cat(category));
cl::opt<int64_t> matmulKBlock(
    "matmul-k-block",
    cl::desc("Steps of k a CPU matmul panel takes at a time, 0 for all of K "
             "(default: chosen so that a block of rhs rows fills half the "
             "L1 cache; recorded in the manifest's target_options)"),
    cl::value_desc("N"), cl::init(-1), cl::cat(category));
cl::opt<std::string> int8Dot(
    "int8-dot",
    cl::desc("Dot products of the CPU's int8 matmuls (--quantize "
             "int8-dynamic, int8-static): amx (AMX-INT8 tiles), vnni "
             "(AVX-512 VNNI), avx2 (vpmaddwd) or generic (portable vector "
             "ops); default: the best --cpu has; recorded in the manifest's "
             "target_options"),
    cl::value_desc("amx|vnni|avx2|generic"), cl::init(""), cl::cat(category));
cl::opt<std::string> bf16Dot(
    "bf16-dot",
    cl::desc("Kernels of the CPU's bf16 matmuls and attention (--dtype bf16): "
             "amx (AMX-BF16 tiles; attention as flash-attention tile "
             "kernels where its head dims are multiples of 32), avx512 "
             "(AVX512-BF16's vdpbf16ps in register tiles; attention in the "
             "fused f32 row loop), f32 (operands widened to f32 for the f32 "
             "register tiles, any CPU; attention in the fused f32 row loop) "
             "or none (plain loops, attention in the fused f32 row loop); "
             "default: amx where --cpu has AMX-BF16, else avx512 on AMD "
             "cores with AVX512-BF16, else f32 (Intel's vdpbf16ps runs at "
             "half the FMA rate); recorded in the manifest's "
             "target_options"),
    cl::value_desc("amx|avx512|f32|none"), cl::init(""), cl::cat(category));
cl::opt<kiln::WeightPacking> packWeights(
    "pack-weights",
    cl::desc("CPU inference artifacts: how the matmuls' linear weights "
             "become column panels (f32 [out / w, in, w], w the tile's "
             "columns; bf16 for AMX or vdpbf16ps in the kernel's pairs), "
             "which the kernels read in place instead of copying a panel "
             "at a time on every call: load (the default without "
             "--kv-cache: the runtime packs them when it opens the "
             "artifact; the weights file stays a checkpoint), file (the "
             "weights file holds the panels: no copy when the runtime maps "
             "it; --pack-weights alone means this) or none (each call "
             "copies its panels; the default with --kv-cache, whose "
             "one-row decoding steps are faster so); recorded in the "
             "manifest's target_options.packed_weights and "
             "parameters[*].packed"),
    cl::ValueOptional,
    cl::values(clEnumValN(kiln::WeightPacking::AtLoad, "load",
                          "packed by the runtime when it loads the artifact"),
               clEnumValN(kiln::WeightPacking::InFile, "file",
                          "panels in the weights file"),
               clEnumValN(kiln::WeightPacking::InFile, "",
                          "(no value) the same as file"),
               clEnumValN(kiln::WeightPacking::None, "none",
                          "row-major weights")),
    cl::init(kiln::WeightPacking::AtLoad), cl::cat(category));
cl::opt<std::string> kvCache(
    "kv-cache",
    cl::desc("Causal LMs (gpt2, llama): also build prefill(input_ids, "
             "lengths, cache...) and decode_step(input_ids, positions, "
             "cache...), which keep every layer's keys and values in a cache "
             "of N slots per row updated in place (kiln generate uses them); "
             "'max' for the model's position limit"),
    cl::value_desc("N|max"), cl::init(""), cl::cat(category));
cl::opt<bool> scoreHead(
    "score-head",
    cl::desc("Causal LMs (gpt2, llama): also build score(input_ids, lengths) "
             "-> scores, a linear head score.weight [1, hidden] on each row's "
             "last token (a reward model; on by itself with --objective "
             "reward)"),
    cl::init(false), cl::cat(category));
cl::opt<bool> hiddenStates(
    "hidden-states",
    cl::desc("Causal LMs (gpt2, llama): also build hidden_states(input_ids) "
             "-> hidden [batch, seq, width], the final hidden states the LM "
             "head reads (a distillation teacher's, for a student's "
             "--distill-hidden term)"),
    cl::init(false), cl::cat(category));
cl::opt<int64_t> hiddenProjection(
    "hidden-projection",
    cl::desc("With --hidden-states: project them to width N through a "
             "learned distill_projection.weight [N, hidden], so a narrow "
             "student's match a wider teacher's"),
    cl::value_desc("N"), cl::init(0), cl::cat(category));
cl::opt<std::string> distillHidden(
    "distill-hidden",
    cl::desc("--objective distill: add a hidden-state term comparing the "
             "student's hidden_states with the teacher's per token: cosine "
             "(1 - cosine similarity) or mse; none (default). The student "
             "gets hidden_states (give --hidden-projection TEACHER_WIDTH "
             "when the widths differ) and train_step the teacher_hidden and "
             "hidden_coef inputs"),
    cl::value_desc("none|cosine|mse"), cl::init("none"), cl::cat(category));
cl::opt<std::string> attention(
    "attention",
    cl::desc("How kiln.attention is lowered: fused (the default: one "
             "flash-attention style loop nest per op, no score matrix in "
             "memory, and the fused kiln.attention_grad in training) or "
             "decomposed (batched matmuls and a softmax over the scores)"),
    cl::value_desc("fused|decomposed"), cl::init("fused"), cl::cat(category));
cl::opt<bool> verbose("v", cl::desc("Print progress while building an artifact"),
                      cl::init(false), cl::cat(category));
cl::opt<bool> timing(
    "timing",
    cl::desc("Print where the compile time went on stderr, as a tree: "
             "building the model and the training graph, each pass of the "
             "lowering, LLVM's optimization and code generation, linking"),
    cl::init(false), cl::cat(category));

cl::opt<std::string> outputPath("o", cl::desc("Output file, or the artifact directory with --target (default: stdout)"),
                                cl::value_desc("file"), cl::init("-"),
                                cl::cat(category));

cl::opt<bool> json("json", cl::desc("Cost report as JSON (--emit=cost)"),
                   cl::init(false), cl::cat(category));
cl::opt<bool> perOp("per-op",
                    cl::desc("Cost report row per op instead of per op kind "
                             "(--emit=cost)"),
                    cl::init(false), cl::cat(category));
cl::opt<double> peakGflops(
    "peak-gflops",
    cl::desc("Peak compute of the target in GFLOP/s (--emit=cost; default: "
             "kiln-cost-report's, 520)"),
    cl::init(520.0), cl::cat(category));
cl::opt<double> bandwidthGbs(
    "bandwidth-gbs",
    cl::desc("Memory bandwidth of the target in GB/s (--emit=cost; default: "
             "kiln-cost-report's, 60)"),
    cl::init(60.0), cl::cat(category));
cl::opt<int64_t> dynamicDimSize(
    "dynamic-dim-size",
    cl::desc("Size assumed for dynamic dimensions left in the graph "
             "(--emit=cost; mainly for .mlir inputs)"),
    cl::init(1), cl::cat(category));

enum class Mode { Inference, Train, Calibrate };
cl::opt<Mode> mode(
    "mode", cl::desc("What the graph is for"), cl::init(Mode::Inference),
    cl::values(clEnumValN(Mode::Inference, "inference",
                          "forward only (default)"),
               clEnumValN(Mode::Calibrate, "calibrate",
                          "forward, and calibrate(inputs) -> the largest "
                          "|input| per channel of every linear layer, which "
                          "kiln calibrate gathers for --quantize int8-static"),
               clEnumValN(Mode::Train, "train",
                          "also train_step(inputs, targets, lr) -> (loss, "
                          "grad_norm), updating the parameters in place, "
                          "and eval_step(inputs, targets) -> loss")),
    cl::cat(category));
cl::opt<std::string> objective(
    "objective",
    cl::desc("What --mode train trains for: lm (default; next-token "
             "cross-entropy, targets -100 ignored: pretraining and kiln sft), "
             "dpo (train_step(input_ids, targets, reference_logprobs, beta, "
             "nll_coef, lr): chosen rows then rejected rows, a static even --batch; "
             "kiln dpo) or grpo (train_step(input_ids, targets, "
             "sample_logprobs, reference_logprobs, advantages, kl_coef, clip, "
             "lr); kiln grpo) or reward (a score head and train_step(input_ids, "
             "lengths, lr), the Bradley-Terry loss on chosen rows then "
             "rejected rows, a static even --batch; kiln reward) or ppo (a "
             "value head values(input_ids) -> values and train_step(input_ids, "
             "targets, sample_logprobs, advantages, returns, sample_values, "
             "clip, value_clip, vf_coef, lr); kiln ppo) or distill "
             "(train_step(input_ids, targets, teacher_logits, alpha, "
             "temperature, reverse, lr): alpha T^2 KL to the teacher's "
             "softened distribution plus (1 - alpha) cross-entropy; kiln "
             "distill) or contrastive (a clip model: train_step(input_ids, "
             "pixel_values, attention_mask, lr), CLIP's symmetric InfoNCE "
             "loss over the batch's image-text pairs; kiln pretrain --task "
             "clip). dpo, grpo and ppo also get token_logprobs(input_ids, "
             "targets) -> logprobs"),
    cl::init("lm"), cl::cat(category));
cl::opt<std::string> optimizerName(
    "optimizer", cl::desc("Optimizer of --mode train: adamw (default) or sgd"),
    cl::init("adamw"), cl::cat(category));
cl::opt<double> weightDecay(
    "weight-decay",
    cl::desc("Weight decay of --mode train (default 0.01; AdamW: decoupled, "
             "SGD: added to the gradient), on parameters of rank >= 2"),
    cl::init(0.01), cl::cat(category));
cl::opt<double> beta1("beta1", cl::desc("AdamW beta1 (default 0.9)"),
                      cl::init(0.9), cl::cat(category));
cl::opt<double> beta2("beta2", cl::desc("AdamW beta2 (default 0.999)"),
                      cl::init(0.999), cl::cat(category));
cl::opt<double> adamEps("adam-eps", cl::desc("AdamW epsilon (default 1e-8)"),
                        cl::init(1e-8), cl::cat(category));
cl::opt<double> momentum("momentum",
                         cl::desc("SGD momentum (default 0.9; 0: none)"),
                         cl::init(0.9), cl::cat(category));
cl::opt<double> maxGradNorm(
    "max-grad-norm",
    cl::desc("Clip gradients to this global L2 norm (default 1.0; 0: off)"),
    cl::init(1.0), cl::cat(category));
cl::opt<bool> attentionMaskInput(
    "attention-mask",
    cl::desc("gpt2, llama: forward also takes attention_mask (i64 [B, S], "
             "0 = padding, as in transformers) after input_ids"),
    cl::init(false), cl::cat(category));
cl::opt<bool> positionIdsInput(
    "position-ids",
    cl::desc("gpt2, llama: forward also takes position_ids (i64 [B, S]; "
             "default 0..S-1), last"),
    cl::init(false), cl::cat(category));
cl::opt<std::string> quantize(
    "quantize",
    cl::desc("Store linear layers' weights as integer codes: w8 (int8, a "
             "scale per output channel), w4g32, w4g64, w4g128 (int4 in groups "
             "of N inputs), w8g<N>; append -asym for unsigned codes with zero "
             "points; int8-dynamic (W8A8: w8 weights, activations quantized "
             "per token at run time, int8 matmuls with i32 sums); "
             "int8-static (the same with one activation scale per layer from "
             "--calibration); fp8 (e4m3 "
             "weights and activations with per-tensor scales, cuBLASLt's fp8 "
             "gemm; --target cuda only). The LM head "
             "stays float unless --quantize-lm-head (docs/quantization.md)"),
    cl::value_desc("scheme"), cl::cat(category));
cl::opt<std::string> calibration(
    "calibration",
    cl::desc("Activation statistics written by kiln calibrate from this "
             "model compiled with --mode calibrate (--calibration-gram for "
             "Gram matrices): for --quantize int8-static, --rounding gptq|awq, "
             "--smoothquant, and --prune wanda|sparsegpt|heads|ffn"),
    cl::value_desc("FILE.safetensors"), cl::init(""), cl::cat(category));
cl::opt<std::string> rounding(
    "rounding",
    cl::desc("How --quantize chooses the weights' codes: rtn (round to "
             "nearest, the default), gptq (each column's rounding error "
             "spread over the next ones against the layer's calibration "
             "inputs) or awq (per-channel scales searched against them, "
             "the input divided by them at run time); gptq and awq need "
             "--calibration FILE with Gram matrices"),
    cl::value_desc("rtn|gptq|awq"), cl::init("rtn"), cl::cat(category));
cl::opt<double> smoothquant(
    "smoothquant",
    cl::desc("SmoothQuant for --quantize int8-dynamic or int8-static: "
             "migrate the "
             "activations' outliers into the weights with strength ALPHA in "
             "[0, 1] (0.5 is the paper's default), from --calibration FILE"),
    cl::value_desc("ALPHA"), cl::init(-1), cl::cat(category));
cl::opt<bool> calibrationGram(
    "calibration-gram",
    cl::desc("--mode calibrate: also return each linear layer's input Gram "
             "matrix (Σ x xᵀ, [in, in]) for --rounding gptq"),
    cl::init(false), cl::cat(category));
cl::opt<bool> calibrationHistogram(
    "calibration-histogram",
    cl::desc("--mode calibrate: also return each linear layer's input, "
             "which kiln calibrate --range percentile|mse bins by |x|"),
    cl::init(false), cl::cat(category));
cl::list<std::string> quantizeOnly(
    "quantize-only",
    cl::desc("Quantize only parameters whose names match one of these globs"),
    cl::CommaSeparated, cl::value_desc("glob,..."), cl::cat(category));
cl::list<std::string> quantizeSkip(
    "quantize-skip",
    cl::desc("Leave parameters whose names match one of these globs in float"),
    cl::CommaSeparated, cl::value_desc("glob,..."), cl::cat(category));
cl::opt<bool> quantizeLmHead(
    "quantize-lm-head",
    cl::desc("Quantize the LM head too: lm_head.*, or a head tied to the "
             "embedding (its product reads int8 codes of the table, which "
             "stays float for the lookup; the artifact grows by the codes)"),
    cl::init(false), cl::cat(category));
cl::opt<std::string> prune(
    "prune",
    cl::desc("Set weights of the linear layers to zero: magnitude (the "
             "smallest |w|), wanda (|w|·‖x‖ per output row, from "
             "--calibration), sparsegpt (one-shot with the Hessian-based "
             "update of the others, from --calibration), or 2:4 (magnitude "
             "with --sparsity 2:4); composes with --quantize (rtn) and "
             "--mode train, which keeps the zeros. Or remove whole parts, "
             "the least important by weight norm (or by their output on "
             "--calibration text), building a smaller model from sliced "
             "--weights: heads (attention heads), ffn (MLP channels) or "
             "heads+ffn, a --sparsity fraction of each layer's "
             "(docs/pruning.md)"),
    cl::value_desc("method"), cl::cat(category));
cl::opt<std::string> sparsity(
    "sparsity",
    cl::desc("--prune's sparsity: the fraction of each layer's weights set "
             "to zero, in [0, 1) (default 0.5), or N:M, at most N nonzeros "
             "in every M consecutive inputs (2:4)"),
    cl::value_desc("S|N:M"), cl::init("0.5"), cl::cat(category));
cl::opt<std::string> prunedConfig(
    "pruned-config",
    cl::desc("--prune heads|ffn|heads+ffn: also write the smaller model's "
             "config (with pruned_heads and pruned_ffn_channels) here, to "
             "compile its checkpoints later"),
    cl::value_desc("FILE.json"), cl::init(""), cl::cat(category));
cl::opt<std::string> sparseFormat(
    "sparse-format",
    cl::desc("How pruned weights are stored: dense (the zeros stored, the "
             "default) or compressed (2:4: two values and their positions "
             "per four weights, 56% of the bytes; unstructured, from "
             "--csr-min-sparsity on: compressed sparse rows, 6 bytes per "
             "kept weight); compressed artifacts are for inference"),
    cl::value_desc("dense|compressed"), cl::init("dense"), cl::cat(category));
cl::opt<std::string> csrMinSparsity(
    "csr-min-sparsity",
    cl::desc("--sparse-format compressed with an unstructured --sparsity: "
             "the sparsity from which weights are stored as compressed "
             "sparse rows (default 0.5, the measured break-even); below it "
             "they stay dense"),
    cl::value_desc("S"), cl::init(""), cl::cat(category));
cl::opt<bool> pruneGlobal(
    "prune-global",
    cl::desc("--prune magnitude: one threshold over all pruned layers "
             "instead of the sparsity in each"),
    cl::init(false), cl::cat(category));
cl::list<std::string> pruneOnly(
    "prune-only",
    cl::desc("Prune only parameters whose names match one of these globs"),
    cl::CommaSeparated, cl::value_desc("glob,..."), cl::cat(category));
cl::list<std::string> pruneSkip(
    "prune-skip",
    cl::desc("Leave parameters whose names match one of these globs dense"),
    cl::CommaSeparated, cl::value_desc("glob,..."), cl::cat(category));
cl::opt<bool> configKeys(
    "config-keys",
    cl::desc("Print what each model family does with each config key "
             "(Markdown; docs/reference/ModelConfigKeys.md) and exit"),
    cl::init(false), cl::cat(category));
const char *overview = R"(Kiln compiler driver

Reads a model config (.json, Hugging Face style keys; "model_type" selects
the family; a save_pretrained directory gives its config.json and weights)
or a kiln IR file (.mlir) and prints:
  --emit=kiln        the graph as built (or parsed), verified
  --emit=decomposed  the graph after kiln-decompose, canonicalize and cse
  --emit=cost        the kiln-cost-report of the graph
  --emit=summary     parameter count, entry point signatures, op counts
  --emit=llvm        the optimized LLVM IR of the CPU backend
  --emit=ptx         the PTX kernels of the CUDA backend (--cuda-arch)

With --target cpu -o NAME.kiln it writes an artifact instead: module.so,
manifest.json and weights.safetensors (from --weights, or initialized from
the init rules with --seed); see docs/artifacts.md. With --target cuda the
artifact's module.so launches PTX kernels (--cuda-arch) through the CUDA
driver the runtime loads; the toolkit's ptxas checks every kernel when it
is installed (docs/cuda.md).

With --mode train the graph also gets a next-token cross-entropy loss (or
the module's own @loss), its gradient (kiln-autodiff) and an optimizer step
(kiln-optimizer): entry points train_step and eval_step beside forward.
For configs, --batch and --seq fix the input shapes (0 means dynamic, `?`)
and --dtype bf16|f16 builds a mixed-precision graph: f32 parameters (and
optimizer state), activations in bf16/f16, f32 logits and loss.
Unset, they are dynamic, except with --emit=cost, where they default to
batch 1 and seq 128 (the report's first line says which were used).
For .mlir inputs, --batch and --seq are ignored; dynamic dimensions count as
--dynamic-dim-size in the cost report.

Examples:
  kiln-compile models/gpt2-tiny.json --target cpu -o /tmp/gpt2-tiny.kiln
  kiln-compile ./my-llama --target cpu -o /tmp/my-llama.kiln
  kiln-compile --config-keys
  kiln-compile models/gpt2-tiny.json --mode train --optimizer adamw \
      --batch 8 --seq 64 --target cpu -o /tmp/gpt2-tiny-train.kiln
  kiln-compile models/gpt2-tiny.json --mode train --dtype bf16 \
      --batch 8 --seq 64 --target cpu -o /tmp/gpt2-tiny-bf16-train.kiln
  kiln-compile models/gpt2-tiny.json --target cuda --cuda-arch sm_90 \
      -o /tmp/gpt2-tiny-cuda.kiln
  kiln-compile models/gpt2-tiny.json --emit=ptx --cuda-arch sm_80
  kiln-compile models/gpt2-small.json --emit=kiln --batch 1 --seq 1024
  kiln-compile models/bert-base.json --emit=cost --seq 512 --json
  kiln-compile models/mlp.mlir --emit=decomposed -o mlp.decomposed.mlir
)";

/// The size a config's input dimension gets: the option when given (0 means
/// dynamic), else dynamic, or `costDefault` for the cost report.
int64_t getInputSize(const cl::opt<int64_t> &option, int64_t costDefault) {
  if (option.getNumOccurrences())
    return option > 0 ? option.getValue() : ShapedType::kDynamic;
  return emit == EmitKind::Cost ? costDefault : ShapedType::kDynamic;
}

std::string formatSize(int64_t size) {
  return ShapedType::isDynamic(size) ? "? (dynamic)" : std::to_string(size);
}

int fail(const llvm::Twine &message) {
  llvm::WithColor::error(llvm::errs(), "kiln-compile") << message << "\n";
  return 1;
}

/// Loads the input as a module: builds it from a config, or parses IR.
/// The sliced weights of a structurally pruned model (removed at exit).
std::optional<std::string> structuredWeights;
struct RemoveStructuredWeights {
  ~RemoveStructuredWeights() {
    if (structuredWeights)
      llvm::sys::fs::remove(*structuredWeights);
  }
} removeStructuredWeights;

bool isStructuredPruning() {
  return prune == "heads" || prune == "ffn" || prune == "heads+ffn";
}

/// --prune heads|ffn|heads+ffn: ranks and removes heads and channels in
/// `config` and slices --weights to match into a temporary file, which
/// becomes the weights the model compiles with.
llvm::Error pruneStructurally(llvm::json::Object &config) {
  if (!prune.getNumOccurrences() || !isStructuredPruning()) {
    if (!prunedConfig.empty())
      return llvm::createStringError(
          "--pruned-config needs --prune heads, ffn or heads+ffn");
    return llvm::Error::success();
  }
  if (weightsPath.empty())
    return llvm::createStringError(
        "--prune " + prune +
        " ranks heads and channels by their weights: give --weights "
        "CHECKPOINT");
  auto parsed = kiln::PruneSparsity::parse(sparsity);
  if (!parsed)
    return llvm::createStringError("--sparsity: " +
                                   llvm::toString(parsed.takeError()));
  if (parsed->semiStructured())
    return llvm::createStringError(
        "--prune " + prune +
        " takes a fraction of each layer's heads or channels, not N:M");
  kiln::StructuredPruningOptions options;
  options.heads = prune != "ffn";
  options.channels = prune != "heads";
  options.fraction = parsed->fraction;
  options.calibrationPath = calibration;
  llvm::SmallString<128> path;
  if (std::error_code ec = llvm::sys::fs::createTemporaryFile(
          "kiln-pruned", "safetensors", path))
    return llvm::createStringError("cannot create a temporary file: " +
                                   ec.message());
  structuredWeights = std::string(path);
  auto result =
      kiln::pruneStructured(config, weightsPath, options, *structuredWeights);
  if (!result)
    return llvm::createStringError("--prune " + prune + ": " +
                                   llvm::toString(result.takeError()));
  config = std::move(result->config);
  if (verbose)
    llvm::errs() << llvm::formatv(
        "kiln-compile: removed {0} of {1} heads and {2} of {3} MLP channels\n",
        result->headsRemoved, result->headsTotal, result->channelsRemoved,
        result->channelsTotal);
  if (!prunedConfig.empty())
    if (llvm::Error error = kiln::writeModelConfig(config, prunedConfig))
      return error;
  return llvm::Error::success();
}

FailureOr<OwningOpRef<ModuleOp>> loadInput(MLIRContext &context) {
  if (inputPath != "-" && !llvm::sys::fs::exists(inputPath)) {
    fail("no such file: '" + inputPath + "'");
    return failure();
  }
  if (llvm::sys::path::extension(inputPath) == ".json") {
    auto config = kiln::loadModelConfig(inputPath);
    if (!config) {
      fail(llvm::toString(config.takeError()));
      return failure();
    }
    kiln::BuildOptions options;
    options.batch = getInputSize(batch, /*costDefault=*/1);
    options.seq = getInputSize(seq, /*costDefault=*/128);
    options.compute = *kiln::parseComputeType(dtype);
    options.training = mode == Mode::Train;
    options.attentionMask = attentionMaskInput;
    options.positionIds = positionIdsInput;
    options.scoreHead =
        scoreHead || (mode == Mode::Train && objective == "reward");
    options.valueHead = mode == Mode::Train && objective == "ppo";
    options.hiddenStates =
        hiddenStates || hiddenProjection > 0 ||
        (mode == Mode::Train && objective == "distill" &&
         distillHidden != "none");
    options.hiddenProjection = hiddenProjection;
    if (!kvCache.empty()) {
      int64_t slots = 0;
      if (kvCache == "max") {
        options.kvCache = kiln::BuildOptions::kKVCacheMax;
      } else if (llvm::StringRef(kvCache).getAsInteger(10, slots) ||
                 slots < 1) {
        fail("--kv-cache must be a positive number of slots or 'max', not '" +
             kvCache + "'");
        return failure();
      } else {
        options.kvCache = slots;
      }
    }
    if (llvm::Error error = pruneStructurally(*config)) {
      fail(llvm::toString(std::move(error)));
      return failure();
    }
    auto module = kiln::buildModel(context, *config, options);
    if (!module) {
      fail(inputPath + ": " + llvm::toString(module.takeError()));
      return failure();
    }
    return std::move(*module);
  }

  if (!kvCache.empty() || scoreHead || hiddenStates ||
      hiddenProjection.getNumOccurrences()) {
    fail("--kv-cache, --score-head, --hidden-states and --hidden-projection "
         "apply to model configs (.json)");
    return failure();
  }
  if (attentionMaskInput || positionIdsInput) {
    fail("--attention-mask and --position-ids apply to model configs (.json)");
    return failure();
  }
  if (dtype.getNumOccurrences()) {
    fail("--dtype applies to model configs (.json); the element types of '" +
         inputPath + "' are written in its IR");
    return failure();
  }
  std::string message;
  auto file = openInputFile(inputPath, &message);
  if (!file) {
    fail(message);
    return failure();
  }
  llvm::SourceMgr sourceMgr;
  sourceMgr.AddNewSourceBuffer(std::move(file), llvm::SMLoc());
  // Parse errors are reported through the default handler with locations.
  OwningOpRef<ModuleOp> module =
      parseSourceFile<ModuleOp>(sourceMgr, ParserConfig(&context));
  if (!module) {
    fail("could not parse '" + inputPath + "'");
    return failure();
  }
  return std::move(module);
}
/// Digits grouped in threes.
std::string withCommas(int64_t value) {
  std::string digits = std::to_string(value), out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i && (digits.size() - i) % 3 == 0)
      out += ',';
    out += digits[i];
  }
  return out;
}

/// Parameters, entry points and op counts, for people skimming a model.
void printSummary(ModuleOp module, llvm::raw_ostream &os) {
  int64_t tensors = 0, elements = 0, trainable = 0;
  int64_t stateTensors = 0, stateElements = 0;
  llvm::MapVector<Type, int64_t> elementsByType;
  for (auto param : module.getOps<kiln::ParameterOp>()) {
    auto type = param.getTensorType();
    if (param->hasAttr(kiln::attrs::kOptimizerState)) {
      ++stateTensors;
      stateElements += type.getNumElements();
      continue;
    }
    ++tensors;
    elements += type.getNumElements();
    elementsByType[type.getElementType()] += type.getNumElements();
    if (param.getTrainable())
      trainable += type.getNumElements();
  }
  os << "parameters   " << withCommas(elements) << " in " << tensors
     << " tensors (" << withCommas(trainable) << " trainable)";
  for (auto [type, count] : elementsByType)
    os << "; " << type << " " << withCommas(count);
  os << "\n";
  if (stateTensors)
    os << "state        " << withCommas(stateElements) << " in "
       << stateTensors << " optimizer state tensors\n";
  for (auto func : module.getOps<func::FuncOp>()) {
    if (func.isExternal())
      continue;
    os << "entry        @" << func.getSymName() << "(";
    llvm::interleaveComma(func.getArgumentTypes(), os);
    os << ") -> (";
    llvm::interleaveComma(func.getResultTypes(), os);
    os << ")\n";
    llvm::MapVector<StringRef, int64_t> counts;
    int64_t total = 0;
    func.walk([&](Operation *op) {
      if (op == func.getOperation() || isa<func::ReturnOp>(op))
        return;
      ++counts[op->getName().getStringRef()];
      ++total;
    });
    auto sorted = counts.takeVector();
    llvm::stable_sort(sorted, [](auto &a, auto &b) { return a.second > b.second; });
    os << "  ops        " << total << ":";
    for (auto &[name, count] : sorted)
      os << " " << name << " " << count;
    os << "\n";
  }
}

/// The kernel choices given on the command line.
kiln::CPUKernelOverrides kernelOverrides() {
  kiln::CPUKernelOverrides overrides;
  overrides.matmulTile = matmulTile;
  overrides.int8Dot = int8Dot;
  overrides.bf16Dot = bf16Dot;
  if (packWeights.getNumOccurrences())
    overrides.packWeights = packWeights;
  else if (!kvCache.empty())
    // A decoding step multiplies one row per sequence: over row-major
    // weights its panels are widened to twelve accumulators, where a
    // stored 64-column panel gives four (batch 1: 55 against 40 tokens/s
    // on gpt2-small; docs/performance.md).
    overrides.packWeights = kiln::WeightPacking::None;
  if (matmulKBlock.getNumOccurrences())
    overrides.matmulKBlock = matmulKBlock;
  return overrides;
}
} // namespace

int main(int argc, char **argv) {
  llvm::InitLLVM initLLVM(argc, argv);
  // MLIR's --mlir-print-ir-before=PASS, --mlir-print-ir-after=PASS (and the
  // rest of the pass manager's debugging options) for the CPU lowering
  // (lowerToArtifactLLVM applies them), whose passes are registered so
  // that the options know their names; hidden from --help, listed by
  // --help-hidden.
  registerTransformsPasses();
  kiln::registerKilnPasses();
  kiln::registerKilnConversionPasses();
  kiln::registerKilnTargetCommonPasses();
  kiln::registerKilnCPUPipeline();
  registerPassManagerCLOptions();
  cl::HideUnrelatedOptions(category);
  cl::ParseCommandLineOptions(argc, argv, overview);

  if (configKeys) {
    std::string message;
    auto output = openOutputFile(outputPath, &message);
    if (!output)
      return fail(message);
    kiln::printConfigKeyReference(output->os());
    output->keep();
    return 0;
  }
  if (inputPath.empty())
    return fail("no input: give a model config (.json), a save_pretrained "
                "directory or kiln IR (.mlir); see --help");
  // A save_pretrained directory: its config.json, and its weights unless
  // --weights names others.
  if (llvm::sys::fs::is_directory(inputPath)) {
    std::string dir = inputPath;
    llvm::SmallString<256> config(dir);
    llvm::sys::path::append(config, "config.json");
    if (!llvm::sys::fs::exists(config))
      return fail("'" + dir + "' is a directory without a config.json");
    inputPath.setValue(std::string(config));
    if (weightsPath.empty()) {
      for (const char *name :
           {"model.safetensors", "model.safetensors.index.json"}) {
        llvm::SmallString<256> weights(dir);
        llvm::sys::path::append(weights, name);
        if (llvm::sys::fs::exists(weights))
          weightsPath.setValue(dir);
      }
    }
  }

  if (batch < 0 || seq < 0)
    return fail("--batch and --seq must be positive (or 0 for dynamic)");
  if ((peakGflops.getNumOccurrences() && peakGflops <= 0) ||
      (bandwidthGbs.getNumOccurrences() && bandwidthGbs <= 0))
    return fail("--peak-gflops and --bandwidth-gbs must be positive");
  if (dynamicDimSize < 0)
    return fail("--dynamic-dim-size must be non-negative");
  if (!kiln::parseComputeType(dtype))
    return fail("unknown --dtype '" + dtype +
                "' (expected f32, bf16 or f16)");

  std::string attentionMode = attention;
  if (attentionMode != "fused" && attentionMode != "decomposed")
    return fail("unknown --attention '" + attentionMode +
                "' (expected fused or decomposed)");
  std::vector<std::string> keep;
  if (attentionMode == "fused")
    keep.push_back("kiln.attention");

  DialectRegistry registry;
  registry.insert<kiln::KilnDialect, func::FuncDialect, tensor::TensorDialect,
                  arith::ArithDialect, quant::QuantDialect>();
  // Which kept composites the fused kernels take: training graphs are built
  // (kiln-autodiff) before any pipeline runs.
  kiln::registerKilnToLinalgInterfaces(registry);
  MLIRContext context(registry);
  context.loadAllAvailableDialects();

  // Reported when the manager goes out of scope, after everything below.
  DefaultTimingManager timingManager;
  timingManager.setEnabled(timing);
  timingManager.setDisplayMode(DefaultTimingManager::DisplayMode::Tree);
  TimingScope rootTiming = timingManager.getRootScope();

  TimingScope loading = rootTiming.nest("read or build the model");
  auto module = loadInput(context);
  if (failed(module))
    return 1;
  loading.stop();
  if (failed(verify(**module)))
    return fail("'" + inputPath + "' does not verify");
  // Pruning marks the linear weights (before a training graph adds other
  // reads of them); the compiler zeroes them when it writes the weights.
  std::string pruneMethod, pruneSparsity;
  if (prune.getNumOccurrences()) {
    pruneMethod = prune;
    if (isStructuredPruning()) {
      // Done when the model was built (pruneStructurally).
      if (llvm::sys::path::extension(inputPath) != ".json")
        return fail("--prune " + pruneMethod +
                    " builds a smaller model from its config: give a "
                    "model config (.json), not IR");
      for (const char *name :
           {"prune-global", "prune-only", "prune-skip", "sparse-format",
            "csr-min-sparsity"})
        if (cl::getRegisteredOptions().lookup(name)->getNumOccurrences())
          return fail(std::string("--") + name + " is for --prune magnitude, "
                      "2:4, wanda and sparsegpt");
      pruneSparsity = kiln::PruneSparsity::parse(sparsity)->name();
    } else if (pruneMethod == "2:4") {
      if (sparsity.getNumOccurrences() && sparsity != "2:4")
        return fail("--prune 2:4 is magnitude pruning at --sparsity 2:4, not " +
                    sparsity);
      pruneMethod = "magnitude";
      pruneSparsity = "2:4";
    } else {
      pruneSparsity = sparsity;
    }
  }
  if (prune.getNumOccurrences() && !isStructuredPruning()) {
    auto method = kiln::parsePruneMethod(pruneMethod);
    if (!method)
      return fail("--prune: " + llvm::toString(method.takeError()) +
                  " (or 2:4, heads, ffn, heads+ffn)");
    auto parsed = kiln::PruneSparsity::parse(pruneSparsity);
    if (!parsed)
      return fail("--sparsity: " + llvm::toString(parsed.takeError()));
    pruneSparsity = parsed->name();
    if (pruneGlobal && (*method != kiln::PruneMethod::Magnitude ||
                        parsed->semiStructured()))
      return fail("--prune-global takes --prune magnitude and a fractional "
                  "--sparsity: wanda, sparsegpt and N:M choose within each "
                  "layer");
    if (*method != kiln::PruneMethod::Magnitude && calibration.empty())
      return fail("--prune " + pruneMethod +
                  " needs --calibration FILE with the layers' Gram matrices: "
                  "compile the model with --mode calibrate "
                  "--calibration-gram and run kiln calibrate on it "
                  "(docs/pruning.md)");
    if (mode == Mode::Calibrate)
      return fail("--mode calibrate measures the dense model: compile it "
                  "without --prune");
    if (rounding != "rtn")
      return fail("--prune with --rounding " + rounding +
                  ": GPTQ and AWQ move every weight, the pruned zeros "
                  "included; use --rounding rtn");
    if (sparseFormat != "dense" && sparseFormat != "compressed")
      return fail("--sparse-format '" + sparseFormat +
                  "': expected dense or compressed");
    bool compress = sparseFormat == "compressed";
    if (compress && parsed->semiStructured() && pruneSparsity != "2:4")
      return fail("--sparse-format compressed stores 2:4 or unstructured "
                  "sparsity; --sparsity " + pruneSparsity + " is neither");
    if (csrMinSparsity.getNumOccurrences() && !compress)
      return fail("--csr-min-sparsity is for --sparse-format compressed");
    if (compress && mode == Mode::Train)
      return fail("--sparse-format compressed builds inference artifacts: the "
                  "compressed parts are not trainable (train with the dense "
                  "format, which keeps the zeros)");
    if (compress && quantize.getNumOccurrences())
      return fail("--sparse-format compressed does not combine with "
                  "--quantize yet: use the dense format");
    kiln::KilnPrunePassOptions pruneOptions;
    pruneOptions.compress = compress;
    if (csrMinSparsity.getNumOccurrences()) {
      double value;
      if (llvm::StringRef(csrMinSparsity).getAsDouble(value) ||
          !(value >= 0 && value <= 1))
        return fail("--csr-min-sparsity '" + csrMinSparsity +
                    "': expected a fraction in [0, 1]");
      pruneOptions.csrMinSparsity = value;
    }
    pruneOptions.method = pruneMethod;
    pruneOptions.sparsity = pruneSparsity;
    pruneOptions.global = pruneGlobal;
    pruneOptions.only.assign(pruneOnly.begin(), pruneOnly.end());
    pruneOptions.skip.assign(pruneSkip.begin(), pruneSkip.end());
    // kiln-prune's remarks (weights it leaves dense) are notes here.
    ScopedDiagnosticHandler notes(&context, [](Diagnostic &diag) {
      if (diag.getSeverity() != DiagnosticSeverity::Remark)
        return failure();
      llvm::WithColor::note(llvm::errs(), "kiln-compile") << diag.str() << "\n";
      return success();
    });
    PassManager pm(&context);
    pm.addPass(kiln::createKilnPrunePass(pruneOptions));
    if (failed(pm.run(**module)))
      return fail("pruning '" + inputPath + "' failed");
  } else if (!prune.getNumOccurrences()) {
    for (const char *name : {"sparsity", "prune-global", "prune-only",
                             "prune-skip", "sparse-format", "csr-min-sparsity"})
      if (cl::getRegisteredOptions().lookup(name)->getNumOccurrences())
        return fail(std::string("--") + name + " needs --prune");
  }
  if (mode == Mode::Train) {
    kiln::TrainingOptions training;
    std::optional<kiln::TrainingObjective> parsed =
        kiln::parseTrainingObjective(objective);
    if (!parsed)
      return fail("unknown --objective '" + objective +
                  "' (expected lm, dpo, grpo, reward, ppo, distill or "
                  "contrastive)");
    training.objective = *parsed;
    if (distillHidden == "cosine")
      training.hiddenTerm = kiln::HiddenStateTerm::Cosine;
    else if (distillHidden == "mse")
      training.hiddenTerm = kiln::HiddenStateTerm::MSE;
    else if (distillHidden != "none")
      return fail("--distill-hidden '" + distillHidden +
                  "': expected none, cosine or mse");
    if (distillHidden != "none" &&
        *parsed != kiln::TrainingObjective::Distillation)
      return fail("--distill-hidden needs --objective distill");
    training.optimizer = optimizerName;
    training.weightDecay = weightDecay;
    training.beta1 = beta1;
    training.beta2 = beta2;
    training.epsilon = adamEps;
    training.momentum = momentum;
    training.maxGradNorm = maxGradNorm;
    training.keep = keep;
    TimingScope graph = rootTiming.nest("build the training graph");
    if (llvm::Error error = kiln::buildTrainingEntryPoints(**module, training))
      return fail(inputPath + ": " + llvm::toString(std::move(error)));
  } else {
    for (const char *name : {"objective", "optimizer", "weight-decay", "beta1", "beta2",
                             "adam-eps", "momentum", "max-grad-norm",
                             "distill-hidden"})
      if (cl::getRegisteredOptions().lookup(name)->getNumOccurrences())
        return fail(std::string("--") + name + " needs --mode train");
  }
  if (mode == Mode::Calibrate) {
    if (quantize.getNumOccurrences())
      return fail("--mode calibrate measures the float model: compile it "
                  "without --quantize");
    PassManager pm(&context);
    kiln::KilnCalibrationEntryPassOptions calibrationOptions;
    calibrationOptions.gram = calibrationGram;
    calibrationOptions.histogram = calibrationHistogram;
    pm.addPass(kiln::createKilnCalibrationEntryPass(calibrationOptions));
    if (failed(pm.run(**module)))
      return fail("adding the calibrate entry point to '" + inputPath +
                  "' failed");
  }
  if (calibrationGram && mode != Mode::Calibrate)
    return fail("--calibration-gram needs --mode calibrate");
  if (calibrationHistogram && mode != Mode::Calibrate)
    return fail("--calibration-histogram needs --mode calibrate");
  std::string sourceSHA256;
  if (auto buffer = llvm::MemoryBuffer::getFileOrSTDIN(inputPath))
    sourceSHA256 = kiln::sha256Hex((*buffer)->getBuffer());

  std::string quantizeScheme;
  // The ranges int8-static's scales come from (recorded in the manifest).
  std::optional<kiln::CalibrationRanges> calibrationRanges;
  if (quantize.getNumOccurrences()) {
    auto scheme = kiln::WeightScheme::parse(quantize, /*asymmetric=*/false);
    if (!scheme)
      return fail(llvm::toString(scheme.takeError()));
    if (mode == Mode::Train)
      return fail("--quantize builds inference artifacts: quantized weights "
                  "are not trainable (compile with --mode inference)");
    quantizeScheme = scheme->name();
    // fp8's products are cuBLASLt's: code for the CPU backend (--target
    // cpu, --emit=llvm) is refused, and code for the CUDA backend
    // (--target cuda, --emit=ptx) needs an sm_89 or later --cuda-arch. The
    // graph views (--emit=kiln, decomposed, cost, summary) are of no
    // backend and show the quantized graph.
    bool cudaCode = target.getNumOccurrences() ? target == TargetKind::CUDA
                                               : emit == EmitKind::PTX;
    bool cpuCode = target.getNumOccurrences() ? target == TargetKind::CPU
                                              : emit == EmitKind::LLVM;
    if (scheme->fp8 && cpuCode)
      return fail(std::string("--quantize fp8 needs --target cuda") +
                  (target.getNumOccurrences() ? "" : " (or --emit=ptx)") +
                  ": its e4m3 matmuls run on cuBLASLt's fp8 gemm (sm_89 "
                  "and later); the CPU backend" +
                  (target.getNumOccurrences() ? "" : " (--emit=llvm)") +
                  " has no fp8 kernel (use int8-dynamic or w8 on the CPU)");
    if (scheme->fp8 && cudaCode) {
      // The architecture first: one LLVM does not know (sm_89a) is an
      // error of its own, not a pass of this check.
      llvm::Expected<int> arch = kiln::checkCudaArch(cudaArch);
      if (!arch)
        return fail(llvm::toString(arch.takeError()));
      if (*arch < 89)
        return fail("--quantize fp8 needs --cuda-arch sm_89 or later "
                    "(cuBLASLt's fp8 gemm; sm_90 is H100), not " +
                    cudaArch);
    }
    // fp8 quantizes f32 linears: a --dtype bf16/f16 model's linears read
    // bf16/f16 inputs, so none would be quantized.
    if (scheme->fp8 && dtype != "f32" &&
        llvm::sys::path::extension(inputPath) == ".json")
      return fail("--quantize fp8 quantizes f32 linears (e4m3 codes of f32 "
                  "weights and inputs), and --dtype " +
                  dtype + " builds a model whose linears read " + dtype +
                  ": it has none to quantize (compile with --dtype f32)");
    if (scheme->fp8 && rounding != "rtn")
      return fail("--quantize fp8 rounds to nearest (--rounding rtn) only");
    if (rounding != "rtn" && rounding != "gptq" && rounding != "awq")
      return fail("--rounding '" + rounding + "': expected rtn, gptq or awq");
    if (rounding != "rtn" && calibration.empty())
      return fail("--rounding " + rounding + " needs --calibration FILE: "
                  "compile the model with --mode calibrate "
                  "--calibration-gram and run kiln calibrate on it "
                  "(docs/quantization.md)");
    if (rounding == "awq" && smoothquant.getNumOccurrences())
      return fail("--rounding awq searches its own per-channel scales; it "
                  "does not combine with --smoothquant");
    if (smoothquant.getNumOccurrences() &&
        (smoothquant < 0 || smoothquant > 1 ||
         !scheme->quantizesActivations()))
      return fail("--smoothquant takes an alpha in [0, 1] and --quantize "
                  "int8-dynamic or int8-static");
    if (smoothquant.getNumOccurrences() && calibration.empty())
      return fail("--smoothquant needs --calibration FILE from kiln "
                  "calibrate (docs/quantization.md)");
    if (scheme->staticActivations || rounding != "rtn" ||
        smoothquant.getNumOccurrences()) {
      if (calibration.empty())
        return fail("--quantize int8-static needs --calibration FILE: "
                    "compile the model with --mode calibrate and run kiln "
                    "calibrate on it (docs/quantization.md)");
      llvm::Expected<kiln::CalibrationRanges> ranges =
          kiln::attachCalibration(**module, calibration, sourceSHA256);
      if (!ranges)
        return fail(llvm::toString(ranges.takeError()));
      // SmoothQuant's static scale is of x · diag(1 / s), whose clipped
      // range a threshold of x does not give.
      if (scheme->staticActivations && ranges->method != "minmax" &&
          smoothquant.getNumOccurrences())
        return fail("--smoothquant with --quantize int8-static needs a "
                    "min-max calibration file: '" +
                    calibration + "' has " + ranges->method +
                    " ranges of the unsmoothed inputs (run kiln calibrate "
                    "without --range)");
      if (scheme->staticActivations)
        calibrationRanges = *ranges;
    } else if (!calibration.empty() &&
               pruneMethod != "wanda" && pruneMethod != "sparsegpt" &&
                   !isStructuredPruning()) {
      return fail("--calibration is for --quantize int8-static, --rounding "
                  "gptq or --smoothquant (" +
                  quantizeScheme + " with rtn needs no calibration), and "
                  "--prune wanda or sparsegpt");
    }
    kiln::KilnQuantizePassOptions quantizeOptions;
    quantizeOptions.scheme = quantize;
    quantizeOptions.only.assign(quantizeOnly.begin(), quantizeOnly.end());
    quantizeOptions.skip.assign(quantizeSkip.begin(), quantizeSkip.end());
    quantizeOptions.lmHead = quantizeLmHead;
    quantizeOptions.rounding = rounding;
    quantizeOptions.smoothquant =
        smoothquant.getNumOccurrences() ? smoothquant.getValue() : -1.0;
    // kiln-quantize's remarks (weights fp8 leaves in float, and why) are
    // notes here.
    ScopedDiagnosticHandler notes(&context, [](Diagnostic &diag) {
      if (diag.getSeverity() != DiagnosticSeverity::Remark)
        return failure();
      llvm::WithColor::note(llvm::errs(), "kiln-compile") << diag.str() << "\n";
      return success();
    });
    // fp8 weights (e4m3 codes) in the module: those kiln-quantize adds.
    auto fp8Weights = [&] {
      int64_t count = 0;
      (*module)->walk([&](kiln::ParameterOp param) {
        count += isa<Float8E4M3FNType>(param.getTensorType().getElementType());
      });
      return count;
    };
    int64_t fp8Before = scheme->fp8 ? fp8Weights() : 0;
    PassManager pm(&context);
    pm.addPass(kiln::createKilnQuantizePass(quantizeOptions));
    TimingScope quantizing = rootTiming.nest("quantize the weights");
    if (failed(pm.run(**module)))
      return fail("quantizing '" + inputPath + "' failed");
    // An fp8 artifact with no fp8 product would be the float model under
    // fp8's name.
    if (scheme->fp8 && fp8Weights() == fp8Before)
      return fail("--quantize fp8 quantized no weight of '" + inputPath +
                  "': it takes the weights of f32 linears whose [out, in] "
                  "are multiples of 16 (a note above says why it left "
                  "each candidate in float)");
  } else {
    for (const char *name : {"quantize-only", "quantize-skip",
                             "quantize-lm-head", "rounding", "smoothquant"})
      if (cl::getRegisteredOptions().lookup(name)->getNumOccurrences())
        return fail(std::string("--") + name + " needs --quantize");
    if (!calibration.empty() &&
        pruneMethod != "wanda" && pruneMethod != "sparsegpt" &&
                   !isStructuredPruning())
      return fail("--calibration needs --quantize, or --prune wanda or "
                  "sparsegpt");
  }

  // An inference artifact stores a mixed-precision model's weights in the
  // type they are used in (kiln-narrow-parameters): same values, half the
  // bytes, no cast per call.
  if (mode == Mode::Inference &&
      (target.getNumOccurrences() || emit == EmitKind::LLVM ||
       emit == EmitKind::PTX)) {
    PassManager pm(&context);
    pm.addPass(kiln::createKilnNarrowParametersPass());
    if (failed(pm.run(**module)))
      return fail("narrowing the parameters of '" + inputPath + "' failed");
  }

  if (target.getNumOccurrences()) {
    if (emit.getNumOccurrences())
      return fail("--emit and --target are exclusive: --target writes an "
                  "artifact");
    if (outputPath == "-")
      return fail("--target needs -o NAME.kiln, the artifact directory");
    kiln::CompileOptions options;
    kiln::CPUTargetOptions host;
    host.cpu = cpu;
    switch (target) {
    case TargetKind::CPU: {
      for (const char *name : {"cuda-arch", "cuda-image", "cuda-toolkit"})
        if (cl::getRegisteredOptions().lookup(name)->getNumOccurrences())
          return fail(std::string("--") + name + " needs --target cuda");
      auto backend = kiln::createCPUTarget(host, kernelOverrides());
      if (!backend)
        return fail(llvm::toString(backend.takeError()));
      options.target = std::move(*backend);
      break;
    }
    case TargetKind::CUDA: {
      for (const char *name : {"matmul-tile", "matmul-k-block", "int8-dot",
                               "bf16-dot", "pack-weights"})
        if (cl::getRegisteredOptions().lookup(name)->getNumOccurrences())
          return fail(std::string("--") + name +
                      " needs --target cpu (the CUDA backend's matmuls run "
                      "on cuBLASLt)");
      // The host code of a GPU artifact runs on any x86-64 GPU machine.
      if (!cpu.getNumOccurrences())
        host.cpu = "x86-64";
      kiln::CUDATargetOptions cuda;
      cuda.arch = cudaArch;
      cuda.image = cudaImage;
      cuda.toolkit = cudaToolkit;
      auto backend = kiln::createCUDATarget(cuda, host);
      if (!backend)
        return fail(llvm::toString(backend.takeError()));
      options.target = std::move(*backend);
      break;
    }
    }
    options.seed = seed;
    if (structuredWeights) {
      options.weightsPath = *structuredWeights;
    }
    else if (!weightsPath.empty())
      options.weightsPath = weightsPath.getValue();
    options.sourcePath = inputPath;
    options.sourceSHA256 = sourceSHA256;
    auto sizeJson = [](const cl::opt<int64_t> &option) -> llvm::json::Value {
      if (option.getNumOccurrences() && option > 0)
        return option.getValue();
      return nullptr;
    };
    options.recordedOptions =
        llvm::json::Object{{"batch", sizeJson(batch)},
                           {"seq", sizeJson(seq)},
                           {"cpu", host.cpu},
                           {"attention", attentionMode},
                           {"mode", mode == Mode::Train       ? "train"
                                    : mode == Mode::Calibrate ? "calibrate"
                                                              : "inference"}};
    if (!quantizeScheme.empty())
      options.recordedOptions["quantize"] = quantizeScheme;
    if (!kvCache.empty())
      options.recordedOptions["kv_cache"] = kvCache.getValue();
    // (What calibrate returns: kiln calibrate reads it from the entry
    // point, a reader of the manifest from here.)
    if (calibrationGram)
      options.recordedOptions["calibration_gram"] = true;
    if (calibrationHistogram)
      options.recordedOptions["calibration_histogram"] = true;
    if (!calibration.empty()) {
      options.recordedOptions["calibration"] = calibration.getValue();
      options.calibrationPath = calibration.getValue();
    }
    if (!quantizeScheme.empty())
      options.recordedOptions["rounding"] = rounding.getValue();
    if (calibrationRanges) {
      options.recordedOptions["calibration_range"] = calibrationRanges->method;
      if (calibrationRanges->method == "percentile")
        options.recordedOptions["calibration_percentile"] =
            std::strtod(calibrationRanges->percentile.c_str(), nullptr);
    }
    if (smoothquant.getNumOccurrences())
      options.recordedOptions["smoothquant"] = smoothquant.getValue();
    if (!pruneMethod.empty()) {
      options.recordedOptions["prune"] = pruneMethod;
      options.recordedOptions["sparsity"] = pruneSparsity;
      if (pruneGlobal)
        options.recordedOptions["prune_global"] = true;
      if (sparseFormat == "compressed")
        options.recordedOptions["sparse_format"] = "compressed";
      if (csrMinSparsity.getNumOccurrences())
        options.recordedOptions["csr_min_sparsity"] = csrMinSparsity.getValue();
      // The checkpoint the sliced weights came from.
      if (structuredWeights)
        options.recordedOptions["weights"] = weightsPath.getValue();
    }
    // The compute type of a built model; .mlir inputs carry their own.
    if (llvm::sys::path::extension(inputPath) == ".json")
      options.recordedOptions["dtype"] = dtype.getValue();
    if (mode == Mode::Train)
      options.recordedOptions["training"] = llvm::json::Object{
          {"objective", objective.getValue()},
          {"distill_hidden", distillHidden.getValue()},
          {"optimizer", optimizerName.getValue()},
          {"weight_decay", weightDecay.getValue()},
          {"beta1", beta1.getValue()},
          {"beta2", beta2.getValue()},
          {"eps", adamEps.getValue()},
          {"momentum", momentum.getValue()},
          {"max_grad_norm", maxGradNorm.getValue()}};
    options.keep = keep;
    options.verbose = verbose;
    TimingScope artifact = rootTiming.nest("compile the artifact");
    options.timing = &artifact;
    if (llvm::Error error =
            kiln::compileArtifact(**module, options, outputPath))
      return fail(llvm::toString(std::move(error)));
    return 0;
  }

  if (emit == EmitKind::PTX) {
    kiln::CUDATargetOptions cuda;
    cuda.arch = cudaArch;
    cuda.toolkit = cudaToolkit;
    auto ptx = kiln::generatePTX(**module, cuda, keep);
    if (!ptx)
      return fail(llvm::toString(ptx.takeError()));
    std::string message;
    auto output = openOutputFile(outputPath, &message);
    if (!output)
      return fail(message);
    for (const auto &[name, text] : *ptx)
      output->os() << "// kernel module " << name << "\n" << text << "\n";
    output->keep();
    return 0;
  }

  if (emit == EmitKind::LLVM) {
    kiln::CPUTargetOptions targetOptions;
    targetOptions.cpu = cpu;
    auto kernels = kiln::selectCPUKernelConfig(targetOptions);
    if (!kernels)
      return fail(llvm::toString(kernels.takeError()));
    if (llvm::Error error =
            kiln::applyKernelOverrides(*kernels, kernelOverrides()))
      return fail(llvm::toString(std::move(error)));
    if (failed(kiln::lowerToArtifactLLVM(**module, keep, *kernels)))
      return fail("lowering '" + inputPath + "' to LLVM failed");
    llvm::LLVMContext llvmContext;
    auto llvmModule =
        kiln::translateAndOptimize(**module, llvmContext, targetOptions, nullptr);
    if (!llvmModule)
      return fail(llvm::toString(llvmModule.takeError()));
    std::string message;
    auto output = openOutputFile(outputPath, &message);
    if (!output)
      return fail(message);
    (*llvmModule)->print(output->os(), nullptr);
    output->keep();
    return 0;
  }

  if (emit == EmitKind::Summary) {
    std::string message;
    auto output = openOutputFile(outputPath, &message);
    if (!output)
      return fail(message);
    output->os() << inputPath << "\n";
    printSummary(**module, output->os());
    output->keep();
    return 0;
  }

  if (emit != EmitKind::Cost) {
    std::string message;
    auto output = openOutputFile(outputPath, &message);
    if (!output)
      return fail(message);
    if (emit == EmitKind::Decomposed) {
      PassManager pm(&context);
      pm.addNestedPass<func::FuncOp>(kiln::createKilnDecomposePass());
      pm.addPass(createCanonicalizerPass());
      pm.addPass(createCSEPass());
      if (failed(pm.run(**module)))
        return fail("decomposing '" + inputPath + "' failed");
    }
    (*module)->print(output->os());
    output->os() << "\n";
    output->keep();
    return 0;
  }

  PassManager pm(&context);

  kiln::KilnCostReportPassOptions options;
  if (peakGflops.getNumOccurrences())
    options.peakGflops = peakGflops;
  if (bandwidthGbs.getNumOccurrences())
    options.bandwidthGbs = bandwidthGbs;
  options.dynamicDimSize = dynamicDimSize;
  options.json = json;
  options.perOp = perOp;
  if (!json && llvm::sys::path::extension(inputPath) == ".json")
    options.title = inputPath + ": batch " +
                    formatSize(getInputSize(batch, 1)) + ", seq " +
                    formatSize(getInputSize(seq, 128)) +
                    " (set with --batch / --seq)";
  options.outputFile = outputPath;
  pm.addPass(kiln::createKilnCostReportPass(options));
  LogicalResult result = pm.run(**module);
  if (failed(result))
    return fail("the cost report for '" + inputPath + "' failed");
  return 0;
}
