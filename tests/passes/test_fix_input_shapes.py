import numpy as np
import pytest

from optimizer.errors import UsageError
from optimizer.ir import infer_shapes, model_to_bytes
from optimizer.pipeline import fix_shapes_stage, pipeline_stages, run_pipeline
from optimizer.passes import FixInputShapes, FixInputShapesConfig
from optimizer.testing import assert_equivalent, model_from_text, op_types

DYNAMIC_FLATTEN = """
<ir_version: 9, opset_import: ["" : 17]>
g (float[N, C, 4, 4] x) => (float[N, K] y) {
    s = Shape (x)
    n = Slice (s, zero, one)
    target = Concat <axis = 0> (n, minus_one)
    y = Reshape (x, target)
}
"""


def _model():
    return model_from_text(
        DYNAMIC_FLATTEN,
        zero=np.array([0], np.int64), one=np.array([1], np.int64), minus_one=np.array([-1], np.int64),
    )


def test_fixed_shapes_let_the_shape_arithmetic_fold_away():
    model = _model()
    original = model_to_bytes(model)
    stages = (fix_shapes_stage({"x": (2, 3, 4, 4)}), *pipeline_stages("onnxruntime-cpu", 2))
    run_pipeline(model, stages)
    assert op_types(model) == ["Reshape"]
    assert model.graph.inputs[0].shape.dims == (2, 3, 4, 4)
    feeds = {"x": np.random.default_rng(0).standard_normal((2, 3, 4, 4)).astype(np.float32)}
    assert_equivalent(original, model, feeds)


def test_static_dim_mismatch_is_a_usage_error():
    model = model_from_text(
        """
        <ir_version: 9, opset_import: ["" : 17]>
        g (float[1, 3] x) => (float[1, 3] y) { y = Relu (x) }
        """
    )
    with pytest.raises(UsageError, match="dimension 1 is fixed at 3"):
        FixInputShapes(FixInputShapesConfig({"x": (1, 4)}))(model)


def test_unknown_input_and_wrong_rank_are_named():
    model = _model()
    with pytest.raises(UsageError, match="unknown input.*images"):
        FixInputShapes(FixInputShapesConfig({"images": (1, 3, 4, 4)}))(model)
    with pytest.raises(UsageError, match="rank 4"):
        FixInputShapes(FixInputShapesConfig({"x": (1, 3)}))(model)


def test_shapes_propagate_to_intermediate_values():
    model = _model()
    infer_shapes(model)
    FixInputShapes(FixInputShapesConfig({"x": (1, 2, 4, 4)}))(model)
    assert model.graph.outputs[0].shape is not None
