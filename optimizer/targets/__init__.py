"""Targets: device profiles, looked up by name or alias."""

from __future__ import annotations

from optimizer.errors import UsageError
from optimizer.targets.profiles import TargetProfile, all_targets

DEFAULT_TARGET = "cpu"


def get_target(name: str) -> TargetProfile:
    if not isinstance(name, str):
        raise UsageError(f"target must be a target name such as 'cpu', not {name!r}")
    wanted = name.strip().lower()
    for profile in all_targets():
        if wanted == profile.name or wanted in profile.aliases:
            return profile
    known = ", ".join(p.name for p in all_targets())
    raise UsageError(f"unknown target '{name}'; known targets: {known} (see `optimize targets`)")


__all__ = ["DEFAULT_TARGET", "TargetProfile", "all_targets", "get_target"]
