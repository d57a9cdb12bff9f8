"""The agent: an HTTP server on the device that benchmarks the artifacts a host uploads (see protocol.py).

Every request needs the token. One benchmark runs at a time and the others wait their turn in a short queue
(two at once would each slow the other and both figures would be wrong); an upload is only read and unpacked
when its turn comes, since unpacking on a small device would steal CPU from the benchmark running. Health
answers meanwhile. The artifact lives in a temporary folder removed after its run. Whatever one request does
wrong, and whatever goes wrong inside the agent, ends as a JSON error for that request, never as a dead agent.
"""

from __future__ import annotations

import hmac
import json
import os
import shutil
import socket
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from optimizer.benchmarks.agent.protocol import (
    BENCH_PATH,
    DEFAULT_MAX_UPLOAD_BYTES,
    DEFAULT_QUEUE_DEPTH,
    HEALTH_PATH,
    OPTIONS_HEADER,
    BenchOptionsError,
    decode_options,
)
from optimizer.benchmarks.agent.transfer import UploadTooLarge, unpack_artifact
from optimizer.benchmarks.run_report import RunReport

from optimizer.artifact import ArtifactError
from optimizer.errors import HwoptError, UsageError

BenchFunction = Callable[..., RunReport]
"""`optimizer.benchmarks.runner.bench`, or a stand-in with its signature (tests)."""

SOCKET_TIMEOUT_S = 120
"""How long one read or write on a client's connection may stall before the agent gives up on it."""
DRAIN_MAX_BYTES = 1 << 20
"""An unread request body up to this size is read and dropped before an error reply: closing a socket with
unread data resets the connection, and the client would see the reset instead of the reason."""
RETRY_AFTER_S = 30


class AgentServer(ThreadingHTTPServer):
    """The agent bound to `host:port` (port 0: any free port; `url` says which)."""

    daemon_threads = True

    def __init__(self, host: str, port: int, *, token: str, max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES,
                 queue_depth: int = DEFAULT_QUEUE_DEPTH, quiet: bool = False, debug: bool = False,
                 bench_function: BenchFunction | None = None) -> None:
        if not token or token != token.strip():
            raise UsageError("the agent needs a token without spaces around it; every request must send it")
        if max_upload_bytes < 1 or queue_depth < 0:
            raise UsageError("the upload cap must be positive and the queue depth not negative")
        self.address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.queue = BenchQueue(queue_depth)  # before binding: a failed bind calls server_close, which uses it
        super().__init__((host, port), AgentRequestHandler)
        self.token = token
        self.max_upload_bytes = max_upload_bytes
        self.quiet = quiet
        self.debug = debug
        self.bench_function = bench_function
        self._runtimes: dict[str, dict[str, Any]] | None = None
        self._runtimes_lock = threading.Lock()
        self._log_lock = threading.Lock()

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"

    @property
    def runtimes(self) -> dict[str, dict[str, Any]]:
        """Asked of the backends on the first health check, not at start: it imports every runtime."""
        with self._runtimes_lock:
            if self._runtimes is None:
                self._runtimes = installed_runtimes()
            return self._runtimes

    def bench(self, folder: Path, options: dict[str, Any]) -> RunReport:
        if self.bench_function is None:  # imported on first use: the runner pulls in every backend
            from optimizer.benchmarks.runner import bench

            self.bench_function = bench
        return self.bench_function(folder, **options)

    def log(self, line: str) -> None:
        if not self.quiet:
            with self._log_lock:
                print(f"hwopt agent: {line}", file=sys.stderr, flush=True)

    def server_close(self) -> None:
        super().server_close()
        self.queue.remove_workdirs()


