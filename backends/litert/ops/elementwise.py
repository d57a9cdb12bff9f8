"""Activations, broadcasting arithmetic, comparisons and logic, in whichever layout their inputs already are.

A binary op on an NHWC activation stays NHWC when its other operand can follow: a constant (broadcast to
rank 4, then permuted here) or another rank-4 activation. An operand of lower rank broadcasts against ONNX's
trailing dims (W, or H and W), which NHWC does not keep last, so then the op runs in ONNX's layout.

Erf only appears in exported exact GELU, x * 0.5 * (1 + erf(x / sqrt 2)): that pattern becomes one GELU. An
Erf outside it is computed with Abramowitz and Stegun's formula 7.1.26 (|error| <= 1.5e-7) from builtins.
"""

from __future__ import annotations

import math

import numpy as np
import onnx_ir as ir

from optimizer.backends.litert.convert import TO_NHWC, GraphConverter, Layout, Placed

NONE = 0  # ActivationFunctionType.NONE
OPTIONS = {"ADD": "AddOptions", "SUB": "SubOptions", "MUL": "MulOptions", "DIV": "DivOptions"}


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


def arithmetic(c: GraphConverter, builtin: str, inputs: list[int], out: int) -> None:
    """One binary op; ADD/SUB/MUL/DIV carry their (activation-free) options table."""
    options = c.graph.options(OPTIONS[builtin], fusedActivationFunction=NONE) if builtin in OPTIONS else None
    c.graph.add_operator(builtin, inputs, [out], options)


def _binary(builtin: str):
    """A binary op, or a chain of them for ONNX's variadic Max, Min and Sum."""

    def convert(c: GraphConverter, node: ir.Node) -> None:
        values, output = [v for v in node.inputs if v is not None], node.outputs[0]
        if len(values) == 1:
            c.alias(output, c.placed(values[0]))
            return
        if builtin == "POW" and c.dtype(values[1]) != c.dtype(values[0]):
            # ONNX lets Pow's exponent have its own type; TFLite's POW wants both alike.
            if c.constant(values[1]) is None:
                raise ValueError(f"Pow with a computed {c.dtype(values[1])} exponent of a {c.dtype(values[0])} "
                                 "base is not converted")
            values[1] = ir.Value(name=f"{node.name}_exponent", const_value=ir.tensor(
                c.constant(values[1]).astype(c.dtype(values[0]))))
        layout = binary_layout(c, values, output)
        rank = c.rank(output)
        tensors = [operand(c, v, layout, rank) for v in values]
        current = tensors[0]
        for index, tensor in enumerate(tensors[1:], start=2):
            if index == len(tensors):
                out = c.output(output, layout)
            else:
                shape = np.broadcast_shapes(tuple(c.graph.tensors[current].shape),
                                            tuple(c.graph.tensors[tensor].shape))
                out = c.graph.add_tensor(f"{node.name}_{index}", shape, c.dtype(output))
            arithmetic(c, builtin, [current, tensor], out)
            current = out
    return convert


def mean(c: GraphConverter, node: ir.Node) -> None:
    """Variadic Mean: the sum, then one MUL by 1/n."""
    values, output = [v for v in node.inputs if v is not None], node.outputs[0]
    layout = binary_layout(c, values, output)
    rank, dtype = c.rank(output), c.dtype(output)
    current = operand(c, values[0], layout, rank)
    for index, value in enumerate(values[1:]):
        tensor = operand(c, value, layout, rank)
        shape = np.broadcast_shapes(tuple(c.graph.tensors[current].shape), tuple(c.graph.tensors[tensor].shape))
        summed = c.graph.add_tensor(f"{node.name}_sum{index}", shape, dtype)
        arithmetic(c, "ADD", [current, tensor], summed)
        current = summed
    arithmetic(c, "MUL", [current, c.scalar(1.0 / len(values), dtype)], c.output(output, layout))


