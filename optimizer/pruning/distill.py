"""Prune a PyTorch module and recover it with a short distillation fine-tune against the original's outputs.

Recovery without labels: the teacher is the user's module (eval mode, no gradients), the student a pruned deep
copy, and the loss the mean squared error between their outputs on the user's unlabeled samples. The masks come
from `masks.py`, computed on each weight in the orientation the ONNX passes see after export, so a module pruned
here and exported holds the same pattern the ONNX pass would have cut:

- nn.Linear.weight is [out, in], the transpose of the exported MatMul/Gemm weight [K=in, N=out]; `block_shape`
  (along K, along N) tiles weight.T, and N:M groups run along `in` (dim 1 here, dim 0 of the ONNX weight).
- nn.Conv1d/2d.weight is [Cout, Cin/groups, *kernel]; N:M groups run along Cin (dim 1) and "channels" zeroes
  whole filters (and their biases) by norm; the ONNX structured pass then removes those channels physically,
  since zero filters score lowest there. As in the ONNX passes, Convs are not block-pruned, a layer with fewer
  than M inputs is not N:M-pruned, and "channels" prunes Conv layers unless `options.ops` names Gemm/MatMul.

The masks are re-applied after every optimizer step (gradients on pruned weights are masked as well, so Adam's
moments stay zero there), which leaves plain zeroed parameters that export as is, with no parametrizations.
BatchNorm layers fine-tune in train mode by default: their running statistics move toward the pruned model's
activations, which is itself a recovery (on the digits CNN of the tests it is on par with frozen statistics);
it needs batches of more than one sample. Dropout and every other layer stay in eval mode throughout.

Unlike the ONNX channel pass, "channels" here scores each layer on its own filters: it neither multiplies by a
following BatchNorm's scale nor ties the channels of a residual Add together.
"""

from __future__ import annotations

import copy
import fnmatch
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from optimizer.errors import RuntimeNotAvailableError, UsageError
from optimizer.progress import report_progress
from optimizer.pruning import masks
from optimizer.pruning.options import PruningOptions

STAGE = "distillation fine-tune"


@dataclass
class DistillationResult:
    module: Any
    """The pruned, fine-tuned copy in eval mode (the module given is never modified)."""
    loss_before: float
    """Teacher-student MSE on the samples right after pruning, before any fine-tune step."""
    loss_after: float
    steps: int
    seconds: float
    sparsity: dict[str, float] = field(default_factory=dict)
    """Pruned layer (module name) -> fraction of zero weights."""
    skipped: dict[str, str] = field(default_factory=dict)
    """Prunable layer left dense -> why (excluded, or its weight does not fit the pattern)."""


def fine_tune_pruned(
    module: Any,
    options: PruningOptions,
    samples: Sequence[Any],
    *,
    steps: int | None = None,
    lr: float = 1e-4,
    batch_size: int = 32,
    train_batchnorm: bool = True,
    progress: Callable[[str, float], None] | None = None,
) -> DistillationResult:
    """Prune a deep copy of `module` with `options`, then fine-tune it for `steps` (default
    `options.fine_tune_steps`) Adam steps toward the original's outputs on `samples`.

    `samples` are example inputs: a tensor (or array), a tuple of them, or a dict of keyword inputs, each with a
    leading batch dimension; `batch_size` consecutive samples are concatenated into one step's batch. The
    default `lr` is cautious: small models pruned hard recover in a few hundred steps at 1e-3 to 3e-3.
    """
    torch = _torch()
    started = time.perf_counter()
    steps = options.fine_tune_steps if steps is None else steps
    if steps < 0 or batch_size < 1 or lr <= 0:
        raise UsageError(f"fine-tune needs steps >= 0, batch_size >= 1 and lr > 0 (got {steps}, {batch_size}, {lr})")
    if not samples:
        raise UsageError("the distillation fine-tune needs at least one sample input")
    progress = progress or report_progress
    device = next(module.parameters(), torch.empty(0)).device
    batches = _batches([_as_call(sample, torch) for sample in samples], batch_size, device, torch)

    was_training = module.training
    module.eval()
    try:
        student = copy.deepcopy(module)
        with torch.no_grad():
            targets = [_flatten(module(*args, **kwargs), torch) for args, kwargs in batches]
    finally:
        module.train(was_training)
    pruned, skipped = prune_masks(student, options, batches)
    masked = [pair for pairs in pruned.values() for pair in pairs]
    with torch.no_grad():
        for parameter, keep in masked:
            parameter.mul_(keep)
    loss_before = _mean_loss(student, batches, targets, torch)

    for layer in student.modules():  # dropout stays off; BatchNorm normalizes by batch statistics when asked
        layer.train(train_batchnorm and isinstance(layer, torch.nn.modules.batchnorm._BatchNorm))
    adam = torch.optim.Adam([p for p in student.parameters() if p.requires_grad], lr=lr)
    for step in range(steps):
        index = step % len(batches)
        args, kwargs = batches[index]
        loss = torch.nn.functional.mse_loss(_flatten(student(*args, **kwargs), torch), targets[index])
        adam.zero_grad(set_to_none=True)
        loss.backward()
        for parameter, keep in masked:
            if parameter.grad is not None:
                parameter.grad.mul_(keep)
        adam.step()
        with torch.no_grad():
            for parameter, keep in masked:
                parameter.mul_(keep)
        progress(STAGE, (step + 1) / steps)
    student.eval()
    loss_after = _mean_loss(student, batches, targets, torch) if steps else loss_before
    sparsity = {name: value for name, value in sparsity_of(student).items() if name in pruned}
    return DistillationResult(student, loss_before, loss_after, steps, time.perf_counter() - started,
                              sparsity, skipped)


