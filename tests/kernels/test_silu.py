"""The SiLU kernel: native against the NumPy reference, at extreme values, and the checks on its argument.

The native tests are skipped, with the reason, when optimizer.kernels._native is not built; the tests of the
reference and of the `optimizer.kernels.silu` dispatcher run either way.
"""

from __future__ import annotations

import functools
import sys

import numpy as np
import pytest
from optimizer.kernels.reference import silu_reference

from optimizer import kernels

requires_native = pytest.mark.skipif(
    not kernels.native_available(),
    reason="optimizer.kernels._native is not built (install hwopt with a C++17 compiler and CMake)",
)

# A few float32 ulps: the native exp is a polynomial and NumPy's is its own SIMD code, so the two round differently.
RTOL = 1e-6
# Below the normal range (silu(x) for x < -87 or so) the two may differ in the last denormal digits.
ATOL = float(np.finfo(np.float32).tiny)

# Empty, 0-d, lengths around a 16-float vector, and a small image-like tensor.
SHAPES = [(), (0,), (2, 0, 3), (1,), (7,), (15,), (16,), (17,), (33,), (1023,), (3, 5, 7), (1, 8, 20, 20)]
# Above the native kernel's OpenMP threshold (2^16 floats), and not a multiple of its block size.
LARGE_SHAPE = (3, 70_001)


def _silu_float64(x: np.ndarray) -> np.ndarray:
    """The definition, in float64 and for moderate x only: x / (1 + exp(-x))."""
    x = x.astype(np.float64)
    return x / (1 + np.exp(-x))


# The native kernel is built once per instruction set and picks the widest this CPU runs; the tests run every copy
# the CPU can, since users on other machines get the narrower ones.
ISAS = kernels.load_native().silu_isas() if kernels.native_available() else ["none"]


@pytest.fixture(scope="module")
def native():
    return kernels.load_native()


@pytest.fixture(params=ISAS)
def isa(request):
    return request.param


def _random(shape: tuple[int, ...], scale: float = 8.0, seed: int = 0) -> np.ndarray:
    # asarray: for shape (), NumPy arithmetic gives a scalar, and the kernels take arrays only.
    return np.asarray(np.random.default_rng(seed).standard_normal(shape) * scale, dtype=np.float32)


# The reference itself.


def test_reference_matches_the_definition():
    x = np.linspace(-40, 40, 10_001, dtype=np.float32)
    np.testing.assert_allclose(silu_reference(x), _silu_float64(x), rtol=RTOL, atol=ATOL)


def test_reference_keeps_the_dtype():
    assert silu_reference(np.ones(3, np.float32)).dtype == np.float32
    assert silu_reference(np.ones(3, np.float64)).dtype == np.float64
    with pytest.raises(TypeError, match="floating-point"):
        silu_reference(np.ones(3, np.int32))


# The native kernel against the reference.


@requires_native
@pytest.mark.parametrize("shape", SHAPES + [LARGE_SHAPE], ids=str)
def test_native_matches_reference(native, isa, shape):
    x = _random(shape)
    y = native.silu(x, isa=isa)
    assert y.shape == x.shape
    assert y.dtype == np.float32
    assert y.flags.c_contiguous
    np.testing.assert_allclose(y, silu_reference(x), rtol=RTOL, atol=ATOL)


@requires_native
def test_native_matches_reference_across_magnitudes(native, isa):
    magnitudes = np.logspace(-38, 38, 20_001, dtype=np.float64)
    x = np.concatenate([magnitudes, -magnitudes, [0.0, -0.0]]).astype(np.float32)
    np.testing.assert_allclose(native.silu(x, isa=isa), silu_reference(x), rtol=RTOL, atol=ATOL)


@requires_native
def test_native_instruction_sets_agree_bit_for_bit(native):
    # Every copy does the same IEEE operations in the same order (no FMA contraction), so a result never depends
    # on the machine, down to the sign of zero; only which NaN comes out may differ. Random bit patterns cover
    # every exponent, infinities and NaN included.
    bits = np.random.default_rng(4).integers(0, 2**32, 1 << 20, dtype=np.uint64).astype(np.uint32)
    x = np.concatenate([bits.view(np.float32), np.linspace(-120, 120, 100_001, dtype=np.float32)])
    widest = native.silu(x)
    nan = np.isnan(widest)
    for isa in native.silu_isas():
        y = native.silu(x, isa=isa)
        np.testing.assert_array_equal(np.isnan(y), nan, err_msg=isa)
        np.testing.assert_array_equal(y[~nan].view(np.uint32), widest[~nan].view(np.uint32), err_msg=isa)


@requires_native
def test_native_returns_a_new_array_and_leaves_the_input_alone(native):
    x = _random((4, 9))
    before = x.copy()
    y = native.silu(x)
    assert not np.shares_memory(x, y)
    np.testing.assert_array_equal(x, before)


@requires_native
@pytest.mark.parametrize("shape", SHAPES + [LARGE_SHAPE], ids=str)
def test_native_inplace_matches_out_of_place(native, isa, shape):
    x = _random(shape, seed=1)
    expected = native.silu(x, isa=isa)
    assert native.silu_inplace(x, isa=isa) is None
    np.testing.assert_array_equal(x, expected)


@requires_native
def test_native_inplace_on_a_contiguous_slice_touches_only_the_slice(native, isa):
    # Starts one float in, so the slice is not 16-byte aligned, and is 19 long, not a multiple of the vector width.
    buffer = _random((32,), seed=2)
    before = buffer.copy()
    native.silu_inplace(buffer[1:20], isa=isa)
    np.testing.assert_allclose(buffer[1:20], silu_reference(before[1:20]), rtol=RTOL, atol=ATOL)
    np.testing.assert_array_equal(buffer[0], before[0])
    np.testing.assert_array_equal(buffer[20:], before[20:])


