"""hwopt: hardware-aware model optimization.

    import optimizer
    result = optimizer.optimize("model.onnx", target="cpu", output_dir="out")
"""

import importlib.metadata

from optimizer.api import CheckResult, Result, check, load, optimize, targets
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

try:
    __version__ = importlib.metadata.version("hwopt")
except importlib.metadata.PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"

__all__ = [
    "CheckResult",
    "HwoptError",
    "InvalidModelError",
    "ModelLoadError",
    "ModelRunError",
    "PassError",
    "Result",
    "RuntimeNotAvailableError",
    "UsageError",
    "VerificationError",
    "check",
    "load",
    "optimize",
    "targets",
]
