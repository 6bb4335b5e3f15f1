//! What the console watches: every interval it lists the queues (the SQS
//! console's columns), finds the barriers among them (their check-in
//! queues), reads each barrier's published state, and now and then peeks at
//! its dead-letter queue. From the states read one after another it builds
//! the recent phases (who was seen arrived when, when the phase was seen
//! released) and the metrics.
//!
//! The published state records who has arrived, not when: the time of an
//! arrival or a release is the heartbeat time (the coordinator's clock) of
//! the first state the console read that shows it. The coordinator writes a
//! state within moments of each change, so that is close when the console
//! reads every write; changes written between two reads share the later
//! write's time, and members whose arrival the console never saw before the
//! release are drawn as "arrived between reads".

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sqs_barrier::clock::wall_ms;

use aws_sdk_sqs::types::MessageSystemAttributeName;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use serde_json::{Value, json};
use sqs_barrier::admin::{self, BarrierInfo, QueueRow};
use sqs_barrier::core::names::QueueNames;
use sqs_barrier::core::state::{Beat, PublishedState};
use sqs_barrier::{Error, Sqs};

use crate::metrics::{BarrierMetrics, FGauge, Labels, barrier_label};

/// Phases kept for the chart, per barrier.
const EPISODES: usize = 12;
/// Dead letters remembered per barrier (the newest are shown).
const REJECTS: usize = 20;
/// Members named in the page per barrier (counts are always complete).
const MEMBERS_SHOWN: usize = 500;
/// The attribute a coordinator puts on a dead letter: why it was rejected.
const REASON_ATTRIBUTE: &str = "sqs-barrier-reason";

/// One phase as the console saw it.
#[derive(Clone, Debug)]
struct Episode {
    generation: u64,
    /// When its first check-in was counted (the writer's clock, ms).
    opened_ms: Option<u64>,
    /// Members and when each was first seen arrived (`None`: arrived
    /// between two reads, or before the console started).
    arrivals: Vec<(String, Option<u64>)>,
    released_ms: Option<u64>,
    broken: bool,
    /// When the console first read it broken (the coordinator's clock).
    broken_ms: Option<u64>,
    /// The local instant the phase opened (for the release latency).
    opened_at: Option<Instant>,
}

impl Episode {
    fn new(generation: u64) -> Self {
        Self {
            generation,
            opened_ms: None,
            arrivals: Vec::new(),
            released_ms: None,
            broken: false,
            broken_ms: None,
            opened_at: None,
        }
    }

    fn to_json(&self) -> Value {
        json!({
            "generation": self.generation,
            "opened_ms": self.opened_ms,
            "arrivals": self.arrivals.iter().map(|(m, t)| json!({"member": m, "at_ms": t})).collect::<Vec<_>>(),
            "released_ms": self.released_ms,
            "broken": self.broken,
            "broken_ms": self.broken_ms,
        })
    }
}

#[derive(Clone, Debug)]
struct Reject {
    reason: String,
    sent_ms: Option<u64>,
    body: String,
}

/// What opening a candidate (a check-in queue beside its first release
/// queue) found.
#[derive(Clone, Debug, PartialEq)]
enum Kind {
    /// Not opened yet, or opening failed for a reason that does not tell
    /// (SQS could not be read): not shown as a barrier.
    Unknown,
    /// Queues named like a barrier's without a barrier's configuration
    /// (or with one queue of a barrier missing): plain queues.
    Plain,
    /// Opened: a barrier.
    Barrier,
}

/// Everything remembered about one barrier between reads.
struct Tracker {
    kind: Kind,
    info: Option<BarrierInfo>,
    error: Option<String>,
    next_open_attempt: Instant,
    /// Open it again at the next read (a read of its state failed: it may
    /// have been deleted and set up again).
    reopen: bool,
    /// When its state was last read (by the console's clock).
    last_good: Option<Instant>,
    /// Whether the latest attempt to read it (or SQS at all) failed: its
    /// liveness is then unknown.
    failing: bool,
    state: Option<PublishedState>,
    /// When the state last changed (a new beat), by the console's clock.
    beat: Option<(Beat, Instant)>,
    /// Whether a change of the state has been seen since the console began.
    seen_change: bool,
    /// When the open generation's age was read: (age_ms, read at).
    age: Option<(u64, Instant)>,
    episodes: VecDeque<Episode>,
    released_below: Option<u64>,
    rejected: Option<u64>,
    rejects: BTreeMap<String, Reject>,
    dead_letters: Option<u64>,
    last_peek: Option<(Instant, Option<u64>)>,
    first_read: bool,
    /// When the check-in queue was created: another value means another
    /// barrier of the same name.
    created: Option<u64>,
}

