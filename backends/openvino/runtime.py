"""OpenVINO itself, imported on first use: the Core, device names, and the hwopt IR converted to an ov.Model.

The IR reaches OpenVINO's ONNX frontend as serialized bytes in memory; a model whose weights live in external
files (or would, once saved) goes through a temporary ONNX file with external data instead.

hwopt's custom ops (the com.hwopt domain, optimizer.kernels.custom_ops) run in OpenVINO through hwopt's
extension library (optimizer.kernels.openvino_extension, built on first use). Every Core or ONNX frontend this
backend reads a model with comes from `core(model)` or `onnx_frontend(model)`, which add the extension when, and
only when, that model holds such an op: models without one never build or load it.
"""

from __future__ import annotations

import contextlib
import functools
import io
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import onnx
import onnx_ir as ir
from optimizer.backends.base import import_runtime
from optimizer.kernels.custom_ops import DOMAIN as HWOPT_DOMAIN

from optimizer import ir as hir
from optimizer.errors import ModelRunError, RuntimeNotAvailableError, UsageError

EXTRA = "openvino"
DEVICE_KINDS = ("CPU", "GPU", "NPU")
# hwopt's device types (TargetProfile.device_type) in OpenVINO's plugin names.
DEVICE_OF_TYPE = {"cpu": "CPU", "gpu": "GPU", "npu": "NPU"}
_DEVICE_NAME = re.compile(r"^(CPU|GPU|NPU)(?:\.(\d+))?$")
# How OpenVINO IR spells an op of hwopt's extension: <layer ... type="BlockSparseMatMul" version="hwopt">.
HWOPT_IR_VERSION = "hwopt"
_HWOPT_IR_OP = re.compile(rf'<layer\b[^>]*\bversion="{HWOPT_IR_VERSION}"')
# OpenVINO prefixes messages with one "Exception from src/...cpp:N:" line per layer it passed through, and
# "Check '...' failed at src/...cpp:N:" before the text that says what is wrong.
_SOURCE_LOCATION = re.compile(r"(Exception from \S+:\d+:|Check '.*?' failed at \S+:\d+:|"
                              r"FrontEnd API failed with \w+:)")


_used_in_pid: int | None = None
"""The process that first used OpenVINO: its thread pools do not survive a fork."""


def openvino(module: str = "openvino") -> ModuleType:
    """OpenVINO (or one of its modules), remembering which process started using it."""
    global _used_in_pid
    if not usable_in_this_process():
        raise RuntimeNotAvailableError(
            "OpenVINO was started in a parent process and cannot run in this forked child (its thread pool does "
            "not survive fork); start workers with the 'spawn' method, or use --runtime onnxruntime")
    loaded = import_runtime(module, EXTRA)
    _used_in_pid = _used_in_pid or os.getpid()
    return loaded


def core(model: Any = None) -> Any:
    """One ov.Core per process: it loads the device plugins once. In a child forked after the parent used
    OpenVINO, converting, compiling or running can hang (its TBB worker threads are not copied by fork;
    observed here as a silent deadlock), so `openvino()` refuses with an error that says what to do instead.

    `model`: what the Core is about to read or compile (see `uses_hwopt_ops`); one with a hwopt custom op gets
    hwopt's extension registered first (once: the Core keeps it)."""
    openvino()  # the fork check
    return _with_hwopt_ops(_create_core(), model)


def onnx_frontend(model: Any = None) -> Any:
    """OpenVINO's ONNX frontend (a new one: it is cheap), with hwopt's extension when `model` needs it."""
    return _with_hwopt_ops(openvino("openvino.frontend").FrontEndManager().load_by_framework("onnx"), model)


def uses_hwopt_ops(model: Any) -> bool:
    """Whether `model` holds an op of hwopt's custom domain: an ir.Model, an ov.Model, or a file (ONNX, or
    OpenVINO IR .xml where the op is written with version "hwopt")."""
    if model is None:
        return False
    if isinstance(model, ir.Model):
        return any(node.domain == HWOPT_DOMAIN for node in hir.all_nodes(model))
    if isinstance(model, (str, os.PathLike)):
        path = Path(model)
        if not path.is_file():
            return False  # compiling it reports what is wrong
        if path.suffix == ".xml":
            return _HWOPT_IR_OP.search(path.read_text(encoding="utf-8", errors="replace")) is not None
        if path.suffix == ".onnx":
            try:
                proto = onnx.load(path, load_external_data=False)
            except Exception:  # noqa: BLE001 - protobuf's DecodeError: not ONNX, which compiling reports
                return False
            return any(opset.domain == HWOPT_DOMAIN for opset in proto.opset_import)
        return False
    get_ops = getattr(model, "get_ordered_ops", None)  # an ov.Model: its ops exist only with the extension
    return get_ops is not None and any(op.get_type_info().version_id == HWOPT_IR_VERSION for op in get_ops())


