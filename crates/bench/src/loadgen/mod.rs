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
//!
//! The parts: `options` (the command line), `server` (the servers' processes and
//! their `/proc` figures), `client` (the raw HTTP client), `workloads` (the
//! measurements), `stats` (percentiles and the medians of the rounds) and `report`
//! (the tables).

mod client;
mod options;
mod report;
mod server;
mod stats;
mod workloads;

use serde_json::json;

use options::parse_options;
use report::report;
use server::{Target, clock_ticks, serve, spawn_embedded, spawn_moto};
use stats::Rounds;
use workloads::{bench_concurrent, bench_deep, bench_handoff, bench_seq};

const BODY_BYTES: usize = 200;

fn log(msg: &str) {
    eprintln!("[loadgen] {msg}");
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
