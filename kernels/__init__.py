"""Kernels behind hwopt's custom ops: C++ for speed, NumPy for reference.

Layout (installed as `optimizer.kernels`; the source folder is the repository's top-level `kernels/`):

- `csrc/`: the C++ kernels, one `<name>.cpp`/`<name>.h` pair each plus `module.cpp`, which registers them. The
  repository's CMakeLists.txt builds them into one pybind11 extension, `optimizer.kernels._native`, when hwopt is
  installed (setup.py runs CMake; it needs a C++17 compiler and CMake >= 3.18).
- `reference.py`: a NumPy reference per kernel. The tests hold the native kernels to it, and the functions below
  fall back to it when the extension is not built.
- The table that maps custom ONNX ops to these kernels will live in this package too (a later change).

The functions here (`silu`, ...) are what the rest of hwopt calls: they run the native kernel when the extension
is importable and the NumPy reference otherwise, with the same argument checks either way, so code behaves the same with
and without the extension, only slower without it.
"""

from __future__ import annotations

import functools
import importlib
from types import ModuleType

import numpy as np

from optimizer.kernels.reference import silu_reference

__all__ = ["load_native", "native_available", "silu"]

_NATIVE = "optimizer.kernels._native"


def load_native() -> ModuleType:
    """The compiled extension `optimizer.kernels._native`; ImportError saying how to build it if it is missing."""
    try:
        return importlib.import_module(_NATIVE)
    except ImportError as error:
        raise ImportError(
            f"hwopt's C++ kernels ({_NATIVE}) are not available: {error}. They are built when hwopt is installed "
            "from source; install a C++17 compiler and CMake >= 3.18 (e.g. `apt-get install g++ cmake`) and "
            "reinstall hwopt (`pip install --force-reinstall --no-deps <hwopt checkout or sdist>`)"
        ) from error


@functools.cache
def _native_or_none() -> ModuleType | None:
    # Cached: a failed import is retried from scratch on every call, which would cost each kernel call a
    # search of sys.path on machines without the extension.
    try:
        return load_native()
    except ImportError:
        return None


def native_available() -> bool:
    """Whether the compiled kernels can be imported (the functions here use them if so)."""
    return _native_or_none() is not None


def silu(x: np.ndarray) -> np.ndarray:
    """SiLU, x * sigmoid(x), of a float32 C-contiguous array of any shape, as a new array.

    Raises TypeError for another dtype or a non-array, ValueError for a non-contiguous or misaligned array.
    """
    native = _native_or_none()
    if native is not None:
        return native.silu(x)
    _require_float32_c_contiguous(x, "silu")
    return silu_reference(x)


def _require_float32_c_contiguous(x: object, function: str) -> None:
    # The checks of csrc/silu.cpp, so the NumPy fallback accepts exactly what the native kernel accepts.
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{function}: expected a numpy.ndarray of float32, got {type(x)!r}")
    if x.dtype != np.dtype(np.float32):
        raise TypeError(f"{function}: expected a float32 array, got {x.dtype} (convert with x.astype(np.float32))")
    if not x.flags.c_contiguous:
        raise ValueError(
            f"{function}: expected a C-contiguous array, got a strided view (a transpose, a slice with a step, "
            "or Fortran order); pass np.ascontiguousarray(x)"
        )
    if not x.flags.aligned:
        raise ValueError(f"{function}: the array's data is not aligned to 4 bytes; pass x.copy()")
