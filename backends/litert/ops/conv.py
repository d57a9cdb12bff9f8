"""Conv -> CONV_2D (grouped too) or DEPTHWISE_CONV_2D, ConvTranspose -> TRANSPOSE_CONV; NHWC in and out,
weights permuted once at conversion.

ONNX pads are explicit; TFLite has SAME and VALID. Pads equal to what SAME computes become SAME, zero pads
VALID, and any other pads an explicit PAD (zeros) in front of a VALID convolution. A transposed convolution
crops its full output instead: crops that SAME or VALID make are written as such, others as a STRIDED_SLICE of
the full output.
"""

from __future__ import annotations

import math

import numpy as np
import onnx_ir as ir

from optimizer.backends.litert.convert import GraphConverter


def spatial_attributes(node: ir.Node, kernel: tuple[int, int], size: tuple[int, int]
                       ) -> tuple[list[int], list[int], list[int]]:
    """(strides, dilations, pads as [top, left, bottom, right]) of a 2-D Conv or pool on a `size` input."""
    strides = list(node.attributes.get_ints("strides", [1, 1]))
    dilations = list(node.attributes.get_ints("dilations", [1, 1]))
    pads = list(node.attributes.get_ints("pads", [0, 0, 0, 0]))
    if len(strides) != 2 or len(dilations) != 2 or len(pads) != 4:
        raise ValueError("only 2-D kernels are converted")
    auto_pad = node.attributes.get_string("auto_pad", "NOTSET")
    if auto_pad == "VALID":
        pads = [0, 0, 0, 0]
    elif auto_pad == "SAME_UPPER":  # the extra pixel after, as TFLite's SAME
        pads = same_pads(size, kernel, strides, dilations)
    elif auto_pad == "SAME_LOWER":
        upper = same_pads(size, kernel, strides, dilations)
        pads = upper[2:] + upper[:2]
    return strides, dilations, pads


