"""Label-free recovery after pruning: re-fit what was kept so each layer's output matches the original's again.

Two steps per pruned layer, on unlabeled calibration samples, layer by layer in graph order:

- MatMul/Gemm, least-squares re-fit. Y = X @ W; pruning fixes which rows of each output column n may be nonzero
  (its support S_n). The kept weights are re-solved so X_cur @ W[:, n] matches the *original* model's output
  X_orig @ W0[:, n], X_cur being the layer's input in the model recovered so far: the normal equations are
  (G[S, S] + ridge I) w = (X_cur^T X_orig W0)[S, n] with G = X_cur^T X_cur, so only K x K sums over the
  samples are kept, never the activations. Targeting the original model's output (not X_cur @ W0) lets each
  layer also absorb part of the error the layers before it left. Columns sharing a support (all columns of a
  block strip; every column of a structured mask) are solved together, one factorization for all of them.
- Bias correction (every layer, after any re-fit): the mean output difference to the original over the
  calibration data is added to the layer's bias (see bias.py). For a Conv that is all it does: its output
  means come from the probe, original weights against current ones.

Layers are processed in *stages*: layers none of which feeds another (Q, K and V of an attention block) share
one pass over the samples, and each stage sees the stages before it already recovered. A stage costs two runs
per sample (original and current weights) through one probe session (probe.py) that takes weights as inputs.
"""

from __future__ import annotations

import contextlib
import itertools
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import onnx_ir as ir

from optimizer.pruning.bias import BiasSlot
from optimizer.pruning.importance import channel_axis
from optimizer.pruning.layers import Layer
from optimizer.pruning.probe import Sample, WeightProbe

ORIGINAL_TARGETS = True
"""Fit each layer to the original model's output (X_orig W0), not to X_cur W0: it then also absorbs part of the
error of the layers before it, at the cost of a second run per sample (the original's) in every pass."""
MAX_PASSES: int | None = None
"""Stages beyond this many are merged into this many passes over the samples (None: every stage its own)."""
RIDGE = 1e-1
"""Ridge added to G's diagonal, relative to its mean diagonal (GPTQ's dampening): keeps the solve stable when a
layer sees fewer distinct inputs than it has kept weights, at a small bias toward smaller weights."""


@dataclass
class RecoveryState:
    """The weights and biases recovery reads and writes, by the probe's names for them."""

    weights: list[np.ndarray]
    """Current weight of each layer (pruned, then re-fitted)."""
    masks: list[np.ndarray | None]
    biases: list[BiasSlot | None]
    bias_arrays: list[np.ndarray | None]
    lines: list[str] = field(default_factory=list)

    def feeds(self, layers: Sequence[Layer]) -> dict[str, np.ndarray]:
        feeds = {layer.weight.name: weight for layer, weight in zip(layers, self.weights)}
        feeds.update({slot.value.name: array for slot, array in zip(self.biases, self.bias_arrays)
                      if slot is not None})
        return feeds


def probe_tensors(layers: Sequence[Layer]) -> list[str]:
    """What recovery reads from the probe: every layer's inputs, and each Conv's outputs."""
    names = [node.inputs[0].name for layer in layers for node in layer.nodes]
    names += [node.outputs[0].name for layer in layers if layer.op_type == "Conv" for node in layer.nodes]
    return names


