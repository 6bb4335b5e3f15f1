"""The package's membership changes and gathered data: payloads gathered
at a phase, members leaving and joining, quorum releases.

Every barrier test runs on the embedded endpoint and on moto, with the Rust
coordinator (`sqs-barrier coordinator`) or a Python one (run_coordinator in
a thread). Members are handles of this process, waiting in threads, beside
`sqs-barrier wait` processes. Every wait has a timeout and every thread is
joined with one: nothing here can hang.
"""

import asyncio
import json
import pydoc
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

import sqs_barrier
from conftest import finish, wait_until_arrived

WAIT_S = 60
# How long a test waits for a thread's wait, beyond the wait's own timeout.
RESULT_S = WAIT_S + 30


@pytest.fixture
def pool():
    with ThreadPoolExecutor(max_workers=8) as executor:
        yield executor


def results(futures):
    return [f.result(timeout=RESULT_S) for f in futures]


def status_until(name, url, check, limit=30.0):
    """The barrier's status once `check(status)` holds; the coordinator
    publishes its state a moment after a release."""
    deadline = time.monotonic() + limit
    while True:
        st = sqs_barrier.status(name, probe=False, endpoint_url=url)
        if check(st):
            return st
        if time.monotonic() > deadline:
            pytest.fail(f"status of {name} not as expected within {limit} s: {st}")
        time.sleep(0.2)


@pytest.fixture
def python_coordinator():
    """Starts run_coordinator(name) in a thread; stops it when the test ends."""
    running = []

    def start(name: str, url: str) -> None:
        stop = threading.Event()
        failed = []

        def coordinate():
            try:
                sqs_barrier.run_coordinator(name, stop=stop, endpoint_url=url)
            except BaseException as e:  # reported when the test ends
                failed.append(e)

        thread = threading.Thread(target=coordinate, daemon=True)
        thread.start()
        running.append((stop, thread, failed))

    yield start
    for stop, thread, failed in running:
        stop.set()
        thread.join(15)
        assert not thread.is_alive(), "run_coordinator did not return after stop was set"
        assert not failed, failed


def test_gather_gives_every_member_every_payload(sqs_url, procs_for, name, pool, tmp_path):
    procs = procs_for(sqs_url)
    sqs_barrier.setup(name, 3, members=["a", "b", "cli"], endpoint_url=sqs_url)
    procs.coordinator(name)
    a = sqs_barrier.Barrier(name, "a", endpoint_url=sqs_url)
    b = sqs_barrier.Barrier(name, "b", endpoint_url=sqs_url)
    payloads = {
        "a": json.dumps({"rows": 1200, "note": "naïve \"quoted\"\n"}),
        "b": "",
        "cli": "from the command line ✓",
    }
    cli_file = tmp_path / "cli.txt"
    cli_file.write_text(payloads["cli"], encoding="utf-8")
    cli = procs.cli(
        "wait", "--barrier", name, "--id", "cli", "--phase", 0,
        "--timeout", WAIT_S, "--data", cli_file, "--gather",
    )
    got_a = pool.submit(a.wait, WAIT_S, payload=payloads["a"])
    # asyncio: wait_async takes the same keywords.
    got_b = pool.submit(asyncio.run, b.wait_async(timeout=WAIT_S, payload=payloads["b"]))
    released_a, released_b = results([got_a, got_b])
    for released in (released_a, released_b):
        assert released.phase == 0 and released.data == payloads, released
    # The tuple is still (phase, waited); data is an attribute beside it.
    phase, waited = released_a
    assert (phase, waited) == (0, released_a.waited) and waited >= 0
    code, out, err = finish(cli)
    assert code == 0, err
    assert json.loads(out) == payloads

    # gather without a payload of one's own; nobody brings one: {}.
    cli = procs.cli_wait(name, "cli", 1)
    got = [pool.submit(a.wait, WAIT_S, gather=True), pool.submit(b.wait, WAIT_S)]
    released_a, released_b = results(got)
    assert (released_a.phase, released_a.data) == (1, {}), released_a
    assert released_b.phase == 1 and released_b.data in ({}, None), released_b
    assert finish(cli)[0] == 0

    # Too large: raised before anything is sent, by wait, arrive and leave.
    limit = None
    too_large = "x" * 400_000
    for call in (
        lambda: a.wait(5, payload=too_large),
        lambda: a.arrive(5, payload=too_large),
        lambda: a.leave(too_large),
    ):
        with pytest.raises(sqs_barrier.PayloadTooLarge) as e:
            call()
        assert isinstance(e.value, sqs_barrier.ConfigError)
        assert e.value.members == 3 and e.value.size > e.value.limit, vars(e.value)
        assert "leaves each of the barrier's 3 members" in str(e.value)
        limit = e.value.limit
    assert a.next_phase == 2
    # The limit counts the payload as a JSON string with the member's name:
    # a payload just under it passes.
    fits = "y" * (limit - len('"a"') - len('""') - 2)
    cli = procs.cli_wait(name, "cli", 2)
    got = [pool.submit(a.wait, WAIT_S, payload=fits), pool.submit(b.wait, WAIT_S, gather=True)]
    for released in results(got):
        assert released.phase == 2 and released.data == {"a": fits}
    assert finish(cli)[0] == 0
    status_until(name, sqs_url, lambda st: st["released_below"] == 3)


