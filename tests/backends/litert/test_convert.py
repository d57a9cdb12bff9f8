"""The TFLite writer on whole models: numerics against ONNX Runtime, layout, conversion time."""

import time
from collections import Counter

import numpy as np
import onnxruntime as ort
import pytest

from optimizer import ir as hir
from optimizer.pipeline import pipeline_stages, run_pipeline
from optimizer.verify import cosine

litert = pytest.importorskip("ai_edge_litert.interpreter", reason="ai-edge-litert is not installed")

from optimizer.backends.litert.convert import ConversionError, convert
from optimizer.backends.litert.ops import CONVERTERS
from optimizer.testing import model_from_text

CONVOLUTIONS = {"CONV_2D", "DEPTHWISE_CONV_2D", "TRANSPOSE_CONV"}
# Ops that keep a value's layout: a transpose reached through only these sits between two convolutions.
LAYOUT_NEUTRAL = {"ADD", "SUB", "MUL", "DIV", "LOGISTIC", "RELU", "RELU6", "HARD_SWISH", "LEAKY_RELU", "TANH",
                  "CONCATENATION", "SPLIT_V", "PAD", "PADV2", "MAX_POOL_2D", "AVERAGE_POOL_2D",
                  "RESIZE_NEAREST_NEIGHBOR", "RESIZE_BILINEAR", "STRIDED_SLICE"}


def run_tflite(data: bytes, feeds: dict[str, np.ndarray], threads: int = 1) -> list[np.ndarray]:
    interpreter = litert.Interpreter(model_content=data, num_threads=threads)
    interpreter.allocate_tensors()
    for detail, array in zip(interpreter.get_input_details(), feeds.values()):
        interpreter.set_tensor(detail["index"], np.ascontiguousarray(array))
    interpreter.invoke()
    return [interpreter.get_tensor(d["index"]) for d in interpreter.get_output_details()]


def operators(data: bytes) -> list[dict]:
    """The model's operators as written (XNNPACK's DELEGATE nodes, which stand for runs of them, left out)."""
    interpreter = litert.Interpreter(model_content=data)
    return [op for op in interpreter._get_ops_details() if op["op_name"] != "DELEGATE"]


def transposes_between_convolutions(details: list[dict]) -> list[int]:
    producer = {t: op for op in details for t in op["outputs"]}
    consumers: dict[int, list[dict]] = {}
    for op in details:
        for t in op["inputs"]:
            consumers.setdefault(t, []).append(op)

    def reaches(op, step, seen) -> bool:
        for neighbour in step(op):
            if neighbour["index"] in seen:
                continue
            seen.add(neighbour["index"])
            if neighbour["op_name"] in CONVOLUTIONS:
                return True
            if neighbour["op_name"] in LAYOUT_NEUTRAL and reaches(neighbour, step, seen):
                return True
        return False

    upstream = lambda op: [producer[t] for t in op["inputs"] if t in producer]
    downstream = lambda op: [c for t in op["outputs"] for c in consumers.get(t, [])]
    return [op["index"] for op in details if op["op_name"] == "TRANSPOSE"
            and reaches(op, upstream, set()) and reaches(op, downstream, set())]


@pytest.mark.zoo
def test_yolov8n_converts_fast_matches_onnxruntime_and_keeps_convolutions_nhwc():
    from optimizer.benchmarks import zoo
    from optimizer.benchmarks.ratios import fetch_or_skip

    path = fetch_or_skip(zoo.yolov8n_path)
    started = time.perf_counter()
    model = hir.load_model(path)
    run_pipeline(model, pipeline_stages("portable", 2, shapes={"images": (1, 3, 320, 320)}))
    data = convert(model, CONVERTERS)
    seconds = time.perf_counter() - started
    feeds = {"images": np.ascontiguousarray(zoo.yolov8n_inputs(320)["images"])}
    reference = ort.InferenceSession(str(path)).run(None, feeds)[0]
    output = run_tflite(data, feeds, threads=2)[0]
    details = operators(data)
    counts = Counter(op["op_name"] for op in details)
    print(f"\nyolov8n -> TFLite in {seconds:.2f} s, {len(data) / 1e6:.1f} MB; cosine "
          f"{cosine(output, reference):.7f}; {dict(counts)}")
    assert seconds <= 10
    assert cosine(output, reference) >= 0.9999
    assert counts["CONV_2D"] == 64
    assert transposes_between_convolutions(details) == []


def test_a_transpose_between_convolutions_is_detected():
    """The layout check itself: a model that transposes between two convolutions on purpose is caught."""
    weights = np.ones((4, 4, 1, 1), np.float32)
    model = model_from_text("""
        <ir_version: 9, opset_import: ["" : 17]>
        g (float[1, 4, 8, 8] x) => (float[1, 4, 8, 8] y) {
            a = Conv(x, w)
            t = Transpose <perm = [0, 1, 3, 2]> (a)
            y = Conv(t, w)
        }""", w=weights)
    hir.infer_shapes(model)
    data = convert(model, CONVERTERS)
    assert len(transposes_between_convolutions(operators(data))) == 1


def test_an_op_without_a_converter_is_named():
    model = model_from_text("""
        <ir_version: 9, opset_import: ["" : 17]>
        g (float[1, 4] x) => (float[1, 4] y) { y = Hardmax(x) }""")
    hir.infer_shapes(model)
    with pytest.raises(ConversionError, match=r"\(Hardmax\): no TFLite conversion"):
        convert(model, CONVERTERS)
