# Lit configuration for the kiln regression tests.

import os
import shutil

import lit.formats
from lit.llvm import llvm_config
from lit.llvm.subst import ToolSubst

config.name = "KILN"
config.test_format = lit.formats.ShTest(not llvm_config.use_lit_shell)
config.suffixes = [".mlir", ".test"]
config.excludes = ["CMakeLists.txt", "lit.cfg.py", "lit.site.cfg.py", "unit", "e2e", "fuzz", "Inputs"]
config.test_source_root = os.path.dirname(__file__)
config.test_exec_root = os.path.join(config.kiln_obj_root, "test")

config.environment["FILECHECK_OPTS"] = "--enable-var-scope"
config.substitutions.append(("%PATH%", config.environment["PATH"]))
config.substitutions.append(("%kiln_src_root", config.kiln_src_root))
config.substitutions.append(("%models", os.path.join(config.kiln_src_root, "models")))

# The numerics oracle is Debian's python3-torch, installed for /usr/bin/python3.
python = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else shutil.which("python3")
config.substitutions.append(("%PYTHON", python))

# A `cuda` feature when a GPU is present, so GPU tests can say REQUIRES: cuda.
if shutil.which("nvidia-smi") and os.path.exists("/dev/nvidia0"):
    config.available_features.add("cuda")

# A `ptxas` feature when the CUDA toolkit is installed: generated PTX is
# assembled with it (no GPU needed).
cuda_toolkit = os.environ.get("KILN_CUDA_TOOLKIT", "/usr/local/cuda")
if os.access(os.path.join(cuda_toolkit, "bin", "ptxas"), os.X_OK):
    config.available_features.add("ptxas")
    config.substitutions.append(("%ptxas", os.path.join(cuda_toolkit, "bin", "ptxas")))

# The fake CUDA driver and cuBLASLt of the runtime tests run the host side
# of CUDA artifacts here (kernels are looked up, not executed).
fake_dir = os.path.join(config.kiln_obj_root, "test", "unit", "Runtime")
config.substitutions.append(("%fake_cuda", os.path.join(fake_dir, "libkiln_fake_cuda.so")))
config.substitutions.append(("%fake_cublaslt", os.path.join(fake_dir, "libkiln_fake_cublaslt.so")))

config.substitutions.append(("%llvm_lib_dir", os.path.join(os.path.dirname(config.llvm_tools_dir), "lib")))

llvm_config.use_default_substitutions()
llvm_config.with_environment("PATH", config.llvm_tools_dir, append_path=True)

tool_dirs = [config.kiln_tools_dir, config.llvm_tools_dir]
tools = ["kiln-opt", "kiln-compile", "FileCheck", "not", "split-file", "llvm-nm", "llvm-readelf", "mlir-translate", "mlir-runner"]
llvm_config.add_tool_substitutions(tools, tool_dirs)

# The driver is `%kiln`: a bare `kiln` would also match inside options
# such as --emit=kiln.
config.substitutions.append(("%kiln", os.path.join(config.kiln_tools_dir, "kiln")))
