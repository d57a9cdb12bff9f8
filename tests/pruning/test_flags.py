"""The optimize command's pruning flags: what they parse to, and the one-line errors for bad values."""

from __future__ import annotations

import re

import pytest

from optimizer.cli import build_optimize_parser
from optimizer.errors import UsageError
from optimizer.pruning.flags import pruning_options


def _options(*flags: str):
    return pruning_options(build_optimize_parser().parse_args(["model.onnx", *flags]))


def test_no_prune_flag_means_no_pruning():
    assert _options() is None


def test_flags_make_the_options():
    options = _options("--prune", "block", "--sparsity", "0.8", "--prune-block", "4x16", "--prune-scope", "global",
                       "--prune-importance", "activation", "--prune-sensitivity", "--no-prune-recovery",
                       "--prune-exclude", "*attention*", "--calibration", "data.npz")
    assert (options.method, options.sparsity, options.block_shape, options.scope) == ("block", 0.8, (4, 16), "global")
    assert options.importance == "activation" and options.sensitivity and not options.recover
    assert options.exclude == ("*attention*",) and options.calibration == "data.npz"


def test_n_m_pattern():
    options = _options("--prune", "n:m", "--prune-pattern", "1:4")
    assert (options.method, options.n, options.m) == ("n:m", 1, 4)


@pytest.mark.parametrize("flags, message", [
    (["--prune", "magnitude"], "invalid choice"),
    (["--prune", "block", "--sparsity", "1.0"], "fraction in [0, 1)"),
    (["--prune", "block", "--sparsity", "half"], "fraction in [0, 1)"),
    (["--prune", "block", "--prune-block", "16"], "block shape like 1x16"),
    (["--prune", "block", "--prune-block", "0x16"], "positive sizes"),
    (["--prune", "n:m", "--prune-pattern", "4:2"], "N <= M"),
])
def test_bad_values_are_usage_errors(flags, message):
    with pytest.raises(UsageError, match=re.escape(message)):
        build_optimize_parser().parse_args(["model.onnx", *flags])


@pytest.mark.parametrize("flags, message", [
    (["--sparsity", "0.9"], "--sparsity without --prune"),
    (["--prune-block", "4x4", "--prune-sensitivity"], "--prune-block, --prune-sensitivity without --prune"),
    (["--prune", "n:m", "--sparsity", "0.9"], "--sparsity does not apply to --prune n:m"),
])
def test_pruning_flags_that_would_be_ignored_are_errors(flags, message):
    with pytest.raises(UsageError, match=re.escape(message)):
        _options(*flags)
