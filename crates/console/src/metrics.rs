//! Prometheus metrics (text format 0.0.4, encoded by `prometheus-client`):
//! the coordinator's (`coordinator --metrics-bind`) and the console's.
//! The names are listed in docs/CONSOLE.md.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use hyper::StatusCode;
use prometheus_client::encoding::prometheus_text;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use sqs_barrier::core::coordinator::Event;
use sqs_barrier::{CoordinatorGauges, RequestCounter};
use tokio::sync::mpsc;

use crate::http;

/// Label sets: `[(name, value)]`.
pub type Labels = Vec<(String, String)>;
/// A gauge of floating-point values.
pub type FGauge = Gauge<f64, AtomicU64>;

/// Seconds: from a tenth of a second to an hour.
const SECONDS_BUCKETS: [f64; 15] = [
    0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 7200.0,
];

fn seconds_histogram() -> Histogram {
    Histogram::new(SECONDS_BUCKETS)
}

/// One label `barrier`.
pub fn barrier_label(name: &str) -> Labels {
    vec![("barrier".into(), name.into())]
}

/// The metrics both the coordinator and the console publish, per barrier.
pub struct BarrierMetrics {
    /// Members' first check-ins at a generation.
    pub arrivals: Family<Labels, Counter>,
    /// Generations released.
    pub releases: Family<Labels, Counter>,
    /// Seconds from a generation's first arrival to its release.
    pub release_latency: Family<Labels, Histogram, fn() -> Histogram>,
    /// Times the barrier broke (abort or deadline).
    pub breaks: Family<Labels, Counter>,
    /// Messages moved to the dead-letter queue, by `reason` (a kind).
    pub rejected: Family<Labels, Counter>,
    /// Coordinators that became active.
    pub takeovers: Family<Labels, Counter>,
    /// SQS requests by `operation` (retries included).
    pub sqs_requests: Family<Labels, Counter>,
    /// Failed SQS request attempts by `operation`.
    pub sqs_errors: Family<Labels, Counter>,
}

impl BarrierMetrics {
    /// Registers the metrics in `registry` (prefix `sqs_barrier`).
    pub fn register(registry: &mut Registry) -> Self {
        let m = Self {
            arrivals: Family::default(),
            releases: Family::default(),
            release_latency: Family::new_with_constructor(seconds_histogram as fn() -> Histogram),
            breaks: Family::default(),
            rejected: Family::default(),
            takeovers: Family::default(),
            sqs_requests: Family::default(),
            sqs_errors: Family::default(),
        };
        registry.register(
            "arrivals",
            "Members' arrivals at a phase (the first check-in of each member at each generation)",
            m.arrivals.clone(),
        );
        registry.register(
            "releases",
            "Phases (generations) released",
            m.releases.clone(),
        );
        registry.register(
            "release_latency_seconds",
            "Seconds from a phase's first arrival to its release: how long its first member waited",
            m.release_latency.clone(),
        );
        registry.register(
            "breaks",
            "Times the barrier broke (aborted, or a deadline passed)",
            m.breaks.clone(),
        );
        registry.register(
            "rejected_messages",
            "Messages moved to the dead-letter queue, by kind of reason",
            m.rejected.clone(),
        );
        registry.register(
            "coordinator_takeovers",
            "Times a coordinator became active (a first start, a restart, a standby taking over)",
            m.takeovers.clone(),
        );
        registry.register(
            "sqs_requests",
            "SQS requests made, by operation, retries included",
            m.sqs_requests.clone(),
        );
        registry.register(
            "sqs_errors",
            "SQS request attempts that failed (no answer, or an HTTP status other than 2xx), by operation",
            m.sqs_errors.clone(),
        );
        m
    }

    /// Brings the SQS counters up to the client's counts.
    pub fn sync_requests(&self, counter: &RequestCounter) {
        let sync = |family: &Family<Labels, Counter>,
                    counts: std::collections::BTreeMap<String, u64>| {
            for (op, n) in counts {
                let c = family.get_or_create(&vec![("operation".to_owned(), op)]);
                let have = c.get();
                if n > have {
                    c.inc_by(n - have);
                }
            }
        };
        let requests = counter.snapshot();
        for op in requests.keys() {
            // Every operation has an error count, zero or not.
            let _ = self
                .sqs_errors
                .get_or_create(&vec![("operation".to_owned(), op.clone())]);
        }
        sync(&self.sqs_requests, requests);
        sync(&self.sqs_errors, counter.errors());
    }
}