def recover(model: ir.Model, layers: Sequence[Layer], originals: Sequence[np.ndarray], state: RecoveryState,
            probe: WeightProbe, samples: Sequence[Sample], *, ridge: float | None = None,
            original_targets: bool | None = None, max_passes: int | None = -1) -> RecoveryState:
    """Re-fit and bias-correct every masked layer of `state` in place, stage by stage (see the module doc)."""
    original_targets = ORIGINAL_TARGETS if original_targets is None else original_targets
    ridge = RIDGE if ridge is None else ridge
    max_passes = MAX_PASSES if max_passes == -1 else max_passes
    start = time.perf_counter()
    todo = [i for i, mask in enumerate(state.masks) if mask is not None]
    passes = merge_stages(stages(model, layers, todo), max_passes)
    sums = {i: _Sums() for i in todo}
    if not original_targets:  # the original's means, for bias correction, in one pass for every layer
        for sample in samples:
            before = probe.run(sample)
            for i in todo:
                sums[i].add_before(layers[i], before)
    refitted = corrected = 0
    for stage in passes:
        current = state.feeds(layers)
        for sample in samples:
            now = probe.run(sample, current)
            before = probe.run(sample) if original_targets else None
            for i in stage:
                sums[i].add(layers[i], now, before)
        for i in stage:
            layer, total = layers[i], sums.pop(i)
            if layer.has_matmul_view:
                refit, line = _refit(layer, originals[i], state.weights[i], state.masks[i], total, ridge)
                if refit is not None:
                    state.weights[i] = refit
                    refitted += 1
                if line:
                    state.lines.append(line)
            if state.biases[i] is not None:
                delta = total.output_shift(layer, originals[i], state.weights[i])
                state.bias_arrays[i] = state.biases[i].shifted(state.bias_arrays[i], delta)
                corrected += 1
    state.lines.append(f"least-squares re-fit of {refitted} MatMul/Gemm weights and bias correction of {corrected} "
                       f"layers on {len(samples)} samples, in {len(passes)} passes "
                       f"({time.perf_counter() - start:.1f} s)")
    return state


def merge_stages(stage_list: list[list[int]], max_passes: int | None) -> list[list[int]]:
    """At most `max_passes` groups of consecutive stages (evenly), trading exact sequencing for fewer runs."""
    if max_passes is None or len(stage_list) <= max_passes:
        return stage_list
    bounds = np.linspace(0, len(stage_list), max_passes + 1).round().astype(int)
    return [list(itertools.chain.from_iterable(stage_list[low:high]))
            for low, high in itertools.pairwise(bounds) if high > low]


def stages(model: ir.Model, layers: Sequence[Layer], todo: Sequence[int]) -> list[list[int]]:
    """`todo` grouped by depth: a layer's depth is the number of pruned layers on the longest path from the
    graph's inputs to its input, so no layer of a stage feeds another of the same stage."""
    owner = {id(node): i for i in todo for node in layers[i].nodes}
    depth: dict[int, int] = {}
    layer_depth: dict[int, int] = {}
    for node in model.graph:
        inside = max((depth.get(id(value), 0) for value in node.inputs if value is not None), default=0)
        index = owner.get(id(node))
        if index is not None:
            layer_depth[index] = max(layer_depth.get(index, 0), inside)
        for value in node.outputs:
            depth[id(value)] = inside + (index is not None)
    grouped: dict[int, list[int]] = {}
    for index in todo:
        grouped.setdefault(layer_depth.get(index, 0), []).append(index)
    return [grouped[key] for key in sorted(grouped)]


class _Sums:
    """Running sums over the samples for one layer. MatMul/Gemm: G = X_cur^T X_cur, the targets' X_cur^T X_orig
    (when the original model's inputs are the target) and the mean inputs; Conv: the mean outputs."""

    def __init__(self) -> None:
        self.gram = self.cross = None
        self.sum_now = self.sum_before = 0.0
        self.rows_now = self.rows_before = 0

    def add(self, layer: Layer, now: dict[str, np.ndarray], before: dict[str, np.ndarray] | None) -> None:
        for node in layer.nodes:
            name = node.outputs[0].name if layer.op_type == "Conv" else node.inputs[0].name
            current = _channels_last(layer, now[name])
            if layer.op_type != "Conv":
                self.gram = _plus(self.gram, current.T @ current)
                if before is not None:
                    self.cross = _plus(self.cross, current.T @ _channels_last(layer, before[name]))
            self.sum_now = self.sum_now + current.sum(axis=0)
            self.rows_now += current.shape[0]
        if before is not None:
            self.add_before(layer, before)

    def add_before(self, layer: Layer, before: dict[str, np.ndarray]) -> None:
        for node in layer.nodes:
            name = node.outputs[0].name if layer.op_type == "Conv" else node.inputs[0].name
            original = _channels_last(layer, before[name])
            self.sum_before = self.sum_before + original.sum(axis=0)
            self.rows_before += original.shape[0]

    def targets(self, original_view: np.ndarray) -> np.ndarray:
        """X_cur^T (the target outputs): X_cur^T X_orig W0, or G W0 when the current inputs are the target."""
        return (self.cross if self.cross is not None else self.gram) @ original_view

    def output_shift(self, layer: Layer, original: np.ndarray, weight: np.ndarray) -> np.ndarray | float:
        """Mean original output minus mean current output, per output channel (current weights: `weight`)."""
        if not self.rows_now or not self.rows_before:
            return 0.0
        before, now = self.sum_before / self.rows_before, self.sum_now / self.rows_now
        if layer.op_type == "Conv":
            return before - now
        before = before @ layer.matmul_view(original).astype(np.float64)
        now = now @ layer.matmul_view(weight).astype(np.float64)
        return _gemm_alpha(layer) * (before - now)


