"""Upgrade the model to a newer ONNX opset, so later passes can use ops that only exist there (Gelu: 20).

Never downgrades: a model already at or above the target is left alone.
"""

from __future__ import annotations

from dataclasses import dataclass

import onnx_ir as ir

from optimizer.ir import upgrade_opset
from optimizer.passes.base import OptimizerPass, PassConfig


@dataclass(frozen=True)
class UpgradeOpsetConfig(PassConfig):
    target_version: int = 21
    """Opset of the default ONNX domain to reach; 21 is what ONNX Runtime 1.18+ and OpenVINO 2024+ run."""


class UpgradeOpset(OptimizerPass):
    name = "upgrade-opset"
    summary = "convert the model to a newer opset of the default domain"
    config_type = UpgradeOpsetConfig
    config: UpgradeOpsetConfig

    def rewrite(self, model: ir.Model) -> int:
        return int(upgrade_opset(model, self.config.target_version))
