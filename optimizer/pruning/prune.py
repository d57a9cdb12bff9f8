"""Prune a model's weights in place as PruningOptions ask, and say what happened to every layer.

The one entry `optimizer.api` calls. The pipeline, top to bottom:

    find the prunable layers (layers.py)            -> which weights, their input axis and [K, N] view
    [bias slots for recovery (bias.py)]             -> structural, so before the probe session is built
    probe the original on the samples (probe.py)    -> reference outputs, input norms for activation importance
    [sensitivity (sensitivity.py)]                  -> per-layer targets whose weighted mean is `sparsity`
    masks: unstructured.py / semi_structured.py / block.py
    [recovery (recovery.py)]                        -> least-squares re-fit, bias correction
    write the new weights as new initializers, count parameters and FLOPs before and after (cost.py)

"channels" (structured: removes channels from the graph) is another agent's package, called as it is.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np
import onnx_ir as ir

from optimizer.errors import UsageError
from optimizer.pruning import sensitivity as sensitivity_
from optimizer.pruning.bias import BiasSlot, ensure_bias
from optimizer.pruning.block import block_masks, block_skip_reason
from optimizer.pruning.cost import graph_cost
from optimizer.pruning.importance import input_norms, scoring_weight
from optimizer.pruning.layers import Layer, find_layers, write_weight
from optimizer.pruning.options import PruningOptions
from optimizer.pruning.probe import Sample, WeightProbe, output_cosine
from optimizer.pruning.recovery import RecoveryState, probe_tensors, recover
from optimizer.pruning.report import LayerPruning, PruningReport
from optimizer.pruning.semi_structured import n_m_masks
from optimizer.pruning.unstructured import global_masks, layer_masks

MAX_NAMED = 5  # layers named in a warning before "and N more"


def prune_model(model: ir.Model, options: PruningOptions, samples: Sequence[Sample] | None = None, *,
                threads: int | None = None) -> PruningReport:
    """Prune `model` in place (the caller passes a copy); `samples` are unlabeled inputs for activation
    importance, sensitivity, recovery and the fidelity figures (default: read from options.calibration)."""
    start = time.perf_counter()
    # N:M fixes the sparsity (1 - N/M); --sparsity does not apply to it.
    sparsity = 1 - options.n / options.m if options.method == "n:m" else options.sparsity
    report = PruningReport(options.method, sparsity, options.scope, options.importance)
    samples = _samples(model, options, samples, report)
    _check_calibration(options, samples)
    report.before = graph_cost(model)
    if report.before.parameters and not report.before.flops:
        report.warnings.append("FLOPs not counted: the model's input shapes are dynamic (fix them, --shape)")
    if options.method == "channels":
        _prune_channels(model, options, samples, threads, report)
    else:
        _prune_weights(model, options, samples, threads, report)
    report.after = graph_cost(model)
    report.seconds = time.perf_counter() - start
    return report


def _prune_weights(model, options: PruningOptions, samples, threads, report: PruningReport) -> None:
    layers, warnings = find_layers(model, options.ops, options.exclude)
    report.warnings += warnings
    skipped = {i: reason for i, layer in enumerate(layers) if (reason := _skip_reason(layer, options))}
    _warn_skipped(layers, skipped, report)
    chosen = [i for i in range(len(layers)) if i not in skipped]
    layers = [layers[i] for i in chosen]
    if not layers:
        report.warnings.append("no layer to prune: the model has no Conv/MatMul/Gemm with a constant weight "
                               "that these options accept")
        return
    originals = [np.array(layer.array()) for layer in layers]
    recovering = options.recover and samples is not None
    biases: list[BiasSlot | None] = [None] * len(layers)
    if recovering:
        for i, layer in enumerate(layers):
            biases[i], why = ensure_bias(model, layer, _outputs(layer))
            if why:
                layer.notes.append(f"no bias correction: {why}")
    probe = reference = norms = None
    if samples is not None:
        tensors = [node.inputs[0].name for layer in layers for node in layer.nodes] \
            if options.importance == "activation" else []
        tensors += probe_tensors(layers) if recovering else []
        names = [layer.weight.name for layer in layers] + [slot.value.name for slot in biases if slot]
        probe = WeightProbe(model, names, tensors, threads=threads)
        reference = probe.outputs(samples)
        if options.importance == "activation":
            norms = input_norms(probe, layers, samples)
    scored = [scoring_weight(layer, weight, options.importance, norms) for layer, weight in zip(layers, originals)]
    targets = [options.sparsity] * len(layers)
    scope = options.scope
    if options.sensitivity:
        targets, scope = _sensitivity(layers, originals, scored, probe, samples, reference, options, report)
    masks, notes = _masks(layers, scored, targets, scope, options)
    pruned = [weight if mask is None else np.where(mask, weight, 0).astype(weight.dtype)
              for weight, mask in zip(originals, masks)]
    if probe is not None:
        report.fidelity["pruned"] = output_cosine(
            reference, probe.outputs(samples, {layer.weight.name: w for layer, w in zip(layers, pruned)}))
    final, bias_arrays = pruned, []
    if recovering:
        state = RecoveryState(list(pruned), masks, biases,
                              [slot.array() if slot else None for slot in biases])
        recover(model, layers, originals, state, probe, samples)
        final, bias_arrays = state.weights, state.bias_arrays
        report.recovery += state.lines
        report.fidelity["recovered"] = output_cosine(reference, probe.outputs(samples, state.feeds(layers)))
    for i, layer in enumerate(layers):
        report.layers.append(_layer_entry(layer, final[i], targets[i], notes[i], options, scope))
        if masks[i] is not None:
            write_weight(model, layer, final[i])
        if bias_arrays and biases[i] is not None:
            biases[i].value.const_value = ir.tensor(bias_arrays[i], name=biases[i].value.name)


def _skip_reason(layer: Layer, options: PruningOptions) -> str | None:
    if options.method == "block":
        return block_skip_reason(layer, options.block_shape)
    if options.method == "n:m" and layer.input_size < options.m:
        return f"input dimension {layer.input_size} < {options.m}: no {options.n}:{options.m} group"
    return None


def _warn_skipped(layers: list[Layer], skipped: dict[int, str], report: PruningReport) -> None:
    by_reason: dict[str, list[str]] = {}
    for i, reason in skipped.items():
        key = reason.split(":")[0] if reason.startswith(("Conv", "input dimension")) else reason
        by_reason.setdefault(key, []).append(layers[i].name)
    for reason, names in by_reason.items():
        shown = ", ".join(names[:MAX_NAMED]) + (f" and {len(names) - MAX_NAMED} more" if len(names) > MAX_NAMED
                                                else "")
        full = next(skipped[i] for i in skipped if layers[i].name == names[0])
        report.warnings.append(f"{len(names)} layer(s) left dense ({full}): {shown}")


def _masks(layers, scored, targets, scope, options: PruningOptions) -> tuple[list, list[str]]:
    """The keep mask of every layer (None: left dense) and a note per layer."""
    notes = [""] * len(layers)
    if options.method == "n:m":
        return n_m_masks(layers, scored, options.n, options.m)
    if options.method == "block":
        return block_masks(layers, scored, options.block_shape, targets, scope), notes
    if scope == "global":
        masks, threshold = global_masks(scored, options.sparsity)
        return masks, [f"global threshold {threshold:.4g}"] * len(layers)
    return layer_masks(scored, targets), notes


def _sensitivity(layers, originals, scored, probe, samples, reference, options: PruningOptions,
                 report: PruningReport) -> tuple[list[float], str]:
    """Measure each layer alone at the target and allocate per-layer targets (n:m: measured only)."""
    alone, _ = _masks(layers, scored, [options.sparsity] * len(layers), "layer", options)
    pruned = [None if mask is None else np.where(mask, weight, 0).astype(weight.dtype)
              for weight, mask in zip(originals, alone)]
    cosines = sensitivity_.measure(probe, layers, pruned, samples, reference)
    report.sensitivity = {layers[i].name: cosine for i, cosine in cosines.items()}
    targets = [options.sparsity] * len(layers)
    if options.method == "n:m":
        report.warnings.append(f"sensitivity measured only: {options.n}:{options.m} fixes every layer's sparsity")
        return targets, "layer"
    if options.scope == "global":
        report.warnings.append("sensitivity allocates per-layer sparsities: scope 'global' not used")
    indices = sorted(cosines)
    allocated = sensitivity_.allocate([cosines[i] for i in indices],
                                      [originals[i].size for i in indices], options.sparsity)
    for i, target in zip(indices, allocated):
        targets[i] = target
    return targets, "layer"


def _layer_entry(layer: Layer, weight: np.ndarray, target: float, note: str, options: PruningOptions,
                 scope: str) -> LayerPruning:
    zeros = weight.size - int(np.count_nonzero(weight))
    if options.method == "n:m":
        target = 1.0 - options.n / options.m
    elif scope == "global":
        target = options.sparsity
    return LayerPruning(layer.name, layer.op_type, tuple(weight.shape), tuple(weight.shape),
                        zeros / weight.size if weight.size else 0.0, target,
                        "; ".join(part for part in (note, *layer.notes) if part))


def _outputs(layer: Layer) -> int:
    array = layer.array()
    return int(array.shape[0]) if layer.op_type == "Conv" else int(layer.matmul_view(array).shape[1])


def _samples(model, options: PruningOptions, samples, report: PruningReport) -> list[Sample] | None:
    if samples is None and options.calibration is not None:
        from optimizer.ir import input_specs
        from optimizer.quantization.calibration import calibration_data

        data = calibration_data(options.calibration, input_specs(model), limit=options.calibration_samples)
        if data.warning:
            report.warnings.append(data.warning)
        samples = list(data)
    if samples is None:
        report.warnings.append("no calibration samples: output fidelity not measured")
        return None
    samples = list(samples)[: options.calibration_samples]
    if not samples:
        raise UsageError("pruning got an empty list of calibration samples")
    return samples


def _check_calibration(options: PruningOptions, samples) -> None:
    if samples is not None:
        return
    needs = [text for wanted, text in (
        (options.importance == "activation", "importance 'activation' (scores weights by their inputs)"),
        (options.sensitivity, "sensitivity (runs the model with each layer pruned)"),
        (options.recover, "recover (re-fits the kept weights on the layers' inputs)"),
    ) if wanted]
    if needs:
        raise UsageError(f"pruning option {needs[0]} needs calibration data: give calibration samples "
                         "(PruningOptions.calibration, --calibration)"
                         + (", or turn recovery off (recover=False)" if options.recover else ""))


def _prune_channels(model, options: PruningOptions, samples, threads, report: PruningReport) -> None:
    from optimizer.pruning.channels import prune_channels

    probe = WeightProbe(model, (), threads=threads) if samples is not None else None
    reference = probe.outputs(samples) if probe is not None else None
    result = prune_channels(model, options, samples, threads=threads)
    report.layers += result.layers
    report.recovery += result.recovery
    report.warnings += result.warnings
    report.sensitivity.update(result.sensitivity)
    if probe is not None:
        after = WeightProbe(model, (), threads=threads).outputs(samples)
        report.fidelity["recovered" if options.recover else "pruned"] = output_cosine(reference, after)
