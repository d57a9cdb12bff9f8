"""hwopt: hardware-aware model optimization.

    import optimizer
    result = optimizer.optimize("model.onnx", target="cpu", output_dir="out")
"""

from optimizer.api import Result, load, optimize, targets
from optimizer.errors import (
    HwoptError,
    InvalidModelError,
    ModelLoadError,
    ModelRunError,
    PassError,
    RuntimeNotAvailableError,
    UsageError,
    VerificationError,
)

__version__ = "0.1.0"

__all__ = [
    "HwoptError",
    "InvalidModelError",
    "ModelLoadError",
    "ModelRunError",
    "PassError",
    "Result",
    "RuntimeNotAvailableError",
    "UsageError",
    "VerificationError",
    "load",
    "optimize",
    "targets",
]
