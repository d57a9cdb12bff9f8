"""Fold inference BatchNormalization into the Conv, ConvTranspose or Gemm before it (onnxscript's rules: they
check that the weights are constants and that the BatchNorm is the only reader of the op's output)."""

from __future__ import annotations

from collections.abc import Sequence

from onnxscript.rewriter import RewriteRule
from onnxscript.rewriter.rules.common import (
    fuse_batchnorm_into_conv_rule,
    fuse_batchnorm_into_conv_transpose_rule,
    fuse_batchnorm_into_gemm_rule,
)

from optimizer.passes.base import RuleSetPass


class FoldBatchNorm(RuleSetPass):
    name = "fold-batchnorm"
    summary = "merge BatchNormalization into the preceding Conv/ConvTranspose/Gemm weights"

    def rules(self) -> Sequence[RewriteRule]:
        return [
            fuse_batchnorm_into_conv_rule,
            fuse_batchnorm_into_conv_transpose_rule,
            fuse_batchnorm_into_gemm_rule,
        ]
