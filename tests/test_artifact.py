import json

import pytest

from optimizer.artifact import ArtifactError, Manifest, TensorSpec, load_artifact, write_manifest


def _artifact(folder):
    folder.mkdir()
    (folder / "model.onnx").write_bytes(b"onnx bytes")
    (folder / "sub").mkdir()
    (folder / "sub" / "extra.txt").write_text("x")
    manifest = Manifest(target="cpu", runtime="onnxruntime", runtime_version="1.0", device="CPU",
                        precision="fp32", entry="model.onnx", inputs=[TensorSpec("x", "float", [1, "N"])],
                        outputs=[TensorSpec("y", "float", None)], layers={"conv": "int8"})
    return write_manifest(folder, manifest)


def test_manifest_lists_every_file_with_size_and_checksum_and_reads_back(tmp_path):
    written = _artifact(tmp_path / "a")
    assert sorted(written.manifest.files) == ["model.onnx", "sub/extra.txt"]
    loaded = load_artifact(tmp_path / "a")
    assert loaded.manifest == written.manifest
    assert loaded.entry_path == tmp_path / "a" / "model.onnx" and loaded.size_bytes == len(b"onnx bytes") + 1


@pytest.mark.parametrize("damage, message", [
    (lambda f: (f / "model.onnx").write_bytes(b"onnx bytez"), "checksum does not match"),
    (lambda f: (f / "model.onnx").write_bytes(b"short"), "bytes, the manifest says"),
    (lambda f: (f / "sub" / "extra.txt").unlink(), "missing"),
    (lambda f: (f / "manifest.json").write_text("{not json"), "not a valid manifest"),
    (lambda f: (f / "manifest.json").unlink(), "no manifest.json"),
])
def test_altered_artifacts_are_refused_naming_the_file(tmp_path, damage, message):
    _artifact(tmp_path / "a")
    damage(tmp_path / "a")
    with pytest.raises(ArtifactError, match=message):
        load_artifact(tmp_path / "a")


def test_a_manifest_pointing_outside_the_artifact_is_refused(tmp_path):
    _artifact(tmp_path / "a")
    (tmp_path / "secret").write_text("s")
    path = tmp_path / "a" / "manifest.json"
    data = json.loads(path.read_text())
    data["files"]["../secret"] = {"bytes": 1, "sha256": "0" * 64}
    path.write_text(json.dumps(data))
    with pytest.raises(ArtifactError, match="outside the artifact"):
        load_artifact(tmp_path / "a")


def test_the_entry_file_must_exist(tmp_path):
    (tmp_path / "b").mkdir()
    manifest = Manifest(target="cpu", runtime="onnxruntime", runtime_version="1", device="CPU", precision="fp32",
                        entry="model.xml", inputs=[], outputs=[])
    with pytest.raises(ArtifactError, match="entry file 'model.xml'"):
        write_manifest(tmp_path / "b", manifest)
