//===- ArtifactFixture.h - Hand-built artifacts for runtime tests -*- C++ -*-===//
//
// Builds a real artifact directory without the compiler: module.so from a C
// file implementing the calling convention of docs/artifacts.md by hand
// (compiled with `cc -shared -fPIC`), manifest.json from a JSON value each
// test may edit, and weights.safetensors written by writeSafeTensors.
//
// The module's entry points, over an input x: F32 [?, 4] and a parameter
// w: F32 [4]:
//   forward     y[i,j] = x[i,j] * w[j] + 1
//   stats       rowsum[i] = sum_j x[i,j] * w[j] (F32 [?]); rows (I64 [])
//   transposed  y = 10 * x, returned column-major at offset 1
//   constant    c = {1, 2, 3, 4} from a static global (no inputs)
//   alias       a = x + 1 and b, a view of the same buffer
//   badshape    y returned as [n, 3] though declared [?, 4]
//   identity    y = x, returned as x's own descriptor (against the spec)
//   train       updates w -= 0.25 * x[0] and the state m += 1 in place;
//               loss = sum(w) after the update (F32 [])
// (trainingManifest() declares m as optimizer state and train as writing
// both.)
//
//===----------------------------------------------------------------------===//

#ifndef KILN_TEST_UNIT_RUNTIME_ARTIFACTFIXTURE_H
#define KILN_TEST_UNIT_RUNTIME_ARTIFACTFIXTURE_H

#include "TestFiles.h"
#include "kiln/Runtime/ArtifactAbi.h"
#include "kiln/Runtime/Manifest.h"
#include "kiln/Runtime/SafeTensors.h"

#include <nlohmann/json.hpp>

#include <map>

namespace kiln::runtime::testing {

/// The compiler flag that makes a test module report this runtime's ABI.
inline const std::string kAbiDefine =
    "-DABI_VERSION=" + std::to_string(KILN_MODULE_ABI_VERSION);

/// `kiln_module_signature` as a C definition of the signature of a
/// manifest (what kiln-compile embeds in module.so); empty when the
/// manifest does not parse (opening it fails before the module is looked
/// at).
struct ArtifactFixtureSignature {
  static std::string definition(const nlohmann::json &manifest) {
    Expected<Manifest> parsed = Manifest::parse(manifest.dump(2), "fixture");
    if (!parsed)
      return "";
    std::string escaped;
    for (char c : moduleSignature(*parsed)) {
      if (c == '\n')
        escaped += "\\n";
      else if (c == '"' || c == '\\')
        escaped += std::string("\\") + c;
      else
        escaped += c;
    }
    return "\nconst char kiln_module_signature[] = \"" + escaped + "\";\n";
  }
};

inline const char *kModuleSource = R"(
#include <stdint.h>
#include <stdlib.h>
typedef struct { float *allocated, *aligned; int64_t offset; } M0F;
typedef struct { int64_t *allocated, *aligned; int64_t offset; } M0I;
typedef struct { float *allocated, *aligned; int64_t offset, sizes[1], strides[1]; } M1;
typedef struct { float *allocated, *aligned; int64_t offset, sizes[2], strides[2]; } M2;

int kiln_abi_version(void) { return ABI_VERSION; }

static float at2(const M2 *m, int64_t i, int64_t j) {
  return m->aligned[m->offset + i * m->strides[0] + j * m->strides[1]];
}
static float at1(const M1 *m, int64_t j) {
  return m->aligned[m->offset + j * m->strides[0]];
}
static void contiguous2(M2 *m, float *buf, int64_t n, int64_t k) {
  m->allocated = m->aligned = buf; m->offset = 0;
  m->sizes[0] = n; m->sizes[1] = k; m->strides[0] = k; m->strides[1] = 1;
}

void kiln_entry_forward(void **args) {
  M2 *y = args[0]; const M2 *x = args[1]; const M1 *w = args[2];
  int64_t n = x->sizes[0];
  float *buf = malloc(sizeof(float) * n * 4);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < 4; ++j)
      buf[i * 4 + j] = at2(x, i, j) * at1(w, j) + 1;
  contiguous2(y, buf, n, 4);
}

