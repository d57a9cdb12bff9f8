import itertools
import time

import numpy as np
import pytest

from optimizer.quantization.calibration.statistics import (
    RANGE_METHODS,
    TensorStatistics,
    _entropy_divergences,
    quantization_params,
)


def _statistics(*batches: np.ndarray, bins: int = 2048) -> TensorStatistics:
    statistics = TensorStatistics("t", bins=bins)
    for batch in batches:
        statistics.update(batch)
    return statistics


def _gaussian_with_outliers(rng, size=1_000_000):
    body = rng.standard_normal(size).astype(np.float32)
    return np.concatenate([body, np.array([40.0, -35.0, 60.0], np.float32)])


def test_histogram_that_grew_matches_numpy_on_all_the_data():
    rng = np.random.default_rng(0)
    batches = [
        rng.standard_normal(10_000).astype(np.float32) * 0.01,  # tiny range first: many widenings follow
        rng.standard_normal(50_000).astype(np.float32),
        rng.uniform(-50, 3, 50_000).astype(np.float32),
        rng.normal(100, 1, 20_000).astype(np.float32),
        rng.standard_normal((2, 3, 40, 40)).astype(np.float32),  # inside the range: no growth
    ]
    statistics = _statistics(*batches)
    everything = np.concatenate([b.ravel() for b in batches])
    counts, edges = statistics.histogram()

    assert statistics.count == everything.size == counts.sum()
    assert (statistics.min, statistics.max) == (everything.min(), everything.max())
    assert 2048 // 2 < len(counts) <= 2048
    assert edges[0] <= everything.min() and everything.max() < edges[-1]
    assert 0.0 in edges  # zero is always a bin edge
    expected, _ = np.histogram(everything.astype(np.float64), bins=edges)
    # Merged bins are exact; only values within rounding of an edge may land next door.
    assert np.abs(counts - expected).sum() <= everything.size * 1e-5


def test_bins_only_ever_merge_into_power_of_two_widths():
    rng = np.random.default_rng(1)
    statistics = _statistics(rng.uniform(0, 1, 1000).astype(np.float32))
    width = statistics.bin_width
    statistics.update(np.array([1000.0], np.float32))
    assert np.log2(width) == int(np.log2(width))
    assert np.log2(statistics.bin_width / width) == int(np.log2(statistics.bin_width / width))
    assert statistics.histogram()[0].sum() == 1001


def test_zeros_nans_and_empty_batches():
    statistics = _statistics(np.zeros((4, 4), np.float32), np.zeros(0, np.float32))
    assert statistics.count == 16
    assert statistics.range("mse", symmetric=False) == (0.0, 0.0)
    statistics.update(np.array([np.nan, np.inf, -2.0, 3.0], np.float32))
    assert statistics.nonfinite == 2
    assert (statistics.min, statistics.max, statistics.count) == (-2.0, 3.0, 18)
    counts, edges = statistics.histogram()
    assert counts[np.searchsorted(edges, 0.0)] == 16  # the zeros kept their bin when the width was set
    assert TensorStatistics().range("entropy") == (0.0, 0.0)


def test_float16_float64_and_integer_batches():
    statistics = _statistics(np.array([1.5, -2.0], np.float16), np.array([4.0], np.float64), np.array([-8]))
    assert (statistics.min, statistics.max, statistics.count) == (-8.0, 4.0, 4)


@pytest.mark.parametrize("symmetric", [False, True])
def test_minmax_keeps_outliers_and_the_others_clip_them(symmetric):
    statistics = _statistics(*np.array_split(_gaussian_with_outliers(np.random.default_rng(2)), 7))
    low, high = statistics.range("minmax", symmetric=symmetric)
    assert high == 60.0 and low == (-60.0 if symmetric else -35.0)
    for method in ("percentile", "entropy", "mse"):
        low, high = statistics.range(method, symmetric=symmetric)
        assert 3.0 < high < 30.0, method  # the Gaussian body is kept, the outliers are clipped
        assert -30.0 < low < -3.0, method
        if symmetric:
            assert low == -high


