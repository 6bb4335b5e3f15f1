//! The coordinator driven by a byte string read as a sequence of inputs: check-ins
//! (well-formed, of members or not, of this barrier or not; some leave, some carry
//! data), joins (with a name or without), aborts, arbitrary bodies, redeliveries,
//! timeouts at increasing times, and state writes reported done or failed, on a
//! barrier with or without a quorum. After every input the events and transmits are
//! drained and checked:
//!
//! * the roll the oracle builds from the coordinator's events (`Left` only for a fed
//!   leave check-in, `Joined` only after a fed join, `Dropped` only on a quorum
//!   barrier and never a member whose check-in was fed);
//! * a `Release` notice for generation `g` only if a check-in for `g` was fed of every
//!   member that roll expects at `g`, except those the notice names in `without`
//!   (exactly the members dropped at `g`, with at least the quorum fed); its data only
//!   what the released members brought to `g`;
//! * a published state never claims a generation released without those check-ins,
//!   and never takes a release back;
//! * every token deleted or dead-lettered was fed, and is disposed of at most once;
//! * notices carry at least one copy and decode as barrier messages;
//! * nothing panics.
#![no_main]

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use sqs_barrier_core::config::{BarrierConfig, Membership};
use sqs_barrier_core::coordinator::{Coordinator, CoordinatorOptions, Event, Transmit};
use sqs_barrier_core::wire::Message;

const NAME: &str = "fuzz";
const INSTANCE: &str = "i1";

struct Bytes<'a>(&'a [u8]);

impl Bytes<'_> {
    fn next(&mut self) -> Option<u8> {
        let (&b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(b)
    }

    fn take(&mut self, n: usize) -> &[u8] {
        let n = n.min(self.0.len());
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        head
    }
}

struct Harness {
    cfg: BarrierConfig,
    coordinator: Coordinator<u64>,
    now: Duration,
    next_token: u64,
    /// Members whose check-in for each generation was fed.
    fed: BTreeMap<u64, BTreeSet<String>>,
    /// The data each member's check-ins for each generation carried.
    data: BTreeMap<(u64, String), BTreeSet<String>>,
    /// The generations each member's fed leave check-ins were for.
    leaves: BTreeSet<(String, u64)>,
    /// Members named in fed joins (`None`: a join without a name).
    joins: Vec<Option<String>>,
    /// The oracle's roll, from the coordinator's events: each member's spans of
    /// expected generations `[from, end)`.
    spans: BTreeMap<String, Vec<(u64, Option<u64>)>>,
    /// Members dropped at each generation.
    dropped: BTreeMap<u64, BTreeSet<String>>,
    /// Generations whose release was checked.
    verified: BTreeSet<u64>,
    bodies: Vec<String>,
    disposed: BTreeSet<u64>,
    pending_write: Option<u64>,
    released_below: u64,
}

impl Harness {
    fn fed_at(&self, generation: u64, member: &str) -> bool {
        self.fed
            .get(&generation)
            .is_some_and(|m| m.contains(member))
    }

    fn expects(&self, member: &str, generation: u64) -> bool {
        self.spans.get(member).is_some_and(|spans| {
            spans
                .iter()
                .any(|&(from, end)| from <= generation && end.is_none_or(|e| generation < e))
        })
    }

    /// The members the oracle's roll expects at `generation`, those dropped there
    /// included.
    fn expected(&self, generation: u64) -> Vec<&String> {
        self.spans
            .iter()
            .filter(|(_, spans)| {
                spans
                    .iter()
                    .any(|&(from, end)| from <= generation && end.is_none_or(|e| generation < e))
            })
            .map(|(m, _)| m)
            .chain(self.dropped.get(&generation).into_iter().flatten())
            .collect()
    }

    /// Checks a release of `generation` the first time one is decided or claimed
    /// (an event, a notice, a published state), against the roll as it is then: a
    /// later leave at a
    /// lower generation (phase numbers out of order) may end the member's span
    /// below it afterwards.
    fn verify(&mut self, generation: u64) -> Result<(), String> {
        if !self.verified.contains(&generation) {
            self.complete(generation)?;
            self.verified.insert(generation);
        }
        Ok(())
    }

