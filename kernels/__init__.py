"""Kernels behind hwopt's custom ops: C++ for speed, NumPy for reference.

Layout (installed as `optimizer.kernels`; the source folder is the repository's top-level `kernels/`):

- `csrc/`: the C++ kernels, one `<name>.cpp`/`<name>.h` pair each plus `module.cpp`, which registers them. The
  repository's CMakeLists.txt builds them into one pybind11 extension, `optimizer.kernels._native`, when hwopt is
  installed (setup.py runs CMake; it needs a C++17 compiler and CMake >= 3.18).
- `reference.py`: a NumPy reference per kernel. The tests hold the native kernels to it, and the functions below
  fall back to it when the extension is not built.
- `numba_kernels.py`: Numba versions of the heavier kernels (the `numba` extra), the middle ground between the
  C++ kernels and the NumPy references where the extension is not built.
- `block_sparse.py`: the block-sparse weight format; `custom_ops.py`: the custom ONNX ops and which runtimes run
  them.

The functions here (`silu`, `block_sparse_matmul`, ...) are what the rest of hwopt calls: they run the native kernel
when the extension is importable and a slower one otherwise, with the same argument checks either way, so code
behaves the same with and without the extension, only slower without it.
"""

from __future__ import annotations

import functools
import importlib
import math
from types import ModuleType

import numpy as np
from optimizer.kernels.block_sparse import BlockSparseMatrix
from optimizer.kernels.reference import (
    ACTIVATIONS,
    block_sparse_matmul_reference,
    block_sparse_matmul_u8s8_reference,
    silu_reference,
)

__all__ = [
    "IMPLEMENTATIONS", "block_sparse_matmul", "block_sparse_matmul_int8", "block_sparse_matmul_u8s8",
    "load_native", "load_numba_kernels", "native_available", "numba_available", "silu",
]

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


# The block-sparse MatMul. Three implementations with one set of argument checks (done here, before any of them
# runs), so a caller sees the same errors whichever runs.

IMPLEMENTATIONS = ("auto", "native", "numba", "numpy")


def load_numba_kernels() -> ModuleType:
    """optimizer.kernels.numba_kernels; ImportError naming the extra to install if numba is missing."""
    try:
        return importlib.import_module("optimizer.kernels.numba_kernels")
    except ImportError as error:
        raise ImportError(
            f"hwopt's Numba kernels need numba: {error}. Install it with `pip install hwopt[numba]` "
            "(or `pip install numba`)"
        ) from error


@functools.cache
def _numba_or_none() -> ModuleType | None:
    try:
        return load_numba_kernels()
    except ImportError:
        return None


def numba_available() -> bool:
    """Whether the Numba kernels can be imported (numba is installed)."""
    return _numba_or_none() is not None


def _implementation(implementation: str) -> str:
    if implementation not in IMPLEMENTATIONS:
        raise ValueError(f"implementation must be one of {', '.join(IMPLEMENTATIONS)}, not {implementation!r}")
    if implementation == "auto":
        return "native" if native_available() else "numba" if numba_available() else "numpy"
    return implementation


def block_sparse_matmul(
    x: np.ndarray, weight: BlockSparseMatrix, bias: np.ndarray | None = None, activation: str = "none", *,
    implementation: str = "auto",
) -> np.ndarray:
    """activation(x @ W + bias) for x float32 [..., K] and W a float32 BlockSparseMatrix [K, N]: float32 [..., N].

    activation is "none", "relu" or "gelu" (erf form). implementation "auto" takes the C++ kernel, else Numba,
    else the NumPy reference; "native", "numba" or "numpy" force one (ImportError if it is not available).
    Raises TypeError for a wrong dtype or type, ValueError for a shape mismatch or a non-contiguous array.
    """
    x2d = _check_x(x, weight, np.float32, "block_sparse_matmul")
    n = weight.shape[1]
    if bias is not None:
        _check_array(bias, np.float32, "block_sparse_matmul", "bias")
        if bias.shape != (n,):
            raise ValueError(f"block_sparse_matmul: bias must have shape ({n},) (N), not {bias.shape}")
    if activation not in ACTIVATIONS:
        raise ValueError(f"block_sparse_matmul: activation must be one of {', '.join(ACTIVATIONS)}, not {activation!r}")
    _check_weight(weight, np.float32, "block_sparse_matmul")
    chosen = _implementation(implementation)
    if chosen == "native":
        y = load_native().block_sparse_matmul_f32(
            x2d, weight.values, weight.block_rows, weight.strip_ptr, bias, activation)
    elif chosen == "numba":
        numba_kernels = load_numba_kernels()
        no_bias = np.empty(0, np.float32)
        y = numba_kernels.block_sparse_matmul_f32(
            x2d, weight.values, weight.block_rows, weight.strip_ptr, no_bias if bias is None else bias,
            bias is not None, numba_kernels.ACTIVATION_CODES[activation])
    else:
        y = block_sparse_matmul_reference(x2d, weight, bias, activation)
    return y.reshape(*x.shape[:-1], n)


