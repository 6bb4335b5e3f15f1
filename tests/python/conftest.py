"""Fixtures for the boto3 suite: the embedded SQS endpoint and clients for it.

The endpoint is the product itself: `sqs-barrier local --bind 127.0.0.1:0`,
which prints its URL on its first line and stops on SIGTERM. `scripts/test`
exports the binary's path as SQS_BARRIER_BIN (cargo test has built it);
without that variable the fixture builds it with cargo.
SQS_BARRIER_TEST_ENDPOINT=http://... points the suite at an already running
endpoint instead (for debugging).
"""

import os
import selectors
import subprocess
import uuid
from pathlib import Path

import boto3
import pytest
from botocore.config import Config

ROOT = Path(__file__).resolve().parents[2]
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