    /// Whether `generation` may be released: every member expected there was fed,
    /// except the dropped, and then at least the quorum was.
    fn complete(&self, generation: u64) -> Result<(), String> {
        let dropped = self.dropped.get(&generation);
        let mut arrived = 0;
        for m in self.expected(generation) {
            if dropped.is_some_and(|d| d.contains(m)) {
                continue;
            }
            if !self.fed_at(generation, m) {
                return Err(format!(
                    "{m} is expected at {generation} and no check-in of it was fed (fed: {:?})",
                    self.fed.get(&generation)
                ));
            }
            arrived += 1;
        }
        if dropped.is_some_and(|d| !d.is_empty()) {
            let min = self.cfg.quorum.map_or(usize::MAX, |q| q.min);
            if arrived < min {
                return Err(format!(
                    "{generation} released without {dropped:?} with {arrived} arrived"
                ));
            }
        }
        Ok(())
    }

    /// Applies a coordinator event to the oracle's roll, checking it against what
    /// was fed.
    fn observe(&mut self, event: Event) {
        match event {
            Event::Left { member, generation } => {
                assert!(
                    self.leaves.contains(&(member.clone(), generation)),
                    "{member} left at {generation} without a leave check-in"
                );
                let span = self
                    .spans
                    .get_mut(&member)
                    .and_then(|s| s.last_mut())
                    .expect("a member that leaves has a span");
                span.1 = Some(span.1.map_or(generation + 1, |e| e.min(generation + 1)));
            }
            Event::Joined { member, from } => {
                assert!(
                    self.joins
                        .iter()
                        .any(|j| j.is_none() || j.as_deref() == Some(member.as_str())),
                    "{member} joined without a join"
                );
                let spans = self.spans.entry(member.clone()).or_default();
                assert!(
                    spans.iter().all(|&(_, end)| end.is_some_and(|e| e <= from)),
                    "{member} joined from {from} while a member: {spans:?}"
                );
                spans.push((from, None));
            }
            Event::Dropped {
                generation,
                members,
            } => {
                assert!(self.cfg.quorum.is_some(), "a drop without a quorum");
                for m in members {
                    assert!(
                        !self.fed_at(generation, &m),
                        "{m} dropped at {generation} although its check-in was fed"
                    );
                    let span = self
                        .spans
                        .get_mut(&m)
                        .and_then(|s| s.last_mut())
                        .expect("a dropped member has a span");
                    span.1 = Some(span.1.map_or(generation, |e| e.min(generation)));
                    self.dropped.entry(generation).or_default().insert(m);
                }
            }
            // Decided: checked now, against the roll as it is.
            Event::Released { generation } => {
                if let Err(e) = self.verify(generation) {
                    panic!("release of generation {generation}: {e}");
                }
            }
            _ => {}
        }
    }

    fn feed(&mut self, body: String) {
        match Message::decode(&body) {
            Ok(Message::Checkin {
                barrier,
                instance,
                generation,
                member,
                leave,
                data,
                ..
            }) if barrier == NAME && instance == INSTANCE && self.expects(&member, generation) => {
                // Counted only if the roll expects the member there (a check-in of a
                // member that left, or of a number nobody joined as, counts for nothing).
                if leave {
                    self.leaves.insert((member.clone(), generation));
                }
                if let Some(d) = data {
                    self.data
                        .entry((generation, member.clone()))
                        .or_default()
                        .insert(d);
                }
                self.fed.entry(generation).or_default().insert(member);
            }
            Ok(Message::Join {
                barrier,
                instance,
                member,
                ..
            }) if barrier == NAME && instance == INSTANCE => self.joins.push(member),
            _ => {}
        }
        let token = self.next_token;
        self.next_token += 1;
        self.coordinator.handle_message(token, &body, self.now);
        if self.bodies.len() < 64 {
            self.bodies.push(body);
        }
    }

    fn dispose(&mut self, token: u64) {
        assert!(token < self.next_token, "token {token} was never fed");
        assert!(self.disposed.insert(token), "token {token} disposed twice");
    }

