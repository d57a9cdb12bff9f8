"""The int8 kernels full-integer INT8 writes for, and how each constrains its scales (op_version.cc)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

Range = tuple[float, float]
Params = tuple[float, int]  # scale, zero point


@dataclass(frozen=True)
class Int8Kernel:
    """What TFLite's int8 kernel of an op needs."""

    version: int
    """The op's version when it reads int8 (op_version.cc)."""
    scales: Literal["compute", "free", "shared", "fixed"]
    """compute: weights and bias quantized for the input's scale; free: any scales; shared: the data inputs and
    outputs have one scale; fixed: the output's scale is set by the kernel."""
    data: tuple[int, ...] | None = (0,)
    """The inputs that are activations (or float constants in their domain); None: all of them."""
    fixed: Params | None = None


KERNELS: dict[str, Int8Kernel] = {
    "CONV_2D": Int8Kernel(3, "compute"),
    "DEPTHWISE_CONV_2D": Int8Kernel(3, "compute"),
    "FULLY_CONNECTED": Int8Kernel(4, "compute"),
    "TRANSPOSE_CONV": Int8Kernel(3, "compute", data=(2,)),
    "ADD": Int8Kernel(2, "free", data=None),
    "SUB": Int8Kernel(2, "free", data=None),
    "MUL": Int8Kernel(2, "free", data=None),
    "RELU": Int8Kernel(2, "free"),
    "RELU6": Int8Kernel(2, "free"),
    "LEAKY_RELU": Int8Kernel(1, "free"),
    "HARD_SWISH": Int8Kernel(1, "free"),
    "MEAN": Int8Kernel(2, "free"),
    "LOGISTIC": Int8Kernel(2, "fixed", fixed=(1 / 256, -128)),
    "SOFTMAX": Int8Kernel(2, "fixed", fixed=(1 / 256, -128)),
    "TANH": Int8Kernel(2, "fixed", fixed=(1 / 128, 0)),
    "MAX_POOL_2D": Int8Kernel(2, "shared"),
    "AVERAGE_POOL_2D": Int8Kernel(2, "shared"),
    "REDUCE_MAX": Int8Kernel(2, "shared"),
    "RESHAPE": Int8Kernel(1, "shared"),
    "TRANSPOSE": Int8Kernel(2, "shared"),
    "STRIDED_SLICE": Int8Kernel(2, "shared"),
    "SPLIT": Int8Kernel(2, "shared", data=(1,)),
    "SPLIT_V": Int8Kernel(2, "shared"),
    "PAD": Int8Kernel(2, "shared"),
    "PADV2": Int8Kernel(2, "shared", data=(0, 2)),
    "RESIZE_NEAREST_NEIGHBOR": Int8Kernel(2, "shared"),
    "RESIZE_BILINEAR": Int8Kernel(2, "shared"),
    "CONCATENATION": Int8Kernel(2, "shared", data=None),
    "GATHER": Int8Kernel(2, "shared"),
    "MAXIMUM": Int8Kernel(2, "shared", data=(0, 1)),
    "MINIMUM": Int8Kernel(2, "shared", data=(0, 1)),
}
BIAS_INPUT = {"CONV_2D": 2, "DEPTHWISE_CONV_2D": 2, "FULLY_CONNECTED": 2, "TRANSPOSE_CONV": 3}


def data_positions(kernel: Int8Kernel, operator: Any) -> set[int]:
    """The input positions of `operator` that hold int8 data (not weights, biases, shapes or axes)."""
    return positions_of(kernel, len(operator.inputs))


def positions_of(kernel: Int8Kernel, count: int) -> set[int]:
    positions = range(count) if kernel.data is None else kernel.data
    return {p for p in positions if p < count}
