import numpy as np

from optimizer.ir import model_to_bytes
from optimizer.passes import FoldBatchNorm
from optimizer.testing import assert_equivalent, model_from_text, op_types

CONV_BN = """
<ir_version: 9, opset_import: ["" : 17]>
g (float[N, 3, 8, 8] x) => (float[N, 4, 8, 8] y) {
    c = Conv <pads = [1, 1, 1, 1]> (x, w, b)
    y = BatchNormalization (c, scale, bias, mean, var)
}
"""


def _conv_bn_model(rng):
    return model_from_text(
        CONV_BN,
        w=rng.standard_normal((4, 3, 3, 3)).astype(np.float32),
        b=rng.standard_normal(4).astype(np.float32),
        scale=rng.uniform(0.5, 2, 4).astype(np.float32),
        bias=rng.standard_normal(4).astype(np.float32),
        mean=rng.standard_normal(4).astype(np.float32),
        var=rng.uniform(0.5, 2, 4).astype(np.float32),
    )


def test_batchnorm_folds_into_conv_and_keeps_outputs():
    model = _conv_bn_model(np.random.default_rng(0))
    original = model_to_bytes(model)
    fold = FoldBatchNorm()
    fold(model)
    assert op_types(model) == ["Conv"]
    assert fold.total_rewrites == 1
    assert_equivalent(original, model, rtol=1e-4, atol=1e-5)


def test_batchnorm_after_a_non_constant_weight_stays():
    model = model_from_text(
        """
        <ir_version: 9, opset_import: ["" : 17]>
        g (float[1, 3, 8, 8] x, float[4, 3, 3, 3] w) => (float[1, 4, 6, 6] y) {
            c = Conv (x, w)
            y = BatchNormalization (c, scale, bias, mean, var)
        }
        """,
        scale=np.ones(4, np.float32), bias=np.zeros(4, np.float32),
        mean=np.zeros(4, np.float32), var=np.ones(4, np.float32),
    )
    FoldBatchNorm()(model)
    assert op_types(model) == ["Conv", "BatchNormalization"]
