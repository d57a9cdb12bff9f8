"""The prunable layers of a model: Conv, MatMul and Gemm nodes whose weight is a constant of the main graph.

Every pruning method speaks of a weight's *input dimension* (the reduction axis: what N:M groups run along, what
activation importance scales) and, for MatMul/Gemm, of its [K, N] *matmul view* (what block shapes tile):

    Conv   weight [C_out, C_in / groups, k...]   input axis 1 (no matmul view)
    MatMul weight [K, N]                         input axis 0, view = weight
    Gemm   B [K, N] (transB=0) or [N, K] (1)     input axis 0 or 1, view = B or B.T

One `Layer` per weight, not per node: a weight several nodes share (tied projections) is pruned once, and only
when every node reading it is one pruning may touch in the same way; otherwise it is left dense with a warning.
New weights are written as new initializers, so tensors the caller's copy of the model may share with the
original (onnx-ir clones share them) are never changed in place.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import onnx_ir as ir

from optimizer.errors import UsageError
from optimizer.quantization.selection import is_excluded

PRUNABLE_OPS = ("Conv", "MatMul", "Gemm")
FLOAT_TYPES = frozenset({ir.DataType.FLOAT, ir.DataType.FLOAT16, ir.DataType.DOUBLE, ir.DataType.BFLOAT16})


@dataclass
class Layer:
    nodes: list[ir.Node]
    """The nodes reading this weight as input 1 (one, unless the weight is shared)."""
    weight: ir.Value
    input_axis: int
    transposed: bool = False
    """Gemm with transB=1: the weight is [N, K] and its matmul view its transpose."""
    notes: list[str] = field(default_factory=list)

    @property
    def node(self) -> ir.Node:
        return self.nodes[0]

    @property
    def name(self) -> str:
        return node_label(self.node)

    @property
    def op_type(self) -> str:
        return self.node.op_type

    @property
    def has_matmul_view(self) -> bool:
        return self.op_type != "Conv"

    def array(self) -> np.ndarray:
        """The weight as the model holds it now (read-only: never write into it)."""
        return self.weight.const_value.numpy()

    def matmul_view(self, array: np.ndarray) -> np.ndarray:
        """[K, N] of a MatMul/Gemm weight (a view, not a copy)."""
        if not self.has_matmul_view:
            raise ValueError(f"{self.name}: a {self.op_type} weight has no [K, N] matmul view")
        return array.T if self.transposed else array

    def from_matmul_view(self, view: np.ndarray) -> np.ndarray:
        return view.T if self.transposed else view

    @property
    def input_size(self) -> int:
        return int(self.weight.const_value.shape[self.input_axis])


def node_label(node: ir.Node) -> str:
    """A node's name, or its first output's when it has none (what reports and --exclude call it)."""
    return node.name or (node.outputs[0].name if node.outputs and node.outputs[0].name else node.op_type)


def find_layers(model: ir.Model, ops: Iterable[str] = (), exclude: Iterable[str] = ()
                ) -> tuple[list[Layer], list[str]]:
    """The prunable layers of the main graph in graph order, and warnings for weights left dense because a node
    pruning may not touch also reads them. `ops` limits the op types (default: all of PRUNABLE_OPS)."""
    ops = tuple(ops) or PRUNABLE_OPS
    unknown = sorted(set(ops) - set(PRUNABLE_OPS))
    if unknown:
        raise UsageError(f"pruning cannot prune op type(s) {', '.join(unknown)}; it prunes "
                         f"{', '.join(PRUNABLE_OPS)}")
    exclude = tuple(exclude)
    graph = model.graph
    graph_inputs = {id(value) for value in graph.inputs}
    candidates: dict[int, Layer] = {}
    for node in graph:
        if node.op_type not in ops or node.domain not in ("", "ai.onnx") or is_excluded(node, exclude):
            continue
        described = _describe(node, graph_inputs)
        if described is None:
            continue
        weight, axis, transposed = described
        layer = candidates.get(id(weight))
        if layer is None:
            candidates[id(weight)] = Layer([node], weight, axis, transposed)
        elif (layer.op_type, layer.transposed) == (node.op_type, transposed):
            layer.nodes.append(node)
        else:
            layer.notes.append("mixed")  # read as [K, N] by one node and [N, K] by another: not one view
    layers, warnings = [], []
    for layer in candidates.values():
        readers = {id(node) for node in layer.nodes}
        others = [use.node for use in layer.weight.uses() if id(use.node) not in readers or use.idx != 1]
        if others or "mixed" in layer.notes or layer.weight in graph.outputs:
            other = others[0] if others else layer.nodes[-1]
            warnings.append(f"weight '{layer.weight.name}' of {layer.name} is also read by "
                            f"{node_label(other)} ({other.op_type}), which pruning does not touch: left dense")
            continue
        if len(layer.nodes) > 1:
            layer.notes.append(f"weight shared by {len(layer.nodes)} nodes")
        layers.append(layer)
    return layers, warnings


def _describe(node: ir.Node, graph_inputs: set[int]) -> tuple[ir.Value, int, bool] | None:
    """(weight, input axis, transposed) of a prunable node, or None when its weight is not a float constant of
    the right rank (computed at run time, an overridable graph input, an integer tensor)."""
    if len(node.inputs) < 2 or node.inputs[1] is None:
        return None
    weight = node.inputs[1]
    if weight.const_value is None or id(weight) in graph_inputs or weight.const_value.dtype not in FLOAT_TYPES:
        return None
    rank = len(weight.const_value.shape)
    if node.op_type == "Conv":
        return (weight, 1, False) if rank >= 3 else None
    if rank != 2:
        return None
    if node.op_type == "MatMul":
        return weight, 0, False
    transposed = bool(_int_attribute(node, "transB", 0))
    return weight, 1 if transposed else 0, transposed


def _int_attribute(node: ir.Node, name: str, default: int) -> int:
    attribute = node.attributes.get(name)
    return default if attribute is None else int(attribute.value)


def write_weight(model: ir.Model, layer: Layer, array: np.ndarray) -> None:
    """Make `array` the layer's weight: a new initializer for every node of the layer; the old one is dropped
    from the graph when nothing else reads it (its tensor itself is never touched)."""
    old = layer.weight
    dtype = old.const_value.dtype
    value = new_initializer(model.graph, array.astype(dtype.numpy(), copy=False), f"{old.name or 'weight'}_pruned")
    for node in layer.nodes:
        node.replace_input_with(1, value)
    layer.weight = value
    drop_if_unused(model.graph, old)


def new_initializer(graph: ir.Graph, array: np.ndarray, name: str) -> ir.Value:
    """A new initializer of `array` (copied, so later changes to the array cannot reach the model)."""
    unique, count = name, 1
    while unique in graph.initializers:
        unique, count = f"{name}_{count}", count + 1
    tensor = ir.tensor(np.array(array, copy=True), name=unique)
    value = ir.Value(name=unique, shape=ir.Shape(array.shape), type=ir.TensorType(tensor.dtype),
                     const_value=tensor)
    graph.register_initializer(value)
    return value


def drop_if_unused(graph: ir.Graph, value: ir.Value) -> None:
    if not list(value.uses()) and value not in graph.outputs and value.name in graph.initializers \
            and graph.initializers[value.name] is value:
        del graph.initializers[value.name]
