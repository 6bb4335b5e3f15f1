//! What the barrier's end-to-end tests share: a barrier set up on an
//! endpoint, coordinators run as tasks, members, and waiting for a gauge.

// Each test crate uses some of these.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use sqs_barrier::core::coordinator::Event;
use sqs_barrier::{Barrier, CoordinatorGauges, CoordinatorOptions, Sqs, admin};
use sqs_barrier_testkit::{Target, TestEndpoint, start};
use tokio::sync::{mpsc, oneshot};

pub struct Fixture {
    /// The endpoint, if the fixture started it.
    pub _endpoint: Option<TestEndpoint>,
    pub sqs: Sqs,
    pub name: String,
}

pub async fn fixture(target: Target, parties: usize, deadline: Option<Duration>) -> Fixture {
    let endpoint = start(target).await;
    let sqs = Sqs::local(&endpoint.endpoint_url());
    let name = format!("t{:08x}", rand_u32());
    let mut opts = admin::SetupOptions::new(parties);
    opts.deadline = deadline;
    admin::setup(&sqs, &name, &opts).await.expect("setup");
    Fixture {
        _endpoint: Some(endpoint),
        sqs,
        name,
    }
}

/// A barrier of `parties` members on an embedded endpoint that injects the
/// faults of `spec` (docs/ENDPOINT.md, "Fault injection"), decided from
/// seed 1; and when the endpoint started (the rules' time windows count
/// from then).
pub async fn fixture_with_chaos(spec: &str, parties: usize) -> (Fixture, Instant) {
    use sqs_barrier_local::{Options, Server};
    let server = Server::bind_with(
        "127.0.0.1:0".parse().unwrap(),
        Options::default().with_chaos(spec.parse().expect("fault spec"), Some(1)),
    )
    .await
    .unwrap();
    let started = Instant::now();
    let sqs = Sqs::local(&server.endpoint_url());
    let name = format!("t{:08x}", rand_u32());
    admin::setup(&sqs, &name, &admin::SetupOptions::new(parties))
        .await
        .expect("setup");
    let f = Fixture {
        _endpoint: Some(TestEndpoint::Embedded(server)),
        sqs,
        name,
    };
    (f, started)
}

pub fn rand_u32() -> u32 {
    use std::hash::{BuildHasher, RandomState};
    RandomState::new().hash_one(Instant::now()) as u32
}

pub struct Running {
    pub stop: Option<oneshot::Sender<()>>,
    pub task: tokio::task::JoinHandle<sqs_barrier::Result<()>>,
    pub events: mpsc::UnboundedReceiver<Event>,
}

impl Running {
    pub async fn stop(mut self) -> sqs_barrier::Result<()> {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .expect("coordinator stops promptly")
            .expect("coordinator task")
    }
}

pub fn fast_coordinator(force: bool) -> CoordinatorOptions {
    let mut o = CoordinatorOptions::default();
    o.core.heartbeat = Duration::from_millis(500);
    o.core.min_write_interval = Duration::from_millis(100);
    // Short, so that a deadline (which waits at least this long after the
    // coordinator's start for a predecessor's check-ins) fires soon.
    o.visibility = Duration::from_secs(2);
    o.force = force;
    o
}

pub fn coordinator(f: &Fixture, opts: CoordinatorOptions) -> Running {
    let (stop, stop_rx) = oneshot::channel();
    let (tx, events) = mpsc::unbounded_channel();
    let sqs = f.sqs.clone();
    let name = f.name.clone();
    let task = tokio::spawn(async move {
        let stop = async {
            let _ = stop_rx.await;
        };
        sqs_barrier::run_coordinator(&sqs, &name, opts, Some(tx), stop).await
    });
    Running {
        stop: Some(stop),
        task,
        events,
    }
}

pub async fn member(f: &Fixture, id: &str) -> Barrier {
    Barrier::connect(&f.sqs, &f.name, id)
        .await
        .expect("connect")
}

pub const LONG: Option<Duration> = Some(Duration::from_secs(30));

pub fn coordinator_with_gauges(
    f: &Fixture,
    mut opts: CoordinatorOptions,
) -> (Running, Arc<CoordinatorGauges>) {
    let g = Arc::new(CoordinatorGauges::default());
    opts.gauges = Some(g.clone());
    (coordinator(f, opts), g)
}

pub async fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "timed out waiting until {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Connects the members one after another (their connects would contend
/// for the endpoint's tagging quota at once).
pub async fn connect_all<F: std::future::Future<Output = Barrier>, const N: usize>(
    fs: [F; N],
) -> Vec<Barrier> {
    let mut out = Vec::new();
    for f in fs {
        out.push(f.await);
    }
    out
}

/// Members 0 and 1 arrive, nobody passes within 2 s, and member 2's wait
/// releases all three.
pub async fn only_all_three_release(b: &[Barrier]) {
    let a0 = b[0].arrive(LONG).await.unwrap();
    let a1 = b[1].arrive(LONG).await.unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        !a0.is_finished() && !a1.is_finished(),
        "released before member 2 arrived"
    );
    b[2].wait(LONG).await.expect("released");
    a0.await.unwrap();
    a1.await.unwrap();
}
