"""Collapse chains of shape-only ops: Reshape∘Reshape, Transpose∘Transpose, Unsqueeze∘Unsqueeze, Slices that
cover the whole axis, Split+Slice patterns, and Reshape targets made concrete (0/-1 resolved) from known shapes.
All of these are onnxscript rules; the pass groups them and counts what they did."""

from __future__ import annotations

from collections.abc import Sequence

from onnxscript.rewriter import RewriteRule
from onnxscript.rewriter.rules.common import (
    collapse_slice2_rule,
    collapse_slice_rule,
    materialize_reshape_shape_rule,
    reshape_reshape_rule,
    slice_split_rule,
    squeeze_reshape_1d_rule,
    transpose_transpose_rule,
    unsqueeze_unsqueeze_rule,
)

from optimizer.passes.base import RuleSetPass


class SimplifyShapeOps(RuleSetPass):
    name = "simplify-shape-ops"
    summary = "merge consecutive Reshape/Transpose/Unsqueeze and drop Slices that keep everything"

    def rules(self) -> Sequence[RewriteRule]:
        return [
            reshape_reshape_rule,
            transpose_transpose_rule,
            unsqueeze_unsqueeze_rule,
            squeeze_reshape_1d_rule,
            collapse_slice_rule,
            collapse_slice2_rule,
            slice_split_rule,
            materialize_reshape_shape_rule,
        ]