    fn drain(&mut self) {
        while let Some(e) = self.coordinator.poll_event() {
            self.observe(e);
        }
        while let Some(t) = self.coordinator.poll_transmit() {
            match t {
                Transmit::Notify { generation, body } => {
                    match Message::decode(&body).expect("the coordinator's own notice") {
                        Message::Release {
                            generation: g,
                            without,
                            data,
                            ..
                        } => {
                            assert_eq!(g, generation);
                            if let Err(e) = self.verify(g) {
                                panic!("release of generation {g}: {e}");
                            }
                            let dropped: Vec<String> = self
                                .dropped
                                .get(&g)
                                .map(|d| d.iter().cloned().collect())
                                .unwrap_or_default();
                            let mut named = without.clone();
                            named.sort();
                            assert_eq!(named, dropped, "without of generation {g}");
                            for (m, d) in data.iter().flatten() {
                                assert!(!without.contains(m), "data of {m}, released without it");
                                assert!(
                                    self.data
                                        .get(&(g, m.clone()))
                                        .is_some_and(|fed| fed.contains(d)),
                                    "data {d:?} of {m} at {g} was never fed"
                                );
                            }
                        }
                        Message::Broken { generation: g, .. } => assert_eq!(g, generation),
                        other => panic!("unexpected notice {other:?}"),
                    }
                }
                Transmit::Delete(tokens) => {
                    for token in tokens {
                        self.dispose(token);
                    }
                }
                Transmit::DeadLetter { token, .. } => self.dispose(token),
                // Best effort, on the release queues: nothing to check here.
                Transmit::Sweep { .. } => {}
                Transmit::WriteState { version, state } => {
                    assert!(
                        state.released_below >= self.released_below,
                        "published state took a release back"
                    );
                    self.released_below = state.released_below;
                    let below = 0..state.released_below.min(1 << 10);
                    for g in state.released_above.iter().copied().chain(below) {
                        if let Err(e) = self.verify(g) {
                            panic!("published state claims generation {g} released: {e}");
                        }
                    }
                    self.pending_write = Some(version);
                }
            }
        }
        while let Some(e) = self.coordinator.poll_event() {
            self.observe(e);
        }
    }
}

fn checkin(generation: u64, member: &str, extra: u8) -> String {
    Message::Checkin {
        barrier: NAME.to_owned(),
        instance: INSTANCE.to_owned(),
        generation,
        member: member.to_owned(),
        session: format!("s{}", extra % 3),
        attempt: u32::from(extra >> 6),
        leave: extra & 4 == 4,
        data: (extra & 8 == 8).then(|| format!("d\"{}", extra & 0x30)),
    }
    .encode()
}