class BenchQueue:
    """One benchmark at a time; up to `depth` more wait for their turn, and any beyond that are turned away."""

    def __init__(self, depth: int) -> None:
        self.depth = depth
        self._state = threading.Lock()
        self._worker = threading.Lock()
        self._admitted = 0
        self._workdirs: set[str] = set()

    @property
    def busy(self) -> bool:
        return self._worker.locked()

    @property
    def queued(self) -> int:
        with self._state:
            return max(0, self._admitted - int(self.busy))

    @contextmanager
    def turn(self) -> Iterator[Path]:
        """Wait for this request's turn, then give it a fresh work folder, removed afterwards; raise QueueFull
        when the queue is full."""
        with self._state:
            if self._admitted > self.depth:
                raise QueueFull(f"the agent is busy: one benchmark running and {self.depth} waiting")
            self._admitted += 1
        try:
            with self._worker:
                workdir = tempfile.mkdtemp(prefix="hwopt-agent-")
                self._workdirs.add(workdir)
                try:
                    yield Path(workdir)
                finally:
                    self._workdirs.discard(workdir)
                    shutil.rmtree(workdir, ignore_errors=True)
        finally:
            with self._state:
                self._admitted -= 1

    def remove_workdirs(self) -> None:
        """At shutdown, the folder of a run that is cut short (its thread dies with the process)."""
        for workdir in list(self._workdirs):
            shutil.rmtree(workdir, ignore_errors=True)


class QueueFull(HwoptError):
    """Every place in the agent's queue is taken."""


