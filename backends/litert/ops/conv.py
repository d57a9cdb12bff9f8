"""Conv -> CONV_2D or DEPTHWISE_CONV_2D, NHWC in and out, weights permuted once at conversion.

ONNX pads are explicit; TFLite has SAME and VALID. Pads equal to what SAME computes become SAME, zero pads
VALID, and any other pads an explicit PAD (zeros) in front of a VALID convolution.
"""

from __future__ import annotations

import math

import numpy as np
import onnx_ir as ir

from optimizer.backends.litert.convert import GraphConverter


def spatial_attributes(node: ir.Node, kernel: tuple[int, int]) -> tuple[list[int], list[int], list[int]]:
    """(strides, dilations, pads as [top, left, bottom, right]) of a 2-D Conv or pool."""
    strides = list(node.attributes.get_ints("strides", [1, 1]))
    dilations = list(node.attributes.get_ints("dilations", [1, 1]))
    pads = list(node.attributes.get_ints("pads", [0, 0, 0, 0]))
    auto_pad = node.attributes.get_string("auto_pad", "NOTSET")
    if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        raise ValueError(f"auto_pad={auto_pad} is not converted; export with explicit pads")
    if auto_pad == "VALID":
        pads = [0, 0, 0, 0]
    if len(strides) != 2 or len(dilations) != 2 or len(pads) != 4:
        raise ValueError("only 2-D kernels are converted")
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
    strides, dilations, pads = spatial_attributes(node, (kh, kw))
    tensor, padding = padded_input(c, node, x, pads, (kh, kw), strides, dilations)
    bias = c.constant(b) if b is not None else np.zeros(out_channels, dtype=weights.dtype)
    if bias is None:
        raise ValueError("bias is not constant")
    fb_padding = getattr(c.graph.fb.Padding, padding)
    common = {"padding": fb_padding, "strideH": strides[0], "strideW": strides[1],
              "dilationHFactor": dilations[0], "dilationWFactor": dilations[1]}
    bias_tensor = c.graph.add_constant(f"{node.name}_bias", bias.astype(weights.dtype))
    output = c.output(node.outputs[0], "nhwc")
    if group == 1:
        kernel = c.graph.add_constant(f"{node.name}_weights", weights.transpose(0, 2, 3, 1))  # OIHW -> OHWI
        c.graph.add_operator("CONV_2D", [tensor, kernel, bias_tensor], [output],
                             c.graph.options("Conv2DOptions", **common))
    elif group == in_channels and out_channels % in_channels == 0:
        kernel = c.graph.add_constant(f"{node.name}_weights", weights.transpose(1, 2, 3, 0))  # -> 1HWO
        c.graph.add_operator("DEPTHWISE_CONV_2D", [tensor, kernel, bias_tensor], [output],
                             c.graph.options("DepthwiseConv2DOptions", depthMultiplier=out_channels // in_channels,
                                             **common), version=2)
    else:
        raise ValueError(f"grouped convolution ({group} groups of {in_per_group} channels) is not converted")


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
    if any(node.attributes.get_ints("output_padding", [0, 0])):
        raise ValueError("ConvTranspose output_padding is not converted")
    _, out_channels, kh, kw = weights.shape
    strides = list(node.attributes.get_ints("strides", [1, 1]))
    pads = list(node.attributes.get_ints("pads", [0, 0, 0, 0]))
    n, oc, oh, ow = c.shape(node.outputs[0])
    _, _, h, w_in = c.shape(x)
    # TFLite's TRANSPOSE_CONV computes the full (VALID) output and crops it to output_shape per SAME; other
    # crops would need a slice, which is left out: only pads that VALID or SAME give are converted.
    full = ((h - 1) * strides[0] + kh, (w_in - 1) * strides[1] + kw)
    if not any(pads) and (oh, ow) == full:
        padding = "VALID"
    elif (oh, ow) == (h * strides[0], w_in * strides[1]) and pads[:2] == [
            (full[0] - oh) // 2, (full[1] - ow) // 2]:
        padding = "SAME"  # TFLite crops the smaller half before, the rest after
    else:
        raise ValueError(f"ConvTranspose pads {pads} give neither TFLite's SAME nor VALID output size")
    kernel = c.graph.add_constant(f"{node.name}_weights", weights.transpose(1, 2, 3, 0))  # IOHW -> OHWI
    bias = c.constant(b) if b is not None else np.zeros(out_channels, dtype=weights.dtype)
    inputs = [c.int32([n, oh, ow, oc]), kernel, c.nhwc(x), c.graph.add_constant(f"{node.name}_bias", bias)]
    c.graph.add_operator("TRANSPOSE_CONV", inputs, [c.output(node.outputs[0], "nhwc")],
                         c.graph.options("TransposeConvOptions", padding=getattr(c.graph.fb.Padding, padding),
                                         strideH=strides[0], strideW=strides[1]), version=4)


CONVERTERS = {"Conv": conv, "ConvTranspose": conv_transpose}
