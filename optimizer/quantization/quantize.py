"""Quantize a model in place to one precision, for one runtime, and say what happened to every layer.

This is the one entry point `optimizer.api` calls: it picks the pass for the precision (static or dynamic
INT8, FP16/BF16, INT4 weight-only), runs calibration where the pass needs ranges, and gathers the per-layer
precision table and the calibration facts for the report.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field, replace

import numpy as np
import onnx_ir as ir

from optimizer.ir import infer_shapes, input_specs
from optimizer.quantization.options import QuantizationOptions
from optimizer.quantization.schemes import scheme_for_runtime

logger = logging.getLogger("optimizer")
FLOAT32 = "float32"  # how every pass's per-layer table starts the entry of a layer it left in float


@dataclass
class QuantizationReport:
    precision: str
    scheme: str | None = None
    calibration: str | None = None
    calibration_samples: int = 0
    calibration_method: str | None = None
    warnings: list[str] = field(default_factory=list)
    layers: dict[str, str] = field(default_factory=dict)
    """Node name -> the precision it runs in, with the reason when it stayed float."""
    candidates: list[dict] = field(default_factory=list)
    """Accuracy-budget search: each candidate's float layers, score and latency."""
    budget: dict | None = None
    techniques: list[str] = field(default_factory=list)
    """What was done to the float model before quantizing it (SmoothQuant, bias correction), with figures."""
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def quantized_layers(self) -> int:
        return len(self.quantized_layer_names)

    @property
    def quantized_layer_names(self) -> list[str]:
        return [name for name, precision in self.layers.items() if not precision.startswith(FLOAT32)]

    @property
    def float_layers(self) -> dict[str, str]:
        """Layers left in float32, with the reason each one stayed."""
        return {name: precision for name, precision in self.layers.items() if precision.startswith(FLOAT32)}


def quantize_model(
    model: ir.Model,
    options: QuantizationOptions,
    *,
    runtime: str = "onnxruntime",
    threads: int | None = None,
    ranges: dict[str, tuple[float, float]] | None = None,
) -> QuantizationReport:
    """Quantize `model` in place as `options` ask; `ranges` reuses a previous calibration (budget search)."""
    start = time.perf_counter()
    report = QuantizationReport(precision=options.precision)
    precision = options.precision
    smooths = options.smooth_quant is not None and precision in ("int8", "int8-dynamic")
    if smooths or (precision == "int8" and (ranges is None or options.bias_correction)):
        # Built once: SmoothQuant, calibration and bias correction each read it.
        options = replace(options, calibration=_calibration_data(model, options, report))
    if smooths:
        smooth_for_int8(model, options, threads, report)
    if precision == "int8":
        _static_int8(model, options, runtime, threads, report, ranges)
    elif precision == "int8-dynamic":
        from optimizer.quantization.dynamic_int8 import DynamicInt8Config, QuantizeDynamicInt8

        quantize = QuantizeDynamicInt8(DynamicInt8Config(exclude=options.exclude))
        quantize(model)
        report.scheme = "onnxruntime DynamicQuantizeMatMul (uint8 activations x int8 per-column weights)"
        report.layers = quantize.precisions
    elif precision in ("fp16", "bf16"):
        from optimizer.quantization.float16 import ConvertToFloat16, Float16Config

        convert = ConvertToFloat16(Float16Config(dtype="float16" if precision == "fp16" else "bfloat16",
                                                 keep_io_types=options.keep_io_types,
                                                 exclude_nodes=options.exclude))
        convert(model)
        report.layers = dict(convert.precisions)
    elif precision == "int4":
        from optimizer.quantization.int4_weights import Int4Config, QuantizeWeightsInt4

        quantize = QuantizeWeightsInt4(Int4Config(block_size=options.int4_block_size,
                                                  exclude_nodes=options.exclude))
        quantize(model)
        report.scheme = f"onnxruntime MatMulNBits (4-bit blocks of {options.int4_block_size})"
        report.layers = dict(quantize.precisions)
    # The float weights that quantized copies replaced are still registered as initializers.
    from optimizer.passes import create_pass

    create_pass("remove-unused")(model)
    if report.quantized_layers == 0 and not any("no layer" in w for w in report.warnings):
        report.warnings.append(f"no layer could be quantized to {precision}; the model keeps its float layers"
                               + (" (see the layer table for why)" if report.layers else
                                  " (it has none of the ops this precision applies to)"))
    report.seconds = time.perf_counter() - start
    return report


