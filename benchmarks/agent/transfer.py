"""An artifact folder as one tar.gz upload, and that upload unpacked on the agent without trusting it.

The archive holds manifest.json first, then the optimize report when there is one (the runner reads the
model's name and the fidelity figures from it, so a remote report says what a local one says), then exactly
the files the manifest lists. Unpacking reads the manifest first and so can refuse, while still streaming,
anything else: a path that is absolute or climbs out with `..`, a link or device, a file the manifest does not
list or whose size differs from it, and more bytes than the cap, counted both as uploaded and as unpacked (a
small gzip can unpack to a huge file). The checksums are checked last, by `load_artifact`.
"""

from __future__ import annotations

import tarfile
import zlib
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from optimizer.artifact import MANIFEST_FILE, Artifact, ArtifactError, load_artifact
from optimizer.errors import HwoptError

OPTIMIZE_REPORT_FILE = "report.json"
METADATA_MAX_BYTES = 16 << 20
"""The manifest and the optimize report are JSON describing the files, never the files themselves."""
_BLOCK = 1 << 20


class TransferError(ArtifactError):
    """An upload that is not a well-formed artifact archive."""


class UploadTooLarge(TransferError):
    """An upload over the agent's cap, compressed or unpacked."""


class AgentStorageError(HwoptError):
    """The agent's own disk refused the upload (full, read-only): the agent's problem, not the artifact's."""


def pack_artifact(artifact: Artifact, stream: BinaryIO) -> None:
    """Write `artifact` to `stream` as tar.gz; the caller has checked it (`load_artifact`)."""
    names = [MANIFEST_FILE]
    if (artifact.folder / OPTIMIZE_REPORT_FILE).is_file():
        names.append(OPTIMIZE_REPORT_FILE)
    names += list(artifact.manifest.files)
    # Level 1: weights barely compress, and packing a large model at the default level 9 takes minutes.
    with tarfile.open(fileobj=stream, mode="w:gz", compresslevel=1, format=tarfile.PAX_FORMAT) as archive:
        for name in names:
            path = artifact.folder / name
            info = tarfile.TarInfo(name)
            info.size = path.stat().st_size
            info.mode = 0o644
            with open(path, "rb") as file:
                archive.addfile(info, file)


def unpack_artifact(stream: BinaryIO, folder: Path, *, max_bytes: int) -> Artifact:
    """Unpack an upload from `stream` into the new folder `folder` and check it against its manifest."""
    folder.mkdir(parents=True)
    counted = _CappedReader(stream, max_bytes)
    listed: dict[str, int] | None = None
    unpacked = 0
    try:
        with tarfile.open(fileobj=counted, mode="r|gz") as archive:
            for member in archive:
                name = _safe_name(member)
                if (folder / name).exists():
                    raise TransferError(f"{name}: twice in the upload")
                _check_listed(name, member.size, listed)
                unpacked += member.size
                if unpacked > max_bytes:
                    raise UploadTooLarge(f"the artifact unpacks to more than the agent's cap of {max_bytes} bytes")
                _write(archive, member, folder / name)
                if name == MANIFEST_FILE:
                    manifest = load_artifact(folder, check_files=False).manifest
                    listed = {file: entry.bytes for file, entry in manifest.files.items()}
    except (tarfile.TarError, zlib.error, EOFError, OSError) as error:  # gzip's BadGzipFile is an OSError
        raise TransferError(f"not a readable tar.gz artifact upload ({_brief(error)})") from None
    if listed is None:
        raise TransferError(f"the upload is empty (no {MANIFEST_FILE})")
    return load_artifact(folder)


def _safe_name(member: tarfile.TarInfo) -> str:
    """The member's path relative to the artifact folder, or TransferError when it could land anywhere else."""
    name = member.name
    parts = PurePosixPath(name).parts
    if not parts or name.startswith("/") or "\\" in name or any(part in ("", ".", "..") for part in parts):
        raise TransferError(f"{name!r}: a path outside the artifact folder")
    if not member.isreg() or member.issparse():
        raise TransferError(f"{name}: not a regular file (links, devices and folders are refused)")
    return "/".join(parts)


def _check_listed(name: str, size: int, listed: dict[str, int] | None) -> None:
    """Refuse a member the manifest (None: not read yet) does not account for, before a byte of it is written."""
    if listed is None and name != MANIFEST_FILE:
        raise TransferError(f"the upload must start with {MANIFEST_FILE}, not {name}")
    if name in (MANIFEST_FILE, OPTIMIZE_REPORT_FILE):
        if size > METADATA_MAX_BYTES:
            raise TransferError(f"{name}: {size} bytes, more than an hwopt {name} can be")
    elif name not in listed:
        raise TransferError(f"{name}: in the upload but not listed in its manifest")
    elif size != listed[name]:
        raise TransferError(f"{name}: {size} bytes, the manifest says {listed[name]}")


def _write(archive: tarfile.TarFile, member: tarfile.TarInfo, path: Path) -> None:
    source = archive.extractfile(member)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        target = open(path, "xb")  # noqa: SIM115 - closed below; its errors and the archive's differ
    except OSError as error:
        raise AgentStorageError(f"the agent cannot store {member.name} ({error.strerror})") from None
    with target:
        for block in iter(lambda: source.read(_BLOCK), b""):
            try:
                target.write(block)
            except OSError as error:  # reading the archive raises OSError too, and means a bad upload
                raise AgentStorageError(f"the agent cannot store {member.name} ({error.strerror})") from None


class _CappedReader:
    """A read-only stream that raises UploadTooLarge once more than `limit` bytes have been read through it."""

    def __init__(self, stream: BinaryIO, limit: int) -> None:
        self._stream = stream
        self._limit = limit
        self.count = 0

    def read(self, size: int = -1) -> bytes:
        data = self._stream.read(size)
        self.count += len(data)
        if self.count > self._limit:
            raise UploadTooLarge(f"the upload is larger than the agent's cap of {self._limit} bytes")
        return data


def _brief(error: BaseException) -> str:
    return " ".join(str(error).split())[:200] or type(error).__name__
