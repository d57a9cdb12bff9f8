"""Helpers for testing passes the way onnxscript tests its rewriter: build a tiny model from ONNX text,
apply a pass, check the op types, then check numerical equivalence against the original in ONNX Runtime."""

from __future__ import annotations

import logging
from collections.abc import Mapping

import numpy as np
import onnx_ir as ir

from optimizer.inputs import generate_inputs
from optimizer.ir import input_specs, model_to_bytes, validate_model
from optimizer.verify import run_reference


def model_from_text(text: str, **initializers: np.ndarray) -> ir.Model:
    """A model from ONNX text syntax, with `initializers` (name=array) attached as weights."""
    tensors = [ir.tensor(np.asarray(array), name=name) for name, array in initializers.items()]
    logger = logging.getLogger("onnx_ir")
    level = logger.level
    logger.setLevel(logging.ERROR)  # the parser warns about each initializer the text does not declare
    try:
        return ir.from_onnx_text(text, initializers=tensors)
    finally:
        logger.setLevel(level)


def op_types(model: ir.Model) -> list[str]:
    return [node.op_type for node in model.graph]


def run(model: ir.Model, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Outputs of `model` in ONNX Runtime with its graph optimizations off."""
    return run_reference(model_to_bytes(model), feeds, label="model")


def assert_equivalent(
    original_bytes: bytes,
    optimized: ir.Model,
    feeds: Mapping[str, np.ndarray] | None = None,
    *,
    rtol: float = 1e-5,
    atol: float = 1e-6,
) -> None:
    """The optimized model is valid ONNX and gives the original's outputs (ORT, graph optimizations off)."""
    validate_model(optimized, source="optimized model")
    if feeds is None:
        feeds = generate_inputs(input_specs(optimized))
    expected = run_reference(original_bytes, feeds, label="original model")
    actual = run(optimized, feeds)
    assert list(expected) == list(actual), f"outputs changed: {list(expected)} -> {list(actual)}"
    for name in expected:
        np.testing.assert_allclose(actual[name], expected[name], rtol=rtol, atol=atol, err_msg=name)
