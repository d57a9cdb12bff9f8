"""The bias each pruned layer's output is corrected through, added (as zeros) where the layer has none.

Bias correction shifts a layer's output by the mean difference pruning made on calibration data, so the layer
needs a bias it alone owns: a Conv's input 2, a Gemm's C (times beta), or the constant of the Add that follows a
MatMul (how exporters write a Linear layer). Each becomes a new initializer (a copy, never the tensor the
original model may share); a layer without one gets zeros, which leave the function unchanged until the
correction fills them. Structural, so it runs before the probe session is built.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx_ir as ir

from optimizer.pruning.layers import Layer, drop_if_unused, new_initializer


@dataclass
class BiasSlot:
    value: ir.Value
    """An initializer only this layer reads; its last axis runs over the layer's outputs."""
    scale: float = 1.0
    """How much the output moves per unit of bias (Gemm's beta; 1 otherwise)."""

    def array(self) -> np.ndarray:
        return self.value.const_value.numpy()

    def shifted(self, bias: np.ndarray, delta: np.ndarray) -> np.ndarray:
        """`bias` moved so the layer's output moves by `delta` (one value per output channel)."""
        return (bias.astype(np.float64) + delta / self.scale).astype(bias.dtype)


def ensure_bias(model: ir.Model, layer: Layer, outputs: int) -> tuple[BiasSlot | None, str]:
    """The layer's own bias slot, made if needed; or None and why bias correction cannot apply to it."""
    if len(layer.nodes) > 1:
        return None, "weight shared by several nodes: no one bias to correct"
    node, graph = layer.node, model.graph
    dtype = layer.weight.const_value.dtype.numpy()
    if node.op_type in ("Conv", "Gemm"):
        scale = 1.0
        if node.op_type == "Gemm":
            beta = node.attributes.get("beta")
            scale = 1.0 if beta is None else float(beta.value)
            if scale == 0.0:
                return None, "Gemm with beta 0 ignores its C"
        current = node.inputs[2] if len(node.inputs) > 2 else None
        if current is not None and (current.const_value is None or not _per_output(current, outputs)):
            return None, "its bias is not a constant per output channel"
        initial = current.const_value.numpy() if current is not None else np.zeros(outputs, dtype)
        value = new_initializer(graph, initial, f"{layer.name}_bias")
        if len(node.inputs) < 3:
            node.resize_inputs(3)
        node.replace_input_with(2, value)
        if current is not None:
            drop_if_unused(graph, current)
        return BiasSlot(value, scale), ""
    return _matmul_bias(graph, layer, outputs, dtype)


def _matmul_bias(graph: ir.Graph, layer: Layer, outputs: int, dtype) -> tuple[BiasSlot | None, str]:
    node = layer.node
    product = node.outputs[0]
    uses = list(product.uses())
    if len(uses) == 1 and uses[0].node.op_type == "Add" and product not in graph.outputs:
        add = uses[0].node
        other_index = 1 - uses[0].idx
        other = add.inputs[other_index]
        if other is not None and other.const_value is not None and _per_output(other, outputs):
            value = new_initializer(graph, other.const_value.numpy(), f"{layer.name}_bias")
            add.replace_input_with(other_index, value)
            drop_if_unused(graph, other)
            return BiasSlot(value), ""
    if product in graph.outputs:
        return None, "its output is a graph output: no bias Add can follow it"
    value = new_initializer(graph, np.zeros(outputs, dtype), f"{layer.name}_bias")
    biased = ir.Value(name=f"{product.name}_biased", shape=product.shape, type=product.type)
    ir.convenience.replace_all_uses_with(product, biased)
    graph.insert_after(node, ir.node("Add", [product, value], outputs=[biased], name=f"{layer.name}_bias_add"))
    return BiasSlot(value), ""


def _per_output(value: ir.Value, outputs: int) -> bool:
    """A bias whose last axis is the output channels, so adding a per-channel shift keeps its shape."""
    shape = value.const_value.shape
    return len(shape) >= 1 and shape[-1] == outputs and value.const_value.dtype.is_floating_point()
