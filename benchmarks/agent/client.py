"""The host's side: benchmark an artifact on a device running `optimize agent`, get its RunReport back.

The artifact is checked here first (a corrupt one should fail on the machine that has it, with its path), the
agent is asked for its health (token, reachability and upload cap are then known before a large upload
starts), and every way the exchange can fail becomes one HwoptError line that names the agent's URL.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import tempfile
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import urlsplit

from optimizer.benchmarks.agent.protocol import (
    BENCH_PATH,
    HEALTH_PATH,
    OPTIONS_HEADER,
    encode_options,
)
from optimizer.benchmarks.agent.transfer import pack_artifact
from optimizer.benchmarks.run_report import RunReport, RunReportError

from optimizer.artifact import load_artifact
from optimizer.errors import HwoptError, UsageError

DEFAULT_TIMEOUT_S = 3600.0
"""Per read or write on the connection: a queued request waits for the benchmarks before it, and building a
TensorRT engine on a Jetson takes many minutes."""
HEALTH_TIMEOUT_S = 30.0
_UPLOAD_BLOCK = 1 << 20


class RemoteBenchError(HwoptError):
    """The agent could not be reached, refused the request, or the benchmark failed there."""


def remote_bench(artifact_folder: str | os.PathLike, url: str, token: str, *, batches: Sequence[int] = (1,),
                 threads: int | None = None, runs: int | None = None, time_budget_s: float = 10.0,
                 name: str | None = None, label: str | None = None, profile_operators: bool = True,
                 timeout_s: float = DEFAULT_TIMEOUT_S) -> RunReport:
    """Benchmark the artifact in `artifact_folder` on the agent at `url`; the options are `bench()`'s.

    The report's `source` is `url` and its model path the local folder, as a local run would record it.
    """
    url = agent_url(url)
    if not token:
        raise UsageError(f"a token is needed for the agent at {url} (--token or HWOPT_AGENT_TOKEN)")
    folder = Path(artifact_folder)
    artifact = load_artifact(folder)
    cap = agent_health(url, token)["max_upload_bytes"]
    options = {"artifact_name": folder.resolve().name, "batches": [int(b) for b in batches], "threads": threads,
               "runs": runs, "time_budget_s": time_budget_s, "name": name, "label": label,
               "profile_operators": profile_operators}
    with tempfile.TemporaryFile(prefix="hwopt-upload-") as body:
        pack_artifact(artifact, body)
        size = body.tell()
        if size > cap:
            raise RemoteBenchError(f"{folder}: packed to {size} bytes, more than the {cap} the agent at {url} "
                                   "accepts (its --max-upload)")
        body.seek(0)
        headers = {"Content-Type": "application/gzip", "Content-Length": str(size),
                   OPTIONS_HEADER: encode_options(options)}
        answer = _request(url, "POST", BENCH_PATH, token, timeout_s, body, headers)
    try:
        report = RunReport.from_dict(answer)
    except RunReportError as error:
        raise RemoteBenchError(f"the agent at {url} sent a report this hwopt cannot read: {error}") from None
    report.source = url
    report.model = replace(report.model, path=str(folder.resolve()))
    return report


def agent_health(url: str, token: str, *, timeout_s: float = HEALTH_TIMEOUT_S) -> dict[str, Any]:
    """The agent's hwopt version, runtimes, whether it is busy, its queue and its upload cap."""
    url = agent_url(url)
    answer = _request(url, "GET", HEALTH_PATH, token, timeout_s)
    if not isinstance(answer.get("max_upload_bytes"), int):
        raise RemoteBenchError(f"{url} answered its health check, but not as an hwopt agent does")
    return answer


def agent_url(url: str) -> str:
    """`device:8765` or `http://device:8765/` -> `http://device:8765`."""
    url = url.strip().rstrip("/")
    if "://" not in url:
        url = f"http://{url}"
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.path or parts.query:
        raise UsageError(f"'{url}' is not an agent URL; expected http://HOST:PORT")
    try:
        parts.port  # noqa: B018 - it raises on a port that is not a number
    except ValueError:
        raise UsageError(f"'{url}' is not an agent URL; expected http://HOST:PORT") from None
    return url


def _request(url: str, method: str, path: str, token: str, timeout_s: float, body: BinaryIO | None = None,
             headers: dict[str, str] | None = None) -> dict[str, Any]:
    """One request, its JSON answer on 200; every failure as RemoteBenchError naming `url`."""
    parts = urlsplit(url)
    connection_type = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    connection = connection_type(parts.hostname, parts.port, timeout=timeout_s, blocksize=_UPLOAD_BLOCK)
    try:
        try:
            connection.request(method, path, body=body,
                               headers={"Authorization": f"Bearer {token}", **(headers or {})})
        except (BrokenPipeError, ConnectionResetError):
            pass  # the agent answered before reading the whole upload (refused it): its answer says why
        response = connection.getresponse()
        status, payload = response.status, response.read()
    except ConnectionRefusedError:
        raise RemoteBenchError(f"cannot reach the agent at {url}: connection refused (is `optimize agent` "
                               "running there, on that port?)") from None
    except socket.gaierror as error:
        raise RemoteBenchError(f"cannot reach the agent at {url}: unknown host ({error.strerror})") from None
    except TimeoutError:
        raise RemoteBenchError(f"the agent at {url} did not answer within {timeout_s:g} s") from None
    except (http.client.HTTPException, OSError) as error:
        raise RemoteBenchError(f"the agent at {url} broke off the exchange ({_brief(error)}); is it an hwopt "
                               "agent, and still running?") from None
    finally:
        connection.close()
    answer = _json_object(payload)
    if status == 200 and answer is not None:
        return answer
    raise RemoteBenchError(_failure(url, status, (answer or {}).get("error") or _brief(payload)))


def _failure(url: str, status: int, message: str) -> str:
    if status == 401:
        return f"wrong or missing token for {url} (401)"
    if status == 413:
        return f"the agent at {url} refused the artifact as too large (413: {message})"
    if status == 400:
        return f"the agent at {url} refused the request (400: {message})"
    if status == 422:
        return f"the benchmark failed on {url} (422: {message})"
    if status == 503:
        return f"the agent at {url} is busy (503: {message}); try again later"
    if status == 500:
        return f"the agent at {url} failed (500: {message})"
    return f"the agent at {url} answered {status}: {message}"


def _json_object(payload: bytes) -> dict[str, Any] | None:
    try:
        answer = json.loads(payload)
    except ValueError:
        return None
    return answer if isinstance(answer, dict) else None


def _brief(error: BaseException | bytes) -> str:
    text = error.decode("utf-8", "replace") if isinstance(error, bytes) else str(error) or type(error).__name__
    return " ".join(text.split())[:200] or "no message"
