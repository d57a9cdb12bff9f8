"""The zoo's real models run in ONNX Runtime on its real inputs and give sensible answers."""

import subprocess
import sys

import numpy as np
import onnxruntime
import pytest
from optimizer.benchmarks import zoo

pytestmark = pytest.mark.zoo


def fetched(fetch, *args, **kwargs):
    """Call a zoo function; skip the test, with the reason, where the zoo cannot be had."""
    try:
        return fetch(*args, **kwargs)
    except zoo.ZooUnavailable as reason:
        pytest.skip(str(reason))


def session_for(model_path) -> onnxruntime.InferenceSession:
    return onnxruntime.InferenceSession(str(model_path), providers=["CPUExecutionProvider"])


def test_yolov8n_finds_the_astronauts_face():
    detector = session_for(fetched(zoo.yolov8n_path))
    (predictions,) = detector.run(None, fetched(zoo.yolov8n_inputs, 320, "astronaut.png"))

    # [1, 4 box coordinates + 18 class scores, 40*40 + 20*20 + 10*10 anchors]
    assert predictions.shape == (1, 22, 2100)
    assert np.isfinite(predictions).all()
    best_class_score = predictions[0, 4:].max(axis=0)
    assert (best_class_score > 0.25).sum() >= 1


def test_yolov8n_calibration_letterboxes_every_photo():
    calibration = fetched(zoo.yolov8n_calibration, 256)

    assert len(calibration) == len(zoo.PHOTO_NAMES)
    for sample in calibration:
        images = sample["images"]
        assert images.shape == (1, 3, 256, 256) and images.dtype == np.float32
        assert 0.0 <= images.min() and images.max() <= 1.0


def test_silero_vad_hears_speech():
    vad = session_for(fetched(zoo.silero_vad_path))
    inputs = fetched(zoo.silero_vad_inputs)
    speech_probability, next_state = vad.run(None, inputs)

    assert inputs["input"].shape == (1, 64 + 512) and inputs["sr"].dtype == np.int64
    assert speech_probability.shape == (1, 1) and next_state.shape == (2, 1, 128)
    assert np.isfinite(next_state).all()
    # espeak-ng's voice scores ~0.9, the synthetic fallback ~0.76, a chunk without context ~0.002.
    assert speech_probability.item() > 0.5


def test_minilm_embeds_similar_sentences_close_together():
    encoder = session_for(fetched(zoo.minilm_path))
    hidden, embedding = encoder.run(None, fetched(zoo.minilm_inputs, 128))
    assert hidden.shape == (1, 128, 384) and embedding.shape == (1, 384)
    assert np.isfinite(hidden).all()
    assert np.linalg.norm(embedding) == pytest.approx(1.0, abs=1e-4)

    # Batch and sequence axes are dynamic; a paraphrase lands nearer than an unrelated sentence.
    sentences = [zoo.EVERYDAY_SENTENCES[2], "Rain is expected later today.", "The cat is asleep."]
    _, embeddings = encoder.run(None, fetched(zoo.minilm_inputs, 32, sentences))
    similarity_to_paraphrase, similarity_to_unrelated = embeddings[1:] @ embeddings[0]
    assert similarity_to_paraphrase > similarity_to_unrelated + 0.2


def test_minilm_calibration_has_one_sample_per_sentence():
    calibration = fetched(zoo.minilm_calibration, 64)

    assert len(calibration) == len(zoo.EVERYDAY_SENTENCES)
    for sample in calibration:
        assert sample["input_ids"].shape == sample["attention_mask"].shape == (1, 64)
        assert sample["input_ids"].dtype == np.int64 and sample["input_ids"][0, 0] == 101  # [CLS]


def test_unreachable_registry_raises_zoo_unavailable(tmp_path, monkeypatch):
    monkeypatch.setenv("HWOPT_ZOO_CACHE", str(tmp_path))
    failed_pip = subprocess.CompletedProcess([], 1, "", "ERROR: No matching distribution found")
    monkeypatch.setattr(zoo.subprocess, "run", lambda *args, **kwargs: failed_pip)

    with pytest.raises(zoo.ZooUnavailable, match="No matching distribution"):
        zoo.yolov8n_path()


def test_zoo_imports_without_torch_transformers_or_pillow():
    probe = (
        f"import runpy, sys; runpy.run_path({zoo.__file__!r}); "
        "heavy = {'torch', 'transformers', 'PIL', 'tokenizers'} & set(sys.modules); "
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", probe], check=True)
