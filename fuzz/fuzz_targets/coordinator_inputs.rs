//! The coordinator driven by a byte string read as a sequence of inputs: check-ins
//! (well-formed, of members or not, of this barrier or not), aborts, arbitrary bodies,
//! redeliveries, timeouts at increasing times, and state writes reported done or
//! failed. After every input the transmits are drained and checked:
//!
//! * a `Release` notice for generation `g` only if a check-in of every member for `g`
//!   was fed (the oracle decodes every fed body itself);
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
use sqs_barrier_core::coordinator::{Coordinator, CoordinatorOptions, Transmit};
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
    fed: BTreeMap<u64, BTreeSet<usize>>,
    bodies: Vec<String>,
    disposed: BTreeSet<u64>,
    pending_write: Option<u64>,
    released_below: u64,
}

impl Harness {
    fn all_fed(&self, generation: u64) -> bool {
        self.fed
            .get(&generation)
            .is_some_and(|m| m.len() == self.cfg.members.len())
    }

    fn feed(&mut self, body: String) {
        if let Ok(Message::Checkin {
            barrier,
            instance,
            generation,
            member,
            ..
        }) = Message::decode(&body)
            && barrier == NAME
            && instance == INSTANCE
            && let Some(m) = self.cfg.members.index_of(&member)
        {
            self.fed.entry(generation).or_default().insert(m);
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
        while let Some(t) = self.coordinator.poll_transmit() {
            match t {
                Transmit::Notify {
                    generation,
                    copies,
                    body,
                } => {
                    assert!(copies > 0, "a notice with no copies");
                    match Message::decode(&body).expect("the coordinator's own notice") {
                        Message::Release { generation: g, .. } => {
                            assert_eq!(g, generation);
                            assert!(
                                self.all_fed(g),
                                "release of generation {g} without every member's check-in \
                                 (fed: {:?})",
                                self.fed.get(&g)
                            );
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
                Transmit::WriteState { version, state } => {
                    assert!(
                        state.released_below >= self.released_below,
                        "published state took a release back"
                    );
                    self.released_below = state.released_below;
                    let below = 0..state.released_below.min(1 << 10);
                    for g in state.released_above.iter().copied().chain(below) {
                        assert!(
                            self.all_fed(g),
                            "published state claims generation {g} released"
                        );
                    }
                    self.pending_write = Some(version);
                }
            }
        }
        while self.coordinator.poll_event().is_some() {}
    }
}

fn checkin(generation: u64, member: &str, session: u8, attempt: u32) -> String {
    Message::Checkin {
        barrier: NAME.to_owned(),
        instance: INSTANCE.to_owned(),
        generation,
        member: member.to_owned(),
        session: format!("s{session}"),
        attempt,
        leave: false,
        data: None,
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
    let cfg = BarrierConfig::new(NAME, INSTANCE, Membership::Count(n), deadline, false)
        .expect("valid config");
    let opts = CoordinatorOptions::default();
    let mut h = Harness {
        coordinator: Coordinator::new(cfg.clone(), "c1", opts, None),
        cfg,
        now: Duration::from_millis(1_000),
        next_token: 0,
        fed: BTreeMap::new(),
        bodies: Vec::new(),
        disposed: BTreeSet::new(),
        pending_write: None,
        released_below: 0,
    };
    h.coordinator.handle_timeout(h.now);
    h.drain();
    while let Some(op) = input.next() {
        let arg = input.next().unwrap_or(0);
        match op % 9 {
            // A well-formed check-in; member n is not a member.
            0 | 1 => {
                let member = usize::from(arg % (n as u8 + 1)).to_string();
                let generation = u64::from(arg >> 4) % 5;
                let extra = input.next().unwrap_or(0);
                h.feed(checkin(
                    generation,
                    &member,
                    extra % 3,
                    u32::from(extra >> 6),
                ));
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
        if h.coordinator.is_released(g) {
            assert!(h.all_fed(g), "generation {g} released without check-ins");
        }
    }
});
