"""`optimize agent`: serve benchmarks on this device to hosts that upload artifacts to it.

    optimize agent [--host 127.0.0.1] [--port 8765] [--token SECRET] [--max-upload 4G] [--queue 8]

The host runs `optimize bench ARTIFACT --remote http://THIS-DEVICE:8765 --token SECRET`. Ctrl-C or SIGTERM
stops the agent (exit 0).
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import re
import signal
import sys

from optimizer.benchmarks.agent.protocol import (
    DEFAULT_HOST,
    DEFAULT_MAX_UPLOAD_BYTES,
    DEFAULT_PORT,
    DEFAULT_QUEUE_DEPTH,
    TOKEN_ENV,
)
from optimizer.cli import PROG, Parser, positive_int
from optimizer.errors import HwoptError, UsageError

_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?", re.IGNORECASE)
_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog=f"{PROG} agent", description="Benchmark artifacts uploaded by hosts "
                    "(`optimize bench ARTIFACT --remote URL`) on this device, one at a time, and send back "
                    "the reports. Plain HTTP: on any other network than this machine, anyone who sees the "
                    "traffic sees the token.")
    parser.add_argument("--host", default=DEFAULT_HOST,
                        help=f"address to listen on (default {DEFAULT_HOST}: this machine only; 0.0.0.0: all)")
    parser.add_argument("--port", type=_port, default=DEFAULT_PORT, help=f"default {DEFAULT_PORT}; 0: any free")
    parser.add_argument("--token", help=f"the secret every request must send (default: ${TOKEN_ENV}, which, "
                        "unlike an option, other users cannot read in the process list)")
    parser.add_argument("--max-upload", type=parse_size, default=DEFAULT_MAX_UPLOAD_BYTES, metavar="SIZE",
                        help="largest artifact accepted, packed or unpacked, e.g. 500M, 2G (default 4G)")
    parser.add_argument("--queue", type=_queue_depth, default=DEFAULT_QUEUE_DEPTH, metavar="N",
                        help=f"benchmarks that may wait behind the running one; more are refused with 503 "
                        f"(default {DEFAULT_QUEUE_DEPTH})")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of the agent's internal errors")
    parser.add_argument("--quiet", "-q", action="store_true", help="no line per request on stderr")
    return parser


def run(args: argparse.Namespace) -> int:
    from optimizer.benchmarks.agent.server import AgentServer

    token = args.token or os.environ.get(TOKEN_ENV)
    if not token:
        raise UsageError(f"the agent needs a token: --token SECRET or ${TOKEN_ENV}; hosts send it with "
                         "`optimize bench --remote URL --token SECRET`")
    try:
        server = AgentServer(args.host, args.port, token=token, max_upload_bytes=args.max_upload,
                             queue_depth=args.queue, quiet=args.quiet, debug=args.debug)
    except OSError as error:
        raise HwoptError(f"cannot listen on {args.host}:{args.port} ({error.strerror or error})") from None
    if not args.quiet and not _is_loopback(args.host):
        print(f"{PROG} agent: warning: plain HTTP on {args.host}: use it on a network you trust (or behind a "
              "TLS proxy); the token and the artifacts cross it unencrypted", file=sys.stderr)
    print(f"hwopt agent listening on {server.url}", flush=True)
    previous = signal.signal(signal.SIGTERM, _stop)
    try:
        server.serve_forever()
    except (KeyboardInterrupt, _Stopped):
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        server.server_close()
    if not args.quiet:
        print(f"{PROG} agent: stopped", file=sys.stderr)
    return 0


class _Stopped(Exception):
    """Raised by the SIGTERM handler to leave serve_forever, as Ctrl-C does with KeyboardInterrupt."""


def _stop(signum, frame) -> None:
    raise _Stopped


def parse_size(text: str) -> int:
    """`500M`, `2G`, `1.5GiB`, `4096` -> bytes (units are powers of 1024)."""
    match = _SIZE.fullmatch(text.strip())
    size = int(float(match.group(1)) * _UNITS[match.group(2).lower()]) if match else 0
    if size < 1:
        raise argparse.ArgumentTypeError(f"expected a size such as 500M or 2G, not '{text}'")
    return size


def _port(text: str) -> int:
    if not text.isdigit() or int(text) > 65535:
        raise argparse.ArgumentTypeError(f"expected a port number from 0 to 65535, not '{text}'")
    return int(text)


def _queue_depth(text: str) -> int:
    return 0 if text.strip() == "0" else positive_int(text)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