def _unary(builtin: str, options=None):
    def convert(c: GraphConverter, node: ir.Node) -> None:
        x = node.inputs[0]
        layout = c.layout_of(x)
        table = options(c, node) if options else None
        c.graph.add_operator(builtin, [c.placed(x).tensor], [c.output(node.outputs[0], layout)], table)
    return convert


def reciprocal(c: GraphConverter, node: ir.Node) -> None:
    x = node.inputs[0]
    layout = c.layout_of(x)
    arithmetic(c, "DIV", [c.scalar(1.0, c.dtype(x)), c.placed(x).tensor], c.output(node.outputs[0], layout))


def elu(c: GraphConverter, node: ir.Node) -> None:
    if node.attributes.get_float("alpha", 1.0) != 1.0:
        raise ValueError("Elu with alpha != 1 is not converted (TFLite's ELU has alpha 1)")
    _unary("ELU")(c, node)


def clip(c: GraphConverter, node: ir.Node) -> None:
    """Clip as RELU, RELU6, RELU_N1_TO_1 or RELU_0_TO_1 when its bounds are theirs, else MAXIMUM and MINIMUM."""
    x, output = node.inputs[0], node.outputs[0]
    dtype = c.dtype(x)
    bounds = []
    for index, name in ((1, "min"), (2, "max")):
        if node.attributes.get(name) is not None:  # opset < 11
            bounds.append(np.asarray(node.attributes.get_float(name), dtype))
        elif len(node.inputs) > index and node.inputs[index] is not None:
            bound = c.constant(node.inputs[index])
            if bound is None:
                raise ValueError("Clip bounds are not constant")
            bounds.append(np.asarray(bound, dtype).reshape(()))
        else:
            bounds.append(None)
    low, high = bounds
    layout = c.layout_of(x)
    tensor = c.placed(x).tensor
    named = {(0.0, None): "RELU", (0.0, 6.0): "RELU6", (-1.0, 1.0): "RELU_N1_TO_1", (0.0, 1.0): "RELU_0_TO_1"}
    key = (None if low is None else float(low), None if high is None else float(high))
    if key in named and dtype == np.float32:
        c.graph.add_operator(named[key], [tensor], [c.output(output, layout)])
        return
    steps = [(builtin, bound) for builtin, bound in (("MAXIMUM", low), ("MINIMUM", high)) if bound is not None]
    if not steps:
        c.alias(output, Placed(tensor, layout))
        return
    for index, (builtin, bound) in enumerate(steps):
        bound_tensor = c.graph.add_constant(f"{node.name}_{builtin.lower()}_bound", bound)
        if index == len(steps) - 1:
            out = c.output(output, layout)
        else:
            out = c.graph.add_tensor(f"{node.name}_{builtin.lower()}", c.graph.tensors[tensor].shape, dtype)
        c.graph.add_operator(builtin, [tensor, bound_tensor], [out])
        tensor = out


def batch_normalization(c: GraphConverter, node: ir.Node) -> None:
    """Inference BatchNormalization (one not folded into a convolution): x * multiplier + shift per channel."""
    x, output = node.inputs[0], node.outputs[0]
    if any(value is not None and value.uses() for value in node.outputs[1:]):
        raise ValueError("training-mode outputs (running mean and variance) are not converted")
    scale, bias, running_mean, variance = (c.constant(v) for v in node.inputs[1:5])
    if any(data is None for data in (scale, bias, running_mean, variance)):
        raise ValueError("scale, bias, mean and variance must be constant")
    dtype, rank = c.dtype(x), c.rank(x)
    epsilon = node.attributes.get_float("epsilon", 1e-5)
    multiplier = (scale / np.sqrt(variance.astype(np.float64) + epsilon)).astype(dtype)
    shift = (bias - running_mean * multiplier).astype(dtype)
    layout = c.layout_of(x)
    per_channel = (-1,) + (1,) * (rank - 2)

    def channel_constant(data: np.ndarray, name: str) -> int:
        data = data.reshape(per_channel)
        if layout == "nhwc" and rank == 4:
            data = data.reshape((1, *data.shape)).transpose(TO_NHWC)
        return c.graph.add_constant(f"{node.name}_{name}", np.ascontiguousarray(data))

    tensor = c.placed(x).tensor
    scaled = c.graph.add_tensor(f"{node.name}_scaled", c.graph.tensors[tensor].shape, dtype)
    arithmetic(c, "MUL", [tensor, channel_constant(multiplier, "multiplier")], scaled)
    arithmetic(c, "ADD", [scaled, channel_constant(shift, "shift")], c.output(output, layout))


