"""What a user can ask of pruning, validated up front so a bad option fails before any work."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from optimizer.errors import UsageError

METHODS = ("unstructured", "n:m", "block", "channels")
SCOPES = ("layer", "global")
IMPORTANCES = ("l1", "l2", "activation")


@dataclass(frozen=True)
class PruningOptions:
    method: str = "block"
    """unstructured (magnitude), n:m (semi-structured, 2:4 by default), block (what the block-sparse kernels
    exploit), or channels (structured: removes channels from the graph)."""
    sparsity: float = 0.5
    """The fraction of weights (unstructured, block) or channels (channels) removed; n:m is fixed by N and M."""
    scope: str = "layer"
    """layer: each layer pruned to `sparsity`; global: one magnitude threshold across all layers."""
    n: int = 2
    m: int = 4
    block_shape: tuple[int, int] = (1, 16)
    """(along the input dimension, along the output dimension) of each MatMul/Gemm weight [K, N]."""
    importance: str = "l1"
    """l1 / l2 of the weights, or activation: weights scaled by their input's magnitude on calibration data."""
    sensitivity: bool = False
    """Measure each layer's output-fidelity loss when pruned alone and prune the sensitive layers less."""
    recover: bool = True
    """Label-free recovery on calibration data: re-fit the kept weights / biases and normalization statistics."""
    calibration: Any = None
    """Unlabeled inputs for activation importance, sensitivity and recovery (same forms as quantization's)."""
    calibration_samples: int = 32
    exclude: tuple[str, ...] = ()
    """Node names or op types (globs) left unpruned."""
    ops: tuple[str, ...] = ()
    """Op types to prune (default: Conv, MatMul, Gemm with constant weights; channels: Conv)."""
    fine_tune_steps: int = 0
    """PyTorch models only: distillation steps against the original's outputs after pruning (0: none)."""

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise UsageError(f"unknown pruning method '{self.method}'; choose one of {', '.join(METHODS)}")
        if self.scope not in SCOPES:
            raise UsageError(f"unknown pruning scope '{self.scope}'; choose one of {', '.join(SCOPES)}")
        if self.importance not in IMPORTANCES:
            raise UsageError(f"unknown importance '{self.importance}'; choose one of {', '.join(IMPORTANCES)}")
        if not 0.0 <= self.sparsity < 1.0:
            raise UsageError(f"sparsity must be in [0, 1), not {self.sparsity}")
        if not 0 < self.n <= self.m:
            raise UsageError(f"N:M pruning needs 0 < N <= M, not {self.n}:{self.m}")
        if len(self.block_shape) != 2 or min(self.block_shape) < 1:
            raise UsageError(f"block shape must be two positive sizes, not {self.block_shape}")
        if self.calibration_samples < 1:
            raise UsageError(f"calibration samples must be at least 1, not {self.calibration_samples}")
        if self.fine_tune_steps < 0:
            raise UsageError(f"fine-tune steps must be >= 0, not {self.fine_tune_steps}")
        if isinstance(self.exclude, str):
            object.__setattr__(self, "exclude", (self.exclude,))
        object.__setattr__(self, "block_shape", tuple(int(size) for size in self.block_shape))
