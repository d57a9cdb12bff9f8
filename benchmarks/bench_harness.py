"""The bench harness measured against a plain timing loop: `optimize bench`'s p50 must be the figure a user would
get by timing the session themselves (issue: within 5%, same process, same threads, same run).

The plain loop is the simplest honest timing: `perf_counter` around each `run` of the loaded session, after a
few warm-up runs, median of the samples. It is taken before and after the harness's run, and the harness is
compared with the mean of the two, so a drift of the machine during the test is shared by both sides.
"""

from __future__ import annotations

import statistics
import time

import numpy as np
import pytest
from optimizer.backends.registry import get_backend
from optimizer.benchmarks import zoo
from optimizer.benchmarks.ratios import fetch_or_skip
from optimizer.benchmarks.runner import bench

import optimizer
from optimizer.backends.openvino.runtime import usable_in_this_process

pytestmark = pytest.mark.zoo

THREADS = 2
PLAIN_RUNS = 150


def plain_loop_median_ms(session, feeds, runs: int = PLAIN_RUNS) -> float:
    for _ in range(5):
        session.run(feeds)
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        session.run(feeds)
        samples.append((time.perf_counter() - start) * 1e3)
    return statistics.median(samples)


@pytest.mark.parametrize("runtime", ["onnxruntime", "openvino"])
def test_bench_p50_matches_a_plain_loop_on_yolov8n(runtime, benchmark, tmp_path):
    if runtime == "openvino" and not usable_in_this_process():
        pytest.skip("OpenVINO cannot run in this forked process")
    path = fetch_or_skip(zoo.yolov8n_path)
    feeds = zoo.yolov8n_inputs(320)
    np.savez(tmp_path / "inputs.npz", **feeds)
    result = optimizer.optimize(path, target="cpu", runtime=runtime, precision="fp32",
                                shapes={"images": (1, 3, 320, 320)}, output_dir=tmp_path / "artifact",
                                threads=THREADS, benchmark=False)
    session = get_backend(runtime).load(result.artifact, threads=THREADS)

    before = plain_loop_median_ms(session, feeds)
    report = bench(tmp_path / "artifact", threads=THREADS, inputs=tmp_path / "inputs.npz", time_budget_s=10)
    after = plain_loop_median_ms(session, feeds)

    plain = (before + after) / 2
    ours = report.batches[0].latency.p50_ms
    benchmark.extra_info.update({"bench_p50_ms": ours, "plain_loop_ms": [before, after],
                                 "ratio": ours / plain, "runs": report.batches[0].latency.runs})
    benchmark.pedantic(session.run, args=(feeds,), rounds=10, iterations=1)
    print(f"\nyolov8n {runtime} fp32, {THREADS} threads: bench p50 {ours:.2f} ms "
          f"({report.batches[0].latency.runs} runs, stopped by {report.batches[0].latency.stopped_by}); "
          f"plain loop {before:.2f} / {after:.2f} ms; ratio {ours / plain:.3f}; "
          f"hottest ops {[(op.op_type, round(op.percent)) for op in report.operators[:3]]}")
    assert abs(ours / plain - 1) <= 0.05, f"bench p50 {ours:.2f} ms vs plain loop {plain:.2f} ms"
    assert report.memory.peak_rss_bytes >= report.memory.rss_before_bytes
