"""Infrastructure of the Python client test: the classes generated from proto/, an
Apache Kafka broker of the test's own (scripts/kafka) and `loanctl up` against it.

Everything lives in a temporary folder; nothing is written to the source tree.
"""

import contextlib
import importlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import SimpleNamespace

import pytest

REPO = Path(__file__).resolve().parents[2]
PARTITIONS = 3

# What the failure report shows: the logs of the processes this run started.
_LOGS = {}


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def tail(path, lines=80):
    try:
        text = Path(path).read_text(errors="replace")
    except OSError as error:
        return f"({path}: {error})"
    return "\n".join(text.splitlines()[-lines:])


# ---------------------------------------------------------------- proto/


@pytest.fixture(scope="session")
def pb(tmp_path_factory):
    """The classes of proto/loan/v1, generated now with grpcio-tools' protoc."""
    out = tmp_path_factory.mktemp("generated")
    protos = sorted(str(p) for p in (REPO / "proto").glob("loan/v1/*.proto"))
    assert protos, "no .proto files under proto/loan/v1"
    result = subprocess.run(
        [sys.executable, "-m", "grpc_tools.protoc", f"-I{REPO / 'proto'}", f"--python_out={out}", *protos],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, f"protoc failed:\n{result.stderr}"
    sys.path.insert(0, str(out))
    try:
        modules = {name: importlib.import_module(f"loan.v1.{name}_pb2") for name in ("common", "inputs", "events", "outputs")}
    finally:
        sys.path.remove(str(out))
    return SimpleNamespace(**modules)


# ---------------------------------------------------------------- the broker


@pytest.fixture(scope="session")
def loanctl_bin():
    path = os.environ.get("LOANCTL", "")
    if not path or not os.access(path, os.X_OK):
        pytest.exit("LOANCTL must name the built loanctl binary (see tests/python/README.md)", returncode=2)
    return path


@contextlib.contextmanager
def kafka_broker(folder):
    """Starts an Apache Kafka broker (KRaft, one node) on a free port with its data in
    `folder`; yields "127.0.0.1:PORT" and stops it afterwards."""
    port = free_port()
    script = REPO / "scripts" / "kafka"
    _LOGS["broker.log"] = folder / "broker.log"
    started = subprocess.run([str(script), "start", "--port", str(port), "--dir", str(folder)], capture_output=True, text=True)
    if started.returncode != 0:
        subprocess.run([str(script), "stop", "--port", str(port), "--dir", str(folder)], capture_output=True)
        pytest.fail(f"scripts/kafka start failed:\n{started.stdout}{started.stderr}\n--- broker.log\n{tail(folder / 'broker.log')}")
    try:
        yield f"127.0.0.1:{port}"
    finally:
        subprocess.run([str(script), "stop", "--port", str(port), "--dir", str(folder)], capture_output=True, timeout=120)


@pytest.fixture(scope="session")
def broker(tmp_path_factory):
    """The session's broker, which the foreign-client story and the OpenAPI test share."""
    with kafka_broker(tmp_path_factory.mktemp("kafka")) as brokers:
        yield brokers


# ---------------------------------------------------------------- the ledger


class Ledger:
    """`loanctl up` running as a subprocess, with its HTTP API and the loanctl commands."""

    def __init__(self, loanctl, brokers, folder):
        self.loanctl_bin = loanctl
        self.brokers = brokers
        self.folder = folder
        self.api = f"http://127.0.0.1:{free_port()}"
        self.log = folder / "loanctl-up.log"
        _LOGS["loanctl up"] = self.log
        self.proc = None

    def loanctl(self, *args, brokers=True, timeout=60):
        """Runs a loanctl command; returns its stdout; fails the test on a non-zero exit."""
        argv = [self.loanctl_bin, *args] + (["--brokers", self.brokers] if brokers else [])
        result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=_env())
        assert result.returncode == 0, f"{' '.join(argv)} exited {result.returncode}:\n{result.stderr}"
        return result.stdout

    def start(self):
        # `up` alone on a brand-new broker, as a user starts it: it creates the topics
        # and waits until their partitions are led before it reads them.
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                [self.loanctl_bin, "up", "--brokers", self.brokers, "--data", str(self.folder / "data"),
                 "--http", self.api.removeprefix("http://"), "--partitions", str(PARTITIONS)],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=_env(),
            )
        self.wait(lambda: self.get("/v1/export", quiet=True) is not None, "GET /v1/export answers", timeout=60)

    def stop(self):
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def get(self, path, quiet=False):
        try:
            with urllib.request.urlopen(self.api + path, timeout=5) as response:
                return json.loads(response.read())
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            if quiet:
                return None
            raise

    def export(self):
        return self.get("/v1/export")

    def wait(self, predicate, what, timeout=60):
        """Polls `predicate()` until it is true; fails with `what` after `timeout` s."""
        deadline = time.monotonic() + timeout
        while True:
            if self.proc is not None and self.proc.poll() is not None:
                pytest.fail(f"loanctl up exited ({self.proc.returncode}) while waiting until {what}:\n{tail(self.log)}")
            value = predicate()
            if value:
                return value
            if time.monotonic() > deadline:
                pytest.fail(f"gave up after {timeout} s waiting until {what}")
            time.sleep(0.1)

    def wait_export(self, predicate, what, timeout=60):
        """Polls GET /v1/export until `predicate(export)`; returns that export."""
        found = {}

        def check():
            export = self.export()
            if predicate(export):
                found["export"] = export
                return True
            return False

        self.wait(check, what, timeout)
        return found["export"]


def _env():
    env = dict(os.environ)
    env["NO_COLOR"] = "1"
    return env


@contextlib.contextmanager
def running_ledger(loanctl, brokers, folder):
    """`loanctl up` against `brokers`, its data in `folder`, until the block ends."""
    ledger = Ledger(loanctl, brokers, folder)
    try:
        ledger.start()
        yield ledger
    finally:
        ledger.stop()


@pytest.fixture(scope="session")
def ledger(loanctl_bin, broker, tmp_path_factory):
    with running_ledger(loanctl_bin, broker, tmp_path_factory.mktemp("ledger")) as ledger:
        yield ledger


# ---------------------------------------------------------------- reporting


def pytest_runtest_setup(item):
    # The tests of a class marked incremental are the steps of one story: once a step
    # failed, the later ones are reported as not run rather than as failures of their own.
    if "incremental" in item.keywords and item.cls is not None:
        failed = getattr(item.cls, "_failed_step", None)
        if failed is not None:
            pytest.xfail(f"an earlier step failed: {failed}")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.failed:
        if "incremental" in item.keywords and item.cls is not None and call.excinfo is not None:
            item.cls._failed_step = item.name
        for name, path in _LOGS.items():
            report.sections.append((f"{name} (last lines)", tail(path)))
    return report


def pytest_configure(config):
    config.addinivalue_line("markers", "incremental: the tests are consecutive steps of one story")
