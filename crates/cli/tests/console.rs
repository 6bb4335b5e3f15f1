//! `sqs-barrier console` and `coordinator --metrics-bind` over plain HTTP,
//! as processes on the embedded endpoint. (The page itself is tested in a
//! browser by tests/python/test_console.py.)

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_sqs-barrier");

struct Killer(Child);
impl Drop for Killer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn cmd(url: &str) -> Command {
    sqs_barrier_testkit::cli_command(BIN, url)
}

/// Reads lines of `from` until one contains `needle`; returns its URL. The
/// rest of the output is drained on a thread (a closed pipe would make the
/// process's next message fail).
fn url_in(from: impl Read + Send + 'static, needle: &str) -> String {
    let mut lines = BufReader::new(from).lines();
    for line in lines.by_ref() {
        let line = line.expect("read a line");
        if line.contains(needle) {
            std::thread::spawn(move || lines.for_each(drop));
            return line
                .split_whitespace()
                .find(|w| w.starts_with("http://"))
                .unwrap_or_else(|| panic!("no URL in {line:?}"))
                .trim_end_matches([';', ')'])
                .to_owned();
        }
    }
    panic!("no line with {needle:?}");
}

/// One HTTP/1.1 request; returns the status, the head and the body.
fn http(url: &str, method: &str, headers: &[(&str, &str)], body: &str) -> (u16, String, String) {
    let rest = url.strip_prefix("http://").expect("http URL");
    let (authority, path) = rest
        .split_once('/')
        .map_or((rest, "/".to_owned()), |(a, p)| (a, format!("/{p}")));
    let mut s = TcpStream::connect(authority).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let (head, body) = out.split_once("\r\n\r\n").expect("a response");
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("a status");
    (status, head.to_ascii_lowercase(), body.to_owned())
}

fn eventually<T>(limit: Duration, mut probe: impl FnMut() -> Option<T>) -> T {
    let end = Instant::now() + limit;
    loop {
        if let Some(v) = probe() {
            return v;
        }
        assert!(Instant::now() < end, "not so within {limit:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn console_api_and_metrics() {
    let mut local = Command::new(BIN)
        .args(["local", "--bind", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stdin(Stdio::null())
        .spawn()
        .expect("start local");
    let url = url_in(local.stdout.take().unwrap(), "listening on");
    let _local = Killer(local);
    let barrier = format!("cons{:08x}", rand::random::<u32>());
    let o = cmd(&url)
        .args(["setup", "--barrier", &barrier, "--parties", "2"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{o:?}");

    let mut coordinator = cmd(&url)
        .args([
            "coordinator",
            "--barrier",
            &barrier,
            "--metrics-bind",
            "127.0.0.1:0",
        ])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let metrics = url_in(coordinator.stderr.take().unwrap(), "metrics at");
    let _coordinator = Killer(coordinator);
    let mut console = cmd(&url)
        .args(["console", "--bind", "127.0.0.1:0", "--prefix", &barrier])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let page = url_in(console.stdout.take().unwrap(), "sqs-barrier console:");
    let _console = Killer(console);
    let _member = Killer(
        cmd(&url)
            .args([
                "wait",
                "--barrier",
                &barrier,
                "--id",
                "0",
                "--phase",
                "0",
                "--timeout",
                "60",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );

    // The state names the member that has arrived and the one missing.
    let state = eventually(Duration::from_secs(20), || {
        let (status, _, body) = http(&format!("{page}api/state"), "GET", &[], "");
        assert_eq!(status, 200);
        let v: serde_json::Value = serde_json::from_str(&body).expect("JSON");
        let b = v["barriers"].get(0)?.clone();
        (b["missing"].get(0)?["member"] == "1").then_some(v)
    });
    let b = &state["barriers"][0];
    assert_eq!(b["arrived"][0]["member"], "0");
    assert_eq!(b["parties"], 2);
    assert_eq!(state["queues"].as_array().map(Vec::len), Some(6));

    // The page carries a token; an abort without it is refused.
    let (status, _, html) = http(&page, "GET", &[], "");
    assert_eq!(status, 200);
    assert!(html.contains("name=\"console-token\""));
    let body = format!(r#"{{"barrier":"{barrier}","reason":"x"}}"#);
    let (status, _, _) = http(
        &format!("{page}api/abort"),
        "POST",
        &[("Content-Type", "application/json")],
        &body,
    );
    assert_eq!(status, 403);

    // Both metrics pages, in the Prometheus text format.
    for (url, name) in [
        (metrics.as_str(), "sqs_barrier_arrivals_total"),
        (&format!("{page}metrics"), "sqs_barrier_parties"),
    ] {
        let (status, head, text) = http(url, "GET", &[], "");
        assert_eq!(status, 200);
        assert!(
            head.contains("content-type: text/plain; version=0.0.4"),
            "{head}"
        );
        assert!(text.contains(&format!("# TYPE {name} ")), "{text}");
        assert!(text.contains(&format!("barrier=\"{barrier}\"")), "{text}");
    }
}

/// `coordinator --metrics-bind` on a port another process listens on: a
/// clear error naming the address, exit 6 (infrastructure, as for the
/// console and the embedded endpoint), not 2 (usage).
#[test]
fn a_metrics_port_taken_is_an_infrastructure_error() {
    let mut local = Command::new(BIN)
        .args(["local", "--bind", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stdin(Stdio::null())
        .spawn()
        .expect("start local");
    let url = url_in(local.stdout.take().unwrap(), "listening on");
    let _local = Killer(local);
    let barrier = format!("busy{:08x}", rand::random::<u32>());
    let o = cmd(&url)
        .args(["setup", "--barrier", &barrier, "--parties", "2"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{o:?}");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let o = cmd(&url)
        .args([
            "coordinator",
            "--barrier",
            &barrier,
            "--metrics-bind",
            &addr,
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(6), "{err}");
    assert!(
        err.contains(&format!("--metrics-bind: cannot listen on {addr}")),
        "{err}"
    );
}
