"""Shape computations folded to constants before conversion, so that every value has a static shape.

TFLite tensors have static shapes, and the converters read axes, sizes and weights as constants. Exported
models compute many of these at run time from Shape (transformers' attention masks and position ids, the
`view(batch, -1, heads, dim)` targets); once the input shapes are fixed they are constants too. The pipeline's
constant folding (onnxscript's) leaves some of them: it keeps ConstantOfShape on purpose, to keep models small,
which stops everything downstream, and ONNX's reference GatherElements fails on an axis longer than 64.

Here every node whose inputs are all known is evaluated once with ONNX's reference ops (GatherElements with
NumPy's take_along_axis), shapes are inferred again, and that repeats until nothing more folds. It runs on the
converter's own copy of the model.
"""

from __future__ import annotations

import math

import numpy as np
import onnx_ir as ir
from onnx.reference import ReferenceEvaluator
from onnx.reference.op_run import OpRun

from optimizer.ir import infer_shapes, is_standard_op

MAX_ROUNDS = 8
"""Each round folds what the shapes inferred after the last one make known; chains of Shape -> ... -> Reshape ->
Shape in transformer exports need two or three."""
MAX_FOLDED_ELEMENTS = 1 << 24
"""A result larger than this (a broadcast of a big constant) stays an op rather than a constant in the file."""
KEPT = frozenset({"QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear", "RandomNormal", "RandomUniform",
                  "RandomNormalLike", "RandomUniformLike", "Multinomial", "Bernoulli"})
"""Never folded: quantization nodes carry the scales a precision pass reads, random ops are not constants."""


class GatherElements(OpRun):
    """ONNX's reference GatherElements goes through np.choose, which takes at most 64 choices. (The reference
    evaluator finds an op by its class name.)"""

    op_domain = ""

    def _run(self, data, indices, axis=None):
        axis = 0 if axis is None else axis
        indices = np.where(indices < 0, indices + data.shape[axis], indices)
        return (np.take_along_axis(data, indices, axis=axis),)


def fold_static_values(model: ir.Model) -> int:
    """Fold, in place, every node whose inputs are constants or static shapes; returns how many nodes."""
    for value in model.graph.initializers.values():
        # A constant folded while shapes were unknown can keep the symbolic shape its value had then.
        if value.const_value is not None and value.shape != value.const_value.shape:
            value.shape = ir.Shape(value.const_value.shape)
    folded = 0
    for _ in range(MAX_ROUNDS):
        _forget_symbolic_shapes(model)
        infer_shapes(model)
        count = _fold_round(model)
        if not count:
            break
        folded += count
    return folded


def _fold_round(model: ir.Model) -> int:
    graph = model.graph
    opset = model.opset_imports.get("", model.opset_imports.get("ai.onnx", 17))
    count = 0
    for node in list(graph):
        if not is_standard_op(node) or node.op_type in KEPT or node.op_type == "Constant" or any(
                attribute.type in (ir.AttributeType.GRAPH, ir.AttributeType.GRAPHS)
                for attribute in node.attributes.values()):
            continue
        results = _evaluate(node, opset)
        if results is None:
            continue
        for output, result in zip(node.outputs, results):
            if output.uses() or output in graph.outputs:  # an unused optional output may have no name
                _replace_with_constant(graph, output, result)
        graph.remove(node, safe=True)
        count += 1
    return count


def _evaluate(node: ir.Node, opset: int) -> list[np.ndarray] | None:
    """The node's outputs when all its inputs are known and they are small enough to keep, else None."""
    if node.op_type in ("Shape", "Size"):
        shape = _static_shape(node.inputs[0])
        if shape is None:
            return None
        if node.op_type == "Size":
            return [np.array(math.prod(shape), dtype=np.int64)]
        rank = len(shape)
        start = node.attributes.get_int("start", 0)
        end = node.attributes.get_int("end", rank)
        return [np.array(shape[slice(start, end)], dtype=np.int64)]
    if not all(value is None or _is_constant(value) for value in node.inputs):
        return None  # checked before any data is read: a weight's data is only read when it will be folded
    inputs = [None if value is None else constant_value(value) for value in node.inputs]
    if node.op_type == "ConstantOfShape":
        shape = tuple(int(d) for d in inputs[0])
        if math.prod(shape) > MAX_FOLDED_ELEMENTS:
            return None
    proto = ir.serde.serialize_node(node)
    feeds = {name: data for name, data in zip(proto.input, inputs) if name}
    try:
        evaluator = ReferenceEvaluator(proto, opsets={"": opset}, new_ops=[GatherElements])
        results = evaluator.run(None, feeds)
    except Exception:  # noqa: BLE001  an op the reference cannot run stays an op; its converter decides
        return None
    results = [np.asarray(result) for result in results]
    if len(results) != len(node.outputs) or any(r.size > MAX_FOLDED_ELEMENTS or r.dtype == object
                                                for r in results):
        return None
    for index, (output, result) in enumerate(zip(node.outputs, results)):
        if output.dtype is not None and output.dtype != ir.DataType.STRING:
            results[index] = result.astype(output.dtype.numpy(), copy=False)
    return results


def constant_value(value: ir.Value) -> np.ndarray | None:
    """The value's data when it is an initializer or a Constant node's output."""
    if value.const_value is not None:
        return value.const_value.numpy()
    producer = value.producer()
    if producer is None or producer.op_type != "Constant" or not is_standard_op(producer):
        return None
    for name, attribute in producer.attributes.items():
        if name == "value":
            return attribute.as_tensor().numpy()
        if name in ("value_float", "value_floats"):
            return np.asarray(attribute.value, dtype=np.float32)
        if name in ("value_int", "value_ints"):
            return np.asarray(attribute.value, dtype=np.int64)
    return None


def _forget_symbolic_shapes(model: ir.Model) -> None:
    """Dims inferred before a fold stay symbolic ("unk__5") unless forgotten: ONNX keeps what it is given. Static
    shapes are kept (they are right, and stay if ONNX cannot infer the model)."""
    outputs = set(model.graph.outputs)
    for node in model.graph:
        for value in node.outputs:
            if value not in outputs and value.shape is not None and not all(
                    isinstance(d, int) for d in value.shape):
                value.shape = None


def _is_constant(value: ir.Value) -> bool:
    producer = value.producer()
    return value.const_value is not None or (producer is not None and producer.op_type == "Constant"
                                             and is_standard_op(producer))


def _static_shape(value: ir.Value | None) -> tuple[int, ...] | None:
    if value is None or value.shape is None or not all(isinstance(d, int) for d in value.shape):
        return None
    return tuple(int(d) for d in value.shape)


def _replace_with_constant(graph: ir.Graph, output: ir.Value, data: np.ndarray) -> None:
    # The constant takes the output's name: graph outputs and the TFLite tensors keep the ONNX names.
    name = output.name
    output.name = f"{name}__folded"
    constant = ir.Value(name=name, shape=ir.Shape(data.shape),
                        type=ir.TensorType(ir.DataType.from_numpy(data.dtype)), const_value=ir.tensor(data))
    graph.register_initializer(constant)
    ir.convenience.replace_all_uses_with(output, constant, replace_graph_outputs=True)
