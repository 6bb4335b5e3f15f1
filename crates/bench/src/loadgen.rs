//! Load generator (the `loadgen` binary): the embedded endpoint against moto, measured
//! in the same run with the same client.
//!
//! ```text
//! cargo run --release -p sqs-barrier-bench --bin loadgen -- \
//!     [--moto PATH_TO_moto_server | --no-moto] [--rounds 5] [--secs 1.5] \
//!     [--handoffs 100] [--clients 8] [--depth 1000000] [--ops 2000] \
//!     [--moto-depth 1000] [--moto-ops 50] [--only seq,handoff,conc,deep,moto-deep] [--json]
//! ```
//!
//! Both servers run as separate processes on loopback: the embedded endpoint is this
//! same binary re-executed in server mode (`loadgen --serve 127.0.0.1:0`, a
//! multi-threaded tokio runtime with one worker per core), moto is `moto_server -H
//! 127.0.0.1 -p PORT`. So the server's CPU time and RSS are read from
//! `/proc/<pid>/stat` and `/proc/<pid>/status` of a process that runs nothing else,
//! and the client's own CPU time from `/proc/self/stat`.
//!
//! The client is deliberately thin: blocking sockets, one keep-alive HTTP/1.1
//! connection per client thread, raw requests with the AWS JSON 1.0 headers and a
//! fake (unchecked) SigV4 `Authorization` header, which moto needs to route the
//! request to SQS. moto answers every request with `Connection: close`; the client
//! then reconnects *before* starting the next latency sample (connection setup is in
//! the calls/s figures, not in the latency percentiles).
//!
//! Measurements (each repeated `--rounds` times; the report shows the median of the
//! rounds):
//!
//! * `seq`: sequential `SendMessage` (200-byte body) from one client for `--secs`:
//!   calls/s, p50/p99 latency.
//! * `handoff`: a receiver connection long-polls (`WaitTimeSeconds=20`); once its
//!   request is written and has had 20 ms to arrive, a sender connection sends; the
//!   sample is from just before the send is written to the moment the receive's
//!   response is read.
//! * `conc`: `--clients` threads, each with its own connection, send to one queue for
//!   `--secs`: total calls/s, server CPU (cores = CPU seconds / wall seconds) and the
//!   client's CPU.
//! * `deep` (embedded only): send, receive (10 per call) and delete rates at depth ~0,
//!   then fill to `--depth` messages of 200 bytes with `SendMessageBatch`, read the
//!   server's RSS, and measure the same rates at that depth.
//! * `moto-deep`: the same rates on moto at depth 0 and at `--moto-depth`.
//!
//! `--attach HOST:PORT [--pid PID]` measures an already running endpoint instead of
//! spawning one (e.g. one started under `perf record`).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier, mpsc};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const AUTH: &str = "AWS4-HMAC-SHA256 Credential=x/20260101/us-east-1/sqs/aws4_request, SignedHeaders=host, Signature=0";
const BODY_BYTES: usize = 200;

// ---------------------------------------------------------------------------------
// Options
// ---------------------------------------------------------------------------------

struct Options {
    moto: Option<String>,
    rounds: usize,
    secs: f64,
    handoffs: usize,
    clients: usize,
    depth: usize,
    ops: usize,
    moto_depth: usize,
    moto_ops: usize,
    only: Vec<String>,
    json: bool,
    attach: Option<SocketAddr>,
    pid: Option<u32>,
}

fn usage() -> ! {
    eprintln!(
        "usage: loadgen [--moto PATH | --no-moto] [--rounds N] [--secs S] [--handoffs N] \
         [--clients N] [--depth N] [--ops N] [--moto-depth N] [--moto-ops N] \
         [--only seq,handoff,conc,deep,moto-deep] [--attach HOST:PORT [--pid PID]] [--json]\n\
         \x20      loadgen --serve HOST:PORT"
    );
    std::process::exit(2)
}

