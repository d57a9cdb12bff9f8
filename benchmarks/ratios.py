"""What the benchmark suites share: the zoo model or a skip, and a speed ratio that survives a noisy machine."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np
from optimizer.backends.onnxruntime import compare_latency
from optimizer.benchmarks import zoo


def fetch_or_skip(path_function: Callable[[], Path]) -> Path:
    """The zoo file, or skip the current test saying why it cannot be had here."""
    try:
        return path_function()
    except zoo.ZooUnavailable as error:
        import pytest

        pytest.skip(str(error))


def median_ratio(first, second, feeds: Mapping[str, np.ndarray]) -> tuple[float, float, float]:
    """first / second latency and both medians: the middle of three comparisons of 8 alternating blocks of 15
    runs, so one disturbed comparison does not decide."""
    runs = sorted((compare_latency(first, second, feeds, block=15, min_rounds=8, max_rounds=8) for _ in range(3)),
                  key=lambda pair: pair[0].median_ms / pair[1].median_ms)
    a, b = runs[1][0].median_ms, runs[1][1].median_ms
    return a / b, a, b