def test_methods_on_known_distributions():
    rng = np.random.default_rng(3)
    gaussian = _statistics(rng.standard_normal(1_000_000).astype(np.float32))
    low, high = gaussian.range("percentile", symmetric=True, percentile=99.0)
    assert high == pytest.approx(2.576, abs=0.02)  # two-sided 1% of a standard normal
    low, high = gaussian.range("percentile", symmetric=False, percentile=99.0)
    assert (low, high) == (pytest.approx(-2.326, abs=0.02), pytest.approx(2.326, abs=0.02))
    assert 3.5 < gaussian.range("mse", symmetric=True)[1] < 4.5  # 8-bit MSE optimum of N(0, 1)
    assert 3.5 < gaussian.range("entropy", symmetric=True)[1] < 5.5

    # A uniform distribution has no tail worth clipping.
    uniform = _statistics(rng.uniform(-1, 3, 1_000_000).astype(np.float32))
    for method in RANGE_METHODS:
        low, high = uniform.range(method, symmetric=False)
        assert low == pytest.approx(-1, abs=0.02) and high == pytest.approx(3, abs=0.02), method

    # ReLU outputs: nothing below zero, so no method invents a negative range.
    relu = _statistics(np.maximum(rng.standard_normal(200_000), 0).astype(np.float32))
    for method in RANGE_METHODS:
        low, high = relu.range(method, symmetric=False)
        assert 0.0 <= low < 0.01 and 2.0 < high <= relu.max, method


def _fake_quantization_error(values: np.ndarray, low: float, high: float) -> float:
    scale, zero_point = quantization_params(low, high, "int8", symmetric=True)
    quantized = np.clip(np.round(values / scale) + int(zero_point), -128, 127)
    return float(np.mean(((quantized - int(zero_point)) * scale - values) ** 2))


def test_mse_range_has_the_least_real_quantization_error():
    values = _gaussian_with_outliers(np.random.default_rng(8))
    statistics = _statistics(values)
    errors = {m: _fake_quantization_error(values, *statistics.range(m, symmetric=True)) for m in RANGE_METHODS}
    assert errors["mse"] <= min(errors.values()) * 1.02, errors
    assert errors["mse"] < errors["minmax"] / 2, errors


def test_fewer_bits_clip_more():
    statistics = _statistics(np.random.default_rng(4).standard_normal(500_000).astype(np.float32))
    four = statistics.range("mse", symmetric=True, num_bits=4)[1]
    eight = statistics.range("mse", symmetric=True, num_bits=8)[1]
    assert 1.5 < four < eight


def test_range_arguments_are_checked():
    statistics = _statistics(np.arange(10, dtype=np.float32))
    with pytest.raises(ValueError, match="unknown range method"):
        statistics.range("kl")
    with pytest.raises(ValueError, match="percentile"):
        statistics.range("percentile", percentile=0)
    with pytest.raises(TypeError):
        statistics.update(np.array(["a"]))


def test_update_and_ranges_are_fast():
    rng = np.random.default_rng(5)
    activation = rng.standard_normal((1, 64, 80, 80)).astype(np.float32)
    statistics = _statistics(activation)
    timings = []
    for _ in range(20):
        start = time.perf_counter()
        statistics.update(activation)
        timings.append(time.perf_counter() - start)
    update_ms = float(np.median(timings)) * 1e3
    statistics.update(_gaussian_with_outliers(rng))
    method_ms = {}
    for method in RANGE_METHODS:
        start = time.perf_counter()
        for symmetric in (False, True):
            statistics.range(method, symmetric=symmetric)
        method_ms[method] = (time.perf_counter() - start) / 2 * 1e3
    print(f"update 1x64x80x80: {update_ms:.2f} ms; ranges (ms): "
          + ", ".join(f"{m} {t:.2f}" for m, t in method_ms.items()))
    assert update_ms < 5.0  # about 0.6 ms on one core; generous for loaded CI machines
    assert max(method_ms.values()) < 50.0


