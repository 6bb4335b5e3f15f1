"""Fixtures for the boto3 suite: the embedded SQS endpoint and clients for it.

The endpoint is the product itself: `sqs-barrier local --bind 127.0.0.1:0`,
which prints its URL on its first line and stops on SIGTERM. `scripts/test`
exports the binary's path as SQS_BARRIER_BIN (cargo test has built it);
without that variable the fixture builds it with cargo.
SQS_BARRIER_TEST_ENDPOINT=http://... points the suite at an already running
endpoint instead (for debugging).

For the package's tests (test_package.py, test_membership.py): moto_server
(SQS_BARRIER_MOTO_SERVER) behind the test kit's quota proxy
(`sqs-barrier-quota-proxy`, built beside the CLI), which applies SQS's
tagging quota that moto lacks, as the Rust tests' moto does; `sqs_url` that
runs a test on both endpoints, placeholder credentials, and child processes
(member.py, the CLI) that are stopped when the test ends.
"""

import os
import selectors
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import boto3
import pytest
from botocore.config import Config

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
MEMBER = HERE / "member.py"
PYTHON = sys.executable
STARTUP_TIMEOUT_S = 30


def cli_env(endpoint_url: str) -> dict:
    """The environment of a child process (the CLI, a Python member) that
    reaches `endpoint_url` through the standard AWS settings, with
    placeholder credentials and nothing of the caller's profile."""
    env = dict(os.environ)
    env.update(
        AWS_ENDPOINT_URL=endpoint_url,
        AWS_REGION="us-east-1",
        AWS_ACCESS_KEY_ID="local",
        AWS_SECRET_ACCESS_KEY="local",
    )
    env.pop("AWS_PROFILE", None)
    env.pop("AWS_ENDPOINT_URL_SQS", None)
    return env


def _server_binary() -> Path:
    configured = os.environ.get("SQS_BARRIER_BIN")
    if configured:
        path = Path(configured)
        if not path.is_file():
            pytest.fail(f"SQS_BARRIER_BIN={path} does not exist")
        return path
    subprocess.run(["cargo", "build", "-q", "-p", "sqs-barrier-cli"], cwd=ROOT, check=True)
    target = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    return target / "debug" / "sqs-barrier"


def _quota_proxy_binary() -> Path:
    """The test kit's `sqs-barrier-quota-proxy`: beside SQS_BARRIER_BIN
    (cargo test builds both), else built here with cargo."""
    name = "sqs-barrier-quota-proxy"
    configured = os.environ.get("SQS_BARRIER_BIN")
    if configured:
        path = Path(configured).parent / name
        if path.is_file():
            return path
    subprocess.run(
        ["cargo", "build", "-q", "-p", "sqs-barrier-testkit", "--bin", name], cwd=ROOT, check=True
    )
    target = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    return target / "debug" / name


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _read_first_line(proc: subprocess.Popen, timeout_s: float) -> str:
    """Reads the server's first stdout line, failing after timeout_s."""
    selector = selectors.DefaultSelector()
    selector.register(proc.stdout, selectors.EVENT_READ)
    if not selector.select(timeout_s):
        proc.kill()
        pytest.fail(f"test server printed nothing within {timeout_s} s")
    return proc.stdout.readline().strip()


