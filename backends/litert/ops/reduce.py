"""Reductions (Reduce*, ArgMax/ArgMin) and LayerNormalization, which TFLite has no builtin for.

A reduction of an NHWC value stays NHWC with its axes remapped when the result keeps its rank (keepdims=1) or
when the axes that remain are in the same order in both layouts (a reduction over H and W, or over C); other
reductions read the value in ONNX's layout. The reductions TFLite lacks are composed: ReduceL2 = SQRT(SUM(x*x)),
ReduceL1 = SUM(ABS(x)), ReduceLogSumExp = m + LOG(SUM(EXP(x - m))) with m the maximum, for range.

LayerNormalization is decomposed over its last axes: mean, centred, variance (the mean of squares of the
centred values, two passes as ONNX defines it), RSQRT(variance + epsilon), then scale and bias.
"""

from __future__ import annotations

import numpy as np
import onnx_ir as ir

from optimizer.backends.litert.convert import TO_NHWC, GraphConverter, Layout

NONE = 0  # ActivationFunctionType.NONE


def reduction_axes(c: GraphConverter, node: ir.Node) -> list[int]:
    """The reduced axes, sorted and non-negative; [] for a no-op (noop_with_empty_axes=1 and no axes). ONNX
    moved `axes` from an attribute to an input (ReduceSum at opset 13, the others at 18): either is read."""
    rank = c.rank(node.inputs[0])
    if len(node.inputs) > 1 and node.inputs[1] is not None:
        axes = c.constant(node.inputs[1])
        if axes is None:
            raise ValueError("axes are not constant")
        axes = [int(a) for a in np.ravel(axes)]
    else:
        attribute = node.attributes.get("axes")
        axes = list(attribute.value) if attribute is not None else []
    if not axes:
        return [] if node.attributes.get_int("noop_with_empty_axes", 0) else list(range(rank))
    return sorted({a % rank for a in axes})


def reduce_layout(c: GraphConverter, x: ir.Value, axes: list[int], keepdims: bool) -> Layout:
    """NHWC when the value is NHWC and the result's axes come out in ONNX's order; else ONNX's layout."""
    if c.layout_of(x) != "nhwc" or c.rank(x) != 4:
        return "onnx"
    remaining = [axis for axis in TO_NHWC if axis not in axes]
    return "nhwc" if keepdims or remaining == sorted(remaining) else "onnx"


def tflite_axes(axes: list[int], layout: Layout, rank: int) -> list[int]:
    return sorted(TO_NHWC.index(a) for a in axes) if layout == "nhwc" and rank == 4 else axes


def _reduce(builtin: str, before: tuple[str, ...] = (), after: str | None = None):
    """`builtin` over the node's axes, with unary ops applied to the input `before` (ABS; "SQUARE" for x*x) and
    to the result `after` (SQRT, LOG)."""

    def convert(c: GraphConverter, node: ir.Node) -> None:
        x, output = node.inputs[0], node.outputs[0]
        axes = reduction_axes(c, node)
        keepdims = bool(node.attributes.get_int("keepdims", 1))
        layout = reduce_layout(c, x, axes, keepdims)
        tensor = c.in_layout(x, layout)
        shape, dtype = c.graph.tensors[tensor].shape, c.dtype(x)
        for step in before:
            inputs = [tensor, tensor] if step == "SQUARE" else [tensor]
            tensor = c.op("MUL" if step == "SQUARE" else step, inputs, shape, dtype, name=f"{node.name}_{step.lower()}",
                          options=c.graph.options("MulOptions", fusedActivationFunction=NONE)
                          if step == "SQUARE" else None)
        out_layout: Layout = layout if keepdims else "onnx"
        out = c.output(output, out_layout)
        reduced = c.graph.add_tensor(f"{node.name}_reduced", c.graph.tensors[out].shape, dtype) if after else out
        if not axes:  # noop_with_empty_axes: nothing reduced, but ReduceL2/ReduceLogSum still take their root/log
            c.graph.add_operator("RESHAPE", [tensor, c.int32(c.graph.tensors[out].shape)], [reduced])
        else:
            c.graph.add_operator(builtin, [tensor, c.int32(tflite_axes(axes, layout, len(shape)))], [reduced],
                                 c.graph.options("ReducerOptions", keepDims=keepdims))
        if after:
            c.graph.add_operator(after, [reduced], [out])

    return convert


def reduce_log_sum_exp(c: GraphConverter, node: ir.Node) -> None:
    x, output = node.inputs[0], node.outputs[0]
    axes = reduction_axes(c, node)
    keepdims = bool(node.attributes.get_int("keepdims", 1))
    tensor, dtype = c.onnx_layout(x), c.dtype(x)
    shape = c.shape(x)
    if not axes:
        c.graph.add_operator("RESHAPE", [tensor, c.int32(shape)], [c.output(output)])
        return
    kept = tuple(1 if i in axes else d for i, d in enumerate(shape))
    axis_tensor = c.int32(axes)
    keep = c.graph.options("ReducerOptions", keepDims=True)
    peak = c.op("REDUCE_MAX", [tensor, axis_tensor], kept, dtype, name=f"{node.name}_max", options=keep)
    shifted = c.op("SUB", [tensor, peak], shape, dtype, name=f"{node.name}_shifted",
                   options=c.graph.options("SubOptions", fusedActivationFunction=NONE))
    exponent = c.op("EXP", [shifted], shape, dtype, name=f"{node.name}_exp")
    total = c.op("SUM", [exponent, axis_tensor], kept, dtype, name=f"{node.name}_sum", options=keep)
    log = c.op("LOG", [total], kept, dtype, name=f"{node.name}_log")
    out_shape = c.shape(output)
    if keepdims:
        c.graph.add_operator("ADD", [log, peak], [c.output(output)],
                             c.graph.options("AddOptions", fusedActivationFunction=NONE))
        return
    summed = c.op("ADD", [log, peak], kept, dtype, name=f"{node.name}_kept",
                  options=c.graph.options("AddOptions", fusedActivationFunction=NONE))
    c.graph.add_operator("RESHAPE", [summed, c.int32(out_shape)], [c.output(output)])


