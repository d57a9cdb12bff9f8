"""ONNX Runtime sessions, with runtime errors turned into hwopt errors that name the model.

ORT's own logging is kept at FATAL: its errors reach us as exceptions, which we report on one line; its
warnings (e.g. about unused initializers) would otherwise clutter every run.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

import numpy as np
import onnxruntime as ort

from optimizer.errors import ModelRunError

GraphOptimization = Literal["disabled", "basic", "extended", "all"]
_LEVELS = {
    "disabled": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
    "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
    "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
    "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
}
_FATAL = 4
_ORT_PREFIX = re.compile(r"^\[ONNXRuntimeError\] : \d+ : \w+ : ")


def runtime_version() -> str:
    return ort.__version__


class OrtSession:
    """A CPU inference session for one model; `run` returns outputs by name."""

    def __init__(
        self,
        model: str | os.PathLike | bytes,
        *,
        threads: int | None = None,
        optimization: GraphOptimization = "all",
        label: str = "model",
    ) -> None:
        self.label = label
        options = session_options(threads, optimization)
        source = model if isinstance(model, bytes) else os.fspath(Path(model))
        try:
            self._session = ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])
        except Exception as error:
            raise ModelRunError(
                f"ONNX Runtime cannot load the {label}: {_brief(error)}", which=label, phase="load"
            ) from None
        self.output_names = [o.name for o in self._session.get_outputs()]

    def run(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        try:
            outputs = self._session.run(None, dict(feeds))
        except Exception as error:
            raise ModelRunError(
                f"ONNX Runtime cannot run the {self.label}: {_brief(error)}", which=self.label, phase="run"
            ) from None
        return dict(zip(self.output_names, outputs))

    def run_raw(self, feeds: Mapping[str, np.ndarray]) -> list:
        """The session's run without the error translation, for timing loops."""
        return self._session.run(None, feeds)


def session_options(threads: int | None, optimization: GraphOptimization = "all") -> ort.SessionOptions:
    """The options every hwopt session is built with: the optimization level, ORT's logging at FATAL, and with
    `threads`, that many intra-op threads and one inter-op thread."""
    options = ort.SessionOptions()
    options.graph_optimization_level = _LEVELS[optimization]
    options.log_severity_level = _FATAL
    if threads:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    return options


def create_session(model: str | os.PathLike | bytes, **options) -> OrtSession:
    return OrtSession(model, **options)


def _brief(error: BaseException) -> str:
    text = " ".join(str(error).split())
    # ORT prefixes messages with "[ONNXRuntimeError] : 1 : FAIL : "; keep what follows.
    return _ORT_PREFIX.sub("", text)[:400]


# Errors reach hwopt as exceptions and are reported on one line; ORT's process-wide logger would print them a
# second time (and its warnings) on stderr.
ort.set_default_logger_severity(_FATAL)
