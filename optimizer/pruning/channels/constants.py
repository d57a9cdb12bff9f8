"""Reading and replacing the constants channel pruning rewrites: weights, per-channel operands, Split sizes."""

from __future__ import annotations

import numpy as np
import onnx_ir as ir


def attribute_int(node: ir.Node, name: str, default: int) -> int:
    attribute = node.attributes.get(name)
    return default if attribute is None else int(attribute.value)


def constant_array(value: ir.Value | None) -> np.ndarray | None:
    """The value's array when it is a weight or the output of a Constant node, else None."""
    if value is None:
        return None
    if value.const_value is not None:
        return value.const_value.numpy()
    producer = value.producer()
    if producer is not None and producer.op_type == "Constant" and "value" in producer.attributes:
        return producer.attributes["value"].value.numpy()
    return None


def replace_constant(node: ir.Node, index: int, array: np.ndarray, suffix: str = "pruned") -> None:
    """Give `node` a new weight at input `index`. A weight read by several nodes (yolov8's C2f blocks share
    their Split sizes) is never changed in place: each node gets its own, and the old one goes when unused."""
    graph = node.graph
    old = node.inputs[index] if index < len(node.inputs) else None
    base = old.name if old is not None and old.name else f"{node.name or 'node'}_input{index}"
    name = _free_name(graph, f"{base}_{suffix}")
    value = ir.Value(name=name, shape=ir.Shape(array.shape), type=ir.TensorType(ir.DataType.from_numpy(array.dtype)),
                     const_value=ir.tensor(array, name=name))
    graph.register_initializer(value)
    if index < len(node.inputs):
        node.replace_input_with(index, value)
    else:
        node.resize_inputs(index + 1)
        node.replace_input_with(index, value)
    if old is not None and not old.uses() and old.name in graph.initializers and not old.is_graph_output():
        graph.initializers.pop(old.name)


def _free_name(graph: ir.Graph, name: str) -> str:
    taken = set(graph.initializers) | {v.name for v in graph.inputs} | {v.name for n in graph for v in n.outputs}
    candidate, suffix = name, 1
    while candidate in taken:
        candidate, suffix = f"{name}_{suffix}", suffix + 1
    return candidate
