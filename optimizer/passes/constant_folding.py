"""Fold subgraphs whose inputs are all constants into initializers.

onnxscript's constant folder does this well (it evaluates with ONNX's reference runtime, folds Shape/Size of
statically known shapes, and skips non-deterministic ops), so this pass gives it a typed config and a count,
and steps around two bugs of onnxscript 0.7.2 that the ONNX conformance suite finds:

- its CastLike evaluator replaces `CastLike<saturate=0>(x, like)` by a Cast without `saturate`/`round_mode`,
  so float8 casts clamp where they should give NaN/inf. We turn CastLike into the equivalent Cast ourselves,
  keeping every attribute, before the folder sees it;
- its SplitToSequence evaluator crashes on a non-constant scalar `split` whose shape is known, so that shape
  is hidden from it for the duration of the fold.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

import onnx_ir as ir
from onnxscript.optimizer._constant_folding import FoldConstantsPass

from optimizer.ir import all_nodes, is_standard_op
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
            shape_inference=False,  # the pipeline infers shapes once per stage
            input_size_limit=self.config.input_size_limit,
            output_size_limit=self.config.output_size_limit,
        )

    def rewrite(self, model: ir.Model) -> int:
        casts = _castlike_to_cast(model)
        with _scalar_split_shapes_hidden(model):
            return casts + super().rewrite(model)


def _castlike_to_cast(model: ir.Model) -> int:
    """`CastLike(x, like)` with a known `like` element type is `Cast<to=that type>(x)`, attributes and all."""
    changed = 0
    for node in list(all_nodes(model)):
        if node.op_type != "CastLike" or not is_standard_op(node) or len(node.inputs) != 2:
            continue
        like = node.inputs[1]
        if like is None or like.dtype is None:
            continue
        attributes = [ir.Attr(a.name, a.type, a.value) for a in node.attributes.values()]
        attributes.append(ir.AttrInt64("to", like.dtype.value))
        cast = ir.Node("", "Cast", inputs=[node.inputs[0]], attributes=attributes, name=node.name)
        node.graph.insert_after(node, cast)
        cast.outputs[0].type = node.outputs[0].type
        cast.outputs[0].shape = node.outputs[0].shape
        name = node.outputs[0].name
        ir.convenience.replace_all_uses_with(node.outputs[0], cast.outputs[0], replace_graph_outputs=True)
        node.outputs[0].name = None
        cast.outputs[0].name = name
        node.graph.remove(node, safe=True)
        changed += 1
    return changed


@contextlib.contextmanager
def _scalar_split_shapes_hidden(model: ir.Model) -> Iterator[None]:
    hidden: list[tuple[ir.Value, ir.Shape]] = []
    for node in all_nodes(model):
        if node.op_type != "SplitToSequence" or len(node.inputs) < 2:
            continue
        split = node.inputs[1]
        if split is not None and split.const_value is None and split.shape is not None and split.shape.rank() == 0:
            hidden.append((split, split.shape))
            split.shape = None
    try:
        yield
    finally:
        for value, shape in hidden:
            value.shape = shape
