"""Remove nodes that pass their input through unchanged.

Identity, Dropout in inference, Cast to the type it already has, Expand/Transpose/Reshape that keep the shape,
and arithmetic with a neutral constant (x+0, x-0, x*1, x/1, shape-checked so broadcasting never changes).
onnxscript has rules for most no-ops, which turn them into Identity nodes; those are then removed here.
onnxscript has no rule for a Reshape whose target equals the input's static shape, and its Dropout rules only
match a Dropout whose ratio or training_mode is spelled out (exporters usually write a bare `Dropout(x)`), so
those two are written here.

Identity removal is our own too: onnx-ir's IdentityEliminationPass (1.1) also removes the Identity a subgraph
needs to output a value of the enclosing graph (and raises), and merges `y = Identity(x)` when both x and y
are graph outputs (a Scan body's state and scan outputs), which changes results.
"""

from __future__ import annotations

import onnx_ir as ir
from onnxscript.rewriter import MatchResult, RewriteRuleClassBase, RewriteRuleSet
from onnxscript.rewriter.rules.common import (
    add_0_rule,
    div_by_1_rule,
    dropout_inference_rule,
    dropout_zero_rule,
    mul_by_1_rule,
    no_op_cast_rule,
    no_op_expand_rule,
    no_op_transpose_rule,
    sub_0_rule,
)

from optimizer.ir import is_standard_op
from optimizer.passes.base import OptimizerPass


class ReshapeToSameShape(RewriteRuleClassBase):
    """`Reshape(x, shape)` where x's static shape already is the result's static shape."""

    def pattern(self, op, x, shape):
        return op.Reshape(x, shape, _allow_other_attributes=True)

    def check(self, context, x: ir.Value, shape: ir.Value) -> MatchResult:
        result = MatchResult()
        output_shape = context.output_values[0].shape
        if x.shape is None or output_shape is None:
            return result.fail("shapes unknown")
        if not (x.shape.is_static() and output_shape.is_static()):
            return result.fail("dynamic shape")
        if x.shape.dims != output_shape.dims:
            return result.fail("shape changes")
        return result

    def rewrite(self, op, x, shape):
        return op.Identity(x)


def _dropout_in_inference(node: ir.Node) -> bool:
    """A Dropout that runs in inference mode and whose mask nobody reads is an Identity."""
    if node.op_type != "Dropout" or not is_standard_op(node):
        return False
    if len(node.outputs) > 1 and (node.outputs[1].uses() or node.outputs[1].is_graph_output()):
        return False
    is_test = node.attributes.get("is_test")  # opsets 1-6 spelled inference mode as is_test=1
    if is_test is not None:
        return is_test.as_int() == 1
    training = node.inputs[2] if len(node.inputs) > 2 else None
    if training is None:
        return True
    value = training.const_value
    return value is not None and not bool(value.numpy().reshape(()))


def _replace_dropouts(graph: ir.Graph | ir.Function) -> int:
    """Turn inference Dropouts into Identity nodes in place (names and graph outputs stay as they are)."""
    replaced = 0
    for node in ir.traversal.RecursiveGraphIterator(graph):
        if not _dropout_in_inference(node):
            continue
        node.resize_inputs(1)
        node.resize_outputs(1)
        for name in list(node.attributes):
            del node.attributes[name]
        node.op_type = "Identity"
        replaced += 1
    return replaced


def _remove_identity(node: ir.Node) -> int:
    """Bypass `y = Identity(x)`; when y is a graph output, x takes y's place and name, if it can."""
    if node.op_type != "Identity" or not is_standard_op(node):
        return 0
    if len(node.inputs) != 1 or len(node.outputs) != 1 or node.inputs[0] is None:
        return 0
    x, y = node.inputs[0], node.outputs[0]
    graph = node.graph
    if y.is_graph_output():
        keeps_identity = (
            x.is_graph_input()
            or x.is_initializer()
            or x.is_graph_output()  # two outputs would become one value
            or x.producer() is None
            or x.producer().graph is not graph  # a subgraph outputs an outer value only through a node
        )
        if keeps_identity:
            return 0
    if y.type is not None and x.type is None:
        x.type = y.type
    if x.shape is None and y.shape is not None:
        x.shape = y.shape
    was_output = y.is_graph_output()
    ir.convenience.replace_all_uses_with(y, x, replace_graph_outputs=True)
    if was_output:
        name = y.name
        y.name = None
        x.name = name
    graph.remove(node, safe=True)
    return 1


_NO_OP_RULES = RewriteRuleSet(
    [
        *mul_by_1_rule.commute(),
        *add_0_rule.commute(),
        sub_0_rule,
        div_by_1_rule,
        dropout_zero_rule,
        dropout_inference_rule,
        no_op_cast_rule,
        no_op_expand_rule,
        no_op_transpose_rule,
        ReshapeToSameShape.rule(),
    ]
)


class EliminateIdentity(OptimizerPass):
    name = "eliminate-identity"
    summary = "remove Identity, inference Dropout and ops that keep their input unchanged"

    def rewrite(self, model: ir.Model) -> int:
        rewrites = _NO_OP_RULES.apply_to_model(model)
        for graph_like in (model.graph, *model.functions.values()):
            rewrites += _replace_dropouts(graph_like)
        for graph_like in (model.graph, *model.functions.values()):
            for node in list(ir.traversal.RecursiveGraphIterator(graph_like)):
                rewrites += _remove_identity(node)
        return rewrites
