"""The check the op tests share: a tiny model from ONNX text, converted to TFLite, run in LiteRT's interpreter
(XNNPACK, as the backend runs it) and compared with ONNX Runtime on the same inputs."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pytest

from optimizer.ir import input_specs, model_to_bytes
from optimizer.testing import model_from_text
from optimizer.verify import run_reference

TOLERANCE = 1e-5
"""Largest difference allowed, relative to the largest magnitude of the expected output."""


def run_litert(data: bytes, feeds: Mapping[str, np.ndarray]) -> tuple[dict[str, np.ndarray], list[str]]:
    """The outputs by name, and the builtin ops the interpreter lists (XNNPACK's DELEGATE nodes left out)."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=data, num_threads=1)
    interpreter.allocate_tensors()
    for detail in interpreter.get_input_details():
        interpreter.set_tensor(detail["index"], np.ascontiguousarray(feeds[detail["name"]]))
    interpreter.invoke()
    outputs = {d["name"]: interpreter.get_tensor(d["index"]) for d in interpreter.get_output_details()}
    ops = [op["op_name"] for op in interpreter._get_ops_details() if op["op_name"] != "DELEGATE"]
    return outputs, ops


def random_feeds(model, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    feeds = {}
    for spec in input_specs(model):
        if spec.dtype.kind != "f":
            raise ValueError(f"give the feed for the {spec.dtype} input '{spec.name}'")
        feeds[spec.name] = rng.standard_normal(spec.shape).astype(spec.dtype)
    return feeds


@pytest.fixture
def matches_onnxruntime():
    """check(text, feeds=None, tolerance=TOLERANCE, **initializers) -> the TFLite ops written: converts the model
    and asserts that every output matches ONNX Runtime's (graph optimizations off) on `feeds` (default: standard
    normal floats)."""
    pytest.importorskip("ai_edge_litert.interpreter", reason="ai-edge-litert is not installed")
    from optimizer.backends.litert.convert import convert
    from optimizer.backends.litert.ops import CONVERTERS

    def check(text: str, feeds: Mapping[str, np.ndarray] | None = None, *, tolerance: float = TOLERANCE,
              **initializers: np.ndarray) -> list[str]:
        model = model_from_text(text, **initializers)
        original = model_to_bytes(model)
        feeds = dict(feeds) if feeds is not None else random_feeds(model)
        data = convert(model, CONVERTERS)
        expected = run_reference(original, feeds, label="original model")
        actual, ops = run_litert(data, feeds)
        assert set(actual) == set(expected), f"outputs {sorted(actual)} instead of {sorted(expected)}"
        for name, reference in expected.items():
            assert actual[name].shape == reference.shape, f"{name}: {actual[name].shape} != {reference.shape}"
            assert actual[name].dtype == reference.dtype, f"{name}: {actual[name].dtype} != {reference.dtype}"
            if reference.dtype.kind in "biu":
                np.testing.assert_array_equal(actual[name], reference, err_msg=f"{name}; TFLite ops {ops}")
                continue
            scale = max(1.0, float(np.abs(reference).max()) if reference.size else 1.0)
            np.testing.assert_allclose(actual[name], reference, rtol=0, atol=tolerance * scale,
                                       err_msg=f"{name}; TFLite ops {ops}")
        return ops

    return check

