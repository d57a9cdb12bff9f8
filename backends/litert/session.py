"""LiteRT sessions: a `.tflite` in LiteRT's interpreter, with XNNPACK (its default CPU delegate), run by name.

`run` takes and returns the artifact's own tensors, as its manifest describes them: NHWC images when the
artifact was written with `--io-layout nhwc`, int8/uint8 tensors with `--io-dtype int8|uint8`. That is what a
deployment feeds the file, so a benchmark of the artifact times only the artifact.

Verification compares against the float ONNX original, which takes and returns the ONNX model's tensors.
`feeds_from_onnx` and `outputs_to_onnx` translate between the two, exactly as a deployment would: a rank-4
tensor is transposed between NCHW and NHWC, a float tensor is quantized with the input tensor's own scale and
zero point (round to nearest, saturate), an int8/uint8 output is dequantized with its own. optimize converts
the verification inputs once before timing, so neither model is charged for the conversion.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from optimizer.backends.base import import_runtime

from optimizer.errors import ModelRunError

EXTRA = "tflite"
TO_NHWC = (0, 2, 3, 1)
TO_NCHW = (0, 3, 1, 2)
_QUANTIZED = (np.int8, np.uint8)


def interpreter_module() -> Any:
    """`ai_edge_litert.interpreter`, or a RuntimeNotAvailableError naming the extra."""
    return import_runtime("ai_edge_litert.interpreter", EXTRA)


def default_threads() -> int:
    """LiteRT's Python interpreter runs one thread unless told; hwopt gives it every core this process may use,
    as ONNX Runtime takes by default."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


class LiteRTSession:
    """One `.tflite` in an interpreter with its tensors allocated once; `run` returns outputs by ONNX name."""

    def __init__(
        self,
        model: str | os.PathLike | bytes,
        *,
        threads: int | None = None,
        io_layout: str = "onnx",
        output_names: Sequence[str] = (),
        label: str = "model",
    ) -> None:
        """`model`: a .tflite path or its bytes; `io_layout`: the layout rank-4 inputs and outputs were written
        in ("onnx" or "nhwc"); `output_names`: the ONNX output names, in the ONNX graph's order."""
        litert = interpreter_module()
        self.label = label
        self.io_layout = io_layout
        self.threads = int(threads or default_threads())
        source = {"model_content": model} if isinstance(model, bytes) else {"model_path": os.fspath(model)}
        try:
            # The default op resolver applies XNNPACK to every operator it supports. Public: the backend reads
            # the operators and the delegate's partitions from it.
            self.interpreter = litert.Interpreter(**source, num_threads=self.threads)
            self.interpreter.allocate_tensors()
        except Exception as error:  # noqa: BLE001 - LiteRT raises ValueError and RuntimeError
            raise ModelRunError(f"LiteRT cannot load the {label}: {_brief(error)}", which=label,
                                phase="load") from None
        self.input_details = {detail["name"]: detail for detail in self.interpreter.get_input_details()}
        outputs = self.interpreter.get_output_details()
        self.output_names = _onnx_names([detail["name"] for detail in outputs], output_names)
        self.output_details = dict(zip(self.output_names, outputs))
        self.input_names = list(self.input_details)
        self._set = [(name, detail["index"]) for name, detail in self.input_details.items()]
        self._get = [(name, detail["index"]) for name, detail in self.output_details.items()]

    def run(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The artifact's outputs for `feeds`, both in the artifact's own layout and dtype (see the module)."""
        missing = [name for name in self.input_details if name not in feeds]
        if missing:
            raise ModelRunError(f"LiteRT cannot run the {self.label}: no value for input(s) {', '.join(missing)}",
                                which=self.label, phase="run")
        try:
            return self._invoke(feeds)
        except Exception as error:  # noqa: BLE001 - LiteRT raises ValueError (dtype, shape) and RuntimeError
            raise ModelRunError(f"LiteRT cannot run the {self.label}: {_brief(error)}", which=self.label,
                                phase="run") from None

    def run_raw(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """`run` without the checks and error translation, for timing loops: inputs copied in, invoke, outputs
        copied out (what ONNX Runtime's run does too)."""
        return self._invoke(feeds)

    def _invoke(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        interpreter = self.interpreter
        for name, index in self._set:
            interpreter.set_tensor(index, feeds[name])
        interpreter.invoke()
        return {name: interpreter.get_tensor(index) for name, index in self._get}

    def feeds_from_onnx(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The ONNX model's inputs as this artifact takes them: NHWC, quantized. Names the artifact does not
        take (inputs frozen into constants) pass through unchanged."""
        converted = {}
        for name, array in feeds.items():
            detail = self.input_details.get(name)
            if detail is not None:
                array = np.asarray(array)
                if self.io_layout == "nhwc" and array.ndim == 4:
                    array = array.transpose(TO_NHWC)
                array = np.ascontiguousarray(quantize(array, detail))
            converted[name] = array
        return converted

    def outputs_to_onnx(self, outputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """This artifact's outputs as the ONNX model returns them: dequantized, NCHW."""
        converted = {}
        for name, array in outputs.items():
            detail = self.output_details.get(name)
            if detail is not None:
                array = dequantize(array, detail)
                if self.io_layout == "nhwc" and array.ndim == 4:
                    array = np.ascontiguousarray(array.transpose(TO_NCHW))
            converted[name] = array
        return converted


def quantize(array: np.ndarray, detail: Mapping[str, Any]) -> np.ndarray:
    """A float array as the int8/uint8 tensor `detail` (an interpreter tensor detail) takes it; anything else
    is returned as it is."""
    dtype = np.dtype(detail["dtype"])
    scale, zero_point = detail["quantization"]
    if dtype.type not in _QUANTIZED or not scale or not np.issubdtype(array.dtype, np.floating):
        return array
    limits = np.iinfo(dtype)
    values = np.round(array.astype(np.float32) / np.float32(scale)) + zero_point
    return np.clip(values, limits.min, limits.max).astype(dtype)


def dequantize(array: np.ndarray, detail: Mapping[str, Any]) -> np.ndarray:
    scale, zero_point = detail["quantization"]
    if np.dtype(detail["dtype"]).type not in _QUANTIZED or not scale:
        return array
    return (array.astype(np.float32) - np.float32(zero_point)) * np.float32(scale)


def _onnx_names(tensor_names: list[str], onnx_names: Sequence[str]) -> list[str]:
    """The ONNX name of each interpreter output. The writer names output tensors after their ONNX values; where
    a precision pass renamed one, the ONNX graph's order (which the writer keeps) decides."""
    if not onnx_names or set(tensor_names) <= set(onnx_names):
        return list(tensor_names)
    if len(onnx_names) == len(tensor_names):
        return list(onnx_names)
    return list(tensor_names)


def _brief(error: BaseException) -> str:
    return " ".join(str(error).split())[:400]