impl Tracker {
    fn new() -> Self {
        Self {
            kind: Kind::Unknown,
            info: None,
            error: None,
            next_open_attempt: Instant::now(),
            reopen: false,
            last_good: None,
            failing: false,
            state: None,
            beat: None,
            seen_change: false,
            age: None,
            episodes: VecDeque::new(),
            released_below: None,
            rejected: None,
            rejects: BTreeMap::new(),
            dead_letters: None,
            last_peek: None,
            first_read: true,
            created: None,
        }
    }
}

/// The console's metrics of the barriers it watches.
struct ConsoleMetrics {
    registry: Registry,
    barrier: BarrierMetrics,
    generation: Family<Labels, Gauge>,
    parties: Family<Labels, Gauge>,
    arrived: Family<Labels, Gauge>,
    open_age: Family<Labels, FGauge>,
    alive: Family<Labels, Gauge>,
    heartbeat_age: Family<Labels, FGauge>,
    unchanged: Family<Labels, FGauge>,
    broken: Family<Labels, Gauge>,
    dead_letters: Family<Labels, Gauge>,
    queue_available: Family<Labels, Gauge>,
    queue_in_flight: Family<Labels, Gauge>,
}

impl ConsoleMetrics {
    fn new() -> Self {
        let mut registry = Registry::with_prefix("sqs_barrier");
        let barrier = BarrierMetrics::register(&mut registry);
        let mut g = |name: &str, help: &str| {
            let f = Family::<Labels, Gauge>::default();
            registry.register(name, help, f.clone());
            f
        };
        let generation = g(
            "phase",
            "The phase (generation) the barrier is at: the open one, else the lowest not released",
        );
        let parties = g("parties", "The barrier's number of members");
        let arrived = g("arrived", "Members arrived at the open phase");
        let alive = g(
            "coordinator_alive",
            "1 if the barrier's coordinator published a state recently enough (by the console's clock), else 0",
        );
        let broken = g("broken", "1 if the barrier is broken, else 0");
        let dead_letters = g(
            "dead_letters",
            "Messages in the barrier's dead-letter queue (approximate)",
        );
        let queue_available = g(
            "queue_messages_available",
            "ApproximateNumberOfMessages of each queue listed",
        );
        let queue_in_flight = g(
            "queue_messages_in_flight",
            "ApproximateNumberOfMessagesNotVisible of each queue listed",
        );
        let mut fg = |name: &str, help: &str| {
            let f = Family::<Labels, FGauge>::default();
            registry.register(name, help, f.clone());
            f
        };
        let open_age = fg(
            "phase_open_seconds",
            "Seconds since the open phase's first arrival (0 when no phase is open)",
        );
        let heartbeat_age = fg(
            "coordinator_heartbeat_age_seconds",
            "Seconds since the coordinator's last heartbeat, by the console host's wall clock against the writer's",
        );
        let unchanged = fg(
            "coordinator_silent_seconds",
            "Seconds since the console last saw the published state change (its own clock)",
        );
        Self {
            registry,
            barrier,
            generation,
            parties,
            arrived,
            open_age,
            alive,
            heartbeat_age,
            unchanged,
            broken,
            dead_letters,
            queue_available,
            queue_in_flight,
        }
    }

    fn forget(&self, name: &str) {
        let l = barrier_label(name);
        for f in [
            &self.generation,
            &self.parties,
            &self.arrived,
            &self.alive,
            &self.broken,
            &self.dead_letters,
        ] {
            f.remove(&l);
        }
        for f in [&self.open_age, &self.heartbeat_age, &self.unchanged] {
            f.remove(&l);
        }
    }
}