# Extreme values: the kernels only take exp of -|x|, so nothing overflows.

FLOAT32 = np.finfo(np.float32)


def _extremes() -> np.ndarray:
    return np.array(
        [100, -100, 1e30, -1e30, 88.8, -88.8, 110, -110, 200, -200, FLOAT32.max, -FLOAT32.max,
         FLOAT32.tiny, -FLOAT32.tiny, FLOAT32.smallest_subnormal, -FLOAT32.smallest_subnormal, 0.0, -0.0],
        dtype=np.float32,
    )


def _check_extremes(silu):
    x = _extremes()
    y = silu(x)
    assert np.all(np.isfinite(y)), dict(zip(x.tolist(), y.tolist()))
    positive = x > 1
    np.testing.assert_array_equal(y[positive], x[positive])  # sigmoid(x) rounds to 1
    assert np.all(np.abs(y[x < -1]) < 1e-35)  # x * e^x: about -2.6e-37 at x = -88.8, then denormal, then -0
    np.testing.assert_allclose(y, silu_reference(x), rtol=RTOL, atol=ATOL)

    infinities = silu(np.array([np.inf, -np.inf], dtype=np.float32))
    assert infinities[0] == np.inf
    assert infinities[1] == 0


def _check_nan_propagates(silu):
    x = np.array([1.0, np.nan, -1.0, np.nan, 0.0], dtype=np.float32)
    y = silu(x)
    np.testing.assert_array_equal(np.isnan(y), np.isnan(x))
    np.testing.assert_allclose(y[~np.isnan(x)], silu_reference(x[~np.isnan(x)]), rtol=RTOL)


def test_reference_extremes():
    _check_extremes(silu_reference)


def test_reference_nan_propagates():
    _check_nan_propagates(silu_reference)


@requires_native
def test_native_extremes(native, isa):
    _check_extremes(functools.partial(native.silu, isa=isa))


@requires_native
def test_native_nan_propagates(native, isa):
    _check_nan_propagates(functools.partial(native.silu, isa=isa))


# The dispatcher, native or not.


@pytest.mark.parametrize("shape", [(), (0,), (17,), (2, 3, 5)], ids=str)
def test_dispatcher_matches_reference(shape):
    x = _random(shape, seed=3)
    np.testing.assert_allclose(kernels.silu(x), silu_reference(x), rtol=RTOL, atol=ATOL)


def test_dispatcher_extremes_and_nan():
    _check_extremes(kernels.silu)
    _check_nan_propagates(kernels.silu)


# Argument checks: the native kernel and the dispatcher (whichever path it takes) reject the same inputs.


def _misaligned() -> np.ndarray:
    x = np.frombuffer(bytearray(4 * 8 + 1), dtype=np.float32, count=8, offset=1)
    assert not x.flags.aligned
    return x


BAD_INPUTS = [
    pytest.param(lambda: np.ones(5, np.float64), TypeError, "float32", id="float64"),
    pytest.param(lambda: np.ones(5, np.float16), TypeError, "float32", id="float16"),
    pytest.param(lambda: np.ones(5, np.int32), TypeError, "float32", id="int32"),
    pytest.param(lambda: np.ones(5, ">f4"), TypeError, "float32", id="big-endian"),
    pytest.param(lambda: [1.0, 2.0], TypeError, "numpy.ndarray", id="list"),
    pytest.param(lambda: 1.0, TypeError, "numpy.ndarray", id="float"),
    pytest.param(lambda: np.float32(1.0), TypeError, "numpy.ndarray", id="numpy-scalar"),
    pytest.param(lambda: np.ones((4, 6), np.float32)[:, ::2], ValueError, "C-contiguous", id="strided"),
    pytest.param(lambda: np.ones((4, 6), np.float32).T, ValueError, "C-contiguous", id="transposed"),
    pytest.param(lambda: np.ones((4, 6), np.float32, order="F"), ValueError, "C-contiguous", id="fortran"),
    pytest.param(_misaligned, ValueError, "aligned", id="misaligned"),
]


@requires_native
@pytest.mark.parametrize(("make", "error", "message"), BAD_INPUTS)
def test_native_rejects(native, make, error, message):
    with pytest.raises(error, match=message):
        native.silu(make())
    with pytest.raises(error, match=message):
        native.silu_inplace(make())


@pytest.mark.parametrize(("make", "error", "message"), BAD_INPUTS)
def test_dispatcher_rejects(make, error, message):
    with pytest.raises(error, match=message):
        kernels.silu(make())


@requires_native
def test_native_inplace_rejects_read_only(native):
    x = np.ones(5, np.float32)
    x.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        native.silu_inplace(x)
    np.testing.assert_allclose(native.silu(x), silu_reference(x), rtol=RTOL)  # reading it is fine


# Loading.


def test_load_native_explains_how_to_build_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "optimizer.kernels._native", None)  # makes the import fail
    with pytest.raises(ImportError, match="C\\+\\+17 compiler and CMake"):
        kernels.load_native()


@requires_native
def test_native_reports_openmp_and_instruction_sets(native):
    assert isinstance(native.openmp, bool)
    assert native.silu_isas()[-1] == "baseline"


@requires_native
def test_native_rejects_an_unknown_instruction_set(native):
    with pytest.raises(ValueError, match="not available on this CPU"):
        native.silu(np.ones(3, np.float32), isa="no-such-isa")
