"""Ops that move data rather than compute it: concatenation, splitting, slicing, reshaping, transposing,
padding, resizing, gathering, casting, selecting, and Softmax (which needs its axis last).

Ops that only index along an axis (Concat, Split, Slice, Pad, Softmax) run in the layout their input is
already in, with the axis remapped; ops whose meaning depends on the element order (Reshape, Flatten) run in
ONNX's layout. A Transpose of an NHWC value is folded into one permutation of the NHWC tensor, so the
NCHW->NHWC transposes some exporters write cancel out.
"""

from __future__ import annotations

import numpy as np
import onnx_ir as ir

from optimizer.backends.litert.convert import TO_NHWC, GraphConverter, Layout, Placed


def nhwc_axis(axis: int, rank: int, layout: Layout) -> int:
    """ONNX axis -> the axis of the TFLite tensor in `layout`."""
    axis = axis % rank
    return TO_NHWC.index(axis) if layout == "nhwc" and rank == 4 else axis


def _shared_layout(c: GraphConverter, values: list[ir.Value]) -> Layout:
    activations = [v for v in values if c.constant(v) is None]
    if any(c.layout_of(v) == "nhwc" for v in activations) and all(c.rank(v) == 4 for v in values):
        return "nhwc"
    return "onnx"


def concat(c: GraphConverter, node: ir.Node) -> None:
    values = [v for v in node.inputs if v is not None and 0 not in c.shape(v)]
    output = node.outputs[0]
    layout = _shared_layout(c, values)
    axis = nhwc_axis(node.attributes.get_int("axis"), c.rank(output), layout)
    inputs = [c.in_layout(v, layout) for v in values]
    c.graph.add_operator("CONCATENATION", inputs, [c.output(output, layout)],
                         c.graph.options("ConcatenationOptions", axis=axis))


def split(c: GraphConverter, node: ir.Node) -> None:
    x = node.inputs[0]
    shape = c.shape(x)
    axis = node.attributes.get_int("axis", 0) % len(shape)
    sizes = c.constant(node.inputs[1]) if len(node.inputs) > 1 and node.inputs[1] is not None else None
    if sizes is None and node.attributes.get("split") is not None:
        sizes = np.array(node.attributes.get_ints("split"))
    if sizes is None:
        sizes = np.array([c.shape(out)[axis] for out in node.outputs])
    layout = c.layout_of(x)
    inputs = [c.placed(x).tensor, c.int32(sizes), c.int32(nhwc_axis(axis, len(shape), layout))]
    outputs = [c.output(out, layout) for out in node.outputs]
    c.graph.add_operator("SPLIT_V", inputs, outputs, c.graph.options("SplitVOptions", numSplits=len(outputs)))


def slice_(c: GraphConverter, node: ir.Node) -> None:
    x = node.inputs[0]
    shape = c.shape(x)
    starts, ends = c.constant(node.inputs[1]), c.constant(node.inputs[2])
    axes = c.constant(node.inputs[3]) if len(node.inputs) > 3 and node.inputs[3] is not None else None
    steps = c.constant(node.inputs[4]) if len(node.inputs) > 4 and node.inputs[4] is not None else None
    if starts is None or ends is None or (len(node.inputs) > 3 and node.inputs[3] is not None and axes is None) \
            or (len(node.inputs) > 4 and node.inputs[4] is not None and steps is None):
        raise ValueError("Slice starts, ends, axes and steps must be constant")
    axes = range(len(starts)) if axes is None else axes
    steps = np.ones(len(starts), dtype=np.int64) if steps is None else steps
    begin, end, stride = [0] * len(shape), list(shape), [1] * len(shape)
    for start, stop, axis, step in zip(starts, ends, axes, steps):
        axis = int(axis) % len(shape)
        extent = shape[axis]
        # ONNX clamps out-of-range bounds; TFLite's STRIDED_SLICE takes in-range ones (a negative stop of -1
        # for "before the first element" is expressed through end_mask-free clamping to -extent-1 -> use masks).
        begin[axis], end[axis], stride[axis] = _clamped(int(start), int(stop), int(step), extent)
    layout = c.layout_of(x)
    if layout == "nhwc" and len(shape) == 4:
        begin, end, stride = ([values[i] for i in TO_NHWC] for values in (begin, end, stride))
    end_mask = sum(1 << i for i, value in enumerate(end) if value is None)
    end = [0 if value is None else value for value in end]
    c.graph.add_operator("STRIDED_SLICE", [c.placed(x).tensor, c.int32(begin), c.int32(end), c.int32(stride)],
                         [c.output(node.outputs[0], layout)],
                         c.graph.options("StridedSliceOptions", endMask=end_mask))


