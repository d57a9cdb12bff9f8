"""Precision passes for the LiteRT backend: they rewrite a float TFLiteGraph in place, after conversion and
before serialization, as TFLite's own converter quantizes post-training.

    fp32          nothing to do
    fp16          weights stored as float16 behind a DEQUANTIZE (fp16.py); half the size, same speed
    int8-dynamic  int8 per-channel weights read by the hybrid kernels, activations float (dynamic_range.py)
    int8          full integer: int8 activations with calibrated scales, int8 per-channel weights, int32
                  biases (full_int8.py); needs `ranges` from `activation_ranges(model, samples)`

    graph = convert_graph(model, CONVERTERS)
    ranges = activation_ranges(model, samples)            # int8 only: the same (converted) ONNX model
    notes = lower_precision(graph, "int8", ranges=ranges, io_dtype="float32")
    data = graph.serialize()
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping

from optimizer.backends.litert.flatbuffer import TFLiteGraph
from optimizer.backends.litert.precision._uses import constant_bytes
from optimizer.backends.litert.precision.calibration import activation_ranges
from optimizer.backends.litert.precision.dynamic_range import quantize_weights_int8
from optimizer.backends.litert.precision.fp16 import store_weights_as_float16
from optimizer.backends.litert.precision.full_int8 import IO_DTYPES, IoDtype, quantize_full_int8

PRECISIONS = ("fp32", "fp16", "int8-dynamic", "int8")

__all__ = ["IO_DTYPES", "PRECISIONS", "activation_ranges", "lower_precision"]


def lower_precision(graph: TFLiteGraph, precision: str, *, ranges: Mapping[str, tuple[float, float]] | None = None,
                    io_dtype: IoDtype = "float32", float_tail: bool = True) -> list[str]:
    """Rewrite `graph` in place to `precision`; returns notes for the build report (what changed, what stayed
    float and why). `ranges` (tensor name -> (low, high)) and `io_dtype` are for "int8"; `float_tail` keeps an
    int8 model's post-processing float (see full_int8.py)."""
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; use one of {', '.join(PRECISIONS)}")
    if io_dtype not in IO_DTYPES:
        raise ValueError(f"io_dtype must be one of {', '.join(IO_DTYPES)}, not {io_dtype!r}")
    if io_dtype != "float32" and precision != "int8":
        raise ValueError(f"io_dtype={io_dtype} needs precision int8 (inputs and outputs of {precision} are float)")
    before = constant_bytes(graph)
    notes: list[str] = []
    if precision == "fp16":
        result = store_weights_as_float16(graph)
        notes.append(f"fp16: {len(result.converted)} constant tensors stored as float16 behind DEQUANTIZE")
        notes += [f"fp16: {name} stays float32 ({why})" for name, why in result.kept.items()]
    elif precision == "int8-dynamic":
        result = quantize_weights_int8(graph)
        notes.append(f"int8-dynamic: {len(result.hybrid)} operators read int8 per-channel weights (hybrid kernels)")
        notes += [f"int8-dynamic: {name} keeps float32 weights ({why})" for name, why in result.kept.items()]
    elif precision == "int8":
        if not ranges:
            raise ValueError("precision int8 needs activation ranges: calibrate with activation_ranges(model, "
                             "samples) on the ONNX model that was converted")
        result = quantize_full_int8(graph, ranges, io_dtype=io_dtype, float_tail=float_tail)
        total = len(result.int8) + len(result.float)
        notes.append(f"int8: {len(result.int8)} of {total} operators run in int8; inputs and outputs {io_dtype}")
        floats = Counter(label.split(" ", 1)[0] for label in result.float)
        if floats:
            notes.append("int8: float operators: " + ", ".join(f"{op} x{n}" for op, n in floats.most_common()))
        reasons = Counter(result.float.values())
        notes += [f"int8: {count} float because {reason}" for reason, count in reasons.most_common()]
        if result.conversions:
            notes.append("int8: added " + ", ".join(f"{kind} x{n}" for kind, n in result.conversions.items()))
    if precision != "fp32":
        notes.append(f"{precision}: constants {before / 1e6:.2f} MB -> {constant_bytes(graph) / 1e6:.2f} MB")
    return notes