/// The console's shared view: the newest snapshot and the metrics.
pub struct Watch {
    sqs: Sqs,
    prefix: Option<String>,
    interval: Duration,
    /// The newest snapshot and when it was made.
    snapshot: Mutex<(Value, Instant)>,
    metrics: ConsoleMetrics,
    queues_seen: Mutex<Vec<String>>,
    /// Reads completed (for tests and the page's "updated" line).
    pub reads: AtomicU64,
}

impl Watch {
    /// A watcher of the queues (with `prefix`) of `sqs`'s endpoint.
    pub fn new(sqs: Sqs, prefix: Option<String>, interval: Duration) -> Arc<Self> {
        Arc::new(Self {
            snapshot: Mutex::new((
                json!({"endpoint": display_endpoint(sqs.endpoint()), "loading": true}),
                Instant::now(),
            )),
            sqs,
            prefix,
            interval,
            metrics: ConsoleMetrics::new(),
            queues_seen: Mutex::new(Vec::new()),
            reads: AtomicU64::new(0),
        })
    }

    /// The client, for aborts.
    pub fn sqs(&self) -> &Sqs {
        &self.sqs
    }

    /// The name prefix of the queues watched (the console's `--prefix`).
    pub fn prefix(&self) -> Option<&str> {
        self.prefix.as_deref()
    }

    /// Whether `barrier` is one of the barriers in the newest snapshot.
    pub fn watches(&self, barrier: &str) -> bool {
        self.snapshot.lock().expect("lock").0["barriers"]
            .as_array()
            .is_some_and(|bs| bs.iter().any(|b| b["name"] == barrier))
    }

    /// How long a read may go without an answer before the liveness of
    /// every barrier is unknown: twice the interval plus 5 s.
    fn stuck_after(&self) -> Duration {
        self.interval * 2 + Duration::from_secs(5)
    }

    /// The newest snapshot, as JSON, with the ages of the last good reads
    /// as of now. A read that has not ended within twice the interval plus
    /// 5 s (SQS does not answer) makes every barrier's liveness unknown
    /// until it ends.
    pub fn snapshot(&self) -> Value {
        let (mut v, made) = self.snapshot.lock().expect("lock").clone();
        let since = made.elapsed();
        let stuck = since > self.stuck_after();
        if stuck && v["error"].is_null() {
            v["error"] = json!(format!(
                "no answer from SQS for {:.0} s",
                since.as_secs_f64()
            ));
        }
        if let Some(barriers) = v["barriers"].as_array_mut() {
            for b in barriers {
                if let Some(age) = b["last_read_age_secs"].as_f64() {
                    b["last_read_age_secs"] = json!(age + since.as_secs_f64());
                }
                if stuck {
                    b["readable"] = json!(false);
                    if b["coordinator"].is_object() {
                        b["coordinator"]["liveness"] = json!("unknown");
                        b["coordinator"]["alive"] = Value::Null;
                    }
                }
            }
        }
        v
    }

    /// The metrics, in the Prometheus text format.
    pub fn metrics_response(&self) -> hyper::Response<http_body_util::Full<bytes::Bytes>> {
        self.metrics.barrier.sync_requests(self.sqs.requests());
        // A read without an answer for long: no liveness is known (the next
        // read that ends sets it again).
        {
            let snapshot = self.snapshot.lock().expect("lock");
            if snapshot.1.elapsed() > self.stuck_after() {
                for b in snapshot.0["barriers"].as_array().into_iter().flatten() {
                    if let Some(name) = b["name"].as_str() {
                        self.metrics.alive.remove(&barrier_label(name));
                    }
                }
            }
        }
        crate::metrics::response(&self.metrics.registry)
    }

