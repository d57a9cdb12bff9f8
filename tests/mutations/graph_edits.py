"""Finding and editing nodes of a parsed model, shared by the semantic and subgraph mutations."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import onnx
from onnx import AttributeProto, ModelProto

Mutation = Callable[[ModelProto], str]
"""Breaks the model in place and says how."""
Mutations = list[tuple[Mutation, bool]]
"""Each mutation with whether it is invalid by construction (False: ONNX Runtime is asked first)."""


def spread(items: Sequence | range, count: int) -> list:
    """`count` items spread evenly over `items`, first and last included."""
    items = list(items)
    if len(items) <= count:
        return items
    step = (len(items) - 1) / (count - 1)
    return [items[round(i * step)] for i in range(count)]


def first_node(model: ModelProto, op_type: str, attribute: str | None = None) -> onnx.NodeProto:
    return next(n for n in model.graph.node
                if n.op_type == op_type and (attribute is None or any(a.name == attribute for a in n.attribute)))


def has_node(graph: onnx.GraphProto, op_type: str, attribute: str) -> bool:
    return any(n.op_type == op_type and any(a.name == attribute for a in n.attribute) for n in graph.node)


def pop_attribute(node: onnx.NodeProto, name: str) -> AttributeProto:
    index = next(i for i, a in enumerate(node.attribute) if a.name == name)
    attribute = AttributeProto()
    attribute.CopyFrom(node.attribute[index])
    del node.attribute[index]
    return attribute


def produced_names(model: ModelProto) -> set[str]:
    return {o for n in model.graph.node for o in n.output}


def node_chain(graph: onnx.GraphProto, start: int, length: int) -> list[int]:
    """Node indices start, c1, ..., each reading the previous one's output: a path to close into a cycle."""
    chain = [start]
    for _ in range(length):
        outputs = set(graph.node[chain[-1]].output)
        chain.append(next(i for i in range(chain[-1] + 1, len(graph.node))
                          if outputs & set(graph.node[i].input)))
    return chain
