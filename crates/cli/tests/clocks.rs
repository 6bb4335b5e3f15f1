//! Wall clocks that step under a running coordinator and its standby
//! (libfaketime, monotonic clocks untouched) change no decision: every
//! timer runs on the monotonic clock.

mod common;

use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::*;
use sqs_barrier_testkit::Target;

macro_rules! both {
    ($($name:ident),* $(,)?) => {
        mod embedded { $( #[test] fn $name() { super::$name(sqs_barrier_testkit::Target::Embedded) } )* }
        mod moto { $( #[test] fn $name() { super::$name(sqs_barrier_testkit::Target::Moto) } )* }
    };
}

both!(stepped_wall_clocks_change_no_decision);

/// The grace of the quorum barrier below: long enough that "released
/// before it ran out" is unmistakable on a loaded machine.
const GRACE: u64 = 20;

/// A quorum barrier (3 of 5, grace 20 s, deadline 10 min). In phase 0,
/// once the quorum has arrived, the coordinator's wall clock steps 10
/// minutes ahead and the standby's 10 minutes back: the release still
/// waits out the grace (a clock read as a timer would end the grace and
/// fire the deadline at once) and drops the two who never came. In phase 1
/// the steps reverse (the coordinator's clock goes 20 minutes back): it
/// keeps publishing, so the standby does not take over, and the phase is
/// released once all three remaining members have arrived.
fn stepped_wall_clocks_change_no_decision(target: Target) {
    let rt = runtime();
    let (_e, url) = endpoint(target, &rt);
    let b = name();
    setup(
        &url,
        &b,
        "5",
        &[
            "--quorum",
            "3",
            "--grace",
            &GRACE.to_string(),
            "--deadline",
            "600",
        ],
    );
    let (coordinator_clock, standby_clock) = (SteppedClock::new(), SteppedClock::new());
    let coordinator = |clock: &SteppedClock| {
        let mut c = cmd(&url);
        clock.apply(&mut c);
        c.args(["coordinator", "--barrier", &b, "--heartbeat", "1"]);
        Killer(
            c.stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        )
    };
    let active = coordinator(&coordinator_clock);
    wait_active(&url, &b, active.0.id(), Duration::from_secs(20));
    let _standby = coordinator(&standby_clock);

    // Phase 0: three of five arrive; once the coordinator has published
    // their arrivals (the quorum is reached), the clocks step.
    let waits: Vec<Child> = ["0", "1", "2"]
        .iter()
        .map(|id| spawn_wait(&url, &b, id, 0, "120"))
        .collect();
    let quorum = wait_arrived(&url, &b, 3, Duration::from_secs(30));
    coordinator_clock.set("+600");
    standby_clock.set("-600");
    let mut waits = waits;
    std::thread::sleep(
        (quorum + Duration::from_secs(GRACE - 6)).saturating_duration_since(Instant::now()),
    );
    for w in &mut waits {
        assert!(
            w.try_wait().unwrap().is_none(),
            "a member passed before the grace ran out (the stepped clock ended it)"
        );
    }
    for w in waits {
        let o = finish(w, Duration::from_secs(60));
        assert!(o.status.success(), "{}", text(&o));
        let out = String::from_utf8_lossy(&o.stdout);
        assert!(out.contains("phase 0 released"), "{out}");
    }
    let took = quorum.elapsed();
    assert!(
        took >= Duration::from_secs(GRACE - 6),
        "released {took:?} after the quorum, before the {GRACE} s grace"
    );
    let (now_active, _) = active_and_standbys(&url, &b);
    assert!(
        now_active.ends_with(&format!("/{}", active.0.id())),
        "the standby took over from a live coordinator: {now_active}"
    );

    // Phase 1: the remaining three; two arrive, the clocks step back.
    let early: Vec<Child> = ["0", "1"]
        .iter()
        .map(|id| spawn_wait(&url, &b, id, 1, "120"))
        .collect();
    wait_arrived(&url, &b, 2, Duration::from_secs(30));
    coordinator_clock.set("-600");
    standby_clock.set("+600");
    // Well past the standby's patience (a silent coordinator is replaced
    // within seconds).
    std::thread::sleep(Duration::from_secs(15));
    let (now_active, _) = active_and_standbys(&url, &b);
    assert!(
        now_active.ends_with(&format!("/{}", active.0.id())),
        "the standby took over from a live coordinator whose clock stepped back: {now_active}"
    );
    let mut all = early;
    all.push(spawn_wait(&url, &b, "2", 1, "120"));
    for w in all {
        let o = finish(w, Duration::from_secs(60));
        assert!(o.status.success(), "{}", text(&o));
    }
}

/// Waits until `status` shows `n` members arrived at the open phase; the
/// instant it saw them.
fn wait_arrived(url: &str, barrier: &str, n: usize, limit: Duration) -> Instant {
    let start = Instant::now();
    loop {
        let o = run(cmd(url).args(["status", "--barrier", barrier, "--json"]));
        assert!(o.status.success(), "{}", text(&o));
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        if v["arrived"].as_array().is_some_and(|a| a.len() == n) {
            return Instant::now();
        }
        assert!(
            start.elapsed() < limit,
            "{n} arrivals never showed in status: {v}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}