fn parse_options(args: &[String]) -> Options {
    let default_moto = concat!(env!("CARGO_MANIFEST_DIR"), "/../../.venv/bin/moto_server");
    let mut o = Options {
        moto: std::path::Path::new(default_moto)
            .exists()
            .then(|| default_moto.to_owned()),
        rounds: 5,
        secs: 1.5,
        handoffs: 100,
        clients: 8,
        depth: 1_000_000,
        ops: 2000,
        moto_depth: 1_000,
        moto_ops: 50,
        only: ["seq", "handoff", "conc", "deep", "moto-deep"]
            .map(str::to_owned)
            .to_vec(),
        json: false,
        attach: None,
        pid: None,
    };
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let mut value = || it.next().cloned().unwrap_or_else(|| usage());
        match arg.as_str() {
            "--moto" => o.moto = Some(value()),
            "--no-moto" => o.moto = None,
            "--rounds" => o.rounds = value().parse().unwrap_or_else(|_| usage()),
            "--secs" => o.secs = value().parse().unwrap_or_else(|_| usage()),
            "--handoffs" => o.handoffs = value().parse().unwrap_or_else(|_| usage()),
            "--clients" => o.clients = value().parse().unwrap_or_else(|_| usage()),
            "--depth" => o.depth = value().parse().unwrap_or_else(|_| usage()),
            "--ops" => o.ops = value().parse().unwrap_or_else(|_| usage()),
            "--moto-depth" => o.moto_depth = value().parse().unwrap_or_else(|_| usage()),
            "--moto-ops" => o.moto_ops = value().parse().unwrap_or_else(|_| usage()),
            "--only" => o.only = value().split(',').map(str::to_owned).collect(),
            "--attach" => o.attach = Some(value().parse().unwrap_or_else(|_| usage())),
            "--pid" => o.pid = Some(value().parse().unwrap_or_else(|_| usage())),
            "--json" => o.json = true,
            _ => usage(),
        }
    }
    if o.rounds == 0 || o.ops < 10 || o.moto_ops < 10 || o.clients == 0 {
        usage();
    }
    o
}

// ---------------------------------------------------------------------------------
// Server mode and server processes
// ---------------------------------------------------------------------------------

