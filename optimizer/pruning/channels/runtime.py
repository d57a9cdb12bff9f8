"""What channel pruning measures in ONNX Runtime: per-channel statistics of tensors and output fidelity.

One session per model (not per sample, as `capture_tensors` would build): importance, sensitivity and
recovery each run every calibration sample through a model, and building the session is the larger cost on
small models. Intermediate tensors are reduced to per-channel sums right away, so memory stays at one sample.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import onnx_ir as ir

from optimizer.backends.onnxruntime.session import OrtSession, create_session
from optimizer.ir import model_to_bytes
from optimizer.verify import cosine

Samples = Sequence[Mapping[str, np.ndarray]]


@dataclass
class ChannelStatistics:
    mean: np.ndarray
    """Per channel (axis 1) mean over batch and spatial positions."""
    abs_mean: np.ndarray
    std: np.ndarray


def session(model: ir.Model, outputs: Sequence[str] = (), *, threads: int | None = None) -> OrtSession:
    """A session over `model` whose outputs are its own plus the main-graph tensors `outputs`."""
    clone = model.clone()
    if outputs:
        values = {value.name: value for node in clone.graph for value in node.outputs}
        extra = [values[name] for name in outputs if name in values and not values[name].is_graph_output()]
        for value in extra:
            value.shape = None  # ONNX Runtime infers it; a stale shape would only be checked against
        clone.graph.outputs.extend(extra)
    # "basic": constant folding only, so the tensors asked for survive as they are in the graph.
    return create_session(model_to_bytes(clone), threads=threads, optimization="basic", label="pruning model")


def _feeds(model_inputs: Sequence[str], sample: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {name: sample[name] for name in model_inputs if name in sample}


def channel_statistics(model: ir.Model, names: Sequence[str], samples: Samples, *,
                       threads: int | None = None) -> dict[str, ChannelStatistics]:
    """Per-channel mean, mean |x| and standard deviation of each tensor over all samples."""
    names = list(dict.fromkeys(names))
    runner = session(model, names, threads=threads)
    inputs = [value.name for value in model.graph.inputs]
    sums: dict[str, list[np.ndarray]] = {}
    counts: dict[str, int] = {}
    for sample in samples:
        outputs = runner.run(_feeds(inputs, sample))
        for name in names:
            array = np.asarray(outputs[name], dtype=np.float64)
            axes = tuple(axis for axis in range(array.ndim) if axis != 1)
            moments = [array.sum(axes), np.abs(array).sum(axes), (array * array).sum(axes)]
            if name in sums:
                sums[name] = [a + b for a, b in zip(sums[name], moments)]
            else:
                sums[name] = moments
            counts[name] = counts.get(name, 0) + array.size // array.shape[1]
    statistics = {}
    for name, (total, absolute, squares) in sums.items():
        mean = total / counts[name]
        variance = np.maximum(squares / counts[name] - mean * mean, 0.0)
        statistics[name] = ChannelStatistics(mean, absolute / counts[name], np.sqrt(variance))
    return statistics


def model_outputs(model: ir.Model, samples: Samples, *, threads: int | None = None) -> list[dict[str, np.ndarray]]:
    runner = session(model, threads=threads)
    inputs = [value.name for value in model.graph.inputs]
    return [runner.run(_feeds(inputs, sample)) for sample in samples]


def output_cosine(reference: Sequence[Mapping[str, np.ndarray]], model: ir.Model, samples: Samples, *,
                  threads: int | None = None) -> float:
    """The mean over samples of the worst output's cosine against `reference` (the original's outputs)."""
    outputs = model_outputs(model, samples, threads=threads)
    worst = [min(cosine(expected[name], actual[name]) for name in expected)
             for expected, actual in zip(reference, outputs)]
    return float(np.mean(worst)) if worst else 1.0
