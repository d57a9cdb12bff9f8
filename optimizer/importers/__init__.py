"""Importers that bring models from other frameworks into the ONNX IR (ONNX files load through optimizer.ir)."""
