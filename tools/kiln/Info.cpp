//===- Info.cpp - kiln info: what an artifact holds ----------------------===//
//
// Describes an artifact from its manifest (on any machine), then checks
// that it loads where it can.
//
//===----------------------------------------------------------------------===//

#include "Driver.h"

#include "kiln/Runtime/ArtifactAbi.h"
#include "kiln/Runtime/CudaTarget.h"

#include <cmath>
#include <cstdio>

namespace kiln::driver {

namespace {

const char kInfoUsage[] =
    R"(USAGE: kiln info NAME.kiln

Prints the artifact's manifest (format, target and its options, source,
compile options, parameters, entry points with their inputs, outputs and
cost), then checks that the artifact loads.

OPTIONS:
  -h, --help            this text
)";

std::string joinOptions(const OptionMap &options) {
  std::string text;
  for (const auto &[key, value] : options)
    text += (text.empty() ? "" : ", ") + key + "=" + value.text;
  return text;
}

std::string describeSpecs(const std::vector<TensorSpec> &specs) {
  std::string text;
  for (const TensorSpec &spec : specs)
    text += (text.empty() ? "" : ", ") + spec.name + " " +
            dtypeName(spec.dtype) + " " + formatSpecShape(spec.shape) +
            (spec.inPlace ? " (in place)" : "");
  return text.empty() ? "none" : text;
}

/// "332416*B*S + 568*B*S^2" with the symbols' names.
std::string formatPolynomial(const CostModel &model,
                             const std::vector<CostTerm> &terms) {
  std::string text;
  for (const CostTerm &term : terms) {
    char coefficient[32];
    std::snprintf(coefficient, sizeof(coefficient), "%.10g",
                  std::abs(term.coefficient));
    if (!text.empty())
      text += term.coefficient < 0 ? " - " : " + ";
    else if (term.coefficient < 0)
      text += "-";
    text += coefficient;
    for (size_t i = 0; i < term.exponents.size(); ++i) {
      if (!term.exponents[i])
        continue;
      text += "*" + model.symbols[i].name;
      if (term.exponents[i] > 1)
        text += "^" + std::to_string(term.exponents[i]);
    }
  }
  return text.empty() ? "0" : text;
}

} // namespace

int infoCommand(int argc, char **argv) {
  Options options = parseOptions("info", argc, argv, 2, {}, kInfoUsage);
  Expected<Manifest> read = Manifest::read(options.artifact + "/" KILN_MANIFEST_FILE);
  if (!read) {
    // Artifact::open words a missing directory or manifest best.
    (void)openArtifact(options.artifact);
    fail(read.message());
  }
  const Manifest &m = *read;
  std::printf("artifact: %s\n", options.artifact.c_str());
  std::printf("format: kiln-artifact %d\n", m.formatVersion);
  std::printf("target: %s", targetName(m.target));
  if (!m.targetOptions.empty())
    std::printf(" (%s)", joinOptions(m.targetOptions).c_str());
  std::printf("\n");
  if (!m.source.empty())
    std::printf("source: %s\n", joinOptions(m.source).c_str());
  if (!m.compileOptions.empty())
    std::printf("compile options: %s\n", joinOptions(m.compileOptions).c_str());
  std::printf("module: %s\n", m.module.c_str());
  uint64_t elements = 0, bytes = 0, stateElements = 0;
  size_t states = 0;
  for (const ParameterSpec &p : m.parameters) {
    if (p.state) {
      ++states;
      stateElements += static_cast<uint64_t>(numElements(p.shape));
      continue;
    }
    // (What the file holds: a weight packed when loaded is stored
    // without its panels' padding.)
    int64_t stored = numElements(p.packed ? p.packed->fileShape() : p.shape);
    elements += static_cast<uint64_t>(stored);
    bytes += static_cast<uint64_t>(stored) * dtypeSize(p.dtype);
  }
  std::printf("weights: %s (%zu parameters, %llu elements, %llu bytes)\n",
              m.weights.c_str(), m.parameters.size() - states,
              static_cast<unsigned long long>(elements),
              static_cast<unsigned long long>(bytes));
  if (states)
    std::printf("optimizer state: %zu tensors, %llu elements (zero at the "
                "start, not in the weights file)\n",
                states, static_cast<unsigned long long>(stateElements));
  for (const ParameterSpec &p : m.parameters) {
    // A weight the matmuls read as column panels: its model shape too.
    std::string packed;
    if (p.packed)
      packed = " (column panels of " + std::to_string(p.packed->width) +
               (p.packed->pairs == 2 ? ", rows in pairs" : "") + " of the " +
               formatShape(p.packed->shape) +
               (p.packed->inOut ? " [in, out]" : " [out, in]") + " weight" +
               (p.packed->atLoad ? ", packed when loaded" : "") + ")";
    std::printf("  %s %s %s%s%s\n", p.name.c_str(), dtypeName(p.dtype),
                formatShape(p.shape).c_str(),
                p.state ? " state" : (p.trainable ? " trainable" : ""),
                packed.c_str());
  }
  std::printf("entry points: %zu\n", m.entryPoints.size());
  for (const EntryPointSpec &e : m.entryPoints) {
    std::printf("  %s (symbol %s)\n", e.name.c_str(), e.symbol.c_str());
    std::printf("    inputs: %s\n", describeSpecs(e.inputs).c_str());
    std::printf("    outputs: %s\n", describeSpecs(e.outputs).c_str());
    std::printf("    parameters: %zu\n", e.parameters.size());
    if (e.flops)
      std::printf("    cost: %.6g flops%s\n", *e.flops,
                  e.hasStaticInputs() ? "" : " (inputs have dynamic dims)");
    if (e.costModel) {
      std::printf("    cost model: flops = %s\n",
                  formatPolynomial(*e.costModel, e.costModel->flops).c_str());
      std::printf("                bytes = %s\n",
                  formatPolynomial(*e.costModel, e.costModel->bytes).c_str());
    } else if (!e.costModelNote.empty()) {
      std::printf("    no cost model: %s\n", e.costModelNote.c_str());
    }
  }
  std::fflush(stdout);
  // The description needs only the manifest; loading a CUDA artifact needs
  // a driver and a device, so where there are none it is not tried, and a
  // CPU artifact whose code this machine's CPU cannot run is described,
  // not an error.
  if (m.target == TargetKind::CPU) {
    if (Status s =
            checkHostCanRunCpuModule(options.artifact + "/" + m.module, m);
        !s) {
      std::printf("loads: not on this machine: %s\n", s.message().c_str());
      return 0;
    }
  }
  if (m.target == TargetKind::CUDA) {
    if (Status s = cudaDeviceStatus(); !s) {
      std::printf("loads: not checked on this machine: %s\n",
                  s.message().c_str());
      return 0;
    }
  }
  (void)openArtifact(options.artifact);
  std::printf("loads: ok\n");
  return 0;
}

} // namespace kiln::driver
