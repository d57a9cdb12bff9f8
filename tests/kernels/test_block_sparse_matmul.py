"""The block-sparse MatMul: C++ (every ISA copy), Numba and NumPy against the references, on random weights over
the block shapes and sparsities that matter, on MiniLM's real feed-forward weights pruned to 90% of blocks, and
the argument checks every implementation shares.

Native tests are skipped when optimizer.kernels._native is not built, Numba tests when numba is not installed.
"""

from __future__ import annotations

import numpy as np
import pytest
from optimizer.kernels.block_sparse import BlockSparseMatrix, keep_largest_blocks
from optimizer.kernels.reference import (
    block_sparse_matmul_dequantized_reference,
    block_sparse_matmul_reference,
    block_sparse_matmul_u8s8_reference,
    gelu_reference,
)

from optimizer import kernels

requires_native = pytest.mark.skipif(
    not kernels.native_available(),
    reason="optimizer.kernels._native is not built (install hwopt with a C++17 compiler and CMake)",
)
requires_numba = pytest.mark.skipif(not kernels.numba_available(), reason="numba is not installed (hwopt[numba])")

IMPLEMENTATIONS = [
    pytest.param("native", marks=requires_native),
    pytest.param("numba", marks=requires_numba),
    "numpy",
]
ISAS = kernels.load_native().block_sparse_matmul_isas() if kernels.native_available() else ["none"]

# float32 sums of up to a few hundred products, against float64: the order of additions and FMA differ.
RTOL, ATOL = 1e-5, 1e-5

# 1x8 ... 2x32 take the SIMD tiles (block_n a multiple of 4); 1x1 and 3x5 the portable loops; 8x48 covers a
# strip in chunks of 32 and 16 columns, 4x24 in 16 and 8, 4x12 in 8 and 4.
BLOCK_SHAPES = [(1, 8), (1, 16), (4, 4), (4, 16), (2, 32), (1, 1), (3, 5), (8, 48), (4, 24), (4, 12)]
DENSITIES = [1.0, 0.5, 0.1, 0.0]  # block sparsity 0, 0.5, 0.9 and 1 (every strip empty)
ACTIVATIONS = ["none", "relu", "gelu"]


def _weight(block_shape, density, shape_in_blocks=(13, 7), seed=0, dtype=np.float32) -> BlockSparseMatrix:
    """A random weight with `density` of its blocks kept: 13 x 7 blocks by default, so K and N are odd for 1x1."""
    (block_k, block_n), (rows, columns) = block_shape, shape_in_blocks
    dense = np.random.default_rng(seed).standard_normal((rows * block_k, columns * block_n)).astype(np.float32)
    pruned = keep_largest_blocks(dense, block_shape, density)
    if dtype == np.int8:
        pruned = np.clip(np.round(pruned * 40), -128, 127).astype(np.int8)
    return BlockSparseMatrix.from_dense(pruned, block_shape)


def _x(m, k, seed=1) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((m, k)).astype(np.float32)


def _bias(n, seed=2) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(n).astype(np.float32)


def _x_u8(m, k, seed=1) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (m, k), dtype=np.uint8)


# The references.


def test_gelu_reference_matches_the_erf_definition():
    import math

    x = np.linspace(-8, 8, 1001)
    expected = [0.5 * v * (1 + math.erf(v / math.sqrt(2))) for v in x]
    np.testing.assert_allclose(gelu_reference(x), expected, rtol=1e-12, atol=1e-15)


def test_reference_is_the_dense_product():
    weight = _weight((4, 16), 0.5)
    x, bias = _x(5, weight.shape[0]), _bias(weight.shape[1])
    dense = x.astype(np.float64) @ weight.to_dense() + bias
    np.testing.assert_allclose(block_sparse_matmul_reference(x, weight, bias), dense, rtol=1e-6)
    np.testing.assert_allclose(block_sparse_matmul_reference(x, weight, bias, "relu"), np.maximum(dense, 0), rtol=1e-6)


