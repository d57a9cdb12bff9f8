"""Parameters and FLOPs of a model's compute layers, dense and counting only nonzero weights.

Only the layers pruning touches are counted (Conv, ConvTranspose, MatMul and Gemm whose weight is a constant):
they hold nearly all the parameters and FLOPs of the models hwopt prunes, and counting the rest (elementwise
ops, norms) would blur the before/after comparison the report is for. Shapes come from shape inference, so
FLOPs need the model's input shapes fixed (or at least inferable); a layer whose output shape is unknown adds
its parameters but no FLOPs.
"""

from __future__ import annotations

import math

import numpy as np
import onnx_ir as ir

from optimizer.ir import all_nodes, infer_shapes
from optimizer.pruning.report import GraphCost

WEIGHTED_OPS = ("Conv", "ConvTranspose", "MatMul", "Gemm")


def constant_weight(node: ir.Node) -> ir.Value | None:
    """The constant weight input of a compute node (input 1), or None when it is computed at run time."""
    if node.op_type not in WEIGHTED_OPS or len(node.inputs) < 2 or node.inputs[1] is None:
        return None
    weight = node.inputs[1]
    return weight if weight.const_value is not None else None


def graph_cost(model: ir.Model) -> GraphCost:
    infer_shapes(model)
    parameters = nonzero_parameters = flops = nonzero_flops = 0
    for node in all_nodes(model):
        weight = constant_weight(node)
        if weight is None:
            continue
        array = weight.const_value.numpy()
        size, nonzero = array.size, int(np.count_nonzero(array))
        parameters += size
        nonzero_parameters += nonzero
        layer_flops = _dense_flops(node, array.shape)
        flops += layer_flops
        nonzero_flops += round(layer_flops * nonzero / size) if size else 0
    return GraphCost(parameters, nonzero_parameters, flops, nonzero_flops)


def _dense_flops(node: ir.Node, weight_shape: tuple[int, ...]) -> int:
    """2 x multiply-adds; every weight element meets each output position (Conv) or each row (MatMul) once."""
    output_shape = _static_shape(node.outputs[0])
    if output_shape is None:
        return 0
    weight_elements = math.prod(weight_shape)
    if node.op_type == "Conv":
        # Weight [C_out, C_in / groups, kh, kw]: each output element uses C_in / groups * kh * kw weights.
        return 2 * weight_elements * math.prod(output_shape[2:]) * output_shape[0]
    if node.op_type == "ConvTranspose":
        input_shape = _static_shape(node.inputs[0])
        return 0 if input_shape is None else 2 * weight_elements * math.prod(input_shape[2:]) * input_shape[0]
    # MatMul / Gemm: each of the output's rows (all dims but the last) uses the whole weight once.
    return 2 * weight_elements * math.prod(output_shape[:-1])


def _static_shape(value: ir.Value) -> tuple[int, ...] | None:
    shape = value.shape
    if shape is None or not all(isinstance(dim, int) for dim in shape):
        return None
    return tuple(shape)
