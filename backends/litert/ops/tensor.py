"""Ops that move data rather than compute it: concatenation, splitting, slicing, reshaping, transposing,
padding, resizing, gathering, broadcasting, tiling, casting, selecting, and Softmax (which needs its axis last).

Ops that only index along an axis (Concat, Split, Slice, Pad, Gather, Tile, Expand, Softmax) run in the layout
their input is already in, with the axis remapped; ops whose meaning depends on the element order (Reshape,
Flatten) run in ONNX's layout. A Transpose of an NHWC value is folded into one permutation of the NHWC tensor,
so the NCHW->NHWC transposes some exporters write cancel out.
"""

from __future__ import annotations

import numpy as np
import onnx_ir as ir

from optimizer.backends.litert.convert import TO_NHWC, GraphConverter, Layout, Placed
from optimizer.backends.litert.ops.elementwise import binary_layout, operand


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
    """ONNX Slice bounds on one axis as STRIDED_SLICE bounds (None: to the very first element, by end_mask, since
    TFLite would read an end of -1 as the last element)."""
    start = start + extent if start < 0 else start
    stop = stop + extent if stop < 0 else stop
    if step > 0:
        return min(max(start, 0), extent), min(max(stop, 0), extent), step
    # ONNX clamps a backwards slice's start into [0, extent - 1], its end into [-1, extent - 1].
    return min(max(start, 0), extent - 1), (None if stop < 0 else min(stop, extent - 1)), step


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


def _softmax(builtin: str):
    """SOFTMAX or LOG_SOFTMAX, which normalize the last axis: another axis is swapped there and back. Before
    opset 13 ONNX normalized the flattened [axis:] block as one, which takes a reshape instead."""

    def convert(c: GraphConverter, node: ir.Node) -> None:
        x, output = node.inputs[0], node.outputs[0]
        rank = c.rank(x)
        axis = node.attributes.get_int("axis", -1 if c.opset >= 13 else 1) % rank
        options = c.graph.options("SoftmaxOptions", beta=1.0) if builtin == "SOFTMAX" else None
        dtype = c.dtype(x)
        if c.opset < 13 and axis != rank - 1:
            shape = c.shape(x)
            block = (int(np.prod(shape[:axis], dtype=np.int64)), int(np.prod(shape[axis:], dtype=np.int64)))
            flat = c.op("RESHAPE", [c.onnx_layout(x), c.int32(block)], block, dtype, name=f"{node.name}_2d")
            normalized = c.op(builtin, [flat], block, dtype, name=f"{node.name}_normalized", options=options)
            c.graph.add_operator("RESHAPE", [normalized, c.int32(shape)], [c.output(output)])
            return
        layout = c.layout_of(x)
        if rank == 4 and axis == 1:
            layout = "nhwc"  # channels are NHWC's last axis: one transpose in (often folded), and convolutions follow
        tflite_axis = nhwc_axis(axis, rank, layout)
        tensor = c.in_layout(x, layout)
        if tflite_axis == rank - 1:
            c.graph.add_operator(builtin, [tensor], [c.output(output, layout)], options)
            return
        perm = list(range(rank))
        perm[tflite_axis], perm[-1] = perm[-1], perm[tflite_axis]
        shape = c.graph.tensors[tensor].shape
        swapped_shape = [shape[i] for i in perm]
        swapped = c.op("TRANSPOSE", [tensor, c.int32(perm)], swapped_shape, dtype, name=f"{node.name}_swapped")
        normalized = c.op(builtin, [swapped], swapped_shape, dtype, name=f"{node.name}_normalized",
                          options=options)
        c.graph.add_operator("TRANSPOSE", [normalized, c.int32(perm)], [c.output(output, layout)])

    return convert


def resize(c: GraphConverter, node: ir.Node) -> None:
    x, output = node.inputs[0], node.outputs[0]
    if c.rank(x) != 4:
        raise ValueError("only 4-D (image) Resize is converted")
    n, ch, _, _ = c.shape(x)
    on, och, oh, ow = c.shape(output)
    if (on, och) != (n, ch):
        raise ValueError("Resize of the batch or channel axis is not converted")
    mode = node.attributes.get_string("mode", "nearest")
    # Upsample (opset 7-9) and Resize-10 are asymmetric, and their nearest pixel is the floor when upsampling.
    legacy = node.op_type == "Upsample" or c.opset < 11
    if legacy and mode == "nearest" and (oh < c.shape(x)[2] or ow < c.shape(x)[3]):
        raise ValueError("nearest downsampling before opset 11 (rounding up) is not converted")
    transform = node.attributes.get_string("coordinate_transformation_mode",
                                           "asymmetric" if legacy else "half_pixel")
    if node.attributes.get_int("antialias", 0) and (oh < c.shape(x)[2] or ow < c.shape(x)[3]):
        raise ValueError("antialiased downsampling is not converted")
    _check_scales(c, node, transform)
    size = c.int32([oh, ow])
    if mode == "nearest":
        nearest = node.attributes.get_string("nearest_mode", "floor" if legacy else "round_prefer_floor")
        # Upsampling by whole factors never lands half-way between two pixels, so there the rounding is moot.
        whole = oh % c.shape(x)[2] == 0 and ow % c.shape(x)[3] == 0
        if transform == "asymmetric" and nearest == "floor":
            flags = {"alignCorners": False, "halfPixelCenters": False}
        elif transform in ("half_pixel", "pytorch_half_pixel") and (
                nearest == "round_prefer_ceil" or (nearest == "round_prefer_floor" and whole)):
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


