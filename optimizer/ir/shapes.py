"""Shape inference on the IR.

ONNX's shape inference runs on a serialized copy of the model with its big weights set aside (onnx-ir's
`call_onnx_api` helper), so big models cost little; the inferred types and shapes are then merged back.

The merge is ours rather than onnx-ir's ShapeInferencePass's: that one (1.1) assigns the inferred element type
with `value.dtype = ...`, which turns a sequence- or optional-typed value of a Loop/If/SequenceMap body into a
plain tensor and makes the saved model invalid. Here a value that already has a type keeps it; only values
with no type get the inferred one, and only tensors get inferred shapes.
"""

from __future__ import annotations

import logging

import onnx
import onnx_ir as ir
from onnx_ir.passes.common._c_api_utils import call_onnx_api

logger = logging.getLogger(__name__)


def infer_shapes(model: ir.Model, *, data_prop: bool = True) -> bool:
    """Annotate values with inferred types and shapes in place; True if anything changed.

    Shapes help the passes but are never required, so a model ONNX cannot infer is left as it is.
    """

    def infer(proto: onnx.ModelProto) -> onnx.ModelProto:
        # strict_mode off: one op ONNX cannot infer (a custom domain) must not stop the rest.
        return onnx.shape_inference.infer_shapes(proto, check_type=False, strict_mode=False, data_prop=data_prop)

    try:
        inferred_proto = call_onnx_api(infer, model)
        inferred = ir.serde.deserialize_model(inferred_proto)
    except Exception as error:  # inference is best effort
        logger.info("shape inference failed, shapes left as they were: %s", error)
        return False
    return _merge(model, inferred)


def _merge(model: ir.Model, inferred: ir.Model) -> bool:
    modified = False
    for graph, inferred_graph in zip(model.graphs(), inferred.graphs()):
        inferred_values = ir.convenience.create_value_mapping(inferred_graph)
        for name, value in ir.convenience.create_value_mapping(graph).items():
            found = inferred_values.get(name)
            if found is None or found.type is None:
                continue
            if value.type is None:
                value.type = found.type
                modified = True
            if not isinstance(value.type, ir.TensorType) or value.type != found.type:
                continue
            if found.shape is not None and value.shape != found.shape and _more_specific(found.shape, value.shape):
                value.shape = found.shape
                modified = True
    return modified


def _more_specific(new: ir.Shape, old: ir.Shape | None) -> bool:
    """A shape is worth taking if there was none, or it has the same rank and more known dims."""
    if old is None:
        return True
    if len(new) != len(old):
        return False
    return sum(isinstance(d, int) for d in new) >= sum(isinstance(d, int) for d in old)
