"""Run calibration samples through ONNX Runtime and keep statistics of the tensors quantization will touch.

The model is cloned (onnx-ir shares the weights, so this is cheap) and the clone's graph outputs become the
requested tensors; the caller's model is never changed. The new outputs are declared with their element type
only, or with no type at all when the model does not record one: ONNX Runtime types them itself while it
loads the graph, so no shape inference is needed, and models it cannot infer (dynamic shapes, If and Loop
subgraphs, where onnxruntime.quantization's symbolic shape inference fails) calibrate like any other.

Samples run one at a time, and each output updates its `TensorStatistics` and is dropped before the next
sample runs: peak memory is one sample's activations, whatever the number of samples.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx_ir as ir

from optimizer.backends.onnxruntime.session import OrtSession, create_session
from optimizer.errors import UsageError
from optimizer.inputs import Feeds
from optimizer.ir import has_external_data, model_to_bytes, save_model
from optimizer.progress import report_progress
from optimizer.quantization.calibration.statistics import DEFAULT_BINS, TensorStatistics

FLOAT_TYPES = frozenset({ir.DataType.FLOAT, ir.DataType.FLOAT16, ir.DataType.DOUBLE})
# Called after each sample with (samples done, total or None when the data has no length).
Progress = Callable[[int, "int | None"], None]


def collect_statistics(
    model: ir.Model,
    tensor_names: Sequence[str],
    data: Iterable[Feeds],
    *,
    threads: int | None = None,
    progress: Progress | None = None,
    bins: int = DEFAULT_BINS,
) -> dict[str, TensorStatistics]:
    """Statistics of each float tensor in `tensor_names` (main graph only) over the samples of `data`.

    Tensors that are not float (integer indices, shapes, booleans) are left out of the result. Graph inputs
    are taken from the samples and weights from the model, without running them through ONNX Runtime.
    """
    reader = _TensorReader(model, tensor_names, threads=threads, floats_only=True)
    statistics = {name: TensorStatistics(name, bins=bins) for name in reader.names}
    not_float: set[str] = set()
    for name, tensor in reader.weights.items():
        statistics[name].update(tensor)
    total = len(data) if hasattr(data, "__len__") else None  # type: ignore[arg-type]
    done = 0
    for feeds in data:
        outputs = reader.activations(feeds)
        while outputs:  # each array is freed as soon as it is counted
            name, array = outputs.popitem()
            if not isinstance(array, np.ndarray) or array.dtype.kind != "f":
                not_float.add(name)  # an output the model left untyped, and ONNX Runtime found not float
                continue
            statistics[name].update(array)
        done += 1
        if progress is not None:
            progress(done, total)
        elif total:
            report_progress("calibrating", done / total)
    return {name: stats for name, stats in statistics.items() if name not in not_float}


@dataclass
class ChannelStatistics:
    """Per-channel mean and largest magnitude of one tensor along `axis`, over every sample seen."""

    axis: int
    total: np.ndarray | None = None
    count: int = 0
    peak: np.ndarray | None = None

    def update(self, array: np.ndarray) -> None:
        moved = np.moveaxis(np.asarray(array, dtype=np.float64), self.axis, -1)
        flat = moved.reshape(-1, moved.shape[-1])
        total, peak = flat.sum(axis=0), np.abs(flat).max(axis=0)
        if self.total is None:
            self.total, self.peak = total, peak
        else:
            self.total += total
            self.peak = np.maximum(self.peak, peak)
        self.count += flat.shape[0]

    @property
    def mean(self) -> np.ndarray:
        return self.total / max(self.count, 1)


def collect_channel_statistics(
    model: ir.Model,
    axes: Mapping[str, int],
    data: Iterable[Feeds],
    *,
    threads: int | None = None,
    limit: int | None = None,
) -> dict[str, ChannelStatistics]:
    """Per-channel statistics of each main-graph float tensor in `axes` (name -> channel axis, negative
    counts from the end) over the first `limit` samples of `data`, one sample's activations in memory at a
    time. For bias correction (channel means) and SmoothQuant (channel magnitudes)."""
    reader = _TensorReader(model, list(axes), threads=threads, floats_only=True)
    statistics = {name: ChannelStatistics(axes[name]) for name in reader.names}
    for name, tensor in reader.weights.items():
        statistics[name].update(tensor)
    for index, feeds in enumerate(data):
        if limit is not None and index >= limit:
            break
        outputs = reader.activations(feeds)
        while outputs:
            name, array = outputs.popitem()
            if isinstance(array, np.ndarray) and array.dtype.kind == "f" and array.ndim:
                statistics[name].update(array)
    return {name: stats for name, stats in statistics.items() if stats.count}


def capture_tensors(
    model: ir.Model,
    tensor_names: Sequence[str],
    feeds: Feeds,
    *,
    threads: int | None = None,
) -> dict[str, np.ndarray]:
    """The values of the main-graph tensors `tensor_names` (any type) for one sample, in float precision.

    For work that needs the float model's activations themselves: sensitivity analysis, bias correction.
    """
    reader = _TensorReader(model, tensor_names, threads=threads, floats_only=False)
    values = {**reader.weights, **reader.activations(feeds)}
    return {name: values[name] for name in reader.names}


class _TensorReader:
    """An ONNX Runtime session over a clone of `model` whose outputs are the requested tensors."""

    def __init__(self, model: ir.Model, tensor_names: Sequence[str], *, threads: int | None,
                 floats_only: bool) -> None:
        values = _main_graph_values(model, tensor_names)
        if floats_only:
            values = [v for v in values if v.dtype is None or v.dtype in FLOAT_TYPES]
        self.names = [value.name for value in values]
        graph_inputs = {value.name for value in model.graph.inputs}
        self.weights = {
            value.name: value.const_value.numpy()
            for value in values
            if value.const_value is not None and value.name not in graph_inputs
        }
        self._from_feeds = {v.name: v for v in values if v.name in graph_inputs}
        self._input_names = [value.name for value in model.graph.inputs]
        computed = [v.name for v in values if v.name not in graph_inputs and v.name not in self.weights]
        self._session = _session_with_outputs(model, computed, threads) if computed else None

    def activations(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        outputs = {}
        if self._session is not None:
            # Only the model's inputs: a sample read from an .npz may carry other arrays.
            outputs = self._session.run({name: feeds[name] for name in self._input_names if name in feeds})
        for name, value in self._from_feeds.items():
            if name in feeds:
                outputs[name] = np.asarray(feeds[name])
            elif value.const_value is not None:  # an input with a default the sample leaves as it is
                outputs[name] = value.const_value.numpy()
        return outputs


def _main_graph_values(model: ir.Model, tensor_names: Sequence[str]) -> list[ir.Value]:
    graph = model.graph
    values: dict[str, ir.Value] = {value.name: value for value in graph.inputs}
    values.update(graph.initializers)
    values.update((value.name, value) for node in graph for value in node.outputs if value.name)
    missing = [name for name in dict.fromkeys(tensor_names) if name not in values]
    if missing:
        nested = {
            value.name
            for node in ir.traversal.RecursiveGraphIterator(graph)
            for value in node.outputs
        }
        inside = [name for name in missing if name in nested]
        if inside:
            raise UsageError(f"tensor '{inside[0]}' is inside a subgraph (an If, Loop or Scan body); only "
                             "tensors of the main graph can be calibrated")
        shown = ", ".join(f"'{name}'" for name in missing[:5]) + (" ..." if len(missing) > 5 else "")
        raise UsageError(f"the model has no tensor named {shown}")
    return [values[name] for name in dict.fromkeys(tensor_names)]


def _session_with_outputs(model: ir.Model, names: Sequence[str], threads: int | None) -> OrtSession:
    clone = model.clone()
    values = {value.name: value for node in clone.graph for value in node.outputs}
    outputs = [values[name] for name in names]
    for value in outputs:
        # The element type alone, or nothing: ONNX Runtime infers the rest. A shape recorded for one input
        # size would only be checked against samples of another.
        value.shape = None
    clone.graph.outputs.clear()
    clone.graph.outputs.extend(outputs)
    label = "model with calibration outputs"
    if not has_external_data(model):
        # ORT's layout and fusion rewrites stop at every output anyway; its basic level folds constants.
        return create_session(model_to_bytes(clone), threads=threads, optimization="basic", label=label)
    # Weights kept in external files cannot travel as bytes: give the runtime a copy on disk.
    with tempfile.TemporaryDirectory(prefix="hwopt-calibration-") as scratch:
        path = Path(scratch) / "calibration.onnx"
        save_model(clone, path, external_data=True)
        return create_session(os.fspath(path), threads=threads, optimization="basic", label=label)