def _plus(total: np.ndarray | None, term: np.ndarray) -> np.ndarray:
    return term if total is None else total + term


def _channels_last(layer: Layer, array: np.ndarray) -> np.ndarray:
    """[rows, channels] in float64: a Conv output's channels (axis 1), a MatMul/Gemm input's K."""
    array = np.asarray(array, dtype=np.float64)
    if layer.op_type == "Conv":
        return np.moveaxis(array, 1, -1).reshape(-1, array.shape[1])
    if channel_axis(layer) == 0:  # Gemm with transA: A is [K, M]
        return array.T
    return array.reshape(-1, array.shape[-1])


def _gemm_alpha(layer: Layer) -> float:
    alpha = layer.node.attributes.get("alpha") if layer.op_type == "Gemm" else None
    return 1.0 if alpha is None else float(alpha.value)


def _refit(layer: Layer, original: np.ndarray, pruned: np.ndarray, mask: np.ndarray, sums: _Sums,
           ridge: float) -> tuple[np.ndarray | None, str]:
    """The least-squares re-fit of one MatMul/Gemm weight on its support; None (and why) when it would not
    lower the output error on the calibration data."""
    if sums.gram is None:
        return None, f"{layer.name}: no calibration rows reached it; not re-fitted"
    gram, target = sums.gram, sums.targets(layer.matmul_view(original).astype(np.float64))
    keep = layer.matmul_view(mask)
    damp = ridge * float(np.mean(np.diag(gram))) or ridge
    fitted = np.zeros(keep.shape, dtype=np.float64)
    start = layer.matmul_view(pruned).astype(np.float64)
    with _one_blas_thread():
        _solve_supports(keep, gram, target, start, damp, fitted, layer, pruned)
    before = _error(gram, target, layer.matmul_view(pruned).astype(np.float64))
    after = _error(gram, target, fitted)
    if not after < before:
        return None, f"{layer.name}: re-fit would not lower the output error; pruned weights kept"
    return layer.from_matmul_view(fitted).astype(pruned.dtype), ""


def _solve_supports(keep, gram, target, start, damp, fitted, layer, pruned) -> None:
    """One damped solve per distinct column support, written into `fitted`."""
    for support, columns in _supports(keep):
        if support.size == 0:
            continue
        system = gram[np.ix_(support, support)]
        system[np.diag_indices_from(system)] += damp
        # Ridge toward the pruned weights, not toward zero: where the samples say little, the kept weights stay.
        rhs = target[np.ix_(support, columns)] + damp * start[np.ix_(support, columns)]
        try:
            fitted[np.ix_(support, columns)] = np.linalg.solve(system, rhs)
        except np.linalg.LinAlgError:
            fitted[np.ix_(support, columns)] = layer.matmul_view(pruned)[np.ix_(support, columns)]


def _one_blas_thread():
    """Many small solves run faster on one BLAS thread (and do not fight ONNX Runtime's threads)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(1, "blas")


def _supports(keep: np.ndarray):
    """(kept rows, columns) for each distinct column support of a [K, N] keep mask."""
    packed = np.packbits(keep, axis=0).T  # one row of bytes per column
    unique, inverse = np.unique(packed, axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    for group in range(unique.shape[0]):
        columns = np.flatnonzero(inverse == group)
        yield np.flatnonzero(keep[:, columns[0]]), columns


def _error(gram: np.ndarray, target: np.ndarray, weight: np.ndarray) -> float:
    """||X_cur W - X_orig W0||^2 up to a constant: sum over columns of w^T G w - 2 w^T t."""
    return float(np.sum(weight * (gram @ weight)) - 2.0 * np.sum(weight * target))
