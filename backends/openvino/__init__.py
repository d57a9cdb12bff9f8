"""OpenVINO (the `openvino` extra): OpenVINO IR artifacts for Intel CPUs, GPUs and NPUs, sessions with a stated
inference precision, and INT8 by NNCF as an alternative to hwopt's QDQ.

Nothing here imports OpenVINO until it is used, so hwopt without the extra can still list this backend.
"""

from optimizer.backends.openvino.backend import MODEL_FILE, OpenVINOBackend, inference_precision_for
from optimizer.backends.openvino.nncf_int8 import quantize_with_nncf
from optimizer.backends.openvino.session import OpenVINOSession

__all__ = ["MODEL_FILE", "OpenVINOBackend", "OpenVINOSession", "inference_precision_for", "quantize_with_nncf"]
