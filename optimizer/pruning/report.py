"""What pruning did: per-layer sparsity, the graph's parameters and FLOPs before and after, and the fidelity cost."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass
class LayerPruning:
    name: str
    """The node's name (or its first output's name when the node has none)."""
    op_type: str
    weight_shape_before: tuple[int, ...]
    weight_shape_after: tuple[int, ...]
    sparsity: float
    """Zero weights / all weights of the layer after pruning (0 for a layer shrunk by channel removal, whose
    removed channels show in its shape)."""
    target_sparsity: float | None = None
    """What this layer was asked for (per-layer sensitivity can make it differ from the option)."""
    note: str = ""


@dataclass
class GraphCost:
    parameters: int
    """Elements of the weights of compute layers (Conv, ConvTranspose, MatMul, Gemm with constant weights)."""
    nonzero_parameters: int
    flops: int
    """Dense multiply-adds x 2 of the compute layers at the model's (fixed or calibration) input shapes."""
    nonzero_flops: int
    """The same counting only nonzero weights: what a sparse kernel could skip."""


@dataclass
class PruningReport:
    method: str
    sparsity: float
    scope: str
    importance: str
    layers: list[LayerPruning] = field(default_factory=list)
    before: GraphCost | None = None
    after: GraphCost | None = None
    fidelity: dict[str, float] = field(default_factory=dict)
    """Output cosine of the pruned model against the original on calibration data: 'pruned' before recovery,
    'recovered' after it (the worst output, mean over samples)."""
    recovery: list[str] = field(default_factory=list)
    """What the label-free recovery did, one line per step."""
    sensitivity: dict[str, float] = field(default_factory=dict)
    """Layer -> output cosine when that layer alone is pruned (per-layer sensitivity, when asked)."""
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def pruned_layers(self) -> int:
        return len(self.layers)