    /// Reads every interval, forever.
    pub async fn run(self: Arc<Self>) {
        let mut trackers: HashMap<String, Tracker> = HashMap::new();
        let mut ticker = tokio::time::interval(self.interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            let snapshot = match self.read(&mut trackers).await {
                Ok(v) => v,
                Err(e) => self.unreadable(&mut trackers, &e),
            };
            *self.snapshot.lock().expect("lock") = (snapshot, Instant::now());
            self.reads
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }

    /// The snapshot when SQS cannot be listed: the last queue table, and
    /// every barrier as last read with its liveness unknown.
    fn unreadable(&self, trackers: &mut HashMap<String, Tracker>, e: &Error) -> Value {
        let mut v = self.snapshot.lock().expect("lock").0.clone();
        let mut names: Vec<&String> = trackers
            .iter()
            .filter(|(_, t)| t.kind == Kind::Barrier)
            .map(|(n, _)| n)
            .collect();
        names.sort();
        let barriers: Vec<Value> = names
            .into_iter()
            .map(|name| {
                let t = &trackers[name];
                self.metrics.alive.remove(&barrier_label(name));
                self.barrier_json(name, t, true)
            })
            .collect();
        for t in trackers.values_mut() {
            t.failing = true;
        }
        v["barriers"] = json!(barriers);
        v["error"] = json!(e.to_string());
        v["now_ms"] = json!(wall_ms());
        v.as_object_mut().map(|o| o.remove("loading"));
        v
    }

    async fn read(&self, trackers: &mut HashMap<String, Tracker>) -> Result<Value, Error> {
        let rows = admin::list_queues(&self.sqs, self.prefix.as_deref()).await?;
        self.queue_metrics(&rows);
        // A barrier: a check-in queue beside its first release queue (a
        // queue that only happens to end in -checkin is not one).
        let mut names: Vec<String> = rows
            .iter()
            .filter_map(|r| {
                r.name
                    .strip_suffix("-checkin")
                    .or_else(|| r.name.strip_suffix("-checkin.fifo"))
                    .map(str::to_owned)
            })
            .filter(|n| {
                let release = format!("{n}-release-0");
                rows.iter().any(|r| r.name == release)
            })
            .collect();
        names.sort();
        names.dedup();
        trackers.retain(|name, _| {
            let keep = names.contains(name);
            if !keep {
                self.metrics.forget(name);
            }
            keep
        });
        let mut barriers = Vec::new();
        let mut undecided = Vec::new();
        for name in &names {
            let t = trackers.entry(name.clone()).or_insert_with(Tracker::new);
            self.read_barrier(name, t, &rows).await;
            match t.kind {
                Kind::Barrier => barriers.push(self.barrier_json(name, t, t.failing)),
                Kind::Unknown => undecided.push(json!({
                    "name": name,
                    "error": t.error.clone().unwrap_or_else(|| "not read yet".into()),
                })),
                Kind::Plain => {}
            }
        }
        let now = wall_ms();
        Ok(json!({
            "endpoint": display_endpoint(self.sqs.endpoint()),
            "prefix": self.prefix,
            "interval_secs": self.interval.as_secs_f64(),
            "now_ms": now,
            "last_ok_ms": now,
            "error": null,
            "queues": rows,
            "barriers": barriers,
            "undecided": undecided,
        }))
    }

    fn queue_metrics(&self, rows: &[QueueRow]) {
        let mut seen = self.queues_seen.lock().expect("lock");
        for old in seen.iter() {
            if !rows.iter().any(|r| &r.name == old) {
                let l = vec![("queue".to_owned(), old.clone())];
                self.metrics.queue_available.remove(&l);
                self.metrics.queue_in_flight.remove(&l);
            }
        }
        seen.clear();
        for r in rows {
            let l = vec![("queue".to_owned(), r.name.clone())];
            if let Some(n) = r.messages_available {
                self.metrics.queue_available.get_or_create(&l).set(n as i64);
            }
            if let Some(n) = r.messages_in_flight {
                self.metrics.queue_in_flight.get_or_create(&l).set(n as i64);
            }
            seen.push(r.name.clone());
        }
    }

    async fn read_barrier(&self, name: &str, t: &mut Tracker, rows: &[QueueRow]) {
        // Torn down and set up again (perhaps with other members): start over.
        let created = rows
            .iter()
            .find(|r| {
                r.name == format!("{name}-checkin") || r.name == format!("{name}-checkin.fifo")
            })
            .and_then(|r| r.created);
        if t.created.is_some() && created != t.created {
            *t = Tracker::new();
        }
        t.created = created;
        let labels = barrier_label(name);
        if t.info.is_none() || t.reopen {
            if Instant::now() < t.next_open_attempt {
                t.failing = t.kind == Kind::Barrier;
                if t.failing {
                    self.metrics.alive.remove(&labels);
                }
                return;
            }
            match admin::open(&self.sqs, name).await {
                Ok(info) => {
                    t.info = Some(info);
                    t.kind = Kind::Barrier;
                    t.reopen = false;
                    t.error = None;
                }
                Err(e) => {
                    let plain = not_a_barrier(&e);
                    t.error = Some(e.to_string());
                    // Plain queues are looked at again now and then, in
                    // case a barrier is set up on them.
                    t.next_open_attempt =
                        Instant::now() + Duration::from_secs(if plain { 60 } else { 10 });
                    if plain {
                        if t.kind == Kind::Barrier {
                            self.metrics.forget(name);
                        }
                        *t = Tracker {
                            kind: Kind::Plain,
                            error: t.error.take(),
                            next_open_attempt: t.next_open_attempt,
                            created: t.created,
                            ..Tracker::new()
                        };
                    } else {
                        t.failing = true;
                        self.metrics.alive.remove(&labels);
                    }
                    return;
                }
            }
        }
        let info = t.info.clone().expect("opened");
        let state = match admin::peek_state(&self.sqs, &info).await {
            Ok(s) => s,
            Err(e) => {
                t.error = Some(e.to_string());
                t.failing = true;
                self.metrics.alive.remove(&labels);
                // Perhaps deleted and set up again: open it afresh next
                // time (showing what was last read meanwhile).
                t.reopen = true;
                return;
            }
        };
        t.error = None;
        t.failing = false;
        t.last_good = Some(Instant::now());
        let names = QueueNames::new(name, info.config.fifo);
        t.dead_letters = rows
            .iter()
            .find(|r| r.name == names.dead_letter)
            .and_then(|r| Some(r.messages_available? + r.messages_in_flight.unwrap_or(0)));
        let now = wall_ms();
        let m = &self.metrics;
        if let Some(s) = &state {
            let beat = s.beat();
            match &t.beat {
                Some((b, _)) if *b == beat => {}
                Some((b, _)) => {
                    if b.coordinator != beat.coordinator && !s.stopped {
                        m.barrier.takeovers.get_or_create(&labels).inc();
                    }
                    t.seen_change = true;
                    t.beat = Some((beat, Instant::now()));
                }
                None => t.beat = Some((beat, Instant::now())),
            }
            self.track_episodes(t, s, &info);
            if let Some(prev) = t.rejected
                && s.rejected > prev
            {
                m.barrier
                    .rejected
                    .get_or_create(&vec![
                        ("barrier".to_owned(), name.to_owned()),
                        ("reason".to_owned(), "any".to_owned()),
                    ])
                    .inc_by(s.rejected - prev);
            }
            t.rejected = Some(s.rejected);
        }
        t.state = state;
        t.first_read = false;
        // The reasons of the latest rejects: peek when the count changed,
        // and every 30 s while there are any.
        let due = t.dead_letters.unwrap_or(0) > 0
            && t.last_peek.is_none_or(|(at, count)| {
                count != t.dead_letters || at.elapsed() >= Duration::from_secs(30)
            });
        if due {
            self.peek_dead_letters(&info, t).await;
            t.last_peek = Some((Instant::now(), t.dead_letters));
        }
        // Gauges.
        let (alive, unchanged) = liveness(t);
        m.parties
            .get_or_create(&labels)
            .set(info.config.members.len() as i64);
        m.alive.get_or_create(&labels).set(alive as i64);
        m.unchanged
            .get_or_create(&labels)
            .set(unchanged.as_secs_f64());
        if let Some(s) = &t.state {
            let generation = s.open.as_ref().map_or(s.released_below, |o| o.generation);
            m.generation.get_or_create(&labels).set(generation as i64);
            m.arrived.get_or_create(&labels).set(
                s.open
                    .as_ref()
                    .map_or(0, |o| o.arrived.within(info.config.members.len()).len())
                    as i64,
            );
            m.open_age
                .get_or_create(&labels)
                .set(open_age(t).map_or(0.0, |d| d.as_secs_f64()));
            m.heartbeat_age
                .get_or_create(&labels)
                .set(now.saturating_sub(s.heartbeat_ms) as f64 / 1000.0);
            m.broken
                .get_or_create(&labels)
                .set(s.broken.is_some() as i64);
        }
        if let Some(n) = t.dead_letters {
            m.dead_letters.get_or_create(&labels).set(n as i64);
        }
    }

    /// Updates the recent phases from a new read of the state.
    fn track_episodes(&self, t: &mut Tracker, s: &PublishedState, info: &BarrierInfo) {
        // When the coordinator wrote this state, by its clock.
        let now = s.heartbeat_ms;
        let members = &info.config.members;
        let labels = barrier_label(&info.config.name);
        let m = &self.metrics.barrier;
        let first = t.first_read;
        // Releases since the last read.
        if let Some(prev) = t.released_below {
            let from = prev.max(s.released_below.saturating_sub(EPISODES as u64));
            for g in from..s.released_below {
                let ep = match t.episodes.iter_mut().find(|e| e.generation == g) {
                    Some(e) => e,
                    None => {
                        // Opened and released between two reads.
                        t.episodes.push_back(Episode::new(g));
                        t.episodes.back_mut().expect("pushed")
                    }
                };
                if ep.released_ms.is_none() {
                    // A later phase's first check-in came from a member
                    // released from this one: the release was no later.
                    let at = match &s.open {
                        Some(o) if o.generation > g => now.min(o.since_ms),
                        _ => now,
                    };
                    ep.released_ms = Some(at);
                    for i in 0..members.len() {
                        let name = members.name(i);
                        if !ep.arrivals.iter().any(|(n, _)| *n == name) {
                            ep.arrivals.push((name, None));
                            m.arrivals.get_or_create(&labels).inc();
                        }
                    }
                    m.releases.get_or_create(&labels).inc();
                    if let Some(at) = ep.opened_at {
                        m.release_latency
                            .get_or_create(&labels)
                            .observe(at.elapsed().as_secs_f64());
                    }
                }
            }
        }
        t.released_below = Some(s.released_below);
        // The open phase.
        if let Some(o) = &s.open {
            if t.age
                .is_none_or(|(age, _)| o.age_ms.is_some_and(|a| a != age))
            {
                t.age = o.age_ms.map(|a| (a, Instant::now()));
            }
            let ep = match t.episodes.iter_mut().find(|e| e.generation == o.generation) {
                Some(e) => e,
                None => {
                    t.episodes.push_back(Episode::new(o.generation));
                    t.episodes.back_mut().expect("pushed")
                }
            };
            ep.opened_ms = Some(o.since_ms);
            if ep.opened_at.is_none() {
                let age = Duration::from_millis(
                    o.age_ms.unwrap_or_else(|| now.saturating_sub(o.since_ms)),
                );
                ep.opened_at = Instant::now().checked_sub(age);
            }
            for i in (0..members.len()).filter(|i| o.arrived.contains(*i)) {
                let name = members.name(i);
                if !ep.arrivals.iter().any(|(n, _)| *n == name) {
                    ep.arrivals
                        .push((name, if first { None } else { Some(now) }));
                    if !first {
                        m.arrivals.get_or_create(&labels).inc();
                    }
                }
            }
        } else {
            t.age = None;
        }
        if let Some(b) = &s.broken {
            let newly_broken = !t.episodes.iter().any(|e| e.broken);
            let ep = match t.episodes.iter_mut().find(|e| e.generation == b.from_gen) {
                Some(e) => e,
                None => {
                    t.episodes.push_back(Episode::new(b.from_gen));
                    t.episodes.back_mut().expect("pushed")
                }
            };
            if !ep.broken && !first {
                ep.broken_ms = Some(now);
            }
            ep.broken = true;
            if newly_broken && !first {
                m.breaks.get_or_create(&labels).inc();
            }
        }
        t.episodes.make_contiguous().sort_by_key(|e| e.generation);
        while t.episodes.len() > EPISODES {
            t.episodes.pop_front();
        }
    }

    /// Reads up to 10 dead letters without taking them (visibility 0).
    async fn peek_dead_letters(&self, info: &BarrierInfo, t: &mut Tracker) {
        let out = self
            .sqs
            .client()
            .receive_message()
            .queue_url(&info.urls.dead_letter)
            .max_number_of_messages(10)
            .visibility_timeout(0)
            .wait_time_seconds(0)
            .message_attribute_names(REASON_ATTRIBUTE)
            .message_system_attribute_names(MessageSystemAttributeName::SentTimestamp)
            .send()
            .await;
        let Ok(out) = out else { return };
        for msg in out.messages.unwrap_or_default() {
            let Some(id) = msg.message_id.clone() else {
                continue;
            };
            let reason = msg
                .message_attributes
                .as_ref()
                .and_then(|a| a.get(REASON_ATTRIBUTE))
                .and_then(|v| v.string_value.clone())
                .unwrap_or_else(|| "(no reason given)".into());
            let sent_ms = msg
                .attributes
                .as_ref()
                .and_then(|a| a.get(&MessageSystemAttributeName::SentTimestamp))
                .and_then(|v| v.parse().ok());
            let body: String = msg.body.unwrap_or_default().chars().take(200).collect();
            t.rejects.insert(
                id,
                Reject {
                    reason,
                    sent_ms,
                    body,
                },
            );
        }
        while t.rejects.len() > REJECTS {
            let oldest = t
                .rejects
                .iter()
                .min_by_key(|(_, r)| r.sent_ms)
                .map(|(k, _)| k.clone())
                .expect("not empty");
            t.rejects.remove(&oldest);
        }
    }

    /// A barrier's card; `failing`: the latest attempt to read it (or SQS)
    /// failed, so its liveness is unknown.
    fn barrier_json(&self, name: &str, t: &Tracker, failing: bool) -> Value {
        let Some(info) = &t.info else {
            return json!({"name": name, "error": t.error.clone().unwrap_or_else(|| "not readable yet".into())});
        };
        let cfg = &info.config;
        let members = &cfg.members;
        let n = members.len();
        let s = t.state.as_ref();
        let open = s.and_then(|s| s.open.as_ref());
        let age = open_age(t);
        let ep = open.and_then(|o| t.episodes.iter().find(|e| e.generation == o.generation));
        let (arrived, missing): (Vec<Value>, Vec<Value>) = match open {
            Some(o) => (
                (0..n)
                    .filter(|i| o.arrived.contains(*i))
                    .take(MEMBERS_SHOWN)
                    .map(|i| {
                        let name = members.name(i);
                        let at = ep.and_then(|e| e.arrivals.iter().find(|(m, _)| *m == name)).and_then(|(_, t)| *t);
                        json!({"member": name, "at_ms": at})
                    })
                    .collect(),
                o.arrived
                    .missing(n)
                    .take(MEMBERS_SHOWN)
                    .map(|i| json!({"member": members.name(i), "for_secs": age.map(|d| d.as_secs_f64())}))
                    .collect(),
            ),
            None => (vec![], vec![]),
        };
        let arrived_count = open.map_or(0, |o| o.arrived.within(n).len());
        let (alive, unchanged) = liveness(t);
        let last_read_age = t.last_good.map(|at| at.elapsed().as_secs_f64());
        let liveness = match (failing, s) {
            (true, _) => "unknown",
            (false, Some(s)) if s.stopped => "stopped",
            (false, _) if alive => "alive",
            (false, _) => "silent",
        };
        let mut rejects: Vec<&Reject> = t.rejects.values().collect();
        rejects.sort_by_key(|r| std::cmp::Reverse(r.sent_ms));
        json!({
            "name": name,
            "fifo": cfg.fifo,
            "parties": n,
            "members": (0..n.min(MEMBERS_SHOWN)).map(|i| members.name(i)).collect::<Vec<_>>(),
            "deadline_secs": cfg.deadline.map(|d| d.as_secs_f64()),
            "phase": s.map(|s| open.map_or(s.released_below, |o| o.generation)),
            "released_below": s.map(|s| s.released_below),
            "open": open.map(|o| json!({
                "generation": o.generation,
                "since_ms": o.since_ms,
                "age_secs": age.map(|d| d.as_secs_f64()),
                "arrived_count": arrived_count,
                "missing_count": n - arrived_count,
            })),
            "arrived": arrived,
            "missing": missing,
            "coordinator": s.map(|s| json!({
                "id": s.coordinator,
                "alive": (!failing).then_some(alive),
                "liveness": liveness,
                "stopped": s.stopped,
                "heartbeat_age_secs": wall_ms().saturating_sub(s.heartbeat_ms) as f64 / 1000.0,
                "unchanged_secs": unchanged.as_secs_f64(),
                "heartbeat_every_secs": s.heartbeat_every_ms as f64 / 1000.0,
                "standbys": s.standbys,
            })),
            "broken": s.and_then(|s| s.broken.as_ref()).map(|b| json!({
                "from_gen": b.from_gen,
                "cause": b.cause.to_string(),
                "missing": b.missing,
                "missing_count": b.missing_count,
            })),
            "rejected": s.map(|s| s.rejected),
            "dead_letters": t.dead_letters,
            "rejects": rejects.iter().take(5).map(|r| json!({"reason": r.reason, "sent_ms": r.sent_ms, "body": r.body})).collect::<Vec<_>>(),
            "episodes": t.episodes.iter().map(Episode::to_json).collect::<Vec<_>>(),
            "error": t.error,
            "readable": !failing,
            "last_read_age_secs": last_read_age,
        })
    }
}

/// How long the open phase has been open: its published age plus the time
/// since it was read (both durations: no clocks compared).
fn open_age(t: &Tracker) -> Option<Duration> {
    let open = t.state.as_ref()?.open.as_ref()?;
    match t.age {
        Some((age, read)) => Some(Duration::from_millis(age) + read.elapsed()),
        None => Some(Duration::from_millis(
            wall_ms().saturating_sub(open.since_ms),
        )),
    }
}

/// Whether the coordinator looks alive, and how long the state has been
/// unchanged by the console's clock. Until the console has seen the state
/// change once, it goes by the heartbeat's age on its wall clock.
fn liveness(t: &Tracker) -> (bool, Duration) {
    let Some(s) = &t.state else {
        return (false, Duration::ZERO);
    };
    let unchanged = t
        .beat
        .as_ref()
        .map_or(Duration::ZERO, |(_, at)| at.elapsed());
    if s.stopped {
        return (false, unchanged);
    }
    let alive = if t.seen_change {
        unchanged <= s.stale_after()
    } else {
        s.looks_recent(wall_ms())
    };
    (alive, unchanged)
}

/// Whether opening a candidate failed because its queues are not a
/// barrier's: one of a barrier's queues is missing, its name is not a
/// barrier's, or its check-in queue carries no barrier configuration (the
/// tags `setup` writes). Any other failure (SQS unreachable, denied,
/// throttled) tells nothing.
fn not_a_barrier(e: &Error) -> bool {
    match e {
        Error::NotSetUp { .. } | Error::Config(_) => true,
        Error::Corrupt { detail, .. } => detail.contains("no barrier configuration"),
        _ => false,
    }
}

/// The endpoint for display: never a user name or password in a URL.
pub fn display_endpoint(endpoint: &str) -> String {
    match endpoint.split_once("://") {
        Some((scheme, rest)) => {
            let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
            let (authority, tail) = rest.split_at(end);
            let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
            format!("{scheme}://{host}{tail}")
        }
        None => endpoint.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_are_shown_without_credentials() {
        assert_eq!(
            display_endpoint("http://user:secret@127.0.0.1:9324"),
            "http://127.0.0.1:9324"
        );
        assert_eq!(
            display_endpoint("https://sqs.eu-west-1.amazonaws.com/"),
            "https://sqs.eu-west-1.amazonaws.com/"
        );
        assert_eq!(display_endpoint("AWS"), "AWS");
    }
}
