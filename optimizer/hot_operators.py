"""The hot-operator pass: hand an operator to one of hwopt's custom kernels only where the whole model runs faster.

A custom kernel that wins a micro-benchmark can still lose inside a model: the runtime stops fusing around it,
changes layouts at its edges, or hands it one thread. So the decision is an A/B measurement of the whole
model in the target's runtime, one group of nodes at a time:

1. find the nodes a custom kernel could run (today: MatMul/Gemm with block-sparse constant weights, with the
   bias and activation after them, for hwopt's BlockSparseMatMul; optimizer/passes/block_sparse_matmul.py);
2. compile the model as it is and profile it in the runtime (operator types ranked by time), so the report
   shows how hot the candidates' operator types are;
3. group the candidates by weight shape and activation (the layers of one kind in a transformer) and, hottest
   first (most dense FLOPs), compile the model with that group substituted and time it against the current
   best in alternating rounds; a group is kept if the model's median is at least MIN_GAIN faster.

The report lists every group with both medians and the decision, and the runtime's profile.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx_ir as ir

from optimizer import ir as hir
from optimizer.artifact import Artifact, Manifest, model_io_specs, write_manifest
from optimizer.backends.base import CompileOptions
from optimizer.backends.onnxruntime import compare_latency
from optimizer.backends.registry import get_backend
from optimizer.errors import HwoptError
from optimizer.kernels.custom_ops import BLOCK_SPARSE_MATMUL, runtimes_for
from optimizer.passes.block_sparse_matmul import (
    DEFAULT_BLOCK_SHAPE,
    BlockSparseMatMulConfig,
    MatMulChain,
    SubstituteBlockSparseMatMul,
    chain_density,
    find_chains,
)

logger = logging.getLogger("optimizer")

MAX_DENSITY = 0.8
"""Weights with more of their blocks than this are not tried: the block-sparse kernel does the dense work
plus indexing there (bench_block_sparse.py)."""
MIN_GAIN = 0.03
"""A substitution must make the model's median at least 3% faster: less is within this machine's noise."""
PROFILE_TOP = 8


@dataclass
class KernelDecision:
    kernel: str
    nodes: list[str]
    weight_shape: tuple[int, int]
    fused: str
    """What each node folds in besides the MatMul ("bias+gelu", "bias", "matmul")."""
    density: float
    """Mean fraction of nonzero blocks of the group's weights."""
    baseline_ms: float | None = None
    custom_ms: float | None = None
    substituted: bool = False
    reason: str = ""

    @property
    def speedup(self) -> float | None:
        if not self.baseline_ms or not self.custom_ms:
            return None
        return self.baseline_ms / self.custom_ms


@dataclass
class HotOperatorReport:
    runtime: str
    block_shape: tuple[int, int] = DEFAULT_BLOCK_SHAPE
    profile: list[dict[str, Any]] = field(default_factory=list)
    """The runtime's operator types before any substitution: op_type, total_ms, percent (hottest first)."""
    decisions: list[KernelDecision] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def substituted_nodes(self) -> list[str]:
        return [name for decision in self.decisions if decision.substituted for name in decision.nodes]

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for decision, entry in zip(self.decisions, data["decisions"]):
            entry["speedup"] = decision.speedup
        return data


def candidate_groups(model: ir.Model, block_shape: tuple[int, int] = DEFAULT_BLOCK_SHAPE,
                     max_density: float = MAX_DENSITY) -> list[list[MatMulChain]]:
    """The MatMul chains sparse enough to try, grouped by (weight shape, fused ops), most dense FLOPs first."""
    hir.infer_shapes(model)
    groups: dict[tuple, list[MatMulChain]] = {}
    for chain in find_chains(model.graph, block_shape):
        if chain_density(chain, block_shape) <= max_density:
            groups.setdefault((chain.weight.shape, chain.activation, chain.bias is not None), []).append(chain)
    # Dense FLOPs per row of x are the weights' elements: the ranking needs no shapes of x.
    return sorted(groups.values(), key=lambda chains: -sum(chain.weight.size for chain in chains))


