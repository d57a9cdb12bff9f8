"""Latency timing of two sessions: warm-up runs, then timed runs; medians, not means.

These machines are shared and noisy: a median ignores the stray slow run, and comparing two models is done by
timing them in alternating blocks, so drift hits both alike. Blocks rather than single alternating runs: ORT's
intra-op threads spin for a while after each run, and a session run right after the other one competes with
those spinning threads, which slows both.
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

    @classmethod
    def from_samples(cls, samples_ms: list[float]) -> LatencyStats:
        ordered = sorted(samples_ms)
        return cls(
            median_ms=statistics.median(ordered),
            p90_ms=ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))],
            min_ms=ordered[0],
            runs=len(ordered),
        )


def _warm_up(session: OrtSession, feeds: dict[str, np.ndarray], runs: int) -> None:
    session.run(feeds)  # the first run reports a failing model as a hwopt error; the rest run raw
    for _ in range(runs):
        session.run_raw(feeds)


def _timed(session: OrtSession, feeds: dict[str, np.ndarray], runs: int, samples: list[float]) -> None:
    for _ in range(runs):
        start = time.perf_counter()
        session.run_raw(feeds)
        samples.append((time.perf_counter() - start) * 1000.0)


def measure_latency(
    session: OrtSession, feeds: Mapping[str, np.ndarray], *, warmup: int = 3, runs: int = 20
) -> LatencyStats:
    """One session alone: `warmup` runs, then `runs` timed ones (for a quick figure, not an A/B comparison)."""
    feeds = dict(feeds)
    _warm_up(session, feeds, warmup)
    samples: list[float] = []
    _timed(session, feeds, runs, samples)
    return LatencyStats.from_samples(samples)


def compare_latency(
    first: OrtSession,
    second: OrtSession,
    feeds: Mapping[str, np.ndarray],
    *,
    warmup: int = 3,
    block: int = 10,
    min_rounds: int = 3,
    max_rounds: int = 20,
    budget_seconds: float = 4.0,
    second_feeds: Mapping[str, np.ndarray] | None = None,
) -> tuple[LatencyStats, LatencyStats]:
    """Two sessions on the same feeds, timed in alternating blocks of `block` runs until the budget is spent.

    `second_feeds`: the same inputs in the form the second session takes them, where it differs (a LiteRT
    artifact with NHWC or int8 inputs), translated before timing so that neither session pays for it."""
    feeds = dict(feeds)
    feeds_second = dict(second_feeds) if second_feeds is not None else feeds
    _warm_up(first, feeds, warmup)
    _warm_up(second, feeds_second, warmup)
    samples_first: list[float] = []
    samples_second: list[float] = []
    deadline = time.perf_counter() + budget_seconds
    rounds = 0
    while rounds < max_rounds and (rounds < min_rounds or time.perf_counter() < deadline):
        pairs = [(first, feeds, samples_first), (second, feeds_second, samples_second)]
        for session, inputs, samples in pairs if rounds % 2 == 0 else reversed(pairs):  # neither always first
            _timed(session, inputs, block, samples)
        rounds += 1
    return LatencyStats.from_samples(samples_first), LatencyStats.from_samples(samples_second)