def _check_scales(c: GraphConverter, node: ir.Node, transform: str) -> None:
    """TFLite maps coordinates by input / output size; ONNX by 1 / scale when scales are given. The two agree
    only when output = input x scale exactly (or with align_corners, which uses neither)."""
    if transform == "align_corners":
        return
    scales = node.attributes.get_floats("scales", None) if node.attributes.get("scales") is not None else None
    index = 1 if node.op_type == "Upsample" or c.opset < 11 else 2
    if scales is None and len(node.inputs) > index and node.inputs[index] is not None:
        scales = c.constant(node.inputs[index])
        if scales is not None and scales.size == 0:
            scales = None
    if scales is None:
        return
    in_shape, out_shape = c.shape(node.inputs[0]), c.shape(node.outputs[0])
    for extent, out, scale in zip(in_shape[2:], out_shape[2:], list(np.asarray(scales, dtype=float))[2:]):
        if out != extent * scale:
            raise ValueError(f"Resize by scale {scale:g} of {extent} pixels gives {out}, not {extent * scale:g}: "
                             "TFLite would map coordinates by the sizes, not the scale; give sizes instead")


def pad(c: GraphConverter, node: ir.Node) -> None:
    """Constant padding -> PAD or PADV2, reflect -> MIRROR_PAD; edge (replicate) has no TFLite op."""
    x, output = node.inputs[0], node.outputs[0]
    mode = node.attributes.get_string("mode", "constant")
    if mode not in ("constant", "reflect"):
        raise ValueError(f"Pad mode '{mode}' is not converted")
    rank = c.rank(x)
    if node.attributes.get("pads") is not None:  # opset < 11: pads and value are attributes
        pads = np.array(node.attributes.get_ints("pads"))
        value = np.asarray(node.attributes.get_float("value", 0.0))
        axes = None
    else:
        pads = c.constant(node.inputs[1])
        if pads is None:
            raise ValueError("pads are not constant")
        value = c.constant(node.inputs[2]) if len(node.inputs) > 2 and node.inputs[2] is not None else None
        if len(node.inputs) > 2 and node.inputs[2] is not None and value is None:
            raise ValueError("the pad value is not constant")
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
    inputs = [c.placed(x).tensor, c.int32(widths)]
    out = c.output(output, layout)
    if mode == "reflect":
        c.graph.add_operator("MIRROR_PAD", inputs, [out],
                             c.graph.options("MirrorPadOptions", mode=c.graph.fb.MirrorPadMode.REFLECT))
    elif value is not None and float(np.ravel(value)[0]) != 0.0:
        fill = c.graph.add_constant(f"{node.name}_value", np.asarray(value, dtype=c.dtype(x)).reshape(()))
        c.graph.add_operator("PADV2", [*inputs, fill], [out])
    else:
        c.graph.add_operator("PAD", inputs, [out])


def identity(c: GraphConverter, node: ir.Node) -> None:
    c.alias(node.outputs[0], c.placed(node.inputs[0]))


def cast(c: GraphConverter, node: ir.Node) -> None:
    x = node.inputs[0]
    if c.dtype(x) == c.dtype(node.outputs[0]):
        c.alias(node.outputs[0], c.placed(x))
        return
    layout = c.layout_of(x)
    c.graph.add_operator("CAST", [c.placed(x).tensor], [c.output(node.outputs[0], layout)])


