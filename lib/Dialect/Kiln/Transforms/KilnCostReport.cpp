//===- KilnCostReport.cpp - What a graph costs ----------------------------===//
//
// Sums CostOpInterface over each function and turns the totals into a
// roofline time estimate, energy and money. The numbers are estimates of
// the unfused graph (each op reads its operands and writes its results
// once); the fusion passes will lower the bytes, never the FLOPs.
//
//===----------------------------------------------------------------------===//

#include "kiln/Dialect/Kiln/IR/KilnOps.h"
#include "kiln/Dialect/Kiln/Transforms/Passes.h"
#include "kiln/Dialect/Kiln/Transforms/Quantization.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "llvm/ADT/MapVector.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/JSON.h"
#include "mlir/Support/FileUtilities.h"
#include "llvm/Support/ToolOutputFile.h"
#include "llvm/Support/raw_ostream.h"

namespace mlir::kiln {
#define GEN_PASS_DEF_KILNCOSTREPORTPASS
#include "kiln/Dialect/Kiln/Transforms/Passes.h.inc"
} // namespace mlir::kiln

using namespace mlir;
using namespace mlir::kiln;

namespace {
/// One row of the report: an op, or all ops of one kind.
struct CostRow {
  std::string name;
  int64_t count = 0;
  OpCost cost;
  double seconds = 0;
  double computeSeconds = 0;
};

/// Groups digits in threes: 124439808 -> 124,439,808.
std::string withCommas(double value) {
  std::string digits = llvm::formatv("{0:F0}", value).str();
  bool negative = !digits.empty() && digits[0] == '-';
  if (negative)
    digits.erase(0, 1);
  std::string out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i && (digits.size() - i) % 3 == 0)
      out += ',';
    out += digits[i];
  }
  return negative ? "-" + out : out;
}

/// 1.23 G, 456.7 M, ... for wide tables.
std::string humanize(double value, StringRef unit = "") {
  const char *prefixes[] = {"", "K", "M", "G", "T", "P"};
  int index = 0;
  while (std::abs(value) >= 1000 && index < 5) {
    value /= 1000;
    ++index;
  }
  return llvm::formatv("{0:F2} {1}{2}", value, prefixes[index], unit).str();
}

std::string humanizeSeconds(double seconds) {
  if (seconds >= 1)
    return llvm::formatv("{0:F3} s", seconds).str();
  if (seconds >= 1e-3)
    return llvm::formatv("{0:F3} ms", seconds * 1e3).str();
  return llvm::formatv("{0:F3} us", seconds * 1e6).str();
}

