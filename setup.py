"""Packaging for hwopt.

The repository keeps `backends/`, `kernels/` and `benchmarks/` at the top level but installs them as
`optimizer.backends`, `optimizer.kernels` and `optimizer.benchmarks`, so no generic top-level module named
`kernels` or `backends` ever lands in site-packages (a PyPI package called `kernels` exists and transformers
imports it). The C++ kernels are built by CMakeLists.txt, driven from `build_ext` below.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from setuptools import Extension, find_packages, setup
from setuptools.command.build_ext import build_ext

ROOT = Path(__file__).resolve().parent


class CMakeExtension(Extension):
    """An extension whose sources are built by CMake rather than by setuptools."""

    def __init__(self, name: str, source_dir: Path) -> None:
        super().__init__(name, sources=[])
        self.source_dir = source_dir


class CMakeBuild(build_ext):
    def build_extension(self, ext: Extension) -> None:
        if not isinstance(ext, CMakeExtension):
            return super().build_extension(ext)
        cmake = shutil.which("cmake")
        if cmake is None:
            sys.exit("hwopt: building the C++ kernels needs CMake (>=3.18) and a C++17 compiler; "
                     "install cmake and g++ (e.g. `apt-get install cmake g++`) and retry")
        target = Path(self.get_ext_fullpath(ext.name)).resolve()
        build_dir = Path(self.build_temp).resolve() / ext.name
        build_dir.mkdir(parents=True, exist_ok=True)
        import pybind11

        configure = [
            cmake, str(ext.source_dir),
            f"-DPython_EXECUTABLE={sys.executable}",
            f"-Dpybind11_DIR={pybind11.get_cmake_dir()}",
            f"-DHWOPT_KERNELS_OUTPUT_DIR={target.parent}",
            f"-DHWOPT_KERNELS_OUTPUT_NAME={target.name}",
            "-DCMAKE_BUILD_TYPE=Release",
        ]
        jobs = str(os.cpu_count() or 1)
        try:
            subprocess.run(configure, cwd=build_dir, check=True)
            subprocess.run([cmake, "--build", ".", "--parallel", jobs], cwd=build_dir, check=True)
        except subprocess.CalledProcessError as error:
            sys.exit(f"hwopt: building the C++ kernels failed ({error}); is a C++17 compiler installed?")


# onnxscript is pinned to the minor version whose rewriter rules and folder hwopt was checked against (the
# conformance test): passes reach into a few of its private modules and work around two of its bugs.
ONNX = ["onnx>=1.16", "onnx-ir>=1.1,<2", "onnxscript>=0.7.2,<0.8", "onnxruntime>=1.20", "numpy>=1.26"]
TORCH = ["torch==2.13.0"]
OPENVINO = ["openvino>=2025.0", "nncf>=2.14"]
TFLITE = ["ai-edge-litert>=1.2", "flatbuffers>=24"]
# The Numba kernels (optimizer.kernels.numba_kernels), used where the C++ extension is not built.
NUMBA = ["numba>=0.60"]
# NVIDIA's TensorRT (10.x/11.x); its wheels come from NVIDIA's index, so it is not part of [all].
TENSORRT = ["tensorrt>=10"]
# TensorRT-RTX parses ONNX and builds plans without a GPU: the tests use it to prove that every TensorRT-bound
# ONNX hwopt writes parses and builds (TensorRT itself needs NVIDIA's index and a GPU). Linux x86-64 wheels only.
TENSORRT_CHECK = ["tensorrt-rtx-cu12>=1.7,<2; platform_system == 'Linux' and platform_machine == 'x86_64'"]
DEV = [
    *OPENVINO, *TENSORRT_CHECK, *TFLITE, *NUMBA,
    "scikit-learn>=1.3",
    "pytest>=8", "pytest-benchmark>=4", "pytest-timeout>=2",
    "transformers>=4.45", "pillow>=10", "tokenizers>=0.20",
    *TORCH,
]

setup(
    name="hwopt",
    version="0.1.0",
    description="Hardware-aware model optimization and compilation toolkit",
    long_description=(ROOT / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=find_packages(include=["optimizer", "optimizer.*"])
    + ["optimizer.backends", "optimizer.kernels", "optimizer.benchmarks"]
    + [f"optimizer.backends.{p}" for p in find_packages("backends")]
    + [f"optimizer.kernels.{p}" for p in find_packages("kernels")]
    + [f"optimizer.benchmarks.{p}" for p in find_packages("benchmarks")],
    package_dir={
        "optimizer": "optimizer",
        "optimizer.backends": "backends",
        "optimizer.kernels": "kernels",
        "optimizer.benchmarks": "benchmarks",
    },
    # The dashboard's page template, stylesheet and scripts are read at run time and inlined into the page.
    # The OpenVINO extension's sources and the C++ kernel core it compiles ship too: hwopt builds the extension
    # on first use, against whichever OpenVINO is installed then (kernels/openvino_extension.py).
    package_data={
        "optimizer.benchmarks.dashboard": ["*.js", "*.css", "*.html"],
        "optimizer.kernels": ["openvino/CMakeLists.txt", "openvino/*.cpp", "openvino/*.hpp",
                              "csrc/core/*.cpp", "csrc/core/*.h", "csrc/core/*.inc"],
    },
    ext_modules=[CMakeExtension("optimizer.kernels._native", ROOT)],
    cmdclass={"build_ext": CMakeBuild},
    install_requires=ONNX,
    extras_require={
        "torch": TORCH,
        "openvino": OPENVINO,
        "tflite": TFLITE,
        "tensorrt": TENSORRT,
        "numba": NUMBA,
        "dev": DEV,
        "all": TORCH + OPENVINO + TFLITE + NUMBA,
    },
    entry_points={"console_scripts": ["optimize=optimizer.cli:main"]},
    zip_safe=False,
)
