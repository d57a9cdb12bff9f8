import numpy as np

from optimizer.verify import FidelityThresholds, compare_outputs

THRESHOLDS = FidelityThresholds(min_cosine=0.9999)


def test_identical_outputs_pass():
    x = np.random.default_rng(0).standard_normal((4, 8)).astype(np.float32)
    result = compare_outputs("y", x, x.copy(), THRESHOLDS)
    assert result.passed and result.cosine == 1.0 and result.max_abs_error == 0.0


def test_small_noise_passes_and_large_error_fails():
    rng = np.random.default_rng(0)
    x = rng.standard_normal(1000).astype(np.float32)
    assert compare_outputs("y", x, x + 1e-4 * rng.standard_normal(1000).astype(np.float32), THRESHOLDS).passed
    bad = compare_outputs("y", x, x + 0.5 * rng.standard_normal(1000).astype(np.float32), THRESHOLDS)
    assert not bad.passed and bad.cosine < 0.99


def test_integer_outputs_must_match_exactly():
    a = np.array([1, 2, 3])
    assert compare_outputs("idx", a, a.copy(), THRESHOLDS).passed
    result = compare_outputs("idx", a, np.array([1, 2, 4]), THRESHOLDS)
    assert not result.passed and result.mismatched_elements == 1
    assert result.max_abs_error == 1.0 and result.cosine > 0.99


def test_nan_in_the_same_place_agrees_elsewhere_it_does_not():
    a = np.array([1.0, np.nan, 3.0], np.float32)
    assert compare_outputs("y", a, a.copy(), THRESHOLDS).passed
    assert not compare_outputs("y", a, np.array([1.0, 2.0, 3.0], np.float32), THRESHOLDS).passed


def test_shape_change_fails_and_zero_outputs_agree():
    assert not compare_outputs("y", np.zeros((2, 3)), np.zeros((3, 2)), THRESHOLDS).passed
    assert compare_outputs("y", np.zeros(5), np.zeros(5), THRESHOLDS).passed


def test_absolute_bound_is_applied_when_given():
    a = np.array([1000.0, 2000.0])
    b = a + 1.0
    assert compare_outputs("y", a, b, THRESHOLDS).passed
    assert not compare_outputs("y", a, b, FidelityThresholds(min_cosine=0.9, max_abs_error=0.1)).passed


def test_sequence_outputs_of_different_lengths_compare_element_by_element(tmp_path):
    from optimizer.ir import save_model
    from optimizer.testing import model_from_text
    from optimizer.verify import verify

    model = model_from_text(
        """
        <ir_version: 9, opset_import: ["" : 17]>
        g (float[4] x) => (seq(float[?]) parts) { parts = SplitToSequence (x, split) }
        """,
        split=np.array([1, 3], np.int64),
    )
    path = tmp_path / "seq.onnx"
    save_model(model, path)
    result = verify(path, path, {"x": np.arange(4, dtype=np.float32)}, inputs_source="user")
    assert result.passed
    assert [o.name for o in result.outputs] == ["parts[0]", "parts[1]"]


def test_only_the_named_outputs_decide_and_the_others_are_still_reported():
    import pytest

    from optimizer.errors import UsageError
    from optimizer.verify import compare_runs

    rng = np.random.default_rng(0)
    embedding, hidden = rng.standard_normal(16), rng.standard_normal(64)
    expected = {"embedding": embedding, "hidden": hidden}
    actual = {"embedding": embedding * 1.0001, "hidden": rng.standard_normal(64)}
    assert not compare_runs(expected, actual, inputs_source="user").passed
    judged = compare_runs(expected, actual, inputs_source="user",
                          thresholds=FidelityThresholds(outputs=("embedding",)))
    assert judged.passed
    hidden_fidelity = next(o for o in judged.outputs if o.name == "hidden")
    assert not hidden_fidelity.decides and not hidden_fidelity.passed and hidden_fidelity.cosine < 0.9
    with pytest.raises(UsageError, match="unknown output.*pooled.*outputs are embedding, hidden"):
        compare_runs(expected, actual, inputs_source="user", thresholds=FidelityThresholds(outputs=("pooled",)))