#ifndef NO_EXTRA_ENTRIES
struct StatsResults { M1 rowsum; M0I rows; };
void kiln_entry_stats(void **args) {
  struct StatsResults *r = args[0]; const M2 *x = args[1]; const M1 *w = args[2];
  int64_t n = x->sizes[0];
  float *sums = malloc(sizeof(float) * n);
  for (int64_t i = 0; i < n; ++i) {
    sums[i] = 0;
    for (int64_t j = 0; j < 4; ++j)
      sums[i] += at2(x, i, j) * at1(w, j);
  }
  r->rowsum.allocated = r->rowsum.aligned = sums; r->rowsum.offset = 0;
  r->rowsum.sizes[0] = n; r->rowsum.strides[0] = 1;
  int64_t *rows = malloc(sizeof(int64_t));
  *rows = n;
  r->rows.allocated = r->rows.aligned = rows; r->rows.offset = 0;
}

void kiln_entry_transposed(void **args) {
  M2 *y = args[0]; const M2 *x = args[1];
  int64_t n = x->sizes[0];
  float *buf = malloc(sizeof(float) * (n * 4 + 1));
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < 4; ++j)
      buf[1 + j * n + i] = 10 * at2(x, i, j);
  y->allocated = y->aligned = buf; y->offset = 1;
  y->sizes[0] = n; y->sizes[1] = 4; y->strides[0] = 1; y->strides[1] = n;
}

static float constants[4] = {1, 2, 3, 4};
void kiln_entry_constant(void **args) {
  M1 *c = args[0];
  c->allocated = c->aligned = constants; c->offset = 0;
  c->sizes[0] = 4; c->strides[0] = 1;
}

struct AliasResults { M2 a; M2 b; };
void kiln_entry_alias(void **args) {
  struct AliasResults *r = args[0]; const M2 *x = args[1];
  int64_t n = x->sizes[0];
  float *buf = malloc(sizeof(float) * n * 4);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < 4; ++j)
      buf[i * 4 + j] = at2(x, i, j) + 1;
  contiguous2(&r->a, buf, n, 4);
  contiguous2(&r->b, buf, n, 4);
}

void kiln_entry_badshape(void **args) {
  M2 *y = args[0]; const M2 *x = args[1];
  int64_t n = x->sizes[0];
  float *buf = calloc(n * 3, sizeof(float));
  contiguous2(y, buf, n, 3);
}

void kiln_entry_identity(void **args) {
  *(M2 *)args[0] = *(const M2 *)args[1];
}

void kiln_entry_train(void **args) {
  M0F *loss = args[0]; const M2 *x = args[1]; M1 *w = args[2]; M1 *m = args[3];
  float *sum = malloc(sizeof(float));
  *sum = 0;
  for (int64_t j = 0; j < 4; ++j) {
    w->aligned[w->offset + j * w->strides[0]] -= 0.25f * at2(x, 0, j);
    m->aligned[m->offset + j * m->strides[0]] += 1;
    *sum += at1(w, j);
  }
  loss->allocated = loss->aligned = sum; loss->offset = 0;
}
#endif
)";

inline const std::vector<float> kWeights = {0.5f, 1.0f, 2.0f, -1.0f};

class ArtifactFixture : public ScratchDirTest {
protected:
  using json = nlohmann::json;

  std::string artifactDir() const { return path("model.kiln"); }

  static json tensorSpec(const std::string &name, const std::string &dtype,
                         std::vector<int64_t> shape) {
    return {{"name", name}, {"dtype", dtype}, {"shape", shape}};
  }

