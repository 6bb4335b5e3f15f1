"""Type stubs of the compiled module (re-exported by sqs_barrier)."""

from typing import Any, Dict, List, Optional, Protocol

from ._types import Released

class _Event(Protocol):
    def is_set(self) -> bool: ...

class Barrier:
    """A member's handle on a barrier."""

    def __init__(
        self,
        name: str,
        member: str,
        *,
        endpoint_url: Optional[str] = None,
        region: Optional[str] = None,
        profile: Optional[str] = None,
        silence: float = 60.0,
        status_interval: float = 120.0,
    ) -> None: ...
    @staticmethod
    def join(
        name: str,
        member: Optional[str] = None,
        *,
        timeout: float = 30.0,
        endpoint_url: Optional[str] = None,
        region: Optional[str] = None,
        profile: Optional[str] = None,
    ) -> Barrier: ...
    @property
    def name(self) -> str: ...
    @property
    def member(self) -> str: ...
    @property
    def members(self) -> List[str]: ...
    @property
    def next_phase(self) -> int: ...
    @next_phase.setter
    def next_phase(self, phase: int) -> None: ...
    @property
    def first_phase(self) -> Optional[int]: ...
    def wait(
        self,
        timeout: Optional[float] = None,
        *,
        payload: Optional[str] = None,
        gather: bool = False,
        leave: bool = False,
    ) -> Released: ...
    def arrive(
        self,
        timeout: Optional[float] = None,
        *,
        payload: Optional[str] = None,
        gather: bool = False,
        leave: bool = False,
    ) -> Arrival: ...
    async def wait_async(
        self,
        timeout: Optional[float] = None,
        *,
        payload: Optional[str] = None,
        gather: bool = False,
        leave: bool = False,
    ) -> Released: ...
    def leave(self, payload: Optional[str] = None) -> int: ...
    def abort(self, reason: str) -> None: ...

class Arrival:
    """A wait under way, from Barrier.arrive()."""

    @property
    def phase(self) -> int: ...
    def done(self) -> bool: ...
    def wait(self) -> Released: ...
    async def wait_async(self) -> Released: ...
    def cancel(self) -> None: ...

class LocalEndpoint:
    """The embedded SQS endpoint, running in this process until stop()."""

    def __init__(self, bind: str = "127.0.0.1:0") -> None: ...
    @property
    def url(self) -> str: ...
    def stop(self) -> None: ...

def setup(
    name: str,
    parties: int,
    *,
    members: Optional[List[str]] = None,
    deadline: Optional[float] = None,
    fifo: bool = False,
    quorum: Optional[int] = None,
    grace: Optional[float] = None,
    endpoint_url: Optional[str] = None,
    region: Optional[str] = None,
    profile: Optional[str] = None,
) -> bool: ...
def teardown(
    name: str,
    *,
    endpoint_url: Optional[str] = None,
    region: Optional[str] = None,
    profile: Optional[str] = None,
) -> List[str]: ...
def status(
    name: str,
    *,
    probe: bool = True,
    endpoint_url: Optional[str] = None,
    region: Optional[str] = None,
    profile: Optional[str] = None,
) -> Dict[str, Any]: ...
def abort(
    name: str,
    reason: str,
    *,
    by: str = "operator",
    endpoint_url: Optional[str] = None,
    region: Optional[str] = None,
    profile: Optional[str] = None,
) -> None: ...
def run_coordinator(
    name: str,
    *,
    stop: Optional[_Event] = None,
    force: bool = False,
    endpoint_url: Optional[str] = None,
    region: Optional[str] = None,
    profile: Optional[str] = None,
) -> None: ...
