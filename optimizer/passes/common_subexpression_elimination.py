"""Merge nodes that compute the same thing from the same inputs (onnx-ir's CSE, recursing into subgraphs)."""

from __future__ import annotations

from dataclasses import dataclass

import onnx_ir as ir
from onnx_ir.passes.common import CommonSubexpressionEliminationPass

from optimizer.passes.base import NodeCountingPass, PassConfig


@dataclass(frozen=True)
class CommonSubexpressionConfig(PassConfig):
    constant_size_limit: int = 10
    """Constants up to this many elements are compared by value; larger ones only by identity (cheap)."""


class EliminateCommonSubexpressions(NodeCountingPass):
    name = "eliminate-common-subexpressions"
    summary = "compute each distinct expression once"
    config_type = CommonSubexpressionConfig
    config: CommonSubexpressionConfig

    def inner_pass(self) -> ir.passes.PassBase:
        return CommonSubexpressionEliminationPass(size_limit=self.config.constant_size_limit)
