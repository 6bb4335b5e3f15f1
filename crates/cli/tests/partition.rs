//! Partitions: the active coordinator cut off from the state queue (its
//! state reads and writes fail; everything else works) while a standby
//! runs. For 30 s across phases with a join, a quorum release and a
//! deadline; and until it is killed, after releasing a phase it could not
//! record, with the phase's deadline passed when the standby takes over.
//! The embedded endpoint's fault injection does the cutting (a rule for one
//! access key, one queue and a time window), so this runs on the embedded
//! endpoint only.

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

/// A coordinator of `b` with its own access key.
fn coordinator(url: &str, b: &str, key: &str) -> Killer {
    Killer(
        as_key(url, key)
            .args(["coordinator", "--barrier", b])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    )
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

/// A wait of member `id` that brings data to `phase`: the coordinator keeps
/// its check-in until the phase's release is published, and so cannot rest
/// (give its lease back) until then.
fn wait_with_data(url: &str, b: &str, id: &str, phase: u64) -> (String, Child) {
    let file = std::env::temp_dir().join(format!("partition-{}-{b}.data", std::process::id()));
    std::fs::write(&file, "from a").unwrap();
    let child = as_key(url, "member")
        .args(["wait", "--barrier", b, "--id", id])
        .args(["--phase", &phase.to_string(), "--timeout", "120"])
        .arg("--data")
        .arg(&file)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    (id.to_owned(), child)
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

/// An embedded endpoint with the fault injection `spec`: it, its URL, and
/// when it started (the rules' time windows count from then).
fn local_with_chaos(spec: &str) -> (Killer, String, Instant) {
    let mut child = Command::new(BIN)
        .args(["local", "--bind", "127.0.0.1:0", "--chaos", spec])
        .stdout(Stdio::piped())
        .stdin(Stdio::null())
        .spawn()
        .expect("start local");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let started = Instant::now();
    let local = Killer(child);
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("no URL in {line:?}"))
        .to_owned();
    (local, url, started)
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
    let (_local, url, started) = local_with_chaos(&spec);
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
    let coordinator = |key: &str| coordinator(&url, &b, key);
    let active = coordinator("coordA");
    wait_active(&url, &b, active.0.id(), Duration::from_secs(15));
    let standby = coordinator("coordB");

    // Phase 0, before the cut.
    all_released(0, &outcomes(waits(&url, &b, &["a", "b", "c", "d"], 0)), "");
    assert!(
        started.elapsed() < Duration::from_secs(CUT.0),
        "too slow to start"
    );

    // Phase 1: a arrives before the cut with data (the coordinator, resting
    // since phase 0, takes the lease again for it, and keeps its check-in
    // until the release is published: it cannot rest), the others once it
    // started: the coordinator that counted them releases them at once (its
    // notice needs no state write) and, with that release unrecorded, keeps
    // the lease through the cut. A standby that took over now would break
    // phase 1 by its deadline.
    until(started, CUT.0 - 3);
    let mut phase1 = vec![wait_with_data(&url, &b, "a", 1)];
    until(started, CUT.0 + 1);
    phase1.extend(waits(&url, &b, &["b", "c", "d"], 1));
    all_released(1, &outcomes(phase1), "");

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
    // The standby took the active one for dead during the cut and waits
    // for the lease: it takes it once the healed one, with everything it
    // decided published, rests (section 2 of docs/PROTOCOL.md, "Resting").
    // One of the two is active, the other stands by.
    let (now_active, standbys) = active_and_standbys(&url, &b);
    let ours = [active.0.id(), standby.0.id()].map(|pid| format!("/{pid}"));
    assert!(
        ours.iter().any(|p| now_active.ends_with(p)) && standbys.iter().all(|s| s != &now_active),
        "active {now_active}, standing by {standbys:?}"
    );
}

/// A coordinator that released a phase while cut off from its state queue
/// dies before it could record the release, and the phase's deadline has
/// passed by the time its standby takes over: the standby must count the
/// release again from the check-ins the dead one held (they come back
/// within the check-in visibility, before its restart grace ends), not
/// break the phase its members have passed.
#[test]
fn a_release_the_dead_coordinator_never_recorded_is_not_broken_by_its_deadline() {
    // The cut never heals: the coordinator it cuts is killed during it.
    let spec = "any[queue=-state;key=coordA;from=10;to=600].error=1";
    let (_local, url, started) = local_with_chaos(spec);
    let b = name();
    setup(&url, &b, "4", &["--members", "a,b,c,d", "--deadline", "20"]);
    let coordinator = |key: &str| coordinator(&url, &b, key);
    let active = coordinator("coordA");
    wait_active(&url, &b, active.0.id(), Duration::from_secs(10));
    let standby = coordinator("coordB");

    // Phase 0, before the cut: its release opens phase 1, whose deadline
    // runs from then (20 s).
    all_released(0, &outcomes(waits(&url, &b, &["a", "b", "c", "d"], 0)), "");
    let phase1_opened = started.elapsed();
    assert!(phase1_opened < Duration::from_secs(10), "too slow to start");

    // Phase 1: a arrives before the cut with data (the coordinator, resting
    // since phase 0, takes the lease again for it and keeps its check-in
    // until the release is published: it cannot rest), the others once it
    // started: released at once (a notice needs no write), and with that
    // release unrecorded the coordinator keeps the lease.
    until(started, 7);
    let mut phase1 = vec![wait_with_data(&url, &b, "a", 1)];
    until(started, 11);
    phase1.extend(waits(&url, &b, &["b", "c", "d"], 1));
    all_released(1, &outcomes(phase1), "");
    // Killed before any state write could record that release, late
    // enough that its lease (8-10 s from its last extension) outlasts
    // phase 1's deadline.
    std::thread::sleep((phase1_opened + Duration::from_secs(15)).saturating_sub(started.elapsed()));
    drop(active);
    let killed = started.elapsed();

    // The standby takes over once the dead one's lease runs out, after
    // phase 1's deadline.
    wait_active(&url, &b, standby.0.id(), Duration::from_secs(30));
    let took_over = started.elapsed();
    assert!(
        took_over > phase1_opened + Duration::from_secs(20),
        "the standby took over at {took_over:?}, before phase 1's deadline \
         ({phase1_opened:?} + 20 s): the test shows nothing"
    );
    // Its restart grace, and the deadline it could then fire, are over.
    std::thread::sleep(Duration::from_secs(8));

    // Phase 1 stays released: the members go on to phase 2, which the
    // standby releases (a broken barrier would fail every wait here).
    all_released(2, &outcomes(waits(&url, &b, &["a", "b", "c", "d"], 2)), "");
    let o = run(cmd(&url).args(["status", "--barrier", &b, "--json"]));
    assert!(o.status.success(), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(
        v["broken"].is_null() || v["broken"] == false,
        "broken after the takeover: {v}"
    );
    eprintln!(
        "phase 1 opened at {phase1_opened:?}, coordinator killed at {killed:?}, \
         standby active at {took_over:?}"
    );
}
