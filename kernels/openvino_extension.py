"""hwopt's OpenVINO extension: the library that lets OpenVINO run com.hwopt::BlockSparseMatMul natively.

`kernels/openvino/` holds the op (an ov::op::Op calling the C++ core in `csrc/core/`) and its conversion from
ONNX; `extension_library()` builds it with CMake and `add_to(core)` registers it with an `openvino.Core` (or
with an ONNX frontend, which converts models without a Core). Once registered, OpenVINO converts the ONNX op,
writes it to IR (type BlockSparseMatMul, version "hwopt"), reads that IR back and runs it.

Why the library is built on demand, the first time it is needed, rather than when hwopt is installed:

- an OpenVINO extension must be built against the headers of the exact release that loads it (OpenVINO keeps
  no ABI promise for ov::Node subclasses across releases), and OpenVINO is an optional extra that may be
  installed, or upgraded, after hwopt. The library is therefore cached per OpenVINO version and per hash of its
  sources, and a new version or a changed source builds a new one;
- the build uses the CMake package the openvino wheel itself ships (`openvino/cmake`), so it needs no OpenVINO
  developer install, only CMake >= 3.18 and a C++17 compiler.

The cache is $HWOPT_KERNELS_CACHE, else ~/.cache/hwopt/kernels (as the zoo's and TensorRT's caches), holding
`openvino-<version>-<hash>/libhwopt_openvino_extension.so` with the build's log beside it. A file lock keeps
two processes from building the same library at once, and the finished folder is moved into place in one
rename, so a reader sees a complete library or none.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib
import os
import shutil
import subprocess
import sys
import tempfile
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from optimizer.errors import HwoptError, RuntimeNotAvailableError

__all__ = ["ExtensionBuildError", "add_to", "cache_dir", "extension_library", "missing_build_tools", "source_files"]

PACKAGE_DIR = Path(__file__).resolve().parent
SOURCE_DIR = PACKAGE_DIR / "openvino"
CORE_DIR = PACKAGE_DIR / "csrc" / "core"
TARGET = "hwopt_openvino_extension"
LOG_FILE = "build.log"
BUILD_TIMEOUT_SECONDS = 600
_SOURCE_SUFFIXES = (".txt", ".cpp", ".hpp", ".h", ".inc")

_registered: weakref.WeakSet[Any] = weakref.WeakSet()
"""The Cores the extension was added to: adding it twice registers the op twice."""


class ExtensionBuildError(HwoptError):
    """hwopt's OpenVINO extension cannot be built here: a tool is missing, or the compiler failed."""


def cache_dir() -> Path:
    """Where built kernels libraries are kept: $HWOPT_KERNELS_CACHE, else ~/.cache/hwopt/kernels."""
    configured = os.environ.get("HWOPT_KERNELS_CACHE")
    return Path(configured).expanduser() if configured else Path.home() / ".cache" / "hwopt" / "kernels"


def library_name() -> str:
    if sys.platform == "win32":
        return f"{TARGET}.dll"
    return f"lib{TARGET}.dylib" if sys.platform == "darwin" else f"lib{TARGET}.so"


def source_files() -> list[Path]:
    """The sources the library is built from (the extension's and the kernel core's), in a stable order."""
    files = [path for folder in (SOURCE_DIR, CORE_DIR) if folder.is_dir() for path in sorted(folder.iterdir())
             if path.suffix in _SOURCE_SUFFIXES]
    if not any(path.name == "CMakeLists.txt" for path in files):
        raise ExtensionBuildError(f"hwopt's OpenVINO extension sources are missing ({SOURCE_DIR}/CMakeLists.txt); "
                                  "reinstall hwopt")
    return files


def extension_library() -> Path:
    """The built extension for the installed OpenVINO, building it first if this version and these sources
    have none yet (some seconds, once). Raises ExtensionBuildError, naming what is missing, when it cannot."""
    return _library_for(_openvino_version(), _sources_hash())


def add_to(owner: Any) -> None:
    """Register the extension with an `openvino.Core` (once per Core) or an ONNX `FrontEnd` (each call: a
    frontend is made per conversion)."""
    if owner in _registered:
        return
    library = str(extension_library())
    try:
        owner.add_extension(library)
    except Exception as error:  # noqa: BLE001 - OpenVINO's RuntimeError: an ABI or symbol mismatch
        raise ExtensionBuildError(f"OpenVINO cannot load hwopt's extension {library}: "
                                  f"{' '.join(str(error).split())[:300]}") from None
    with contextlib.suppress(TypeError):  # an owner that takes no weak reference is registered each time
        _registered.add(owner)


@functools.cache
def _library_for(version: str, digest: str) -> Path:
    # Cached per process: once found or built, a library does not go away while hwopt runs.
    root = cache_dir()
    folder = root / f"openvino-{version}-{digest}"
    library = folder / library_name()
    if library.is_file():
        return library
    try:
        root.mkdir(parents=True, exist_ok=True)
        with _file_lock(root / f"{folder.name}.lock"):
            if not library.is_file():  # another process may have built it while this one waited
                shutil.rmtree(folder, ignore_errors=True)  # a folder without its library is no cache entry
                _build(folder)
    except OSError as error:  # an unwritable cache (read-only $HOME in a container): say where, keep going dense
        raise ExtensionBuildError(f"cannot build hwopt's OpenVINO extension in {root}: {error.strerror or error}; "
                                  "set $HWOPT_KERNELS_CACHE to a writable folder") from None
    return library


