"""The block-sparse MatMul substitution: which chains it folds, and that the rewritten model computes the same."""

from __future__ import annotations

import math

import numpy as np
import onnx
import pytest
from optimizer.kernels.custom_ops import BLOCK_SPARSE_MATMUL, DOMAIN
from optimizer.kernels.custom_ops_reference import run_reference

from optimizer import ir as hir
from optimizer.passes.block_sparse_matmul import (
    BlockSparseMatMulConfig,
    SubstituteBlockSparseMatMul,
    find_chains,
)
from optimizer.pruning.masks import block_mask
from optimizer.testing import model_from_text, op_types

RNG = np.random.default_rng(0)


def _sparse_weight(k: int, n: int, sparsity: float, block=(1, 16)) -> np.ndarray:
    weight = RNG.standard_normal((k, n)).astype(np.float32)
    return weight * block_mask(weight, block, sparsity)


def _ffn(gelu_order: str = "half_last") -> onnx.ModelProto:
    gelu = {
        "half_last": "d = Div (h, sqrt2)\n e = Erf (d)\n p = Add (e, one)\n q = Mul (h, p)\n g = Mul (q, half)",
        "half_first": "m = Mul (h, half)\n d = Div (h, sqrt2)\n e = Erf (d)\n p = Add (e, one)\n g = Mul (m, p)",
    }[gelu_order]
    return model_from_text(
        f"""
        <ir_version: 9, opset_import: ["" : 17]>
        g (float[N, 8, 32] x) => (float[N, 8, 32] y) {{
            a = MatMul (x, w1)
            h = Add (b1, a)
            {gelu}
            c = MatMul (g, w2)
            y = Add (c, b2)
        }}
        """,
        w1=_sparse_weight(32, 64, 0.75), b1=RNG.standard_normal(64).astype(np.float32),
        w2=_sparse_weight(64, 32, 0.5), b2=RNG.standard_normal(32).astype(np.float32),
        sqrt2=np.array(math.sqrt(2), np.float32), one=np.array(1.0, np.float32), half=np.array(0.5, np.float32),
    )


def _run(model, x):
    return run_reference(hir.to_proto(model), {"x": x})[0]


@pytest.mark.parametrize("gelu_order", ["half_last", "half_first"])
def test_matmul_bias_and_erf_gelu_fold_into_one_node(gelu_order):
    model = _ffn(gelu_order)
    x = RNG.standard_normal((3, 8, 32)).astype(np.float32)
    expected = _run(model, x)
    assert SubstituteBlockSparseMatMul(BlockSparseMatMulConfig(max_density=1.0))(model).modified
    assert op_types(model) == [BLOCK_SPARSE_MATMUL, BLOCK_SPARSE_MATMUL]
    first, second = list(model.graph)
    assert first.attributes["activation"].value == "gelu" and second.attributes["activation"].value == "none"
    assert model.opset_imports[DOMAIN] == 1
    np.testing.assert_allclose(_run(model, x), expected, rtol=1e-4, atol=1e-4)
    onnx.checker.check_model(hir.to_proto(model))


def test_only_the_named_nodes_and_sparse_enough_weights_are_substituted():
    model = _ffn()
    hir.infer_shapes(model)
    names = [chain.label for chain in find_chains(model.graph)]
    SubstituteBlockSparseMatMul(BlockSparseMatMulConfig(max_density=1.0, nodes=frozenset(names[1:])))(model)
    assert op_types(model).count(BLOCK_SPARSE_MATMUL) == 1 and "Erf" in op_types(model)
    dense_enough = _ffn()
    # The second weight keeps half its blocks: a 0.4 cap leaves it dense.
    SubstituteBlockSparseMatMul(BlockSparseMatMulConfig(max_density=0.4))(dense_enough)
    assert op_types(dense_enough).count(BLOCK_SPARSE_MATMUL) == 1 and "MatMul" in op_types(dense_enough)


