"""Run sparse MatMuls on hwopt's block-sparse kernel: MatMul [+ bias] [+ Relu/GELU] -> com.hwopt.BlockSparseMatMul.

A MatMul (or Gemm) whose constant weight has few nonzero blocks does most of its dense work on zeros; the
block-sparse kernel skips them (kernels/block_sparse.py). The bias Add and the activation that follow are
folded into the same node, because no runtime fuses its own ops into a custom op: left outside, each is one
more pass over the output (profiling the block-pruned MiniLM in OpenVINO shows them as nodes of their own).

The pass rewrites only what its config selects: the hot-operator pass (optimizer/hot_operators.py) names the
nodes whose substitution an A/B measurement of the whole model found faster. Matched forms:
  MatMul(x, W) | Gemm(x, W[, c]) (transA=0, alpha=beta=1)   W constant, 2-D, float32
  -> Add(., b) with b constant [N]                         (optional)
  -> Relu | Gelu | x * 0.5 * (1 + Erf(x / sqrt(2)))        (optional; both orders of the erf form's Muls)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import onnx_ir as ir

from optimizer.ir import infer_shapes
from optimizer.kernels.block_sparse import BlockSparseMatrix, block_density
from optimizer.kernels.custom_ops import (
    BLOCK_SPARSE_MATMUL,
    DOMAIN,
    DOMAIN_VERSION,
    block_sparse_matmul_attributes,
    block_sparse_matmul_inputs,
)
from optimizer.passes.base import OptimizerPass, PassConfig

DEFAULT_BLOCK_SHAPE = (1, 16)
_SQRT2 = float(np.sqrt(2.0))


@dataclass(frozen=True)
class BlockSparseMatMulConfig(PassConfig):
    block_shape: tuple[int, int] = DEFAULT_BLOCK_SHAPE
    max_density: float = 0.5
    """Substitute only weights whose fraction of nonzero blocks is at most this (the default: where the kernel
    measured faster than the runtimes' dense MatMul on MiniLM's shapes; the hot-operator pass sets its own)."""
    nodes: frozenset[str] | None = None
    """The MatMul/Gemm nodes to substitute, by MatMulChain.label (None: every one that matches)."""


@dataclass
class MatMulChain:
    """A MatMul with the bias and activation that can be folded into one BlockSparseMatMul."""

    matmul: ir.Node
    weight: np.ndarray
    """[K, N] (a Gemm's transB undone)."""
    bias: ir.Value | None = None
    activation: str = "none"
    nodes: list[ir.Node] = field(default_factory=list)
    """Every node the chain replaces, in graph order."""

    @property
    def label(self) -> str:
        """The MatMul's name, or its output's name when it has none (what configs and reports use)."""
        return self.matmul.name or self.matmul.outputs[0].name

    @property
    def output(self) -> ir.Value:
        return self.nodes[-1].outputs[0]


def find_chains(graph: ir.Graph, block_shape: tuple[int, int] = DEFAULT_BLOCK_SHAPE) -> list[MatMulChain]:
    """Every MatMul/Gemm of `graph` (not its subgraphs) that a BlockSparseMatMul with `block_shape` can run."""
    chains = []
    for node in graph:
        weight = _constant_weight(node)
        if weight is None or weight.shape[0] % block_shape[0] or weight.shape[1] % block_shape[1]:
            continue
        chain = MatMulChain(node, weight, nodes=[node])
        _extend_with_bias(chain, graph)
        _extend_with_activation(chain, graph)
        chains.append(chain)
    return chains


def chain_density(chain: MatMulChain, block_shape: tuple[int, int]) -> float:
    return block_density(chain.weight, block_shape)


class SubstituteBlockSparseMatMul(OptimizerPass):
    name = "block-sparse-matmul"
    summary = "sparse MatMul [+ bias] [+ Relu/GELU] to hwopt's fused block-sparse kernel (custom op)"
    config_type = BlockSparseMatMulConfig

    def rewrite(self, model: ir.Model) -> int:
        config: BlockSparseMatMulConfig = self.config
        graph = model.graph
        infer_shapes(model)  # the kernel needs x of rank >= 2: a MatMul of a vector is left alone
        rewrites = 0
        for chain in find_chains(graph, config.block_shape):
            if config.nodes is not None and chain.label not in config.nodes:
                continue
            if chain_density(chain, config.block_shape) > config.max_density:
                continue
            _substitute(graph, chain, config.block_shape)
            rewrites += 1
        if rewrites:
            model.opset_imports[DOMAIN] = DOMAIN_VERSION
        return rewrites


def _substitute(graph: ir.Graph, chain: MatMulChain, block_shape: tuple[int, int]) -> None:
    sparse = BlockSparseMatrix.from_dense(chain.weight.astype(np.float32), block_shape)
    prefix = chain.label
    weights = []
    for suffix, array in zip(("values", "block_rows", "strip_ptr"), block_sparse_matmul_inputs(sparse)):
        value = ir.Value(name=_unique_name(graph, f"{prefix}/block_sparse/{suffix}"), const_value=ir.tensor(array))
        value.shape, value.dtype = ir.Shape(array.shape), value.const_value.dtype
        graph.register_initializer(value)
        weights.append(value)
    old_output = chain.output
    node = ir.Node(
        DOMAIN, BLOCK_SPARSE_MATMUL, [chain.matmul.inputs[0], *weights, chain.bias],
        attributes=[_attribute(key, value) for key, value in
                    block_sparse_matmul_attributes(sparse, chain.activation).items()],
        name=f"{prefix}/BlockSparseMatMul", version=DOMAIN_VERSION,
    )
    node.outputs[0].shape, node.outputs[0].dtype = old_output.shape, old_output.dtype
    dense_weight = chain.matmul.inputs[1]
    ir.convenience.replace_nodes_and_values(graph, chain.nodes[-1], chain.nodes, [node], [old_output],
                                            [node.outputs[0]])
    # The dense weight would otherwise stay in the artifact beside its blocks (this runs after the cleanup).
    if dense_weight.name in graph.initializers and not dense_weight.uses() and not dense_weight.is_graph_output():
        graph.initializers.pop(dense_weight.name)


def _unique_name(graph: ir.Graph, name: str) -> str:
    """`name`, or `name` with a counter when an initializer has it (two nodes may share a name)."""
    candidate, counter = name, 1
    while candidate in graph.initializers:
        candidate, counter = f"{name}_{counter}", counter + 1
    return candidate


def _attribute(key: str, value: object) -> ir.Attr:
    if isinstance(value, str):
        return ir.AttrString(key, value)
    if isinstance(value, list):
        return ir.AttrInt64s(key, value)
    return ir.AttrInt64(key, int(value))


def _constant_weight(node: ir.Node) -> np.ndarray | None:
    """The [K, N] float32 constant weight of a plain MatMul or of a Gemm that is one, else None."""
    if node.domain not in ("", "ai.onnx") or node.op_type not in ("MatMul", "Gemm") or len(node.inputs) < 2:
        return None
    weight = node.inputs[1]
    if weight is None or weight.const_value is None or weight.const_value.dtype != ir.DataType.FLOAT:
        return None
    if weight.is_graph_input():  # an initializer the caller may override at run time: not a constant
        return None
    array = weight.const_value.numpy()
    if array.ndim != 2:
        return None
    if node.op_type == "Gemm":
        attributes = {key: attr.value for key, attr in node.attributes.items()}
        if attributes.get("transA", 0) or attributes.get("alpha", 1.0) != 1.0 or attributes.get("beta", 1.0) != 1.0:
            return None
        if attributes.get("transB", 0):
            array = array.T
        bias = node.inputs[2] if len(node.inputs) > 2 else None
        if bias is not None and (bias.const_value is None or tuple(bias.const_value.shape) != (array.shape[1],)):
            return None  # a C that is not a constant [N] vector has no place in the kernel
    elif node.inputs[0] is None or node.inputs[0].shape is None or len(node.inputs[0].shape) < 2:
        return None  # a 1-D x (a vector-matrix product) drops a dim the kernel keeps
    return np.ascontiguousarray(array)


def _single_consumer(value: ir.Value, graph: ir.Graph) -> ir.Node | None:
    """The only node reading `value`, if `value` is not a graph output and that node is in `graph`."""
    uses = list(value.uses())
    if len(uses) != 1 or value.is_graph_output():
        return None
    consumer = uses[0].node
    return consumer if consumer.graph is graph else None


def _extend_with_bias(chain: MatMulChain, graph: ir.Graph) -> None:
    n = chain.weight.shape[1]
    if chain.matmul.op_type == "Gemm" and len(chain.matmul.inputs) > 2 and chain.matmul.inputs[2] is not None:
        chain.bias = chain.matmul.inputs[2]
        return
    add = _single_consumer(chain.output, graph)
    if add is None or add.op_type != "Add" or add.domain not in ("", "ai.onnx"):
        return
    other = add.inputs[1] if add.inputs[0] is chain.output else add.inputs[0]
    if other is None or other.const_value is None or other.const_value.dtype != ir.DataType.FLOAT:
        return
    if tuple(other.const_value.shape) != (n,):
        return
    chain.bias = other
    chain.nodes.append(add)


def _extend_with_activation(chain: MatMulChain, graph: ir.Graph) -> None:
    consumer = _single_consumer(chain.output, graph)
    if consumer is not None and consumer.op_type in ("Relu", "Gelu") and consumer.domain in ("", "ai.onnx"):
        approximate = consumer.attributes.get("approximate")
        if consumer.op_type == "Gelu" and approximate is not None and approximate.value != "none":
            return
        chain.activation = consumer.op_type.lower()
        chain.nodes.append(consumer)
        return
    erf_gelu = _erf_gelu_nodes(chain.output, graph)
    if erf_gelu is not None:
        chain.activation = "gelu"
        chain.nodes.extend(erf_gelu)


def _erf_gelu_nodes(x: ir.Value, graph: ir.Graph) -> list[ir.Node] | None:
    """The nodes of x * 0.5 * (1 + erf(x / sqrt 2)) reading `x`, in graph order, if that is all that reads it:
    Div -> Erf -> Add(1) -> Mul(x, .) -> Mul(0.5), or Mul(x, 0.5) and Div -> Erf -> Add(1) -> Mul(., .)."""
    uses = sorted({use.node for use in x.uses()}, key=lambda node: node.op_type)
    if x.is_graph_output() or not 1 <= len(uses) <= 2 or any(node.graph is not graph for node in uses):
        return None
    divide = next((node for node in uses if node.op_type == "Div" and node.inputs[0] is x), None)
    if divide is None or not _is_scalar(divide.inputs[1], _SQRT2):
        return None
    erf = _single_consumer(divide.outputs[0], graph)
    plus_one = erf and _single_consumer(erf.outputs[0], graph)
    if erf is None or erf.op_type != "Erf" or plus_one is None or plus_one.op_type != "Add":
        return None
    if _single_consumer(plus_one.outputs[0], graph) is None:  # 1 + erf read elsewhere too: it must stay
        return None
    if not _is_scalar(_other_input(plus_one, erf.outputs[0]), 1.0):
        return None
    if len(uses) == 1:
        return None
    first = next(node for node in uses if node is not divide)
    if first.op_type != "Mul":
        return None
    if plus_one.outputs[0] in first.inputs:  # x * (1 + erf) then * 0.5
        last = _single_consumer(first.outputs[0], graph)
        if last is None or last.op_type != "Mul" or not _is_scalar(_other_input(last, first.outputs[0]), 0.5):
            return None
        return [divide, erf, plus_one, first, last]
    if not _is_scalar(_other_input(first, x), 0.5):  # (x * 0.5) * (1 + erf)
        return None
    last = _single_consumer(first.outputs[0], graph)
    if last is None or last.op_type != "Mul" or _other_input(last, first.outputs[0]) is not plus_one.outputs[0]:
        return None
    return [first, divide, erf, plus_one, last]


def _other_input(node: ir.Node, value: ir.Value) -> ir.Value | None:
    inputs = list(node.inputs)
    if len(inputs) != 2 or value not in inputs:
        return None
    return inputs[1] if inputs[0] is value else inputs[0]


def _is_scalar(value: ir.Value | None, expected: float, tolerance: float = 1e-4) -> bool:
    if value is None or value.const_value is None:
        return False
    array = value.const_value.numpy()
    return array.size == 1 and abs(float(array.reshape(())) - expected) <= tolerance * max(1.0, abs(expected))


def matched_nodes(chains: Sequence[MatMulChain]) -> dict[str, str]:
    """MatMul name -> what its chain folds in ("bias+gelu", "bias", ...), for reports."""
    return {chain.label: "+".join(
        [part for part in ("bias" if chain.bias is not None else "", chain.activation) if part not in ("", "none")]
    ) or "matmul" for chain in chains}
