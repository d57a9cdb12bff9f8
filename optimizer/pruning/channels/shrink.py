"""Physically remove channels: rewrite every weight, attribute and size that names them, then re-infer shapes.

The masks come from `ChannelGraph.keep_masks`: value name -> which of its channels stay. Only nodes the
dependency analysis accepted can touch a value that loses channels; each rewrites its own constants:

- Conv: weight rows (output channels) and bias; weight columns (input channels), or, depthwise, the group count.
- Gemm / MatMul on [batch, features]: weight rows or columns by `transB`, and the bias.
- BatchNormalization / InstanceNormalization: their per-channel parameters.
- Elementwise ops: a constant operand with a per-channel axis ([1, C, 1, 1], [C, 1, 1]) is sliced along it.
- Split on axis 1: its sizes (input or attribute), one per output.
Concat, pooling, Resize and activations need nothing: their channel count follows their inputs.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import onnx_ir as ir

from optimizer.ir import clear_intermediate_shapes, infer_shapes
from optimizer.pruning.channels.constants import attribute_int, constant_array, replace_constant
from optimizer.pruning.channels.groups import ELEMENTWISE, PASS_THROUGH, PER_CHANNEL_INPUTS


def shrink(model: ir.Model, masks: Mapping[str, np.ndarray]) -> int:
    """Remove the channels whose mask is False; returns how many nodes were rewritten."""
    rewritten = 0
    for node in list(model.graph):
        touched = [v for v in (*node.inputs, *node.outputs) if v is not None and v.name in masks]
        if not touched:
            continue
        rewrite = _REWRITES.get(node.op_type)
        if rewrite is None:
            if node.op_type in PASS_THROUGH or node.op_type == "Concat":
                continue
            raise RuntimeError(f"channel pruning reached {node.op_type} '{node.name}', which it cannot rewrite")
        rewrite(node, masks)
        rewritten += 1
    clear_intermediate_shapes(model)
    infer_shapes(model)
    return rewritten


def _mask(masks: Mapping[str, np.ndarray], value: ir.Value | None) -> np.ndarray | None:
    return None if value is None else masks.get(value.name)


def _conv(node: ir.Node, masks: Mapping[str, np.ndarray]) -> None:
    weight = node.inputs[1].const_value.numpy()
    rows, columns = _mask(masks, node.outputs[0]), _mask(masks, node.inputs[0])
    groups = attribute_int(node, "group", 1)
    if rows is not None:
        weight = weight[rows]
        if len(node.inputs) > 2 and node.inputs[2] is not None:
            replace_constant(node, 2, np.ascontiguousarray(node.inputs[2].const_value.numpy()[rows]))
    if groups > 1:
        # Depthwise: the input and output channels are the same unit, so the group count is the kept count.
        node.attributes["group"] = ir.AttrInt64("group", int(weight.shape[0]))
    elif columns is not None:
        weight = weight[:, columns]
    replace_constant(node, 1, np.ascontiguousarray(weight))


def _dense(node: ir.Node, masks: Mapping[str, np.ndarray]) -> None:
    weight = node.inputs[1].const_value.numpy()
    rows, columns = _mask(masks, node.outputs[0]), _mask(masks, node.inputs[0])
    transposed = node.op_type == "Gemm" and attribute_int(node, "transB", 0)
    if transposed:
        weight = weight.T
    if columns is not None:
        weight = weight[columns]
    if rows is not None:
        weight = weight[:, rows]
        bias = node.inputs[2] if node.op_type == "Gemm" and len(node.inputs) > 2 else None
        if bias is not None and bias.const_value.numpy().shape[-1:] == (len(rows),):
            replace_constant(node, 2, np.ascontiguousarray(bias.const_value.numpy()[..., rows]))
    replace_constant(node, 1, np.ascontiguousarray(weight.T if transposed else weight))


def _per_channel_parameters(node: ir.Node, masks: Mapping[str, np.ndarray]) -> None:
    keep = _mask(masks, node.outputs[0])
    if keep is None:
        return
    for index in PER_CHANNEL_INPUTS[node.op_type]:
        if index < len(node.inputs) and node.inputs[index] is not None:
            replace_constant(node, index, np.ascontiguousarray(constant_array(node.inputs[index])[keep]))


def _elementwise(node: ir.Node, masks: Mapping[str, np.ndarray]) -> None:
    keep = _mask(masks, node.outputs[0])
    if keep is None:
        return
    rank = len(node.outputs[0].shape)
    for index, x in enumerate(node.inputs):
        array = constant_array(x)
        if array is None:
            continue
        axis = 1 - (rank - array.ndim)
        if axis >= 0 and array.shape[axis] == len(keep) and len(keep) > 1:
            replace_constant(node, index, np.ascontiguousarray(np.compress(keep, array, axis=axis)))


def _split(node: ir.Node, masks: Mapping[str, np.ndarray]) -> None:
    x = node.inputs[0]
    if attribute_int(node, "axis", 0) % len(x.shape) != 1:
        return
    sizes = []
    for y in node.outputs:
        keep = _mask(masks, y)
        sizes.append(int(keep.sum()) if keep is not None else int(y.shape[1]))
    if "split" in node.attributes:  # opset < 13
        node.attributes["split"] = ir.AttrInt64s("split", sizes)
        return
    # From opset 13 the sizes are an input; an equal split (no sizes, or opset 18's num_outputs) may no longer
    # be equal, so it always gets explicit sizes.
    node.attributes.pop("num_outputs", None)
    replace_constant(node, 1, np.array(sizes, dtype=np.int64), suffix="sizes")


_REWRITES = {
    "Conv": _conv,
    "Gemm": _dense,
    "MatMul": _dense,
    "Split": _split,
    **{op: _per_channel_parameters for op in PER_CHANNEL_INPUTS},
    **{op: _elementwise for op in ELEMENTWISE},
}