def sparsity_of(module: Any) -> dict[str, float]:
    """Each prunable layer's (nn.Linear, nn.Conv1d/2d) fraction of zero weights, by module name."""
    torch = _torch()
    return {name: float((layer.weight == 0).sum()) / layer.weight.numel()
            for name, layer in module.named_modules() if isinstance(layer, _prunable_types(torch))}


def prune_masks(module: Any, options: PruningOptions, batches: list[tuple[tuple, dict]] | None = None,
                ) -> tuple[dict[str, list[tuple[Any, Any]]], dict[str, str]]:
    """Keep masks of `module`'s prunable layers: name -> [(parameter, 0/1 tensor of its shape)] (the weight,
    and for "channels" the bias), and name -> why a prunable layer was left dense. `batches` feed activation
    importance."""
    torch = _torch()
    layers, skipped = {}, {}
    for name, layer in module.named_modules():
        if not isinstance(layer, _prunable_types(torch)):
            continue
        why = _why_skipped(name, layer, options, torch)
        if why:
            skipped[name] = why
        else:
            layers[name] = layer
    scales = {}
    if options.importance == "activation":
        if not batches:
            raise UsageError("activation importance needs sample inputs")
        scales = _input_norms(module, layers, batches, torch)
    weights = {name: _scaled_weight(layer, scales.get(name)) for name, layer in layers.items()}
    importance = "l1" if options.importance == "activation" else options.importance
    keeps: dict[str, np.ndarray] = {}
    if options.method == "n:m":
        for name, weight in weights.items():
            if weight.shape[1] < options.m:
                skipped[name] = f"input dimension {weight.shape[1]} < {options.m}: no {options.n}:{options.m} group"
            else:
                keeps[name] = masks.n_m_mask(weight, options.n, options.m, axis=1, importance=importance)
    else:
        units = {}
        for name, weight in weights.items():
            why = _block_skip_reason(layers[name], weight, options, torch)
            if why:
                skipped[name] = why
            else:
                units[name] = _unit_scores(weight, options, importance)
        if options.scope == "global" and units:
            threshold = masks.global_threshold([scores for scores, _ in units.values()], options.sparsity)
            keeps = {name: expand(scores > threshold) for name, (scores, expand) in units.items()}
        else:
            keeps = {name: expand(masks.keep_largest(scores, options.sparsity))
                     for name, (scores, expand) in units.items()}
    result = {}
    for name, keep in keeps.items():
        weight, bias = layers[name].weight, layers[name].bias
        result[name] = [(weight, torch.from_numpy(keep).to(weight.device, weight.dtype))]
        if options.method == "channels" and bias is not None:
            channel_keep = keep.reshape(keep.shape[0], -1).any(axis=1)
            result[name].append((bias, torch.from_numpy(channel_keep).to(bias.device, bias.dtype)))
    return result, skipped


def _unit_scores(weight: np.ndarray, options: PruningOptions, importance: str):
    """The scores of what is pruned together, and how a keep mask over them becomes the weight's mask."""
    if options.method == "unstructured":
        return masks.magnitude(weight, importance), lambda keep: keep
    if options.method == "channels":
        scores = masks.magnitude(weight, importance).reshape(weight.shape[0], -1).sum(axis=1)
        return scores, lambda keep: np.broadcast_to(
            keep.reshape(-1, *([1] * (weight.ndim - 1))), weight.shape).copy()
    # block: tile the weight as the exported MatMul/Gemm sees it, [K=in, N=out].
    scores = masks.block_scores(weight.T, options.block_shape, importance)
    return scores, lambda keep: masks.expand_blocks(keep, options.block_shape).T


def _block_skip_reason(layer: Any, weight: np.ndarray, options: PruningOptions, torch) -> str:
    if options.method != "block":
        return ""
    if not isinstance(layer, torch.nn.Linear):
        return "Conv: block sparsity applies to MatMul/Gemm weights only"
    (n, k), (block_k, block_n) = weight.shape, options.block_shape
    return f"block {block_k}x{block_n} does not tile its [K, N] = [{k}, {n}]" if k % block_k or n % block_n else ""


