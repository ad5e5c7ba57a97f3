"""What a benchmark ran on: the CPU model and its measured fp32 FMA peak.

Every benchmark in bench/ prints `describe(threads)` first, so that a figure
always comes with the machine it was measured on, and uses `fma_peak()` for
the "% of peak" columns unless --peak gives one.

The peak is measured, not looked up: a C loop of 16 independent chains of
vector FMAs per thread (enough to cover the FMA latency on two ports), at the
widest vector width the compiler's -march=native offers, compiled with the
system C compiler and run on `threads` threads (OpenMP), best of 5 rounds
(about a second). Every operand stays in a register: with a memory clobber
in the loop the compiler read one FMA operand from the stack on every
step, and on an Intel Xeon that loop measured 307 GFLOP/s where the FMA
ports give 480 (OpenBLAS ran above the "peak"). It is measured on every run, beside the benchmark: a busy
machine lowers it, and the benchmark with it.
"""

import os
import subprocess
import tempfile

_SOURCE = r"""
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#if defined(__AVX512F__)
#define LANES 16
#elif defined(__AVX__)
#define LANES 8
#else
#define LANES 4
#endif
typedef float vec __attribute__((vector_size(LANES * 4)));
#define CHAINS 16
#define ALL(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11) \
    X(12) X(13) X(14) X(15)
int main(int argc, char **argv) {
  long iters = atol(argv[1]);
  int threads = atoi(argv[2]);
  double best = 0;
  for (int round = 0; round < 5; ++round) {
    float sink = 0;
    double start = omp_get_wtime();
#pragma omp parallel num_threads(threads) reduction(+ : sink)
    {
      vec x, y;
      for (int l = 0; l < LANES; ++l) { x[l] = 1.0f + 1e-7f * l; y[l] = 1e-7f; }
#define DECLARE(c) vec a##c = x * (float)(c + 1);
      ALL(DECLARE)
      for (long i = 0; i < iters; ++i) {
#define STEP(c) a##c = a##c * x + y;
        ALL(STEP)
        /* Opaque to the optimizer, so the loop is not folded, but in
           registers: no operand is read from memory. */
        __asm__ volatile("" : "+v"(x), "+v"(y));
      }
#define SUM(c) for (int l = 0; l < LANES; ++l) sink += a##c[l];
      ALL(SUM)
    }
    double seconds = omp_get_wtime() - start;
    double rate = 2.0 * LANES * CHAINS * iters * threads / seconds / 1e9;
    if (rate > best) best = rate;
    if (sink == 12345.0f) puts("");
  }
  printf("%f %d\n", best, LANES);
  return 0;
}
"""


def cpu_model():
    """The CPU's model name from /proc/cpuinfo (and whether it has AVX-512
    and AMX), e.g. "AMD EPYC 9B45 (AVX-512)"."""
    model, flags = "unknown CPU", set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                key = key.strip()
                if key == "model name" and model == "unknown CPU":
                    model = value.strip()
                elif key == "flags" and not flags:
                    flags = set(value.split())
    except OSError:
        pass
    isa = ("AVX-512" if "avx512f" in flags else "AVX2" if "avx2" in flags
           else "SSE")
    if "amx_tile" in flags:
        isa += ", AMX"
    return f"{model} ({isa})"


def fma_peak(threads):
    """Measured fp32 FMA GFLOP/s of `threads` cores; None if no C compiler."""
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "fma.c")
        exe = os.path.join(tmp, "fma")
        with open(src, "w") as f:
            f.write(_SOURCE)
        try:
            subprocess.run(["cc", "-O2", "-march=native", "-ffp-contract=fast",
                            "-fopenmp", src, "-o", exe],
                           check=True, capture_output=True)
            out = subprocess.run([exe, "50000000", str(threads)], check=True,
                                 capture_output=True, text=True).stdout.split()
        except (OSError, subprocess.CalledProcessError):
            return None
    return float(out[0])


def describe(threads, peak=None):
    """One line naming the machine and the peak the % columns use."""
    measured = fma_peak(threads) if peak is None else peak
    how = "given with --peak" if peak is not None else "measured"
    text = f"machine: {cpu_model()}, {threads} thread(s)"
    if measured:
        text += f", fp32 FMA peak {measured:.0f} GFLOP/s ({how})"
    return text, measured


# OpenBLAS cores by the widest vectors a CPU's flags promise, for a CPU
# whose model OpenBLAS's own detection does not know.
_OPENBLAS_CORES = (("avx512_bf16", "COOPERLAKE"), ("avx512f", "SKYLAKEX"),
                   ("avx2", "HASWELL"))
# What OpenBLAS falls back to for an unknown CPU: SSE3 kernels.
_GENERIC_CORES = ("Prescott", "Katmai", "Core2", "Penryn", "Nehalem", "Dunnington")


def _openblas_core(env):
    """The core OpenBLAS picks under `env` ("Haswell", "Prescott", ...), or
    None when numpy does not report one (another BLAS)."""
    probe = subprocess.run(
        ["/usr/bin/python3", "-c", "import numpy as np; a = np.ones((8, 8)); a @ a"],
        env=dict(env, OPENBLAS_VERBOSE="2"), capture_output=True, text=True)
    for line in (probe.stdout + probe.stderr).splitlines():
        if line.startswith("Core:"):
            return line.split(":", 1)[1].strip()
    return None


def peer_env(env=None):
    """The environment a peer (numpy's OpenBLAS, PyTorch's BLAS) runs in:
    `env` (default os.environ) without OPENBLAS_CORETYPE and
    OPENBLAS_L2_SIZE, which pin OpenBLAS to slower kernels on some of these
    machines; and where OpenBLAS's detection then falls back to its generic
    SSE3 core on a CPU whose model it does not know (a virtual machine's
    "Intel Xeon Processor" with AVX-512: 60 GFLOP/s where its AVX-512
    kernels run 280), OPENBLAS_CORETYPE naming the core of the widest
    vectors the CPU's flags have. It prints what it chose."""
    env = {k: v for k, v in (os.environ if env is None else env).items()
           if k not in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")}
    core = _openblas_core(env)
    if core in _GENERIC_CORES:
        try:
            with open("/proc/cpuinfo") as f:
                flags = set(next(l for l in f if l.startswith("flags")).split(":", 1)[1].split())
        except (OSError, StopIteration):
            flags = set()
        for flag, name in _OPENBLAS_CORES:
            if flag in flags:
                env["OPENBLAS_CORETYPE"] = name
                print(f"(OpenBLAS detected its generic {core} core on this CPU; the peers run "
                      f"OPENBLAS_CORETYPE={name}, the widest this CPU's flags support)", flush=True)
                break
    return env
