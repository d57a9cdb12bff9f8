"""Fuse activations spelled out as arithmetic into the single ops ONNX Runtime runs as one kernel.

- `x * Clip(x + 3, 0, 6) / 6` and its HardSigmoid forms → HardSwish / HardSigmoid (onnxscript's rules). ORT also
  fuses HardSigmoid into a preceding Conv.
- Min/Max with constants → Clip; Relu∘Relu, Clip∘Clip, Relu∘Clip → one op (onnxscript's rules). ORT fuses Conv+Clip.
- `0.5 * x * (1 + Erf(x / √2))` → Gelu, on opset 20+ where Gelu is a standard op (written here: onnxscript only
  fuses Gelu into the com.microsoft domain, which other runtimes cannot read).
"""

from __future__ import annotations

import math

import onnx_ir as ir
from onnxscript.rewriter import MatchResult, RewriteRuleClassBase, RewriteRuleSet
from onnxscript.rewriter.rules.common import (
    fuse_hardswish_rules,
    max_max_rule,
    max_min_rule,
    min_max_rule,
    min_min_rule,
    successive_clip_relu_rule,
    successive_clip_rule,
    successive_relu_clip_rule,
    successive_relu_rule,
)

from optimizer.ir import default_opset_version
from optimizer.passes.base import OptimizerPass

_GELU_MIN_OPSET = 20


def _is_scalar(value: ir.Value, expected: float, tolerance: float = 1e-6) -> bool:
    tensor = value.const_value
    if tensor is None or tensor.size != 1:
        return False
    return abs(float(tensor.numpy().reshape(())) - expected) <= tolerance * max(1.0, abs(expected))


class ErfGeluToGelu(RewriteRuleClassBase):
    """`(x * 0.5) * (1 + Erf(x / √2))`, the form PyTorch exports for exact GELU before opset 20."""

    def pattern(self, op, x, half, one, sqrt2):
        return op.Mul(op.Mul(x, half), op.Add(op.Erf(op.Div(x, sqrt2)), one))

    def check(self, context, x, half, one, sqrt2) -> MatchResult:
        result = MatchResult()
        if not (_is_scalar(half, 0.5) and _is_scalar(one, 1.0) and _is_scalar(sqrt2, math.sqrt(2))):
            return result.fail("constants are not those of GELU")
        return result

    def rewrite(self, op, x, half, one, sqrt2):
        return op.Gelu(x, approximate="none")


class ErfGeluToGeluHalfLast(ErfGeluToGelu):
    """`(x * (1 + Erf(x / √2))) * 0.5`, the other order exporters use."""

    def pattern(self, op, x, half, one, sqrt2):
        return op.Mul(op.Mul(x, op.Add(op.Erf(op.Div(x, sqrt2)), one)), half)


_CLIP_AND_HARDSWISH_RULES = RewriteRuleSet(
    [
        *fuse_hardswish_rules().rules,
        min_min_rule,
        max_max_rule,
        min_max_rule,
        max_min_rule,
        successive_relu_rule,
        successive_clip_rule,
        successive_clip_relu_rule,
        successive_relu_clip_rule,
    ]
)
_GELU_RULES = RewriteRuleSet(
    [*ErfGeluToGelu.rule().commute(), *ErfGeluToGeluHalfLast.rule().commute()]
)


class FuseActivations(OptimizerPass):
    name = "fuse-activations"
    summary = "HardSwish/HardSigmoid, Clip and Gelu from their arithmetic forms"

    def rewrite(self, model: ir.Model) -> int:
        rewrites = _CLIP_AND_HARDSWISH_RULES.apply_to_model(model)
        if default_opset_version(model) >= _GELU_MIN_OPSET:
            rewrites += _GELU_RULES.apply_to_model(model)
        return rewrites
