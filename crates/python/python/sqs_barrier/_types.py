"""The result type and the exceptions of sqs_barrier.

Every exception's message is the library's own text (the one the
`sqs-barrier` command prints); the attributes carry its parts for programs.
"""

from __future__ import annotations

from typing import List, NamedTuple, Optional


class Released(NamedTuple):
    """A passed barrier: what Barrier.wait() and Arrival.wait() return.

    phase: the phase (generation) that was released, 0 for the first wait.
    waited: how long this member waited there, in seconds.
    """

    phase: int
    waited: float


class BarrierError(Exception):
    """The base of every error of sqs_barrier.

    barrier: the barrier's name, where it is known; phase: the phase waited
    at, for the outcomes of a wait.
    """

    def __init__(
        self,
        message: str,
        *,
        barrier: Optional[str] = None,
        phase: Optional[int] = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.barrier = barrier
        self.phase = phase


class TimedOut(BarrierError):
    """The wait's timeout passed before every member had arrived.

    missing: the members that had not arrived, as far as the coordinator's
    last published state tells (None if unknown); timeout: the timeout in
    seconds. The check-in stays counted: waiting again at the same phase
    (Barrier.phase is unchanged) is safe.
    """

    def __init__(
        self,
        message: str,
        *,
        missing: Optional[List[str]] = None,
        timeout: Optional[float] = None,
        **kw,
    ) -> None:
        super().__init__(message, **kw)
        self.missing = missing
        self.timeout = timeout


class Broken(BarrierError):
    """The barrier is broken: a member or an operator aborted it, or its
    deadline passed with members missing.

    by: who aborted (a member's name or an operator's label; None when the
    deadline broke it); reason: the reason they gave, or the deadline in
    words; missing: who had not arrived when it broke.
    """

    def __init__(
        self,
        message: str,
        *,
        by: Optional[str] = None,
        reason: str = "",
        missing: Optional[List[str]] = None,
        **kw,
    ) -> None:
        super().__init__(message, **kw)
        self.by = by
        self.reason = reason
        self.missing = missing if missing is not None else []


class CoordinatorSilent(BarrierError):
    """No live coordinator: nothing new was published for silent_for
    seconds by this host's clock. Start one (`sqs-barrier coordinator` or
    sqs_barrier.run_coordinator)."""

    def __init__(self, message: str, *, silent_for: Optional[float] = None, **kw) -> None:
        super().__init__(message, **kw)
        self.silent_for = silent_for


class NotSetUp(BarrierError):
    """The barrier's queues do not exist at endpoint: run setup() first."""

    def __init__(self, message: str, *, endpoint: Optional[str] = None, **kw) -> None:
        super().__init__(message, **kw)
        self.endpoint = endpoint


class EndpointError(BarrierError):
    """SQS cannot be used: unreachable, no credentials or region, access
    denied, or another SQS error. endpoint: the endpoint asked, if known."""

    def __init__(self, message: str, *, endpoint: Optional[str] = None, **kw) -> None:
        super().__init__(message, **kw)
        self.endpoint = endpoint


class ConfigError(BarrierError, ValueError):
    """An invalid argument: a bad barrier configuration, or a member that
    is not one of the barrier's members."""