def test_leave_releases_the_others_without_the_leaver(sqs_url, procs_for, name, pool):
    procs = procs_for(sqs_url)
    sqs_barrier.setup(name, 3, members=["a", "b", "c"], endpoint_url=sqs_url)
    procs.coordinator(name)
    a, b, c = (sqs_barrier.Barrier(name, m, endpoint_url=sqs_url) for m in "abc")

    # Phase 0: c waits for the release and leaves with it.
    got = [
        pool.submit(a.wait, WAIT_S),
        pool.submit(b.wait, WAIT_S),
        pool.submit(c.wait, WAIT_S, payload="c's last words", leave=True),
    ]
    for released in results(got):
        assert released.phase == 0 and released.data == {"c": "c's last words"}
    with pytest.raises(sqs_barrier.NotExpected) as e:
        c.wait(timeout=5)
    assert (e.value.barrier, e.value.member, e.value.phase, e.value.since) == (name, "c", 1, 1)
    assert isinstance(e.value, sqs_barrier.BarrierError)

    # Phase 1: b leaves without waiting; a passes on b's arrival alone.
    assert b.leave(payload="bye") == 1
    assert b.next_phase == 2
    released = a.wait(timeout=WAIT_S)
    assert released.phase == 1 and released.data == {"b": "bye"}, released
    # Phase 2: a alone.
    released = a.wait(timeout=WAIT_S, gather=True)
    assert (released.phase, released.data) == (2, {})
    with pytest.raises(sqs_barrier.NotExpected) as e:
        b.wait(timeout=5)
    assert (e.value.member, e.value.phase) == ("b", 2)

    st = status_until(name, sqs_url, lambda st: st["released_below"] == 3)
    assert st["members_by_phase"] == [{"from_phase": 3, "members": ["a"]}], st
    assert st["roll_version"] > 0, st


def test_join_makes_a_member_the_barrier_waits_for(
    sqs_url, aws_env, python_coordinator, name, pool
):
    sqs_barrier.setup(name, 2, endpoint_url=sqs_url)
    python_coordinator(name, sqs_url)
    m0, m1 = (sqs_barrier.Barrier(name, m, endpoint_url=sqs_url) for m in "01")
    assert m0.first_phase is None
    for released in results([pool.submit(m0.wait, WAIT_S), pool.submit(m1.wait, WAIT_S)]):
        assert released.phase == 0

    # A numbered barrier gives the next number.
    joined = sqs_barrier.Barrier.join(name, timeout=30, endpoint_url=sqs_url)
    assert joined.member == "2" and joined.name == name
    assert joined.first_phase == joined.next_phase == 1, joined
    st = status_until(name, sqs_url, lambda st: st["released_below"] == 1)
    assert st["members_by_phase"] == [{"from_phase": 1, "members": ["0", "1", "2"]}], st

    # Phase 1 waits for the joiner.
    waits = [pool.submit(m0.wait, WAIT_S), pool.submit(m1.wait, WAIT_S)]
    st = wait_until_arrived(name, sqs_url, ["0", "1"])
    assert st["missing"] == ["2"], st
    time.sleep(1)
    assert not any(w.done() for w in waits), "phase 1 was released without the joiner"
    released = joined.wait(timeout=WAIT_S, payload="new here")
    assert released.phase == 1 and released.data == {"2": "new here"}
    for released in results(waits):
        assert released.phase == 1 and released.data == {"2": "new here"}

    # Refused: a name that is a member already.
    with pytest.raises(sqs_barrier.JoinError) as e:
        sqs_barrier.Barrier.join(name, "0", timeout=10, endpoint_url=sqs_url)
    assert e.value.barrier == name and '"0" is already a member' in e.value.detail, e.value


def test_join_by_name_on_a_roster_barrier(sqs_url, procs_for, name, pool):
    procs = procs_for(sqs_url)
    sqs_barrier.setup(name, 2, members=["a", "b"], endpoint_url=sqs_url)
    procs.coordinator(name)
    # A roster barrier names its members: a join needs a name.
    with pytest.raises(sqs_barrier.JoinError) as e:
        sqs_barrier.Barrier.join(name, timeout=10, endpoint_url=sqs_url)
    assert "join with one" in str(e.value), e.value
    # Nobody has arrived yet: the first phase is 0.
    audit = sqs_barrier.Barrier.join(name, "audit", timeout=30, endpoint_url=sqs_url)
    assert (audit.member, audit.first_phase, audit.next_phase) == ("audit", 0, 0)
    a, b = (sqs_barrier.Barrier(name, m, endpoint_url=sqs_url) for m in "ab")
    # A CLI member waits as "audit" too, at phase 1.
    got = [pool.submit(m.wait, WAIT_S, payload=m.member) for m in (a, b, audit)]
    for released in results(got):
        assert released.phase == 0
        assert released.data == {"a": "a", "b": "b", "audit": "audit"}, released
    cli = procs.cli_wait(name, "audit", 1)
    for released in results([pool.submit(a.wait, WAIT_S), pool.submit(b.wait, WAIT_S)]):
        assert released.phase == 1 and released.dropped == [], released
    code, out, err = finish(cli)
    assert code == 0 and "phase 1 released for audit" in out, err


