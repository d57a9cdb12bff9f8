"""Semantic damage, made with onnx's protobuf classes: the file parses, the main graph breaks a rule of ONNX.

Here the generator and the damage to single nodes (wiring, op types, attributes, arity); the damage to the graph
as a whole (tensors, names, order, versions) is in semantic_graph.py.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import onnx
from onnx import AttributeProto, ModelProto, helper, numpy_helper

from .graph_edits import Mutation, Mutations, first_node, has_node, pop_attribute, spread
from .semantic_graph import (
    name_clash_mutations,
    tensor_mutations,
    topology_mutations,
    version_mutations,
)
from .variants import Subject, Variant


def semantic(subject: Subject) -> Iterator[Variant]:
    """Rules of ONNX broken on purpose in the main graph (each invalid by construction unless marked)."""
    for index, (mutation, proven) in enumerate(_semantic_mutations(subject.proto())):
        model = subject.proto()
        what = mutation(model)
        yield subject.variant("semantic", what, index, model.SerializeToString(),
                              oracle=None if proven else subject.name)


def _semantic_mutations(model: ModelProto) -> Mutations:
    graph = model.graph
    return [*_node_mutations(graph), *_attribute_mutations(graph), *tensor_mutations(graph),
            *name_clash_mutations(graph), *topology_mutations(graph), *version_mutations(),
            *_arity_mutations()]


def _node_mutations(graph: onnx.GraphProto) -> Mutations:
    """Nodes reading a missing tensor, of an unknown op type, in a domain not imported."""
    produced = {o for n in graph.node for o in n.output}
    picks = spread(range(len(graph.node)), 12)
    mutations: Mutations = []

    def rename_input(k: int, slot: int) -> Mutation:
        def mutate(m: ModelProto) -> str:
            node = m.graph.node[k]
            old = node.input[slot]
            node.input[slot] = f"no_such_tensor_{k}"
            return f"node {k} ({node.op_type} '{node.name}') input {slot} '{old}' renamed to a missing tensor"
        return mutate

    for k in picks:
        slot = max(range(len(graph.node[k].input)), key=lambda s: graph.node[k].input[s] in produced)
        mutations.append((rename_input(k, slot), True))

    def set_op_type(k: int, op_type: str) -> Mutation:
        def mutate(m: ModelProto) -> str:
            node = m.graph.node[k]
            old, node.op_type = node.op_type, op_type
            return f"node {k} ({old} '{node.name}') op_type changed to unknown '{op_type}'"
        return mutate

    for k, op_type in zip(spread(range(len(graph.node)), 6), ("NoSuchOp", "conv", "", "Conv2D", "Sigmoid ", "Mull")):
        if graph.node[k].op_type != op_type:
            mutations.append((set_op_type(k, op_type), True))

    def set_domain(k: int, domain: str) -> Mutation:
        def mutate(m: ModelProto) -> str:
            node = m.graph.node[k]
            node.domain = domain
            return f"node {k} ({node.op_type} '{node.name}') moved to domain '{domain}', not in opset_import"
        return mutate

    for k, domain in zip(spread(range(len(graph.node)), 5),
                         ("com.example.missing", "ai.onnx.ml", "com.microsoft", "ai.onnx.preview.training", "x")):
        mutations.append((set_domain(k, domain), True))
    return mutations


def _attribute_mutations(graph: onnx.GraphProto) -> Mutations:
    """Attributes of the wrong type, missing or unknown."""
    mutations: Mutations = []

    def wrong_attribute_type(op_type: str, attribute: str, make: Callable[[str], AttributeProto]) -> Mutation:
        def mutate(m: ModelProto) -> str:
            node = first_node(m, op_type, attribute)
            old = pop_attribute(node, attribute)
            new = make(attribute)
            node.attribute.append(new)
            type_name = AttributeProto.AttributeType.Name
            return f"{op_type} '{node.name}' attribute '{attribute}' is {type_name(new.type)}, not {type_name(old.type)}"
        return mutate

    for op_type, attribute, make in (
        ("Conv", "kernel_shape", lambda n: helper.make_attribute(n, 3.0)),
        ("Conv", "group", lambda n: helper.make_attribute(n, "one")),
        ("Conv", "strides", lambda n: helper.make_attribute(n, [1.5, 1.5])),
        ("Concat", "axis", lambda n: helper.make_attribute(n, [1, 2])),
        ("Split", "axis", lambda n: helper.make_attribute(n, numpy_helper.from_array(np.array(1)))),
        ("MaxPool", "kernel_shape", lambda n: helper.make_attribute(n, "5x5")),
        ("Softmax", "axis", lambda n: helper.make_attribute(n, 1.0)),
        ("Cast", "to", lambda n: helper.make_attribute(n, "float")),
    ):
        if has_node(graph, op_type, attribute):
            mutations.append((wrong_attribute_type(op_type, attribute, make), True))

    def attribute_type_lies(m: ModelProto) -> str:
        node = first_node(m, "Conv", "group")
        attribute = next(a for a in node.attribute if a.name == "group")
        attribute.type = AttributeProto.FLOAT
        return f"Conv '{node.name}' attribute 'group' says FLOAT but holds an INT"

    def attribute_without_type(m: ModelProto) -> str:
        node = first_node(m, "Conv", "group")
        attribute = next(a for a in node.attribute if a.name == "group")
        attribute.type = AttributeProto.UNDEFINED
        return f"Conv '{node.name}' attribute 'group' has type UNDEFINED"

    if has_node(graph, "Conv", "group"):
        mutations += [(attribute_type_lies, True), (attribute_without_type, True)]

    def drop_attribute(op_type: str, attribute: str, nth: int) -> Mutation:
        def mutate(m: ModelProto) -> str:
            node = [n for n in m.graph.node if n.op_type == op_type][nth]
            pop_attribute(node, attribute)
            return f"{op_type} '{node.name}' lost its required attribute '{attribute}'"
        return mutate

    for op_type, attribute in (("Concat", "axis"), ("Cast", "to"), ("MaxPool", "kernel_shape")):
        count = sum(1 for n in graph.node if n.op_type == op_type and any(a.name == attribute for a in n.attribute))
        for nth in spread(range(count), 3):
            mutations.append((drop_attribute(op_type, attribute, nth), True))

    def unknown_attribute(m: ModelProto) -> str:
        node = m.graph.node[0]
        node.attribute.append(helper.make_attribute("no_such_attribute", 1))
        return f"{node.op_type} '{node.name}' has an attribute its schema does not define"

    mutations.append((unknown_attribute, True))
    return mutations


def _arity_mutations() -> Mutations:
    """Nodes with too few or too many inputs, no outputs; a function that calls itself."""
    mutations: Mutations = []

    def missing_required_input(m: ModelProto) -> str:
        node = first_node(m, "Conv")
        del node.input[1:]
        return f"Conv '{node.name}' lost its weight input (only X left)"

    def too_many_inputs(m: ModelProto) -> str:
        node = first_node(m, "Sigmoid")
        node.input.append(node.input[0])
        return f"Sigmoid '{node.name}' given 2 inputs"

    def no_outputs(m: ModelProto) -> str:
        node = m.graph.node[len(m.graph.node) // 4]
        del node.output[:]
        return f"node {node.op_type} '{node.name}' has no outputs"

    mutations += [(missing_required_input, True), (too_many_inputs, True), (no_outputs, True)]

    def recursive_function(m: ModelProto) -> str:
        function = helper.make_function("local", "Loop", ["x"], ["y"],
                                        [helper.make_node("Loop", ["x"], ["y"], domain="local")],
                                        [helper.make_opsetid("", 17), helper.make_opsetid("local", 1)])
        m.functions.append(function)
        m.opset_import.append(helper.make_opsetid("local", 1))
        node = m.graph.node[1]
        node.op_type, node.domain = "Loop", "local"
        del node.input[1:]
        return f"node {node.name} calls a model-local function that calls itself forever"

    mutations.append((recursive_function, True))
    return mutations
