"""LiteRT (TFLite) backend: `.tflite` written directly from the IR with the LiteRT schema, no TensorFlow."""
