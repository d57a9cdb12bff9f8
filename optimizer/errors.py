"""Exceptions hwopt raises, each mapped to the CLI's exit code.

Every error carries a one-line message that names what is wrong (the file, node, op or option), so the CLI can
print it as is. Usage errors (a bad option, an unknown target, a missing input file) exit with 2; failures of a
run on valid input (a corrupt model, a pass that broke, a missed fidelity threshold) exit with 1.
"""

from __future__ import annotations


class HwoptError(Exception):
    """Base class of every error hwopt raises on purpose."""

    exit_code = 1


class UsageError(HwoptError):
    """The user asked for something that cannot be done as asked (bad option, unknown target, missing file)."""

    exit_code = 2


class ModelLoadError(HwoptError):
    """The file exists but is not a loadable ONNX model (not ONNX, truncated, corrupt)."""


class InvalidModelError(HwoptError):
    """The model loaded but its graph is not valid ONNX (fails the checker, unknown op, broken edges)."""


class PassError(HwoptError):
    """A pass failed or produced a graph that is not valid."""


class VerificationError(HwoptError):
    """The optimized model does not match the original closely enough, or could not be run."""


class ModelRunError(VerificationError):
    """A runtime could not load or run a model: `which` one ("original model", ...), in which `phase`."""

    def __init__(self, message: str, *, which: str = "model", phase: str = "run") -> None:
        super().__init__(message)
        self.which = which
        self.phase = phase  # "load" or "run"


class RuntimeNotAvailableError(HwoptError):
    """An optional runtime (an extra) is not installed."""