/// `loadgen --serve ADDR`: runs the embedded endpoint until stdin closes.
fn serve(addr: &str) {
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
struct Target {
    name: &'static str,
    addr: SocketAddr,
    pid: Option<u32>,
    child: Option<Child>,
}

impl Drop for Target {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn spawn_embedded() -> Target {
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

fn spawn_moto(path: &str) -> Target {
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

// ---------------------------------------------------------------------------------
// /proc
// ---------------------------------------------------------------------------------

fn clock_ticks() -> f64 {
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
fn cpu_seconds(pid: Option<u32>, ticks: f64) -> Option<f64> {
    let path = pid.map_or("/proc/self/stat".to_owned(), |p| format!("/proc/{p}/stat"));
    stat_cpu_seconds(&path, ticks)
}

/// utime + stime of each thread of a process, in seconds, by thread id.
fn thread_cpu_seconds(pid: Option<u32>, ticks: f64) -> Vec<(String, f64)> {
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
fn busiest_threads(before: &[(String, f64)], after: &[(String, f64)], wall: f64) -> Vec<f64> {
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
fn status_mib(pid: u32, field: &str) -> Option<f64> {
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

// ---------------------------------------------------------------------------------
// The client
// ---------------------------------------------------------------------------------

/// One keep-alive HTTP/1.1 connection speaking AWS JSON 1.0.
struct Conn {
    addr: SocketAddr,
    reader: Option<BufReader<TcpStream>>,
    request: Vec<u8>,
    reconnects: u64,
}

impl Conn {
    fn new(addr: SocketAddr) -> Conn {
        let mut conn = Conn {
            addr,
            reader: None,
            request: Vec::with_capacity(4096),
            reconnects: 0,
        };
        conn.ensure_open();
        conn
    }

    /// Opens the connection if the server closed it (moto closes after every answer).
    fn ensure_open(&mut self) {
        if self.reader.is_none() {
            let stream = TcpStream::connect(self.addr).expect("connect");
            stream.set_nodelay(true).expect("nodelay");
            self.reader = Some(BufReader::with_capacity(64 * 1024, stream));
            self.reconnects += 1;
        }
    }

    /// Writes a request without waiting for the answer.
    fn send(&mut self, op: &str, body: &str) {
        self.ensure_open();
        self.request.clear();
        write!(
            self.request,
            "POST / HTTP/1.1\r\nHost: {}\r\nContent-Type: application/x-amz-json-1.0\r\n\
             X-Amz-Target: AmazonSQS.{op}\r\nAuthorization: {AUTH}\r\nContent-Length: {}\r\n\r\n",
            self.addr,
            body.len()
        )
        .expect("format");
        self.request.extend_from_slice(body.as_bytes());
        let reader = self.reader.as_mut().expect("open");
        reader
            .get_mut()
            .write_all(&self.request)
            .expect("write request");
    }

    /// Reads one answer: status and body.
    fn receive(&mut self) -> (u16, Vec<u8>) {
        let reader = self.reader.as_mut().expect("open");
        let mut line = String::new();
        reader.read_line(&mut line).expect("read status");
        let status: u16 = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("bad status line {line:?}"));
        let mut length = None;
        let mut chunked = false;
        let mut close = false;
        loop {
            line.clear();
            reader.read_line(&mut line).expect("read header");
            let header = line.trim_end();
            if header.is_empty() {
                break;
            }
            let Some((name, value)) = header.split_once(':') else {
                continue;
            };
            let value = value.trim();
            if name.eq_ignore_ascii_case("content-length") {
                length = value.parse::<usize>().ok();
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                chunked = value.eq_ignore_ascii_case("chunked");
            } else if name.eq_ignore_ascii_case("connection") {
                close = value.eq_ignore_ascii_case("close");
            }
        }
        let mut body = Vec::new();
        if chunked {
            loop {
                line.clear();
                reader.read_line(&mut line).expect("chunk size");
                let size = usize::from_str_radix(line.trim().split(';').next().unwrap_or(""), 16)
                    .expect("chunk size");
                let mut chunk = vec![0; size + 2];
                reader.read_exact(&mut chunk).expect("chunk");
                if size == 0 {
                    break;
                }
                body.extend_from_slice(&chunk[..size]);
            }
        } else if let Some(length) = length {
            body.resize(length, 0);
            reader.read_exact(&mut body).expect("body");
        } else {
            reader.read_to_end(&mut body).expect("body");
            close = true;
        }
        if close {
            self.reader = None;
        }
        (status, body)
    }

    fn call(&mut self, op: &str, body: &str) -> (u16, Vec<u8>) {
        self.send(op, body);
        self.receive()
    }

    /// A call that must succeed; returns the parsed answer.
    fn ok(&mut self, op: &str, body: &str) -> Value {
        let (status, answer) = self.call(op, body);
        assert_eq!(
            status,
            200,
            "{op} failed: {}",
            String::from_utf8_lossy(&answer)
        );
        serde_json::from_slice(&answer).unwrap_or(Value::Null)
    }
}

fn create_queue(conn: &mut Conn, name: &str) -> String {
    let answer = conn.ok("CreateQueue", &json!({ "QueueName": name }).to_string());
    answer["QueueUrl"].as_str().expect("QueueUrl").to_owned()
}

fn delete_queue(conn: &mut Conn, url: &str) {
    conn.ok("DeleteQueue", &json!({ "QueueUrl": url }).to_string());
}

fn send_body(url: &str) -> String {
    json!({ "QueueUrl": url, "MessageBody": "x".repeat(BODY_BYTES) }).to_string()
}

fn receipt_handles(answer: &Value) -> Vec<String> {
    answer["Messages"]
        .as_array()
        .map(|messages| {
            messages
                .iter()
                .filter_map(|m| m["ReceiptHandle"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

// ---------------------------------------------------------------------------------
// Statistics
// ---------------------------------------------------------------------------------

fn percentile_us(samples: &mut [Duration], p: f64) -> f64 {
    if samples.is_empty() {
        return f64::NAN;
    }
    samples.sort_unstable();
    let rank = ((samples.len() as f64) * p).ceil() as usize;
    samples[rank.clamp(1, samples.len()) - 1].as_secs_f64() * 1e6
}

fn median(values: &[f64]) -> f64 {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| !x.is_nan()).collect();
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    if v.len() % 2 == 1 {
        v[mid]
    } else {
        (v[mid - 1] + v[mid]) / 2.0
    }
}

/// Per-round values of named metrics; reported as medians.
#[derive(Default)]
struct Rounds(Vec<(String, Vec<f64>)>);

impl Rounds {
    fn push(&mut self, name: &str, value: f64) {
        match self.0.iter_mut().find(|(n, _)| n == name) {
            Some((_, v)) => v.push(value),
            None => self.0.push((name.to_owned(), vec![value])),
        }
    }

    fn median(&self, name: &str) -> f64 {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map_or(f64::NAN, |(_, v)| median(v))
    }

    fn to_json(&self) -> Value {
        let mut map = serde_json::Map::new();
        for (name, values) in &self.0 {
            map.insert(
                name.clone(),
                json!({ "median": median(values), "rounds": values }),
            );
        }
        Value::Object(map)
    }
}

// ---------------------------------------------------------------------------------
// Measurements
// ---------------------------------------------------------------------------------

fn log(msg: &str) {
    eprintln!("[loadgen] {msg}");
}

/// Sequential SendMessage from one client.
fn bench_seq(target: &Target, o: &Options, out: &mut Rounds) {
    let mut conn = Conn::new(target.addr);
    for round in 0..o.rounds {
        let url = create_queue(&mut conn, &format!("seq-{round}"));
        let body = send_body(&url);
        let mut samples = Vec::new();
        let start = Instant::now();
        while start.elapsed().as_secs_f64() < o.secs || samples.len() < 50 {
            conn.ensure_open();
            let t = Instant::now();
            let (status, _) = conn.call("SendMessage", &body);
            samples.push(t.elapsed());
            assert_eq!(status, 200, "SendMessage failed");
        }
        let wall = start.elapsed().as_secs_f64();
        let calls = samples.len() as f64 / wall;
        let (p50, p99) = (
            percentile_us(&mut samples, 0.5),
            percentile_us(&mut samples, 0.99),
        );
        log(&format!(
            "{} seq round {round}: {calls:.0} calls/s, p50 {p50:.0} us, p99 {p99:.0} us ({} calls)",
            target.name,
            samples.len()
        ));
        out.push("seq_calls_per_s", calls);
        out.push("seq_p50_us", p50);
        out.push("seq_p99_us", p99);
        delete_queue(&mut conn, &url);
    }
}

/// Send to a waiting long poll: from just before the send to the receive's return.
fn bench_handoff(target: &Target, o: &Options, out: &mut Rounds) {
    let mut sender = Conn::new(target.addr);
    for round in 0..o.rounds {
        let url = create_queue(&mut sender, &format!("handoff-{round}"));
        let send = send_body(&url);
        let receive = json!({ "QueueUrl": url, "WaitTimeSeconds": 20 }).to_string();
        let (go_tx, go_rx) = mpsc::channel::<()>();
        let (issued_tx, issued_rx) = mpsc::channel::<()>();
        let (done_tx, done_rx) = mpsc::channel::<(Instant, Vec<String>)>();
        let addr = target.addr;
        let receiver = std::thread::spawn(move || {
            let mut conn = Conn::new(addr);
            while go_rx.recv().is_ok() {
                conn.send("ReceiveMessage", &receive);
                issued_tx.send(()).expect("main");
                let (status, body) = conn.receive();
                let at = Instant::now();
                assert_eq!(status, 200, "ReceiveMessage failed");
                let answer: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                done_tx.send((at, receipt_handles(&answer))).expect("main");
                conn.ensure_open();
            }
        });
        let mut samples = Vec::new();
        for _ in 0..o.handoffs {
            go_tx.send(()).expect("receiver");
            issued_rx.recv().expect("receiver");
            // Let the receive reach the server and start waiting.
            std::thread::sleep(Duration::from_millis(20));
            sender.ensure_open();
            let sent_at = Instant::now();
            let (status, _) = sender.call("SendMessage", &send);
            assert_eq!(status, 200, "SendMessage failed");
            let (got_at, handles) = done_rx.recv().expect("receiver");
            if handles.is_empty() {
                log("a long poll returned no message; sample dropped");
                continue;
            }
            samples.push(got_at.saturating_duration_since(sent_at));
            for handle in handles {
                sender.ok(
                    "DeleteMessage",
                    &json!({ "QueueUrl": url, "ReceiptHandle": handle }).to_string(),
                );
            }
        }
        drop(go_tx);
        receiver.join().expect("receiver thread");
        let (p50, p99) = (
            percentile_us(&mut samples, 0.5),
            percentile_us(&mut samples, 0.99),
        );
        log(&format!(
            "{} handoff round {round}: p50 {p50:.0} us, p99 {p99:.0} us ({} samples)",
            target.name,
            samples.len()
        ));
        out.push("handoff_p50_us", p50);
        out.push("handoff_p99_us", p99);
        delete_queue(&mut sender, &url);
    }
}

/// `clients` connections sending to one queue at once.
fn bench_concurrent(target: &Target, o: &Options, ticks: f64, out: &mut Rounds) {
    let mut admin = Conn::new(target.addr);
    for round in 0..o.rounds {
        let url = create_queue(&mut admin, &format!("conc-{round}"));
        let body = Arc::new(send_body(&url));
        let stop = Arc::new(AtomicBool::new(false));
        let total = Arc::new(AtomicU64::new(0));
        let start_line = Arc::new(Barrier::new(o.clients + 1));
        let threads: Vec<_> = (0..o.clients)
            .map(|_| {
                let (addr, body, stop, total, start_line) = (
                    target.addr,
                    body.clone(),
                    stop.clone(),
                    total.clone(),
                    start_line.clone(),
                );
                std::thread::spawn(move || {
                    let mut conn = Conn::new(addr);
                    start_line.wait();
                    let mut calls = 0;
                    while !stop.load(Ordering::Relaxed) {
                        let (status, _) = conn.call("SendMessage", &body);
                        assert_eq!(status, 200, "SendMessage failed");
                        calls += 1;
                    }
                    total.fetch_add(calls, Ordering::Relaxed);
                })
            })
            .collect();
        start_line.wait();
        let server_cpu0 = cpu_seconds(target.pid, ticks);
        let threads0 = thread_cpu_seconds(target.pid, ticks);
        let client_cpu0 = cpu_seconds(None, ticks);
        let start = Instant::now();
        std::thread::sleep(Duration::from_secs_f64(o.secs.max(1.0)));
        let server_cpu1 = cpu_seconds(target.pid, ticks);
        let threads1 = thread_cpu_seconds(target.pid, ticks);
        let client_cpu1 = cpu_seconds(None, ticks);
        let wall = start.elapsed().as_secs_f64();
        stop.store(true, Ordering::Relaxed);
        for t in threads {
            t.join().expect("client thread");
        }
        // Calls finished after `stop` are few (one per client) against thousands.
        let calls = total.load(Ordering::Relaxed) as f64 / wall;
        let server_cores = match (server_cpu0, server_cpu1) {
            (Some(a), Some(b)) => (b - a) / wall,
            _ => f64::NAN,
        };
        let client_cores = match (client_cpu0, client_cpu1) {
            (Some(a), Some(b)) => (b - a) / wall,
            _ => f64::NAN,
        };
        let per_thread = busiest_threads(&threads0, &threads1, wall);
        let top = |i: usize| per_thread.get(i).copied().unwrap_or(f64::NAN);
        log(&format!(
            "{} {} clients round {round}: {calls:.0} calls/s, server {server_cores:.2} cores \
             (busiest threads {:.2}, {:.2}), client {client_cores:.2} cores",
            target.name,
            o.clients,
            top(0),
            top(1)
        ));
        out.push("conc_server_thread1_cores", top(0));
        out.push("conc_server_thread2_cores", top(1));
        out.push("conc_calls_per_s", calls);
        out.push("conc_server_cores", server_cores);
        out.push("conc_client_cores", client_cores);
        delete_queue(&mut admin, &url);
    }
}

/// Send `ops` messages, receive them (10 per call, kept in flight), delete them; one
/// rate per phase. At depth the receives take the oldest messages of the backlog.
fn rates(conn: &mut Conn, url: &str, ops: usize, prefix: &str, out: &mut Rounds) {
    let body = send_body(url);
    let start = Instant::now();
    for _ in 0..ops {
        conn.ensure_open();
        let (status, _) = conn.call("SendMessage", &body);
        assert_eq!(status, 200, "SendMessage failed");
    }
    let send = ops as f64 / start.elapsed().as_secs_f64();

    let receive =
        json!({ "QueueUrl": url, "MaxNumberOfMessages": 10, "VisibilityTimeout": 600 }).to_string();
    let mut handles = Vec::with_capacity(ops);
    let mut calls = 0usize;
    let start = Instant::now();
    while handles.len() < ops && calls < ops {
        handles.extend(receipt_handles(&conn.ok("ReceiveMessage", &receive)));
        calls += 1;
    }
    let elapsed = start.elapsed().as_secs_f64();
    let receive_calls = calls as f64 / elapsed;
    let received = handles.len() as f64 / elapsed;

    let start = Instant::now();
    for handle in &handles {
        conn.ok(
            "DeleteMessage",
            &json!({ "QueueUrl": url, "ReceiptHandle": handle }).to_string(),
        );
    }
    let delete = handles.len() as f64 / start.elapsed().as_secs_f64();
    log(&format!(
        "{prefix}: send {send:.0}/s, receive {receive_calls:.0} calls/s ({received:.0} msgs/s), delete {delete:.0}/s"
    ));
    out.push(&format!("{prefix}_send_per_s"), send);
    out.push(&format!("{prefix}_receive_calls_per_s"), receive_calls);
    out.push(&format!("{prefix}_receive_msgs_per_s"), received);
    out.push(&format!("{prefix}_delete_per_s"), delete);
}

fn fill(conn: &mut Conn, url: &str, depth: usize) -> f64 {
    let entries: Vec<Value> = (0..10)
        .map(|i| json!({ "Id": format!("e{i}"), "MessageBody": "y".repeat(BODY_BYTES) }))
        .collect();
    let batch = json!({ "QueueUrl": url, "Entries": entries }).to_string();
    let start = Instant::now();
    for i in 0..depth.div_ceil(10) {
        let (status, answer) = conn.call("SendMessageBatch", &batch);
        assert!(
            status == 200 && !String::from_utf8_lossy(&answer).contains("\"Failed\":[{"),
            "SendMessageBatch failed: {}",
            String::from_utf8_lossy(&answer)
        );
        if i > 0 && i % 20_000 == 0 {
            log(&format!("  filled {}", i * 10));
        }
    }
    depth as f64 / start.elapsed().as_secs_f64()
}

/// Rates at depth ~0 and at `depth`, with the server's memory.
fn bench_deep(target: &Target, depth: usize, ops: usize, o: &Options, out: &mut Rounds) {
    let mut conn = Conn::new(target.addr);
    let url = create_queue(&mut conn, "deep");
    for round in 0..o.rounds {
        log(&format!("{} depth 0, round {round}", target.name));
        rates(&mut conn, &url, ops, "depth0", out);
    }
    let rss0 = target.pid.and_then(|p| status_mib(p, "VmRSS"));
    log(&format!("{}: filling to {depth}", target.name));
    let fill_rate = fill(&mut conn, &url, depth);
    out.push("fill_msgs_per_s", fill_rate);
    if let Some(pid) = target.pid {
        let rss = status_mib(pid, "VmRSS").unwrap_or(f64::NAN);
        let hwm = status_mib(pid, "VmHWM").unwrap_or(f64::NAN);
        log(&format!(
            "{}: {depth} messages, RSS {rss:.0} MiB (before the fill {:.0} MiB, peak {hwm:.0} MiB)",
            target.name,
            rss0.unwrap_or(f64::NAN)
        ));
        out.push("rss_before_fill_mib", rss0.unwrap_or(f64::NAN));
        out.push("rss_at_depth_mib", rss);
        out.push("rss_peak_mib", hwm);
    }
    for round in 0..o.rounds {
        log(&format!("{} depth {depth}, round {round}", target.name));
        rates(&mut conn, &url, ops, "deep", out);
    }
    let attrs = conn.ok(
        "GetQueueAttributes",
        &json!({ "QueueUrl": url, "AttributeNames": ["ApproximateNumberOfMessages"] }).to_string(),
    );
    log(&format!(
        "{}: depth after the runs: {}",
        target.name, attrs["Attributes"]["ApproximateNumberOfMessages"]
    ));
    delete_queue(&mut conn, &url);
}

// ---------------------------------------------------------------------------------
// Report
// ---------------------------------------------------------------------------------

fn fmt(v: f64) -> String {
    if v.is_nan() {
        "-".to_owned()
    } else if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

fn row(what: &str, e: f64, m: f64, ratio: f64, target: &str) {
    println!(
        "| {what:<38} | {:>10} | {:>10} | {:>8} | {target:<22} |",
        fmt(e),
        fmt(m),
        if ratio.is_nan() {
            "-".to_owned()
        } else {
            format!("{ratio:.1}x")
        }
    );
}

/// PASS or MISS; `-` when a side was not measured (the comparison is NaN).
fn verdict(value: f64, ok: bool) -> &'static str {
    if value.is_nan() {
        "-"
    } else if ok {
        "PASS"
    } else {
        "MISS"
    }
}

fn report(o: &Options, e: &Rounds, m: &Rounds) {
    println!();
    println!(
        "Medians over {} rounds. Ratio: embedded/moto for rates, moto/embedded for latencies (how many times faster).",
        o.rounds
    );
    println!();
    println!(
        "| {:<38} | {:>10} | {:>10} | {:>8} | {:<22} |",
        "metric", "embedded", "moto", "ratio", "target"
    );
    println!(
        "|{:-<40}|{:-<12}|{:-<12}|{:-<10}|{:-<24}|",
        "", "", "", "", ""
    );
    let rate = |name: &str| {
        (
            e.median(name),
            m.median(name),
            e.median(name) / m.median(name),
        )
    };
    let lat = |name: &str| {
        (
            e.median(name),
            m.median(name),
            m.median(name) / e.median(name),
        )
    };
    let (a, b, r) = rate("seq_calls_per_s");
    row(
        "seq SendMessage calls/s",
        a,
        b,
        r,
        &format!("≥ 20x: {}", verdict(r, r >= 20.0)),
    );
    let (a, b, r) = lat("seq_p50_us");
    row("seq SendMessage p50 µs", a, b, r, "");
    let (a, b, r) = lat("seq_p99_us");
    row("seq SendMessage p99 µs", a, b, r, "");
    let (a, b, r) = lat("handoff_p50_us");
    row(
        "send → long poll p50 µs",
        a,
        b,
        r,
        &format!(
            "≤ 500 µs: {}, ≥ 10x: {}",
            verdict(a, a <= 500.0),
            verdict(r, r >= 10.0)
        ),
    );
    let (a, b, r) = lat("handoff_p99_us");
    row("send → long poll p99 µs", a, b, r, "");
    let (a, b, r) = rate("conc_calls_per_s");
    row(
        &format!("{} clients SendMessage calls/s", o.clients),
        a,
        b,
        r,
        "",
    );
    let (a, b, _) = rate("conc_server_cores");
    row(
        "  server CPU (cores)",
        a,
        b,
        f64::NAN,
        &format!("> 1.0: {}", verdict(a, a > 1.0)),
    );
    // moto (werkzeug) runs each connection on a new, short-lived thread, whose time
    // is gone from /proc when it exits: its per-thread figures mean nothing.
    let (a, _, _) = rate("conc_server_thread1_cores");
    row("  server busiest thread (cores)", a, f64::NAN, f64::NAN, "");
    let (a, _, _) = rate("conc_server_thread2_cores");
    row(
        "  server 2nd busiest thread (cores)",
        a,
        f64::NAN,
        f64::NAN,
        "",
    );
    let (a, b, _) = rate("conc_client_cores");
    row("  client CPU (cores)", a, b, f64::NAN, "");
    println!();
    let deep_rows = [
        ("send_per_s", "SendMessage/s"),
        ("receive_calls_per_s", "ReceiveMessage (10) calls/s"),
        ("receive_msgs_per_s", "  messages received/s"),
        ("delete_per_s", "DeleteMessage/s"),
    ];
    if !e.median("rss_at_depth_mib").is_nan() || !e.median("deep_send_per_s").is_nan() {
        println!(
            "Embedded at depth: {} messages of {BODY_BYTES} bytes (fill {} msgs/s with SendMessageBatch)",
            o.depth,
            fmt(e.median("fill_msgs_per_s"))
        );
        println!(
            "  server RSS {} MiB (before the fill {} MiB, peak {} MiB): < 1024 MiB: {}",
            fmt(e.median("rss_at_depth_mib")),
            fmt(e.median("rss_before_fill_mib")),
            fmt(e.median("rss_peak_mib")),
            verdict(e.median("rss_peak_mib"), e.median("rss_peak_mib") < 1024.0)
        );
        println!();
        println!(
            "| {:<30} | {:>10} | {:>12} | {:>11} |",
            "operation", "depth ~0", "depth", "depth/0"
        );
        println!("|{:-<32}|{:-<12}|{:-<14}|{:-<13}|", "", "", "", "");
        for (key, label) in deep_rows {
            let a = e.median(&format!("depth0_{key}"));
            let b = e.median(&format!("deep_{key}"));
            println!(
                "| {label:<30} | {:>10} | {:>12} | {:>10.2}x |",
                fmt(a),
                fmt(b),
                b / a
            );
        }
        println!();
    }
    if !m.median("depth0_send_per_s").is_nan() {
        println!(
            "moto at depth 0 and {} (illustration; {} ops per phase):",
            o.moto_depth, o.moto_ops
        );
        println!(
            "| {:<30} | {:>10} | {:>12} | {:>11} |",
            "operation", "depth ~0", "depth", "depth/0"
        );
        println!("|{:-<32}|{:-<12}|{:-<14}|{:-<13}|", "", "", "", "");
        for (key, label) in deep_rows {
            let a = m.median(&format!("depth0_{key}"));
            let b = m.median(&format!("deep_{key}"));
            println!(
                "| {label:<30} | {:>10} | {:>12} | {:>10.2}x |",
                fmt(a),
                fmt(b),
                b / a
            );
        }
    }
}

/// Runs `loadgen` with the process's arguments (see the module documentation); exits
/// with 2 on a usage error. The process must be `loadgen` itself: it re-executes its
/// own executable to serve the embedded endpoint.
pub fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--serve") {
        serve(args.get(1).map_or("127.0.0.1:0", String::as_str));
        return;
    }
    let o = parse_options(&args);
    let ticks = clock_ticks();
    let has = |what: &str| o.only.iter().any(|w| w == what);

    let mut embedded_rounds = Rounds::default();
    let mut moto_rounds = Rounds::default();
    {
        let embedded = match o.attach {
            Some(addr) => Target {
                name: "embedded",
                addr,
                pid: o.pid,
                child: None,
            },
            None => spawn_embedded(),
        };
        log(&format!(
            "embedded endpoint on {} (pid {:?})",
            embedded.addr, embedded.pid
        ));
        if has("seq") {
            bench_seq(&embedded, &o, &mut embedded_rounds);
        }
        if has("handoff") {
            bench_handoff(&embedded, &o, &mut embedded_rounds);
        }
        if has("conc") {
            bench_concurrent(&embedded, &o, ticks, &mut embedded_rounds);
        }
        if has("deep") {
            bench_deep(&embedded, o.depth, o.ops, &o, &mut embedded_rounds);
        }
    }
    if let Some(path) = &o.moto {
        let moto = spawn_moto(path);
        log(&format!("moto on {} (pid {:?})", moto.addr, moto.pid));
        if has("seq") {
            bench_seq(&moto, &o, &mut moto_rounds);
        }
        if has("handoff") {
            bench_handoff(&moto, &o, &mut moto_rounds);
        }
        if has("conc") {
            bench_concurrent(&moto, &o, ticks, &mut moto_rounds);
        }
        if has("moto-deep") {
            bench_deep(&moto, o.moto_depth, o.moto_ops, &o, &mut moto_rounds);
        }
    } else {
        log("no moto_server (pass --moto PATH): moto columns are empty");
    }
    report(&o, &embedded_rounds, &moto_rounds);
    if o.json {
        println!(
            "{}",
            json!({
                "options": {
                    "rounds": o.rounds, "secs": o.secs, "handoffs": o.handoffs,
                    "clients": o.clients, "depth": o.depth, "ops": o.ops,
                    "moto_depth": o.moto_depth, "moto_ops": o.moto_ops,
                },
                "embedded": embedded_rounds.to_json(),
                "moto": moto_rounds.to_json(),
            })
        );
    }
}
