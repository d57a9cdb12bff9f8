"""2:4 on real models: every group of 4 weights along the input dimension keeps at most 2 (the acceptance check),
and TensorRT-RTX accepts the sparse-weights flag."""

import numpy as np
import onnx_ir as ir
import pytest

from optimizer.pruning.layers import find_layers
from optimizer.pruning.options import PruningOptions
from optimizer.pruning.patterns import has_n_m_pattern, scan_n_m
from optimizer.pruning.prune import prune_model


def test_has_n_m_pattern():
    weight = np.array([[1, 0, 2, 0, 3], [0, 0, 1, 1, 5]], dtype=np.float32)
    assert has_n_m_pattern(weight, 2, 4, axis=1)  # the tail (5th column) is not checked
    assert not has_n_m_pattern(np.ones((2, 4)), 2, 4, axis=1)
    assert not has_n_m_pattern(np.zeros((4, 3)), 2, 4, axis=1)  # no complete group


@pytest.mark.zoo
@pytest.mark.parametrize("name", ["yolov8n", "minilm"])
def test_2_4_on_real_model_weights(name):
    from optimizer.benchmarks import zoo

    try:
        path = zoo.yolov8n_path() if name == "yolov8n" else zoo.minilm_path()
    except zoo.ZooUnavailable as error:
        pytest.skip(str(error))
    model = ir.load(path)
    report = prune_model(model, PruningOptions(method="n:m", recover=False))
    layers, _ = find_layers(model)
    checked = 0
    for layer in layers:
        if layer.input_size >= 4:
            group_of_4 = np.moveaxis(layer.array(), layer.input_axis, -1)
            whole = group_of_4.shape[-1] // 4 * 4
            zeros = (group_of_4[..., :whole].reshape(*group_of_4.shape[:-1], -1, 4) == 0).sum(axis=-1)
            assert np.all(zeros >= 2), layer.name
            checked += 1
    assert checked == len(report.layers) > 10
    assert scan_n_m(model).all_sparse


def test_tensorrt_rtx_accepts_sparse_weights(tmp_path):
    trt = pytest.importorskip("tensorrt_rtx")
    from optimizer.ir import save_model
    from tests.pruning.test_prune import mlp

    model = mlp()
    prune_model(model, PruningOptions(method="n:m", recover=False))
    save_model(model, tmp_path / "model.onnx")
    logger = trt.Logger(trt.Logger.ERROR)
    builder = trt.Builder(logger)
    network = builder.create_network(1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED))
    parser = trt.OnnxParser(network, logger)
    assert parser.parse_from_file(str(tmp_path / "model.onnx"))
    config = builder.create_builder_config()
    config.set_flag(trt.BuilderFlag.SPARSE_WEIGHTS)
    config.num_compute_capabilities = 1
    config.set_compute_capability(trt.ComputeCapability.SM80, 0)
    assert builder.build_serialized_network(network, config) is not None