def _clamped(start: int, stop: int, step: int, extent: int) -> tuple[int, int | None, int]:
    """ONNX Slice bounds on one axis as STRIDED_SLICE bounds (None: to the end, by end_mask)."""
    if step > 0:
        start = min(max(start + extent if start < 0 else start, 0), extent)
        stop = min(max(stop + extent if stop < 0 else stop, 0), extent)
        return start, stop, step
    start = min(max(start + extent if start < 0 else start, -1), extent - 1)
    stop = stop + extent if stop < 0 else stop
    return start, (None if stop < 0 else min(stop, extent - 1)), step


def reshape(c: GraphConverter, node: ir.Node) -> None:
    """Reshape, Flatten, Squeeze, Unsqueeze: all a RESHAPE to the (static) output shape, in ONNX's layout."""
    x, output = node.inputs[0], node.outputs[0]
    shape = c.shape(output)
    c.graph.add_operator("RESHAPE", [c.onnx_layout(x), c.int32(shape)], [c.output(output)])


def transpose(c: GraphConverter, node: ir.Node) -> None:
    x, output = node.inputs[0], node.outputs[0]
    rank = c.rank(x)
    perm = list(node.attributes.get_ints("perm", list(reversed(range(rank)))))
    placed = c.placed(x)
    if placed.layout == "nhwc" and rank == 4:
        # The TFLite tensor is x.transpose(TO_NHWC); y = x.transpose(perm) is that tensor permuted by:
        perm = [TO_NHWC.index(axis) for axis in perm]
    if perm == list(range(rank)):
        c.alias(output, Placed(placed.tensor, "onnx"))
        return
    c.graph.add_operator("TRANSPOSE", [placed.tensor, c.int32(perm)], [c.output(output)])
    c.transposed(output, placed.tensor, tuple(perm))


def softmax(c: GraphConverter, node: ir.Node) -> None:
    x, output = node.inputs[0], node.outputs[0]
    rank = c.rank(x)
    axis = node.attributes.get_int("axis", -1) % rank
    layout = c.layout_of(x)
    if rank == 4 and axis == 1:
        layout = "nhwc"  # channels are NHWC's last axis: one transpose in (often folded), and convolutions follow
    tflite_axis = nhwc_axis(axis, rank, layout)
    tensor = c.in_layout(x, layout)
    if tflite_axis == rank - 1:
        c.graph.add_operator("SOFTMAX", [tensor], [c.output(output, layout)],
                             c.graph.options("SoftmaxOptions", beta=1.0))
        return
    # TFLite's SOFTMAX normalizes the last axis: swap the axis there and back.
    perm = list(range(rank))
    perm[tflite_axis], perm[-1] = perm[-1], perm[tflite_axis]
    shape = c.graph.tensors[tensor].shape
    swapped_shape = [shape[i] for i in perm]
    swapped = c.graph.add_tensor(f"{node.name}_swapped", swapped_shape, c.dtype(x))
    normalized = c.graph.add_tensor(f"{node.name}_normalized", swapped_shape, c.dtype(x))
    c.graph.add_operator("TRANSPOSE", [tensor, c.int32(perm)], [swapped])
    c.graph.add_operator("SOFTMAX", [swapped], [normalized], c.graph.options("SoftmaxOptions", beta=1.0))
    c.graph.add_operator("TRANSPOSE", [normalized, c.int32(perm)], [c.output(output, layout)])