  /// The manifest of the module above, as kiln-compile would write it.
  static json defaultManifest() {
    json x = tensorSpec("x", "F32", {-1, 4});
    auto entry = [&](const std::string &name, json inputs, json outputs,
                     bool usesW) {
      json e = {{"name", name},
                {"symbol", "kiln_entry_" + name},
                {"inputs", inputs},
                {"outputs", outputs},
                {"parameters", usesW ? json::array({"w"}) : json::array()}};
      return e;
    };
    json entries = json::array(
        {entry("forward", {x}, {tensorSpec("y", "F32", {-1, 4})}, true),
         entry("stats", {x},
               {tensorSpec("rowsum", "F32", {-1}),
                tensorSpec("rows", "I64", {})},
               true),
         entry("transposed", {x}, {tensorSpec("y", "F32", {-1, 4})}, false),
         entry("constant", json::array(), {tensorSpec("c", "F32", {4})},
               false),
         entry("alias", {x},
               {tensorSpec("a", "F32", {-1, 4}),
                tensorSpec("b", "F32", {-1, 4})},
               false),
         entry("badshape", {x}, {tensorSpec("y", "F32", {-1, 4})}, false),
         entry("identity", {x}, {tensorSpec("y", "F32", {-1, 4})}, false)});
    entries[0]["cost"] = {{"flops", 8}};
    return {{"format", "kiln-artifact"},
            {"format_version", 1},
            {"target", "cpu"},
            {"target_options", {{"cpu", "x86-64-v3"}}},
            {"source", {{"path", "hand-written.c"}}},
            {"compile_options", {{"batch", nullptr}, {"seed", 0}}},
            {"module", "module.so"},
            {"weights", "weights.safetensors"},
            {"parameters",
             json::array({{{"name", "w"},
                           {"dtype", "F32"},
                           {"shape", {4}},
                           {"offset", 0},
                           {"size", 16},
                           {"trainable", true}}})},
            {"entry_points", entries}};
  }

  /// The default manifest plus optimizer state `m` (F32 [4], not in the
  /// weights) and the entry point `train`, which writes `w` and `m`.
  static json trainingManifest() {
    json manifest = defaultManifest();
    manifest["parameters"].push_back({{"name", "m"},
                                      {"dtype", "F32"},
                                      {"shape", {4}},
                                      {"trainable", false},
                                      {"state", true}});
    manifest["entry_points"].push_back(
        {{"name", "train"},
         {"inputs", json::array({tensorSpec("x", "F32", {-1, 4})})},
         {"outputs", json::array({tensorSpec("loss", "F32", {})})},
         {"parameters", json::array({"w", "m"})},
         {"writes_parameters", json::array({"w", "m"})}});
    return manifest;
  }

  static std::string signatureDefinition(const json &manifest) {
    return ArtifactFixtureSignature::definition(manifest);
  }

  /// Compiles `source` with `defines` into dir()/module.so; true on success.
  bool compileModule(const std::string &dir, const std::string &source,
                     const std::string &defines = kAbiDefine) const {
    std::string c = dir + "/module.c";
    {
      std::ofstream out(c);
      out << source;
    }
    std::string command = "cc -shared -fPIC -O1 " + defines + " -o '" + dir +
                          "/module.so' '" + c + "'";
    bool ok = std::system(command.c_str()) == 0;
    std::remove(c.c_str());
    return ok;
  }

  /// Writes a complete artifact: module, weights, then manifest (last).
  /// The module is built for `manifest` (its kiln_module_signature), as
  /// kiln-compile would; `signedFor` builds it for another manifest.
  void writeArtifact(const json &manifest = defaultManifest(),
                     const std::vector<NamedTensor> &weights =
                         {{"w", {DType::F32, {4}, kWeights.data()}}},
                     const std::string &defines = kAbiDefine,
                     const json *signedFor = nullptr) const {
    std::string dir = artifactDir();
    (void)std::system(("mkdir -p '" + dir + "'").c_str());
    ASSERT_TRUE(compileModule(
        dir,
        kModuleSource + signatureDefinition(signedFor ? *signedFor : manifest),
        defines));
    ASSERT_TRUE(writeSafeTensors(dir + "/weights.safetensors", weights));
    std::ofstream(dir + "/manifest.json") << manifest.dump(2);
  }
};

} // namespace kiln::runtime::testing

#endif // KILN_TEST_UNIT_RUNTIME_ARTIFACTFIXTURE_H