def block_sparse_matmul_u8s8(x: np.ndarray, weight: BlockSparseMatrix, *, implementation: str = "auto") -> np.ndarray:
    """The exact int32 sums x @ W for x uint8 [..., K] and W an int8 BlockSparseMatrix [K, N]: int32 [..., N].

    No zero point or scale is applied (see block_sparse_matmul_int8). The native kernel uses AVX-512 VNNI where
    the CPU has it, on weight.vnni_values (computed on first use and kept on the weight).
    """
    x2d = _check_x(x, weight, np.uint8, "block_sparse_matmul_u8s8")
    _check_weight(weight, np.int8, "block_sparse_matmul_u8s8")
    chosen = _implementation(implementation)
    if chosen == "native":
        y = load_native().block_sparse_matmul_u8s8(
            x2d, weight.values, weight.block_rows, weight.strip_ptr, weight.vnni_values)
    elif chosen == "numba":
        y = load_numba_kernels().block_sparse_matmul_u8s8(x2d, weight.values, weight.block_rows, weight.strip_ptr)
    else:
        y = block_sparse_matmul_u8s8_reference(x2d, weight)
    return y.reshape(*x.shape[:-1], weight.shape[1])


def block_sparse_matmul_int8(
    x: np.ndarray, x_scale: float, x_zero_point: int, weight: BlockSparseMatrix, weight_scales: np.ndarray,
    bias: np.ndarray | None = None, activation: str = "none", *, implementation: str = "auto",
) -> np.ndarray:
    """activation(dequant(x) @ dequant(W) + bias) from the int32 sums, as float32 [..., N].

    x uint8 with one scale and zero point (asymmetric); W int8, symmetric, one scale per column (weight_scales
    float [N]). Since sum_k (x - zp) w = sum_k x w - zp * sum_k w, the zero point costs one column-sum vector
    (weight.column_sums, kept on the weight) rather than a pass over x. The reference is
    reference.block_sparse_matmul_dequantized_reference.
    """
    function = "block_sparse_matmul_int8"
    n = weight.shape[1] if isinstance(weight, BlockSparseMatrix) else 0
    scales = np.asarray(weight_scales, dtype=np.float64)
    if scales.shape != (n,):
        raise ValueError(f"{function}: weight_scales must have shape ({n},) (N), not {scales.shape}")
    if not 0 <= int(x_zero_point) <= 255:
        raise ValueError(f"{function}: x_zero_point must be in [0, 255], not {x_zero_point}")
    if bias is not None and np.shape(bias) != (n,):
        raise ValueError(f"{function}: bias must have shape ({n},) (N), not {np.shape(bias)}")
    if activation not in ACTIVATIONS:
        raise ValueError(f"{function}: activation must be one of {', '.join(ACTIVATIONS)}, not {activation!r}")
    sums = block_sparse_matmul_u8s8(x, weight, implementation=implementation)
    centered = sums.astype(np.int64) - int(x_zero_point) * weight.column_sums
    y = centered * (float(x_scale) * scales)
    return _bias_and_activation_float32(y, bias, activation)


def _bias_and_activation_float32(y: np.ndarray, bias: np.ndarray | None, activation: str) -> np.ndarray:
    if bias is not None:
        y = y + np.asarray(bias, dtype=np.float64)
    if activation == "relu":
        y = np.maximum(y, 0.0)
    elif activation == "gelu":
        y = 0.5 * y * _erfc(-y / math.sqrt(2))
    return y.astype(np.float32)


def _erfc(z: np.ndarray) -> np.ndarray:
    # NumPy has no erf: Numerical Recipes' erfcc (relative error under 1.2e-7 for z >= 0), vectorized, in float64.
    a = np.abs(z)
    t = 1.0 / (1.0 + 0.5 * a)
    poly = 0.17087277
    for coefficient in (-0.82215223, 1.48851587, -1.13520398, 0.27886807, -0.18628806, 0.09678418, 0.37409196,
                        1.00002368, -1.26551223):
        poly = poly * t + coefficient
    tail = t * np.exp(poly - a * a)
    return np.where(z >= 0, tail, 2.0 - tail)


def _check_array(array: object, dtype: type, function: str, argument: str) -> None:
    # What the native binding also checks (csrc/block_sparse_matmul.cpp), so every implementation rejects alike.
    name = np.dtype(dtype).name
    if not isinstance(array, np.ndarray):
        raise TypeError(f"{function}: {argument} must be a numpy.ndarray of {name}, got {type(array)!r}")
    if array.dtype != np.dtype(dtype):
        raise TypeError(f"{function}: {argument} must be {name}, got {array.dtype}")
    if not array.flags.c_contiguous:
        raise ValueError(f"{function}: {argument} must be C-contiguous, got a strided view; pass "
                         "np.ascontiguousarray(...)")
    if not array.flags.aligned:
        raise ValueError(f"{function}: {argument} is not aligned to its element size; pass a copy")


def _check_x(x: object, weight: object, dtype: type, function: str) -> np.ndarray:
    """x as [M, K] (a view), after the checks every implementation shares."""
    if not isinstance(weight, BlockSparseMatrix):
        raise TypeError(f"{function}: weight must be a BlockSparseMatrix, got {type(weight)!r}")
    _check_array(x, dtype, function, "x")
    k = weight.shape[0]
    if x.ndim < 1 or x.shape[-1] != k:
        raise ValueError(f"{function}: x's last dimension must be K = {k} (the weight is {weight.shape}), "
                         f"got x of shape {x.shape}")
    return x.reshape(-1, k)


def _check_weight(weight: BlockSparseMatrix, dtype: type, function: str) -> None:
    if weight.values.dtype != np.dtype(dtype):
        raise TypeError(f"{function}: the weight's values must be {np.dtype(dtype).name}, got {weight.values.dtype}")
    for argument, array in (("values", weight.values), ("block_rows", weight.block_rows),
                            ("strip_ptr", weight.strip_ptr)):
        _check_array(array, array.dtype.type, function, f"weight.{argument}")
