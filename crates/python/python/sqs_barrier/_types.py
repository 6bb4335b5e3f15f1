"""The result type and the exceptions of sqs_barrier.

Every exception's message is the library's own text (the one the
`sqs-barrier` command prints); the attributes carry its parts for programs.
"""

from __future__ import annotations

from typing import Any, Dict, List, NamedTuple, Optional


class _Passed(NamedTuple):
    phase: int
    waited: float


class Released(_Passed):
    """A passed barrier: what Barrier.wait() and Arrival.wait() return.

    A named tuple (phase, waited), so that `phase, waited = barrier.wait()`
    works, with one more attribute, data, outside the tuple:

    phase: the phase (generation) that was released, 0 for the first wait.
    waited: how long this member waited there, in seconds.
    data: the payloads the members brought to the phase, {member: payload}
    (an empty dict if nobody brought one); None if the wait passed on the
    coordinator's published state without reading the release notice that
    carries them (a wait with gather=True or a payload raises GatherLost
    instead).
    dropped: the members a quorum release went on without, as the release
    notice named them (an empty list if it dropped nobody): they are members
    no more, and every member learns the same list. None if the wait passed
    on the published state without reading the notice.

    Comparisons and hashing look at the tuple (phase, waited) only.
    """

    data: Optional[Dict[str, str]] = None
    dropped: Optional[List[str]] = None

    def __new__(
        cls,
        phase: int,
        waited: float,
        data: Optional[Dict[str, str]] = None,
        dropped: Optional[List[str]] = None,
    ) -> "Released":
        self = super().__new__(cls, phase, waited)
        self.data = data
        self.dropped = dropped
        return self

    def _replace(self, **changes: Any) -> "Released":
        data = changes.pop("data", self.data)
        dropped = changes.pop("dropped", self.dropped)
        phase, waited = super()._replace(**changes)
        return Released(phase, waited, data, dropped)

    def __repr__(self) -> str:
        return (
            f"Released(phase={self.phase!r}, waited={self.waited!r}, "
            f"data={self.data!r}, dropped={self.dropped!r})"
        )


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
    (Barrier.next_phase is unchanged) is safe.
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


class PayloadTooLarge(ConfigError):
    """A payload larger than a release notice leaves each member, raised
    before anything is sent (the wait or leave did not happen).

    size: the bytes it takes in the notice (as a JSON string, with the
    member's name); limit: the most each member may bring, about
    (1 MiB - 16 KiB) / members; members: the barrier's members.
    """

    def __init__(
        self,
        message: str,
        *,
        size: Optional[int] = None,
        limit: Optional[int] = None,
        members: Optional[int] = None,
        **kw,
    ) -> None:
        super().__init__(message, **kw)
        self.size = size
        self.limit = limit
        self.members = members


class NotExpected(BarrierError):
    """This member is not expected at the phase: it left the barrier
    (Barrier.leave(), or wait(leave=True)), or a quorum release went on
    without it, after which it is a member no more. A late member never
    passes; it may take part again with Barrier.join().

    member: the member; phase: the phase it tried to wait at; since: the
    first phase that does not expect it, as far as the coordinator's
    published state tells (0 once that is forgotten).
    """

    def __init__(
        self,
        message: str,
        *,
        member: Optional[str] = None,
        since: Optional[int] = None,
        **kw,
    ) -> None:
        super().__init__(message, **kw)
        self.member = member
        self.since = since


class GatherLost(BarrierError):
    """The phase was released, but the wait asked for the gathered payloads
    (gather=True, or a payload of its own) and the release notice that
    carried them expired (it lives 60 s) before this member read it. The
    phase is passed all the same: the next wait arrives at the next one."""


class JoinError(BarrierError):
    """Barrier.join() failed: the name is a member already or unusable, the
    barrier has no room or names its members (join with a name), or no
    coordinator counted the join within the timeout. detail: why."""

    def __init__(self, message: str, *, detail: str = "", **kw) -> None:
        super().__init__(message, **kw)
        self.detail = detail
