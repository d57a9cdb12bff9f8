"""Quantization passes and the machinery around them (calibration, schemes, the accuracy budget)."""
