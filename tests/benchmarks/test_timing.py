import itertools

import pytest

from optimizer.benchmarks.timing import TimingBudget, median_interval, summarize, time_runs


def test_the_median_interval_brackets_the_median_and_narrows_with_more_samples():
    few = sorted(float(x) for x in range(20))
    many = sorted(float(x % 20) for x in range(2000))
    low, high = median_interval(few)
    assert low <= 9.5 <= high
    assert high - low > 0
    many_low, many_high = median_interval(many)
    assert many_low <= 9.5 <= many_high and many_high - many_low < high - low


def test_summary_percentiles_follow_numpy():
    import numpy as np

    samples = [float(x) for x in np.random.default_rng(0).gamma(2.0, 1.0, 301)]
    summary = summarize(samples, "runs")
    assert summary.p50_ms == pytest.approx(np.percentile(samples, 50))
    assert summary.p90_ms == pytest.approx(np.percentile(samples, 90))
    assert summary.p99_ms == pytest.approx(np.percentile(samples, 99))
    assert summary.mean_ms == pytest.approx(np.mean(samples))
    assert summary.std_ms == pytest.approx(np.std(samples, ddof=1))
    assert summary.min_ms == min(samples) and summary.max_ms == max(samples) and summary.runs == 301


def test_a_fixed_run_count_runs_exactly_that_many_after_the_warm_up():
    calls = itertools.count()
    summary = time_runs(lambda: next(calls), TimingBudget(runs=25))
    assert summary.runs == 25 and summary.stopped_by == "runs"
    assert next(calls) >= 25 + 3  # warm-up runs are not timed


def test_a_steady_function_stops_on_a_tight_interval_before_the_budget(monkeypatch):
    monkeypatch.setattr("optimizer.benchmarks.timing.MIN_SECONDS", 0.0)
    summary = time_runs(lambda: sum(range(2000)), TimingBudget(time_budget_s=30.0, tolerance=0.5))
    assert summary.stopped_by == "ci"
    assert summary.ci95_low_ms <= summary.p50_ms <= summary.ci95_high_ms


def test_an_erratic_function_stops_when_the_budget_is_spent():
    durations = itertools.cycle([0.0, 0.004, 0.0001, 0.002])

    def erratic():
        import time

        time.sleep(next(durations))

    summary = time_runs(erratic, TimingBudget(time_budget_s=0.3, tolerance=0.0001))
    assert summary.stopped_by == "time" and summary.runs >= 3


def test_progress_is_reported_as_a_fraction():
    seen = []
    time_runs(lambda: None, TimingBudget(runs=20), progress=seen.append)
    assert seen and all(0 < fraction <= 1 for fraction in seen)
