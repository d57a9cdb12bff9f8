"""Every listed target on the real models: an artifact that verifies (and, for TensorRT, parses and builds with
TensorRT-RTX; for LiteRT, runs in its interpreter), or a pre-flight error that names nodes. Never a crash, never a
half-written folder."""

import pytest
from optimizer.benchmarks.real_models import REAL_MODELS, fetch

import optimizer
from optimizer.artifact import load_artifact
from optimizer.preflight import PreflightError
from optimizer.targets import all_targets

pytestmark = [pytest.mark.zoo, pytest.mark.slow]

# A deployment runs silero-vad at one sample rate; freezing it folds away the other rate's If branch, which
# TensorRT would otherwise have to build too (see test_silero_on_tensorrt_needs_its_rate_frozen).
FROZEN = {"silero-vad": {"sr": 16000}}
TARGETS = [profile.name for profile in all_targets()]
# Models hwopt's TFLite writer may not express yet (silero-vad: LSTM, 1-D convolutions, reflect padding; MiniLM:
# MatMul, LayerNormalization, Erf): on the LiteRT targets they may get a pre-flight error instead, which must name
# every node it refuses and leave nothing written. Every other model must convert and verify there.
NOT_YET_TFLITE = {"silero-vad", "minilm"}


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("name", list(REAL_MODELS))
def test_every_target_gets_a_verified_artifact(name, target, tmp_path):
    path, feeds, _ = fetch(name)
    shapes = {input_name: array.shape for input_name, array in feeds.items() if array.ndim}
    out = tmp_path / "out"
    try:
        result = optimizer.optimize(path, target=target, shapes=shapes, inputs=feeds, output_dir=out,
                                    benchmark=False, threads=2, freeze_inputs=FROZEN.get(name))
    except PreflightError as error:
        if name not in NOT_YET_TFLITE or {issue.runtime for issue in error.issues} != {"tflite"}:
            raise
        assert error.issues and all(issue.node for issue in error.issues)
        assert not out.exists()
        return
    artifact = load_artifact(out)  # every file present with its checksum
    assert artifact.manifest.target == target and result.verification.passed
    assert result.verification.worst_cosine >= (0.999 if artifact.manifest.precision in ("fp32", "fp16") else 0.99)
    if artifact.manifest.runtime == "tensorrt":
        rtx = pytest.importorskip("tensorrt_rtx", reason="TensorRT-RTX proves the bundle builds")
        del rtx
        from optimizer.backends.tensorrt.rtx_check import check_bundle

        # TensorRT-RTX cannot compile FP32 GEMMs for Turing (SM75), which TensorRT itself does on a T4: the
        # T4 bundle is built for the next architecture RTX has instead.
        sm = "8.0" if target == "t4" else None
        built = check_bundle(out, compute_capability=sm)
        assert built.ok, str(built)


def test_silero_on_tensorrt_needs_its_rate_frozen(tmp_path):
    pytest.importorskip("tensorrt_rtx", reason="the parser check runs TensorRT-RTX")
    path, feeds, _ = fetch("silero-vad")
    shapes = {input_name: array.shape for input_name, array in feeds.items() if array.ndim}
    with pytest.raises(PreflightError, match=r"If_0_else_branch.*--freeze-input") as caught:
        optimizer.optimize(path, target="jetson", shapes=shapes, inputs=feeds, output_dir=tmp_path / "out")
    assert caught.value.issues and all(issue.node for issue in caught.value.issues)
    assert not (tmp_path / "out").exists()
