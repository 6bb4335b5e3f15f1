"""The Python package `sqs_barrier` (crates/python), built and installed
into the venv by scripts/test.

Python members run as their own OS processes (member.py) in the same
barriers as `sqs-barrier wait` processes, with the Rust coordinator
(`sqs-barrier coordinator`) or a Python one (`run_coordinator`), on the
embedded endpoint and on moto. A missing package, binary or moto fails the
suite; nothing is skipped.
"""

import asyncio
import json
import os
import pydoc
import selectors
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

import sqs_barrier
from conftest import _free_port, finish, wait_until_arrived

# --------------------------------------------------------------------------
# a member's output


# Bytes read from a child's stdout but not yet parsed, by pid: reading goes
# around Python's buffer so that select() sees every line.
_unread: dict = {}


def events(proc, until: str, timeout: float) -> list:
    """Reads a member's JSON lines until one whose event is `until`."""
    seen = []
    fd = proc.stdout.fileno()
    selector = selectors.DefaultSelector()
    selector.register(fd, selectors.EVENT_READ)
    deadline = time.monotonic() + timeout
    while True:
        buf = _unread.get(proc.pid, b"")
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            _unread[proc.pid] = buf
            event = json.loads(line)
            seen.append(event)
            if event["event"] == until:
                return seen
        left = deadline - time.monotonic()
        if left <= 0 or not selector.select(left):
            pytest.fail(f"no {until!r} from {proc.args} within {timeout} s; saw {seen}")
        chunk = os.read(fd, 65536)
        if not chunk:
            err = proc.stderr.read()
            pytest.fail(f"{proc.args} ended before {until!r}; saw {seen}; stderr:\n{err}")
        _unread[proc.pid] = buf + chunk


def all_events(proc, timeout=90) -> list:
    """Waits for a member and returns (exit code, its events not read by
    events(), stderr)."""
    code, out, err = finish(proc, timeout)
    text = _unread.pop(proc.pid, b"").decode() + out
    got = [json.loads(line) for line in text.splitlines() if line.strip()]
    return code, got, err


# --------------------------------------------------------------------------
# tests


def test_python_and_cli_members_pass_three_phases_together(sqs_url, procs_for, name):
    procs = procs_for(sqs_url)
    assert sqs_barrier.setup(name, 4, members=["py-wait", "py-arrive", "py-async", "cli"], endpoint_url=sqs_url)
    # Idempotent: the same settings again is not an error.
    assert not sqs_barrier.setup(name, 4, members=["py-wait", "py-arrive", "py-async", "cli"], endpoint_url=sqs_url)
    procs.coordinator(name)
    phases = 3
    members = {
        mode: procs.member(name, f"py-{mode}", "--phases", phases, "--mode", mode, "--work", "0.5", "--timeout", "60")
        for mode in ("wait", "arrive", "async")
    }
    arrivals = {p: [] for p in range(phases)}
    releases = {p: [] for p in range(phases)}
    for phase in range(phases):
        arrivals[phase].append(time.time())
        code, out, err = finish(procs.cli_wait(name, "cli", phase))
        releases[phase].append(time.time())
        assert code == 0, err
        assert f"phase {phase} released for cli" in out
    for mode, proc in members.items():
        code, got, err = all_events(proc)
        assert code == 0, (mode, got, err)
        passed = [e["phase"] for e in got if e["event"] == "released"]
        assert passed == list(range(phases)), (mode, got)
        for e in got:
            if e["event"] == "arrive":
                arrivals[e["phase"]].append(e["t"])
            elif e["event"] == "released":
                releases[e["phase"]].append(e["t"])
                assert e["waited"] >= 0
    # Nobody was released before everyone had arrived (one host, one clock).
    for phase in range(phases):
        assert len(arrivals[phase]) == len(releases[phase]) == 4
        assert min(releases[phase]) >= max(arrivals[phase]), phase
    st = sqs_barrier.status(name, endpoint_url=sqs_url)
    assert st["released_below"] == phases and st["coordinator_alive"], st
    deleted = sqs_barrier.teardown(name, endpoint_url=sqs_url)
    assert f"{name}-checkin" in deleted


def test_timeout_names_the_missing_member(sqs_url, procs_for, name):
    procs = procs_for(sqs_url)
    sqs_barrier.setup(name, 3, members=["py", "cli", "carol"], endpoint_url=sqs_url)
    procs.coordinator(name)
    py = procs.member(name, "py", "--timeout", "4")
    cli = procs.cli_wait(name, "cli", 0, timeout=4)
    code, got, err = all_events(py, timeout=60)
    assert code == 1, (got, err)
    error = got[-1]
    assert error["type"] == "TimedOut", error
    assert error["missing"] == ["carol"], error
    assert error["phase"] == 0
    assert "missing: carol" in error["message"], error
    code, out, err = finish(cli, timeout=60)
    assert code == 3 and "missing: carol" in err, err


