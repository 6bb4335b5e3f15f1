//! A partition: the active coordinator is cut off from the state queue for
//! 30 s (its state reads and writes fail; everything else works) while a
//! standby runs, across phases with a join, a quorum release and a
//! deadline. The embedded endpoint's fault injection does the cutting (a
//! rule for one access key, one queue and a time window), so this runs on
//! the embedded endpoint only.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// When the cut starts and ends, in seconds after the endpoint started.
const CUT: (u64, u64) = (20, 50);

/// Member waits and coordinators, each with its own access key.
fn as_key(url: &str, key: &str) -> Command {
    let mut c = cmd(url);
    c.env("AWS_ACCESS_KEY_ID", key);
    c
}

fn wait(url: &str, b: &str, id: &str, phase: u64) -> Child {
    as_key(url, "member")
        .args(["wait", "--barrier", b, "--id", id])
        .args(["--phase", &phase.to_string(), "--timeout", "120"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn waits(url: &str, b: &str, ids: &[&str], phase: u64) -> Vec<(String, Child)> {
    ids.iter()
        .map(|id| (id.to_string(), wait(url, b, id, phase)))
        .collect()
}

fn outcomes(ws: Vec<(String, Child)>) -> Vec<(String, Output)> {
    ws.into_iter()
        .map(|(id, c)| (id, finish(c, Duration::from_secs(150))))
        .collect()
}

/// Every listed member passed `phase`, and every one's line says the same
/// about whom the release went on without.
fn all_released(phase: u64, outs: &[(String, Output)], without: &str) {
    for (id, o) in outs {
        assert!(o.status.success(), "{id}: {}", text(o));
        let line = String::from_utf8_lossy(&o.stdout);
        assert!(
            line.contains(&format!("phase {phase} released")),
            "{id}: {line}"
        );
        if without.is_empty() {
            assert!(!line.contains("without"), "{id}: {line}");
        } else {
            assert!(
                line.contains(&format!("; without {without} ")),
                "{id}: {line}"
            );
        }
    }
}

fn until(s: Instant, secs: u64) {
    std::thread::sleep((s + Duration::from_secs(secs)).saturating_duration_since(Instant::now()));
}

#[test]
fn a_coordinator_cut_off_from_its_state_keeps_the_lease_and_every_phase_has_one_outcome() {
    let spec = format!(
        "any[queue=-state;key=coordA;from={};to={}].error=1",
        CUT.0, CUT.1
    );
    let mut child = Command::new(BIN)
        .args(["local", "--bind", "127.0.0.1:0", "--chaos", &spec])
        .stdout(Stdio::piped())
        .stdin(Stdio::null())
        .spawn()
        .expect("start local");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let started = Instant::now();
    let _local = Killer(child);
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("no URL in {line:?}"))
        .to_owned();
    let b = name();
    setup(
        &url,
        &b,
        "4",
        &[
            "--members",
            "a,b,c,d",
            "--quorum",
            "3",
            "--grace",
            "3",
            "--deadline",
            "20",
        ],
    );
    let coordinator = |key: &str| {
        Killer(
            as_key(&url, key)
                .args(["coordinator", "--barrier", &b])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        )
    };
    let active = coordinator("coordA");
    wait_active(&url, &b, active.0.id(), Duration::from_secs(15));
    let _standby = coordinator("coordB");

    // Phase 0, before the cut.
    all_released(0, &outcomes(waits(&url, &b, &["a", "b", "c", "d"], 0)), "");
    assert!(
        started.elapsed() < Duration::from_secs(CUT.0),
        "too slow to start"
    );

    // Phase 1, cut off: everyone arrives, and the coordinator that counted
    // them releases them at once (its notice needs no state write). A
    // standby that took over now would break phase 1 by its deadline.
    until(started, CUT.0 + 1);
    all_released(1, &outcomes(waits(&url, &b, &["a", "b", "c", "d"], 1)), "");

    // Phase 2, cut off: three of four arrive; the quorum release that goes
    // on without d waits for a state write that records it (the cut's end).
    let three = waits(&url, &b, &["a", "b", "c"], 2);
    std::thread::sleep(Duration::from_secs(5));
    // A join and the straggler, during the cut.
    let join = as_key(&url, "member")
        .args(["join", "--barrier", &b, "--id", "e", "--timeout", "90"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let late = wait(&url, &b, "d", 2);
    // Well into the cut: the standby has taken the active one for dead,
    // but the lease is the active one's.
    until(started, CUT.0 + 20);
    let (now_active, _) = active_and_standbys(&url, &b);
    assert!(
        now_active.ends_with(&format!("/{}", active.0.id())),
        "the standby took over during the cut: {now_active}"
    );
    all_released(2, &outcomes(three), "d");
    let o = finish(late, Duration::from_secs(120));
    assert_eq!(o.status.code(), Some(7), "d: {}", text(&o));
    let joined = finish(join, Duration::from_secs(120));
    assert!(joined.status.success(), "join: {}", text(&joined));
    assert_eq!(String::from_utf8_lossy(&joined.stdout).trim(), "e 3");
    assert!(started.elapsed() >= Duration::from_secs(CUT.1 - 2));

    // Phase 3, healed: the members now, with the joiner.
    all_released(3, &outcomes(waits(&url, &b, &["a", "b", "c", "e"], 3)), "");

    // Phase 4: two arrive; the deadline breaks it for both.
    for (id, o) in outcomes(waits(&url, &b, &["a", "b"], 4)) {
        assert_eq!(o.status.code(), Some(4), "{id}: {}", text(&o));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains("missing: c, e"), "{id}: {err}");
    }
    let (now_active, _) = active_and_standbys(&url, &b);
    assert!(
        now_active.ends_with(&format!("/{}", active.0.id())),
        "one coordinator decided throughout: {now_active}"
    );
}