def _why_skipped(name: str, layer: Any, options: PruningOptions, torch) -> str:
    op_types = ("Conv",) if isinstance(layer, (torch.nn.Conv1d, torch.nn.Conv2d)) else ("Gemm", "MatMul")
    if any(fnmatch.fnmatchcase(candidate, pattern) for pattern in options.exclude
           for candidate in (name, type(layer).__name__, *op_types)):
        return "excluded"
    wanted = options.ops or (("Conv",) if options.method == "channels" else ("Conv", "MatMul", "Gemm"))
    if not set(op_types) & set(wanted):
        return f"{'/'.join(op_types)} not among the pruned op types ({', '.join(wanted)})"
    return ""


def _scaled_weight(layer: Any, input_norms: Any) -> np.ndarray:
    """The weight as float64 NumPy, its input dimension scaled by each input channel's norm (activation
    importance: |w| * ||x||, so a weight reading a quiet input counts for less)."""
    weight = layer.weight.detach().cpu().double().numpy()
    if input_norms is None:
        return weight
    norms = input_norms.double().cpu().numpy()
    groups = getattr(layer, "groups", 1)
    per_out = norms.reshape(groups, -1)[np.arange(weight.shape[0]) // (weight.shape[0] // groups)]
    return weight * per_out.reshape(*per_out.shape, *([1] * (weight.ndim - 2)))


def _input_norms(module: Any, layers: dict[str, Any], batches: list, torch) -> dict[str, Any]:
    """Each layer's L2 norm per input channel (Linear: last dim, Conv: dim 1) over all samples."""
    sums = {name: 0.0 for name in layers}

    def record(name: str):
        def hook(layer, inputs, output):
            x = inputs[0].detach().double()
            channel = -1 if isinstance(layer, torch.nn.Linear) else 1
            sums[name] = sums[name] + (x * x).transpose(channel, -1).reshape(-1, x.shape[channel]).sum(0)
        return hook

    handles = [layer.register_forward_hook(record(name)) for name, layer in layers.items()]
    was_training = module.training
    module.eval()
    try:
        with torch.no_grad():
            for args, kwargs in batches:
                module(*args, **kwargs)
    finally:
        module.train(was_training)
        for handle in handles:
            handle.remove()
    return {name: torch.as_tensor(total).sqrt() for name, total in sums.items()}


def _mean_loss(module: Any, batches: list, targets: list, torch) -> float:
    module.eval()
    total = count = 0.0
    with torch.no_grad():
        for (args, kwargs), target in zip(batches, targets):
            output = _flatten(module(*args, **kwargs), torch)
            total += float(torch.nn.functional.mse_loss(output, target, reduction="sum"))
            count += target.numel()
    return total / count


def _flatten(outputs: Any, torch) -> Any:
    """Every floating-point tensor among the outputs (tensor, tuple/list, dict, nested), as one flat vector."""
    def collect(value: Any) -> list:
        if isinstance(value, torch.Tensor):
            return [value.reshape(-1).float()] if value.is_floating_point() else []
        items = value.values() if isinstance(value, Mapping) else value if isinstance(value, (tuple, list)) else ()
        return [tensor for item in items for tensor in collect(item)]

    tensors = collect(outputs)
    if not tensors:
        raise UsageError("the module's outputs hold no floating-point tensor to distill")
    return torch.cat(tensors)


def _as_call(sample: Any, torch) -> tuple[tuple, dict]:
    def tensor(value: Any) -> Any:
        return torch.as_tensor(value) if isinstance(value, np.ndarray) else value

    if isinstance(sample, Mapping):
        return (), {key: tensor(value) for key, value in sample.items()}
    if isinstance(sample, (tuple, list)):
        return tuple(tensor(value) for value in sample), {}
    return (tensor(sample),), {}


def _batches(calls: list[tuple[tuple, dict]], batch_size: int, device: Any, torch) -> list[tuple[tuple, dict]]:
    """Groups of `batch_size` consecutive calls, their tensors concatenated along the batch dimension."""
    def join(values: list) -> Any:
        if not isinstance(values[0], torch.Tensor):
            return values[0]
        try:
            return torch.cat(values).to(device)
        except RuntimeError as error:
            raise UsageError(f"samples of different shapes cannot share a batch ({error}); "
                             "use batch_size=1") from None

    batches = []
    for start in range(0, len(calls), batch_size):
        group = calls[start:start + batch_size]
        args = tuple(join([call[0][i] for call in group]) for i in range(len(group[0][0])))
        kwargs = {key: join([call[1][key] for call in group]) for key in group[0][1]}
        batches.append((args, kwargs))
    return batches


def _prunable_types(torch) -> tuple[type, ...]:
    return torch.nn.Linear, torch.nn.Conv1d, torch.nn.Conv2d


class TorchNotInstalledError(RuntimeNotAvailableError, ImportError):
    """torch is missing: an hwopt error for the CLI, and an ImportError for code that catches those."""


def _torch():
    try:
        import torch
    except ImportError:
        raise TorchNotInstalledError("the distillation fine-tune needs torch: pip install 'hwopt[torch]'") from None
    return torch
