"""Shape inference on the IR.

ONNX's shape inference runs on a serialized copy of the model with its big weights set aside (onnx-ir's
`call_onnx_api` helper), so big models cost little; the inferred types and shapes are then merged back.

The merge is ours rather than onnx-ir's ShapeInferencePass's: that one (1.1) assigns the inferred element type
with `value.dtype = ...`, which turns a sequence- or optional-typed value of a Loop/If/SequenceMap body into a
plain tensor and makes the saved model invalid. Here a value that already has a type keeps it; only values
with no type get the inferred one, and only tensors get inferred shapes.

Data propagation (which resolves shapes computed at run time, like Reshape targets built from Shape/Gather/
Concat) is only turned on when no 1-D tensor is long: ONNX (1.23) propagates each element of a 1-D tensor
symbolically and runs out of memory on a long one (a 300M-element 1-D weight took 24 GB here).
"""

from __future__ import annotations

import logging

import onnx
import onnx_ir as ir
from onnx_ir.passes.common._c_api_utils import call_onnx_api

logger = logging.getLogger(__name__)

DATA_PROPAGATION_MAX_LENGTH = 4096


def infer_shapes(model: ir.Model, *, data_prop: bool = True) -> bool:
    """Annotate values with inferred types and shapes in place; True if anything changed.

    Shapes help the passes but are never required, so a model ONNX cannot infer is left as it is.
    """

    inferred = _inferred(model, data_prop=False)
    if inferred is None:
        return False
    if data_prop and _longest_vector(inferred) <= DATA_PROPAGATION_MAX_LENGTH:
        inferred = _inferred(model, data_prop=True) or inferred
    return _merge(model, inferred)


def _inferred(model: ir.Model, *, data_prop: bool) -> ir.Model | None:
    def infer(proto: onnx.ModelProto) -> onnx.ModelProto:
        # strict_mode off: one op ONNX cannot infer (a custom domain) must not stop the rest.
        return onnx.shape_inference.infer_shapes(proto, check_type=False, strict_mode=False, data_prop=data_prop)

    try:
        return ir.serde.deserialize_model(call_onnx_api(infer, model))
    except Exception as error:  # inference is best effort
        logger.info("shape inference failed, shapes left as they were: %s", error)
        return None


def _longest_vector(model: ir.Model) -> int:
    """The largest static length of any 1-D tensor value in the model (0 when there is none)."""
    longest = 0
    for graph in model.graphs():
        for value in ir.convenience.create_value_mapping(graph).values():
            shape = value.shape
            if shape is not None and len(shape) == 1 and isinstance(shape[0], int):
                longest = max(longest, shape[0])
    return longest


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


def clear_intermediate_shapes(model: ir.Model) -> int:
    """Forget the types and shapes of values inside graphs (not graph inputs, outputs or initializers).

    Passes need them in memory; the saved model is better without them: ONNX Runtime re-infers shapes itself,
    and minilm saved with its inferred value_info ran 3% slower in ORT 1.32 than without (medians of
    interleaved blocks, 2 threads), the same model otherwise.
    """
    cleared = 0
    for graph in model.graphs():
        boundary = {*graph.inputs, *graph.outputs, *graph.initializers.values()}
        for node in graph:
            for value in node.outputs:
                if value not in boundary and (value.type is not None or value.shape is not None):
                    value.type = None
                    value.shape = None
                    cleared += 1
    return cleared
