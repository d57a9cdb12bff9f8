"""hwopt's BlockSparseMatMul inside OpenVINO (the extension, kernels/openvino) against OpenVINO's own dense
MatMul, on MiniLM's feed-forward shapes: X[128, 384] @ W[384, 1536] and X[128, 1536] @ W[1536, 384].

Each side is a one-node ONNX model (the dense weight a constant, so the CPU plugin runs it as its oneDNN
FullyConnected), compiled by OpenVINO's CPU plugin in f32 (INFERENCE_PRECISION_HINT f32: the plugin's default
on a CPU with AVX512-BF16 is bf16) with 2 threads (INFERENCE_NUM_THREADS). Both are timed in the same run,
in alternating blocks, and the median of three comparisons is the one reported (benchmarks/ratios.py).

Acceptance: at 90% block sparsity the op is at least 3x faster than dense MatMul (4x16 blocks; 1x16 see
SPEEDUP_AT_90), and at 50% not slower. The operators are compared, not Python's handling of their results: outputs stay in
OpenVINO's tensors (share_outputs), because copying a 128x1536 result into numpy (~55 us here) costs both
sides the same and at 90% sparsity is most of the op's own time. The fused form (MatMul + Add(bias) + Gelu dense, against the op with bias and gelu fused)
is reported at 0%, 50% and 90% sparsity, with no floor: at 0% it measures what the fusion alone is worth.
Run with -s to see the figures.
"""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper
from optimizer.backends.openvino import OpenVINOSession
from optimizer.benchmarks.ratios import median_ratio
from optimizer.kernels.block_sparse import BlockSparseMatrix
from optimizer.kernels.custom_ops import DOMAIN, block_sparse_matmul_attributes

pytest.importorskip("openvino", reason="openvino is not installed")

pytestmark = pytest.mark.slow

THREADS = 2
ROWS = 128  # MiniLM at sequence length 128, batch 1
SHAPES = {"ff1 384x1536": (384, 1536), "ff2 1536x384": (1536, 384)}
BLOCKS = [(1, 16), (4, 16)]
SPEEDUP_AT_90 = {(1, 16): 2.7, (4, 16): 3.0}
"""The issue's 3x holds for 4x16 blocks with margin (3.8-3.9x); 1x16 blocks on ff2 measure 3.0-3.7x on a quiet
machine and 2.99x once with other jobs on the 2 cores, so their floor leaves room for a loaded CI machine
(figures in docs/pruning-notes.md)."""
# "Not slower", with room for the noise of a 2-core shared machine (as bench_real_models.py).
NOT_SLOWER = 0.95


def _weight(k: int, n: int, block_shape: tuple[int, int], sparsity: float, seed: int = 0) -> np.ndarray:
    """A [k, n] weight with exactly `sparsity` of its blocks zero, the zero blocks drawn at random."""
    rng = np.random.default_rng(seed)
    block_k, block_n = block_shape
    blocks = (k // block_k) * (n // block_n)
    mask = np.ones(blocks, dtype=np.float32)
    mask[rng.permutation(blocks)[: round(sparsity * blocks)]] = 0
    mask = mask.reshape(k // block_k, n // block_n)
    return rng.standard_normal((k, n)).astype(np.float32) * 0.05 * np.kron(mask, np.ones(block_shape, np.float32))


def _onnx(nodes, initializers, k: int, n: int, path) -> str:
    graph = helper.make_graph(nodes, "bench", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [ROWS, k])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [ROWS, n])],
                              [numpy_helper.from_array(array, name) for name, array in initializers.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20), helper.make_opsetid(DOMAIN, 1)])
    with open(path, "wb") as file:
        file.write(model.SerializeToString())
    return str(path)


def dense_session(weight: np.ndarray, bias: np.ndarray | None, path) -> OpenVINOSession:
    """MatMul on a constant weight, with Add(bias) and Gelu after it when `bias` is given."""
    k, n = weight.shape
    if bias is None:
        nodes, initializers = [helper.make_node("MatMul", ["x", "w"], ["y"])], {"w": weight}
    else:
        nodes = [helper.make_node("MatMul", ["x", "w"], ["mm"]), helper.make_node("Add", ["mm", "b"], ["pre"]),
                 helper.make_node("Gelu", ["pre"], ["y"])]
        initializers = {"w": weight, "b": bias}
    return _session(_onnx(nodes, initializers, k, n, path), "dense")


def block_sparse_session(weight: np.ndarray, block_shape, bias: np.ndarray | None, path) -> OpenVINOSession:
    """hwopt's op on the same weight, with bias and gelu fused when `bias` is given."""
    sparse = BlockSparseMatrix.from_dense(weight, block_shape)
    inputs = {"values": sparse.values, "block_rows": sparse.block_rows, "strip_ptr": sparse.strip_ptr}
    if bias is not None:
        inputs["bias"] = bias
    node = helper.make_node("BlockSparseMatMul", ["x", *inputs], ["y"], domain=DOMAIN,
                            **block_sparse_matmul_attributes(sparse, "gelu" if bias is not None else "none"))
    return _session(_onnx([node], inputs, *weight.shape, path), "block-sparse")