@pytest.mark.parametrize("dtype", ["uint8", "int8"])
@pytest.mark.parametrize("symmetric", [False, True])
def test_quantization_params_properties(dtype, symmetric):
    rng = np.random.default_rng(6)
    qmin, qmax = (0, 255) if dtype == "uint8" else (-128, 127)
    ranges = [(0.0, 0.0), (0.0, 1e-30), (2.0, 5.0), (-5.0, -2.0), (-1.0, 1.0), (-3e-3, 7.0)]
    ranges += [tuple(sorted(rng.normal(0, 10, 2))) for _ in range(50)]
    for low, high in ranges:
        scale, zero_point = quantization_params(low, high, dtype, symmetric=symmetric)
        assert scale.dtype == np.float32 and zero_point.dtype == np.dtype(dtype)
        assert scale > 0 and np.isfinite(scale)
        assert qmin <= int(zero_point) <= qmax
        if symmetric:
            assert int(zero_point) == (128 if dtype == "uint8" else 0)
        if high - low > 1e-6:
            # Every value of the range (widened to include 0) quantizes within half a step.
            values = np.linspace(min(low, 0), max(high, 0), 101, dtype=np.float32)
            quantized = np.clip(np.round(values / scale) + int(zero_point), qmin, qmax)
            restored = (quantized - int(zero_point)) * scale
            assert np.abs(restored - values).max() <= scale * 0.5 + 1e-6 * max(abs(low), abs(high))
        # Zero is exactly representable: it maps to the zero point.
        assert np.round(0.0 / scale) + int(zero_point) == int(zero_point)


def test_quantization_params_examples_and_errors():
    scale, zero_point = quantization_params(-1.0, 1.0, "int8", symmetric=True)
    assert scale == np.float32(1 / 127) and zero_point == 0
    scale, zero_point = quantization_params(0.0, 2.55, "uint8")
    assert scale == np.float32(0.01) and zero_point == 0
    scale, zero_point = quantization_params(1.0, 2.0, "uint8")  # widened to [0, 2]
    assert scale == np.float32(2 / 255) and zero_point == 0
    assert quantization_params(0.0, 0.0, "int8") == (np.float32(1.0), np.int8(-128))
    assert quantization_params(0.0, 0.0, "uint8", symmetric=True) == (np.float32(1.0), np.uint8(128))
    with pytest.raises(ValueError, match="low > high"):
        quantization_params(2.0, 1.0)
    with pytest.raises(ValueError, match="not finite"):
        quantization_params(0.0, float("inf"))
    with pytest.raises(ValueError, match="unknown quantized type"):
        quantization_params(0.0, 1.0, "int3")


def _reference_divergence(counts: np.ndarray, start: int, stop: int, levels: int) -> float:
    """TensorRT's KL divergence for one window, written out bin by bin."""
    histogram = counts.astype(np.float64)
    inside = histogram[start:stop]
    p = inside.copy()
    p[0] += histogram[:start].sum()
    p[-1] += histogram[stop:].sum()
    q = np.zeros_like(inside)
    edges = [(j * len(inside)) // levels for j in range(levels + 1)]
    for low, high in itertools.pairwise(edges):
        chunk = inside[low:high]
        if (chunk > 0).any():
            q[low:high][chunk > 0] = chunk.sum() / (chunk > 0).sum()
    q[(p > 0) & (q == 0)] = 1e-6
    p, q = p / p.sum(), q / inside.sum()
    kept = p > 0
    return float(np.sum(p[kept] * np.log(p[kept] / q[kept])))


@pytest.mark.parametrize("first", [0, -70])
def test_vectorized_entropy_matches_the_bin_by_bin_definition(first):
    counts = np.random.default_rng(7).integers(0, 50, 200)
    counts[::7] = 0  # empty bins inside chunks
    counts[-first + 3] = 0  # an empty edge bin for some windows
    starts, stops, divergence = _entropy_divergences(counts, first, levels=16)
    expected = [_reference_divergence(counts, a, b, 16) for a, b in zip(starts, stops)]
    np.testing.assert_allclose(divergence, expected, rtol=1e-9, atol=1e-12)
    assert (starts <= max(-first, 0)).all() and (stops >= max(-first, 0)).all()