/// The kind of a reject reason, for the `reason` label: a small fixed set,
/// so that free text cannot make a metric of unbounded cardinality.
pub fn reject_kind(reason: &str) -> &'static str {
    let r = reason.to_ascii_lowercase();
    if r.contains("not a member") {
        "not_a_member"
    } else if r.contains("not a barrier message") {
        "malformed"
    } else if r.contains("larger than any barrier message") {
        "too_large"
    } else if r.contains("version") && r.contains("not supported") {
        "unsupported_version"
    } else if r.contains("ahead of the barrier") {
        "too_far_ahead"
    } else if r.contains("notice on the check-in queue") {
        "wrong_queue"
    } else if r.contains("barrier") || r.contains("instance") {
        "other_barrier"
    } else {
        "other"
    }
}

/// Encodes `registry` in the Prometheus text format.
pub fn encode(registry: &Registry) -> String {
    let mut out = String::new();
    prometheus_text::encode(&mut out, registry).expect("writing to a String cannot fail");
    out
}

/// The `/metrics` response.
pub fn response(registry: &Registry) -> hyper::Response<http_body_util::Full<bytes::Bytes>> {
    http::response(
        StatusCode::OK,
        prometheus_text::CONTENT_TYPE,
        encode(registry),
    )
}

/// The coordinator's metrics: fed by its events and gauges.
struct CoordinatorMetrics {
    registry: Registry,
    barrier: BarrierMetrics,
    held: Family<Labels, Gauge>,
    active: Family<Labels, Gauge>,
    resting: Family<Labels, Gauge>,
    open_age: Family<Labels, FGauge>,
    lease_extension_max: Family<Labels, FGauge>,
    lease_losses: Family<Labels, Counter>,
    lease_losses_seen: AtomicU64,
    labels: Labels,
    gauges: Arc<CoordinatorGauges>,
    counter: RequestCounter,
    /// Open generations: when their first arrival was counted.
    opened: std::sync::Mutex<HashMap<u64, Instant>>,
    takeovers_seen: AtomicU64,
}

impl CoordinatorMetrics {
    fn handle(&self, e: &Event) {
        let l = &self.labels;
        match e {
            Event::Arrived { generation, .. } => {
                self.barrier.arrivals.get_or_create(l).inc();
                self.opened
                    .lock()
                    .expect("lock")
                    .entry(*generation)
                    .or_insert_with(Instant::now);
            }
            Event::Released { generation } => {
                self.barrier.releases.get_or_create(l).inc();
                if let Some(t) = self.opened.lock().expect("lock").remove(generation) {
                    self.barrier
                        .release_latency
                        .get_or_create(l)
                        .observe(t.elapsed().as_secs_f64());
                }
            }
            Event::Broken { .. } => {
                self.barrier.breaks.get_or_create(l).inc();
                self.opened.lock().expect("lock").clear();
            }
            Event::Rejected { reason } => {
                let mut l = l.clone();
                l.push(("reason".into(), reject_kind(reason).into()));
                self.barrier.rejected.get_or_create(&l).inc();
            }
            _ => {}
        }
    }

    /// Reads the gauges and counters that are not events.
    fn refresh(&self) {
        let l = &self.labels;
        self.held
            .get_or_create(l)
            .set(self.gauges.held.load(Ordering::Relaxed) as i64);
        self.active
            .get_or_create(l)
            .set(self.gauges.active.load(Ordering::Relaxed) as i64);
        self.resting
            .get_or_create(l)
            .set(self.gauges.resting.load(Ordering::Relaxed) as i64);
        let takeovers = self.gauges.takeovers.load(Ordering::Relaxed);
        let seen = self.takeovers_seen.swap(takeovers, Ordering::Relaxed);
        let t = self.barrier.takeovers.get_or_create(l);
        if takeovers > seen {
            t.inc_by(takeovers - seen);
        }
        let us = self.gauges.lease_extension_max_us.load(Ordering::Relaxed);
        self.lease_extension_max
            .get_or_create(l)
            .set(us as f64 / 1e6);
        let losses = self.gauges.lease_losses.load(Ordering::Relaxed);
        let seen = self.lease_losses_seen.swap(losses, Ordering::Relaxed);
        if losses > seen {
            self.lease_losses.get_or_create(l).inc_by(losses - seen);
        }
        let oldest = self.opened.lock().expect("lock").values().min().copied();
        self.open_age
            .get_or_create(l)
            .set(oldest.map_or(0.0, |t| t.elapsed().as_secs_f64()));
        self.barrier.sync_requests(&self.counter);
    }
}

