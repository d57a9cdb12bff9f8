import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

import optimizer
from optimizer.errors import UsageError
from optimizer.ir import load_model, op_histogram
from optimizer.passes.freeze_inputs import freeze_value


def _rate_switch(path):
    """y = Relu(x) when rate == 16000, else Neg(x): a configuration input selecting a branch, as in silero."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8])
    rate = helper.make_tensor_value_info("rate", TensorProto.INT64, [])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8])
    then_out = helper.make_tensor_value_info("t", TensorProto.FLOAT, [1, 8])
    else_out = helper.make_tensor_value_info("e", TensorProto.FLOAT, [1, 8])
    then_branch = helper.make_graph([helper.make_node("Relu", ["x"], ["t"], name="relu")], "then", [], [then_out])
    else_branch = helper.make_graph([helper.make_node("Neg", ["x"], ["e"], name="neg")], "else", [], [else_out])
    nodes = [
        helper.make_node("Constant", [], ["r16k"], value=helper.make_tensor("v", TensorProto.INT64, [], [16000])),
        helper.make_node("Equal", ["rate", "r16k"], ["is16k"], name="equal"),
        helper.make_node("If", ["is16k"], ["y"], name="switch", then_branch=then_branch, else_branch=else_branch),
    ]
    model = helper.make_model(helper.make_graph(nodes, "g", [x, rate], [y]), opset_imports=[helper.make_opsetid("", 17)])
    onnx.save(model, path)
    return path


def test_a_frozen_configuration_input_folds_its_branch_away_and_leaves_the_signature(tmp_path):
    path = _rate_switch(tmp_path / "switch.onnx")
    result = optimizer.optimize(path, output_dir=tmp_path / "out", freeze_inputs={"rate": 16000}, benchmark=False,
                                runtime="onnxruntime")
    model = load_model(result.model_path)
    assert [value.name for value in model.graph.inputs] == ["x"]
    assert op_histogram(model) == {"Relu": 1}
    assert result.verification.passed
    assert [spec.name for spec in result.artifact.manifest.inputs] == ["x"]
    assert any(p.name == "freeze-inputs" and p.rewrites == 1 for s in result.report.pipeline.stages
               for p in s.passes)


def test_freezing_checks_names_and_values(tmp_path):
    path = _rate_switch(tmp_path / "switch.onnx")
    with pytest.raises(UsageError, match="unknown input.*sample_rate.*inputs are x, rate"):
        optimizer.optimize(path, output_dir=tmp_path / "o", freeze_inputs={"sample_rate": 16000})
    with pytest.raises(UsageError, match="rate: 'fast' is not a int64 value"):
        freeze_value("rate", "fast", np.dtype(np.int64), ())
    with pytest.raises(UsageError, match="does not fit the input's shape"):
        freeze_value("x", [1.0, 2.0, 3.0], np.dtype(np.float32), (1, 8))
    assert freeze_value("x", 0.5, np.dtype(np.float32), (1, 8)).shape == (1, 8)
    assert not (tmp_path / "o").exists()
