//===- Bench.cpp - kiln bench: latency, throughput and GFLOP/s -----------===//
//
// Times an entry point: latency percentiles, tokens/s, and GFLOP/s and GB/s
// from the manifest's cost.
//
//===----------------------------------------------------------------------===//

#include "Driver.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>

namespace kiln::driver {

namespace {

const char kBenchUsage[] =
    R"(USAGE: kiln bench NAME.kiln [--entry NAME] --input NAME=FILE.npy ... [--warmup N] [--iters N]

Runs an entry point N times after some warm-up calls and prints the latency
(p50, p90, p99, min, mean, in ms); tokens/s when the first input is an
integer [batch, seq] (or [seq]) tensor, counting batch*seq tokens per call;
and GFLOP/s and GB/s from the entry point's cost in the manifest: its
"cost" for static input shapes, its "cost_model" evaluated at the inputs'
shapes for dynamic ones (GB/s counts the compiler's unfused estimate of the
bytes moved). Throughputs use the p50 latency. A CPU artifact's weights are
copied into memory of 2 MiB pages first, as for any command that calls an
artifact many times (kiln run reads them in the mapped file).

OPTIONS:
  --entry NAME          entry point to run (default: forward, or the only one)
  --input NAME=FILE     a .npy file for the input NAME; once per input (an
                        f32 file for a BF16 input, rounded to bf16)
  --warmup N            calls before timing (default 3)
  --iters N             timed calls (default 20)
  -h, --help            this text
)";

double percentile(const std::vector<double> &sorted, double p) {
  // Nearest rank.
  size_t rank = static_cast<size_t>(std::max(
      1.0, std::ceil(p / 100.0 * static_cast<double>(sorted.size()))));
  return sorted[std::min(rank, sorted.size()) - 1];
}

bool isInteger(DType dtype) {
  switch (dtype) {
  case DType::I64:
  case DType::I32:
  case DType::I16:
  case DType::I8:
  case DType::U8:
    return true;
  default:
    return false;
  }
}

} // namespace

int benchCommand(int argc, char **argv) {
  Options options = parseOptions("bench", argc, argv, 2,
                                 {"--entry", "--input", "--warmup", "--iters"},
                                 kBenchUsage);
  std::unique_ptr<Artifact> artifact =
      openArtifact(options.artifact, Artifact::OpenMode::Resident);
  const EntryPointSpec &entry = chooseEntry(*artifact, options.entry);
  std::vector<NpyArray> arrays;
  std::vector<NamedTensor> inputs = readInputs(entry, options.inputs, arrays);
  std::vector<Artifact::InPlaceTensor> inPlace =
      takeInPlaceInputs(entry, inputs, arrays);

  for (int64_t i = 0; i < options.warmup; ++i)
    (void)runOnce(*artifact, entry, inputs, inPlace);
  std::vector<double> ms;
  for (int64_t i = 0; i < options.iters; ++i) {
    auto start = std::chrono::steady_clock::now();
    std::vector<OwnedTensor> outputs = runOnce(*artifact, entry, inputs, inPlace);
    outputs.clear(); // Freeing the results is part of a call.
    auto stop = std::chrono::steady_clock::now();
    ms.push_back(std::chrono::duration<double, std::milli>(stop - start).count());
  }
  double mean = 0;
  for (double t : ms)
    mean += t / static_cast<double>(ms.size());
  std::sort(ms.begin(), ms.end());
  double p50 = percentile(ms, 50);

  std::printf("%s: entry point '%s', %lld iterations after %lld warm-up\n",
              artifact->dir().c_str(), entry.name.c_str(),
              static_cast<long long>(options.iters),
              static_cast<long long>(options.warmup));
  std::printf("latency (ms): p50 %.4f  p90 %.4f  p99 %.4f  min %.4f  mean "
              "%.4f\n",
              p50, percentile(ms, 90), percentile(ms, 99), ms.front(), mean);

  // tokens/s: the first declared input, if it is an integer [batch, seq].
  const TensorSpec *first = entry.inputs.empty() ? nullptr : &entry.inputs[0];
  const NamedTensor *firstInput = nullptr;
  for (const NamedTensor &input : inputs)
    if (first && input.name == first->name)
      firstInput = &input;
  if (first && firstInput && isInteger(first->dtype) &&
      (first->rank() == 1 || first->rank() == 2)) {
    int64_t tokens = numElements(firstInput->view.shape);
    std::printf("tokens/s: %.1f (%lld tokens per call, input '%s' %s)\n",
                static_cast<double>(tokens) / (p50 / 1000.0),
                static_cast<long long>(tokens), first->name.c_str(),
                formatShape(firstInput->view.shape).c_str());
  } else {
    std::printf("tokens/s: n/a (the first input is not an integer [batch, "
                "seq] tensor)\n");
  }

  // GFLOP/s and GB/s: the static cost, or the cost model at these shapes.
  std::vector<std::vector<int64_t>> shapes;
  for (const TensorSpec &spec : entry.inputs)
    for (const NamedTensor &input : inputs)
      if (input.name == spec.name)
        shapes.push_back(input.view.shape);
  std::optional<Cost> cost = entry.costFor(shapes);
  if (cost) {
    std::string source;
    if (!entry.hasStaticInputs()) {
      source = ", cost model at ";
      for (size_t i = 0; i < entry.costModel->symbols.size(); ++i) {
        const CostSymbol &symbol = entry.costModel->symbols[i];
        const auto &[input, axis] = symbol.dims.front();
        source += (i ? ", " : "") + symbol.name + "=" +
                  std::to_string(shapes[input][axis]);
      }
    }
    std::printf("GFLOP/s: %.3f (%.6g flops per call%s)\n",
                cost->flops / (p50 / 1000.0) / 1e9, cost->flops,
                source.c_str());
    // Manifests of older compilers give flops only.
    if (cost->bytes > 0)
      std::printf("GB/s: %.3f (%.6g bytes per call, unfused estimate)\n",
                  cost->bytes / (p50 / 1000.0) / 1e9, cost->bytes);
  } else if (!entry.flops && !entry.costModel) {
    std::printf("GFLOP/s: n/a (the manifest gives no cost)\n");
  } else if (!entry.costModel) {
    std::printf("GFLOP/s: n/a (dynamic shapes and no cost model%s%s)\n",
                entry.costModelNote.empty() ? "" : ": ",
                entry.costModelNote.c_str());
  } else {
    std::printf("GFLOP/s: n/a (the input shapes give different sizes to "
                "dims the cost model ties)\n");
  }
  return 0;
}

} // namespace kiln::driver
