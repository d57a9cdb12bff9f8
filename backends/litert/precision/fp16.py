"""FP16 weights: float32 weights stored as float16, read back through a DEQUANTIZE to float32.

This is TFLite's own post-training float16 quantization. The weights of the ops that carry them (CONV_2D,
DEPTHWISE_CONV_2D, TRANSPOSE_CONV, FULLY_CONNECTED, BATCH_MATMUL) and every other float constant of at least
`min_elements` values become FLOAT16 tensors; the float32 tensor that the ops read stays where it was, now the
output of a DEQUANTIZE, so no operator changes. Activations stay float32. XNNPACK folds a DEQUANTIZE of a
constant into the weights when it builds its graph, so this halves the file and costs nothing at run time;
the builtin kernels run the DEQUANTIZE once (its input is constant) and keep the float32 result.

Small constants (biases, scalars) stay float32: they weigh nothing, and a scalar in box decoding is better exact.
A constant with values beyond float16's range (65504) stays float32 too, rather than turning into infinities.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from optimizer.backends.litert.flatbuffer import TFLiteGraph
from optimizer.backends.litert.precision._uses import Uses

WEIGHT_INPUTS = {
    "CONV_2D": (1,),
    "DEPTHWISE_CONV_2D": (1,),
    "TRANSPOSE_CONV": (1,),
    "FULLY_CONNECTED": (1,),
    "BATCH_MATMUL": (0, 1),
}
FLOAT16_MAX = float(np.finfo(np.float16).max)
DEQUANTIZE_FLOAT16_VERSION = 3  # op_version.cc: DEQUANTIZE of float16 (or int16) input


@dataclass
class Float16Result:
    converted: list[str] = field(default_factory=list)
    """Constant tensors now stored as float16."""
    kept: dict[str, str] = field(default_factory=dict)
    """Weights left float32, with the reason."""


def store_weights_as_float16(graph: TFLiteGraph, *, min_elements: int = 1024) -> Float16Result:
    """Rewrite `graph` in place: weights, and float constants of `min_elements` values or more, as float16."""
    uses = Uses(graph)
    weights = {operator.inputs[i] for operator in graph.operators
               for i in WEIGHT_INPUTS.get(graph.builtin(operator), ()) if i < len(operator.inputs)}
    candidates = sorted(index for index in uses.readers
                        if uses.is_float_constant(index) and (index in weights or uses.size(index) >= min_elements))
    result = Float16Result()
    dequantize = []
    for index in candidates:
        data = graph.constant_data(index)
        name = graph.tensors[index].name
        if data.size and float(np.abs(data).max()) > FLOAT16_MAX:
            result.kept[name] = f"values up to {float(np.abs(data).max()):.3g} overflow float16"
            continue
        half = graph.add_constant(f"{name}_fp16", data.astype(np.float16))
        graph.make_computed(index)  # the float32 tensor the ops read is now DEQUANTIZE's output
        dequantize.append(graph.make_operator("DEQUANTIZE", [half], [index], version=DEQUANTIZE_FLOAT16_VERSION))
        result.converted.append(name)
    # Constants are ready before the first operator runs: their DEQUANTIZE ops go first.
    graph.operators[:0] = dequantize
    graph.remove_unused_tensors()
    return result
