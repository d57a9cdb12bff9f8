"""Artifacts: the folder a backend compiled, described by `manifest.json`.

The manifest says what the artifact is for (target, runtime and version, device), what it expects and returns
(input/output names, dtypes, shapes), how each layer is computed (precision per layer), and every file's size
and SHA-256, so an artifact copied to a device (or uploaded to an agent) is checked before it is used.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import onnx_ir as ir

from optimizer.errors import HwoptError

MANIFEST_FILE = "manifest.json"
MANIFEST_SCHEMA_VERSION = 1
# Written beside an artifact by `optimize`, but not part of it: the report describes the run, not the files.
NOT_ARTIFACT_FILES = frozenset({MANIFEST_FILE, "report.json"})
# The ONNX model every artifact carries (what each runtime here compiles from), and its external data.
PORTABLE_ONNX_FILES = ("model.onnx", "model.onnx.data")


class ArtifactError(HwoptError):
    """An artifact folder that is incomplete, altered or not an artifact at all."""


@dataclass(frozen=True)
class TensorSpec:
    name: str
    dtype: str
    shape: list[int | str | None] | None


@dataclass(frozen=True)
class FileEntry:
    bytes: int
    sha256: str


@dataclass
class Manifest:
    target: str
    runtime: str
    runtime_version: str
    device: str
    precision: str
    entry: str
    """The file a session loads (model.onnx, model.xml, ...), relative to the artifact folder."""
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    layers: dict[str, str] = field(default_factory=dict)
    """Node name -> precision for every compute layer."""
    details: dict[str, Any] = field(default_factory=dict)
    runs_here: bool = True
    files: dict[str, FileEntry] = field(default_factory=dict)
    hwopt_version: str = ""
    created: str = ""
    schema_version: int = MANIFEST_SCHEMA_VERSION

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, default=str)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Manifest:
        data = dict(data)
        data["inputs"] = [TensorSpec(**spec) for spec in data.get("inputs", [])]
        data["outputs"] = [TensorSpec(**spec) for spec in data.get("outputs", [])]
        data["files"] = {name: FileEntry(**entry) for name, entry in data.get("files", {}).items()}
        return cls(**data)


@dataclass
class Artifact:
    folder: Path
    manifest: Manifest

    @property
    def entry_path(self) -> Path:
        return self.folder / self.manifest.entry

    @property
    def files(self) -> list[Path]:
        return [self.folder / name for name in self.manifest.files]

    @property
    def size_bytes(self) -> int:
        return sum(entry.bytes for entry in self.manifest.files.values())

    @property
    def runtime_bytes(self) -> int:
        """The size of what the runtime loads: its entry and everything beside it, but not the portable ONNX
        copy that an OpenVINO or ORT-optimized artifact also carries."""
        portable = set(PORTABLE_ONNX_FILES) if self.manifest.entry not in PORTABLE_ONNX_FILES else set()
        return sum(entry.bytes for name, entry in self.manifest.files.items() if name not in portable)


def tensor_specs(values: list[ir.Value]) -> list[TensorSpec]:
    specs = []
    for value in values:
        dtype = value.dtype.name.lower() if value.dtype is not None else "undefined"
        shape = None if value.shape is None else [d if isinstance(d, int) else d.value for d in value.shape]
        specs.append(TensorSpec(value.name, dtype, shape))
    return specs


def model_io_specs(model: ir.Model) -> tuple[list[TensorSpec], list[TensorSpec]]:
    inputs = [v for v in model.graph.inputs if v.name not in model.graph.initializers]
    return tensor_specs(inputs), tensor_specs(list(model.graph.outputs))


def write_manifest(folder: str | os.PathLike, manifest: Manifest) -> Artifact:
    """Checksum every file in `folder` (recursively) into the manifest and write it atomically."""
    from optimizer import __version__

    folder = Path(folder)
    manifest.files = {
        path.relative_to(folder).as_posix(): FileEntry(path.stat().st_size, sha256_of(path))
        for path in sorted(folder.rglob("*"))
        if path.is_file() and path.relative_to(folder).as_posix() not in NOT_ARTIFACT_FILES
        and not path.name.startswith(".")
    }
    if manifest.entry not in manifest.files:
        raise ArtifactError(f"{folder}: the backend did not write its entry file '{manifest.entry}'")
    manifest.hwopt_version = manifest.hwopt_version or __version__
    manifest.created = manifest.created or datetime.now(UTC).isoformat(timespec="seconds")
    temporary = folder / f".{MANIFEST_FILE}.tmp-{os.getpid()}"
    temporary.write_text(manifest.to_json() + "\n", encoding="utf-8")
    os.replace(temporary, folder / MANIFEST_FILE)
    return Artifact(folder, manifest)


def load_artifact(folder: str | os.PathLike, *, check_files: bool = True) -> Artifact:
    """Read an artifact folder; with `check_files`, every listed file must exist with its size and checksum."""
    folder = Path(folder)
    path = folder / MANIFEST_FILE
    if not path.is_file():
        raise ArtifactError(f"{folder}: not an hwopt artifact (no {MANIFEST_FILE})")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("schema_version") != MANIFEST_SCHEMA_VERSION:
            raise ArtifactError(f"{path}: manifest schema version {data.get('schema_version')!r} is not "
                                f"{MANIFEST_SCHEMA_VERSION}; re-create the artifact with this hwopt")
        manifest = Manifest.from_dict(data)
    except ArtifactError:
        raise
    except (ValueError, TypeError, AttributeError) as error:
        raise ArtifactError(f"{path}: not a valid manifest ({' '.join(str(error).split())[:200]})") from None
    if check_files:
        for name, entry in manifest.files.items():
            _check_file(folder, name, entry)
    return Artifact(folder, manifest)


def _check_file(folder: Path, name: str, entry: FileEntry) -> None:
    path = folder / name
    if not path.resolve().is_relative_to(folder.resolve()):
        raise ArtifactError(f"{folder}: manifest names a file outside the artifact: {name}")
    if not path.is_file():
        raise ArtifactError(f"{path}: listed in the manifest but missing")
    if path.stat().st_size != entry.bytes:
        raise ArtifactError(f"{path}: {path.stat().st_size} bytes, the manifest says {entry.bytes}")
    if sha256_of(path) != entry.sha256:
        raise ArtifactError(f"{path}: checksum does not match the manifest (altered or corrupt)")


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