def same_pads(size: tuple[int, int], kernel: tuple[int, int], strides, dilations) -> list[int]:
    """The [top, left, bottom, right] pads TFLite's SAME uses (the extra pixel goes after)."""
    before, after = [], []
    for extent, k, s, d in zip(size, kernel, strides, dilations):
        total = max((math.ceil(extent / s) - 1) * s + (k - 1) * d + 1 - extent, 0)
        before.append(total // 2)
        after.append(total - total // 2)
    return before + after


def padded_input(c: GraphConverter, node: ir.Node, x: ir.Value, pads: list[int], kernel, strides, dilations,
                 *, pad_value: float = 0.0) -> tuple[int, str]:
    """The NHWC input tensor and the TFLite padding (SAME or VALID) that together give `pads`."""
    tensor = c.nhwc(x)
    n, ch, h, w = c.shape(x)
    if not any(pads):
        return tensor, "VALID"
    if pads == same_pads((h, w), kernel, strides, dilations):
        return tensor, "SAME"
    if any(p < 0 for p in pads):
        raise ValueError(f"negative pads {pads}")
    top, left, bottom, right = pads
    padded = c.graph.add_tensor(f"{node.name}_padded", (n, h + top + bottom, w + left + right, ch), c.dtype(x))
    paddings = c.int32([[0, 0], [top, bottom], [left, right], [0, 0]])
    if pad_value == 0.0:
        c.graph.add_operator("PAD", [tensor, paddings], [padded])
    else:
        fill = c.graph.add_constant(f"{node.name}_pad_value", np.array(pad_value, dtype=c.dtype(x)))
        c.graph.add_operator("PADV2", [tensor, paddings, fill], [padded])
    return padded, "VALID"


def conv(c: GraphConverter, node: ir.Node) -> None:
    x, w = node.inputs[0], node.inputs[1]
    b = node.inputs[2] if len(node.inputs) > 2 else None
    weights = c.constant(w)
    if weights is None:
        raise ValueError("weights are not constant")
    if weights.ndim != 4:
        raise ValueError(f"{weights.ndim - 2}-D convolution; only 2-D convolutions are converted")
    group = node.attributes.get_int("group", 1)
    out_channels, in_per_group, kh, kw = weights.shape
    in_channels = in_per_group * group
    strides, dilations, pads = spatial_attributes(node, (kh, kw), tuple(c.shape(x)[2:]))
    tensor, padding = padded_input(c, node, x, pads, (kh, kw), strides, dilations)
    bias = c.constant(b) if b is not None else np.zeros(out_channels, dtype=weights.dtype)
    if bias is None:
        raise ValueError("bias is not constant")
    fb_padding = getattr(c.graph.fb.Padding, padding)
    common = {"padding": fb_padding, "strideH": strides[0], "strideW": strides[1],
              "dilationHFactor": dilations[0], "dilationWFactor": dilations[1]}
    bias_tensor = c.graph.add_constant(f"{node.name}_bias", bias.astype(weights.dtype))
    output = c.output(node.outputs[0], "nhwc")
    if group > 1 and group == in_channels and out_channels % in_channels == 0:
        kernel = c.graph.add_constant(f"{node.name}_weights", weights.transpose(1, 2, 3, 0))  # -> 1HWO
        c.graph.add_operator("DEPTHWISE_CONV_2D", [tensor, kernel, bias_tensor], [output],
                             c.graph.options("DepthwiseConv2DOptions", depthMultiplier=out_channels // in_channels,
                                             **common), version=2)
    else:
        # A grouped convolution is CONV_2D with filters of in_channels / group inputs (XNNPACK runs it too).
        kernel = c.graph.add_constant(f"{node.name}_weights", weights.transpose(0, 2, 3, 1))  # OIHW -> OHWI
        c.graph.add_operator("CONV_2D", [tensor, kernel, bias_tensor], [output],
                             c.graph.options("Conv2DOptions", **common), version=1 if group == 1 else 6)


def transpose_crops(node: ir.Node, size: tuple[int, int], kernel: tuple[int, int], strides: list[int],
                    output_size: tuple[int, int]) -> list[tuple[int, int]]:
    """(before, after) rows and columns that ONNX's ConvTranspose removes from the full output
    ((size - 1) * stride + kernel); a negative `after` is output_padding beyond the pads."""
    pads = list(node.attributes.get_ints("pads", [0, 0, 0, 0]))
    output_padding = list(node.attributes.get_ints("output_padding", [0, 0]))
    auto_pad = node.attributes.get_string("auto_pad", "NOTSET")
    crops = []
    for i in range(2):
        full = (size[i] - 1) * strides[i] + kernel[i]
        total = full + output_padding[i] - output_size[i]
        if node.attributes.get("output_shape") is not None or auto_pad in ("SAME_UPPER", "SAME_LOWER"):
            # ONNX splits the padding itself: the larger half after for SAME_UPPER, before otherwise.
            before = total // 2 if auto_pad == "SAME_UPPER" else total - total // 2
        elif auto_pad == "VALID":
            before = 0
        else:
            before = pads[i]
        crops.append((before, full - output_size[i] - before))
    return crops


def conv_transpose(c: GraphConverter, node: ir.Node) -> None:
    x, w = node.inputs[0], node.inputs[1]
    b = node.inputs[2] if len(node.inputs) > 2 else None
    weights = c.constant(w)
    if weights is None or weights.ndim != 4:
        raise ValueError("only 2-D transposed convolutions with constant weights are converted")
    if node.attributes.get_int("group", 1) != 1:
        raise ValueError("grouped ConvTranspose is not converted")
    if any(d != 1 for d in node.attributes.get_ints("dilations", [1, 1])):
        raise ValueError("dilated ConvTranspose is not converted")
    _, out_channels, kh, kw = weights.shape
    strides = list(node.attributes.get_ints("strides", [1, 1]))
    n, oc, oh, ow = c.shape(node.outputs[0])
    _, _, h, w_in = c.shape(x)
    crops = transpose_crops(node, (h, w_in), (kh, kw), strides, (oh, ow))
    if any(after < 0 for _, after in crops):
        raise ValueError("ConvTranspose output_padding beyond the pads (rows with only the bias) is not converted")
    full = ((h - 1) * strides[0] + kh, (w_in - 1) * strides[1] + kw)
    # TFLite's TRANSPOSE_CONV computes the full output and crops it to the output shape it is given: VALID
    # crops nothing, SAME the smaller half of (full - output) before and the rest after, when the output has
    # ceil(output / stride) == input rows; any other crop is a slice of the full output.
    if all(before == 0 and after == 0 for before, after in crops):
        padding, size = "VALID", (oh, ow)
    elif all(before == (before + after) // 2 for before, after in crops) and (
            -(-oh // strides[0]), -(-ow // strides[1])) == (h, w_in):
        padding, size = "SAME", (oh, ow)
    else:
        padding, size = "VALID", full
    kernel = c.graph.add_constant(f"{node.name}_weights", weights.transpose(1, 2, 3, 0))  # IOHW -> OHWI
    bias = c.constant(b) if b is not None else np.zeros(out_channels, dtype=weights.dtype)
    if bias is None:
        raise ValueError("bias is not constant")
    output = c.output(node.outputs[0], "nhwc")
    target = output if size == (oh, ow) else c.graph.add_tensor(f"{node.name}_full", (n, *size, oc), c.dtype(x))
    inputs = [c.int32([n, *size, oc]), kernel, c.nhwc(x), c.graph.add_constant(f"{node.name}_bias", bias)]
    c.graph.add_operator("TRANSPOSE_CONV", inputs, [target],
                         c.graph.options("TransposeConvOptions", padding=getattr(c.graph.fb.Padding, padding),
                                         strideH=strides[0], strideW=strides[1]), version=4)
    if target != output:
        (top, _), (left, _) = crops
        c.graph.add_operator("STRIDED_SLICE", [target, c.int32([0, top, left, 0]),
                                               c.int32([n, top + oh, left + ow, oc]), c.int32([1, 1, 1, 1])],
                             [output], c.graph.options("StridedSliceOptions"))


CONVERTERS = {"Conv": conv, "ConvTranspose": conv_transpose}
