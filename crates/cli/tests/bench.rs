//! `sqs-barrier bench` as users run it: the real binary, on the embedded
//! endpoint it starts itself.

use std::process::{Command, Output, Stdio};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_sqs-barrier");

fn bench(args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("bench")
        .args(args)
        .env_remove("AWS_ENDPOINT_URL")
        .env_remove("AWS_PROFILE")
        .stdin(Stdio::null())
        .output()
        .expect("run sqs-barrier bench")
}

fn text(o: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Runs `bench ... --json`, checks it succeeded, and returns its last line.
fn report(args: &[&str]) -> Value {
    let o = bench(args);
    assert!(o.status.success(), "{}", text(&o));
    let stdout = String::from_utf8_lossy(&o.stdout);
    let last = stdout.lines().last().expect("some output");
    let v: Value = serde_json::from_str(last).unwrap_or_else(|e| panic!("{e}: {}", text(&o)));
    for key in [
        "release_p50_ms",
        "release_p99_ms",
        "release_max_ms",
        "requests_per_participant_episode",
        "requests_by_operation",
        "episodes_per_second",
        "handoff_p50_ms",
        "ratio_to_handoff",
        "parties",
        "episodes",
        "endpoint",
        "mode",
        "work_s",
        "checkin_requests_per_participant_episode",
        "waiting_requests_per_participant_episode",
        "waiting_mean_s",
        "waiting",
        "coordinator",
        "fanout_receivers",
        "fanout_floor_p50_ms",
        "fanout_floor_max_ms",
        "fanout_floor_samples",
        "fanout_settle_ms",
        "fanout_empty_receives",
        "ratio_to_fanout_floor",
        "tagging_actions",
        "tagging_actions_per_participant_episode",
        "tagging_actions_per_barrier_minute",
        "failed_tagging_attempts",
        "barrier_minutes",
    ] {
        assert!(v.get(key).is_some(), "no {key} in {v}");
    }
    v
}

fn f(v: &Value, k: &str) -> f64 {
    v[k].as_f64()
        .unwrap_or_else(|| panic!("{k} is not a number in {v}"))
}

fn check_sane(v: &Value) {
    let p50 = f(v, "release_p50_ms");
    assert!(p50 > 0.0, "{v}");
    assert!(f(v, "release_p99_ms") >= p50, "{v}");
    assert!(f(v, "release_max_ms") >= f(v, "release_p99_ms"), "{v}");
    assert!(f(v, "handoff_p50_ms") > 0.0, "{v}");
    assert!(f(v, "ratio_to_handoff") > 0.0, "{v}");
    assert!(f(v, "episodes_per_second") > 0.0, "{v}");
    assert_eq!(v["endpoint"], "embedded", "{v}");
    // The by-operation figures add up to the total.
    let by: f64 = v["requests_by_operation"]
        .as_object()
        .expect("an object")
        .values()
        .map(|x| x.as_f64().expect("a number"))
        .sum();
    let total = f(v, "requests_per_participant_episode");
    assert!((by - total).abs() < 0.01, "{by} vs {total} in {v}");
    check_floor(v);
    check_tagging(v);
}

/// The fan-out floor: N receivers, a positive time, and release p50 as a
/// multiple of it.
fn check_floor(v: &Value) {
    assert_eq!(v["fanout_receivers"], v["parties"], "{v}");
    // 11 samples below N = 1,000.
    assert_eq!(v["fanout_floor_samples"], 11, "{v}");
    let floor = f(v, "fanout_floor_p50_ms");
    assert!(floor > 0.0, "{v}");
    assert!(f(v, "fanout_floor_max_ms") >= floor, "{v}");
    assert!(f(v, "fanout_settle_ms") >= 20.0, "{v}");
    assert!(v["fanout_empty_receives"].as_u64().is_some(), "{v}");
    let ratio = f(v, "ratio_to_fanout_floor");
    let expected = f(v, "release_p50_ms") / floor;
    assert!(ratio > 0.0, "{v}");
    assert!(
        (ratio - expected).abs() <= 0.01 * expected + 0.001,
        "{ratio} vs {expected} in {v}"
    );
}

/// The tagging actions: the three tagging operations among the requests,
/// over N x E and over the counted window's minutes.
fn check_tagging(v: &Value) {
    let actions = v["tagging_actions"].as_u64().expect("a count");
    let pe = f(v, "parties") * f(v, "episodes");
    let per_pe = f(v, "tagging_actions_per_participant_episode");
    assert!(
        (per_pe - actions as f64 / pe).abs() <= 0.0005,
        "{per_pe} vs {actions} / {pe} in {v}"
    );
    // The same as the tagging operations' share of requests per
    // participant-episode (each rounded to three decimals).
    let by = &v["requests_by_operation"];
    let tagging: f64 = ["TagQueue", "UntagQueue", "ListQueueTags"]
        .iter()
        .filter_map(|op| by.get(*op).and_then(Value::as_f64))
        .sum();
    assert!(
        (tagging - per_pe).abs() <= 0.002,
        "{tagging} vs {per_pe} in {v}"
    );
    // Per barrier-minute: over the coordinator's counted window.
    let minutes = f(v, "barrier_minutes");
    assert!(minutes > 0.0, "{v}");
    assert_eq!(minutes, f(&v["coordinator"], "minutes"), "{v}");
    let per_min = f(v, "tagging_actions_per_barrier_minute");
    let expected = actions as f64 / minutes;
    assert!(
        (per_min - expected).abs() <= 1e-3 * expected + 0.001,
        "{per_min} vs {expected} in {v}"
    );
    let failed = v["failed_tagging_attempts"].as_u64().expect("a count");
    assert!(failed <= actions, "{v}");
}

#[test]
fn bench_in_process() {
    let v = report(&["--parties", "3", "--episodes", "5", "--json"]);
    check_sane(&v);
    assert_eq!(v["mode"], "barrier");
    assert_eq!(v["parties"], 3);
    assert_eq!(v["episodes"], 5);
    let r = f(&v, "requests_per_participant_episode");
    assert!((2.0..=10.0).contains(&r), "{v}");
    // Every participant sends one check-in and reads one notice per
    // episode, plus, when it polls before the coordinator's sweep, one
    // more receive and a delete of the old notice; the coordinator sends
    // one notice per episode, and its state writes (each a message on the
    // state queue) at most two per episode.
    let part = f(&v, "participant_requests_per_participant_episode");
    assert!((2.0..=3.0).contains(&part), "{v}");
    let sends = f(&v["requests_by_operation"], "SendMessage");
    assert!(
        (1.0 + 1.0 / 3.0 - 0.01..=1.0 + 3.0 / 3.0 + 0.01).contains(&sends),
        "{v}"
    );
    // bench-report shows the floor's ratio and the tagging actions.
    let table = bench_report(&v, "in-process");
    assert!(
        table.contains("| p50 / fan-out floor |")
            && table.contains("| tagging actions / participant-episode |"),
        "{table}"
    );
    let cell = format!("| {:.2} |", f(&v, "ratio_to_fanout_floor"));
    assert!(table.contains(&cell), "{cell} not in {table}");
}

/// Runs `bench-report` on one report; its table.
fn bench_report(v: &Value, what: &str) -> String {
    let json = std::env::temp_dir().join(format!(
        "sqs-barrier-bench-{what}-{}.json",
        std::process::id()
    ));
    std::fs::write(&json, v.to_string()).expect("write the report");
    let o = Command::new(BIN)
        .arg("bench-report")
        .arg(&json)
        .output()
        .expect("run bench-report");
    let _ = std::fs::remove_file(&json);
    assert!(o.status.success(), "{}", text(&o));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn bench_with_the_lambda_coordinator() {
    let v = report(&[
        "--parties",
        "4",
        "--episodes",
        "5",
        "--coordinator",
        "lambda",
        "--json",
    ]);
    check_sane(&v);
    assert_eq!(v["coordinator_kind"], "lambda", "{v}");
    let l = &v["lambda"];
    // Every episode's check-ins reach the function: at least one batch
    // invocation per episode, each record at least once.
    assert!(f(l, "invocations_per_episode") >= 1.0, "{v}");
    assert!(l["records"].as_u64().unwrap() >= 4 * 5, "{v}");
    assert_eq!(l["invocations_failed"], 0, "{v}");
    // The mapping deletes the check-ins, not the function.
    assert!(
        v["requests_by_operation"]
            .get("DeleteMessageBatch")
            .is_some(),
        "{v}"
    );
}

#[test]
fn bench_over_processes() {
    let v = report(&[
        "--parties",
        "3",
        "--episodes",
        "5",
        "--processes",
        "2",
        "--json",
    ]);
    check_sane(&v);
    assert_eq!(v["processes"], 2);
    let r = f(&v, "requests_per_participant_episode");
    assert!((2.0..=10.0).contains(&r), "{v}");
}

#[test]
fn bench_baseline() {
    let v = report(&["--baseline", "--parties", "2", "--episodes", "2", "--json"]);
    check_sane(&v);
    assert_eq!(v["mode"], "baseline");
    // The handout's participants poll once a second: nothing is faster than
    // a fraction of that, and it counts with GetQueueAttributes.
    assert!(f(&v, "release_p50_ms") > 100.0, "{v}");
    assert!(
        f(&v["requests_by_operation"], "GetQueueAttributes") > 0.0,
        "{v}"
    );
    // The handout's protocol tags nothing.
    assert_eq!(v["tagging_actions"], 0, "{v}");
    assert_eq!(f(&v, "tagging_actions_per_barrier_minute"), 0.0, "{v}");
    assert_eq!(v["failed_tagging_attempts"], 0, "{v}");
}

/// Checks the cost-of-waiting figures of a `--work` run of N participants
/// over E episodes.
fn check_waiting(v: &Value, work: f64) {
    assert_eq!(f(v, "work_s"), work, "{v}");
    assert!(v["seed"].as_u64().is_some(), "{v}");
    // One check-in per participant-episode, retries aside.
    let checkin = f(v, "checkin_requests_per_participant_episode");
    assert!((1.0..1.5).contains(&checkin), "{v}");
    // Every wait takes at least one long poll; waits shorter than 20 s need
    // no re-send.
    let per_wait = f(v, "waiting_requests_per_participant_episode");
    assert!((1.0..=3.0).contains(&per_wait), "{v}");
    let mean = f(v, "waiting_mean_s");
    assert!(mean > 0.0 && mean <= work + 10.0, "{v}");
    let w = &v["waiting"];
    assert!(f(w, "minutes") > 0.0, "{v}");
    let rate = f(w, "requests_per_minute");
    assert!(rate > 0.0, "{v}");
    let receives = f(&w["by_operation"], "ReceiveMessage");
    assert!(receives > 0.0 && receives <= 600.0, "{v}");
    assert!(
        (rate - w["requests"].as_f64().unwrap() / f(w, "minutes")).abs() < 0.01 * rate,
        "{v}"
    );
    // The coordinator's window is split into open and idle, exactly.
    let c = &v["coordinator"];
    assert!(
        f(c, "minutes") > 0.0 && f(c, "requests_per_minute") > 0.0,
        "{v}"
    );
    let (open, idle) = (&v["coordinator_open"], &v["coordinator_idle"]);
    assert!(f(open, "minutes") > 0.0 && f(idle, "minutes") > 0.0, "{v}");
    assert!(
        (f(open, "minutes") + f(idle, "minutes") - f(c, "minutes")).abs() < 1e-4,
        "{v}"
    );
    assert_eq!(
        open["requests"].as_u64().unwrap() + idle["requests"].as_u64().unwrap(),
        c["requests"].as_u64().unwrap(),
        "{v}"
    );
}

#[test]
fn bench_with_work() {
    let v = report(&[
        "--parties",
        "3",
        "--episodes",
        "2",
        "--work",
        "3",
        "--seed",
        "1",
        "--json",
    ]);
    check_sane(&v);
    check_waiting(&v, 3.0);
    // Three participants' work of up to 3 s: more than a second of waiting.
    assert!(f(&v["waiting"], "minutes") > 1.0 / 60.0, "{v}");
}

#[test]
fn bench_with_work_over_processes() {
    let v = report(&[
        "--parties",
        "3",
        "--episodes",
        "2",
        "--processes",
        "2",
        "--work",
        "2",
        "--seed",
        "1",
        "--json",
    ]);
    check_sane(&v);
    check_waiting(&v, 2.0);
    assert_eq!(v["processes"], 2);
}

/// Gathered data over two processes: every participant checks that each
/// release handed it everyone's data as brought (or the run fails).
#[test]
fn bench_with_gathered_data_over_processes() {
    let v = report(&[
        "--parties",
        "4",
        "--episodes",
        "5",
        "--processes",
        "2",
        "--data-bytes",
        "2000",
        "--json",
    ]);
    check_sane(&v);
    assert_eq!(v["data_bytes"], 2000, "{v}");
    // Too much for the membership: refused before anything runs.
    let o = bench(&[
        "--parties",
        "4",
        "--episodes",
        "1",
        "--data-bytes",
        "300000",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("largest message"));
    let o = bench(&[
        "--parties",
        "2",
        "--episodes",
        "1",
        "--data-bytes",
        "10",
        "--coordinator",
        "lambda",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
}

#[test]
fn bench_rejects_bad_arguments() {
    for args in [
        &["--parties", "0", "--episodes", "1"][..],
        &["--parties", "2", "--episodes", "0"],
        &["--parties", "2", "--episodes", "1", "--processes", "3"],
        &[
            "--parties",
            "2",
            "--episodes",
            "1",
            "--episode-timeout",
            "0",
        ],
        &["--parties", "2", "--episodes", "1", "--work=-1"],
        &["--parties", "2", "--duration", "0"],
        &["--parties", "2", "--episodes", "1", "--sample-queues", "0"],
        &["--parties", "2", "--duration", "1", "--baseline"],
    ] {
        let o = bench(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", text(&o));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains("must be"), "{args:?}: {err}");
    }
}

#[test]
fn bench_needs_episodes_or_duration_not_both() {
    for args in [
        &["--parties", "2"][..],
        &["--parties", "2", "--episodes", "1", "--duration", "1"],
    ] {
        let o = bench(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", text(&o));
    }
}

#[test]
fn bench_by_duration_in_process() {
    let v = report(&["--parties", "2", "--duration", "1", "--json"]);
    check_sane(&v);
    assert_eq!(f(&v, "duration_limit_s"), 1.0, "{v}");
    // A second of episodes that take milliseconds, back to back.
    assert!(v["episodes"].as_u64().unwrap() >= 10, "{v}");
    assert!(v.get("queue_series").is_none(), "{v}");
}

/// `--duration` with worker processes (permits over stdin) and the queue
/// sampler; then `bench-report --svg-queues` on its output.
#[test]
fn bench_by_duration_samples_queues() {
    let v = report(&[
        "--parties",
        "3",
        "--duration",
        "3",
        "--processes",
        "2",
        "--sample-queues",
        "0.5",
        "--json",
    ]);
    check_sane(&v);
    let episodes = v["episodes"].as_u64().unwrap();
    assert!(episodes >= 3, "{v}");
    let q = &v["queue_series"];
    assert_eq!(f(q, "interval_s"), 0.5, "{v}");
    assert_eq!(q["errors"], 0, "{v}");
    let names: Vec<&str> = q["queues"]
        .as_array()
        .expect("queues")
        .iter()
        .map(|x| x.as_str().expect("a name"))
        .collect();
    assert_eq!(names.len(), 6, "{v}");
    for (name, sfx) in names.iter().zip([
        "-dlq",
        "-checkin",
        "-release-0",
        "-release-1",
        "-state",
        "-lease.fifo",
    ]) {
        assert!(name.ends_with(sfx), "{name} in {v}");
    }
    let samples = q["samples"].as_array().expect("samples");
    // Sampling covers the warm-up, the 3 s and the pauses around them.
    assert!(samples.len() >= 7, "{} samples in {v}", samples.len());
    let count = |s: &Value, k: &str, q: usize| s[k][q].as_u64().expect("a count");
    let mut last = (-1.0, 0);
    for s in samples {
        let (t, e) = (f(s, "t_s"), s["episodes"].as_u64().unwrap());
        assert!(t > last.0 && e >= last.1, "{s} after {last:?}");
        last = (t, e);
        for k in ["visible", "in_flight", "delayed"] {
            assert_eq!(s[k].as_array().expect("counts").len(), 6, "{s}");
        }
        for q in 0..6 {
            assert_eq!(count(s, "delayed", q), 0, "{s}");
        }
        // Nothing on the dead-letter queue; on each release queue the
        // latest notice or two, and what a sweep holds while it decides (at
        // most one receive of ten).
        assert_eq!(count(s, "visible", 0) + count(s, "in_flight", 0), 0, "{s}");
        for q in [2, 3] {
            assert!(count(s, "visible", q) <= 3, "{s}");
            assert!(count(s, "in_flight", q) <= 10, "{s}");
        }
        // The state queue: the newest state, and what a write hides while
        // it replaces it (at most one receive of ten).
        assert!(count(s, "visible", 4) <= 3, "{s}");
        assert!(count(s, "in_flight", 4) <= 10, "{s}");
        // The lease queue: its one token, in flight while the coordinator
        // holds it.
        assert!(
            count(s, "visible", 5) + count(s, "in_flight", 5) <= 2,
            "{s}"
        );
        // Check-ins wait for a state write (at most one per 0.5 s) to be
        // deleted: never more than were sent.
        assert!(
            count(s, "visible", 1) + count(s, "in_flight", 1) <= 3 * (e + 1),
            "{s}"
        );
    }
    assert_eq!(samples[0]["episodes"], 0, "{v}");
    assert_eq!(last.1, episodes + 1, "{v}");
    // The last sample, after the last episode's deferred deletes: no
    // check-in is left.
    let end = samples.last().unwrap();
    assert_eq!(
        count(end, "visible", 1) + count(end, "in_flight", 1),
        0,
        "{v}"
    );

    let dir = std::env::temp_dir();
    let json = dir.join(format!("sqs-barrier-bench-{}.json", std::process::id()));
    let chart = json.with_extension("svg");
    std::fs::write(&json, v.to_string()).expect("write the report");
    let o = Command::new(BIN)
        .arg("bench-report")
        .arg(&json)
        .arg("--svg-queues")
        .arg(&chart)
        .output()
        .expect("run bench-report");
    assert!(o.status.success(), "{}", text(&o));
    let table = String::from_utf8_lossy(&o.stdout);
    assert!(
        table.contains("| release-0 |") && table.contains("| checkin |"),
        "{table}"
    );
    let svg = std::fs::read_to_string(&chart).expect("the chart");
    assert!(
        svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"),
        "{svg}"
    );
    // Visible and in flight for each of the six queues, and episodes/s.
    assert_eq!(svg.matches("<polyline").count(), 13, "{svg}");
    let _ = std::fs::remove_file(&json);
    let _ = std::fs::remove_file(&chart);
}
