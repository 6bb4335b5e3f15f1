//! Membership changes, gathered data and quorum releases, as users run
//! them: `sqs-barrier` processes against the embedded endpoint and moto.

mod common;

use std::io::Write as _;
use std::process::{Child, Output, Stdio};
use std::time::Duration;

use common::*;
use sqs_barrier_testkit::Target;

macro_rules! both {
    ($($name:ident),* $(,)?) => {
        mod embedded { $( #[test] fn $name() { super::$name(sqs_barrier_testkit::Target::Embedded) } )* }
        mod moto { $( #[test] fn $name() { super::$name(sqs_barrier_testkit::Target::Moto) } )* }
    };
}

both!(
    gather_hands_every_member_the_data_of_all,
    members_leave_and_join_between_phases,
    a_quorum_release_goes_on_without_a_straggler,
);

const LIMIT: Duration = Duration::from_secs(90);

/// `sqs-barrier wait` for `id` at `phase` with `extra` arguments, stdin
/// holding `stdin` if given.
fn spawn(
    url: &str,
    barrier: &str,
    id: &str,
    phase: u64,
    extra: &[&str],
    stdin: Option<&str>,
) -> Child {
    let mut c = cmd(url);
    c.args(["wait", "--barrier", barrier, "--id", id])
        .args(["--phase", &phase.to_string(), "--timeout", "60"])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if stdin.is_some() {
        c.stdin(Stdio::piped());
    }
    let mut child = c.spawn().unwrap();
    if let Some(data) = stdin {
        let mut w = child.stdin.take().unwrap();
        w.write_all(data.as_bytes()).unwrap();
    }
    child
}

fn ok(o: &Output) -> String {
    assert!(o.status.success(), "{}", text(o));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn gather_hands_every_member_the_data_of_all(target: Target) {
    let rt = runtime();
    let (_e, url) = endpoint(target, &rt);
    let b = name();
    setup(&url, &b, "3", &["--members", "a,b,c"]);
    let _c = spawn_coordinator(&url, &b);
    let dir = tempfile_dir();
    let file = dir.join("b.txt");
    std::fs::write(&file, "s3://bucket/part-b \"quoted\"\n").unwrap();
    let file = file.to_str().unwrap();

    // Too large for three members: fails before anything is sent.
    let big = "x".repeat(400 * 1024);
    let o = finish(spawn(&url, &b, "a", 0, &["--data", "-"], Some(&big)), LIMIT);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("SQS's largest message"),
        "{}",
        text(&o)
    );

    let waits = [
        spawn(
            &url,
            &b,
            "a",
            0,
            &["--data", "-", "--gather"],
            Some("ä → 1"),
        ),
        spawn(&url, &b, "b", 0, &["--data", file, "--gather"], None),
        spawn(&url, &b, "c", 0, &["--gather"], None),
    ];
    let outs: Vec<String> = waits.into_iter().map(|w| ok(&finish(w, LIMIT))).collect();
    let expected = serde_json::json!({"a": "ä → 1", "b": "s3://bucket/part-b \"quoted\"\n"});
    for out in &outs {
        let got: serde_json::Value = serde_json::from_str(out.trim()).expect(out);
        assert_eq!(got, expected);
    }
    // The next phase gathers afresh: nobody brings anything.
    let waits: Vec<Child> = ["a", "b", "c"]
        .iter()
        .map(|id| spawn(&url, &b, id, 1, &["--gather"], None))
        .collect();
    for w in waits {
        assert_eq!(ok(&finish(w, LIMIT)).trim(), "{}");
    }
}

fn members_leave_and_join_between_phases(target: Target) {
    let rt = runtime();
    let (_e, url) = endpoint(target, &rt);
    let b = name();
    setup(&url, &b, "3", &["--members", "a,b,c"]);
    let _c = spawn_coordinator(&url, &b);
    // Phase 0: all three.
    let waits: Vec<Child> = ["a", "b", "c"]
        .iter()
        .map(|id| spawn(&url, &b, id, 0, &[], None))
        .collect();
    for w in waits {
        ok(&finish(w, LIMIT));
    }
    // Phase 1: c arrives and leaves without waiting; a and b are released.
    let o = run(cmd(&url).args(["leave", "--barrier", &b, "--id", "c", "--phase", "1"]));
    assert!(ok(&o).contains("left"), "{}", text(&o));
    let waits: Vec<Child> = ["a", "b"]
        .iter()
        .map(|id| spawn(&url, &b, id, 1, &[], None))
        .collect();
    for w in waits {
        let out = ok(&finish(w, LIMIT));
        assert!(
            out.contains("phase 1 released") && !out.contains("without"),
            "{out}"
        );
    }
    // d joins: expected from phase 2, the first with no arrival counted.
    let o = run(cmd(&url).args(["join", "--barrier", &b, "--id", "d"]));
    assert_eq!(ok(&o).trim(), "d 2", "{}", text(&o));
    // Joining again as a member is refused.
    let o = run(cmd(&url).args(["join", "--barrier", &b, "--id", "a"]));
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let status = ok(&run(cmd(&url).args(["status", "--barrier", &b])));
    assert!(
        status.contains("members, from phase 2 on: a, b, d (3)"),
        "{status}"
    );
    // Phase 2 waits for d, not for c; c is told it is not expected.
    let a = spawn(&url, &b, "a", 2, &[], None);
    let bb = spawn(&url, &b, "b", 2, &[], None);
    std::thread::sleep(Duration::from_millis(1500));
    let o = finish(spawn(&url, &b, "c", 2, &[], None), LIMIT);
    assert_eq!(o.status.code(), Some(7), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("join"),
        "{}",
        text(&o)
    );
    let d = spawn(&url, &b, "d", 2, &["--leave"], None);
    for w in [a, bb, d] {
        assert!(ok(&finish(w, LIMIT)).contains("phase 2 released"));
    }
    // d left with the release of phase 2: phase 3 is a and b.
    let waits: Vec<Child> = ["a", "b"]
        .iter()
        .map(|id| spawn(&url, &b, id, 3, &[], None))
        .collect();
    for w in waits {
        ok(&finish(w, LIMIT));
    }
    // A numbered barrier gives a joiner the next number.
    let n = name();
    setup(&url, &n, "2", &[]);
    let _cn = spawn_coordinator(&url, &n);
    let o = run(cmd(&url).args(["join", "--barrier", &n]));
    assert_eq!(ok(&o).trim(), "2 0", "{}", text(&o));
    let waits: Vec<Child> = ["0", "1", "2"]
        .iter()
        .map(|id| spawn(&url, &n, id, 0, &[], None))
        .collect();
    for w in waits {
        ok(&finish(w, LIMIT));
    }
}

fn a_quorum_release_goes_on_without_a_straggler(target: Target) {
    let rt = runtime();
    let (_e, url) = endpoint(target, &rt);
    let b = name();
    setup(&url, &b, "3", &["--quorum", "2", "--grace", "1"]);
    let _c = spawn_coordinator(&url, &b);
    let waits: Vec<Child> = ["0", "1"]
        .iter()
        .map(|id| spawn(&url, &b, id, 0, &[], None))
        .collect();
    // Both lines name the member the release went on without.
    for w in waits {
        let out = ok(&finish(w, LIMIT));
        assert!(out.contains("phase 0 released"), "{out}");
        assert!(out.contains("; without 2 (members no more)"), "{out}");
    }
    // The straggler arrives after the release: it does not pass.
    let o = finish(spawn(&url, &b, "2", 0, &[], None), LIMIT);
    assert_eq!(o.status.code(), Some(7), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("a quorum release went on without it"),
        "{}",
        text(&o)
    );
    // Nor into the next phase, which no longer waits for it.
    let o = finish(spawn(&url, &b, "2", 1, &[], None), LIMIT);
    assert_eq!(o.status.code(), Some(7), "{}", text(&o));
    let waits: Vec<Child> = ["0", "1"]
        .iter()
        .map(|id| spawn(&url, &b, id, 1, &[], None))
        .collect();
    for w in waits {
        assert!(ok(&finish(w, LIMIT)).contains("phase 1 released"));
    }
    let status = ok(&run(cmd(&url).args(["status", "--barrier", &b, "--json"])));
    let st: serde_json::Value = serde_json::from_str(&status).unwrap();
    assert_eq!(st["quorum"]["min"], 2, "{status}");
    assert_eq!(
        st["members_by_phase"][0]["members"],
        serde_json::json!(["0", "1"]),
        "{status}"
    );
}

/// A fresh directory under the system's temporary directory.
fn tempfile_dir() -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("sqs-barrier-test-{}", name()));
    std::fs::create_dir_all(&d).unwrap();
    d
}
