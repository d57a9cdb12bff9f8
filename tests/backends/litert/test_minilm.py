"""The transformer and control-flow models of zoo.md through the TFLite writer: all-MiniLM-L6-v2 converts and
matches ONNX Runtime on real sentences; silero-vad's If is named."""

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
from optimizer.benchmarks import zoo
from optimizer.benchmarks.ratios import fetch_or_skip

SEQUENCE = 128
SENTENCES = ("The quick brown fox jumps over the lazy dog.",
             "Quantization trades a little accuracy for a smaller, faster model.")


def run_litert(data: bytes, feeds: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], Counter]:
    interpreter = litert.Interpreter(model_content=data, num_threads=2)
    interpreter.allocate_tensors()
    for detail in interpreter.get_input_details():
        interpreter.set_tensor(detail["index"], feeds[detail["name"]])
    interpreter.invoke()
    outputs = {d["name"]: interpreter.get_tensor(d["index"]) for d in interpreter.get_output_details()}
    counts = Counter(op["op_name"] for op in interpreter._get_ops_details() if op["op_name"] != "DELEGATE")
    return outputs, counts


@pytest.mark.zoo
def test_minilm_converts_and_matches_onnxruntime_on_real_sentences():
    path = fetch_or_skip(zoo.minilm_path)
    model = hir.load_model(path)
    run_pipeline(model, pipeline_stages("portable", 2, shapes={"input_ids": (1, SEQUENCE),
                                                                "attention_mask": (1, SEQUENCE)}))
    started = time.perf_counter()
    data = convert(model, CONVERTERS)
    seconds = time.perf_counter() - started
    reference = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [output.name for output in reference.get_outputs()]
    for sentence in SENTENCES:
        feeds = zoo.minilm_inputs(SEQUENCE, [sentence])
        expected = dict(zip(names, reference.run(None, feeds)))
        actual, counts = run_litert(data, feeds)
        similarities = {name: cosine(actual[name], expected[name]) for name in names}
        print(f"\nminilm -> TFLite in {seconds:.2f} s, {len(data) / 1e6:.1f} MB; '{sentence[:24]}...': "
              + ", ".join(f"{name} cosine {value:.9f}" for name, value in similarities.items())
              + f"; {dict(counts)}")
        assert all(value >= 0.9999 for value in similarities.values()), similarities
        assert {actual[name].shape for name in names} == {expected[name].shape for name in names}
    # Every projection is one FULLY_CONNECTED with its bias, and exact GELU is one op.
    assert counts["FULLY_CONNECTED"] == 36 and counts["ADD"] < 63 and counts["GELU"] == 6
    assert seconds <= 10


@pytest.mark.zoo
def test_silero_vad_is_refused_naming_its_if_node():
    path = fetch_or_skip(zoo.silero_vad_path)
    model = hir.load_model(path)
    run_pipeline(model, pipeline_stages("portable", 2, shapes={"input": (1, 576), "state": (2, 1, 128)}))
    if_nodes = [node.name for node in model.graph if node.op_type == "If"]
    assert if_nodes
    with pytest.raises(ConversionError, match=r"\(If\): no TFLite conversion for If") as caught:
        convert(model, CONVERTERS)
    assert caught.value.node.name in if_nodes
