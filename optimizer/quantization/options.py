"""What a user can ask of quantization, validated up front so a bad option fails before any work."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from optimizer.errors import UsageError

PRECISIONS = ("fp32", "int8", "int8-dynamic", "fp16", "bf16", "int4")
RANGE_METHODS = ("minmax", "percentile", "entropy", "mse")
# The lowest output cosine that passes verification when the user sets none: each precision's own noise floor
# on the zoo models, with margin (fp32 rewrites must be exact; bf16 keeps 8 mantissa bits).
DEFAULT_MIN_COSINE = {
    "fp32": 0.9999, "fp16": 0.999, "bf16": 0.99, "int8": 0.99, "int8-dynamic": 0.99,
    # 4-bit weights of a small model lose more: MiniLM (384 wide) keeps 0.96-0.97 at block 32.
    "int4": 0.95,
}
DEFAULT_CALIBRATION_SAMPLES = 128
DEFAULT_SMOOTH_QUANT_ALPHA = 0.5
"""SmoothQuant's own default for BERT-sized models."""
MAX_BUDGET_EVAL_SAMPLES = 256
"""The accuracy budget scores candidates on at most this many samples."""

Metric = Callable[[list[dict[str, Any]], Any], float]


@dataclass(frozen=True)
class QuantizationOptions:
    precision: str | None = None
    """None: the target's plan decides (e.g. INT8 on the CPU when calibration data is given)."""
    calibration: Any = None
    """An .npz path, a folder of images, an iterable of input dicts, one dict, or None (generated, warned)."""
    preprocessing: Any = None
    """An ImagePreprocessing (or its text form) for a folder of images."""
    calibration_method: str = "percentile"
    """percentile (99.99) by default: on yolov8n it keeps the output cosine at 0.99982 where minmax gives 0.99922
    and turns a borderline detection into a false one."""
    percentile: float = 99.99
    calibration_samples: int = DEFAULT_CALIBRATION_SAMPLES
    exclude: tuple[str, ...] = ()
    """Node names or op types (globs) that stay in float."""
    int4_block_size: int = 32
    keep_io_types: bool = True
    max_accuracy_drop: float | None = None
    """With a metric: the largest drop in the metric allowed; without: the largest drop in output cosine."""
    metric: Metric | None = None
    eval_data: Any = None
    """Inputs for the accuracy budget: an iterable of input dicts (default: the calibration data)."""
    labels: Any = None
    bias_correction: bool = False
    """Static INT8: shift each int8 layer's bias by the mean output error of its int8 weights (bias_correction.py)."""
    smooth_quant: float | None = None
    """INT8 (static or dynamic): SmoothQuant with this alpha, folded into LayerNormalizations (smooth_quant.py)."""

    def __post_init__(self) -> None:
        if self.precision is not None and self.precision not in PRECISIONS:
            raise UsageError(f"unknown precision '{self.precision}'; choose one of {', '.join(PRECISIONS)}")
        if self.calibration_method not in RANGE_METHODS:
            raise UsageError(f"unknown calibration method '{self.calibration_method}'; "
                             f"choose one of {', '.join(RANGE_METHODS)}")
        if not 50.0 < self.percentile <= 100.0:
            raise UsageError(f"percentile must be in (50, 100], not {self.percentile}")
        if self.calibration_samples < 1:
            raise UsageError(f"calibration samples must be at least 1, not {self.calibration_samples}")
        if self.max_accuracy_drop is not None and self.max_accuracy_drop < 0:
            raise UsageError(f"max accuracy drop must be >= 0, not {self.max_accuracy_drop}")
        if self.metric is not None and not callable(self.metric):
            raise UsageError("metric must be a callable (outputs, labels) -> float")
        if self.smooth_quant is not None and not 0.0 < self.smooth_quant < 1.0:
            raise UsageError(f"SmoothQuant alpha must be in (0, 1), not {self.smooth_quant}")
        if self.bias_correction and self.precision not in (None, "int8"):
            raise UsageError(f"bias correction applies to static int8, not {self.precision}")
        if self.smooth_quant is not None and self.precision not in (None, "int8", "int8-dynamic"):
            raise UsageError(f"SmoothQuant applies to int8 and int8-dynamic, not {self.precision}")
        if _is_one_shot(self.calibration):
            # Calibration, SmoothQuant, bias correction and the accuracy budget each read the samples: a
            # generator would be empty after the first. The samples any of them reads are kept in memory (the
            # budget evaluates on up to 256 when no evaluation data is given), as the first reader would.
            kept = max(self.calibration_samples, MAX_BUDGET_EVAL_SAMPLES)
            object.__setattr__(self, "calibration", list(itertools.islice(self.calibration, kept)))
        if isinstance(self.exclude, str):
            object.__setattr__(self, "exclude", (self.exclude,))

    @property
    def quantized(self) -> bool:
        return self.precision not in (None, "fp32")

    @property
    def uses_hwopt_int8_options(self) -> bool:
        """Whether an option only hwopt's own INT8 passes implement is set (not a runtime's quantizer)."""
        return (bool(self.exclude) or self.max_accuracy_drop is not None or self.bias_correction
                or self.smooth_quant is not None)


def _is_one_shot(source: Any) -> bool:
    """An iterator that is its own iterable (a generator): it can be read once only."""
    try:
        return source is not None and not isinstance(source, (str, bytes, dict)) and iter(source) is source
    except TypeError:
        return False
