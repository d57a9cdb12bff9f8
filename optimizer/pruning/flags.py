"""The `optimize` command's pruning flags, and the PruningOptions they make."""

from __future__ import annotations

import argparse

from optimizer.errors import UsageError
from optimizer.pruning.options import IMPORTANCES, METHODS, SCOPES, PruningOptions


def add_pruning_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("pruning (uses --calibration data for importance, sensitivity and recovery)")
    group.add_argument("--prune", choices=METHODS, metavar="METHOD",
                       help="prune before optimizing: unstructured, n:m (2:4 for sparse tensor cores), block "
                       "(runs on hwopt's block-sparse kernel where measured faster), channels (removes channels "
                       "from the graph)")
    group.add_argument("--sparsity", type=_fraction, default=0.5, metavar="F",
                       help="fraction of weights (channels for --prune channels) to remove (default 0.5)")
    group.add_argument("--prune-scope", choices=SCOPES, default="layer",
                       help="layer: every layer to --sparsity (default); global: one magnitude threshold")
    group.add_argument("--prune-block", type=_block, default=(1, 16), metavar="KxN",
                       help="block shape for --prune block, along the input x output dims (default 1x16)")
    group.add_argument("--prune-pattern", type=_n_m, default=(2, 4), metavar="N:M",
                       help="keep N of every M weights along the input dim for --prune n:m (default 2:4)")
    group.add_argument("--prune-importance", choices=IMPORTANCES, default="l1",
                       help="l1 or l2 of the weights, or activation (weights x input magnitude on calibration data)")
    group.add_argument("--prune-sensitivity", action="store_true",
                       help="measure each layer's sensitivity and prune the sensitive ones less")
    group.add_argument("--no-prune-recovery", action="store_true",
                       help="skip the label-free recovery (weight re-fit, bias and normalization statistics)")
    group.add_argument("--prune-exclude", action="append", default=[], metavar="PATTERN",
                       help="leave layers unpruned by name or op type, globs allowed (repeatable)")


def pruning_options(args: argparse.Namespace) -> PruningOptions | None:
    if args.prune is None:
        given = [flag for flag, default in _DEFAULTS.items() if getattr(args, flag) != default]
        if given:
            names = ", ".join("--" + flag.replace("_", "-") for flag in given)
            raise UsageError(f"{names} without --prune: name a pruning method (--prune block, ...)")
        return None
    if args.prune == "n:m" and args.sparsity != _DEFAULTS["sparsity"]:
        raise UsageError("--sparsity does not apply to --prune n:m: its sparsity is 1 - N/M (--prune-pattern)")
    n, m = args.prune_pattern
    return PruningOptions(
        method=args.prune, sparsity=args.sparsity, scope=args.prune_scope, n=n, m=m,
        block_shape=args.prune_block, importance=args.prune_importance, sensitivity=args.prune_sensitivity,
        recover=not args.no_prune_recovery, calibration=args.calibration, exclude=tuple(args.prune_exclude),
    )


# The flags' defaults: any other value without --prune is a mistake worth saying so.
_DEFAULTS = {"sparsity": 0.5, "prune_scope": "layer", "prune_block": (1, 16), "prune_pattern": (2, 4),
             "prune_importance": "l1", "prune_sensitivity": False, "no_prune_recovery": False,
             "prune_exclude": []}


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a fraction in [0, 1), not '{text}'") from None
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"expected a fraction in [0, 1), not {text}")
    return value


def _block(text: str) -> tuple[int, int]:
    return _pair(text, "x", "a block shape like 1x16")


def _n_m(text: str) -> tuple[int, int]:
    n, m = _pair(text, ":", "a pattern like 2:4")
    if n > m:
        raise argparse.ArgumentTypeError(f"N:M needs N <= M, not {text}")
    return n, m


def _pair(text: str, separator: str, expected: str) -> tuple[int, int]:
    parts = text.lower().split(separator)
    try:
        first, second = (int(part) for part in parts)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {expected}, not '{text}'") from None
    if first < 1 or second < 1:
        raise argparse.ArgumentTypeError(f"expected {expected} with positive sizes, not '{text}'")
    return first, second


__all__ = ["add_pruning_flags", "pruning_options"]