def missing_build_tools() -> str | None:
    """What this machine lacks to build the extension (CMake, a C++ compiler), as a message; None if nothing."""
    if shutil.which("cmake") is None:
        return ("building hwopt's OpenVINO extension needs CMake >= 3.18 on PATH (e.g. `apt-get install cmake` "
                "or `pip install cmake`)")
    if _cxx_compiler() is None:
        return ("building hwopt's OpenVINO extension needs a C++17 compiler (g++ or clang++, or one named by $CXX); "
                "install one, e.g. `apt-get install g++`")
    return None


def _build(folder: Path) -> None:
    missing = missing_build_tools()
    if missing:
        raise ExtensionBuildError(missing)
    cmake = shutil.which("cmake")
    openvino_cmake = _openvino_cmake_dir()
    with tempfile.TemporaryDirectory(prefix=f".{folder.name}-", dir=folder.parent) as scratch:
        build, staged = Path(scratch) / "build", Path(scratch) / folder.name
        staged.mkdir()
        log = staged / LOG_FILE
        configure = [cmake, "-S", str(SOURCE_DIR), "-B", str(build), "-DCMAKE_BUILD_TYPE=Release",
                     f"-DOpenVINO_DIR={openvino_cmake}", f"-DHWOPT_KERNELS_CORE_DIR={CORE_DIR}",
                     f"-DCMAKE_LIBRARY_OUTPUT_DIRECTORY={staged}",
                     f"-DCMAKE_RUNTIME_OUTPUT_DIRECTORY={staged}"]
        compile_ = [cmake, "--build", str(build), "--config", "Release", "--parallel", str(os.cpu_count() or 1)]
        with log.open("w", encoding="utf-8") as out:
            for step in (configure, compile_):
                out.write(f"$ {' '.join(step)}\n")
                out.flush()
                try:
                    done = subprocess.run(step, stdout=out, stderr=subprocess.STDOUT, timeout=BUILD_TIMEOUT_SECONDS,
                                          check=False)
                except subprocess.TimeoutExpired:
                    done = None
                if done is None or done.returncode != 0:
                    out.close()
                    raise ExtensionBuildError(_failure(log, folder, "configuring" if step is configure else
                                                       "compiling"))
        if not (staged / library_name()).is_file():
            raise ExtensionBuildError(_failure(log, folder, "collecting"))
        os.replace(staged, folder)  # one rename: readers see the whole folder or none


def _failure(log: Path, folder: Path, phase: str) -> str:
    """One line saying what failed, with the compiler's first error, and where the whole log was kept."""
    kept = folder.parent / f"{folder.name}.failed.log"
    shutil.copyfile(log, kept)
    lines = log.read_text(encoding="utf-8", errors="replace").splitlines()
    first_error = next((line.strip() for line in lines if "error:" in line or "CMake Error" in line),
                       lines[-1].strip() if lines else "no output")
    return f"{phase} hwopt's OpenVINO extension failed: {first_error[:300]} (full log: {kept})"


def _openvino_cmake_dir() -> Path:
    path = Path(_openvino().__file__).resolve().parent / "cmake"
    if not (path / "OpenVINOConfig.cmake").is_file():
        raise ExtensionBuildError(f"the installed openvino has no CMake package ({path}/OpenVINOConfig.cmake), "
                                  "which building hwopt's extension needs; install OpenVINO from its PyPI wheel "
                                  "(`pip install 'hwopt[openvino]'`) or set OpenVINO_DIR's package up")
    return path


def _openvino_version() -> str:
    # "2026.4.1-22982-e213a147257-releases/2026/4": the build number, not only the release, keys the library.
    full = _openvino().__version__
    return "-".join(full.split("-")[:2]).replace("/", "_")


def _openvino() -> Any:
    try:
        return importlib.import_module("openvino")
    except ImportError as error:
        raise RuntimeNotAvailableError(f"hwopt's OpenVINO extension needs OpenVINO ({error}); install the extra: "
                                       "pip install 'hwopt[openvino]'") from None


def _sources_hash() -> str:
    digest = hashlib.sha256()
    for path in source_files():
        digest.update(f"{path.parent.name}/{path.name}\0".encode())
        digest.update(path.read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()[:16]


def _cxx_compiler() -> str | None:
    named = os.environ.get("CXX")
    if named:
        return shutil.which(named.split()[0])
    return next(filter(None, (shutil.which(name) for name in ("c++", "g++", "clang++", "cl"))), None)


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """An exclusive lock held until the block ends, released by the OS if the process dies holding it."""
    try:
        import fcntl
    except ImportError:  # Windows: no lock; two processes may then both build, and the last rename wins
        yield
        return
    with path.open("a+b") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
