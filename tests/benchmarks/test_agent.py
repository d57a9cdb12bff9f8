"""The benchmark agent, served in this process on 127.0.0.1: its protocol, its refusals, its queue, and a real
remote run whose report reads like a local one. One test starts `optimize agent` as a command."""

import http.client
import io
import itertools
import json
import os
import signal
import subprocess
import sys
import tarfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from optimizer.benchmarks.agent.client import (
    RemoteBenchError,
    agent_health,
    agent_url,
    remote_bench,
)
from optimizer.benchmarks.agent.protocol import BENCH_PATH, HEALTH_PATH, OPTIONS_HEADER, TOKEN_ENV
from optimizer.benchmarks.agent.server import AgentServer
from optimizer.benchmarks.agent.transfer import (
    TransferError,
    UploadTooLarge,
    pack_artifact,
    unpack_artifact,
)

import optimizer
from optimizer.artifact import MANIFEST_FILE, ArtifactError, load_artifact
from optimizer.cli import main
from optimizer.commands.agent import parse_size
from optimizer.errors import HwoptError, UsageError
from optimizer.examples.make_demo_model import build_demo_model
from optimizer.ir import save_model

TOKEN = "test-secret"
pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def artifact(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("agent")
    save_model(build_demo_model(), folder / "demo.onnx")
    optimizer.optimize(folder / "demo.onnx", target="cpu", runtime="onnxruntime", output_dir=folder / "demo-hwopt",
                       benchmark=False, threads=1)
    return folder / "demo-hwopt"


@contextmanager
def running_agent(bench_function=None, **settings):
    """An agent on a free port of 127.0.0.1, served by a thread; yields (server, url)."""
    server = AgentServer("127.0.0.1", 0, token=TOKEN, quiet=True, bench_function=bench_function, **settings)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server, server.url
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


class StandIn:
    """A bench function that records its calls and returns `make_report`'s report, after `delay_s`."""

    def __init__(self, make_report, delay_s=0.0, error=None):
        self.make_report = make_report
        self.delay_s = delay_s
        self.error = error
        self.calls = []
        self.intervals = []

    def __call__(self, folder, **options):
        entered = time.monotonic()
        self.calls.append((Path(folder), options, sorted(p.name for p in Path(folder).iterdir())))
        time.sleep(self.delay_s)
        self.intervals.append((entered, time.monotonic()))
        if self.error is not None:
            raise self.error
        return self.make_report()


def request(url, method, path, *, body=b"", token=TOKEN, headers=None):
    """A raw request: (status, headers, JSON answer)."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    sent = {"Authorization": f"Bearer {token}"} if token is not None else {}
    sent.update(headers or {})
    try:
        connection.request(method, path, body=body or None, headers=sent)
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), json.loads(response.read())
    finally:
        connection.close()


def packed(folder: Path) -> bytes:
    """The artifact as the client uploads it, without the client's own checks (to send a corrupt one)."""
    stream = io.BytesIO()
    pack_artifact(load_artifact(folder, check_files=False), stream)
    return stream.getvalue()


def tar_gz(entries) -> bytes:
    """A tar.gz of (TarInfo, bytes or None) entries, built by hand to hold what pack_artifact never writes."""
    stream = io.BytesIO()
    with tarfile.open(fileobj=stream, mode="w:gz") as archive:
        for info, data in entries:
            if data is not None:
                info.size = len(data)
            archive.addfile(info, io.BytesIO(data) if data is not None else None)
    return stream.getvalue()


def manifest_entry(folder: Path):
    data = (folder / MANIFEST_FILE).read_bytes()
    return tarfile.TarInfo(MANIFEST_FILE), data


# --- the token ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("token", [None, "wrong-secret", ""])
def test_every_request_without_the_right_token_gets_401(artifact, make_report, token):
    bench = StandIn(make_report)
    with running_agent(bench) as (_, url):
        status, headers, answer = request(url, "GET", HEALTH_PATH, token=token)
        assert status == 401 and "Bearer" in headers["WWW-Authenticate"] and "token" in answer["error"]
        status, _, _ = request(url, "POST", BENCH_PATH, token=token, body=packed(artifact),
                               headers={"Content-Length": str(len(packed(artifact)))})
        assert status == 401
        with pytest.raises(RemoteBenchError, match=f"wrong or missing token for {url} \\(401\\)"):
            remote_bench(artifact, url, "wrong-secret")
    assert bench.calls == []


def test_the_agent_refuses_to_start_without_a_token(monkeypatch, capsys):
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    assert main(["agent", "--port", "0"]) == 2
    assert "needs a token" in capsys.readouterr().err
    with pytest.raises(UsageError):
        AgentServer("127.0.0.1", 0, token="")


def test_health_says_what_the_agent_runs_and_how_busy_it_is(make_report):
    with running_agent(StandIn(make_report), max_upload_bytes=12345) as (_, url):
        health = agent_health(url, TOKEN)
    assert health["hwopt"] == optimizer.__version__
    assert health["runtimes"]["onnxruntime"]["runs_here"] is True
    assert health["busy"] is False and health["queued"] == 0 and health["max_upload_bytes"] == 12345


# --- a real run, and what the client sends ----------------------------------------------------------------


@pytest.mark.slow
def test_a_remote_run_reports_what_a_local_run_reports(artifact):
    from optimizer.benchmarks.runner import bench

    options = {"batches": (1, 2), "time_budget_s": 0.3, "threads": 1}
    local = bench(artifact, **options)
    with running_agent() as (_, url):
        remote = remote_bench(artifact, url, TOKEN, **options)
    assert remote.to_dict().keys() == local.to_dict().keys()
    assert remote.source == url and local.source == "local"
    assert remote.model == local.model  # name from the optimize report, path of the local folder
    assert (remote.label, remote.runtime, remote.precision, remote.fidelity) == \
        (local.label, local.runtime, local.precision, local.fidelity)
    assert [b.batch for b in remote.batches] == [1, 2] and remote.batches[0].latency.p50_ms > 0
    assert remote.environment is not None and remote.memory is not None and remote.operators


def test_the_options_reach_the_bench_and_the_upload_is_removed_after(artifact, make_report):
    bench = StandIn(make_report)
    with running_agent(bench) as (_, url):
        report = remote_bench(artifact, url, TOKEN, batches=[1, 4], threads=2, runs=7, time_budget_s=0.5,
                              label="mine", profile_operators=False)
    ((folder, options, files),) = bench.calls
    assert options == {"batches": [1, 4], "threads": 2, "runs": 7, "time_budget_s": 0.5, "label": "mine",
                       "profile_operators": False}
    assert folder.name == artifact.name and not folder.exists()
    assert files == sorted(p.name for p in artifact.iterdir())  # the manifest's files, the manifest, the report
    assert report.source == url and report.model.path == str(artifact.resolve())


def test_bad_bench_options_get_400(artifact, make_report):
    bench = StandIn(make_report)
    body = packed(artifact)
    with running_agent(bench) as (_, url):
        for options in ('{"batches": [0]}', '{"inputs": "/etc/passwd"}', "not json", '{"runs": true}'):
            status, _, answer = request(url, "POST", BENCH_PATH, body=body,
                                        headers={OPTIONS_HEADER: options, "Content-Length": str(len(body))})
            assert status == 400, options
            assert "\n" not in answer["error"]
    assert bench.calls == []


# --- sizes ---------------------------------------------------------------------------------------------------


def test_an_upload_over_the_cap_gets_413_and_the_agent_serves_on(artifact, make_report):
    bench = StandIn(make_report)
    body = packed(artifact)
    with running_agent(bench, max_upload_bytes=len(body) - 1) as (_, url):
        status, _, answer = request(url, "POST", BENCH_PATH, body=body, headers={"Content-Length": str(len(body))})
        assert status == 413 and "--max-upload" in answer["error"]
        with pytest.raises(RemoteBenchError, match="more than the .* the agent at .* accepts"):
            remote_bench(artifact, url, TOKEN)
        assert agent_health(url, TOKEN)["busy"] is False
    assert bench.calls == []


def test_an_upload_that_unpacks_past_the_cap_gets_413(tmp_path, make_report):
    manifest = {"target": "cpu", "runtime": "onnxruntime", "runtime_version": "1", "device": "CPU",
                "precision": "fp32", "entry": "model.onnx", "inputs": [], "outputs": [], "schema_version": 1,
                "files": {"model.onnx": {"bytes": 4 << 20, "sha256": "0" * 64}}}
    body = tar_gz([(tarfile.TarInfo(MANIFEST_FILE), json.dumps(manifest).encode()),
                   (tarfile.TarInfo("model.onnx"), bytes(4 << 20))])  # 4 MiB of zeros: a few KiB of gzip
    bench = StandIn(make_report)
    with running_agent(bench, max_upload_bytes=1 << 20) as (_, url):
        status, _, answer = request(url, "POST", BENCH_PATH, body=body, headers={"Content-Length": str(len(body))})
    assert len(body) < 1 << 20 and status == 413 and "unpacks to more than" in answer["error"]
    with pytest.raises(UploadTooLarge):
        unpack_artifact(io.BytesIO(body), tmp_path / "out", max_bytes=1 << 20)
    assert bench.calls == []


def test_a_chunked_upload_gets_411(artifact, make_report):
    bench = StandIn(make_report)
    with running_agent(bench) as (_, url):
        parts = urlsplit(url)
        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
        connection.putrequest("POST", BENCH_PATH)
        connection.putheader("Authorization", f"Bearer {TOKEN}")
        connection.putheader("Transfer-Encoding", "chunked")
        connection.endheaders()  # the chunks would follow; the agent answers before wanting them
        assert connection.getresponse().status == 411
        connection.close()
        assert agent_health(url, TOKEN)["busy"] is False
    assert bench.calls == []


# --- corrupt and hostile uploads -------------------------------------------------------------------------------


def test_a_corrupt_artifact_gets_400_naming_the_file_and_the_agent_serves_on(artifact, make_report, tmp_path):
    corrupt = tmp_path / "corrupt-hwopt"
    corrupt.mkdir()
    for path in artifact.iterdir():
        (corrupt / path.name).write_bytes(path.read_bytes())
    model = bytearray((corrupt / "model.onnx").read_bytes())
    model[len(model) // 2] ^= 0xFF
    (corrupt / "model.onnx").write_bytes(bytes(model))
    bench = StandIn(make_report)
    body = packed(corrupt)
    with running_agent(bench) as (_, url):
        status, _, answer = request(url, "POST", BENCH_PATH, body=body, headers={"Content-Length": str(len(body))})
        assert status == 400
        assert "model.onnx" in answer["error"] and "checksum" in answer["error"]
        assert "hwopt-agent-" not in answer["error"]  # the agent's temporary folder means nothing to the host
        with pytest.raises(ArtifactError, match="model.onnx: checksum"):  # the client checks before uploading
            remote_bench(corrupt, url, TOKEN)
        assert bench.calls == []
        assert remote_bench(artifact, url, TOKEN).source == url
    assert len(bench.calls) == 1


def _link(name, kind, target="model.onnx"):
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    return info, None


def _device(name):
    info = tarfile.TarInfo(name)
    info.type, info.devmajor, info.devminor = tarfile.CHRTYPE, 1, 3
    return info, None


@pytest.mark.parametrize(("entry", "message"), [
    (lambda: (tarfile.TarInfo("../escaped.txt"), b"x"), "outside the artifact"),
    (lambda: (tarfile.TarInfo("sub/../../escaped.txt"), b"x"), "outside the artifact"),
    (lambda: (tarfile.TarInfo("/tmp/escaped.txt"), b"x"), "outside the artifact"),
    (lambda: _link("model.onnx", tarfile.SYMTYPE, "/etc/passwd"), "not a regular file"),
    (lambda: _link("model.onnx", tarfile.LNKTYPE, "manifest.json"), "not a regular file"),
    (lambda: _device("model.onnx"), "not a regular file"),
    (lambda: (tarfile.TarInfo("extra.py"), b"print('hi')"), "not listed in its manifest"),
    (lambda: (tarfile.TarInfo("model.onnx"), b"short"), "the manifest says"),
], ids=["dotdot", "inner-dotdot", "absolute", "symlink", "hardlink", "device", "unlisted", "wrong-size"])
def test_archive_entries_that_could_land_outside_or_lie_are_refused(artifact, make_report, tmp_path, entry,
                                                                     message):
    body = tar_gz([manifest_entry(artifact), entry()])
    bench = StandIn(make_report)
    with running_agent(bench) as (_, url):
        status, _, answer = request(url, "POST", BENCH_PATH, body=body, headers={"Content-Length": str(len(body))})
        assert status == 400 and message in answer["error"]
        assert remote_bench(artifact, url, TOKEN).source == url
    with pytest.raises(TransferError, match=message):
        unpack_artifact(io.BytesIO(body), tmp_path / "deep" / "out", max_bytes=1 << 30)
    assert not (tmp_path / "escaped.txt").exists() and not (tmp_path / "deep" / "escaped.txt").exists()
    assert len(bench.calls) == 1


@pytest.mark.parametrize(("body", "message"), [
    (b"not a gzip at all", "not a readable tar.gz"),
    (lambda folder: packed(folder)[:-300], "not a readable tar.gz"),
    (lambda folder: tar_gz([(tarfile.TarInfo("model.onnx"), b"x")]), "must start with manifest.json"),
    (lambda folder: tar_gz([]), "empty"),
    (lambda folder: tar_gz([manifest_entry(folder), manifest_entry(folder)]), "twice"),
    (lambda folder: tar_gz([manifest_entry(folder)]), "missing"),
], ids=["not-gzip", "truncated", "manifest-not-first", "empty", "twice", "file-missing"])
def test_uploads_that_are_not_whole_artifacts_are_refused(artifact, tmp_path, body, message):
    body = body(artifact) if callable(body) else body
    with pytest.raises(TransferError if message != "missing" else ArtifactError, match=message):
        unpack_artifact(io.BytesIO(body), tmp_path / "out", max_bytes=1 << 30)


# --- one benchmark at a time --------------------------------------------------------------------------------


def test_concurrent_benchmarks_run_one_at_a_time_while_health_answers(artifact, make_report):
    bench = StandIn(make_report, delay_s=0.4)
    errors, seen_busy = [], []
    with running_agent(bench) as (_, url):
        def client():
            try:
                remote_bench(artifact, url, TOKEN)
            except HwoptError as error:
                errors.append(error)

        clients = [threading.Thread(target=client) for _ in range(3)]
        for thread in clients:
            thread.start()
        deadline = time.monotonic() + 30
        while any(thread.is_alive() for thread in clients) and time.monotonic() < deadline:
            health = agent_health(url, TOKEN)
            seen_busy.append((health["busy"], health["queued"]))
            time.sleep(0.05)
        for thread in clients:
            thread.join(30)
    assert errors == [] and len(bench.intervals) == 3
    intervals = sorted(bench.intervals)
    assert all(left[1] <= right[0] for left, right in itertools.pairwise(intervals))
    assert any(busy and queued >= 1 for busy, queued in seen_busy)


def test_a_full_queue_gets_503(artifact, make_report):
    release = threading.Event()

    def blocking_bench(folder, **options):
        release.wait(30)
        return make_report()

    body = packed(artifact)
    with running_agent(blocking_bench, queue_depth=0) as (_, url):
        first = threading.Thread(target=remote_bench, args=(artifact, url, TOKEN))
        first.start()
        while not agent_health(url, TOKEN)["busy"]:
            time.sleep(0.02)
        status, headers, answer = request(url, "POST", BENCH_PATH, body=body,
                                          headers={"Content-Length": str(len(body))})
        assert status == 503 and "busy" in answer["error"] and headers["Retry-After"]
        with pytest.raises(RemoteBenchError, match="is busy \\(503"):
            remote_bench(artifact, url, TOKEN)
        release.set()
        first.join(30)
        assert remote_bench(artifact, url, TOKEN).source == url


# --- failures on the agent -------------------------------------------------------------------------------------


def test_a_failed_benchmark_gets_422_and_a_crash_500_and_the_agent_serves_on(artifact, make_report):
    bench = StandIn(make_report, error=HwoptError("input 'image' has type string"))
    with running_agent(bench) as (_, url):
        with pytest.raises(RemoteBenchError, match=f"the benchmark failed on {url} \\(422: input 'image'"):
            remote_bench(artifact, url, TOKEN)
        bench.error = ZeroDivisionError("division by zero")
        with pytest.raises(RemoteBenchError, match="\\(500: internal error in the agent: ZeroDivisionError"):
            remote_bench(artifact, url, TOKEN)
        bench.error = None
        assert remote_bench(artifact, url, TOKEN).source == url
    assert len(bench.calls) == 3 and not any(folder.exists() for folder, _, _ in bench.calls)


def test_unreachable_agents_and_bad_urls_are_one_line_errors(artifact, make_report):
    with running_agent(StandIn(make_report)) as (_, url):
        pass  # stopped: nothing listens on its port any more
    with pytest.raises(RemoteBenchError, match=f"cannot reach the agent at {url}: connection refused"):
        remote_bench(artifact, url, TOKEN)
    with pytest.raises(UsageError, match="not an agent URL"):
        remote_bench(artifact, "ftp://device:21", TOKEN)
    assert agent_url("device:8765/") == "http://device:8765"


# --- the command -----------------------------------------------------------------------------------------------


def test_optimize_agent_serves_until_sigterm(tmp_path):
    environment = {**os.environ, TOKEN_ENV: TOKEN}
    process = subprocess.Popen([sys.executable, "-m", "optimizer", "agent", "--port", "0", "--quiet"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environment,
                               cwd=tmp_path)
    try:
        line = process.stdout.readline()
        assert line.startswith("hwopt agent listening on http://127.0.0.1:"), line + process.stderr.read()
        url = line.split()[-1]
        assert agent_health(url, TOKEN)["busy"] is False
        assert request(url, "GET", HEALTH_PATH, token="wrong")[0] == 401
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.stderr.read() == ""


def test_a_port_in_use_is_a_one_line_error(make_report, capsys):
    with running_agent(StandIn(make_report)) as (server, _):
        port = server.server_address[1]
        assert main(["agent", "--port", str(port), "--token", TOKEN]) == 1
    assert f"cannot listen on 127.0.0.1:{port}" in capsys.readouterr().err


@pytest.mark.parametrize(("text", "size"), [("500M", 500 << 20), ("2G", 2 << 30), ("1.5GiB", 3 << 29),
                                            ("4096", 4096), ("64kb", 64 << 10)])
def test_upload_sizes_read_like_people_write_them(text, size):
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["", "0", "-1G", "2X", "G"])
def test_sizes_that_are_not_sizes_are_refused(text):
    with pytest.raises(Exception, match="expected a size"):
        parse_size(text)
