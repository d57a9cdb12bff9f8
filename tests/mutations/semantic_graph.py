"""Semantic damage to the main graph as a whole: its tensors, names, node order, opsets and versions."""

from __future__ import annotations

import onnx
from onnx import ModelProto

from .graph_edits import Mutation, Mutations, node_chain, produced_names, spread


def tensor_mutations(graph: onnx.GraphProto) -> Mutations:
    """Initializers whose bytes, dims or type do not fit; graph inputs with absurd dims or no type."""
    mutations: Mutations = []

    weights = [i for i, t in enumerate(graph.initializer) if t.raw_data and len(t.raw_data) >= 8]

    def raw_data_length(k: int, how: str) -> Mutation:
        def mutate(m: ModelProto) -> str:
            tensor = m.graph.initializer[k]
            old = len(tensor.raw_data)
            tensor.raw_data = {"one byte short": tensor.raw_data[:-1], "half": tensor.raw_data[: old // 2],
                               "4 bytes too long": tensor.raw_data + bytes(4), "empty": b"",
                               "doubled": tensor.raw_data * 2}[how]
            return (f"initializer '{tensor.name}' dims {list(tensor.dims)}: raw_data {how} "
                    f"({len(tensor.raw_data)} bytes, needs {old})")
        return mutate

    hows = ("one byte short", "half", "4 bytes too long", "empty", "doubled")
    for n, k in enumerate(spread(weights, 10)):
        mutations.append((raw_data_length(k, hows[n % len(hows)]), True))

    def set_dims(k: int, dims: list[int]) -> Mutation:
        def mutate(m: ModelProto) -> str:
            tensor = m.graph.initializer[k]
            old = list(tensor.dims)
            del tensor.dims[:]
            tensor.dims.extend(dims)
            return f"initializer '{tensor.name}' dims {old} changed to {dims} (raw_data unchanged)"
        return mutate

    absurd = ([-1], [-4, 4], [1 << 40], [1 << 62, 1 << 62], [0], [2**31, 2**31, 8], [-(1 << 62)], [3, 0, 7])
    for k, dims in zip(spread(weights, len(absurd)), absurd):
        mutations.append((set_dims(k, dims), True))

    def data_type(k: int, value: int) -> Mutation:
        def mutate(m: ModelProto) -> str:
            tensor = m.graph.initializer[k]
            tensor.data_type = value
            return f"initializer '{tensor.name}' data_type set to {value} (not a TensorProto.DataType)"
        return mutate

    for k, value in zip(spread(weights, 2), (0, 999)):
        mutations.append((data_type(k, value), True))

    def input_dim(value: int) -> Mutation:
        def mutate(m: ModelProto) -> str:
            dim = m.graph.input[0].type.tensor_type.shape.dim[0]
            dim.dim_value = value
            return f"graph input '{m.graph.input[0].name}' dim 0 set to {value}"
        return mutate

    for value in (-5, 0, 1 << 40):
        mutations.append((input_dim(value), False))

    def input_elem_type(m: ModelProto) -> str:
        value = m.graph.input[0]
        value.type.tensor_type.elem_type = 0
        return f"graph input '{value.name}' has element type UNDEFINED"

    mutations.append((input_elem_type, True))
    return mutations


def name_clash_mutations(graph: onnx.GraphProto) -> Mutations:
    """Tensors produced twice, or by a node and by the graph; inputs, outputs, initializers declared twice."""
    mutations: Mutations = []

    def duplicate_output(k: int, j: int) -> Mutation:
        def mutate(m: ModelProto) -> str:
            first, second = m.graph.node[k], m.graph.node[j]
            old = second.output[0]
            second.output[0] = first.output[0]
            return (f"node {j} ({second.op_type}) output '{old}' renamed to '{first.output[0]}', "
                    f"already produced by node {k} ({first.op_type})")
        return mutate

    half = len(graph.node) // 2
    for k, j in zip(spread(range(half), 4), spread(range(half, len(graph.node)), 4)):
        mutations.append((duplicate_output(k, j), True))

    def output_shadows(what: str) -> Mutation:
        def mutate(m: ModelProto) -> str:
            node = m.graph.node[len(m.graph.node) // 2]
            name = m.graph.input[0].name if what == "input" else m.graph.initializer[0].name
            node.output[0] = name
            return f"node {node.op_type} '{node.name}' writes to the graph {what} '{name}'"
        return mutate

    mutations += [(output_shadows("input"), True)]
    if graph.initializer:
        mutations.append((output_shadows("initializer"), True))

    def duplicate_initializer(m: ModelProto) -> str:
        copy = m.graph.initializer.add()
        copy.CopyFrom(m.graph.initializer[1])
        return f"initializer '{copy.name}' defined twice"

    if len(graph.initializer) > 1:
        mutations.append((duplicate_initializer, True))

    def duplicate_graph_input(m: ModelProto) -> str:
        copy = m.graph.input.add()
        copy.CopyFrom(m.graph.input[0])
        return f"graph input '{copy.name}' declared twice"

    mutations.append((duplicate_graph_input, True))

    def duplicate_graph_output(m: ModelProto) -> str:
        copy = m.graph.output.add()
        copy.CopyFrom(m.graph.output[0])
        return f"graph output '{copy.name}' declared twice"

    mutations.append((duplicate_graph_output, False))
    return mutations


def topology_mutations(graph: onnx.GraphProto) -> Mutations:
    """Cycles, nodes out of order, graph outputs nothing produces."""
    mutations: Mutations = []

    def cycle(k: int, length: int) -> Mutation:
        def mutate(m: ModelProto) -> str:
            chain = node_chain(m.graph, k, length)
            head, tail = m.graph.node[chain[0]], m.graph.node[chain[-1]]
            slot = next(s for s, name in enumerate(head.input) if name in produced_names(m) or s == 0)
            head.input[slot] = tail.output[0]
            ops = " -> ".join(m.graph.node[i].op_type for i in chain)
            return f"cycle: node {chain[0]} reads the output of node {chain[-1]} ({ops} -> back)"
        return mutate

    for k, length in ((0, 3), (len(graph.node) // 3, 2), (len(graph.node) // 2, 4), (len(graph.node) - 8, 1)):
        mutations.append((cycle(k, length), True))

    def reversed_order(m: ModelProto) -> str:
        nodes = list(m.graph.node)[::-1]
        del m.graph.node[:]
        m.graph.node.extend(nodes)
        return "nodes listed in reverse (not topologically sorted)"

    mutations.append((reversed_order, False))

    def ghost_output(how: str) -> Mutation:
        def mutate(m: ModelProto) -> str:
            if how == "renamed":
                old = m.graph.output[0].name
                m.graph.output[0].name = "nothing_produces_this"
                return f"graph output '{old}' renamed to 'nothing_produces_this'"
            extra = m.graph.output.add()
            extra.CopyFrom(m.graph.output[0])
            extra.name = "ghost_output"
            return "extra graph output 'ghost_output' that no node produces"
        return mutate

    mutations += [(ghost_output("renamed"), True), (ghost_output("added"), True)]
    return mutations


def version_mutations() -> Mutations:
    """Bad opset imports and ir_versions; a graph emptied, or none at all."""
    mutations: Mutations = []

    def opset(version: int) -> Mutation:
        def mutate(m: ModelProto) -> str:
            entry = next(o for o in m.opset_import if o.domain in ("", "ai.onnx"))
            old, entry.version = entry.version, version
            return f"default opset {old} changed to {version}"
        return mutate

    for version in (0, -1, 10_000, 1 << 40, 2):
        mutations.append((opset(version), True))

    def no_opset(m: ModelProto) -> str:
        del m.opset_import[:]
        return "no opset_import at all"

    def opset_twice(m: ModelProto) -> str:
        entry = m.opset_import.add()
        entry.domain, entry.version = "", 11
        return "default domain imported twice (its own version and 11)"

    mutations += [(no_opset, True), (opset_twice, True)]

    def ir_version(version: int) -> Mutation:
        def mutate(m: ModelProto) -> str:
            old, m.ir_version = m.ir_version, version
            return f"ir_version {old} changed to {version}"
        return mutate

    for version in (0, -1, 2, 1_000_000, 1 << 62):
        mutations.append((ir_version(version), True))

    def empty_graph(how: str) -> Mutation:
        def mutate(m: ModelProto) -> str:
            if how in ("nodes", "nodes and weights", "everything"):
                del m.graph.node[:]
            if how in ("nodes and weights", "everything"):
                del m.graph.initializer[:]
                del m.graph.value_info[:]
            if how == "everything":
                del m.graph.input[:]
                del m.graph.output[:]
            if how == "outputs":
                del m.graph.output[:]
            if how == "no graph":
                m.ClearField("graph")
            return {"nodes": "graph emptied of nodes (outputs kept)",
                    "nodes and weights": "graph emptied of nodes and initializers (outputs kept)",
                    "everything": "empty graph: no node, input, output or initializer",
                    "outputs": "graph without outputs",
                    "no graph": "model without a graph"}[how]
        return mutate

    for how, proven in (("nodes", True), ("nodes and weights", True), ("everything", False),
                        ("outputs", False), ("no graph", True)):
        mutations.append((empty_graph(how), proven))
    return mutations
