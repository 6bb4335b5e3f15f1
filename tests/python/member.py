"""A barrier member as its own OS process, for test_package.py.

    python member.py BARRIER MEMBER [--phases N] [--timeout S] [--mode M]
                     [--work S] [--abort REASON] [--status-interval S]
                     [--coordinator]

Reaches SQS through the standard AWS configuration (the test sets
AWS_ENDPOINT_URL and placeholder credentials). Prints one JSON object per
line on stdout: "ready" once connected, "arrive" and "released" per phase,
"error" for a BarrierError (exit 1), "interrupted" for Ctrl-C during a wait;
after "interrupted" it reads a line from stdin and, if that says "again",
waits at the same phase once more.

Modes: "wait" (Barrier.wait), "arrive" (Barrier.arrive, then
Arrival.wait), "async" (await Barrier.wait_async in asyncio).
--coordinator runs sqs_barrier.run_coordinator instead of a member and
prints "stopped" after Ctrl-C (KeyboardInterrupt) or SIGTERM (it returns)
stopped it.
"""

import argparse
import asyncio
import json
import random
import sys
import time

import sqs_barrier


def say(event: str, **fields) -> None:
    print(json.dumps({"event": event, "t": time.time(), **fields}), flush=True)


def error_fields(e: sqs_barrier.BarrierError) -> dict:
    return {
        "type": type(e).__name__,
        "message": str(e),
        "phase": e.phase,
        "missing": getattr(e, "missing", None),
        "by": getattr(e, "by", None),
        "reason": getattr(e, "reason", None),
    }


def wait_once(barrier, args) -> sqs_barrier.Released:
    phase = barrier.next_phase
    say("arrive", phase=phase)
    if args.mode == "wait":
        return barrier.wait(timeout=args.timeout)
    if args.mode == "arrive":
        arrival = barrier.arrive(timeout=args.timeout)
        assert arrival.phase == phase
        return arrival.wait()
    return asyncio.run(barrier.wait_async(timeout=args.timeout))


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("barrier")
    p.add_argument("member")
    p.add_argument("--phases", type=int, default=1)
    p.add_argument("--timeout", type=float, default=None)
    p.add_argument("--mode", choices=["wait", "arrive", "async"], default="wait")
    p.add_argument("--work", type=float, default=0.0, help="most random work per phase (s)")
    p.add_argument("--abort", default=None, help="abort the barrier with this reason")
    p.add_argument("--status-interval", type=float, default=80.0)
    p.add_argument("--coordinator", action="store_true")
    args = p.parse_args()

    if args.coordinator:
        say("ready")
        try:
            sqs_barrier.run_coordinator(args.barrier)
        except KeyboardInterrupt:
            say("stopped", by="KeyboardInterrupt")
            return 0
        say("stopped", by="return")
        return 0

    barrier = sqs_barrier.Barrier(
        args.barrier, args.member, status_interval=args.status_interval
    )
    say("ready", phase=barrier.next_phase)
    if args.abort is not None:
        barrier.abort(args.abort)
        say("aborted")
        return 0
    for _ in range(args.phases):
        time.sleep(random.uniform(0, args.work))
        try:
            released = wait_once(barrier, args)
        except sqs_barrier.BarrierError as e:
            say("error", **error_fields(e))
            return 1
        except KeyboardInterrupt:
            say("interrupted", phase=barrier.next_phase)
            if sys.stdin.readline().strip() != "again":
                return 130
            released = barrier.wait(timeout=args.timeout)
        say("released", phase=released.phase, waited=released.waited)
        if released.phase + 1 != barrier.next_phase:
            say("error", type="PhaseNotAdvanced", message=str(barrier.next_phase))
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