# Every implementation against the reference.


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
@pytest.mark.parametrize("density", DENSITIES)
@pytest.mark.parametrize("block_shape", BLOCK_SHAPES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_matches_reference(implementation, block_shape, density, activation):
    weight = _weight(block_shape, density)
    x, bias = _x(7, weight.shape[0]), _bias(weight.shape[1])
    y = kernels.block_sparse_matmul(x, weight, bias, activation, implementation=implementation)
    assert y.dtype == np.float32 and y.shape == (7, weight.shape[1])
    np.testing.assert_allclose(y, block_sparse_matmul_reference(x, weight, bias, activation), rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
@pytest.mark.parametrize("m", [1, 7, 128, 0])
@pytest.mark.parametrize("with_bias", [True, False], ids=["bias", "no-bias"])
@pytest.mark.parametrize("block_shape", [(1, 8), (4, 16), (3, 5)], ids=lambda s: f"{s[0]}x{s[1]}")
def test_rows_and_bias(implementation, m, with_bias, block_shape):
    weight = _weight(block_shape, 0.5, shape_in_blocks=(9, 5))
    x = _x(m, weight.shape[0])
    bias = _bias(weight.shape[1]) if with_bias else None
    y = kernels.block_sparse_matmul(x, weight, bias, "gelu", implementation=implementation)
    np.testing.assert_allclose(y, block_sparse_matmul_reference(x, weight, bias, "gelu"), rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
def test_leading_dimensions_are_flattened(implementation):
    weight = _weight((4, 16), 0.5)
    x = np.random.default_rng(3).standard_normal((2, 3, weight.shape[0])).astype(np.float32)
    y = kernels.block_sparse_matmul(x, weight, implementation=implementation)
    assert y.shape == (2, 3, weight.shape[1])
    np.testing.assert_allclose(y, block_sparse_matmul_reference(x, weight), rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
def test_all_zero_weight_gives_the_activated_bias(implementation):
    weight = BlockSparseMatrix.from_dense(np.zeros((32, 48), np.float32), (4, 16))
    assert weight.stored_blocks == 0
    bias = _bias(48)
    y = kernels.block_sparse_matmul(_x(5, 32), weight, bias, "relu", implementation=implementation)
    np.testing.assert_array_equal(y, np.broadcast_to(np.maximum(bias, 0), (5, 48)))


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
def test_nan_and_infinity_pass_through(implementation):
    weight = _weight((1, 16), 1.0, shape_in_blocks=(4, 2))
    x = _x(3, 4)
    x[1, 0] = np.nan
    bias = _bias(32)
    bias[:2] = [np.inf, -np.inf]
    for activation in ACTIVATIONS:
        y = kernels.block_sparse_matmul(x, weight, bias, activation, implementation=implementation)
        assert np.all(np.isnan(y[1])), activation
        expected = block_sparse_matmul_reference(x[[0, 2]], weight, bias, activation)
        np.testing.assert_allclose(y[[0, 2]], expected, rtol=RTOL, atol=ATOL, err_msg=activation)


# Every ISA copy of the native kernel (users on other machines get the narrower ones).


@requires_native
@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("block_shape", BLOCK_SHAPES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_native_isa_matches_reference(isa, block_shape, activation):
    # 23 rows: a full tile of 12 or 16 rows, then the leftover tiles of 4, 2 and 1.
    native = kernels.load_native()
    weight = _weight(block_shape, 0.5)
    x, bias = _x(23, weight.shape[0]), _bias(weight.shape[1])
    y = native.block_sparse_matmul_f32(x, weight.values, weight.block_rows, weight.strip_ptr, bias, activation,
                                       isa=isa)
    np.testing.assert_allclose(y, block_sparse_matmul_reference(x, weight, bias, activation), rtol=RTOL, atol=ATOL)


@requires_native
@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("block_shape", BLOCK_SHAPES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_native_isa_int8_is_exact(isa, block_shape):
    native = kernels.load_native()
    weight = _weight(block_shape, 0.5, dtype=np.int8)
    x = _x_u8(23, weight.shape[0])
    expected = block_sparse_matmul_u8s8_reference(x, weight)
    for packed in (weight.vnni_values, None):  # the VNNI tiles (on a CPU with VNNI), then the portable loops
        y = native.block_sparse_matmul_u8s8(x, weight.values, weight.block_rows, weight.strip_ptr, packed, isa=isa)
        np.testing.assert_array_equal(y, expected)


@requires_native
def test_native_gelu_across_magnitudes():
    # An identity weight puts x itself through the fused GELU: relative accuracy over the whole range, negative
    # tail included (where 1 + erf cancels and only an erfc form keeps digits).
    native = kernels.load_native()
    x = np.concatenate([np.linspace(-14, 14, 4000), -np.logspace(-30, 1.1, 400), np.logspace(-30, 1.1, 400)])
    x = x.astype(np.float32).reshape(-1, 16)
    identity = BlockSparseMatrix.from_dense(np.eye(16, dtype=np.float32), (1, 16))
    expected = gelu_reference(x.astype(np.float64))
    for isa in ISAS:
        y = native.block_sparse_matmul_f32(x, identity.values, identity.block_rows, identity.strip_ptr, None, "gelu",
                                           isa=isa)
        np.testing.assert_allclose(y, expected, rtol=1e-6, atol=1e-37, err_msg=isa)


@requires_native
@pytest.mark.parametrize("block_shape", [(8, 16), (1, 16), (3, 8)], ids=lambda s: f"{s[0]}x{s[1]}")
def test_native_vnni_packing_matches_numpy(block_shape):
    weight = _weight(block_shape, 0.5, dtype=np.int8)
    np.testing.assert_array_equal(kernels.load_native().pack_s8_for_vnni(weight.values), weight.vnni_values)


# int8.


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
@pytest.mark.parametrize("density", DENSITIES)
@pytest.mark.parametrize("block_shape", [(4, 16), (1, 16), (2, 8), (8, 8), (4, 32), (3, 5), (5, 16)],
                         ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("m", [1, 7, 128])
def test_int8_sums_are_exact(implementation, block_shape, density, m):
    weight = _weight(block_shape, density, dtype=np.int8)
    x = _x_u8(m, weight.shape[0])
    y = kernels.block_sparse_matmul_u8s8(x, weight, implementation=implementation)
    assert y.dtype == np.int32
    np.testing.assert_array_equal(y, block_sparse_matmul_u8s8_reference(x, weight))


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_int8_dequantized_matches_reference(implementation, activation):
    weight = _weight((4, 16), 0.5, dtype=np.int8)
    x = _x_u8(9, weight.shape[0])
    scales = np.random.default_rng(4).uniform(0.001, 0.01, weight.shape[1])
    bias = _bias(weight.shape[1])
    y = kernels.block_sparse_matmul_int8(x, 0.02, 131, weight, scales, bias, activation,
                                         implementation=implementation)
    expected = block_sparse_matmul_dequantized_reference(x, 0.02, 131, weight, scales, bias, activation)
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-5)


# MiniLM's feed-forward weights, pruned to 90% of blocks.


def _minilm_feed_forward():
    import onnx
    from onnx import numpy_helper
    from optimizer.benchmarks import zoo
    from optimizer.benchmarks.ratios import fetch_or_skip

    model = onnx.load(str(fetch_or_skip(zoo.minilm_path)))
    arrays = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    up = next(a for a in arrays.values() if a.shape == (384, 1536))
    down = next(a for a in arrays.values() if a.shape == (1536, 384))
    return (up, arrays["bert.encoder.layer.0.intermediate.dense.bias"]), (down, None)


@pytest.mark.zoo
@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
@pytest.mark.parametrize("block_shape", [(1, 16), (4, 16), (1, 8), (4, 4)], ids=lambda s: f"{s[0]}x{s[1]}")
def test_minilm_feed_forward_pruned_to_90_percent(implementation, block_shape):
    for (dense, bias), activation in zip(_minilm_feed_forward(), ("gelu", "none")):
        weight = BlockSparseMatrix.from_dense(keep_largest_blocks(dense, block_shape, 0.1), block_shape)
        assert weight.density == pytest.approx(0.1, abs=1e-3)
        x = _x(128, dense.shape[0])
        y = kernels.block_sparse_matmul(x, weight, bias, activation, implementation=implementation)
        np.testing.assert_allclose(y, block_sparse_matmul_reference(x, weight, bias, activation), rtol=RTOL,
                                   atol=ATOL)


# Argument checks: every implementation rejects the same inputs with the same errors.


def _f32_weight():
    return _weight((4, 16), 0.5, shape_in_blocks=(2, 2))


BAD_CALLS = [
    pytest.param(lambda w: (np.ones((3, 8)), w), {}, TypeError, "x must be float32", id="x-float64"),
    pytest.param(lambda w: ([[1.0] * 8], w), {}, TypeError, "numpy.ndarray", id="x-list"),
    pytest.param(lambda w: (np.ones((3, 9), np.float32), w), {}, ValueError, "last dimension must be K = 8",
                 id="x-wrong-k"),
    pytest.param(lambda w: (np.ones((8, 3), np.float32).T, w), {}, ValueError, "C-contiguous", id="x-transposed"),
    pytest.param(lambda w: (np.ones((3, 8), np.float32), w.to_dense()), {}, TypeError, "BlockSparseMatrix",
                 id="dense-weight"),
    pytest.param(lambda w: (np.ones((3, 8), np.float32), w), {"bias": np.ones(32)}, TypeError, "bias must be float32",
                 id="bias-float64"),
    pytest.param(lambda w: (np.ones((3, 8), np.float32), w), {"bias": np.ones(31, np.float32)}, ValueError,
                 r"bias must have shape \(32,\)", id="bias-wrong-n"),
    pytest.param(lambda w: (np.ones((3, 8), np.float32), w), {"activation": "tanh"}, ValueError,
                 "activation must be one of", id="activation"),
    pytest.param(lambda w: (np.ones((3, 8), np.float32), w), {"implementation": "cuda"}, ValueError,
                 "implementation must be one of", id="implementation"),
]


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
@pytest.mark.parametrize(("make", "kwargs", "error", "message"), BAD_CALLS)
def test_rejects(implementation, make, kwargs, error, message):
    kwargs = {"implementation": implementation, **kwargs}
    with pytest.raises(error, match=message):
        kernels.block_sparse_matmul(*make(_f32_weight()), **kwargs)


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
def test_int8_rejects(implementation):
    weight = _weight((4, 16), 0.5, shape_in_blocks=(2, 2), dtype=np.int8)
    with pytest.raises(TypeError, match="x must be uint8"):
        kernels.block_sparse_matmul_u8s8(np.ones((3, 8), np.int8), weight, implementation=implementation)
    with pytest.raises(TypeError, match="values must be int8"):
        kernels.block_sparse_matmul_u8s8(np.ones((3, 8), np.uint8), _f32_weight(), implementation=implementation)
    with pytest.raises(TypeError, match="values must be float32"):
        kernels.block_sparse_matmul(np.ones((3, 8), np.float32), weight, implementation=implementation)
    with pytest.raises(ValueError, match="weight_scales must have shape"):
        kernels.block_sparse_matmul_int8(np.ones((3, 8), np.uint8), 0.1, 0, weight, np.ones(3),
                                         implementation=implementation)


@requires_native
def test_native_rejects_corrupt_indices_and_mismatches():
    native, weight = kernels.load_native(), _f32_weight()
    x = np.ones((3, 8), np.float32)
    bad_rows = weight.block_rows.copy()
    bad_rows[0] = 2
    with pytest.raises(ValueError, match="block_rows holds 2"):
        native.block_sparse_matmul_f32(x, weight.values, bad_rows, weight.strip_ptr)
    with pytest.raises(ValueError, match="strip_ptr must run from 0"):
        native.block_sparse_matmul_f32(x, weight.values, weight.block_rows, weight.strip_ptr[:-1].copy())
    with pytest.raises(ValueError, match="not a multiple of block_k"):
        native.block_sparse_matmul_f32(np.ones((3, 6), np.float32), weight.values, weight.block_rows,
                                       weight.strip_ptr)
    with pytest.raises(TypeError, match="x must be float32"):
        native.block_sparse_matmul_f32(x.astype(np.float64), weight.values, weight.block_rows, weight.strip_ptr)
    with pytest.raises(ValueError, match="C-contiguous"):
        native.block_sparse_matmul_f32(np.ones((8, 3), np.float32).T, weight.values, weight.block_rows,
                                       weight.strip_ptr)
    with pytest.raises(ValueError, match="not available on this CPU"):
        native.block_sparse_matmul_f32(x, weight.values, weight.block_rows, weight.strip_ptr, isa="no-such-isa")


def test_forcing_an_unavailable_implementation_says_what_to_install(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "optimizer.kernels.numba_kernels", None)
    monkeypatch.setattr(kernels, "_numba_or_none", lambda: None)
    with pytest.raises(ImportError, match=r"hwopt\[numba\]"):
        kernels.block_sparse_matmul(np.ones((1, 8), np.float32), _f32_weight(), implementation="numba")