fuzz_target!(|data: &[u8]| {
    let mut input = Bytes(data);
    let (Some(a), Some(b)) = (input.next(), input.next()) else {
        return;
    };
    let n = 1 + usize::from(a % 4);
    let deadline = (b & 1 == 1).then(|| Duration::from_millis(u64::from(b) * 10));
    let mut cfg = BarrierConfig::new(NAME, INSTANCE, Membership::Count(n), deadline, false)
        .expect("valid config");
    // A quorum of 1 to n, with a grace of 0 to 3.1 s.
    if a & 0x10 == 0x10 {
        let min = 1 + usize::from(a >> 5) % n;
        let grace = Duration::from_millis(u64::from(b >> 3) * 100);
        cfg = cfg.with_quorum(min, grace).expect("valid quorum");
    }
    let opts = CoordinatorOptions::default();
    let mut h = Harness {
        coordinator: Coordinator::new(cfg.clone(), "c1", opts, None),
        cfg,
        now: Duration::from_millis(1_000),
        next_token: 0,
        fed: BTreeMap::new(),
        data: BTreeMap::new(),
        leaves: BTreeSet::new(),
        joins: Vec::new(),
        spans: (0..n).map(|m| (m.to_string(), vec![(0, None)])).collect(),
        dropped: BTreeMap::new(),
        verified: BTreeSet::new(),
        bodies: Vec::new(),
        disposed: BTreeSet::new(),
        pending_write: None,
        released_below: 0,
    };
    h.coordinator.handle_timeout(h.now);
    h.drain();
    while let Some(op) = input.next() {
        let arg = input.next().unwrap_or(0);
        match op % 10 {
            // A well-formed check-in, some leaving, some with data; members n and
            // above are members only once they joined.
            0 | 1 => {
                let member = usize::from(arg % (n as u8 + 3)).to_string();
                let generation = u64::from(arg >> 4) % 5;
                let extra = input.next().unwrap_or(0);
                h.feed(checkin(generation, &member, extra));
            }
            // A join: by a name (a number that was a member, or not), or for the next
            // number; sessions repeat, as redelivered joins do.
            9 => {
                let body = Message::Join {
                    barrier: NAME.to_owned(),
                    instance: INSTANCE.to_owned(),
                    member: (arg & 1 == 1)
                        .then(|| usize::from((arg >> 1) % (n as u8 + 3)).to_string()),
                    session: format!("j{}", (arg >> 4) % 4),
                }
                .encode();
                h.feed(body);
            }
            // An abort, with or without a generation.
            2 => {
                let body = Message::Abort {
                    barrier: NAME.to_owned(),
                    instance: INSTANCE.to_owned(),
                    generation: (arg & 1 == 1).then_some(u64::from(arg >> 1) % 5),
                    by: "op".to_owned(),
                    reason: "fuzz".to_owned(),
                }
                .encode();
                h.feed(body);
            }
            // An arbitrary body.
            3 => {
                let body = String::from_utf8_lossy(input.take(usize::from(arg % 96))).into_owned();
                h.feed(body);
            }
            // A redelivery of an earlier body.
            4 => {
                if !h.bodies.is_empty() {
                    let body = h.bodies[usize::from(arg) % h.bodies.len()].clone();
                    h.feed(body);
                }
            }
            // Time passes; timers fire.
            5 => {
                h.now += Duration::from_millis(u64::from(arg) * 50);
                h.coordinator.handle_timeout(h.now);
            }
            // The outstanding state write finishes (or fails).
            6 => {
                if let Some(version) = h.pending_write.take() {
                    if arg % 4 == 0 {
                        h.coordinator.handle_state_write_failed();
                    } else {
                        h.coordinator.handle_state_written(version);
                    }
                }
            }
            // A probe from a standby or from `status`.
            7 => {
                let body = Message::Probe {
                    barrier: NAME.to_owned(),
                    instance: INSTANCE.to_owned(),
                    from: format!("standby{}", arg % 3),
                    watch: arg & 4 == 4,
                }
                .encode();
                h.feed(body);
            }
            // A check-in of another barrier or instance, or a notice on the wrong queue.
            _ => {
                let body = match arg % 3 {
                    0 => Message::Checkin {
                        barrier: "other".to_owned(),
                        instance: INSTANCE.to_owned(),
                        generation: 0,
                        member: "0".to_owned(),
                        session: "s".to_owned(),
                        attempt: 0,
                        leave: false,
                        data: None,
                    },
                    1 => Message::Checkin {
                        barrier: NAME.to_owned(),
                        instance: "i2".to_owned(),
                        generation: 0,
                        member: "0".to_owned(),
                        session: "s".to_owned(),
                        attempt: 0,
                        leave: false,
                        data: None,
                    },
                    _ => Message::Release {
                        barrier: NAME.to_owned(),
                        instance: INSTANCE.to_owned(),
                        generation: u64::from(arg >> 2) % 5,
                        without: vec![],
                        data: None,
                    },
                }
                .encode();
                h.feed(body);
            }
        }
        h.drain();
        if let Some(at) = h.coordinator.poll_timeout() {
            assert!(at < Duration::from_secs(1 << 40), "timeout far away");
        }
    }
    for g in 0..8 {
        if h.coordinator.is_released(g)
            && let Err(e) = h.verify(g)
        {
            panic!("generation {g} released: {e}");
        }
    }
});