def test_abort_breaks_python_and_cli_waiters(sqs_url, procs_for, name):
    procs = procs_for(sqs_url)
    sqs_barrier.setup(name, 3, members=["py", "cli", "boss"], endpoint_url=sqs_url)
    procs.coordinator(name)
    py = procs.member(name, "py", "--timeout", "60")
    cli = procs.cli_wait(name, "cli", 0)
    wait_until_arrived(name, sqs_url, ["py", "cli"])
    code, got, err = all_events(procs.member(name, "boss", "--abort", "bad input file"), 30)
    assert code == 0 and got[-1]["event"] == "aborted", (got, err)
    code, got, err = all_events(py, timeout=60)
    assert code == 1, (got, err)
    error = got[-1]
    assert error["type"] == "Broken", error
    assert (error["by"], error["reason"]) == ("boss", "bad input file"), error
    assert error["missing"] == ["boss"], error
    assert "aborted by boss: bad input file" in error["message"]
    code, out, err = finish(cli, timeout=60)
    assert code == 4 and "aborted by boss: bad input file" in err, err


def test_ctrl_c_interrupts_a_wait_within_half_a_second(sqs_url, procs_for, name):
    procs = procs_for(sqs_url)
    sqs_barrier.setup(name, 2, members=["py", "cli"], endpoint_url=sqs_url)
    procs.coordinator(name)
    # A wait cancelled during a long poll may lose a release notice to that
    # abandoned poll (moto still answers it), so another waiter may find no
    # copy left; the status reads recover it, here every 4 s instead of 80.
    py = procs.member(
        name, "py", "--timeout", "60", "--status-interval", "4", stdin=subprocess.PIPE
    )
    events(py, "arrive", 30)
    # Well inside the wait: the check-in is sent, a long poll is under way.
    wait_until_arrived(name, sqs_url, ["py"])
    time.sleep(0.5)
    py.send_signal(signal.SIGINT)
    sent = time.monotonic()
    got = events(py, "interrupted", 5)
    took = time.monotonic() - sent
    assert took < 0.5, f"KeyboardInterrupt came {took:.3f} s after SIGINT"
    # Cancelled like a dropped Arrival: the phase did not advance, the
    # check-in stays counted, and the same phase can be waited at again.
    assert got[-1]["phase"] == 0
    assert "py" in sqs_barrier.status(name, probe=False, endpoint_url=sqs_url)["arrived"]
    py.stdin.write("again\n")
    py.stdin.flush()
    code, out, err = finish(procs.cli_wait(name, "cli", 0, status_interval=4))
    assert code == 0, err
    code, got, err = all_events(py, timeout=60)
    assert code == 0, (got, err)
    assert got[-1]["event"] == "released" and got[-1]["phase"] == 0, got


def test_asyncio_members_and_cancellation(sqs_url, procs_for, aws_env, name):
    procs = procs_for(sqs_url)
    sqs_barrier.setup(name, 3, members=["a", "b", "cli"], endpoint_url=sqs_url)
    procs.coordinator(name)
    # status_interval: see test_ctrl_c_interrupts_a_wait_within_half_a_second.
    a = sqs_barrier.Barrier(name, "a", endpoint_url=sqs_url, status_interval=4)
    b = sqs_barrier.Barrier(name, "b", endpoint_url=sqs_url, status_interval=4)

    async def main():
        ticks = 0
        stop = asyncio.Event()

        async def ticker():
            nonlocal ticks
            while not stop.is_set():
                await asyncio.sleep(0.01)
                ticks += 1

        tick_task = asyncio.create_task(ticker())
        for phase in range(2):
            waits = asyncio.gather(a.wait_async(timeout=60), b.wait_async(timeout=60))
            before = ticks
            await asyncio.sleep(0.5)
            # The loop runs on while both wait for the CLI member.
            assert not waits.done() and ticks - before >= 10, ticks - before
            cli = procs.cli_wait(name, "cli", phase)
            got = await waits
            assert [r.phase for r in got] == [phase, phase]
            assert (await asyncio.get_running_loop().run_in_executor(None, finish, cli))[0] == 0
        # A cancelled task cancels its wait: nothing is released, the phase
        # stays, and the same phase is waited at again afterwards.
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(a.wait_async(), 1.0)
        assert a.next_phase == 2
        arrival = await asyncio.get_running_loop().run_in_executor(None, b.arrive, 60.0)
        cli = procs.cli_wait(name, "cli", 2, status_interval=4)
        released = await asyncio.gather(a.wait_async(timeout=60), arrival.wait_async())
        assert [r.phase for r in released] == [2, 2]
        assert arrival.done()
        stop.set()
        await tick_task
        return await asyncio.get_running_loop().run_in_executor(None, finish, cli)

    code, out, err = asyncio.run(main())
    assert code == 0, err