def _with_hwopt_ops(owner: Any, model: Any) -> Any:
    """`owner` (a Core or an ONNX frontend), with hwopt's extension added if `model` holds a hwopt op: the one
    place this backend loads it."""
    if uses_hwopt_ops(model):
        from optimizer.kernels import openvino_extension

        try:
            openvino_extension.add_to(owner)
        except openvino_extension.ExtensionBuildError as error:
            raise RuntimeNotAvailableError(f"the model holds hwopt custom ops ({HWOPT_DOMAIN}), which OpenVINO "
                                           f"runs through hwopt's extension: {error}") from None
    return owner


@functools.cache
def _create_core() -> Any:
    return openvino().Core()


def usable_in_this_process() -> bool:
    """False in a child forked from a process that already used OpenVINO."""
    return _used_in_pid is None or _used_in_pid == os.getpid()


def runtime_version() -> str:
    return openvino().__version__.split("-")[0]


def normalize_device(device: str) -> str:
    """CPU, GPU, NPU or an indexed GPU.N / NPU.N, upper-cased; anything else is a usage error."""
    name = device.strip().upper()
    if not _DEVICE_NAME.match(name):
        raise UsageError(f"unknown OpenVINO device '{device}'; use one of {', '.join(DEVICE_KINDS)} "
                         "(or an indexed one such as GPU.1)")
    return name


def device_present(device: str) -> bool:
    """Whether this machine has `device`: OpenVINO lists one GPU as "GPU", several as "GPU.0", "GPU.1"..."""
    available = set(core().available_devices)
    kind, _, index = device.partition(".")
    return device in available or (kind in available and index in ("", "0")) or (
        not index and any(name.startswith(f"{kind}.") for name in available))


def require_device(device: str) -> None:
    if not device_present(device):
        raise RuntimeNotAvailableError(
            f"OpenVINO device {device} is not present on this machine (OpenVINO sees: "
            f"{', '.join(core().available_devices) or 'none'}); run this artifact where {device} is")


@contextlib.contextmanager
def onnx_source(model: ir.Model) -> Iterator[Any]:
    """What OpenVINO's ONNX frontend reads `model` from, valid inside the `with` block: the serialized bytes, or
    for a model with external data a temporary ONNX file (OpenVINO memory-maps its weights, so the file must
    outlive every use of what was converted from it)."""
    # Protobuf cannot serialize 2 GiB: a model with that much weight in memory goes through a file too.
    if not hir.has_external_data(model) and hir.initializer_bytes(model) < hir.EXTERNAL_DATA_THRESHOLD_BYTES:
        yield io.BytesIO(hir.model_to_bytes(model))
        return
    with tempfile.TemporaryDirectory(prefix="hwopt-openvino-") as scratch:
        path = Path(scratch) / "model.onnx"
        hir.save_model(model, path, external_data=True)
        yield str(path)


@contextlib.contextmanager
def converted(model: ir.Model) -> Iterator[Any]:
    """The IR as an ov.Model (OpenVINO's ONNX frontend), valid inside the `with` block."""
    with onnx_source(model) as source:
        yield convert(source, model)


def convert(source: str | io.BytesIO, model: ir.Model | None = None) -> Any:
    """An ONNX file (its weights memory-mapped: the file must outlive the ov.Model) or stream as an ov.Model.
    `model`: the hwopt IR `source` holds, if at hand, which says whether hwopt's extension is needed (without
    it, a file source is looked at).

    This is what `openvino.convert_model` does for ONNX (the frontend's conversion, then the two offline
    transformations it applies) without its telemetry: convert_model reports every call to Google Analytics
    from a forked process unless the user opted out, and hwopt does not phone home. The fork also restarts
    OpenBLAS's threads, and numpy's OpenBLAS 0.3.31 can then deadlock in the next threaded np.dot.
    """
    frontend = onnx_frontend(model if model is not None else source)
    try:
        ov_model = frontend.convert(frontend.load(source))
    except Exception as error:  # noqa: BLE001 - OpenVINO's OpConversionFailure, GeneralFailure...
        raise ModelRunError(f"OpenVINO cannot convert the model: {brief(error)}", which="model",
                            phase="load") from None
    try:
        from openvino._offline_transformations import (
            apply_moc_transformations,
            compress_quantize_weights_transformation,
        )
    except ImportError:  # a private module: without it, the plugin applies the same when it compiles
        return ov_model
    apply_moc_transformations(ov_model, cf=False, smart_reshape=True)
    compress_quantize_weights_transformation(ov_model)  # FakeQuantize on weights -> int8 weights
    return ov_model


def brief(error: BaseException, limit: int = 400) -> str:
    """OpenVINO's message on one line, without the source locations it stacks in front of the reason."""
    text = _SOURCE_LOCATION.sub(" ", str(error))
    return " ".join(text.split())[:limit]
