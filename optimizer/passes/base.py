"""What every hwopt pass shares: a typed config, and a count of the rewrites it made.

Passes are onnx-ir `InPlacePass`es, so onnx-ir's PassManager can repeat them to a fixpoint. Each subclass
implements `rewrite(model) -> int`, the number of changes it made (nodes removed, patterns fused...), which the
pipeline adds up across iterations and puts in the report.
"""

from __future__ import annotations

import abc
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import onnx_ir as ir
from onnxscript.rewriter import RewriteRule, RewriteRuleSet

from optimizer.ir import count_nodes


@dataclass(frozen=True)
class PassConfig:
    """Base of the typed configs; a pass without options uses it as is."""


class OptimizerPass(ir.passes.InPlacePass):
    """A pass with a name, a typed config and bookkeeping of what it changed across runs."""

    name: ClassVar[str]
    summary: ClassVar[str]
    config_type: ClassVar[type[PassConfig]] = PassConfig

    def __init__(self, config: PassConfig | None = None) -> None:
        super().__init__()
        if config is not None and not isinstance(config, self.config_type):
            raise TypeError(f"pass '{self.name}' takes a {self.config_type.__name__}, not {type(config).__name__}")
        self.config = config if config is not None else self.config_type()
        self.total_rewrites = 0
        self.total_seconds = 0.0

    def call(self, model: ir.Model) -> ir.passes.PassResult:
        start = time.perf_counter()
        rewrites = self.rewrite(model)
        self.total_seconds += time.perf_counter() - start
        self.total_rewrites += rewrites
        return ir.passes.PassResult(model, modified=rewrites > 0)

    @abc.abstractmethod
    def rewrite(self, model: ir.Model) -> int:
        """Change `model` in place and return how many changes were made (0: nothing to do)."""


class RuleSetPass(OptimizerPass):
    """A pass made of onnxscript rewrite rules (pattern / check / rewrite), counted by applications."""

    @abc.abstractmethod
    def rules(self) -> Sequence[RewriteRule]:
        """The rewrite rules this pass applies."""

    def __init__(self, config: PassConfig | None = None) -> None:
        super().__init__(config)
        self._rule_set = RewriteRuleSet(list(self.rules()))

    def rewrite(self, model: ir.Model) -> int:
        return self._rule_set.apply_to_model(model)


class NodeCountingPass(OptimizerPass):
    """A pass wrapping an onnx-ir pass that reports only `modified`: its count is the nodes it removed."""

    @abc.abstractmethod
    def inner_pass(self) -> ir.passes.PassBase:
        """The wrapped onnx-ir pass."""

    def rewrite(self, model: ir.Model) -> int:
        before = count_nodes(model)
        modified = self.inner_pass()(model).modified
        removed = before - count_nodes(model)
        # A modification that kept the node count (a rewrite in place) still counts as one change.
        return max(removed, 1) if modified else 0
