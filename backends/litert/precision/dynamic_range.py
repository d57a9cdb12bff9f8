"""Dynamic-range INT8: int8 weights read directly by TFLite's hybrid kernels, activations float32.

TFLite's post-training dynamic-range quantization. The weights of CONV_2D, DEPTHWISE_CONV_2D and
FULLY_CONNECTED become int8, symmetric per output channel (zero point 0, [-127, 127], `quantizedDimension` on
the channel axis), and the op keeps its float32 input and output: at run time the hybrid kernel quantizes
the input on the fly, multiplies in integers and rescales to float. Each op is set to the version that
declares a per-channel hybrid kernel (op_version.cc), which the resolver checks.

XNNPACK takes all three as its "dynamically quantized" kernels (the input quantized per run, int8 x int8
products): on yolov8n (320, 2 threads) every CONV_2D is delegated and the model runs 1.6x faster than FP32 at a
quarter of the size. Without XNNPACK, TFLite's builtin hybrid kernels run it too, but about 3x slower than
XNNPACK's float kernels. Biases stay float32. TRANSPOSE_CONV and BATCH_MATMUL keep float32 weights (no
per-channel hybrid kernel); the result lists them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from optimizer.backends.litert.flatbuffer import TFLiteGraph
from optimizer.backends.litert.precision._uses import WEIGHTS, Uses

from optimizer.quantization.weights import quantize_symmetric_int8, symmetric_int8_scales

# op_version.cc: per-channel hybrid CONV_2D is version 5, DEPTHWISE_CONV_2D 6, FULLY_CONNECTED 12.
HYBRID_VERSIONS = {"CONV_2D": 5, "DEPTHWISE_CONV_2D": 6, "FULLY_CONNECTED": 12}


@dataclass
class DynamicRangeResult:
    hybrid: list[str] = field(default_factory=list)
    """Operators (by output tensor name) that now read int8 weights."""
    kept: dict[str, str] = field(default_factory=dict)
    """Weighted operators left float, with the reason."""


def quantize_weights_int8(graph: TFLiteGraph) -> DynamicRangeResult:
    """Rewrite `graph` in place: int8 per-channel weights for the ops with hybrid kernels."""
    uses = Uses(graph)
    result = DynamicRangeResult()
    quantized: dict[int, int] = {}  # float weight tensor -> its int8 tensor (a weight two ops share is one)
    for operator in graph.operators:
        builtin = graph.builtin(operator)
        label = graph.tensors[operator.outputs[0]].name
        if builtin in ("TRANSPOSE_CONV", "BATCH_MATMUL"):
            result.kept[label] = f"{builtin} has no per-channel hybrid kernel"
        if builtin not in HYBRID_VERSIONS:
            continue
        weight_input, axis = WEIGHTS[builtin]
        weight = operator.inputs[weight_input]
        if not uses.is_float_constant(weight) or not uses.is_float_activation(operator.inputs[0]):
            result.kept[label] = "weights not a float32 constant, or input not float32"
            continue
        if weight not in quantized:
            data = graph.constant_data(weight)
            scales = symmetric_int8_scales(data, axis)
            params = graph.quantization(scales, [0] * len(scales), axis=axis)
            quantized[weight] = graph.add_constant(f"{graph.tensors[weight].name}_int8",
                                                   quantize_symmetric_int8(data, scales, axis), quantization=params)
        operator.inputs[weight_input] = quantized[weight]
        if builtin == "FULLY_CONNECTED":
            options = operator.builtinOptions
            options.asymmetricQuantizeInputs = True  # per-row zero points for the on-the-fly input quantization
        graph.set_version(operator, max(graph.version(operator), HYBRID_VERSIONS[builtin]))
        result.hybrid.append(label)
    graph.remove_unused_tensors()
    return result
