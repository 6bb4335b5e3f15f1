//! The measurements, each repeated for every round against one server:
//! sequential sends, the hand-off to a waiting long poll, concurrent clients,
//! and the rates at depth ~0 and at a filled depth.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier, mpsc};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::client::{Conn, create_queue, delete_queue, receipt_handles, send_body};
use super::options::Options;
use super::server::{Target, busiest_threads, cpu_seconds, status_mib, thread_cpu_seconds};
use super::stats::{Rounds, percentile_us};
use super::{BODY_BYTES, log};

/// Sequential SendMessage from one client.
pub(super) fn bench_seq(target: &Target, o: &Options, out: &mut Rounds) {
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
pub(super) fn bench_handoff(target: &Target, o: &Options, out: &mut Rounds) {
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
pub(super) fn bench_concurrent(target: &Target, o: &Options, ticks: f64, out: &mut Rounds) {
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
pub(super) fn bench_deep(target: &Target, depth: usize, ops: usize, o: &Options, out: &mut Rounds) {
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
