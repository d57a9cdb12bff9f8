"""Broken `If` subgraphs: silero-vad keeps its whole network inside one."""

from __future__ import annotations

from collections.abc import Iterator

import onnx
from onnx import ModelProto, helper

from .graph_edits import Mutation, node_chain, pop_attribute
from .variants import Subject, Variant


def silero_subgraphs(subject: Subject) -> Iterator[Variant]:
    """Broken `If` subgraphs (silero-vad keeps its whole network inside one), each under every command line."""
    index = 0
    for mutation in _subgraph_mutations():
        model = subject.proto()
        what = mutation(model)
        data = model.SerializeToString()
        for _ in subject.arg_sets:
            yield subject.variant("broken subgraph", what, index, data)
            index += 1


def _subgraph_mutations() -> list[Mutation]:
    def the_if(m: ModelProto) -> onnx.NodeProto:
        return next(n for n in m.graph.node if n.op_type == "If")

    def branch(m: ModelProto, name: str = "else_branch") -> onnx.GraphProto:
        return next(a for a in the_if(m).attribute if a.name == name).g

    def drop_branch(name: str) -> Mutation:
        def mutate(m: ModelProto) -> str:
            pop_attribute(the_if(m), name)
            return f"If lost its required '{name}'"
        return mutate

    def branch_as_int(m: ModelProto) -> str:
        node = the_if(m)
        pop_attribute(node, "then_branch")
        node.attribute.append(helper.make_attribute("then_branch", 1))
        return "If 'then_branch' is an INT, not a GRAPH"

    def rename_in_branch(k: int) -> Mutation:
        def mutate(m: ModelProto) -> str:
            graph = branch(m)
            produced = {o for n in graph.node for o in n.output}
            k_node = next(i for i in range(k, len(graph.node)) if any(x in produced for x in graph.node[i].input))
            node = graph.node[k_node]
            slot = next(s for s, x in enumerate(node.input) if x in produced)
            node.input[slot] = "no_such_tensor_in_branch"
            return f"else_branch node {k_node} ({node.op_type} '{node.name}') reads a missing tensor"
        return mutate

    def unknown_op_in_branch(m: ModelProto) -> str:
        node = next(n for n in branch(m).node if n.op_type == "Conv")
        node.op_type = "NoSuchOp"
        return f"else_branch node '{node.name}' has unknown op type 'NoSuchOp'"

    def drop_branch_output(m: ModelProto) -> str:
        graph = branch(m)
        name = graph.output[-1].name
        del graph.output[-1]
        return f"else_branch has 1 output, the If has 2 (dropped '{name}')"

    def ghost_branch_output(m: ModelProto) -> str:
        graph = branch(m, "then_branch")
        graph.output[0].name = "nothing_produces_this"
        return "then_branch output renamed to a tensor nothing produces"

    def outer_scope_missing(m: ModelProto) -> str:
        graph = branch(m)
        node = next(n for n in graph.node if n.input and n.op_type != "Constant")
        node.input[0] = "outer_scope_tensor_that_does_not_exist"
        return f"else_branch node '{node.name}' reads an outer-scope tensor that does not exist"

    def branch_cycle(m: ModelProto) -> str:
        graph = branch(m)
        chain = node_chain(graph, next(i for i, n in enumerate(graph.node) if n.op_type == "Conv"), 2)
        head = graph.node[chain[0]]
        head.input[0] = graph.node[chain[-1]].output[0]
        return "cycle inside else_branch"

    def branch_duplicate_output(m: ModelProto) -> str:
        graph = branch(m)
        convs = [n for n in graph.node if n.op_type == "Conv"]
        convs[1].output[0] = convs[0].output[0]
        return "two Conv nodes in else_branch write the same tensor"

    def branch_bad_constant(m: ModelProto) -> str:
        graph = branch(m)
        node = next(n for n in graph.node if n.op_type == "Constant"
                    and n.attribute[0].t.raw_data and len(n.attribute[0].t.raw_data) > 8)
        tensor = node.attribute[0].t
        tensor.raw_data = tensor.raw_data[:-3]
        return f"else_branch Constant '{node.output[0]}' holds 3 bytes fewer than its dims need"

    def branch_constant_too_long(m: ModelProto) -> str:
        graph = branch(m)
        node = next(n for n in graph.node if n.op_type == "Constant" and len(n.attribute[0].t.raw_data) > 8)
        node.attribute[0].t.raw_data += bytes(4)
        return f"else_branch Constant '{node.output[0]}' holds 4 bytes more than its dims need"

    def branch_constant_bad_type(m: ModelProto) -> str:
        graph = branch(m)
        node = [n for n in graph.node if n.op_type == "Constant"][10]
        node.attribute[0].t.data_type = 84
        return f"else_branch Constant '{node.output[0]}' has data_type 84 (not a TensorProto.DataType)"

    def nested_if_broken(m: ModelProto) -> str:
        inner = next(n for n in branch(m).node if n.op_type == "If")
        pop_attribute(inner, "else_branch")
        return f"the If nested in else_branch ('{inner.name}') lost its 'else_branch'"

    def subgraph_opset_domain(m: ModelProto) -> str:
        node = next(n for n in branch(m).node if n.op_type == "Relu")
        node.domain = "com.example.missing"
        return f"else_branch Relu '{node.name}' in a domain that is not imported"

    def if_condition_missing(m: ModelProto) -> str:
        node = the_if(m)
        del node.input[:]
        return "If has no condition input"

    return [drop_branch("then_branch"), drop_branch("else_branch"), branch_as_int, rename_in_branch(5),
            rename_in_branch(60), unknown_op_in_branch, drop_branch_output, ghost_branch_output,
            outer_scope_missing, branch_cycle, branch_duplicate_output, branch_bad_constant,
            branch_constant_too_long, branch_constant_bad_type, nested_if_broken,
            subgraph_opset_domain, if_condition_missing]
