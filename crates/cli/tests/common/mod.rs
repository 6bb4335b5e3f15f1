//! Helpers of the tests that run the `sqs-barrier` binary as users do.
// Each test binary uses some of them.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use sqs_barrier_testkit::{Target, TestEndpoint};

pub const BIN: &str = env!("CARGO_BIN_EXE_sqs-barrier");

/// A command for the binary, pointed at `url` with placeholder credentials.
pub fn cmd(url: &str) -> Command {
    sqs_barrier_testkit::cli_command(BIN, url)
}

pub fn run(c: &mut Command) -> Output {
    c.output().expect("run sqs-barrier")
}

pub fn text(o: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Waits for `child` at most `limit`; kills it past that.
pub fn wait_for(child: &mut Child, limit: Duration) -> ExitStatus {
    let end = Instant::now() + limit;
    loop {
        if let Some(s) = child.try_wait().expect("try_wait") {
            return s;
        }
        if Instant::now() > end {
            let _ = child.kill();
            panic!("process still running after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub struct Killer(pub Child);
impl Drop for Killer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `sqs-barrier local` on a free port: the process and its URL.
pub fn local() -> (Killer, String) {
    let mut child = Command::new(BIN)
        .args(["local", "--bind", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stdin(Stdio::null())
        .spawn()
        .expect("start local");
    let out = child.stdout.take().unwrap();
    let mut line = String::new();
    BufReader::new(out).read_line(&mut line).unwrap();
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("no URL in {line:?}"))
        .to_owned();
    (Killer(child), url)
}

pub enum Endpoint {
    Local(#[allow(dead_code)] Killer),
    Other(#[allow(dead_code)] TestEndpoint),
}

pub fn endpoint(target: Target, rt: &tokio::runtime::Runtime) -> (Endpoint, String) {
    match target {
        Target::Embedded => {
            let (k, url) = local();
            (Endpoint::Local(k), url)
        }
        Target::Moto => {
            let e = rt.block_on(sqs_barrier_testkit::start(Target::Moto));
            let url = e.endpoint_url();
            (Endpoint::Other(e), url)
        }
    }
}

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap()
}

pub fn name() -> String {
    format!("cli{}", std::process::id() as u64 * 1000 + rand_small())
}

pub fn rand_small() -> u64 {
    use std::hash::{BuildHasher, RandomState};
    RandomState::new().hash_one(Instant::now()) % 1000
}

/// `sqs-barrier coordinator --barrier NAME`, the plain command.
pub fn spawn_coordinator(url: &str, barrier: &str) -> Killer {
    spawn_coordinator_with(url, barrier, None, &[])
}

/// The coordinator command with its wall clock `skew` off (see
/// [`skewed`]) and `extra` arguments.
pub fn spawn_coordinator_with(
    url: &str,
    barrier: &str,
    skew: Option<&str>,
    extra: &[&str],
) -> Killer {
    let mut c = cmd(url);
    if let Some(skew) = skew {
        skewed(&mut c, skew);
    }
    c.args(["coordinator", "--barrier", barrier]).args(extra);
    Killer(
        c.stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    )
}

/// Runs `c` with its wall clock off by `skew` (libfaketime's syntax, e.g.
/// `+300s`), preloading libfaketime (Debian's `faketime` package, installed
/// by scripts/test). Monotonic clocks are left alone. The process keeps its
/// pid (the `faketime` wrapper would fork).
pub fn skewed(c: &mut Command, skew: &str) {
    c.env("LD_PRELOAD", libfaketime())
        .env("FAKETIME", skew)
        .env("FAKETIME_DONT_FAKE_MONOTONIC", "1");
}

/// A wall clock that a test steps while the processes that use it run
/// (libfaketime reads the offset from a file at every clock read).
pub struct SteppedClock {
    file: std::path::PathBuf,
}

impl SteppedClock {
    pub fn new() -> Self {
        let file = std::env::temp_dir().join(format!(
            "sqs-barrier-clock-{}-{}",
            std::process::id(),
            rand_small()
        ));
        let clock = Self { file };
        clock.set("+0");
        clock
    }

    /// Steps the clock to `offset` from the real time (libfaketime's
    /// syntax: `+600`, `-600`).
    pub fn set(&self, offset: &str) {
        std::fs::write(&self.file, format!("{offset}\n")).expect("write the clock file");
    }

    /// Runs `c` on this clock; its monotonic clock is left alone.
    pub fn apply(&self, c: &mut Command) {
        c.env("LD_PRELOAD", libfaketime())
            .env("FAKETIME_TIMESTAMP_FILE", &self.file)
            .env("FAKETIME_NO_CACHE", "1")
            .env("FAKETIME_DONT_FAKE_MONOTONIC", "1");
    }
}

impl Drop for SteppedClock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.file);
    }
}

/// The path of libfaketime; a missing one fails the test (scripts/test
/// installs it), never skips it.
pub fn libfaketime() -> String {
    let o = Command::new("sh")
        .args(["-c", "ls /usr/lib/*/faketime/libfaketime.so.1"])
        .output()
        .expect("sh");
    let path = String::from_utf8_lossy(&o.stdout)
        .lines()
        .next()
        .unwrap_or("")
        .trim()
        .to_owned();
    assert!(
        o.status.success() && !path.is_empty(),
        "libfaketime is not installed (Debian's faketime package; scripts/test installs it)"
    );
    path
}

pub fn spawn_wait(url: &str, barrier: &str, id: &str, phase: u64, timeout: &str) -> Child {
    cmd(url)
        .args(["wait", "--barrier", barrier, "--id", id])
        .args(["--phase", &phase.to_string(), "--timeout", timeout])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

pub fn finish(child: Child, limit: Duration) -> Output {
    let mut child = child;
    wait_for(&mut child, limit);
    child.wait_with_output().unwrap()
}

pub fn setup(url: &str, barrier: &str, parties: &str, extra: &[&str]) {
    let o = run(cmd(url)
        .args(["setup", "--barrier", barrier, "--parties", parties])
        .args(extra));
    assert!(o.status.success(), "{}", text(&o));
}

/// The coordinator id a `status --json` shows, and its standbys.
pub fn active_and_standbys(url: &str, barrier: &str) -> (String, Vec<String>) {
    let o = run(cmd(url).args(["status", "--barrier", barrier, "--json"]));
    assert!(o.status.success(), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let standbys = v["standbys"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    (v["coordinator"].as_str().unwrap_or("").to_owned(), standbys)
}

/// Waits until `status` shows a coordinator of process `pid` active.
pub fn wait_active(url: &str, barrier: &str, pid: u32, limit: Duration) -> Duration {
    let start = Instant::now();
    loop {
        let (active, _) = active_and_standbys(url, barrier);
        if active.ends_with(&format!("/{pid}")) {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < limit,
            "process {pid} never became active (active: {active})"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}
