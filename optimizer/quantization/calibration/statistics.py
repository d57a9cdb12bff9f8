"""Streaming statistics of one tensor's values, and the quantization ranges computed from them.

A `TensorStatistics` sees a tensor one batch at a time and keeps only its min, max and a histogram, so
calibrating on many samples costs the memory of one. The histogram's bins have a power-of-two width `w` and
edges at multiples of it, bin k covering [k*w, (k+1)*w); the bins span min(data, 0) to max(data, 0), at most
`bins` of them. Zero is always an edge, because every quantization range includes zero: folding the histogram
around it gives the histogram of |x| exactly, for the symmetric ranges. When new data falls outside, the width
doubles as many times as needed and each run of 2**k old bins merges into one new bin, exactly, since the old
edges are a superset of the new: nothing is re-read, and the histogram keeps about bins/2 to bins bins over
its span. Exact zeros are also counted: they quantize without error, so entropy and mse leave them out.

The ranges (`TensorStatistics.range`):
  minmax      the extremes seen: no clipping, the whole range is kept for an outlier;
  percentile  clip the tails beyond a percentile (99.99 keeps all but 1 value in 10,000);
  entropy     TensorRT's calibration: the clip threshold whose quantized distribution is closest to the
              original in Kullback-Leibler divergence, the clipped tail being folded into the last bin;
  mse         the threshold that minimizes the expected squared quantization error, s**2/12 per value
              inside the range (s: the step) plus the squared distance to the clip for each value beyond it.
The asymmetric forms of entropy and mse shrink [min(x, 0), max(x, 0)] towards zero by one factor, keeping the
share of the levels each side of zero gets.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np

RangeMethod = Literal["minmax", "percentile", "entropy", "mse"]
RANGE_METHODS: tuple[RangeMethod, ...] = ("minmax", "percentile", "entropy", "mse")
QuantizedType = Literal["uint8", "int8", "uint16", "int16"]

DEFAULT_BINS = 2048
DEFAULT_PERCENTILE = 99.99

# Integer range of each quantized type, and the range used when it is symmetric (zero point in the middle,
# the same number of levels each side, so that -t and t are both exactly representable).
_QUANTIZED_TYPES: dict[str, tuple[type[np.integer], int, int]] = {
    "uint8": (np.uint8, 0, 255),
    "int8": (np.int8, -128, 127),
    "uint16": (np.uint16, 0, 65535),
    "int16": (np.int16, -32768, 32767),
}
# A bin that holds part of a clipped tail while its quantized counterpart holds nothing would make the KL
# divergence infinite; this stand-in (in counts) keeps it finite and still costly in proportion to the tail.
_EMPTY_BIN_COUNT = 1e-6
# Clip thresholds tried by entropy and mse; a stride of a few bins loses nothing that matters at 8 bits.
MAX_CANDIDATES = 512
# Scaling by 1/w in float32 is exact for power-of-two widths unless 1/w overflows or underflows.
_FLOAT32_SAFE_EXPONENT = 100


class TensorStatistics:
    """Min, max and histogram of one tensor's values, updated one batch at a time."""

    def __init__(self, name: str = "", *, bins: int = DEFAULT_BINS) -> None:
        if bins < 16:
            raise ValueError(f"a histogram needs at least 16 bins, not {bins}")
        self.name = name
        self.bins = bins
        self.count = 0  # finite values seen
        self.nonfinite = 0  # NaN and infinities seen (and left out)
        self.zeros = 0  # exact zeros among the values: quantized without error, so entropy and mse skip them
        self.min = math.inf
        self.max = -math.inf
        self._width: float | None = None  # None while every value seen was zero
        self._first = 0  # bin index of _counts[0]; bin k covers [k*w, (k+1)*w)
        self._counts = np.zeros(1, dtype=np.int64)

    def __repr__(self) -> str:
        return (f"TensorStatistics({self.name!r}, count={self.count}, min={self.min:.6g}, "
                f"max={self.max:.6g}, bins={len(self._counts)})")

    def update(self, array: np.ndarray) -> None:
        """Add the values of `array` (any shape, a real float or integer type)."""
        values = np.asarray(array)
        if values.dtype.kind not in "fiub":
            raise TypeError(f"tensor statistics need real numbers, not {values.dtype}")
        if values.dtype != np.float64:
            values = values.astype(np.float32, copy=False)
        values = values.reshape(-1)
        if values.size == 0:
            return
        low, high = float(values.min()), float(values.max())
        if not (math.isfinite(low) and math.isfinite(high)):
            finite = values[np.isfinite(values)]
            self.nonfinite += values.size - finite.size
            values = finite
            if values.size == 0:
                return
            low, high = float(values.min()), float(values.max())
        self.count += values.size
        self.min, self.max = min(self.min, low), max(self.max, high)
        if low == high == 0.0:
            self._counts[-self._first] += values.size  # bin 0, whatever the width
            self.zeros += values.size
            return
        if low <= 0.0 <= high:
            self.zeros += int(np.count_nonzero(values == 0))
        self._cover(min(low, 0.0), max(high, 0.0))
        self._add(values)

    def histogram(self) -> tuple[np.ndarray, np.ndarray]:
        """(counts, edges) like `np.histogram`: len(edges) == len(counts) + 1."""
        width = self._width or 0.0
        edges = (self._first + np.arange(len(self._counts) + 1)) * width
        return self._counts.copy(), edges

    @property
    def bin_width(self) -> float:
        return self._width or 0.0

    def range(
        self,
        method: RangeMethod = "minmax",
        *,
        num_bits: int = 8,
        symmetric: bool = False,
        percentile: float = DEFAULT_PERCENTILE,
    ) -> tuple[float, float]:
        """The (low, high) range to quantize to, by `method`; symmetric ranges are (-t, t).

        `num_bits` sets the number of levels that entropy and mse optimize for. The range is never wider
        than the data seen; it is (0.0, 0.0) when only zeros, or nothing, were seen.
        """
        if method not in RANGE_METHODS:
            raise ValueError(f"unknown range method {method!r}; use one of {', '.join(RANGE_METHODS)}")
        if not 0.0 < percentile <= 100.0:
            raise ValueError(f"percentile must be in (0, 100], not {percentile}")
        if num_bits < 2:
            raise ValueError(f"num_bits must be at least 2, not {num_bits}")
        if self.count == 0 or self._width is None:
            return 0.0, 0.0
        absmax = max(abs(self.min), abs(self.max))
        if method == "minmax":
            return (-absmax, absmax) if symmetric else (self.min, self.max)
        if symmetric:
            counts, first, top = self._folded(), 0, absmax
            low = 0.0
        else:
            counts, first, top = self._counts, self._first, self.max
            low = self.min
        if method in ("entropy", "mse"):
            # A spike of exact zeros (ReLU outputs, padding) costs nothing to quantize, but merged into one
            # quantization level with its neighbours it would dominate the divergence and shrink the range.
            counts = counts.copy()
            counts[-first] -= self.zeros
        if method == "percentile":
            high = _quantile(counts, first, self._width, percentile / 100.0)
            if not symmetric:
                low = max(_quantile(counts, first, self._width, 1.0 - percentile / 100.0), self.min)
        else:
            levels = 2 ** (num_bits - 1) if symmetric else 2**num_bits
            choose = _entropy_window if method == "entropy" else _mse_window
            start, stop = choose(counts, first, self._width, levels)
            high = (first + stop) * self._width
            if not symmetric:
                low = max((first + start) * self._width, self.min)
        high = float(min(high, top))
        return (-high, high) if symmetric else (float(min(low, high)), high)

    def _folded(self) -> np.ndarray:
        """The histogram of |x|: bin k >= 0 covers |x| in [k*w, (k+1)*w)."""
        negative = self._counts[: max(-self._first, 0)][::-1]  # bins -1, -2, ... as |x| bins 0, 1, ...
        positive = self._counts[max(-self._first, 0):]
        folded = np.zeros(max(len(negative), len(positive)), dtype=np.int64)
        folded[: len(negative)] += negative
        folded[: len(positive)] += positive
        return folded

    def _cover(self, low: float, high: float) -> None:
        """Make the histogram span [low, high] (low <= 0 <= high), widening the bins as needed."""
        if self._width is None:
            # The first non-zero data: the narrowest power-of-two width that spans it in `bins` bins.
            exponent = math.ceil(math.log2((high - low) / (self.bins - 2)))
            self._width = math.ldexp(1.0, exponent)
        first = min(self._first, math.floor(low / self._width))
        last = max(self._first + len(self._counts) - 1, math.floor(high / self._width))
        shift = 0
        while (last >> shift) - (first >> shift) + 1 > self.bins:
            shift += 1
        if shift:
            self._merge(shift)
            self._width = math.ldexp(self._width, shift)
            first, last = first >> shift, last >> shift
        old_first, old_last = self._first, self._first + len(self._counts) - 1
        if first < old_first or last > old_last:
            self._counts = np.concatenate([
                np.zeros(old_first - first, dtype=np.int64),
                self._counts,
                np.zeros(last - old_last, dtype=np.int64),
            ])
            self._first = first

    def _merge(self, shift: int) -> None:
        """Widen the bins 2**shift times, adding each run of old bins into the new bin that holds it."""
        indices = self._first + np.arange(len(self._counts), dtype=np.int64)
        # Bin indices stay within +-bins, so a shift past 62 bits gives the same 0 or -1 as any larger one.
        merged = indices >> min(shift, 62)
        new_first = int(merged[0])
        self._counts = np.bincount(merged - new_first, weights=self._counts).astype(np.int64)
        self._first = new_first

    def _add(self, values: np.ndarray) -> None:
        exponent = math.frexp(self._width)[1] - 1
        if values.dtype == np.float32 and abs(exponent) > _FLOAT32_SAFE_EXPONENT:
            values = values.astype(np.float64)
        scaled = values * values.dtype.type(1.0 / self._width)  # exact: the width is a power of two
        # Floor first, then shift to start at 0: both exact, so each value lands in the bin numpy would give.
        np.floor(scaled, out=scaled)
        np.subtract(scaled, self._first, out=scaled)
        self._counts += np.bincount(scaled.astype(np.intp), minlength=len(self._counts))