def gather(c: GraphConverter, node: ir.Node) -> None:
    """GATHER along the (remapped) axis. Constant indices are made non-negative here; TFLite's GATHER refuses
    negative ones at run time, so computed indices must not be negative (embedding lookups never are). A
    scalar index gathers a one-element list and reshapes, TFLite's GATHER keeping the axis for a 0-D index."""
    x, indices, output = node.inputs[0], node.inputs[1], node.outputs[0]
    rank = c.rank(x)
    axis = node.attributes.get_int("axis", 0) % rank
    constant = c.constant(indices)
    scalar = c.rank(indices) == 0
    if constant is not None:
        positions = (constant.astype(np.int64) % c.shape(x)[axis]).astype(np.int32)
        index_tensor = c.graph.add_constant(f"{node.name}_indices", positions.reshape(-1) if scalar else positions)
    else:
        index_tensor = c.onnx_layout(indices)
        if scalar:
            index_tensor = c.op("RESHAPE", [index_tensor, c.int32([1])], (1,), c.dtype(indices),
                                name=f"{node.name}_index")
    # Gathering a 1-D list of channels (or rows, columns) of an NHWC value keeps it NHWC.
    layout: Layout = "nhwc" if c.layout_of(x) == "nhwc" and rank == 4 and c.rank(indices) == 1 else "onnx"
    options = c.graph.options("GatherOptions", axis=nhwc_axis(axis, rank, layout))
    if scalar:
        kept = tuple(1 if i == axis else d for i, d in enumerate(c.shape(x)))
        gathered = c.op("GATHER", [c.onnx_layout(x), index_tensor], kept, c.dtype(x), name=f"{node.name}_kept",
                        options=options)
        c.graph.add_operator("RESHAPE", [gathered, c.int32(c.shape(output))], [c.output(output)])
        return
    c.graph.add_operator("GATHER", [c.in_layout(x, layout), index_tensor], [c.output(output, layout)], options)


def where(c: GraphConverter, node: ir.Node) -> None:
    """SELECT_V2, which broadcasts all three operands as ONNX's Where does."""
    output = node.outputs[0]
    layout = binary_layout(c, list(node.inputs), output)
    rank = c.rank(output)
    c.graph.add_operator("SELECT_V2", [operand(c, v, layout, rank) for v in node.inputs],
                         [c.output(output, layout)])


def expand(c: GraphConverter, node: ir.Node) -> None:
    """BROADCAST_TO the static output shape (ONNX's Expand broadcasts both ways, so the output's shape is the
    one to reach)."""
    x, output = node.inputs[0], node.outputs[0]
    shape = c.shape(output)
    layout: Layout = "nhwc" if c.layout_of(x) == "nhwc" and c.rank(x) == 4 and len(shape) == 4 else "onnx"
    if tuple(c.shape(x)) == shape:
        c.alias(output, c.placed(x))
        return
    c.graph.add_operator("BROADCAST_TO", [c.in_layout(x, layout), c.int32(c.shape_in(shape, layout))],
                         [c.output(output, layout)], version=2)  # LiteRT registers BROADCAST_TO from version 2


def tile(c: GraphConverter, node: ir.Node) -> None:
    x, output = node.inputs[0], node.outputs[0]
    repeats = c.constant(node.inputs[1])
    if repeats is None:
        raise ValueError("repeats are not constant")
    layout = c.layout_of(x)
    repeats = [int(r) for r in repeats]
    if layout == "nhwc" and len(repeats) == 4:
        repeats = [repeats[i] for i in TO_NHWC]
    c.graph.add_operator("TILE", [c.placed(x).tensor, c.int32(repeats)], [c.output(output, layout)])


def _space_depth(builtin: str, options: str):
    """DepthToSpace (DCR, ONNX's default: TFLite's order) and SpaceToDepth, on NHWC."""

    def convert(c: GraphConverter, node: ir.Node) -> None:
        if node.attributes.get_string("mode", "DCR") != "DCR":
            raise ValueError("DepthToSpace mode CRD is not converted (TFLite's order is DCR)")
        block = node.attributes.get_int("blocksize")
        c.graph.add_operator(builtin, [c.nhwc(node.inputs[0])], [c.output(node.outputs[0], "nhwc")],
                             c.graph.options(options, blockSize=block))

    return convert


CONVERTERS = {
    "Concat": concat,
    "Split": split,
    "Slice": slice_,
    "Reshape": reshape,
    "Flatten": reshape,
    "Squeeze": reshape,
    "Unsqueeze": reshape,
    "Transpose": transpose,
    "Softmax": _softmax("SOFTMAX"),
    "LogSoftmax": _softmax("LOG_SOFTMAX"),
    "Resize": resize,
    "Upsample": resize,
    "Pad": pad,
    "Identity": identity,
    "Dropout": identity,
    "Cast": cast,
    "Gather": gather,
    "Where": where,
    "Expand": expand,
    "Tile": tile,
    "DepthToSpace": _space_depth("DEPTH_TO_SPACE", "DepthToSpaceOptions"),
    "SpaceToDepth": _space_depth("SPACE_TO_DEPTH", "SpaceToDepthOptions"),
}