def test_gemm_with_transposed_weight_and_relu():
    weight = _sparse_weight(16, 32, 0.5)
    model = model_from_text(
        """
        <ir_version: 9, opset_import: ["" : 17]>
        g (float[4, 16] x) => (float[4, 32] y) {
            a = Gemm <transB: int = 1> (x, wt, b)
            y = Relu (a)
        }
        """,
        wt=np.ascontiguousarray(weight.T), b=RNG.standard_normal(32).astype(np.float32),
    )
    x = RNG.standard_normal((4, 16)).astype(np.float32)
    expected = _run(model, x)
    SubstituteBlockSparseMatMul()(model)
    assert op_types(model) == [BLOCK_SPARSE_MATMUL]
    np.testing.assert_allclose(_run(model, x), expected, rtol=1e-5, atol=1e-5)


def test_a_shared_intermediate_stops_the_chain():
    model = model_from_text(
        """
        <ir_version: 9, opset_import: ["" : 17]>
        g (float[4, 16] x) => (float[4, 32] y, float[4, 32] z) {
            a = MatMul (x, w)
            y = Add (a, b)
            z = Relu (a)
        }
        """,
        w=_sparse_weight(16, 32, 0.5), b=RNG.standard_normal(32).astype(np.float32),
    )
    x = RNG.standard_normal((4, 16)).astype(np.float32)
    expected = run_reference(hir.to_proto(model), {"x": x})
    SubstituteBlockSparseMatMul()(model)
    assert sorted(op_types(model)) == ["Add", BLOCK_SPARSE_MATMUL, "Relu"]
    for got, want in zip(run_reference(hir.to_proto(model), {"x": x}), expected):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_weights_that_the_block_does_not_tile_are_left_alone():
    model = model_from_text(
        """
        <ir_version: 9, opset_import: ["" : 17]>
        g (float[4, 16] x) => (float[4, 24] y) {
            y = MatMul (x, w)
        }
        """,
        w=RNG.standard_normal((16, 24)).astype(np.float32),
    )
    assert not SubstituteBlockSparseMatMul()(model).modified


def test_nodes_sharing_a_name_get_their_own_weights_and_the_dense_ones_go():
    model = model_from_text(
        """
        <ir_version: 9, opset_import: ["" : 17]>
        g (float[4, 16] x) => (float[4, 16] y) {
            a = MatMul (x, w1)
            y = MatMul (a, w2)
        }
        """,
        w1=_sparse_weight(16, 16, 0.5), w2=_sparse_weight(16, 16, 0.5),
    )
    for node in model.graph:
        node.name = "mm"  # exporters do write duplicate names
    x = RNG.standard_normal((4, 16)).astype(np.float32)
    expected = _run(model, x)
    SubstituteBlockSparseMatMul(BlockSparseMatMulConfig(max_density=1.0))(model)
    assert op_types(model) == [BLOCK_SPARSE_MATMUL, BLOCK_SPARSE_MATMUL]
    assert "w1" not in model.graph.initializers and "w2" not in model.graph.initializers
    np.testing.assert_allclose(_run(model, x), expected, rtol=1e-5, atol=1e-5)


def test_an_erf_term_read_elsewhere_keeps_the_gelu_outside():
    model = model_from_text(
        """
        <ir_version: 9, opset_import: ["" : 17]>
        g (float[4, 16] x) => (float[4, 16] y, float[4, 16] p) {
            h = MatMul (x, w)
            d = Div (h, sqrt2)
            e = Erf (d)
            p = Add (e, one)
            q = Mul (h, p)
            y = Mul (q, half)
        }
        """,
        w=_sparse_weight(16, 16, 0.5), sqrt2=np.array(math.sqrt(2), np.float32),
        one=np.array(1.0, np.float32), half=np.array(0.5, np.float32),
    )
    SubstituteBlockSparseMatMul(BlockSparseMatMulConfig(max_density=1.0))(model)
    assert op_types(model)[0] == BLOCK_SPARSE_MATMUL and "Erf" in op_types(model)
    assert next(iter(model.graph)).attributes["activation"].value == "none"


def test_a_weight_the_caller_can_feed_is_not_a_constant():
    model = model_from_text(
        """
        <ir_version: 9, opset_import: ["" : 17]>
        g (float[4, 16] x, float[16, 16] w) => (float[4, 16] y) {
            y = MatMul (x, w)
        }
        """,
        w=_sparse_weight(16, 16, 0.5),
    )
    assert not SubstituteBlockSparseMatMul(BlockSparseMatMulConfig(max_density=1.0))(model).modified