def quantization_params(
    low: float, high: float, dtype: QuantizedType = "uint8", *, symmetric: bool = False
) -> tuple[np.float32, np.integer]:
    """The (scale, zero_point) mapping [low, high] onto `dtype`: real = (q - zero_point) * scale.

    The range is first widened to include 0, which must be exact (zero padding, ReLU outputs). Symmetric
    ranges put the zero point in the middle (0 for int8, 128 for uint8) and give each side the same number of
    levels, 127 for 8 bits. The scale is never 0: an all-zero range gets scale 1.
    """
    if dtype not in _QUANTIZED_TYPES:
        raise ValueError(f"unknown quantized type {dtype!r}; use one of {', '.join(_QUANTIZED_TYPES)}")
    if not (math.isfinite(low) and math.isfinite(high)):
        raise ValueError(f"cannot quantize the range [{low}, {high}]: not finite")
    if low > high:
        raise ValueError(f"cannot quantize the range [{low}, {high}]: low > high")
    numpy_type, qmin, qmax = _QUANTIZED_TYPES[dtype]
    low, high = min(float(low), 0.0), max(float(high), 0.0)
    if symmetric:
        half_levels = (qmax - qmin) // 2
        scale = np.float32(max(-low, high) / half_levels)
        zero_point = (qmin + qmax + 1) // 2
    else:
        scale = np.float32((high - low) / (qmax - qmin))
        zero_point = None
    if not scale >= np.finfo(np.float32).tiny:  # zero, too small to divide by, or a float32 underflow
        scale = np.float32(1.0)
    if zero_point is None:
        zero_point = int(np.clip(round(qmin - low / float(scale)), qmin, qmax))
    return scale, numpy_type(zero_point)


