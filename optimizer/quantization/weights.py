"""Weight quantization arithmetic shared by the INT8 passes, and a helper to add the results as initializers.

Weights are quantized symmetrically to int8 with zero point 0: that is what every runtime we target accepts for
weights (ONNX Runtime's U8S8 and S8S8 kernels, TensorRT, OpenVINO, TFLite), and it keeps the bias scale simple.
The range is [-127, 127], not -128: a symmetric grid keeps w and -w exact, and avoids the u8s8 overflow that
VPMADDUBSW kernels hit on CPUs without VNNI.
"""

from __future__ import annotations

import numpy as np
import onnx_ir as ir

from optimizer.ir import is_standard_op

INT8_WEIGHT_LIMIT = 127.0


def symmetric_int8_scales(weight: np.ndarray, axis: int | None) -> np.ndarray:
    """Per-channel scales along `axis` (or one per-tensor scale when axis is None); never zero."""
    magnitude = np.abs(weight.astype(np.float32, copy=False))
    if axis is None:
        peak = np.asarray(magnitude.max() if magnitude.size else 0.0, dtype=np.float32)
    else:
        reduce_axes = tuple(i for i in range(weight.ndim) if i != axis % weight.ndim)
        peak = magnitude.max(axis=reduce_axes) if magnitude.size else np.zeros(weight.shape[axis], np.float32)
    scales = (peak / INT8_WEIGHT_LIMIT).astype(np.float32)
    # An all-zero channel gets scale 1: any positive scale represents it exactly, 0 would divide by zero.
    return np.where(scales > 0, scales, np.float32(1.0)).astype(np.float32)


def quantize_symmetric_int8(weight: np.ndarray, scales: np.ndarray, axis: int | None) -> np.ndarray:
    if axis is not None:
        shape = [1] * weight.ndim
        shape[axis] = -1
        scales = scales.reshape(shape)
    quantized = np.rint(weight / scales)
    return np.clip(quantized, -INT8_WEIGHT_LIMIT, INT8_WEIGHT_LIMIT).astype(np.int8)


def quantize_bias_int32(bias: np.ndarray, scales: np.ndarray) -> np.ndarray:
    """A bias in the accumulator's scale (input scale x weight scale per channel), as ONNX Runtime's QLinearConv
    and TensorRT expect it."""
    limit = np.iinfo(np.int32).max
    return np.clip(np.rint(bias / scales), -limit, limit).astype(np.int32)


def add_initializer(graph: ir.Graph, name: str, array: np.ndarray) -> ir.Value:
    """A new initializer named `name` (made unique in the graph) holding `array`."""
    unique = name
    suffix = 1
    while unique in graph.initializers:
        unique = f"{name}_{suffix}"
        suffix += 1
    value = ir.Value(name=unique, const_value=ir.tensor(array, name=unique))
    value.shape = ir.Shape(array.shape)
    value.dtype = ir.DataType.from_numpy(array.dtype)
    graph.register_initializer(value)
    return value


def constant_array(value: ir.Value | None) -> np.ndarray | None:
    """The array behind an initializer (or a Constant node's output), else None."""
    if value is None:
        return None
    tensor = value.const_value
    if tensor is None:
        producer = value.producer()
        if producer is None or producer.op_type != "Constant" or not is_standard_op(producer):
            return None
        attribute = producer.attributes.get("value")
        if attribute is None:
            return None
        tensor = attribute.as_tensor()
    return tensor.numpy()
