"""LiteRT (TFLite) backend (the `tflite` extra): `.tflite` written directly from the IR with the LiteRT schema,
no TensorFlow, run in LiteRT's interpreter with XNNPACK.

Nothing here imports ai-edge-litert until it is used, so hwopt without the extra can still list this backend.
"""

from optimizer.backends.litert.backend import MODEL_FILE, LiteRTBackend
from optimizer.backends.litert.session import LiteRTSession

__all__ = ["MODEL_FILE", "LiteRTBackend", "LiteRTSession"]