def test_local_endpoint_in_process(procs_for, aws_env, name):
    with sqs_barrier.local() as url:
        assert url.startswith("http://127.0.0.1:")
        procs = procs_for(url)
        sqs_barrier.setup(name, 2, members=["py", "cli"], endpoint_url=url)
        stop = threading.Event()
        failed = []

        def coordinate():
            try:
                sqs_barrier.run_coordinator(name, stop=stop, endpoint_url=url)
            except BaseException as e:  # reported below
                failed.append(e)

        coordinator = threading.Thread(target=coordinate)
        coordinator.start()
        try:
            barrier = sqs_barrier.Barrier(name, "py", endpoint_url=url)
            assert barrier.members == ["py", "cli"] and barrier.next_phase == 0
            for phase in range(2):
                cli = procs.cli_wait(name, "cli", phase)
                arrival = barrier.arrive(timeout=60)
                released = arrival.wait()
                assert released == sqs_barrier.Released(phase, released.waited)
                assert arrival.done() and finish(cli)[0] == 0
        finally:
            stop.set()
            coordinator.join(15)
        assert not coordinator.is_alive(), "run_coordinator did not return after stop was set"
        assert not failed, failed
        st = sqs_barrier.status(name, probe=False, endpoint_url=url)
        assert st["coordinator_check"].startswith("stopped cleanly"), st
    with pytest.raises(sqs_barrier.EndpointError) as e:
        sqs_barrier.Barrier(name, "py", endpoint_url=url)
    assert "cannot reach SQS" in str(e.value)


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_python_coordinator_with_cli_members(sqs_url, procs_for, name, stop_signal):
    procs = procs_for(sqs_url)
    sqs_barrier.setup(name, 3, endpoint_url=sqs_url)
    coordinator = procs.member(name, "-", "--coordinator")
    events(coordinator, "ready", 30)
    for phase in range(2):
        waits = [procs.cli_wait(name, m, phase) for m in ("0", "1", "2")]
        for w in waits:
            code, out, err = finish(w)
            assert code == 0 and f"phase {phase} released" in out, err
    coordinator.send_signal(stop_signal)
    stopped = events(coordinator, "stopped", 15)[-1]
    # Ctrl-C raises KeyboardInterrupt after the clean stop; SIGTERM returns.
    assert stopped["by"] == ("KeyboardInterrupt" if stop_signal == signal.SIGINT else "return")
    code, out, err = finish(coordinator, 15)
    assert code == 0, err
    st = sqs_barrier.status(name, probe=False, endpoint_url=sqs_url)
    assert st["released_below"] == 2, st
    assert st["coordinator_check"].startswith("stopped cleanly"), st


def test_errors_are_typed_and_clear(endpoint_url, aws_env, name):
    with pytest.raises(sqs_barrier.NotSetUp) as e:
        sqs_barrier.Barrier(name, "a", endpoint_url=endpoint_url)
    assert e.value.barrier == name and "is not set up" in str(e.value)
    sqs_barrier.setup(name, 2, members=["a", "b"], endpoint_url=endpoint_url)
    with pytest.raises(sqs_barrier.ConfigError) as e:
        sqs_barrier.Barrier(name, "zed", endpoint_url=endpoint_url)
    assert isinstance(e.value, ValueError) and "zed" in str(e.value)
    with pytest.raises(sqs_barrier.BarrierError) as e:
        sqs_barrier.setup(name, 3, endpoint_url=endpoint_url)
    assert "already exists with different settings" in str(e.value)
    with pytest.raises(ValueError):
        sqs_barrier.Barrier(name, "a", endpoint_url=endpoint_url).wait(timeout=-1)
    port = _free_port()
    with pytest.raises(sqs_barrier.EndpointError) as e:
        sqs_barrier.status(name, endpoint_url=f"http://127.0.0.1:{port}")
    assert f"127.0.0.1:{port}" in str(e.value)
    for cls in (
        sqs_barrier.TimedOut,
        sqs_barrier.Broken,
        sqs_barrier.CoordinatorSilent,
        sqs_barrier.NotSetUp,
        sqs_barrier.EndpointError,
        sqs_barrier.ConfigError,
    ):
        assert issubclass(cls, sqs_barrier.BarrierError)
    sqs_barrier.teardown(name, endpoint_url=endpoint_url)


def test_without_a_coordinator_a_wait_times_out(endpoint_url, aws_env, name):
    sqs_barrier.setup(name, 2, endpoint_url=endpoint_url)
    barrier = sqs_barrier.Barrier(name, "0", endpoint_url=endpoint_url)
    with pytest.raises(sqs_barrier.TimedOut) as e:
        barrier.wait(timeout=1.5)
    assert e.value.missing is None and "unknown" in str(e.value)


def test_help_stubs_and_types():
    text = pydoc.render_doc(sqs_barrier.Barrier, renderer=pydoc.plaintext)
    for needle in ("Arrives at the next phase", "wait_async", "KeyboardInterrupt", "abort"):
        assert needle in text, needle
    assert "phase" in pydoc.render_doc(sqs_barrier.Released, renderer=pydoc.plaintext)
    assert "run_coordinator" in pydoc.render_doc(sqs_barrier, renderer=pydoc.plaintext)
    assert "Ctrl-C" in sqs_barrier.run_coordinator.__doc__
    package = Path(sqs_barrier.__file__).parent
    assert (package / "py.typed").is_file()
    assert (package / "_native.pyi").is_file()
    assert sqs_barrier.Released(3, 0.5) == (3, 0.5)
