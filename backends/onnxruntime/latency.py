"""Latency timing: warm-up runs, then timed runs until enough samples or the time budget is spent.

Medians, not means: these machines are shared and noisy, and a median ignores the stray slow run.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from optimizer.backends.onnxruntime.session import OrtSession


@dataclass(frozen=True)
class LatencyStats:
    median_ms: float
    p90_ms: float
    min_ms: float
    runs: int


def measure_latency(
    session: OrtSession,
    feeds: Mapping[str, np.ndarray],
    *,
    warmup: int = 3,
    min_runs: int = 10,
    max_runs: int = 200,
    budget_seconds: float = 3.0,
) -> LatencyStats:
    feeds = dict(feeds)
    session.run(feeds)  # the first run reports a failing model as a hwopt error; the timed loop runs raw
    for _ in range(warmup):
        session.run_raw(feeds)
    samples: list[float] = []
    deadline = time.perf_counter() + budget_seconds
    while len(samples) < max_runs and (len(samples) < min_runs or time.perf_counter() < deadline):
        start = time.perf_counter()
        session.run_raw(feeds)
        samples.append((time.perf_counter() - start) * 1000.0)
    ordered = sorted(samples)
    return LatencyStats(
        median_ms=statistics.median(ordered),
        p90_ms=ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))],
        min_ms=ordered[0],
        runs=len(ordered),
    )