def substitute_hot_operators(model: ir.Model, backend: str, options: CompileOptions,
                             feeds: Mapping[str, np.ndarray], scratch: Path, *,
                             block_shape: tuple[int, int] = DEFAULT_BLOCK_SHAPE) -> HotOperatorReport:
    """Substitute, in place, the groups of `model`'s nodes whose custom kernel makes the whole model faster in
    `backend` on `feeds`; `scratch` holds the trial builds and is removed."""
    report = HotOperatorReport(backend, block_shape)
    groups = candidate_groups(model, block_shape)
    inputs = {value.name for value in model.graph.inputs}
    feeds = {name: array for name, array in feeds.items() if name in inputs}  # frozen inputs are constants now
    if not groups:
        return report
    decisions = [_decision(group, block_shape) for group in groups]
    report.decisions = decisions
    if backend not in runtimes_for(BLOCK_SPARSE_MATMUL):
        for decision in decisions:
            decision.reason = f"no {BLOCK_SPARSE_MATMUL} kernel for {backend}"
        return report
    runtime = get_backend(backend)
    try:
        best = _build(runtime, model, options, scratch / "baseline")
        report.profile = _profile(runtime, best, feeds, options.threads, report)
        best_session = runtime.load(best, threads=options.threads)
        accepted: set[str] = set()
        for index, (group, decision) in enumerate(zip(groups, decisions)):
            trial = model.clone()
            names = accepted | {chain.label for chain in group}
            SubstituteBlockSparseMatMul(BlockSparseMatMulConfig(block_shape, 1.0, frozenset(names)))(trial)
            artifact = _build(runtime, trial, options, scratch / f"trial-{index}")
            session = runtime.load(artifact, threads=options.threads)
            baseline, custom = compare_latency(best_session, session, feeds)
            decision.baseline_ms, decision.custom_ms = baseline.median_ms, custom.median_ms
            if custom.median_ms <= baseline.median_ms * (1 - MIN_GAIN):
                decision.substituted, decision.reason = True, "faster in the whole model"
                accepted, best_session = names, session
            else:
                decision.reason = f"not faster in the whole model (needs {MIN_GAIN:.0%})"
    except Exception as error:  # noqa: BLE001 - any trial failure (build, compile, run) must leave the dense model
        # A kernel that cannot be built or run here leaves the model as it was: the dense model still works.
        for decision in decisions:
            decision.substituted, decision.reason = False, f"custom kernel unavailable: {error}"
        return report
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    if accepted:
        SubstituteBlockSparseMatMul(BlockSparseMatMulConfig(block_shape, 1.0, frozenset(accepted)))(model)
    return report


def _decision(group: Sequence[MatMulChain], block_shape: tuple[int, int]) -> KernelDecision:
    first = group[0]
    fused = "+".join(part for part in ("bias" if first.bias is not None else "",
                                       first.activation if first.activation != "none" else "") if part)
    density = float(np.mean([chain_density(chain, block_shape) for chain in group]))
    return KernelDecision(kernel=f"{BLOCK_SPARSE_MATMUL} {block_shape[0]}x{block_shape[1]}",
                          nodes=[chain.label for chain in group], weight_shape=tuple(first.weight.shape),
                          fused=fused or "matmul", density=round(density, 4))


def _build(runtime, model: ir.Model, options: CompileOptions, folder: Path) -> Artifact:
    folder.mkdir(parents=True, exist_ok=True)
    compiled = runtime.compile(model, options, folder)
    inputs, outputs = model_io_specs(model)
    return write_manifest(folder, Manifest(
        target=options.target.name, runtime=runtime.name, runtime_version=compiled.runtime_version,
        device=compiled.device, precision=options.precision, entry=compiled.entry,
        inputs=compiled.inputs if compiled.inputs is not None else inputs,
        outputs=compiled.outputs if compiled.outputs is not None else outputs,
        details=compiled.details, runs_here=compiled.runs_here))


def _profile(runtime, artifact: Artifact, feeds, threads: int | None, report: HotOperatorReport) -> list[dict]:
    try:
        operators = runtime.profile_operators(artifact, feeds, threads=threads)
    except HwoptError as error:
        report.notes.append(f"no operator profile: {error}")
        return []
    return [{"op_type": op.op_type, "total_ms": round(op.total_ms, 4), "percent": round(op.percent, 2)}
            for op in operators[:PROFILE_TOP]]