# Erf ----------------------------------------------------------------------------------------------------------


def _only_use(value: ir.Value, c: GraphConverter) -> ir.Node | None:
    uses = list(value.uses())
    if len(uses) != 1 or value in c.model.graph.outputs:
        return None
    return uses[0][0]


def _other_operand(node: ir.Node, value: ir.Value) -> ir.Value | None:
    if node.domain not in ("", "ai.onnx") or len(node.inputs) != 2:
        return None
    if node.inputs[0] is value:
        return node.inputs[1]
    return node.inputs[0] if node.inputs[1] is value else None


def _is_constant(c: GraphConverter, value: ir.Value | None, expected: float) -> bool:
    data = c.constant(value) if value is not None else None
    return data is not None and data.size == 1 and math.isclose(float(data.reshape(())), expected, rel_tol=1e-5)


def exact_gelu(c: GraphConverter, erf: ir.Node) -> tuple[ir.Value, ir.Value, list[ir.Node]] | None:
    """(x, y, nodes after the Erf) when the Erf is the middle of y = x * 0.5 * (1 + erf(x / sqrt 2)), in the
    orders exporters write it: ((x * (1 + erf)) * 0.5) or ((x * 0.5) * (1 + erf))."""
    scaled = erf.inputs[0]
    producer = scaled.producer()
    if producer is None or producer.op_type not in ("Div", "Mul") or len(producer.inputs) != 2:
        return None
    x = producer.inputs[0]
    if producer.op_type == "Div" and not _is_constant(c, producer.inputs[1], math.sqrt(2)):
        return None
    if producer.op_type == "Mul":
        x = next((v for v in producer.inputs if not _is_constant(c, v, math.sqrt(0.5))), None)
        if x is None or not any(_is_constant(c, v, math.sqrt(0.5)) for v in producer.inputs):
            return None
    add = _only_use(erf.outputs[0], c)
    if add is None or add.op_type != "Add" or not _is_constant(c, _other_operand(add, erf.outputs[0]), 1.0):
        return None
    product = _only_use(add.outputs[0], c)
    if product is None or product.op_type != "Mul":
        return None
    other = _other_operand(product, add.outputs[0])
    if other is x:
        half = _only_use(product.outputs[0], c)
        if half is None or half.op_type != "Mul" or not _is_constant(c, _other_operand(half, product.outputs[0]),
                                                                        0.5):
            return None
        return x, half.outputs[0], [add, product, half]
    halved = other.producer() if other is not None else None
    if halved is not None and halved.op_type == "Mul" and x in halved.inputs and _is_constant(
            c, _other_operand(halved, x), 0.5):
        return x, product.outputs[0], [add, product]
    return None


# Abramowitz and Stegun 7.1.26: erf(x) = 1 - (a1 t + ... + a5 t^5) exp(-x^2), t = 1 / (1 + p x), for x >= 0.
ERF_P = 0.3275911
ERF_A = (0.254829592, -0.284496736, 1.421413741, -1.453152027, 1.061405429)