struct KilnCostReportPass
    : kiln::impl::KilnCostReportPassBase<KilnCostReportPass> {
  using KilnCostReportPassBase::KilnCostReportPassBase;

  void runOnOperation() final {
    if (peakGflops <= 0 || bandwidthGbs <= 0 || dynamicDimSize < 0) {
      getOperation()->emitError(
          "kiln-cost-report: peak-gflops and bandwidth-gbs must be positive "
          "and dynamic-dim-size non-negative");
      return signalPassFailure();
    }
    CostOptions options;
    options.dynamicDimSize = dynamicDimSize;
    ModuleOp module = getOperation();

    // Parameters.
    double paramCount = 0, paramBytes = 0, trainableCount = 0,
           quantizedCount = 0;
    int64_t paramTensors = 0;
    for (auto param : module.getOps<ParameterOp>()) {
      double n = getNumElements(param.getTensorType(), options);
      // A quantized weight counts its weights once, at its codes (two per
      // byte with 4 bits); its scales and zero points are bytes only.
      if (auto from = param->getAttrOfType<DictionaryAttr>(
              attrs::kQuantizedFrom)) {
        auto q = WeightQuantization::fromAttr(from);
        if (!q) {
          llvm::consumeError(q.takeError());
        } else if (q->part == QuantizedPart::Codes) {
          n = static_cast<double>(q->outDim()) * q->inDim();
          quantizedCount += n;
        } else {
          n = 0;
        }
      }
      paramCount += n;
      paramBytes += getTensorBytes(param.getTensorType(), options);
      if (param.getTrainable())
        trainableCount += n;
      ++paramTensors;
    }

    llvm::json::Array functionsJson;
    std::string text;
    llvm::raw_string_ostream os(text);
    os << "Kiln cost report";
    if (!title.empty())
      os << " - " << title;
    os << "\n";
    os << llvm::formatv("  parameters  {0} in {1} tensors ({2} trainable{3}), "
                        "{4}\n",
                        withCommas(paramCount), paramTensors,
                        withCommas(trainableCount),
                        quantizedCount ? ", " + withCommas(quantizedCount) +
                                             " quantized"
                                       : std::string(),
                        humanize(paramBytes, "B"));
    os << llvm::formatv("  roofline    {0} GFLOP/s peak, {1} GB/s memory; "
                        "dynamic dims taken as {2}\n",
                        peakGflops.getValue(), bandwidthGbs.getValue(),
                        dynamicDimSize.getValue());

    bool found = false;
    for (auto func : module.getOps<func::FuncOp>()) {
      if (!function.empty() && func.getSymName() != function)
        continue;
      found = true;
      reportFunction(func, options, os, functionsJson);
    }
    if (!function.empty() && !found) {
      module.emitError("kiln-cost-report: no function named '")
          << function << "'";
      return signalPassFailure();
    }

    std::string error;
    std::unique_ptr<llvm::ToolOutputFile> file;
    if (outputFile != "-") {
      file = openOutputFile(outputFile, &error);
      if (!file) {
        module.emitError("kiln-cost-report: ") << error;
        return signalPassFailure();
      }
    }
    llvm::raw_ostream &out = file ? file->os() : llvm::outs();
    if (json) {
      llvm::json::Object root{
          {"parameters", llvm::json::Object{{"count", paramCount},
                                            {"trainable", trainableCount},
                                            {"quantized", quantizedCount},
                                            {"tensors", paramTensors},
                                            {"bytes", paramBytes}}},
          {"assumptions",
           llvm::json::Object{{"peak_gflops", peakGflops.getValue()},
                              {"bandwidth_gbs", bandwidthGbs.getValue()},
                              {"watts", watts.getValue()},
                              {"price_per_kwh", pricePerKwh.getValue()},
                              {"calls", calls.getValue()},
                              {"dynamic_dim_size",
                               dynamicDimSize.getValue()}}},
          {"functions", std::move(functionsJson)}};
      if (!title.empty())
        root["title"] = title.getValue();
      out << llvm::formatv("{0:2}",
                                    llvm::json::Value(std::move(root)))
                   << "\n";
    } else {
      out << text;
    }
    out.flush();
    if (file)
      file->keep();
    markAllAnalysesPreserved();
  }

  /// Roofline time of one op: the slower of compute and memory.
  void addTime(CostRow &row, const OpCost &cost) {
    double compute = cost.flops / (peakGflops * 1e9);
    double memory = cost.bytes() / (bandwidthGbs * 1e9);
    row.seconds += std::max(compute, memory);
    if (compute >= memory)
      row.computeSeconds += compute;
  }

  void reportFunction(func::FuncOp func, const CostOptions &options,
                      llvm::raw_ostream &os, llvm::json::Array &out) {
    llvm::MapVector<StringRef, CostRow> byKind;
    std::vector<CostRow> perOpRows;
    CostRow total;
    total.name = "total";
    func.walk([&](CostOpInterface op) {
      OpCost cost = op.getCost(options);
      CostRow &kind = byKind[op->getName().getStringRef()];
      kind.name = op->getName().getStringRef().str();
      ++kind.count;
      kind.cost += cost;
      addTime(kind, cost);
      ++total.count;
      total.cost += cost;
      addTime(total, cost);
      if (perOp) {
        CostRow row;
        row.name = kind.name;
        row.count = 1;
        row.cost = cost;
        addTime(row, cost);
        perOpRows.push_back(row);
      }
    });

    std::vector<CostRow> kinds;
    for (auto &entry : byKind)
      kinds.push_back(entry.second);
    llvm::stable_sort(kinds, [](const CostRow &a, const CostRow &b) {
      return a.seconds > b.seconds;
    });

    double joulesPerCall = total.seconds * watts;
    double kwh = joulesPerCall * calls / 3.6e6;
    double intensity =
        total.cost.bytes() > 0 ? total.cost.flops / total.cost.bytes() : 0;

    auto rowJson = [](const CostRow &row) {
      return llvm::json::Object{
          {"op", row.name},
          {"count", row.count},
          {"flops", row.cost.flops},
          {"bytes_read", row.cost.bytesRead},
          {"bytes_written", row.cost.bytesWritten},
          {"intensity", row.cost.bytes() > 0
                            ? row.cost.flops / row.cost.bytes()
                            : 0.0},
          {"time_s", row.seconds},
          {"compute_bound_fraction",
           row.seconds > 0 ? row.computeSeconds / row.seconds : 0.0}};
    };
    llvm::json::Array kindsJson, opsJson;
    for (const CostRow &row : kinds)
      kindsJson.push_back(rowJson(row));
    for (const CostRow &row : perOpRows)
      opsJson.push_back(rowJson(row));
    llvm::json::Object funcJson{
        {"name", func.getSymName()},
        {"by_kind", std::move(kindsJson)},
        {"total", rowJson(total)},
        {"energy_j_per_call", joulesPerCall},
        {"energy_kwh", kwh},
        {"cost", kwh * pricePerKwh}};
    if (perOp)
      funcJson["ops"] = std::move(opsJson);
    out.push_back(std::move(funcJson));

    os << "\nfunction @" << func.getSymName() << "\n";
    auto printRow = [&](const CostRow &row) {
      double rowIntensity =
          row.cost.bytes() > 0 ? row.cost.flops / row.cost.bytes() : 0;
      os << llvm::formatv(
          "  {0,-22} {1,6} {2,14} {3,12} {4,12} {5,9:F2} {6,12} {7,8}\n",
          row.name, row.count, humanize(row.cost.flops, "FLOP"),
          humanize(row.cost.bytesRead, "B"),
          humanize(row.cost.bytesWritten, "B"), rowIntensity,
          humanizeSeconds(row.seconds),
          row.seconds == 0                               ? "-"
          : row.computeSeconds >= row.seconds * 0.5 ? "compute"
                                                          : "memory");
    };
    os << llvm::formatv(
        "  {0,-22} {1,6} {2,14} {3,12} {4,12} {5,9} {6,12} {7,8}\n", "op",
        "count", "FLOPs", "read", "written", "FLOP/B", "time", "bound");
    if (perOp)
      for (const CostRow &row : perOpRows)
        printRow(row);
    else
      for (const CostRow &row : kinds)
        printRow(row);
    os << "  " << std::string(104, '-') << "\n";
    printRow(total);
    os << llvm::formatv("  FLOPs per call        {0}\n",
                        withCommas(total.cost.flops));
    os << llvm::formatv("  bytes per call        {0} read, {1} written\n",
                        withCommas(total.cost.bytesRead),
                        withCommas(total.cost.bytesWritten));
    os << llvm::formatv("  arithmetic intensity  {0:F2} FLOP/byte\n",
                        intensity);
    os << llvm::formatv("  time per call         {0} (roofline estimate)\n",
                        humanizeSeconds(total.seconds));
    os << llvm::formatv("  energy                {0:F3} J per call; {1:F3} "
                        "kWh for {2} calls at {3} W\n",
                        joulesPerCall, kwh, withCommas(calls), watts.getValue());
    os << llvm::formatv("  money                 {0:F4} for {1} calls at "
                        "{2}/kWh\n",
                        kwh * pricePerKwh, withCommas(calls),
                        pricePerKwh.getValue());
  }
};
} // namespace
