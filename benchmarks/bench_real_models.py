"""Benchmarks of the foundation on the real models: optimized vs original latency in ONNX Runtime, and how
long the default pipeline itself takes.

Ratios, not absolute times, are asserted: both models are timed in the same run, in alternating blocks, so
drift on this shared, noisy machine hits both alike. Run with `make bench` (or `pytest benchmarks`).
"""

from __future__ import annotations

import pytest
from optimizer.backends.onnxruntime import compare_latency, create_session
from optimizer.benchmarks.real_models import REAL_MODELS, fetch

import optimizer
from optimizer import ir as hir
from optimizer.pipeline import DEFAULT_OPT_LEVEL, pipeline_stages, run_pipeline

pytestmark = pytest.mark.zoo

THREADS = 2
# "Not slower", with room for the noise of a 2-core shared machine (medians of alternating blocks).
NOT_SLOWER = 0.95


@pytest.mark.parametrize("name", list(REAL_MODELS))
def test_optimized_model_is_not_slower_in_onnxruntime(benchmark, name, tmp_path):
    path, feeds, model = fetch(name)
    result = optimizer.optimize(path, target="cpu", shapes=model.shapes, inputs=feeds,
                                output_dir=tmp_path, benchmark=False, threads=THREADS)
    original = create_session(path, threads=THREADS, label="original")
    optimized = create_session(result.model_path, threads=THREADS, label="optimized")
    # Three comparisons, each of 8 alternating blocks of 15 runs; the median ratio is the one reported.
    comparisons = sorted(
        (compare_latency(original, optimized, feeds, block=15, min_rounds=8, max_rounds=8) for _ in range(3)),
        key=lambda pair: pair[0].median_ms / pair[1].median_ms,
    )
    original_ms, optimized_ms = comparisons[1][0].median_ms, comparisons[1][1].median_ms
    ratio = original_ms / optimized_ms
    benchmark.extra_info.update(
        {"original_median_ms": original_ms, "optimized_median_ms": optimized_ms, "speedup": ratio,
         "threads": THREADS, "cosine": result.verification.worst_cosine}
    )
    benchmark.group = "optimized model latency"
    benchmark.pedantic(optimized.run_raw, args=(feeds,), rounds=30, warmup_rounds=3)
    print(f"\n{name}: original {original_ms:.3f} ms, optimized {optimized_ms:.3f} ms, speed-up {ratio:.2f}x")
    assert ratio >= NOT_SLOWER, f"{name}: optimized model is slower ({ratio:.2f}x of the original)"


@pytest.mark.parametrize("name", ["yolov8n", "minilm"])
def test_default_pipeline_time(benchmark, name):
    path, _, model = fetch(name)
    stages = pipeline_stages("onnxruntime-cpu", DEFAULT_OPT_LEVEL, shapes=model.shapes)

    def load_and_optimize():
        run_pipeline(hir.load_model(path), stages)

    benchmark.group = "default pipeline (load + passes + check)"
    benchmark.pedantic(load_and_optimize, rounds=3, warmup_rounds=1)
