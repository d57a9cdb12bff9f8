"""Runtimes that run hwopt's artifacts, one subpackage each (installed as `optimizer.backends`).

The foundation has ONNX Runtime on the CPU, which also runs every verification; OpenVINO, TensorRT and LiteRT
join here with the same small surface: make a session from a model, run feeds, time it.
"""
