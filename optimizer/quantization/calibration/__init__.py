"""Calibration for post-training quantization: where the samples come from (sources), what is kept of each
tensor while they stream through the model (statistics), and the runs that collect it (collect)."""

from optimizer.quantization.calibration.collect import (
    ChannelStatistics,
    capture_tensors,
    collect_channel_statistics,
    collect_statistics,
)
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
    "ChannelStatistics",
    "ImagePreprocessing",
    "TensorStatistics",
    "calibration_data",
    "capture_tensors",
    "collect_channel_statistics",
    "collect_statistics",
    "quantization_params",
]
