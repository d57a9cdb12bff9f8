"""The hot-operator pass: which nodes it tries, and that only a whole-model A/B win substitutes them."""

from __future__ import annotations

import numpy as np
import pytest
from optimizer.backends.base import CompileOptions
from optimizer.backends.onnxruntime import LatencyStats
from optimizer.kernels.custom_ops import BLOCK_SPARSE_MATMUL

from optimizer import hot_operators
from optimizer.hot_operators import candidate_groups, substitute_hot_operators
from optimizer.pruning.masks import block_mask
from optimizer.targets import get_target
from optimizer.testing import model_from_text, op_types

RNG = np.random.default_rng(1)


def _sparse(k: int, n: int, sparsity: float) -> np.ndarray:
    weight = RNG.standard_normal((k, n)).astype(np.float32)
    return weight * block_mask(weight, (1, 16), sparsity)


def _model(sparsity_first: float = 0.9, sparsity_second: float = 0.9):
    return model_from_text(
        """
        <ir_version: 9, opset_import: ["" : 17]>
        g (float[1, 64, 64] x) => (float[1, 64, 64] y) {
            a = MatMul (x, w1)
            h = Add (a, b1)
            r = Relu (h)
            c = MatMul (r, w2)
            y = Add (c, b2)
        }
        """,
        w1=_sparse(64, 256, sparsity_first), b1=RNG.standard_normal(256).astype(np.float32),
        w2=_sparse(256, 64, sparsity_second), b2=RNG.standard_normal(64).astype(np.float32),
    )


FEEDS = {"x": RNG.standard_normal((1, 64, 64)).astype(np.float32)}


def _options(runtime_threads: int = 1) -> CompileOptions:
    return CompileOptions(get_target("cpu"), "fp32", runtime_threads)


def test_groups_are_by_shape_and_fused_ops_largest_first_and_dense_weights_are_not_tried():
    groups = candidate_groups(_model())
    assert [[chain.weight.shape for chain in group] for group in groups] == [[(64, 256)], [(256, 64)]]
    assert candidate_groups(_model(0.9, 0.0)) and len(candidate_groups(_model(0.9, 0.0))) == 1


def test_a_runtime_without_the_kernel_keeps_every_node(tmp_path):
    model = _model()
    report = substitute_hot_operators(model, "onnxruntime", _options(), FEEDS, tmp_path / "trials")
    assert [d.substituted for d in report.decisions] == [False, False]
    assert all("no BlockSparseMatMul kernel for onnxruntime" in d.reason for d in report.decisions)
    assert BLOCK_SPARSE_MATMUL not in op_types(model)


def _stats(median_ms: float) -> LatencyStats:
    return LatencyStats.from_samples([median_ms] * 5)


@pytest.mark.parametrize("custom_ms, substituted", [(0.5, True), (0.99, False), (1.5, False)])
def test_only_a_whole_model_gain_substitutes(tmp_path, monkeypatch, custom_ms, substituted):
    pytest.importorskip("openvino")
    from optimizer.kernels import openvino_extension

    try:
        openvino_extension.extension_library()
    except openvino_extension.ExtensionBuildError as error:
        pytest.skip(f"hwopt's OpenVINO extension cannot be built here: {error}")
    # The A/B itself is replaced: its decision rule is what is tested, not this machine's timing.
    monkeypatch.setattr(hot_operators, "compare_latency",
                        lambda first, second, feeds: (_stats(1.0), _stats(custom_ms)))
    model = _model()
    report = substitute_hot_operators(model, "openvino", _options(), FEEDS, tmp_path / "trials")
    assert [d.substituted for d in report.decisions] == [substituted, substituted]
    assert op_types(model).count(BLOCK_SPARSE_MATMUL) == (2 if substituted else 0)
    assert report.decisions[0].fused == "bias+relu" and report.decisions[1].fused == "bias"
    assert report.decisions[0].baseline_ms == 1.0 and report.decisions[0].custom_ms == custom_ms
    assert report.profile, "the runtime's operator profile is recorded"
    assert not (tmp_path / "trials").exists()
