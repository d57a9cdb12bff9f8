"""Fold subgraphs whose inputs are all constants into initializers.

onnxscript's constant folder does this well (it evaluates with ONNX's reference runtime, folds Shape/Size of
statically known shapes, and skips non-deterministic ops), so this pass only gives it a typed config and a count.
"""

from __future__ import annotations

from dataclasses import dataclass

import onnx_ir as ir
from onnxscript.optimizer._constant_folding import FoldConstantsPass

from optimizer.passes.base import NodeCountingPass, PassConfig


@dataclass(frozen=True)
class FoldConstantsConfig(PassConfig):
    input_size_limit: int = 8 * 1024 * 1024
    """Largest constant input (elements) an op may read to be folded: larger ones are weights, left alone."""
    output_size_limit: int = 8 * 1024 * 1024
    """Largest result (elements) a fold may create, so folding never bloats the model."""


class FoldConstants(NodeCountingPass):
    name = "fold-constants"
    summary = "evaluate subgraphs of constants once, at optimization time"
    config_type = FoldConstantsConfig
    config: FoldConstantsConfig

    def inner_pass(self) -> ir.passes.PassBase:
        return FoldConstantsPass(
            shape_inference=False,  # the pipeline infers shapes once, up front
            input_size_limit=self.config.input_size_limit,
            output_size_limit=self.config.output_size_limit,
        )