def _arg(builtin: str, options: str):
    def convert(c: GraphConverter, node: ir.Node) -> None:
        x, output = node.inputs[0], node.outputs[0]
        if node.attributes.get_int("select_last_index", 0):
            raise ValueError("select_last_index=1 is not converted (TFLite returns the first index)")
        rank = c.rank(x)
        axis = node.attributes.get_int("axis", 0) % rank
        keepdims = bool(node.attributes.get_int("keepdims", 1))
        layout = reduce_layout(c, x, [axis], keepdims=False)
        out_dtype = c.dtype(output)
        table = c.graph.options(options, outputType=c.graph.fb.TensorType.INT64 if out_dtype == np.int64
                                else c.graph.fb.TensorType.INT32)
        axis_tensor = c.int32([tflite_axes([axis], layout, rank)[0]])
        if not keepdims:
            c.graph.add_operator(builtin, [c.in_layout(x, layout), axis_tensor], [c.output(output)], table)
            return
        reduced_shape = tuple(d for i, d in enumerate(c.shape(x)) if i != axis)
        reduced = c.op(builtin, [c.in_layout(x, layout), axis_tensor], reduced_shape, out_dtype,
                       name=f"{node.name}_reduced", options=table)
        c.graph.add_operator("RESHAPE", [reduced, c.int32(c.shape(output))], [c.output(output)])

    return convert


def layer_normalization(c: GraphConverter, node: ir.Node) -> None:
    x, scale = node.inputs[0], node.inputs[1]
    bias = node.inputs[2] if len(node.inputs) > 2 else None
    if any(value is not None and (value.uses() or value in c.model.graph.outputs) for value in node.outputs[1:]):
        raise ValueError("the Mean and InvStdDev outputs are not converted")
    rank, shape, dtype = c.rank(x), c.shape(x), c.dtype(x)
    axis = node.attributes.get_int("axis", -1) % rank
    epsilon = node.attributes.get_float("epsilon", 1e-5)
    tensor = c.onnx_layout(x)
    axes = c.int32(list(range(axis, rank)))
    reduced = tuple(d if i < axis else 1 for i, d in enumerate(shape))
    keep = c.graph.options("ReducerOptions", keepDims=True)
    name = node.name or node.outputs[0].name
    mean = c.op("MEAN", [tensor, axes], reduced, dtype, name=f"{name}_mean", options=keep)
    centred = c.op("SUB", [tensor, mean], shape, dtype, name=f"{name}_centred",
                   options=c.graph.options("SubOptions", fusedActivationFunction=NONE))
    squared = c.op("MUL", [centred, centred], shape, dtype, name=f"{name}_squared",
                   options=c.graph.options("MulOptions", fusedActivationFunction=NONE))
    variance = c.op("MEAN", [squared, axes], reduced, dtype, name=f"{name}_variance", options=keep)
    shifted = c.op("ADD", [variance, c.scalar(epsilon, dtype)], reduced, dtype, name=f"{name}_variance_eps",
                   options=c.graph.options("AddOptions", fusedActivationFunction=NONE))
    inverse = c.op("RSQRT", [shifted], reduced, dtype, name=f"{name}_inverse_std")
    steps: list[tuple[str, int]] = [("MUL", inverse)]
    scale_data = c.constant(scale)
    if scale_data is None or not np.all(scale_data == 1):
        steps.append(("MUL", c.onnx_layout(scale)))
    bias_data = c.constant(bias) if bias is not None else None
    if bias is not None and (bias_data is None or np.any(bias_data != 0)):
        steps.append(("ADD", c.onnx_layout(bias)))
    current = centred
    for index, (builtin, operand) in enumerate(steps):
        options = c.graph.options(f"{builtin.title()}Options", fusedActivationFunction=NONE)
        if index == len(steps) - 1:
            c.graph.add_operator(builtin, [current, operand], [c.output(node.outputs[0])], options)
        else:
            current = c.op(builtin, [current, operand], shape, dtype, name=f"{name}_step{index}", options=options)


CONVERTERS = {
    "ReduceMean": _reduce("MEAN"),
    "ReduceSum": _reduce("SUM"),
    "ReduceMax": _reduce("REDUCE_MAX"),
    "ReduceMin": _reduce("REDUCE_MIN"),
    "ReduceProd": _reduce("REDUCE_PROD"),
    "ReduceL1": _reduce("SUM", before=("ABS",)),
    "ReduceL2": _reduce("SUM", before=("SQUARE",), after="SQRT"),
    "ReduceSumSquare": _reduce("SUM", before=("SQUARE",)),
    "ReduceLogSum": _reduce("SUM", after="LOG"),
    "ReduceLogSumExp": reduce_log_sum_exp,
    "ArgMax": _arg("ARG_MAX", "ArgMaxOptions"),
    "ArgMin": _arg("ARG_MIN", "ArgMinOptions"),
    "LayerNormalization": layer_normalization,
}
