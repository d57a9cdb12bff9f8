"""Turn `Add(MatMul(a, b), c)` on 2-D operands (and its transposed forms) into one Gemm, which every CPU
runtime runs as a single BLAS call with the bias fused (onnxscript's rules, rank-checked)."""

from __future__ import annotations

from collections.abc import Sequence

from onnxscript.rewriter import RewriteRule
from onnxscript.rewriter.rules.common import (
    matmul_add_to_gemm_rule,
    transpose_a_matmul_add_to_gemm_rule,
    transpose_ab_matmul_add_to_gemm_rule,
    transpose_b_matmul_add_to_gemm_rule,
)

from optimizer.passes.base import RuleSetPass


class MatMulAddToGemm(RuleSetPass):
    name = "matmul-add-to-gemm"
    summary = "fuse 2-D MatMul + Add (and transposes of the operands) into Gemm"

    def rules(self) -> Sequence[RewriteRule]:
        return [
            matmul_add_to_gemm_rule,
            transpose_a_matmul_add_to_gemm_rule,
            transpose_b_matmul_add_to_gemm_rule,
            transpose_ab_matmul_add_to_gemm_rule,
        ]
