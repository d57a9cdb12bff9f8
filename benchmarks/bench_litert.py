"""LiteRT precisions on yolov8n at 320: the `.tflite` files hwopt writes without TensorFlow, timed in LiteRT's
interpreter (XNNPACK, 2 threads) in the same run, and judged by what they detect on the sample photos.

Issue 5's acceptance: full-integer INT8 (calibrated on 64 variants of the sample photos) keeps the detections
of ONNX Runtime FP32 on the photos (IoU >= 0.9, same classes) and runs at least 2x faster than the FP32 .tflite.
FP16 weights and dynamic-range INT8 are reported (size, cosine, speed) without a floor.

The photos hold few detections (one above the 0.25 threshold), so the score error on every anchor the
reference scores above 0.05 is printed too: a finer look at the class scores than the output's cosine, which
the box coordinates (pixels) dominate.
"""

from __future__ import annotations

import numpy as np
import pytest
from optimizer.backends.onnxruntime import compare_latency, create_session
from optimizer.benchmarks import zoo
from optimizer.benchmarks.ratios import fetch_or_skip, median_ratio
from optimizer.benchmarks.yolo_detections import compare_on_photos

from optimizer import ir as hir
from optimizer.pipeline import pipeline_stages, run_pipeline

pytest.importorskip("ai_edge_litert.interpreter", reason="ai-edge-litert is not installed")

from optimizer.backends.litert.convert import convert_graph
from optimizer.backends.litert.ops import CONVERTERS
from optimizer.backends.litert.precision import activation_ranges, lower_precision
from optimizer.backends.litert.session import LiteRTSession

pytestmark = pytest.mark.zoo

THREADS = 2
SIZE = 320
SCORE_FLOOR = 0.05  # anchors the reference scores above this are where a score error could matter


@pytest.fixture(scope="module")
def yolov8n():
    path = fetch_or_skip(zoo.yolov8n_path)
    model = hir.load_model(path)
    run_pipeline(model, pipeline_stages("portable", THREADS, shapes={"images": (1, 3, SIZE, SIZE)}))
    reference = create_session(path, threads=THREADS, label="ONNX Runtime fp32")
    return model, reference


@pytest.fixture(scope="module")
def ranges(yolov8n):
    model, _ = yolov8n
    return activation_ranges(model, zoo.yolov8n_calibration(SIZE, samples=64), threads=THREADS)


def tflite(model, precision: str, ranges=None) -> tuple[bytes, list[str]]:
    graph = convert_graph(model, CONVERTERS)
    notes = lower_precision(graph, precision, ranges=ranges)
    return graph.serialize(), notes


def session(data: bytes, label: str) -> LiteRTSession:
    return LiteRTSession(data, threads=THREADS, output_names=["output0"], label=label)


def score_errors(reference, candidate) -> np.ndarray:
    """|score difference| on every (anchor, class) the reference scores above SCORE_FLOOR, over the photos."""
    errors = []
    for photo in zoo.PHOTO_NAMES:
        sample = zoo.yolov8n_inputs(SIZE, photo)
        expected, actual = reference.run(sample)["output0"][0, 4:], candidate.run(sample)["output0"][0, 4:]
        errors.append(np.abs(expected - actual)[expected > SCORE_FLOOR])
    return np.concatenate(errors)


def test_yolov8n_int8_tflite_keeps_detections_and_is_twice_as_fast_as_fp32(benchmark, yolov8n, ranges):
    model, reference = yolov8n
    fp32_data, _ = tflite(model, "fp32")
    int8_data, notes = tflite(model, "int8", ranges)
    fp32, int8 = session(fp32_data, "fp32 .tflite"), session(int8_data, "int8 .tflite")
    feeds = zoo.yolov8n_inputs(SIZE)
    ratio, fp32_ms, int8_ms = median_ratio(fp32, int8, feeds)
    cosines, missing = compare_on_photos(reference, int8)
    errors = score_errors(reference, int8)
    benchmark.extra_info.update({"fp32_ms": fp32_ms, "int8_ms": int8_ms, "speedup": ratio,
                                 "worst_cosine": min(cosines), "fp32_bytes": len(fp32_data),
                                 "int8_bytes": len(int8_data), "max_score_error": float(errors.max())})
    benchmark.pedantic(int8.run_raw, args=(feeds,), rounds=20, iterations=1)
    print(f"\nyolov8n {SIZE} LiteRT, {THREADS} threads: FP32 {fp32_ms:.2f} ms, INT8 {int8_ms:.2f} ms: {ratio:.2f}x; "
          f"sizes {len(fp32_data) / 1e6:.2f} MB -> {len(int8_data) / 1e6:.2f} MB; cosine vs ORT FP32 on the photos "
          + ", ".join(f"{c:.5f}" for c in cosines)
          + f"; detections {'kept' if not missing else f'changed: {missing}'}; score error (reference > "
          f"{SCORE_FLOOR}, {errors.size} scores) median {np.median(errors):.4f}, max {errors.max():.4f}\n  "
          + "\n  ".join(notes))
    assert not missing, f"detections changed: {missing}"
    assert min(cosines) >= 0.999
    assert ratio >= 2.0, f"INT8 .tflite only {ratio:.2f}x the FP32 one"


@pytest.mark.parametrize("precision", ["fp16", "int8-dynamic"])
def test_yolov8n_fp16_and_dynamic_range_tflite(yolov8n, precision):
    model, reference = yolov8n
    fp32_data, _ = tflite(model, "fp32")
    data, notes = tflite(model, precision)
    fp32, lowered = session(fp32_data, "fp32 .tflite"), session(data, f"{precision} .tflite")
    feeds = zoo.yolov8n_inputs(SIZE)
    first, second = compare_latency(fp32, lowered, feeds, block=15, min_rounds=6, max_rounds=6)
    cosines, missing = compare_on_photos(reference, lowered)
    print(f"\nyolov8n {SIZE} LiteRT {precision}: {len(data) / 1e6:.2f} MB (FP32 {len(fp32_data) / 1e6:.2f} MB); "
          f"{second.median_ms:.2f} ms vs FP32 {first.median_ms:.2f} ms ({first.median_ms / second.median_ms:.2f}x); "
          f"cosine vs ORT FP32 on the photos " + ", ".join(f"{c:.6f}" for c in cosines)
          + f"; detections {'kept' if not missing else f'changed: {missing}'}\n  " + "\n  ".join(notes))
    assert len(data) < (0.55 if precision == "fp16" else 0.3) * len(fp32_data)
    assert min(cosines) >= (0.9999 if precision == "fp16" else 0.999)
    assert not missing