def erf(c: GraphConverter, node: ir.Node) -> None:
    gelu = exact_gelu(c, node)
    if gelu is not None:
        x, y, nodes = gelu
        c.graph.add_operator("GELU", [c.placed(x).tensor], [c.output(y, c.layout_of(x))],
                             c.graph.options("GeluOptions", approximate=False))
        c.fuse(*nodes)
        return
    x = node.inputs[0]
    layout, dtype = c.layout_of(x), c.dtype(x)
    tensor = c.placed(x).tensor
    shape = c.graph.tensors[tensor].shape
    name = node.name or node.outputs[0].name

    def step(builtin: str, inputs: list[int], label: str) -> int:
        out = c.graph.add_tensor(f"{name}_{label}", shape, dtype)
        if builtin in OPTIONS:
            arithmetic(c, builtin, inputs, out)
        else:
            c.graph.add_operator(builtin, inputs, [out])
        return out

    magnitude = step("ABS", [tensor], "abs")
    denominator = step("ADD", [step("MUL", [magnitude, c.scalar(ERF_P, dtype)], "px"), c.scalar(1.0, dtype)],
                       "one_plus_px")
    t = step("DIV", [c.scalar(1.0, dtype), denominator], "t")
    polynomial = step("MUL", [t, c.scalar(ERF_A[4], dtype)], "poly4")
    for index in (3, 2, 1, 0):  # Horner: ((a5 t + a4) t + a3) t ...
        polynomial = step("ADD", [polynomial, c.scalar(ERF_A[index], dtype)], f"poly{index}_sum")
        polynomial = step("MUL", [polynomial, t], f"poly{index}")
    gaussian = step("EXP", [step("NEG", [step("MUL", [tensor, tensor], "square")], "neg_square")], "gaussian")
    tail = step("MUL", [polynomial, gaussian], "tail")
    positive = step("SUB", [c.scalar(1.0, dtype), tail], "positive")
    arithmetic(c, "MUL", [step("SIGN", [tensor], "sign"), positive], c.output(node.outputs[0], layout))


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
    arithmetic(c, "MUL", [c.placed(x).tensor, alpha], scaled)
    arithmetic(c, "ADD", [scaled, beta], shifted)
    c.graph.add_operator("RELU_0_TO_1", [shifted], [c.output(node.outputs[0], layout)])


CONVERTERS = {
    "Add": _binary("ADD"),
    "Sub": _binary("SUB"),
    "Mul": _binary("MUL"),
    "Div": _binary("DIV"),
    "Pow": _binary("POW"),
    "Max": _binary("MAXIMUM"),
    "Min": _binary("MINIMUM"),
    "Sum": _binary("ADD"),
    "Mean": mean,
    "PRelu": _binary("PRELU"),
    "Equal": _binary("EQUAL"),
    "Less": _binary("LESS"),
    "LessOrEqual": _binary("LESS_EQUAL"),
    "Greater": _binary("GREATER"),
    "GreaterOrEqual": _binary("GREATER_EQUAL"),
    "And": _binary("LOGICAL_AND"),
    "Or": _binary("LOGICAL_OR"),
    "Xor": _binary("NOT_EQUAL"),
    "Not": _unary("LOGICAL_NOT"),
    "Relu": _unary("RELU"),
    "Sigmoid": _unary("LOGISTIC"),
    "Tanh": _unary("TANH"),
    "Exp": _unary("EXP"),
    "Log": _unary("LOG"),
    "Sqrt": _unary("SQRT"),
    "Neg": _unary("NEG"),
    "Abs": _unary("ABS"),
    "Sign": _unary("SIGN"),
    "Floor": _unary("FLOOR"),
    "Ceil": _unary("CEIL"),
    "Round": _unary("ROUND"),
    "Sin": _unary("SIN"),
    "Cos": _unary("COS"),
    "Reciprocal": reciprocal,
    "Elu": elu,
    "HardSwish": _unary("HARD_SWISH"),
    "LeakyRelu": _unary("LEAKY_RELU", _leaky),
    "Gelu": _unary("GELU", _gelu),
    "Erf": erf,
    "Clip": clip,
    "HardSigmoid": hard_sigmoid,
    "BatchNormalization": batch_normalization,
}
