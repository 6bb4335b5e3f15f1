//! The servers under test: the embedded endpoint served by `loadgen --serve`,
//! the processes of the embedded endpoint and of moto, and what `/proc` says
//! about them (CPU time, per thread too, and memory).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::options::usage;

/// `loadgen --serve ADDR`: runs the embedded endpoint until stdin closes.
pub(super) fn serve(addr: &str) {
    let addr: SocketAddr = addr.parse().unwrap_or_else(|_| usage());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let server = sqs_barrier_local::Server::bind(addr).await.expect("bind");
        println!("listening {}", server.local_addr());
        std::io::stdout().flush().expect("stdout");
        // The parent holds our stdin; when it exits (or drops it), we stop.
        let (tx, rx) = tokio::sync::oneshot::channel();
        std::thread::spawn(move || {
            let mut sink = Vec::new();
            let _ = std::io::stdin().read_to_end(&mut sink);
            let _ = tx.send(());
        });
        let _ = rx.await;
        server.shutdown().await;
    });
}

/// A server under test.
pub(super) struct Target {
    pub(super) name: &'static str,
    pub(super) addr: SocketAddr,
    pub(super) pid: Option<u32>,
    pub(super) child: Option<Child>,
}

impl Drop for Target {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

pub(super) fn spawn_embedded() -> Target {
    let exe = std::env::current_exe().expect("current exe");
    let mut child = Command::new(exe)
        .args(["--serve", "127.0.0.1:0"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn the embedded endpoint");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("read the endpoint's address");
    let addr = line
        .trim()
        .strip_prefix("listening ")
        .and_then(|a| a.parse().ok())
        .expect("the endpoint's address");
    Target {
        name: "embedded",
        addr,
        pid: Some(child.id()),
        child: Some(child),
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

pub(super) fn spawn_moto(path: &str) -> Target {
    let port = free_port();
    let child = Command::new(path)
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {path}: {e}"));
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let deadline = Instant::now() + Duration::from_secs(60);
    while TcpStream::connect(addr).is_err() {
        assert!(Instant::now() < deadline, "moto did not start on {addr}");
        std::thread::sleep(Duration::from_millis(100));
    }
    Target {
        name: "moto",
        addr,
        pid: Some(child.id()),
        child: Some(child),
    }
}

pub(super) fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

/// utime + stime from a `stat` file of /proc, in seconds.
fn stat_cpu_seconds(path: &str, ticks: f64) -> Option<f64> {
    let stat = std::fs::read_to_string(path).ok()?;
    // Fields after the command name (which may hold spaces) start at field 3.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / ticks)
}

/// utime + stime of a process (this one if `None`), in seconds.
pub(super) fn cpu_seconds(pid: Option<u32>, ticks: f64) -> Option<f64> {
    let path = pid.map_or("/proc/self/stat".to_owned(), |p| format!("/proc/{p}/stat"));
    stat_cpu_seconds(&path, ticks)
}

/// utime + stime of each thread of a process, in seconds, by thread id.
pub(super) fn thread_cpu_seconds(pid: Option<u32>, ticks: f64) -> Vec<(String, f64)> {
    let Some(pid) = pid else {
        return Vec::new();
    };
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    tasks
        .filter_map(|task| {
            let tid = task.ok()?.file_name().into_string().ok()?;
            let seconds = stat_cpu_seconds(&format!("/proc/{pid}/task/{tid}/stat"), ticks)?;
            Some((tid, seconds))
        })
        .collect()
}

/// CPU used by each thread between two samples, busiest first, in cores.
pub(super) fn busiest_threads(
    before: &[(String, f64)],
    after: &[(String, f64)],
    wall: f64,
) -> Vec<f64> {
    let mut cores: Vec<f64> = after
        .iter()
        .map(|(tid, b)| {
            let a = before
                .iter()
                .find(|(t, _)| t == tid)
                .map_or(0.0, |(_, a)| *a);
            (b - a) / wall
        })
        .collect();
    cores.sort_by(|a, b| b.total_cmp(a));
    cores
}

/// A `/proc/<pid>/status` field in MiB (`VmRSS`, `VmHWM`).
pub(super) fn status_mib(pid: u32, field: &str) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kb / 1024.0)
}
