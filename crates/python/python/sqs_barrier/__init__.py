"""A reusable distributed barrier over Amazon SQS.

Processes that work in phases check in when they finish a phase; a
coordinator counts distinct check-ins and releases everyone; the same
barrier serves phase after phase. This package binds the Rust library
`sqs-barrier`: the protocol is the library's, so Python members, `sqs-barrier
wait` processes and Rust programs can wait at the same barrier.

    import sqs_barrier

    sqs_barrier.setup("etl", 3, members=["extract", "transform", "load"])
    barrier = sqs_barrier.Barrier("etl", "transform")
    phase, waited = barrier.wait(timeout=900)   # everyone finished phase 0

Members may bring a payload (a str) to a phase and receive everyone's,
join a running barrier, or leave it:

    released = barrier.wait(timeout=900, payload=json.dumps(stats))
    released.data                   # {"extract": "...", "transform": ...}
    late = sqs_barrier.Barrier.join("etl", "audit")   # expected from late.next_phase
    barrier.leave()                 # arrive at the next phase, expected no more

A coordinator must run: `sqs-barrier coordinator --barrier etl`, or
sqs_barrier.run_coordinator("etl") in some process. SQS is reached with the
standard AWS configuration (AWS_ENDPOINT_URL, AWS_REGION, AWS_PROFILE,
credentials), overridden by the endpoint_url, region and profile keywords
every function takes.

Errors are BarrierError and its subclasses TimedOut, Broken,
CoordinatorSilent, NotExpected, GatherLost, JoinError, NotSetUp,
EndpointError and ConfigError (with PayloadTooLarge).
"""

from __future__ import annotations

import contextlib
import signal
import threading
from typing import TYPE_CHECKING, Iterator, Optional

from . import _native

if TYPE_CHECKING:
    from ._native import _Event

from ._native import (
    Arrival,
    Barrier,
    LocalEndpoint,
    abort,
    setup,
    status,
    teardown,
)
from ._types import (
    BarrierError,
    Broken,
    ConfigError,
    CoordinatorSilent,
    EndpointError,
    GatherLost,
    JoinError,
    NotExpected,
    NotSetUp,
    PayloadTooLarge,
    Released,
    TimedOut,
)

__all__ = [
    "Arrival",
    "Barrier",
    "BarrierError",
    "Broken",
    "ConfigError",
    "CoordinatorSilent",
    "EndpointError",
    "GatherLost",
    "JoinError",
    "LocalEndpoint",
    "NotExpected",
    "NotSetUp",
    "PayloadTooLarge",
    "Released",
    "TimedOut",
    "abort",
    "local",
    "run_coordinator",
    "setup",
    "status",
    "teardown",
]


class _StopWhen:
    """Set when SIGTERM came or the caller's own stop object is set."""

    def __init__(self, stop) -> None:
        self.terminated = threading.Event()
        self.stop = stop

    def is_set(self) -> bool:
        return self.terminated.is_set() or (self.stop is not None and bool(self.stop.is_set()))


def run_coordinator(
    name: str,
    *,
    stop: Optional[_Event] = None,
    force: bool = False,
    endpoint_url: Optional[str] = None,
    region: Optional[str] = None,
    profile: Optional[str] = None,
) -> None:
    """Runs the coordinator of barrier `name` until it is stopped; blocks.

    It stops cleanly, as `sqs-barrier coordinator` does (the check-ins it
    holds are handed back and a last state marked "stopped" is published,
    so that a successor takes over at once):
    - on SIGTERM (`kill PID`, what systemd, Docker and Kubernetes send),
      when called in the main thread and SIGTERM has no handler of the
      program's own; then it returns None;
    - when `stop` is set (any object with an is_set() method, e.g. a
      threading.Event, looked at every 50 ms); then it returns None;
    - on Ctrl-C (SIGINT) in the main thread; then it raises
      KeyboardInterrupt. A second Ctrl-C during the clean stop abandons it.
      (A shell script's background jobs ignore SIGINT: stop those with
      SIGTERM.)

    Like the command it never refuses to start: while another coordinator
    is active it stands by and takes over when that one is gone. `force`
    takes over at once. Raises NotSetUp or EndpointError on a permanent
    error.
    """
    when = _StopWhen(stop)
    previous = None
    if (
        threading.current_thread() is threading.main_thread()
        and signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    ):
        previous = signal.signal(signal.SIGTERM, lambda _sig, _frame: when.terminated.set())
    try:
        _native.run_coordinator(
            name,
            stop=when,
            force=force,
            endpoint_url=endpoint_url,
            region=region,
            profile=profile,
        )
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def local(bind: str = "127.0.0.1:0") -> Iterator[str]:
    """Runs the embedded SQS endpoint (`sqs-barrier local`) in this process
    for the duration of the `with` block and yields its URL:

        with sqs_barrier.local() as endpoint_url:
            sqs_barrier.setup("test", 2, endpoint_url=endpoint_url)
            ...

    Queues live in memory and are gone when the block ends. Other processes
    can use the endpoint while it runs. Credentials are still taken from the
    standard AWS configuration (any values do, e.g. AWS_ACCESS_KEY_ID=local
    and AWS_SECRET_ACCESS_KEY=local).
    """
    endpoint = LocalEndpoint(bind)
    try:
        yield endpoint.url
    finally:
        endpoint.stop()