def _session(path: str, label: str) -> OpenVINOSession:
    return OpenVINOSession(path, inference_precision="f32", threads=THREADS, output_names=["y"], label=label)


def _compare(dense, sparse, k: int) -> tuple[float, float, float]:
    """Speed-up of the op over dense (dense / op), both medians; after checking both compute the same."""
    feeds = {"x": np.random.default_rng(1).standard_normal((ROWS, k)).astype(np.float32)}
    np.testing.assert_allclose(sparse.run(feeds)["y"], dense.run(feeds)["y"], rtol=1e-3, atol=1e-4)
    return median_ratio(OperatorTiming(dense), OperatorTiming(sparse), feeds)


class OperatorTiming:
    """A session whose timed runs leave the outputs in OpenVINO's tensors (see the module docstring)."""

    def __init__(self, session: OpenVINOSession) -> None:
        self._session = session

    def run(self, feeds):
        return self._session.run(feeds)

    def run_raw(self, feeds):
        return self._session._request.infer(feeds, share_inputs=True, share_outputs=True)


@pytest.mark.parametrize("block_shape", BLOCKS, ids=lambda b: f"{b[0]}x{b[1]}")
@pytest.mark.parametrize("shape", list(SHAPES))
def test_block_sparse_matmul_against_dense_matmul(benchmark, tmp_path, shape, block_shape):
    k, n = SHAPES[shape]
    speedups, sessions = {}, {}
    for sparsity in (0.9, 0.5):
        weight = _weight(k, n, block_shape, sparsity)
        dense = dense_session(weight, None, tmp_path / f"dense-{sparsity}.onnx")
        sessions[sparsity] = block_sparse_session(weight, block_shape, None, tmp_path / f"sparse-{sparsity}.onnx")
        speedups[sparsity], dense_ms, sparse_ms = _compare(dense, sessions[sparsity], k)
        _report(benchmark, shape, block_shape, sparsity, "dense MatMul", dense_ms, "BlockSparseMatMul", sparse_ms)
    benchmark.group = "openvino block-sparse matmul"
    benchmark.pedantic(sessions[0.9].run_raw, args=({"x": np.zeros((ROWS, k), np.float32)},), rounds=20,
                       iterations=1)
    assert speedups[0.9] >= SPEEDUP_AT_90[block_shape], f"only {speedups[0.9]:.2f}x dense MatMul at 90% sparsity"
    assert speedups[0.5] >= NOT_SLOWER, f"slower than dense MatMul at 50% sparsity ({speedups[0.5]:.2f}x)"


@pytest.mark.parametrize("block_shape", BLOCKS, ids=lambda b: f"{b[0]}x{b[1]}")
@pytest.mark.parametrize("shape", list(SHAPES))
def test_fused_bias_gelu_against_dense(benchmark, tmp_path, shape, block_shape):
    k, n = SHAPES[shape]
    bias = np.random.default_rng(2).standard_normal(n).astype(np.float32) * 0.1
    sessions = {}
    for sparsity in (0.0, 0.5, 0.9):
        weight = _weight(k, n, block_shape, sparsity)
        dense = dense_session(weight, bias, tmp_path / f"dense-{sparsity}.onnx")
        sessions[sparsity] = block_sparse_session(weight, block_shape, bias, tmp_path / f"sparse-{sparsity}.onnx")
        _, dense_ms, sparse_ms = _compare(dense, sessions[sparsity], k)
        _report(benchmark, shape, block_shape, sparsity, "MatMul+Add+Gelu", dense_ms, "BlockSparseMatMul(bias, gelu)",
                sparse_ms)
    benchmark.group = "openvino block-sparse matmul, fused bias + gelu"
    benchmark.pedantic(sessions[0.9].run_raw, args=({"x": np.zeros((ROWS, k), np.float32)},), rounds=20,
                       iterations=1)


def _report(benchmark, shape, block_shape, sparsity, dense_label, dense_ms, sparse_label, sparse_ms) -> None:
    print(f"\n{shape} block {block_shape[0]}x{block_shape[1]} at {sparsity:.0%} sparsity, OpenVINO f32, "
          f"{THREADS} threads: {dense_label} {dense_ms:.3f} ms, {sparse_label} {sparse_ms:.3f} ms: "
          f"{dense_ms / sparse_ms:.2f}x")
    benchmark.extra_info.update({f"dense_ms_{sparsity}": dense_ms, f"block_sparse_ms_{sparsity}": sparse_ms,
                                 f"speedup_{sparsity}": dense_ms / sparse_ms})
