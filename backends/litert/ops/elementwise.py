"""Activations and broadcasting arithmetic, in whichever layout their inputs already are.

A binary op on an NHWC activation stays NHWC when its other operand can follow: a constant (broadcast to
rank 4, then permuted here) or another rank-4 activation. An operand of lower rank broadcasts against ONNX's
trailing dims (W, or H and W), which NHWC does not keep last, so then the op runs in ONNX's layout.
"""

from __future__ import annotations

import numpy as np
import onnx_ir as ir

from optimizer.backends.litert.convert import TO_NHWC, GraphConverter, Layout

NONE = 0  # ActivationFunctionType.NONE


def binary_layout(c: GraphConverter, values: list[ir.Value], output: ir.Value) -> Layout:
    activations = [v for v in values if c.constant(v) is None]
    if c.rank(output) != 4 or not any(c.layout_of(v) == "nhwc" for v in activations):
        return "onnx"
    return "nhwc" if all(c.rank(v) == 4 for v in activations) else "onnx"


def operand(c: GraphConverter, value: ir.Value, layout: Layout, rank: int) -> int:
    data = c.constant(value)
    if data is None:
        return c.in_layout(value, layout)
    if layout == "nhwc" and data.ndim > 0:
        data = data.reshape((1,) * (rank - data.ndim) + data.shape).transpose(TO_NHWC)
        return c.graph.add_constant(f"{value.name}_nhwc", np.ascontiguousarray(data))
    return c.placed(value).tensor


def _binary(builtin: str, options: str | None):
    def convert(c: GraphConverter, node: ir.Node) -> None:
        values, output = list(node.inputs[:2]), node.outputs[0]
        layout = binary_layout(c, values, output)
        rank = c.rank(output)
        inputs = [operand(c, v, layout, rank) for v in values]
        table = c.graph.options(options, fusedActivationFunction=NONE) if options else None
        c.graph.add_operator(builtin, inputs, [c.output(output, layout)], table)
    return convert


def _unary(builtin: str, options=None):
    def convert(c: GraphConverter, node: ir.Node) -> None:
        x = node.inputs[0]
        layout = c.layout_of(x)
        table = options(c, node) if options else None
        c.graph.add_operator(builtin, [c.placed(x).tensor], [c.output(node.outputs[0], layout)], table)
    return convert


def clip(c: GraphConverter, node: ir.Node) -> None:
    x = node.inputs[0]
    low = c.constant(node.inputs[1]) if len(node.inputs) > 1 and node.inputs[1] is not None else None
    high = c.constant(node.inputs[2]) if len(node.inputs) > 2 and node.inputs[2] is not None else None
    if node.attributes.get("min") is not None:
        low = np.float32(node.attributes.get_float("min"))
        high = np.float32(node.attributes.get_float("max", np.finfo(np.float32).max))
    if (len(node.inputs) > 1 and node.inputs[1] is not None and low is None) or (
            len(node.inputs) > 2 and node.inputs[2] is not None and high is None):
        raise ValueError("Clip bounds are not constant")
    layout = c.layout_of(x)
    if low is not None and high is not None and float(low) == 0.0 and float(high) == 6.0:
        c.graph.add_operator("RELU6", [c.placed(x).tensor], [c.output(node.outputs[0], layout)])
        return
    tensor = c.placed(x).tensor
    for builtin, bound, name in (("MAXIMUM", low, "min"), ("MINIMUM", high, "max")):
        if bound is None:
            continue
        out = c.graph.add_tensor(f"{node.name}_{name}", c.graph.tensors[tensor].shape, c.dtype(x))
        bound_tensor = c.graph.add_constant(f"{node.name}_{name}_bound", np.asarray(bound, dtype=c.dtype(x)))
        c.graph.add_operator(builtin, [tensor, bound_tensor], [out])
        tensor = out
    c.alias(node.outputs[0], type(c.placed(x))(tensor, layout))


def _leaky(c: GraphConverter, node: ir.Node):
    return c.graph.options("LeakyReluOptions", alpha=node.attributes.get_float("alpha", 0.01))


def _gelu(c: GraphConverter, node: ir.Node):
    return c.graph.options("GeluOptions", approximate=node.attributes.get_string("approximate", "none") == "tanh")


def hard_sigmoid(c: GraphConverter, node: ir.Node) -> None:
    """max(0, min(1, alpha * x + beta)) as MUL, ADD, RELU_0_TO_1."""
    x = node.inputs[0]
    layout, dtype = c.layout_of(x), c.dtype(x)
    shape = c.graph.tensors[c.placed(x).tensor].shape
    alpha = c.graph.add_constant(f"{node.name}_alpha", np.asarray(node.attributes.get_float("alpha", 0.2), dtype))
    beta = c.graph.add_constant(f"{node.name}_beta", np.asarray(node.attributes.get_float("beta", 0.5), dtype))
    scaled = c.graph.add_tensor(f"{node.name}_scaled", shape, dtype)
    shifted = c.graph.add_tensor(f"{node.name}_shifted", shape, dtype)
    c.graph.add_operator("MUL", [c.placed(x).tensor, alpha], [scaled])
    c.graph.add_operator("ADD", [scaled, beta], [shifted])
    c.graph.add_operator("RELU_0_TO_1", [shifted], [c.output(node.outputs[0], layout)])


CONVERTERS = {
    "Add": _binary("ADD", "AddOptions"),
    "Sub": _binary("SUB", "SubOptions"),
    "Mul": _binary("MUL", "MulOptions"),
    "Div": _binary("DIV", "DivOptions"),
    "Pow": _binary("POW", None),
    "Max": _binary("MAXIMUM", None),
    "Min": _binary("MINIMUM", None),
    "Relu": _unary("RELU"),
    "Sigmoid": _unary("LOGISTIC"),
    "Tanh": _unary("TANH"),
    "Exp": _unary("EXP"),
    "Sqrt": _unary("SQRT"),
    "Neg": _unary("NEG"),
    "Abs": _unary("ABS"),
    "HardSwish": _unary("HARD_SWISH"),
    "LeakyRelu": _unary("LEAKY_RELU", _leaky),
    "Gelu": _unary("GELU", _gelu),
    "Clip": clip,
    "HardSigmoid": hard_sigmoid,
}
