"""prune_model on tiny models: the masks each method promises, the report, recovery, errors, and the 2:4 TensorRT
bundle. Numerical checks run the pruned model in ONNX Runtime against NumPy."""

import numpy as np
import onnx_ir as ir
import pytest

from optimizer.errors import UsageError
from optimizer.pruning.options import PruningOptions
from optimizer.pruning.patterns import has_n_m_pattern, scan_n_m
from optimizer.pruning.probe import WeightProbe
from optimizer.pruning.prune import prune_model

RNG = np.random.default_rng(0)


def mlp(transposed_gemm: bool = True) -> ir.Model:
    """x [8, 32] -> MatMul W1 [32, 64] + b1 -> Relu -> Gemm(transB) W2 [16, 64] -> y [8, 16]."""
    w1 = ir.tensor(RNG.standard_normal((32, 64)).astype(np.float32), name="W1")
    b1 = ir.tensor(RNG.standard_normal(64).astype(np.float32), name="b1")
    w2 = ir.tensor(RNG.standard_normal((16, 64) if transposed_gemm else (64, 16)).astype(np.float32), name="W2")
    x = ir.Value(name="x", shape=ir.Shape([8, 32]), type=ir.TensorType(ir.DataType.FLOAT))
    values = {n: ir.Value(name=n, shape=ir.Shape(t.shape), type=ir.TensorType(t.dtype), const_value=t)
              for n, t in (("W1", w1), ("b1", b1), ("W2", w2))}
    mm = ir.node("MatMul", [x, values["W1"]], name="mm")
    add = ir.node("Add", [mm.outputs[0], values["b1"]], name="add")
    relu = ir.node("Relu", [add.outputs[0]], name="relu")
    gemm = ir.node("Gemm", [relu.outputs[0], values["W2"]], {"transB": int(transposed_gemm)}, name="gemm")
    gemm.outputs[0].name = "y"
    graph = ir.Graph([x], [gemm.outputs[0]], nodes=[mm, add, relu, gemm], initializers=list(values.values()),
                     opset_imports={"": 17})
    return ir.Model(graph, ir_version=8)


def samples(count: int = 16) -> list[dict[str, np.ndarray]]:
    return [{"x": RNG.standard_normal((8, 32)).astype(np.float32)} for _ in range(count)]


def weights(model: ir.Model) -> dict[str, np.ndarray]:
    return {node.name: node.inputs[1].const_value.numpy() for node in model.graph if node.op_type in
            ("MatMul", "Gemm")}


def test_unstructured_per_layer_prunes_each_layer_to_the_target_and_runs():
    model = mlp()
    report = prune_model(model, PruningOptions(method="unstructured", sparsity=0.5, recover=False))
    for name, weight in weights(model).items():
        assert np.mean(weight == 0) == pytest.approx(0.5), name
    assert [layer.sparsity for layer in report.layers] == [pytest.approx(0.5)] * 2
    assert report.after.nonzero_parameters == report.before.parameters // 2
    feeds = samples(1)[0]
    w = weights(model)
    expected = np.maximum(feeds["x"] @ w["mm"] + model.graph.initializers["b1"].const_value.numpy(), 0) @ w["gemm"].T
    got = WeightProbe(model, ()).outputs([feeds])[0]["y"]
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)


def test_n_m_has_the_pattern_along_the_input_dimension_of_both_layouts():
    for transposed in (True, False):
        model = mlp(transposed)
        prune_model(model, PruningOptions(method="n:m", recover=False))
        w = weights(model)
        assert has_n_m_pattern(w["mm"], 2, 4, axis=0)
        assert has_n_m_pattern(w["gemm"], 2, 4, axis=1 if transposed else 0)
        assert scan_n_m(model).all_sparse


def test_block_zeroes_whole_blocks_of_the_matmul_view():
    model = mlp()
    prune_model(model, PruningOptions(method="block", sparsity=0.5, block_shape=(4, 8), recover=False))
    view = weights(model)["gemm"].T  # [K=64, N=16]
    blocks = view.reshape(16, 4, 2, 8).transpose(0, 2, 1, 3).reshape(32, 32)
    assert np.all((blocks == 0).all(axis=1) | (blocks != 0).all(axis=1))
    assert np.mean((blocks == 0).all(axis=1)) == pytest.approx(0.5)


def test_recovery_raises_fidelity_and_the_original_is_untouched():
    original = mlp()
    before = weights(original)["mm"].copy()
    model = original.clone()
    report = prune_model(model, PruningOptions(method="block", sparsity=0.5, block_shape=(1, 8)), samples())
    assert report.fidelity["recovered"] > report.fidelity["pruned"]
    assert report.recovery
    np.testing.assert_array_equal(weights(original)["mm"], before)
    assert np.mean(weights(model)["mm"] == 0) == pytest.approx(0.5)


def test_sensitivity_keeps_the_overall_sparsity():
    model = mlp()
    report = prune_model(model, PruningOptions(method="unstructured", sparsity=0.5, sensitivity=True,
                                               recover=False), samples(4))
    assert set(report.sensitivity) == {"mm", "gemm"}
    sizes = [32 * 64, 16 * 64]
    total = sum(layer.sparsity * size for layer, size in zip(report.layers, sizes)) / sum(sizes)
    assert total == pytest.approx(0.5, abs=0.01)


@pytest.mark.parametrize("options", [PruningOptions(importance="activation", recover=False),
                                     PruningOptions(sensitivity=True, recover=False), PruningOptions()])
def test_options_that_need_calibration_data_say_so(options):
    with pytest.raises(UsageError, match="calibration"):
        prune_model(mlp(), options)


def test_exclude_leaves_a_layer_dense():
    model = mlp()
    report = prune_model(model, PruningOptions(method="unstructured", exclude=("Gemm",), recover=False))
    assert [layer.name for layer in report.layers] == ["mm"]
    assert np.all(weights(model)["gemm"] != 0)


def test_tensorrt_bundle_of_a_2_4_model_enables_sparsity(tmp_path):
    from optimizer.backends.base import CompileOptions
    from optimizer.backends.tensorrt.backend import plan_build

    from optimizer.targets import get_target

    model = mlp()
    prune_model(model, PruningOptions(method="n:m", recover=False))
    options = CompileOptions(target=get_target("jetson-orin-nano"), precision="fp32")
    plan = plan_build(model, options)
    assert plan.sparse_weights and plan.config()["sparse_weights"]
    assert "--sparsity=enable" in plan.trtexec_command(10)
    dense = plan_build(mlp(), options)
    assert not dense.sparse_weights and "--sparsity" not in dense.trtexec_command(11)