def test_join_without_a_coordinator_gives_up(sqs_url, aws_env, name):
    sqs_barrier.setup(name, 2, members=["a", "b"], endpoint_url=sqs_url)
    started = time.monotonic()
    with pytest.raises(sqs_barrier.JoinError) as e:
        sqs_barrier.Barrier.join(name, "c", timeout=1.5, endpoint_url=sqs_url)
    assert time.monotonic() - started < 15
    assert "did not count the join" in str(e.value), e.value
    with pytest.raises(sqs_barrier.NotSetUp):
        sqs_barrier.Barrier.join(f"{name}-none", "c", timeout=1.5, endpoint_url=sqs_url)


def test_quorum_releases_without_the_late_member(sqs_url, procs_for, name, pool):
    procs = procs_for(sqs_url)
    with pytest.raises(sqs_barrier.ConfigError):
        sqs_barrier.setup(name, 3, quorum=2, endpoint_url=sqs_url)
    members = ["a", "b", "late"]
    assert sqs_barrier.setup(name, 3, members=members, quorum=2, grace=1.0, endpoint_url=sqs_url)
    # Idempotent with the same quorum; another one is a conflict.
    assert not sqs_barrier.setup(
        name, 3, members=members, quorum=2, grace=1.0, endpoint_url=sqs_url
    )
    with pytest.raises(sqs_barrier.BarrierError) as e:
        sqs_barrier.setup(name, 3, members=members, quorum=3, grace=1.0, endpoint_url=sqs_url)
    assert "already exists with different settings" in str(e.value)
    st = sqs_barrier.status(name, probe=False, endpoint_url=sqs_url)
    assert st["quorum"] == {"min": 2, "grace_secs": 1.0}, st
    procs.coordinator(name)
    a, b = (sqs_barrier.Barrier(name, m, endpoint_url=sqs_url) for m in "ab")

    started = time.monotonic()
    got = [pool.submit(a.wait, WAIT_S, payload="A"), pool.submit(b.wait, WAIT_S, payload="B")]
    for released in results(got):
        assert released.phase == 0 and released.data == {"a": "A", "b": "B"}, released
        # Every member learns whom the release went on without.
        assert released.dropped == ["late"], released
    # Released after the grace, not at once.
    assert time.monotonic() - started >= 1.0

    # The member the quorum went on without is a member no more.
    late = sqs_barrier.Barrier(name, "late", endpoint_url=sqs_url, status_interval=2)
    with pytest.raises(sqs_barrier.NotExpected) as e:
        late.wait(timeout=30)
    assert (e.value.member, e.value.phase) == ("late", 0), e.value
    st = status_until(name, sqs_url, lambda st: st["released_below"] == 1)
    assert st["members_by_phase"] == [{"from_phase": 1, "members": ["a", "b"]}], st

    # The two left pass phase 1 together.
    for released in results([pool.submit(a.wait, WAIT_S), pool.submit(b.wait, WAIT_S)]):
        assert released.phase == 1


def test_new_api_is_typed_and_documented():
    released = sqs_barrier.Released(3, 0.5)
    assert released == (3, 0.5) and released.data is None
    with_data = sqs_barrier.Released(3, 0.5, {"a": "x"})
    phase, waited = with_data
    assert (phase, waited, with_data.data) == (3, 0.5, {"a": "x"})
    assert with_data._replace(phase=4).data == {"a": "x"}
    assert "data={'a': 'x'}" in repr(with_data)
    dropped = sqs_barrier.Released(3, 0.5, {}, ["c"])
    assert dropped == (3, 0.5) and dropped.dropped == ["c"] and released.dropped is None
    assert dropped._replace(phase=4).dropped == ["c"] and "dropped=['c']" in repr(dropped)
    for cls in (sqs_barrier.NotExpected, sqs_barrier.GatherLost, sqs_barrier.JoinError):
        assert issubclass(cls, sqs_barrier.BarrierError)
    assert issubclass(sqs_barrier.PayloadTooLarge, sqs_barrier.ConfigError)
    assert issubclass(sqs_barrier.PayloadTooLarge, ValueError)
    text = pydoc.render_doc(sqs_barrier.Barrier, renderer=pydoc.plaintext)
    for needle in ("payload", "gather", "PayloadTooLarge", "NotExpected", "first_phase", "join", "leave"):
        assert needle in text, needle
    assert "members_by_phase" in sqs_barrier.status.__doc__
    assert "quorum" in sqs_barrier.setup.__doc__
    stubs = (Path(sqs_barrier.__file__).parent / "_native.pyi").read_text()
    for needle in ("def join(", "def leave(", "payload: Optional[str]", "quorum: Optional[int]"):
        assert needle in stubs, needle