def preprocessing(options: QuantizationOptions):
    """The image preprocessing of `options`, parsed when it came as text (--preprocess)."""
    from optimizer.quantization.calibration.sources import ImagePreprocessing

    if isinstance(options.preprocessing, str):
        return ImagePreprocessing.parse(options.preprocessing)
    return options.preprocessing


def _calibration_data(model: ir.Model, options: QuantizationOptions, report: QuantizationReport):
    from optimizer.quantization.calibration import CalibrationData, calibration_data

    if isinstance(options.calibration, CalibrationData):  # already read from its source for this run
        return options.calibration
    data = calibration_data(options.calibration, input_specs(model), preprocessing=preprocessing(options),
                            limit=options.calibration_samples)
    if data.warning and data.warning not in report.warnings:
        report.warnings.append(data.warning)
    return data


def smooth_for_int8(model: ir.Model, options: QuantizationOptions, threads: int | None,
                    report: QuantizationReport) -> None:
    """SmoothQuant on the float model, in place, with magnitudes from the calibration data."""
    from optimizer.quantization.smooth_quant import DEFAULT_SAMPLES, smooth_activations

    shrink = smooth_activations(model, _calibration_data(model, options, report), alpha=options.smooth_quant,
                                threads=threads)
    if not shrink:
        report.warnings.append("SmoothQuant: no LayerNormalization read by a MatMul/Gemm with a constant "
                               "weight; nothing smoothed")
        return
    report.techniques.append(
        f"SmoothQuant (alpha {options.smooth_quant}, {DEFAULT_SAMPLES} samples at most) on {len(shrink)} "
        f"LayerNormalization output(s): outlier/median channel ratio {min(shrink.values()):.1f}x-"
        f"{max(shrink.values()):.1f}x smaller")


def calibrate_static_int8(
    model: ir.Model, options: QuantizationOptions, runtime: str, threads: int | None, report: QuantizationReport
) -> dict[str, tuple[float, float]]:
    """Activation ranges for every tensor the static INT8 plan quantizes, from the calibration data."""
    from optimizer.quantization.calibration import collect_statistics
    from optimizer.quantization.static_int8 import plan_static_int8

    scheme = scheme_for_runtime(runtime)
    infer_shapes(model)
    plan = plan_static_int8(model, scheme, options.exclude)
    data = _calibration_data(model, options, report)
    statistics = collect_statistics(model, plan.activations, data, threads=threads)
    report.calibration = data.description
    report.calibration_samples = len(data)
    report.calibration_method = options.calibration_method
    return {
        name: stats.range(options.calibration_method, symmetric=scheme.symmetric_activations,
                          percentile=options.percentile)
        for name, stats in statistics.items()
    }


def _static_int8(model, options, runtime, threads, report, ranges) -> None:
    from optimizer.quantization.static_int8 import QuantizeStaticInt8, StaticInt8Config

    scheme = scheme_for_runtime(runtime)
    if ranges is None:
        ranges = calibrate_static_int8(model, options, runtime, threads, report)
    else:
        infer_shapes(model)
    config = StaticInt8Config(ranges=ranges, scheme=scheme, exclude=options.exclude)
    corrected: dict[str, float] = {}
    if options.bias_correction:
        from optimizer.quantization.bias_correction import DEFAULT_SAMPLES, correct_biases

        corrected = correct_biases(model, config, _calibration_data(model, options, report), threads=threads)
        report.techniques.append(
            f"bias correction ({DEFAULT_SAMPLES} samples at most) on {len(corrected)} layer(s)"
            + (f": largest shift {max(corrected.values()):.2%} of a channel's peak" if corrected else ""))
    quantize = QuantizeStaticInt8(config)
    quantize(model)
    report.scheme = (f"{scheme.name}: {np.dtype(scheme.activation_dtype).name} "
                     f"{'symmetric' if scheme.symmetric_activations else 'asymmetric'} activations x int8 "
                     f"symmetric per-channel weights, QDQ on {scheme.placement}")
    report.layers = {name: precision.replace("weights)", "weights, bias corrected)") if name in corrected
                     else precision for name, precision in quantize.precisions.items()}
