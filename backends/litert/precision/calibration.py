"""Activation ranges for full-integer INT8, from the ONNX model the TFLite graph is converted from.

The converter names each TFLite tensor that stands for an ONNX value after it, so the ranges are collected
on the ONNX model with ONNX Runtime (`collect_statistics`, one sample in memory at a time) for every float
value of its main graph, and the INT8 pass looks them up by name; the tensors the converter adds (layout
transposes, explicit padding, clip steps) derive theirs from their source.

Range method: percentile 99.99 for the values inside the network, the project's default for static INT8
(a handful of outliers would otherwise stretch a scale for everything else), and the extremes for the graph's
inputs and outputs, which are never clipped (an input scaled to 0..1 is exactly that; an output would
otherwise saturate its largest boxes or scores).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping

import numpy as np
import onnx_ir as ir

from optimizer.ir import input_specs
from optimizer.quantization.calibration import calibration_data, collect_statistics
from optimizer.quantization.calibration.statistics import DEFAULT_PERCENTILE, RangeMethod

FLOAT_TYPES = (ir.DataType.FLOAT, ir.DataType.FLOAT16, ir.DataType.DOUBLE, None)


def activation_ranges(
    model: ir.Model,
    samples: Iterable[Mapping[str, np.ndarray]] | str | os.PathLike,
    *,
    threads: int | None = None,
    method: RangeMethod = "percentile",
    percentile: float = DEFAULT_PERCENTILE,
) -> dict[str, tuple[float, float]]:
    """(low, high) of every float value of `model`'s main graph over `samples`, by `method` inside the network
    and min/max at its inputs and outputs. `samples`: feed dicts by input name, or anything else
    `calibration_data` reads (an .npz, a folder of images, a CalibrationData); each is checked against the
    model's inputs."""
    if samples is None:
        raise ValueError("activation ranges need calibration samples; random inputs would only guess them")
    data = calibration_data(samples, input_specs(model))
    graph = model.graph
    edges = {value.name for value in (*graph.inputs, *graph.outputs)}
    names = [value.name for value in graph.inputs if value.name not in graph.initializers]
    names += [value.name for node in graph for value in node.outputs
              if value.name and value.const_value is None and value.dtype in FLOAT_TYPES]
    statistics = collect_statistics(model, names, data, threads=threads)
    ranges = {}
    for name, stats in statistics.items():
        if stats.count == 0:
            continue
        low, high = stats.range("minmax" if name in edges else method, percentile=percentile)
        ranges[name] = (float(low), float(high))
    return ranges