def _quantile(counts: np.ndarray, first: int, width: float, fraction: float) -> float:
    """The value below which `fraction` of the histogram's mass lies, linear within a bin."""
    cumulative = np.cumsum(counts)
    target = fraction * cumulative[-1]
    index = min(int(np.searchsorted(cumulative, target, side="left")), len(counts) - 1)
    below = cumulative[index - 1] if index else 0
    inside = (target - below) / counts[index] if counts[index] else 1.0
    return (first + index + min(max(inside, 0.0), 1.0)) * width


def _candidate_windows(counts: np.ndarray, first: int, levels: int) -> tuple[np.ndarray, np.ndarray]:
    """Clip windows [start, stop) in bin indices of `counts`, from `levels` bins wide to all of them.

    Each keeps the bin edge at zero and the share of bins each side of it that the whole histogram has.
    At most MAX_CANDIDATES widths are tried, evenly spaced, the full width always among them.
    """
    total = len(counts)
    zero = min(max(-first, 0), total)  # index in counts of the bin starting at 0
    narrowest = min(levels, total)
    stride = -(-(total + 1 - narrowest) // MAX_CANDIDATES)
    widths = np.arange(total, narrowest - 1, -stride)[::-1]
    below = np.rint(widths * (zero / total)).astype(np.int64)
    return zero - below, zero - below + widths


def _entropy_window(counts: np.ndarray, first: int, width: float, levels: int) -> tuple[int, int]:
    """TensorRT's entropy calibration: the candidate window with the smallest KL divergence."""
    if len(counts) <= levels or not counts.any():  # as coarse as the levels already, or all zeros
        return 0, len(counts)
    starts, stops, divergence = _entropy_divergences(counts, first, levels)
    best = int(np.argmin(divergence))
    return int(starts[best]), int(stops[best])


def _entropy_divergences(counts: np.ndarray, first: int, levels: int
                         ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """KL(P || Q) of every candidate window [start, stop), computed all at once.

    For a window, P is the histogram inside it with the mass outside added to its edge bins; Q quantizes the
    histogram inside (outliers left out) to `levels` chunks and spreads each chunk's mass evenly over its
    non-empty bins. Everything is written with prefix sums, so each candidate costs O(levels), not O(bins).
    """
    starts, stops = _candidate_windows(counts, first, levels)
    counts = counts.astype(np.float64)
    total = counts.sum()
    cumulative = np.concatenate([[0.0], np.cumsum(counts)])
    nonempty = np.concatenate([[0], np.cumsum(counts > 0)])
    safe = np.where(counts > 0, counts, 1.0)
    entropy_terms = np.concatenate([[0.0], np.cumsum(counts * np.log(safe))])

    widths = stops - starts
    chunk_edges = starts[:, None] + (np.arange(levels + 1)[None, :] * widths[:, None]) // levels
    chunk_mass = np.diff(cumulative[chunk_edges], axis=1)
    chunk_nonempty = np.diff(nonempty[chunk_edges], axis=1)
    filled = chunk_mass > 0
    # Q's value on a non-empty bin of chunk j is mass_j / nonempty_j; sum of h*log(Q) over those bins:
    q_log_q = np.where(filled, chunk_mass * np.log(np.where(filled, chunk_mass, 1.0)
                                                     / np.maximum(chunk_nonempty, 1)), 0.0)
    sum_p_log_q = q_log_q.sum(axis=1)

    inside = cumulative[stops] - cumulative[starts]
    left_tail, right_tail = cumulative[starts], total - cumulative[stops]
    left_bin, right_bin = counts[starts], counts[stops - 1]

    def q_at(bin_count: np.ndarray, chunk: int) -> np.ndarray:
        density = chunk_mass[:, chunk] / np.maximum(chunk_nonempty[:, chunk], 1)
        return np.where(bin_count > 0, density, _EMPTY_BIN_COUNT)

    sum_p_log_q = sum_p_log_q + _x_log_y(left_tail, q_at(left_bin, 0)) \
        + _x_log_y(right_tail, q_at(right_bin, levels - 1))
    # P differs from the histogram only in its two edge bins, which take the tails.
    sum_p_log_p = (entropy_terms[stops] - entropy_terms[starts]
                   - _x_log_y(left_bin, left_bin) - _x_log_y(right_bin, right_bin)
                   + _x_log_y(left_bin + left_tail, left_bin + left_tail)
                   + _x_log_y(right_bin + right_tail, right_bin + right_tail))
    with np.errstate(divide="ignore"):
        divergence = (sum_p_log_p - sum_p_log_q) / total - math.log(total) + np.log(inside)
    divergence[inside <= 0] = np.inf
    return starts, stops, divergence


def _mse_window(counts: np.ndarray, first: int, width: float, levels: int) -> tuple[int, int]:
    """The candidate window with the least expected squared error when quantized to `levels` levels.

    Inside the window, rounding costs step**2 / 12 per value (step: the window's width over levels - 1);
    a value beyond it costs its squared distance to the window's edge, each bin's mass taken at its centre.
    """
    if not counts.any():
        return 0, len(counts)
    starts, stops = _candidate_windows(counts, first, levels=2)
    counts = counts.astype(np.float64)
    centres = (np.arange(len(counts)) + 0.5) * width  # relative to the histogram's first edge
    mass = np.concatenate([[0.0], np.cumsum(counts)])
    moment1 = np.concatenate([[0.0], np.cumsum(counts * centres)])
    moment2 = np.concatenate([[0.0], np.cumsum(counts * centres**2)])
    low_edges, high_edges = starts * width, stops * width

    # Bins [0, start) clip to low_edge, bins [stop, n) to high_edge: sum of m * (c - edge)**2 by moments.
    below = moment2[starts] - 2 * low_edges * moment1[starts] + low_edges**2 * mass[starts]
    above_mass = mass[-1] - mass[stops]
    above_m1, above_m2 = moment1[-1] - moment1[stops], moment2[-1] - moment2[stops]
    above = above_m2 - 2 * high_edges * above_m1 + high_edges**2 * above_mass
    step = (high_edges - low_edges) / (levels - 1)
    inside = mass[stops] - mass[starts]
    error = below + above + inside * step**2 / 12.0
    best = int(np.argmin(error))
    return int(starts[best]), int(stops[best])


def _x_log_y(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """x * log(y), 0 where x is 0."""
    return np.where(x > 0, x * np.log(np.where(x > 0, y, 1.0)), 0.0)
