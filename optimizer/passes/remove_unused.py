"""Remove what nothing reads: dead nodes, unused initializers, functions and opset imports."""

from __future__ import annotations

import onnx_ir as ir
from onnx_ir.passes.common import (
    RemoveUnusedFunctionsPass,
    RemoveUnusedNodesPass,
    RemoveUnusedOpsetsPass,
)

from optimizer.passes.base import NodeCountingPass


class RemoveUnused(NodeCountingPass):
    name = "remove-unused"
    summary = "delete nodes, initializers, functions and opsets that no output depends on"

    def inner_pass(self) -> ir.passes.PassBase:
        return ir.passes.Sequential(
            RemoveUnusedNodesPass(), RemoveUnusedFunctionsPass(), RemoveUnusedOpsetsPass()
        )