@pytest.fixture(scope="session")
def endpoint_url():
    external = os.environ.get("SQS_BARRIER_TEST_ENDPOINT")
    if external:
        yield external
        return
    proc = subprocess.Popen(
        [str(_server_binary()), "local", "--bind", "127.0.0.1:0"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        line = _read_first_line(proc, STARTUP_TIMEOUT_S)
        urls = [word for word in line.split() if word.startswith("http://")]
        if not urls:
            pytest.fail(f"no endpoint URL in the first line of sqs-barrier local: {line!r}")
        yield urls[0]
    finally:
        # SIGTERM is how operators stop it: it must exit promptly and cleanly.
        proc.terminate()
        try:
            code = proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            pytest.fail("sqs-barrier local did not stop within 10 s of SIGTERM")
        if code != 0:
            pytest.fail(f"sqs-barrier local exited with {code} after SIGTERM")


def make_client(endpoint_url: str, **config):
    """A boto3 SQS client with dummy credentials and no retries, so each test
    sees exactly what the endpoint answered."""
    return boto3.client(
        "sqs",
        endpoint_url=endpoint_url,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=Config(retries={"max_attempts": 1}, **config),
    )


@pytest.fixture
def sqs(endpoint_url):
    return make_client(endpoint_url)


@pytest.fixture
def unique():
    """Returns a function making queue names unique within the session (one
    server serves every test)."""
    token = uuid.uuid4().hex[:10]

    def name(base: str) -> str:
        if base.endswith(".fifo"):
            return f"{base[: -len('.fifo')]}-{token}.fifo"
        return f"{base}-{token}"

    return name


# --------------------------------------------------------------------------
# the package's tests: endpoints


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def moto_url(tmp_path_factory):
    program = os.environ.get("SQS_BARRIER_MOTO_SERVER")
    if not program or not Path(program).is_file():
        pytest.fail(
            "SQS_BARRIER_MOTO_SERVER does not name moto_server: run scripts/test, "
            "which installs moto into .venv and exports it"
        )
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    for _ in range(5):
        port = _free_port()
        with open(log, "w") as out:
            proc = subprocess.Popen(
                [program, "-H", "127.0.0.1", "-p", str(port)],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 30
        up = False
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                up = True
                break
            except OSError:
                time.sleep(0.1)
        if up:
            try:
                # Clients talk to moto through the tagging quota's proxy.
                proxy = subprocess.Popen(
                    [str(_quota_proxy_binary()), "--upstream", f"127.0.0.1:{port}"],
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    text=True,
                )
                try:
                    line = _read_first_line(proxy, STARTUP_TIMEOUT_S)
                    urls = [word for word in line.split() if word.startswith("http://")]
                    if not urls:
                        pytest.fail(f"no URL in the first line of the quota proxy: {line!r}")
                    yield urls[0]
                finally:
                    _stop(proxy)
            finally:
                _stop(proc)
            return
        proc.kill()
        proc.wait()
    pytest.fail(f"moto_server did not start; its log:\n{log.read_text()}")


@pytest.fixture(params=["embedded", "moto"])
def sqs_url(request):
    """Each test with this fixture runs on both endpoints."""
    return request.getfixturevalue("endpoint_url" if request.param == "embedded" else "moto_url")


@pytest.fixture
def aws_env(monkeypatch):
    """Placeholder credentials for this process (the keyword endpoint_url
    picks the endpoint) and a function making the environment of child
    processes, which find the endpoint through AWS_ENDPOINT_URL."""
    creds = {
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_REGION": "us-east-1",
    }
    for key, value in creds.items():
        monkeypatch.setenv(key, value)
    for key in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SQS"):
        monkeypatch.delenv(key, raising=False)

    def child_env(url: str) -> dict:
        env = dict(os.environ, AWS_ENDPOINT_URL=url, PYTHONUNBUFFERED="1")
        env["PYTHONPATH"] = str(HERE)
        return env

    return child_env


@pytest.fixture
def name():
    return f"py-{uuid.uuid4().hex[:10]}"


# --------------------------------------------------------------------------
# the package's tests: processes


class Procs:
    """Child processes, killed when the test ends however it ends."""

    def __init__(self, env: dict):
        self.env = env
        self.children = []

    def spawn(self, argv, stdin=subprocess.DEVNULL):
        proc = subprocess.Popen(
            [str(a) for a in argv],
            env=self.env,
            stdin=stdin,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.children.append(proc)
        return proc

    def member(self, barrier, member, *args, stdin=subprocess.DEVNULL):
        return self.spawn([PYTHON, MEMBER, barrier, member, *args], stdin=stdin)

    def cli(self, *args):
        return self.spawn([_server_binary(), *args])

    def cli_wait(self, barrier, member, phase, timeout=60, status_interval=80):
        return self.cli(
            "wait", "--barrier", barrier, "--id", member, "--phase", phase,
            "--timeout", timeout, "--status-interval", status_interval,
        )

    def coordinator(self, barrier):
        return self.cli("coordinator", "--barrier", barrier)

    def stop_all(self):
        for proc in self.children:
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
        deadline = time.monotonic() + 10
        for proc in self.children:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@pytest.fixture
def procs_for(aws_env):
    made = []

    def make(url: str) -> Procs:
        p = Procs(aws_env(url))
        made.append(p)
        return p

    yield make
    for p in made:
        p.stop_all()


def finish(proc, timeout=90):
    """Waits for a child and returns (exit code, stdout, stderr)."""
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        pytest.fail(f"{proc.args} did not end within {timeout} s:\n{out}\n{err}")
    return proc.returncode, out, err


def wait_until_arrived(name, url, members, limit=30.0):
    """Until the coordinator has published the arrival of `members`."""
    import sqs_barrier  # here: the endpoint's own tests need no package

    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        st = sqs_barrier.status(name, probe=False, endpoint_url=url)
        if set(members) <= set(st["arrived"]):
            return st
        time.sleep(0.2)
    pytest.fail(f"{members} not published as arrived within {limit} s: {st}")