def resize(c: GraphConverter, node: ir.Node) -> None:
    x, output = node.inputs[0], node.outputs[0]
    if c.rank(x) != 4:
        raise ValueError("only 4-D (image) Resize is converted")
    n, ch, _, _ = c.shape(x)
    on, och, oh, ow = c.shape(output)
    if (on, och) != (n, ch):
        raise ValueError("Resize of the batch or channel axis is not converted")
    mode = node.attributes.get_string("mode", "nearest")
    transform = node.attributes.get_string("coordinate_transformation_mode", "half_pixel")
    size = c.int32([oh, ow])
    if mode == "nearest":
        nearest = node.attributes.get_string("nearest_mode", "round_prefer_floor")
        if transform == "asymmetric" and nearest == "floor":
            flags = {"alignCorners": False, "halfPixelCenters": False}
        elif transform in ("half_pixel", "pytorch_half_pixel") and nearest == "round_prefer_ceil":
            flags = {"alignCorners": False, "halfPixelCenters": True}
        elif transform == "align_corners" and nearest == "round_prefer_ceil":
            flags = {"alignCorners": True, "halfPixelCenters": False}
        else:
            raise ValueError(f"nearest Resize with {transform} coordinates and {nearest} rounding has no TFLite "
                             "equivalent")
        c.graph.add_operator("RESIZE_NEAREST_NEIGHBOR", [c.nhwc(x), size], [c.output(output, "nhwc")],
                             c.graph.options("ResizeNearestNeighborOptions", **flags), version=3)
    elif mode == "linear":
        if transform in ("half_pixel", "pytorch_half_pixel"):
            flags = {"alignCorners": False, "halfPixelCenters": True}
        elif transform == "align_corners":
            flags = {"alignCorners": True, "halfPixelCenters": False}
        elif transform == "asymmetric":
            flags = {"alignCorners": False, "halfPixelCenters": False}
        else:
            raise ValueError(f"linear Resize with {transform} coordinates has no TFLite equivalent")
        if transform == "pytorch_half_pixel" and 1 in (oh, ow):
            raise ValueError("pytorch_half_pixel Resize to a size of 1 has no TFLite equivalent")
        c.graph.add_operator("RESIZE_BILINEAR", [c.nhwc(x), size], [c.output(output, "nhwc")],
                             c.graph.options("ResizeBilinearOptions", **flags), version=3)
    else:
        raise ValueError(f"Resize mode '{mode}' is not converted")


def pad(c: GraphConverter, node: ir.Node) -> None:
    x, output = node.inputs[0], node.outputs[0]
    if node.attributes.get_string("mode", "constant") != "constant":
        raise ValueError(f"Pad mode '{node.attributes.get_string('mode')}' is not converted")
    pads = c.constant(node.inputs[1])
    if pads is None:
        raise ValueError("pads are not constant")
    rank = c.rank(x)
    axes = c.constant(node.inputs[3]) if len(node.inputs) > 3 and node.inputs[3] is not None else None
    axes = list(range(rank)) if axes is None else [int(a) % rank for a in axes]
    widths = [[0, 0] for _ in range(rank)]
    for i, axis in enumerate(axes):
        widths[axis] = [int(pads[i]), int(pads[i + len(axes)])]
    if any(w < 0 for pair in widths for w in pair):
        raise ValueError("negative pads (cropping) are not converted")
    layout = c.layout_of(x)
    if layout == "nhwc" and rank == 4:
        widths = [widths[i] for i in TO_NHWC]
    value = c.constant(node.inputs[2]) if len(node.inputs) > 2 and node.inputs[2] is not None else None
    inputs = [c.placed(x).tensor, c.int32(widths)]
    if value is not None and float(value) != 0.0:
        inputs.append(c.graph.add_constant(f"{node.name}_value", np.asarray(value, dtype=c.dtype(x))))
    c.graph.add_operator("PADV2" if len(inputs) == 3 else "PAD", inputs, [c.output(output, layout)])


def identity(c: GraphConverter, node: ir.Node) -> None:
    c.alias(node.outputs[0], c.placed(node.inputs[0]))


def cast(c: GraphConverter, node: ir.Node) -> None:
    x = node.inputs[0]
    layout = c.layout_of(x)
    c.graph.add_operator("CAST", [c.placed(x).tensor], [c.output(node.outputs[0], layout)])


def gather(c: GraphConverter, node: ir.Node) -> None:
    x, indices = node.inputs[0], node.inputs[1]
    axis = node.attributes.get_int("axis", 0) % c.rank(x)
    constant = c.constant(indices)
    if constant is not None:
        # TFLite's GATHER takes no negative indices; ONNX counts them from the end.
        index_tensor = c.graph.add_constant(f"{node.name}_indices",
                                            (constant % c.shape(x)[axis]).astype(np.int32))
    else:
        index_tensor = c.onnx_layout(indices)
    c.graph.add_operator("GATHER", [c.onnx_layout(x), index_tensor], [c.output(node.outputs[0])],
                         c.graph.options("GatherOptions", axis=axis))


def where(c: GraphConverter, node: ir.Node) -> None:
    inputs = [c.onnx_layout(v) for v in node.inputs]
    c.graph.add_operator("SELECT_V2", inputs, [c.output(node.outputs[0])])


CONVERTERS = {
    "Concat": concat,
    "Split": split,
    "Slice": slice_,
    "Reshape": reshape,
    "Flatten": reshape,
    "Squeeze": reshape,
    "Unsqueeze": reshape,
    "Transpose": transpose,
    "Softmax": softmax,
    "Resize": resize,
    "Pad": pad,
    "Identity": identity,
    "Cast": cast,
    "Gather": gather,
    "Where": where,
}
