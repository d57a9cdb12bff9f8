from optimizer.ir import default_opset_version, model_to_bytes
from optimizer.passes import UpgradeOpset, UpgradeOpsetConfig
from optimizer.testing import assert_equivalent, model_from_text


def test_opset_is_raised_and_outputs_stay():
    model = model_from_text(
        """
        <ir_version: 8, opset_import: ["" : 13]>
        g (float[2, 3] x) => (float[2, 3] y) { y = Softmax <axis = 1> (x) }
        """
    )
    original = model_to_bytes(model)
    UpgradeOpset(UpgradeOpsetConfig(target_version=21))(model)
    assert default_opset_version(model) == 21
    assert_equivalent(original, model)


def test_never_downgrades():
    model = model_from_text(
        """
        <ir_version: 10, opset_import: ["" : 21]>
        g (float[2] x) => (float[2] y) { y = Relu (x) }
        """
    )
    upgrade = UpgradeOpset(UpgradeOpsetConfig(target_version=17))
    upgrade(model)
    assert upgrade.total_rewrites == 0
    assert default_opset_version(model) == 21
