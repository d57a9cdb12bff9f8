"""Structured channel pruning on yolov8n: 30% of the prunable channels removed, then the same `--target cpu`
FP32 optimization of the pruned and the unpruned model, both chosen artifacts timed in this process
(alternating blocks, medians), with what it costs in fidelity on the sample photos.

Calibration (importance is l1, so calibration only drives recovery) uses 32 crops/flips of the five photos;
fidelity is checked on the five photos themselves, so it is not held out: read the cosines as an upper bound.
"""

from __future__ import annotations

import pytest
from optimizer.backends.onnxruntime import create_session
from optimizer.backends.registry import get_backend
from optimizer.benchmarks import zoo
from optimizer.benchmarks.ratios import fetch_or_skip, median_ratio
from optimizer.benchmarks.yolo_detections import (
    BORDERLINE_MARGIN,
    SCORE_THRESHOLD,
    decode,
    unmatched,
)

import optimizer
from optimizer.ir import load_model, model_to_bytes
from optimizer.passes.fix_input_shapes import FixInputShapes, FixInputShapesConfig
from optimizer.pruning.channels import prune_channels
from optimizer.pruning.cost import graph_cost
from optimizer.pruning.options import PruningOptions
from optimizer.verify import cosine

SPEEDUP_FLOOR = 1.15
pytestmark = pytest.mark.zoo

THREADS = 2
SHAPES = {"images": (1, 3, 320, 320)}
SPARSITY = 0.3


def _fixed_yolo():
    model = load_model(fetch_or_skip(zoo.yolov8n_path))
    FixInputShapes(FixInputShapesConfig(shapes=SHAPES))(model)  # FLOPs need static shapes
    return model


def _photo_fidelity(reference, candidate) -> tuple[float, int, int, int]:
    """Worst output cosine over the photos, reference detections, and how many survive at IoU 0.5 and 0.9."""
    worst, total, kept_loose, kept_strict = 1.0, 0, 0, 0
    for photo in zoo.PHOTO_NAMES:
        sample = zoo.yolov8n_inputs(320, photo)
        expected, actual = reference.run(sample)["output0"], candidate.run(sample)["output0"]
        worst = min(worst, cosine(expected, actual))
        detections = [d for d in decode(expected) if d.score >= SCORE_THRESHOLD]
        found = decode(actual, SCORE_THRESHOLD - BORDERLINE_MARGIN)
        total += len(detections)
        kept_loose += len(detections) - len(unmatched(detections, found, min_iou=0.5))
        kept_strict += len(detections) - len(unmatched(detections, found, min_iou=0.9))
    return worst, total, kept_loose, kept_strict


def test_yolov8n_channel_pruning_speed_and_fidelity(benchmark, tmp_path):
    calibration = zoo.yolov8n_calibration(320, samples=32)
    original = _fixed_yolo()
    before = graph_cost(original)
    plain = original.clone()  # clones share weights; pruning replaces them, so the original stays intact
    prune_channels(plain, PruningOptions(method="channels", sparsity=SPARSITY, recover=False))
    pruned = original.clone()
    result = prune_channels(pruned, PruningOptions(method="channels", sparsity=SPARSITY), calibration,
                            threads=THREADS)
    after = graph_cost(pruned)
    assert [tuple(v.shape) for v in pruned.graph.outputs] == [tuple(v.shape) for v in original.graph.outputs]

    optimized = {}
    for name, model in (("unpruned", original), ("pruned", pruned)):
        optimized[name] = optimizer.optimize(model, target="cpu", precision="fp32", shapes=SHAPES, threads=THREADS,
                                             output_dir=tmp_path / name, benchmark=False)
    sessions = {name: get_backend(r.artifact.manifest.runtime).load(r.artifact, threads=THREADS)
                for name, r in optimized.items()}
    feeds = zoo.yolov8n_inputs(320)
    speedup, unpruned_ms, pruned_ms = median_ratio(sessions["unpruned"], sessions["pruned"], feeds)

    reference = create_session(model_to_bytes(original), threads=THREADS, label="original")
    plain_fidelity = _photo_fidelity(reference, create_session(model_to_bytes(plain), threads=THREADS,
                                                               label="pruned, no recovery"))
    recovered_fidelity = _photo_fidelity(reference, sessions["pruned"])
    runtimes = {name: r.artifact.manifest.runtime for name, r in optimized.items()}
    removed = 1 - result.channels_after / result.channels_before
    benchmark.extra_info.update({
        "unpruned_ms": unpruned_ms, "pruned_ms": pruned_ms, "speedup": speedup, "runtimes": runtimes,
        "channels_removed": removed, "flops_before": before.flops, "flops_after": after.flops,
        "params_before": before.parameters, "params_after": after.parameters,
        "worst_cosine_plain": plain_fidelity[0], "worst_cosine_recovered": recovered_fidelity[0],
        "detections": recovered_fidelity[1], "kept_iou50": recovered_fidelity[2],
        "kept_iou90": recovered_fidelity[3], "calibration_fidelity": result.fidelity,
    })
    benchmark.pedantic(sessions["pruned"].run, args=(feeds,), rounds=20, iterations=1)
    print(f"\nyolov8n channel pruning {SPARSITY:.0%} (removed {removed:.1%} of {result.channels_before} "
          f"prunable channels): FLOPs {before.flops / 1e9:.2f} G -> {after.flops / 1e9:.2f} G, params "
          f"{before.parameters / 1e6:.2f} M -> {after.parameters / 1e6:.2f} M")
    print(f"  --target cpu fp32: unpruned {runtimes['unpruned']} {unpruned_ms:.2f} ms, pruned "
          f"{runtimes['pruned']} {pruned_ms:.2f} ms: {speedup:.2f}x")
    for label, (worst, total, loose, strict) in (("no recovery", plain_fidelity), ("recovered", recovered_fidelity)):
        print(f"  {label}: worst photo cosine {worst:.4f}; reference detections kept {loose}/{total} "
              f"(IoU 0.5), {strict}/{total} (IoU 0.9)")
    print("  recovery: " + "; ".join(result.recovery))
    assert after.flops < before.flops and after.parameters < before.parameters
    assert recovered_fidelity[0] > plain_fidelity[0]
    # The target is 1.3x: 1.33x and 1.44x on a quiet machine, 1.18-1.27x while other jobs shared its two
    # cores (docs/pruning-notes.md). The floor catches a pruned graph that stops being clearly faster.
    assert speedup >= SPEEDUP_FLOOR, f"pruned yolov8n only {speedup:.2f}x the unpruned at the same precision"
