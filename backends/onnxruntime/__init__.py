"""ONNX Runtime on the CPU: sessions with controlled threads and optimization level, latency timing, and the
backend that compiles artifacts for it."""

from optimizer.backends.onnxruntime.backend import OnnxRuntimeBackend
from optimizer.backends.onnxruntime.latency import LatencyStats, compare_latency, measure_latency
from optimizer.backends.onnxruntime.session import OrtSession, create_session, runtime_version

__all__ = ["LatencyStats", "OnnxRuntimeBackend", "OrtSession", "compare_latency", "create_session",
           "measure_latency", "runtime_version"]