/// Starts the coordinator's metrics: returns the gauges and the event
/// sender to give `run_coordinator`. Fails if `addr` cannot be bound.
pub async fn serve_coordinator(
    addr: SocketAddr,
    barrier: &str,
    counter: RequestCounter,
) -> std::io::Result<(
    Arc<CoordinatorGauges>,
    mpsc::UnboundedSender<Event>,
    SocketAddr,
)> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    let mut registry = Registry::with_prefix("sqs_barrier");
    let barrier_metrics = BarrierMetrics::register(&mut registry);
    let held = Family::<Labels, Gauge>::default();
    registry.register(
        "held_checkins",
        "Check-ins the active coordinator holds (received, not yet recorded in a durable state)",
        held.clone(),
    );
    let active = Family::<Labels, Gauge>::default();
    registry.register(
        "coordinator_active",
        "1 while this coordinator is the active one, 0 while it stands by",
        active.clone(),
    );
    let resting = Family::<Labels, Gauge>::default();
    registry.register(
        "coordinator_resting",
        "1 while the active coordinator rests: nothing to decide, its lease given back until the next check-in or decision",
        resting.clone(),
    );
    let open_age = Family::<Labels, FGauge>::default();
    registry.register(
        "phase_open_seconds",
        "Seconds since the first arrival at the oldest phase not yet released (0 when none is open)",
        open_age.clone(),
    );
    let lease_extension_max = Family::<Labels, FGauge>::default();
    registry.register(
        "coordinator_lease_extension_max_seconds",
        "The slowest extension of the coordinator lease so far, send to answer (the barrier's safety assumes requests land within the lease's 3 s margin)",
        lease_extension_max.clone(),
    );
    let lease_losses = Family::<Labels, Counter>::default();
    registry.register(
        "coordinator_lease_losses",
        "Times the active coordinator's lease ran out (SQS did not answer its extensions in time) and it stood down",
        lease_losses.clone(),
    );
    let gauges = Arc::new(CoordinatorGauges::default());
    let m = Arc::new(CoordinatorMetrics {
        registry,
        barrier: barrier_metrics,
        held,
        active,
        resting,
        open_age,
        lease_extension_max,
        lease_losses,
        lease_losses_seen: AtomicU64::new(0),
        labels: barrier_label(barrier),
        gauges: gauges.clone(),
        counter,
        opened: std::sync::Mutex::new(HashMap::new()),
        takeovers_seen: AtomicU64::new(0),
    });
    m.refresh();
    let (tx, mut rx) = mpsc::unbounded_channel::<Event>();
    let feed = m.clone();
    tokio::spawn(async move {
        while let Some(e) = rx.recv().await {
            feed.handle(&e);
        }
    });
    let serving = m.clone();
    tokio::spawn(http::serve(
        listener,
        move |req: http::Req| {
            let m = serving.clone();
            async move {
                match (req.method.as_str(), req.path.as_str()) {
                    ("GET", "/metrics") => {
                        m.refresh();
                        response(&m.registry)
                    }
                    ("GET", "/") => {
                        http::text(StatusCode::OK, "sqs-barrier coordinator: see /metrics\n")
                    }
                    _ => http::text(StatusCode::NOT_FOUND, "not found\n"),
                }
            }
        },
        std::future::pending::<()>(),
    ));
    Ok((gauges, tx, local))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reject_reasons_fall_into_few_kinds() {
        assert_eq!(
            reject_kind("check-in from \"x\", who is not a member"),
            "not_a_member"
        );
        assert_eq!(
            reject_kind("not a barrier message: expected value"),
            "malformed"
        );
        assert_eq!(
            reject_kind("release notice on the check-in queue"),
            "wrong_queue"
        );
        assert_eq!(reject_kind("something new"), "other");
    }

    #[test]
    fn encodes_prometheus_text() {
        let mut registry = Registry::with_prefix("sqs_barrier");
        let m = BarrierMetrics::register(&mut registry);
        m.arrivals.get_or_create(&barrier_label("etl")).inc();
        m.release_latency
            .get_or_create(&barrier_label("etl"))
            .observe(0.3);
        let text = encode(&registry);
        assert!(
            text.contains("sqs_barrier_arrivals_total{barrier=\"etl\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("# TYPE sqs_barrier_release_latency_seconds histogram"),
            "{text}"
        );
        assert!(!text.contains("# EOF"), "{text}");
    }
}
