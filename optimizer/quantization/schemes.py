"""INT8 schemes: how each runtime wants a QDQ model, so the runtime fuses it into integer kernels.

- ONNX Runtime on x86 (`onnxruntime-x86`): asymmetric uint8 activations x symmetric int8 per-channel weights
  (U8S8: the VNNI kernels' native form; S8S8 measured slower than FP32 on this CPU, see zoo.md). QDQ goes around
  every op that ORT has a QLinear kernel for, so whole chains run in uint8 (`fused` placement).
- TensorRT: symmetric int8 with zero point 0 everywhere, QDQ on the inputs of the compute ops only (`inputs`
  placement); TensorRT propagates the scales and fuses the rest itself, and extra Q/DQ pairs only constrain it.
- OpenVINO: QDQ on the inputs of compute ops like TensorRT (its low-precision transformations start from there),
  with uint8 activations and zero points, which its CPU plugin runs natively.
- TFLite full integer: every tensor int8 (asymmetric activations), like ONNX Runtime's placement.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from optimizer.errors import UsageError

# Ops whose int8 form does the heavy arithmetic: the reason to quantize at all.
COMPUTE_OPS = frozenset({"Conv", "MatMul", "Gemm"})
# Ops that move or select values without arithmetic: input and output share one scale, so the runtime can run
# them on the int8 tensor directly (ORT drops their Q/DQ, TFLite requires equal scales).
SHARED_SCALE_OPS = frozenset({
    "MaxPool", "Reshape", "Transpose", "Squeeze", "Unsqueeze", "Flatten", "Slice", "Split", "Gather", "Resize",
    "DepthToSpace", "SpaceToDepth", "Concat",
})
# Activations that fold into the quantize after them: QDQ sits after the activation, not between op and activation.
FOLDED_ACTIVATIONS = frozenset({"Relu", "Clip"})


@dataclass(frozen=True)
class Int8Scheme:
    name: str
    activation_dtype: type[np.integer]
    symmetric_activations: bool
    placement: str
    """"fused": QDQ around every int8-capable op; "inputs": QDQ only on the inputs of COMPUTE_OPS."""
    int8_ops: frozenset[str]
    """Ops the runtime runs in int8 when they sit between Q/DQ (only used by the "fused" placement)."""
    per_channel_weights: bool = True
    min_reduction_depth: int = 0
    """Compute ops that sum over fewer inputs per output (Conv: input channels per group x kernel size; MatMul and
    Gemm: K) stay float: their int8 kernels spend more on packing and requantizing than they save."""


ORT_X86 = Int8Scheme(
    name="onnxruntime-x86",
    activation_dtype=np.uint8,
    symmetric_activations=False,
    placement="fused",
    # Every op here has a QLinear kernel or QDQ-dropping rule in ORT's CPU execution provider.
    int8_ops=COMPUTE_OPS | SHARED_SCALE_OPS | FOLDED_ACTIVATIONS | frozenset({
        "Add", "Mul", "Sigmoid", "LeakyRelu", "AveragePool", "GlobalAveragePool",
    }),
    # yolov8n's stem (3 channels x 3x3 = 27) takes 0.25 ms as QLinearConv here (ORT 1.32, 2 threads) against
    # 0.09 ms as a float NCHWc Conv plus 0.08 ms to reorder its output; keeping it float made the whole INT8 model
    # 4% faster. The next smallest depth in the zoo models is 144.
    min_reduction_depth=32,
)
TENSORRT = Int8Scheme(name="tensorrt", activation_dtype=np.int8, symmetric_activations=True, placement="inputs",
                      int8_ops=COMPUTE_OPS)
OPENVINO = Int8Scheme(name="openvino", activation_dtype=np.uint8, symmetric_activations=False, placement="inputs",
                      int8_ops=COMPUTE_OPS)
TFLITE = Int8Scheme(
    name="tflite",
    activation_dtype=np.int8,
    symmetric_activations=False,
    placement="fused",
    int8_ops=ORT_X86.int8_ops | frozenset({"Softmax", "Tanh", "HardSwish", "Pad", "ReduceMean"}),
)

MICROSOFT_DOMAIN = "com.microsoft"
"""ONNX Runtime's contrib ops (DynamicQuantizeMatMul, MatMulNBits)."""
RUNTIME_SCHEMES = {"onnxruntime": ORT_X86, "tensorrt": TENSORRT, "openvino": OPENVINO, "tflite": TFLITE}


def scheme_for_runtime(runtime: str) -> Int8Scheme:
    try:
        return RUNTIME_SCHEMES[runtime]
    except KeyError:
        raise UsageError(f"no INT8 scheme for runtime '{runtime}'; known: {', '.join(RUNTIME_SCHEMES)}") from None
