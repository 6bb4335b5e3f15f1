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

A coordinator must run: `sqs-barrier coordinator --barrier etl`, or
sqs_barrier.run_coordinator("etl") in some process. SQS is reached with the
standard AWS configuration (AWS_ENDPOINT_URL, AWS_REGION, AWS_PROFILE,
credentials), overridden by the endpoint_url, region and profile keywords
every function takes.

Errors are BarrierError and its subclasses TimedOut, Broken,
CoordinatorSilent, NotSetUp, EndpointError and ConfigError.
"""

from __future__ import annotations

import contextlib
from typing import Iterator

from ._native import (
    Arrival,
    Barrier,
    LocalEndpoint,
    abort,
    run_coordinator,
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
    NotSetUp,
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
    "LocalEndpoint",
    "NotSetUp",
    "Released",
    "TimedOut",
    "abort",
    "local",
    "run_coordinator",
    "setup",
    "status",
    "teardown",
]


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
