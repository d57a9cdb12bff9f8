"""Calibration for post-training quantization: where the samples come from (sources), what is kept of each
tensor while they stream through the model (statistics), and the runs that collect it (collect)."""

from optimizer.quantization.calibration.collect import capture_tensors, collect_statistics
from optimizer.quantization.calibration.sources import (
    CalibrationData,
    ImagePreprocessing,
    calibration_data,
)
from optimizer.quantization.calibration.statistics import (
    RANGE_METHODS,
    TensorStatistics,
    quantization_params,
)

__all__ = [
    "RANGE_METHODS",
    "CalibrationData",
    "ImagePreprocessing",
    "TensorStatistics",
    "calibration_data",
    "capture_tensors",
    "collect_statistics",
    "quantization_params",
]
