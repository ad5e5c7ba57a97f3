# Shared by scripts/demo and scripts/test: install what is missing, then
# configure and build Kiln in build/. Idempotent and quick when everything is
# already there.

KILN_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
KILN_BUILD="${KILN_BUILD:-$KILN_ROOT/build}"
KILN_LLVM=/usr/lib/llvm-22

# Debian packages Kiln needs to build and test.
KILN_PACKAGES=(
  cmake ninja-build ccache g++ git
  llvm-22-dev libmlir-22-dev mlir-22-tools llvm-22-tools libomp-22-dev
  libgtest-dev nlohmann-json3-dev libsentencepiece-dev zlib1g-dev libpng-dev fortunes
  python3 python3-numpy python3-torch python3-venv python3-sentencepiece
)

# The Hugging Face fidelity suite (test/e2e/hf_models.py) runs transformers,
# pinned to a version that works with Debian's torch, from a venv over the
# system Python (so torch and numpy stay Debian's).
KILN_TRANSFORMERS_VERSION=4.44.2
KILN_HF_VENV="${KILN_HF_VENV:-$KILN_BUILD/hf-venv}"

kiln_log() { printf '\033[1m==> %s\033[0m\n' "$*"; }

kiln_install_deps() {
  local missing=()
  for pkg in "${KILN_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" ||
      missing+=("$pkg")
  done
  if ((${#missing[@]} == 0)); then
    return 0
  fi
  kiln_log "installing ${missing[*]}"
  local sudo=""
  if [[ $(id -u) -ne 0 ]]; then sudo=sudo; fi
  export DEBIAN_FRONTEND=noninteractive
  if ! $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"; then
    $sudo apt-get update -q
    $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
  fi
}

kiln_install_hf_python() {
  local python="$KILN_HF_VENV/bin/python3"
  if [[ -x $python ]] && "$python" -c "import transformers, sys; \
sys.exit(transformers.__version__ != '$KILN_TRANSFORMERS_VERSION')" 2>/dev/null; then
    return 0
  fi
  kiln_log "installing transformers $KILN_TRANSFORMERS_VERSION in $KILN_HF_VENV"
  /usr/bin/python3 -m venv --system-site-packages "$KILN_HF_VENV"
  "$python" -m pip install -q --disable-pip-version-check \
    "transformers==$KILN_TRANSFORMERS_VERSION"
}

kiln_build() {
  if [[ ! -f "$KILN_BUILD/build.ninja" ]]; then
    kiln_log "configuring in $KILN_BUILD"
    cmake -S "$KILN_ROOT" -B "$KILN_BUILD" -G Ninja \
      -DCMAKE_BUILD_TYPE=Release \
      -DMLIR_DIR="$KILN_LLVM/lib/cmake/mlir"
  fi
  kiln_log "building"
  cmake --build "$KILN_BUILD"
}

# The sanitizer build (scripts/sanitize, scripts/fuzz): clang-22 with
# AddressSanitizer, UndefinedBehaviorSanitizer and libFuzzer's coverage
# instrumentation in every Kiln library and tool, in build-san/. LLVM and
# MLIR themselves are Debian's (not instrumented). -O1, as LLVM's sanitizer
# builds use.
KILN_SAN_BUILD="${KILN_SAN_BUILD:-$KILN_ROOT/build-san}"
KILN_SAN_PACKAGES=(clang-22 libclang-rt-22-dev)

kiln_build_sanitized() {
  if [[ ! -f "$KILN_SAN_BUILD/build.ninja" ]]; then
    kiln_log "configuring the sanitizer build in $KILN_SAN_BUILD"
    cmake -S "$KILN_ROOT" -B "$KILN_SAN_BUILD" -G Ninja \
      -DCMAKE_BUILD_TYPE=Release \
      -DCMAKE_C_FLAGS_RELEASE="-O1 -DNDEBUG" \
      -DCMAKE_CXX_FLAGS_RELEASE="-O1 -DNDEBUG" \
      -DCMAKE_C_COMPILER="$KILN_LLVM/bin/clang" \
      -DCMAKE_CXX_COMPILER="$KILN_LLVM/bin/clang++" \
      -DLLVM_USE_SANITIZER="Address;Undefined" \
      -DLLVM_UBSAN_FLAGS="-fsanitize=undefined -fno-sanitize=vptr,function -fno-sanitize-recover=all" \
      -DLLVM_USE_SANITIZE_COVERAGE=ON \
      -DMLIR_DIR="$KILN_LLVM/lib/cmake/mlir"
  fi
  kiln_log "building${*:+ $*} (sanitizers)"
  cmake --build "$KILN_SAN_BUILD" ${1:+--target "$@"}
}
