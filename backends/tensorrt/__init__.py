"""TensorRT (10.x and 11.x) on NVIDIA GPUs and Jetson: a deploy bundle whose engine is built on the device.

`ops` holds what TensorRT's ONNX parser reads and what a Jetson's DLA runs, and the pre-flight that checks a
model against both; `backend` writes the bundle (model.onnx, build_engine.py, trtexec.sh, README.md);
`rtx_check` parses and builds a bundle's ONNX with TensorRT-RTX on a machine without a GPU, to prove it builds.
"""

from optimizer.backends.tensorrt.backend import TensorRTBackend

__all__ = ["TensorRTBackend"]
