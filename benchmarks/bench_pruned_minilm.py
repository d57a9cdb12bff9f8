"""MiniLM with block-sparse feed-forward layers, end to end on `--target cpu`, against the dense model.

The feed-forward MatMuls (384x1536 and 1536x384, two thirds of MiniLM's MatMul FLOPs) are pruned to 80% of
their 1x16 blocks (activation importance), recovered on unlabeled sentences (least-squares re-fit of the kept
weights on windows of several sentences, so the rows are real tokens rather than padding), and optimized
for the host CPU at fp32; the dense model is optimized the same way. Each run keeps its faster runtime
(ONNX Runtime or OpenVINO); the pruned one runs its sparse MatMuls on hwopt's kernel where the hot-operator
pass measured the whole model faster. Both artifacts are timed in this process, alternating, medians; the
embedding cosine against the original is measured on everyday sentences the recovery never saw.
"""

from __future__ import annotations

import numpy as np
import pytest
from optimizer.backends.onnxruntime import create_session
from optimizer.backends.registry import get_backend
from optimizer.benchmarks import zoo
from optimizer.benchmarks.ratios import fetch_or_skip, median_ratio

import optimizer
from optimizer.artifact import load_artifact
from optimizer.pruning.options import PruningOptions
from optimizer.verify import cosine

pytestmark = [pytest.mark.zoo, pytest.mark.slow]

THREADS = 2
SPARSITY = 0.8
FEED_FORWARD_ONLY = ("*attention*",)  # Q, K, V and the attention output stay dense


def _session(folder):
    artifact = load_artifact(folder)
    return get_backend(artifact.manifest.runtime).load(artifact, threads=THREADS), artifact.manifest.runtime


def test_minilm_block_sparse_feed_forward_beats_dense_end_to_end(benchmark, tmp_path):
    path = fetch_or_skip(zoo.minilm_path)
    feeds = zoo.minilm_inputs()
    shapes = {name: array.shape for name, array in feeds.items()}
    pruning = PruningOptions(method="block", sparsity=SPARSITY, block_shape=(1, 16), ops=("MatMul",),
                             exclude=FEED_FORWARD_ONLY, importance="activation",
                             calibration=zoo.minilm_packed_calibration())
    common = {"target": "cpu", "precision": "fp32", "shapes": shapes, "inputs": feeds, "threads": THREADS}
    dense_result = optimizer.optimize(path, output_dir=tmp_path / "dense", **common)
    sparse_result = optimizer.optimize(path, output_dir=tmp_path / "sparse", pruning=pruning, **common)
    dense, dense_runtime = _session(tmp_path / "dense")
    sparse, sparse_runtime = _session(tmp_path / "sparse")
    ratio, dense_ms, sparse_ms = median_ratio(dense, sparse, feeds)

    original = create_session(path, threads=THREADS, label="original")
    cosines = []
    for sentence in zoo.EVERYDAY_SENTENCES:
        sample = zoo.minilm_inputs(128, [sentence])
        cosines.append(cosine(original.run(sample)["sentence_embedding"], sparse.run(sample)["sentence_embedding"]))
    report = sparse_result.report
    kernels = report.kernels
    substituted = len(kernels.substituted_nodes) if kernels else 0
    benchmark.extra_info.update({
        "dense_ms": dense_ms, "sparse_ms": sparse_ms, "speedup": ratio, "dense_runtime": dense_runtime,
        "sparse_runtime": sparse_runtime, "mean_cosine": float(np.mean(cosines)), "worst_cosine": min(cosines),
        "substituted_nodes": substituted, "pruning_fidelity": report.pruning.fidelity,
    })
    benchmark.pedantic(sparse.run, args=(feeds,), rounds=10, iterations=1)
    print(f"\nminilm FF {SPARSITY:.0%} block-sparse: {sparse_ms:.2f} ms ({sparse_runtime}, {substituted} nodes on "
          f"hwopt's kernel) vs dense {dense_ms:.2f} ms ({dense_runtime}): {ratio:.2f}x; embedding cosine mean "
          f"{np.mean(cosines):.4f}, worst {min(cosines):.4f}; pruning fidelity {report.pruning.fidelity}")
    if kernels is not None:
        for decision in kernels.decisions:
            print(f"  {decision.weight_shape} {decision.fused} x{len(decision.nodes)}: {decision.baseline_ms} -> "
                  f"{decision.custom_ms} ms, {'substituted' if decision.substituted else 'kept'} ({decision.reason})")
    print(f"  dense report: {dense_result.report.runtime} {dense_result.report.latency_optimized.median_ms:.2f} ms")
    assert ratio > 1.0, f"block-sparse MiniLM {ratio:.2f}x the dense model"
