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
  libgtest-dev nlohmann-json3-dev libsentencepiece-dev fortunes
  python3 python3-numpy python3-torch
)

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
