"""One ONNX Runtime session that runs a model with any candidate weights, and returns inner tensors as well.

Sensitivity (each layer pruned alone), fidelity (pruned, recovered) and sequential recovery (each layer's inputs
from the model as recovered so far) all run the same graph with different weights. Building a session per
variant would cost more than the runs themselves, so the probe lists the weights that vary as graph inputs
*that keep their initializers*: ONNX lets a feed override such an initializer, and one session serves every
variant. Weights not fed keep the values of the model the probe was made from. The clone shares the model's
tensors (onnx-ir clones do), and the caller's model is not changed.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
import onnx_ir as ir

from optimizer.backends.onnxruntime.session import OrtSession, create_session
from optimizer.ir import has_external_data, model_to_bytes, save_model

Sample = Mapping[str, np.ndarray]


class WeightProbe:
    """Runs `model` with overridable `weights` (initializer names) and extra outputs `tensors` (value names)."""

    def __init__(self, model: ir.Model, weights: Iterable[str], tensors: Iterable[str] = (), *,
                 threads: int | None = None) -> None:
        clone = model.clone()
        graph = clone.graph
        self.weights = [name for name in dict.fromkeys(weights) if name in graph.initializers]
        self.input_names = [value.name for value in model.graph.inputs]
        self.output_names = [value.name for value in model.graph.outputs]
        produced = {value.name: value for node in graph for value in node.outputs if value.name}
        extra = [name for name in dict.fromkeys(tensors)
                 if name not in self.output_names and name not in self.input_names]
        missing = [name for name in extra if name not in produced and name not in graph.initializers]
        if missing:
            raise ValueError(f"the model has no tensor named {missing[0]!r} to probe")
        for name in self.weights:
            graph.inputs.append(graph.initializers[name])
        for name in extra:
            value = produced.get(name)
            if value is None:  # a weight asked for as a tensor: it is fed or known, no need to output it
                continue
            value.shape = None  # ONNX Runtime types extra outputs itself; a stale shape would only be checked
            graph.outputs.append(value)
        self._defaults = {name: model.graph.initializers[name].const_value.numpy() for name in self.weights}
        self._session = _session(clone, threads)

    def run(self, sample: Sample, weights: Mapping[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
        """Every output of the probe (graph outputs and extra tensors) for one sample; `weights` overrides some
        of the probe's weights (each in its initializer's dtype)."""
        feeds = {name: np.asarray(sample[name]) for name in self.input_names if name in sample}
        for name, array in (weights or {}).items():
            if name not in self._defaults:
                raise KeyError(f"{name!r} is not a weight of this probe")
            feeds[name] = np.ascontiguousarray(array, dtype=self._defaults[name].dtype)
        result = self._session.run(feeds)
        result.update((name, array) for name, array in feeds.items() if name in self.input_names)
        return result

    def outputs(self, samples: Sequence[Sample], weights: Mapping[str, np.ndarray] | None = None
                ) -> list[dict[str, np.ndarray]]:
        """The model's own outputs for each sample."""
        results = []
        for sample in samples:
            result = self.run(sample, weights)
            results.append({name: result[name] for name in self.output_names})
        return results


def _session(model: ir.Model, threads: int | None) -> OrtSession:
    label = "model probed for pruning"
    if not has_external_data(model):
        # "basic": constant folding only, so the overridable weights stay inputs of the kernels that read them.
        return create_session(model_to_bytes(model), threads=threads, optimization="basic", label=label)
    with tempfile.TemporaryDirectory(prefix="hwopt-pruning-") as scratch:
        path = Path(scratch) / "probe.onnx"
        save_model(model, path, external_data=True)
        return create_session(os.fspath(path), threads=threads, optimization="basic", label=label)


def output_cosine(reference: Sequence[Mapping[str, np.ndarray]], candidate: Sequence[Mapping[str, np.ndarray]]
                  ) -> float:
    """The worst output's cosine similarity (each sample's output flattened), averaged over samples."""
    per_output: dict[str, list[float]] = {}
    for expected, got in zip(reference, candidate):
        for name, array in expected.items():
            per_output.setdefault(name, []).append(cosine(array, got[name]))
    if not per_output:
        return 1.0
    return min(float(np.mean(values)) for values in per_output.values())


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    a = np.asarray(a, dtype=np.float64).reshape(-1)
    b = np.asarray(b, dtype=np.float64).reshape(-1)
    norms = float(np.linalg.norm(a) * np.linalg.norm(b))
    if norms == 0.0:
        return 1.0 if not np.any(a) and not np.any(b) else 0.0
    return float(np.dot(a, b) / norms)
