"""MaxPool, AveragePool and the global pools, NHWC.

TFLite's average pool divides by the number of real (unpadded) pixels, which is ONNX's count_include_pad=0;
padded averaging (count_include_pad=1) is not converted. Max pooling pads with the dtype's lowest value, so a
padded pixel never wins.
"""

from __future__ import annotations

import numpy as np
import onnx_ir as ir

from optimizer.backends.litert.convert import GraphConverter
from optimizer.backends.litert.ops.conv import padded_input, spatial_attributes


def _pool(builtin: str):
    def convert(c: GraphConverter, node: ir.Node) -> None:
        x = node.inputs[0]
        kernel = tuple(node.attributes.get_ints("kernel_shape", []))
        if len(kernel) != 2:
            raise ValueError("only 2-D pooling is converted")
        if len(node.outputs) > 1 and node.outputs[1] is not None and node.outputs[1].uses():
            raise ValueError("MaxPool's Indices output is not converted")
        strides, dilations, pads = spatial_attributes(node, kernel, tuple(c.shape(x)[2:]))
        if any(d != 1 for d in dilations):
            raise ValueError("dilated pooling is not converted")
        if node.attributes.get_int("ceil_mode", 0):
            # ceil_mode only matters when the last window would start past floor mode's last one.
            floor = tuple((size + pads[i] + pads[i + 2] - kernel[i]) // strides[i] + 1
                          for i, size in enumerate(c.shape(x)[2:]))
            if floor != tuple(c.shape(node.outputs[0])[2:]):
                raise ValueError(f"ceil_mode=1 (output {'x'.join(map(str, c.shape(node.outputs[0])[2:]))} "
                                 f"instead of {'x'.join(map(str, floor))}) is not converted")
        if builtin == "AVERAGE_POOL_2D" and node.attributes.get_int("count_include_pad", 0) and any(pads):
            raise ValueError("count_include_pad=1 with padding is not converted (TFLite averages real pixels)")
        lowest = float(np.finfo(c.dtype(x)).min) if builtin == "MAX_POOL_2D" else 0.0
        tensor, padding = padded_input(c, node, x, pads, kernel, strides, dilations, pad_value=lowest)
        if builtin == "AVERAGE_POOL_2D" and padding == "VALID" and any(pads):
            raise ValueError(f"average pooling with pads {pads} that TFLite's SAME does not give is not converted")
        options = c.graph.options("Pool2DOptions", padding=getattr(c.graph.fb.Padding, padding),
                                  strideH=strides[0], strideW=strides[1], filterHeight=kernel[0],
                                  filterWidth=kernel[1])
        c.graph.add_operator(builtin, [tensor], [c.output(node.outputs[0], "nhwc")], options)
    return convert


def _global(builtin: str):
    def convert(c: GraphConverter, node: ir.Node) -> None:
        x, output = node.inputs[0], node.outputs[0]
        options = c.graph.options("ReducerOptions", keepDims=True)
        if c.rank(x) == 4:
            axes = c.int32([1, 2])  # H and W of NHWC
            c.graph.add_operator(builtin, [c.nhwc(x), axes], [c.output(output, "nhwc")], options)
            return
        axes = c.int32(list(range(2, c.rank(x))))  # 1-D and 3-D pooling: every axis after N and C
        c.graph.add_operator(builtin, [c.onnx_layout(x), axes], [c.output(output)], options)
    return convert


CONVERTERS = {
    "MaxPool": _pool("MAX_POOL_2D"),
    "AveragePool": _pool("AVERAGE_POOL_2D"),
    "GlobalAveragePool": _global("MEAN"),
    "GlobalMaxPool": _global("REDUCE_MAX"),
}
