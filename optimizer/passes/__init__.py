"""Graph passes, one per file, listed in one explicit table.

Each pass is an onnx-ir InPlacePass with a typed config (see base.py). Pipelines (optimizer/pipeline.py) name
passes by the keys of PASSES.
"""

from __future__ import annotations

from optimizer.errors import UsageError
from optimizer.passes.activation_fusion import FuseActivations
from optimizer.passes.base import OptimizerPass, PassConfig, RuleSetPass
from optimizer.passes.block_sparse_matmul import (
    BlockSparseMatMulConfig,
    SubstituteBlockSparseMatMul,
)
from optimizer.passes.common_subexpression_elimination import (
    CommonSubexpressionConfig,
    EliminateCommonSubexpressions,
)
from optimizer.passes.constant_folding import FoldConstants, FoldConstantsConfig
from optimizer.passes.decompose_inner_softmax import DecomposeInnerSoftmax
from optimizer.passes.fix_input_shapes import FixInputShapes, FixInputShapesConfig
from optimizer.passes.fold_batchnorm import FoldBatchNorm
from optimizer.passes.freeze_inputs import FreezeInputs, FreezeInputsConfig
from optimizer.passes.identity_elimination import EliminateIdentity
from optimizer.passes.matmul_add_to_gemm import MatMulAddToGemm
from optimizer.passes.remove_unused import RemoveUnused
from optimizer.passes.separate_skip_layernorm import SeparateSkipLayerNorm
from optimizer.passes.simplify_shape_ops import SimplifyShapeOps
from optimizer.passes.upgrade_opset import UpgradeOpset, UpgradeOpsetConfig

PASSES: dict[str, type[OptimizerPass]] = {
    cls.name: cls
    for cls in (
        FixInputShapes,
        FreezeInputs,
        FoldConstants,
        RemoveUnused,
        EliminateIdentity,
        EliminateCommonSubexpressions,
        SimplifyShapeOps,
        FoldBatchNorm,
        MatMulAddToGemm,
        FuseActivations,
        SeparateSkipLayerNorm,
        DecomposeInnerSoftmax,
        UpgradeOpset,
        SubstituteBlockSparseMatMul,
    )
}


def create_pass(name: str, config: PassConfig | None = None) -> OptimizerPass:
    try:
        pass_type = PASSES[name]
    except KeyError:
        raise UsageError(f"unknown pass '{name}'; known passes: {', '.join(PASSES)}") from None
    return pass_type(config)


__all__ = [
    "PASSES",
    "BlockSparseMatMulConfig",
    "CommonSubexpressionConfig",
    "DecomposeInnerSoftmax",
    "EliminateCommonSubexpressions",
    "EliminateIdentity",
    "FixInputShapes",
    "FixInputShapesConfig",
    "FoldBatchNorm",
    "FoldConstants",
    "FoldConstantsConfig",
    "FreezeInputs",
    "FreezeInputsConfig",
    "FuseActivations",
    "MatMulAddToGemm",
    "OptimizerPass",
    "PassConfig",
    "RemoveUnused",
    "RuleSetPass",
    "SeparateSkipLayerNorm",
    "SimplifyShapeOps",
    "SubstituteBlockSparseMatMul",
    "UpgradeOpset",
    "UpgradeOpsetConfig",
    "create_pass",
]
