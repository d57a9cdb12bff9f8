"""OpenVINO sessions: a model compiled for one device with a stated inference precision, run by name.

The inference precision is always a decision, never an accident: OpenVINO's CPU plugin computes in bf16 by
default on CPUs with AVX512-BF16 or AMX, which silently moves an fp32 model's outputs. The session applies the
hint it is given (None: the plugin's default), reads back what the plugin actually chose and keeps it in
`inference_precision`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from optimizer.backends.openvino.runtime import brief, core, require_device

from optimizer.errors import ModelRunError

LATENCY = "LATENCY"


def compile_config(inference_precision: str | None, threads: int | None) -> dict[str, Any]:
    """The properties a model is compiled with: one request at a time (LATENCY), `threads` threads, and the
    inference precision hint when one is decided (f32, bf16, f16)."""
    config: dict[str, Any] = {"PERFORMANCE_HINT": LATENCY}
    if threads:
        config["INFERENCE_NUM_THREADS"] = int(threads)
    if inference_precision:
        config["INFERENCE_PRECISION_HINT"] = inference_precision
    return config


def compiled_precision(compiled: Any) -> str:
    """The inference precision the plugin chose (f32, bf16, f16), read back from a compiled model."""
    value = compiled.get_property("INFERENCE_PRECISION_HINT")
    return value.get_type_name() if hasattr(value, "get_type_name") else str(value)


class OpenVINOSession:
    """One compiled model on one device; `run` returns outputs by their ONNX names."""

    def __init__(
        self,
        model: str | os.PathLike | Any,
        *,
        device: str = "CPU",
        inference_precision: str | None = None,
        threads: int | None = None,
        output_names: Sequence[str] = (),
        label: str = "model",
    ) -> None:
        """`model`: an OpenVINO IR (.xml) or ONNX path, or an ov.Model; `output_names`: the ONNX output names
        to report outputs by, where OpenVINO knows a tensor by several."""
        self.label = label
        self.device = device
        require_device(device)
        source = os.fspath(model) if isinstance(model, (str, os.PathLike)) else model
        ov_core = core(source)  # with hwopt's extension if the model holds hwopt's custom ops
        try:
            self._compiled = ov_core.compile_model(source, device, compile_config(inference_precision, threads))
        except Exception as error:  # noqa: BLE001 - OpenVINO's own RuntimeError subclasses
            raise ModelRunError(f"OpenVINO cannot compile the {label} for {device}: {brief(error)}",
                                which=label, phase="load") from None
        self.inference_precision = compiled_precision(self._compiled)
        wanted = set(output_names)
        self.output_names = [
            next((name for name in output.get_names() if name in wanted), output.get_any_name())
            for output in self._compiled.outputs
        ]
        self.input_names = [port.get_any_name() for port in self._compiled.inputs]
        # One request reused by every run: creating one per call costs more than a small model's inference.
        self._request = self._compiled.create_infer_request()

    def run(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        missing = [port.get_any_name() for port in self._compiled.inputs if not port.get_names() & feeds.keys()]
        if missing:
            # The request would silently reuse the previous run's tensor for an input not given.
            raise ModelRunError(f"OpenVINO cannot run the {self.label}: no value for input(s) "
                                f"{', '.join(missing)}", which=self.label, phase="run")
        try:
            # Shared, not copied (an array OpenVINO cannot share, of another dtype or read-only, gets a tensor of
            # its own): a copy goes into the previous run's tensor, resized without checking the model's shape,
            # so that a wrong shape gives an empty output instead of an error.
            results = self._request.infer(dict(feeds), share_inputs=True)
        except Exception as error:  # noqa: BLE001 - OpenVINO's own RuntimeError subclasses, TypeError
            raise ModelRunError(f"OpenVINO cannot run the {self.label}: {brief(error)}", which=self.label,
                                phase="run") from None
        # Outputs come back as copies (share_outputs=False): the next run does not overwrite them.
        return dict(zip(self.output_names, results.to_tuple()))

    def run_raw(self, feeds: Mapping[str, np.ndarray]) -> Any:
        """The request's infer with the inputs shared, as `run` does, and no checks or error translation:
        for timing loops."""
        return self._request.infer(feeds, share_inputs=True)