class Reply(Exception):
    """A request's answer, raised from wherever it becomes known."""

    def __init__(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        super().__init__(status)
        self.status = status
        self.body = body
        self.headers = headers or {}


def error_reply(status: int, message: str, headers: dict[str, str] | None = None) -> Reply:
    return Reply(status, {"error": " ".join(message.split())}, headers)


class AgentRequestHandler(BaseHTTPRequestHandler):
    server: AgentServer
    server_version = "hwopt-agent"
    timeout = SOCKET_TIMEOUT_S

    def do_GET(self) -> None:
        self._answer()

    def do_POST(self) -> None:
        self._answer()

    def _answer(self) -> None:
        started = time.monotonic()
        self._unread = self._declared_length()
        try:
            reply = self._route()
        except Reply as raised:
            reply = raised
        except Exception as error:  # noqa: BLE001 - a bug in hwopt or a library fails this request only
            if self.server.debug:
                traceback.print_exc()
            reply = error_reply(500, f"internal error in the agent: {type(error).__name__}: {error}")
        self._send(reply)
        line = f'{self.client_address[0]} "{self.command} {urlsplit(self.path).path}" {reply.status} ' \
               f"{time.monotonic() - started:.1f}s"
        self.server.log(line + (f" {reply.body['error']}" if "error" in reply.body else ""))

    def _route(self) -> Reply:
        self._authorize()
        path = urlsplit(self.path).path.rstrip("/")
        routes = {HEALTH_PATH: ("GET", self._health), BENCH_PATH: ("POST", self._bench)}
        if path not in routes:
            raise error_reply(404, f"no endpoint {path or '/'}; the agent has {HEALTH_PATH} and {BENCH_PATH}")
        method, handler = routes[path]
        if self.command != method:
            raise error_reply(405, f"{path} takes {method}, not {self.command}", {"Allow": method})
        return handler()

    def _authorize(self) -> None:
        scheme, _, given = (self.headers.get("Authorization") or "").partition(" ")
        # compare_digest: the time a comparison takes must not tell an attacker how much of a guess was right.
        matches = hmac.compare_digest(given.strip().encode(), self.server.token.encode())
        if scheme.lower() != "bearer" or not matches:
            raise error_reply(401, "wrong or missing token (send Authorization: Bearer TOKEN)",
                              {"WWW-Authenticate": 'Bearer realm="hwopt-agent"'})

    def _health(self) -> Reply:
        from optimizer import __version__

        queue = self.server.queue
        return Reply(200, {"hwopt": __version__, "runtimes": self.server.runtimes, "busy": queue.busy,
                           "queued": queue.queued, "max_upload_bytes": self.server.max_upload_bytes})

    def _bench(self) -> Reply:
        if "Transfer-Encoding" in self.headers or self._unread is None:
            raise error_reply(411, "the upload needs a valid Content-Length (chunked uploads are refused)")
        if self._unread > self.server.max_upload_bytes:
            raise error_reply(413, f"the upload is {self._unread} bytes, more than this agent's cap of "
                              f"{self.server.max_upload_bytes} (optimize agent --max-upload)")
        try:
            folder_name, options = decode_options(self.headers.get(OPTIONS_HEADER))
        except BenchOptionsError as error:
            raise error_reply(400, str(error)) from None
        try:
            with self.server.queue.turn() as workdir:
                folder = workdir / folder_name
                self._receive(folder)
                try:
                    report = self.server.bench(folder, options)
                except HwoptError as error:
                    raise error_reply(422, _without(str(error), workdir)) from None
        except QueueFull as error:
            raise error_reply(503, str(error), {"Retry-After": str(RETRY_AFTER_S)}) from None
        return Reply(200, report.to_dict())

    def _receive(self, folder: Path) -> None:
        body = _BodyReader(self.rfile, self._unread)
        try:
            unpack_artifact(body, folder, max_bytes=self.server.max_upload_bytes)
        except UploadTooLarge as error:
            raise error_reply(413, str(error)) from None
        except ArtifactError as error:
            raise error_reply(400, f"corrupt or invalid artifact: {_without(str(error), folder.parent)}") from None
        finally:
            self._unread = body.remaining

    def _declared_length(self) -> int | None:
        text = (self.headers.get("Content-Length") or "").strip()
        return int(text) if text.isdigit() else None

    def _send(self, reply: Reply) -> None:
        if self._unread and self._unread <= DRAIN_MAX_BYTES:
            try:
                self.rfile.read(self._unread)
            except OSError:
                pass
        payload = json.dumps(reply.body).encode()
        try:
            self.send_response(reply.status)
            for key, value in {"Content-Type": "application/json", "Content-Length": str(len(payload)),
                               **reply.headers}.items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(payload)
        except OSError:  # the client left before its answer; nothing more to do for it
            self.close_connection = True

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """http.server's own errors (a malformed request line, an unknown method) as JSON too."""
        self._unread = 0
        self._send(error_reply(code, message or self.responses.get(code, ("error",))[0]))
        self.server.log(f'{self.client_address[0]} "{self.requestline[:80]}" {code}')

    def log_request(self, code: Any = "-", size: Any = "-") -> None:
        """Logged once per request by `_answer`, with the time it took."""

    def log_message(self, format: str, *args: Any) -> None:
        self.server.log(format % args)


class _BodyReader:
    """The request body: reads stop at its Content-Length, since the socket would otherwise wait for more."""

    def __init__(self, stream, length: int) -> None:
        self._stream = stream
        self.remaining = length

    def read(self, size: int = -1) -> bytes:
        if size < 0 or size > self.remaining:
            size = self.remaining
        data = self._stream.read(size) if size else b""
        self.remaining -= len(data)
        return data


def installed_runtimes() -> dict[str, dict[str, Any]]:
    """Runtime -> its version here (None: not installed) and whether it runs here, as the backends say."""
    from optimizer.backends.registry import BUILT, get_backend

    runtimes = {}
    for name in BUILT:
        try:
            capabilities = get_backend(name).capabilities()
            runtimes[name] = {"version": capabilities.version, "runs_here": capabilities.runs_here}
        except Exception:  # noqa: BLE001 - a runtime that cannot say its version cannot run here
            runtimes[name] = {"version": None, "runs_here": False}
    return runtimes


def _without(message: str, folder: Path) -> str:
    """The message without the agent's temporary folder: the host knows the artifact by its own name."""
    return message.replace(f"{folder}{os.sep}", "")
