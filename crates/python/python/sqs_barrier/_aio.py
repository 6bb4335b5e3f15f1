"""asyncio glue: an Arrival's end wakes the event loop; nothing polls."""

from __future__ import annotations

import asyncio
import functools
from typing import TYPE_CHECKING, Optional

if TYPE_CHECKING:
    from ._native import Arrival, Barrier
    from ._types import Released


def _resolve(future: asyncio.Future) -> None:
    if not future.done():
        future.set_result(None)


async def arrival_wait(arrival: Arrival) -> Released:
    loop = asyncio.get_running_loop()
    ended = loop.create_future()

    def wake() -> None:
        # Called from a thread of the runtime once the wait has ended.
        try:
            loop.call_soon_threadsafe(_resolve, ended)
        except RuntimeError:
            pass  # the loop is closed: nobody is waiting any more

    arrival._add_done_callback(wake)
    try:
        await ended
    except BaseException:
        arrival.cancel()
        raise
    return arrival.wait()  # ended: returns or raises at once


async def barrier_wait(
    barrier: Barrier,
    timeout: Optional[float],
    payload: Optional[str] = None,
    gather: bool = False,
    leave: bool = False,
) -> Released:
    loop = asyncio.get_running_loop()
    # The check-in is a request to SQS: off the event loop.
    arrive = functools.partial(
        barrier.arrive, timeout, payload=payload, gather=gather, leave=leave
    )
    arrival = await loop.run_in_executor(None, arrive)
    return await arrival_wait(arrival)
