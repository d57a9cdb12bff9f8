"""Timing one session: warm up, then time runs until the median is known to within a tolerance, or the time
budget is spent.

The median, not the mean, is the figure: these machines are shared, and a stray slow run (a context switch, a
page fault) moves a mean but not a median. How well the median is known is read from the samples themselves,
with no assumption about their distribution: in n sorted samples, the ranks n/2 -+ 0.98 sqrt(n) bound a 95%
confidence interval of the median (the binomial order-statistic interval, normal approximation). Timing stops
once that interval is within `tolerance` of the median on either side.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

from optimizer.benchmarks.run_report import LatencySummary

DEFAULT_TOLERANCE = 0.01
"""Stop when the median's 95% interval is within +-1%."""
MIN_RUNS = 10
"""Fewer samples give no useful interval; the order-statistic ranks need n of about 10 or more."""
MIN_SECONDS = 1.0
"""Time at least this long (or the whole budget, if smaller) before an interval may stop timing: a few
milliseconds of runs can look tight and still miss the machine's slower moments, which p90/p99 should see."""
WARMUP_RUNS = 3
WARMUP_SECONDS = 0.5
"""At least this long of warm-up: caches, the runtime's thread pool and the CPU's clock settle in about this."""
CHECK_EVERY = 5
"""Recompute the interval after this many runs (sorting every run costs more than it saves)."""


@dataclass(frozen=True)
class TimingBudget:
    time_budget_s: float = 10.0
    """Stop after this much timed running, tight interval or not."""
    runs: int | None = None
    """Exactly this many timed runs instead (no interval stop, no time budget)."""
    tolerance: float = DEFAULT_TOLERANCE


def median_interval(ordered: list[float]) -> tuple[float, float]:
    """The 95% confidence interval of the median of `ordered` (sorted) samples."""
    n = len(ordered)
    half_width = 0.98 * math.sqrt(n)
    low = max(0, math.floor(n / 2 - half_width))
    high = min(n - 1, math.ceil(n / 2 + half_width))
    return ordered[low], ordered[high]


def time_runs(run: Callable[[], object], budget: TimingBudget,
              progress: Callable[[float], None] | None = None) -> LatencySummary:
    """Warm up `run`, then time it until the budget says stop; `progress` gets the fraction of the budget done."""
    warm_start = time.perf_counter()
    warm = 0
    while warm < WARMUP_RUNS or time.perf_counter() - warm_start < min(WARMUP_SECONDS, budget.time_budget_s / 10):
        run()
        warm += 1
    samples: list[float] = []
    started = time.perf_counter()
    stopped_by = "runs"
    while True:
        before = time.perf_counter()
        run()
        samples.append((time.perf_counter() - before) * 1e3)
        if budget.runs is not None:
            if len(samples) >= budget.runs:
                break
            if progress is not None and len(samples) % CHECK_EVERY == 0:
                progress(len(samples) / budget.runs)
            continue
        elapsed = time.perf_counter() - started
        if len(samples) >= MIN_RUNS and len(samples) % CHECK_EVERY == 0:
            if elapsed >= min(MIN_SECONDS, budget.time_budget_s) and _tight(sorted(samples), budget.tolerance):
                stopped_by = "ci"
                break
            if progress is not None:
                progress(min(1.0, elapsed / budget.time_budget_s))
        if elapsed >= budget.time_budget_s and len(samples) >= min(MIN_RUNS, 3):
            stopped_by = "time"
            break
    return summarize(samples, stopped_by)


def _tight(ordered: list[float], tolerance: float) -> bool:
    median = statistics.median(ordered)
    low, high = median_interval(ordered)
    return median - low <= tolerance * median and high - median <= tolerance * median


def summarize(samples_ms: list[float], stopped_by: str) -> LatencySummary:
    ordered = sorted(samples_ms)
    low, high = median_interval(ordered)
    return LatencySummary(
        p50_ms=statistics.median(ordered),
        p90_ms=_percentile(ordered, 90),
        p99_ms=_percentile(ordered, 99),
        mean_ms=statistics.fmean(ordered),
        std_ms=statistics.stdev(ordered) if len(ordered) > 1 else 0.0,
        min_ms=ordered[0],
        max_ms=ordered[-1],
        runs=len(ordered),
        ci95_low_ms=low,
        ci95_high_ms=high,
        stopped_by=stopped_by,
    )


def _percentile(ordered: list[float], q: float) -> float:
    """Linear interpolation between closest ranks (NumPy's default), so p99 of 50 runs is not simply the max."""
    position = (len(ordered) - 1) * q / 100
    below = math.floor(position)
    above = min(below + 1, len(ordered) - 1)
    return ordered[below] + (ordered[above] - ordered[below]) * (position - below)
