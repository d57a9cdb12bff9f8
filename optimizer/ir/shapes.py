"""Shape inference on the IR.

onnx-ir's ShapeInferencePass runs ONNX's inference on a copy of the graph without the weights (so big models
cost little) and merges the inferred types and shapes back. It silently leaves the model unchanged when
inference fails; that is what we want here: shapes help the passes, they are never required.
"""

from __future__ import annotations

import onnx_ir as ir
from onnx_ir.passes.common import ShapeInferencePass


def infer_shapes(model: ir.Model, *, data_prop: bool = True) -> bool:
    """Annotate values with inferred types and shapes in place; True if anything changed."""
    # strict_mode off: a single op ONNX cannot infer (a custom domain) must not stop the rest.
    result = ShapeInferencePass(check_type=False, strict_mode=False, data_prop=data_prop)(model)
    return result.modified
