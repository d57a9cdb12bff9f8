"""What the host and the agent say to each other over HTTP, so both sides read it from one place.

    GET  /v1/health   -> {"hwopt", "runtimes", "busy", "queued", "max_upload_bytes"}
    POST /v1/bench    body: the artifact as tar.gz (Content-Length required); header X-Hwopt-Bench: the bench
                      options as a JSON object -> the RunReport as JSON

Every request carries `Authorization: Bearer TOKEN`. Errors are JSON objects {"error": "one line"}: 400 bad
request or artifact, 401 token, 404/405 path or method, 411 no Content-Length, 413 too large, 422 the benchmark
failed on the device, 500 a bug in the agent, 503 the queue is full.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from optimizer.errors import UsageError

HEALTH_PATH = "/v1/health"
BENCH_PATH = "/v1/bench"
OPTIONS_HEADER = "X-Hwopt-Bench"
TOKEN_ENV = "HWOPT_AGENT_TOKEN"

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765
DEFAULT_MAX_UPLOAD_BYTES = 4 << 30
DEFAULT_QUEUE_DEPTH = 8

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,127}")
_MAX_TEXT = 200
_MAX_BATCHES = 64


class BenchOptionsError(UsageError):
    """Bench options that the agent cannot pass to the runner as they are."""


def encode_options(options: dict[str, Any]) -> str:
    """The header value: ASCII JSON, since HTTP header values are not UTF-8."""
    return json.dumps(options, ensure_ascii=True, separators=(",", ":"))


def decode_options(text: str | None) -> tuple[str, dict[str, Any]]:
    """The artifact's folder name and the keyword arguments of `bench()`, each checked for type and range.

    The folder name matters because the runner names a model after its folder when the artifact has no
    optimize report; it must be one plain path component, else the agent uses `artifact`.
    """
    if not text:
        return "artifact", {}
    try:
        options = json.loads(text)
    except ValueError:
        raise BenchOptionsError(f"{OPTIONS_HEADER} is not JSON") from None
    if not isinstance(options, dict):
        raise BenchOptionsError(f"{OPTIONS_HEADER} must be a JSON object")
    options = dict(options)
    folder = options.pop("artifact_name", None)
    folder = folder if isinstance(folder, str) and _NAME.fullmatch(folder) and ".." not in folder else "artifact"
    checked = {}
    for key, value in options.items():
        if key not in _CHECKS:
            raise BenchOptionsError(f"unknown bench option '{key}'; known: {', '.join(_CHECKS)}")
        if value is not None:  # None: leave it to bench()'s default
            checked[key] = _CHECKS[key](key, value)
    return folder, checked


def _positive_int(key: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise BenchOptionsError(f"bench option '{key}' must be a positive integer, not {value!r}")
    return value


def _batches(key: str, value: Any) -> list[int]:
    if not isinstance(value, list) or not 0 < len(value) <= _MAX_BATCHES:
        raise BenchOptionsError(f"bench option '{key}' must be a list of 1 to {_MAX_BATCHES} batch sizes")
    return [_positive_int(key, batch) for batch in value]


def _seconds(key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
        raise BenchOptionsError(f"bench option '{key}' must be a positive number of seconds, not {value!r}")
    return float(value)


def _text(key: str, value: Any) -> str:
    if not isinstance(value, str) or len(value) > _MAX_TEXT:
        raise BenchOptionsError(f"bench option '{key}' must be a string of at most {_MAX_TEXT} characters")
    return value


def _flag(key: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise BenchOptionsError(f"bench option '{key}' must be true or false, not {value!r}")
    return value


_CHECKS = {
    "batches": _batches,
    "threads": _positive_int,
    "runs": _positive_int,
    "time_budget_s": _seconds,
    "name": _text,
    "label": _text,
    "profile_operators": _flag,
}
