//! A participant: one member waiting at the barrier, one generation at a time.
//!
//! # Driving it
//!
//! 1. [`Participant::arrive`] at a generation; send what
//!    [`Participant::poll_transmit`] yields ([`Transmit::Send`] to the
//!    check-in queue).
//! 2. Long-poll the release queue of that generation and feed every body
//!    received to [`Participant::handle_notice`]. Receive one message at a
//!    time and hide it (a long visibility timeout): copies of a notice are
//!    shared by all participants, one each.
//! 3. Call [`Participant::handle_timeout`] when [`Participant::poll_timeout`]
//!    has passed; answer [`Transmit::QueryStatus`] with
//!    [`Participant::handle_status`] (the coordinator's published state, or
//!    `None` if there is none or it could not be read).
//! 4. Stop when [`Participant::poll_event`] yields an [`Outcome`]; then
//!    `arrive` at the next generation.
//!
//! While it waits, the participant re-sends its check-in every
//! [`ParticipantOptions::resend_after`] (so a release notice it missed is
//! sent again) and, from [`ParticipantOptions::silence_after`] on, checks
//! that a coordinator is alive, failing with
//! [`Outcome::CoordinatorSilent`] rather than waiting for ever.

use std::collections::VecDeque;
use std::time::Duration;

use crate::config::{BarrierConfig, Membership};
use crate::state::PublishedState;
use crate::wire::{BreakCause, Message};

/// Tunables of a participant.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct ParticipantOptions {
    /// Re-send the check-in after waiting this long without an answer.
    pub resend_after: Duration,
    /// A coordinator whose last heartbeat is older than this is silent.
    /// The first check is this long after arriving.
    pub silence_after: Duration,
    /// How often to check the coordinator after the first check.
    pub status_interval: Duration,
    /// How long to wait for the status read on timeout before giving up on
    /// naming the missing members.
    pub status_grace: Duration,
}

impl Default for ParticipantOptions {
    fn default() -> Self {
        Self {
            resend_after: Duration::from_secs(20),
            silence_after: Duration::from_secs(30),
            status_interval: Duration::from_secs(10),
            status_grace: Duration::from_secs(5),
        }
    }
}

/// Errors of the participant's API (misuse, not barrier outcomes).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParticipantError {
    /// The member is not in the barrier's membership.
    #[error("{member:?} is not a member of barrier {barrier:?} (members: {hint})")]
    NotAMember {
        /// The barrier.
        barrier: String,
        /// The name given.
        member: String,
        /// A description of the membership.
        hint: String,
    },
    /// `arrive` while already waiting.
    #[error("already waiting at generation {0}")]
    AlreadyWaiting(u64),
}

/// Something the driver must do.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Transmit {
    /// Send this body to the check-in queue.
    Send(String),
    /// Read the coordinator's published state and report it with
    /// [`Participant::handle_status`].
    QueryStatus,
}

/// How a wait ended.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Outcome {
    /// Everyone arrived: pass.
    Released {
        /// The generation released.
        generation: u64,
    },
    /// The barrier is broken; nobody passes.
    Broken {
        /// The generation waited at.
        generation: u64,
        /// The barrier is broken from this generation on.
        from_gen: u64,
        /// Why.
        cause: BreakCause,
        /// Who had not arrived at `from_gen`.
        missing: Vec<String>,
    },
    /// The wait's own timeout passed.
    TimedOut {
        /// The generation waited at.
        generation: u64,
        /// Who had not arrived, as far as the coordinator's last published
        /// state tells; `None` if that is unknown.
        missing: Option<Vec<String>>,
        /// The coordinator's last heartbeat (ms since the epoch), if any.
        last_heartbeat_ms: Option<u64>,
    },
    /// No coordinator has published a heartbeat recently enough.
    CoordinatorSilent {
        /// The generation waited at.
        generation: u64,
        /// The coordinator's last heartbeat (ms since the epoch), if any.
        last_heartbeat_ms: Option<u64>,
    },
}

/// What [`Participant::handle_notice`] made of a message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Notice {
    /// It ended the wait.
    Accepted,
    /// A notice of this barrier for another generation (or none is awaited).
    Stale,
    /// Not a notice of this barrier: move it aside.
    Foreign(String),
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Waiting {
    generation: u64,
    arrived_at: Duration,
    attempt: u32,
    next_resend: Duration,
    next_status: Duration,
    timeout_at: Option<Duration>,
    /// Set once timed out: waiting for the status that names the missing.
    timing_out: Option<Duration>,
    querying: bool,
}

/// The participant's state machine.
///
/// `Clone`, `Eq` and `Hash` let a model checker (crates/model) store and
/// compare whole participant states.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Participant {
    barrier: String,
    instance: String,
    members: Membership,
    member: String,
    session: String,
    opts: ParticipantOptions,
    waiting: Option<Waiting>,
    last_generation: Option<u64>,
    transmits: VecDeque<Transmit>,
    events: VecDeque<Outcome>,
}

impl Participant {
    /// A participant for `member` of the barrier `cfg`. `session` must be
    /// unique to this participant's life (a random id): the coordinator tells
    /// a restarted participant from a redelivered message by it.
    pub fn new(
        cfg: &BarrierConfig,
        member: &str,
        session: impl Into<String>,
        opts: ParticipantOptions,
    ) -> Result<Self, ParticipantError> {
        if cfg.members.index_of(member).is_none() {
            let hint = match &cfg.members {
                Membership::Count(n) => format!("0 to {}", n - 1),
                Membership::Roster(r) if r.len() <= 8 => r.join(", "),
                Membership::Roster(r) => format!("{}, ... ({} in all)", r[..8].join(", "), r.len()),
            };
            return Err(ParticipantError::NotAMember {
                barrier: cfg.name.clone(),
                member: member.to_owned(),
                hint,
            });
        }
        Ok(Self {
            barrier: cfg.name.clone(),
            instance: cfg.instance.clone(),
            members: cfg.members.clone(),
            member: member.to_owned(),
            session: session.into(),
            opts,
            waiting: None,
            last_generation: None,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
        })
    }

    /// The member's name.
    pub fn member(&self) -> &str {
        &self.member
    }

    /// The generation being waited at, if any.
    pub fn waiting_at(&self) -> Option<u64> {
        self.waiting.as_ref().map(|w| w.generation)
    }

    /// Arrives at `generation`, giving up after `timeout` if set.
    pub fn arrive(
        &mut self,
        generation: u64,
        timeout: Option<Duration>,
        now: Duration,
    ) -> Result<(), ParticipantError> {
        if let Some(w) = &self.waiting {
            return Err(ParticipantError::AlreadyWaiting(w.generation));
        }
        self.waiting = Some(Waiting {
            generation,
            arrived_at: now,
            attempt: 0,
            next_resend: now + self.opts.resend_after,
            next_status: now + self.opts.silence_after,
            timeout_at: timeout.map(|t| now + t),
            timing_out: None,
            querying: false,
        });
        self.last_generation = Some(generation);
        self.send_checkin(generation, 0);
        Ok(())
    }

    fn send_checkin(&mut self, generation: u64, attempt: u32) {
        let body = Message::Checkin {
            barrier: self.barrier.clone(),
            instance: self.instance.clone(),
            generation,
            member: self.member.clone(),
            session: self.session.clone(),
            attempt,
        }
        .encode();
        self.transmits.push_back(Transmit::Send(body));
    }

    /// Aborts the barrier: everyone waiting at this generation (or the next,
    /// if none is awaited) gets [`Outcome::Broken`]. A wait under way ends at
    /// once with that outcome.
    pub fn abort(&mut self, reason: &str) {
        let generation = self
            .waiting
            .as_ref()
            .map(|w| w.generation)
            .or(self.last_generation.map(|g| g + 1));
        let body = Message::Abort {
            barrier: self.barrier.clone(),
            instance: self.instance.clone(),
            generation,
            by: self.member.clone(),
            reason: reason.to_owned(),
        }
        .encode();
        self.transmits.push_back(Transmit::Send(body));
        if let Some(w) = self.waiting.take() {
            self.events.push_back(Outcome::Broken {
                generation: w.generation,
                from_gen: w.generation,
                cause: BreakCause::Aborted {
                    by: self.member.clone(),
                    reason: reason.to_owned(),
                },
                missing: Vec::new(),
            });
        }
    }

    /// Feeds a message received from the release queue.
    pub fn handle_notice(&mut self, body: &str) -> Notice {
        let msg = match Message::decode(body) {
            Ok(m) => m,
            Err(e) => return Notice::Foreign(e.to_string()),
        };
        let (barrier, instance) = msg.barrier();
        if barrier != self.barrier || instance != self.instance {
            return Notice::Foreign(format!(
                "notice of barrier {barrier:?} instance {instance:?}"
            ));
        }
        let Some(w) = &self.waiting else {
            return Notice::Stale;
        };
        let current = w.generation;
        let outcome = match msg {
            Message::Release { generation, .. } if generation == current => {
                Outcome::Released { generation }
            }
            Message::Broken {
                generation,
                from_gen,
                cause,
                missing,
                ..
            } if generation == current => Outcome::Broken {
                generation,
                from_gen,
                cause,
                missing,
            },
            Message::Release { .. } | Message::Broken { .. } => return Notice::Stale,
            other => return Notice::Foreign(format!("{} on a release queue", other.kind())),
        };
        self.waiting = None;
        self.events.push_back(outcome);
        Notice::Accepted
    }

    /// Feeds the coordinator's published state, as asked by
    /// [`Transmit::QueryStatus`]; `None` if there is none or it could not be
    /// read.
    pub fn handle_status(&mut self, state: Option<&PublishedState>, now: Duration) {
        let Some(w) = &mut self.waiting else {
            return;
        };
        w.querying = false;
        let generation = w.generation;
        let heartbeat = state.map(|s| s.heartbeat_ms);
        if w.timing_out.is_some() {
            let missing = state.and_then(|s| s.missing_at(generation, &self.members));
            self.finish(Outcome::TimedOut {
                generation,
                missing,
                last_heartbeat_ms: heartbeat,
            });
            return;
        }
        if let Some(b) = state
            .and_then(|s| s.broken.as_ref())
            .filter(|b| generation >= b.from_gen)
        {
            self.finish(Outcome::Broken {
                generation,
                from_gen: b.from_gen,
                cause: b.cause.clone(),
                missing: b.missing.clone(),
            });
            return;
        }
        let silent_for = match heartbeat {
            Some(hb) => now.saturating_sub(Duration::from_millis(hb)),
            None => now.saturating_sub(w.arrived_at),
        };
        if silent_for >= self.opts.silence_after {
            self.finish(Outcome::CoordinatorSilent {
                generation,
                last_heartbeat_ms: heartbeat,
            });
            return;
        }
        if state.is_some_and(|s| s.is_released(generation)) {
            // Released, but our notice did not reach us: ask again now.
            w.next_resend = now;
        }
    }

    /// Reports that the status asked by [`Transmit::QueryStatus`] could not
    /// be read (SQS unreachable, throttled): it is asked again later, and a
    /// timeout under way ends without naming the missing members.
    pub fn handle_status_failed(&mut self, now: Duration) {
        let Some(w) = &mut self.waiting else {
            return;
        };
        w.querying = false;
        w.next_status = now + self.opts.status_interval;
        if w.timing_out.is_some() {
            let generation = w.generation;
            self.finish(Outcome::TimedOut {
                generation,
                missing: None,
                last_heartbeat_ms: None,
            });
        }
    }

    fn finish(&mut self, outcome: Outcome) {
        self.waiting = None;
        self.events.push_back(outcome);
    }

    /// Fires due timers: re-sends, coordinator checks, the wait's timeout.
    pub fn handle_timeout(&mut self, now: Duration) {
        let Some(w) = &mut self.waiting else {
            return;
        };
        if let Some(grace_end) = w.timing_out {
            if now >= grace_end {
                // The status read did not come back in time.
                let generation = w.generation;
                self.finish(Outcome::TimedOut {
                    generation,
                    missing: None,
                    last_heartbeat_ms: None,
                });
            }
            return;
        }
        if w.timeout_at.is_some_and(|t| now >= t) {
            w.timing_out = Some(now + self.opts.status_grace);
            if !w.querying {
                w.querying = true;
                self.transmits.push_back(Transmit::QueryStatus);
            }
            return;
        }
        if now >= w.next_status && !w.querying {
            w.querying = true;
            w.next_status = now + self.opts.status_interval;
            self.transmits.push_back(Transmit::QueryStatus);
        }
        if now >= w.next_resend {
            w.attempt += 1;
            w.next_resend = now + self.opts.resend_after;
            let (g, a) = (w.generation, w.attempt);
            self.send_checkin(g, a);
        }
    }

    /// The next instant at which [`Self::handle_timeout`] must be called.
    pub fn poll_timeout(&self) -> Option<Duration> {
        let w = self.waiting.as_ref()?;
        if let Some(t) = w.timing_out {
            return Some(t);
        }
        let mut t = w.next_resend;
        if !w.querying {
            t = t.min(w.next_status);
        }
        if let Some(to) = w.timeout_at {
            t = t.min(to);
        }
        Some(t)
    }

    /// The next thing the driver must do.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// How the wait ended, once it has.
    pub fn poll_event(&mut self) -> Option<Outcome> {
        self.events.pop_front()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Membership;
    use crate::state::{MemberSet, OpenGeneration};

    fn cfg() -> BarrierConfig {
        BarrierConfig::new("b", "i", Membership::new(3, None).unwrap(), None, false).unwrap()
    }

    fn notice(g: u64) -> String {
        Message::Release {
            barrier: "b".into(),
            instance: "i".into(),
            generation: g,
        }
        .encode()
    }

    const T: Duration = Duration::from_secs(1_000);

    #[test]
    fn arrive_check_in_and_release() {
        let mut p = Participant::new(&cfg(), "1", "s", ParticipantOptions::default()).unwrap();
        assert!(Participant::new(&cfg(), "7", "s", ParticipantOptions::default()).is_err());
        p.arrive(4, None, T).unwrap();
        let Some(Transmit::Send(body)) = p.poll_transmit() else {
            panic!("no check-in");
        };
        assert!(matches!(
            Message::decode(&body).unwrap(),
            Message::Checkin {
                generation: 4,
                attempt: 0,
                ..
            }
        ));
        assert_eq!(
            p.arrive(5, None, T),
            Err(ParticipantError::AlreadyWaiting(4))
        );
        assert_eq!(p.handle_notice(&notice(3)), Notice::Stale);
        assert!(matches!(p.handle_notice("junk"), Notice::Foreign(_)));
        assert_eq!(p.handle_notice(&notice(4)), Notice::Accepted);
        assert_eq!(p.poll_event(), Some(Outcome::Released { generation: 4 }));
        assert_eq!(p.waiting_at(), None);
    }

    #[test]
    fn re_sends_while_waiting() {
        let opts = ParticipantOptions::default();
        let mut p = Participant::new(&cfg(), "1", "s", opts.clone()).unwrap();
        p.arrive(0, None, T).unwrap();
        p.poll_transmit();
        p.handle_timeout(T + opts.resend_after);
        let Some(Transmit::Send(body)) = p.poll_transmit() else {
            panic!("no re-send");
        };
        assert!(matches!(
            Message::decode(&body).unwrap(),
            Message::Checkin { attempt: 1, .. }
        ));
    }

    #[test]
    fn timeout_names_the_missing_from_the_published_state() {
        let mut p = Participant::new(&cfg(), "1", "s", ParticipantOptions::default()).unwrap();
        p.arrive(2, Some(Duration::from_secs(3)), T).unwrap();
        p.poll_transmit();
        p.handle_timeout(T + Duration::from_secs(3));
        assert_eq!(p.poll_transmit(), Some(Transmit::QueryStatus));
        let mut arrived = MemberSet::new(3);
        arrived.insert(1);
        let st = PublishedState {
            v: 1,
            coordinator: "c".into(),
            heartbeat_ms: T.as_millis() as u64,
            heartbeat_every_ms: 5_000,
            released_below: 2,
            released_above: vec![],
            open: Some(OpenGeneration {
                generation: 2,
                arrived,
                since_ms: 0,
            }),
            broken: None,
            rejected: 0,
        };
        p.handle_status(Some(&st), T + Duration::from_secs(3));
        assert_eq!(
            p.poll_event(),
            Some(Outcome::TimedOut {
                generation: 2,
                missing: Some(vec!["0".into(), "2".into()]),
                last_heartbeat_ms: Some(T.as_millis() as u64),
            })
        );
    }

    #[test]
    fn a_silent_coordinator_ends_the_wait() {
        let opts = ParticipantOptions::default();
        let mut p = Participant::new(&cfg(), "0", "s", opts.clone()).unwrap();
        p.arrive(0, None, T).unwrap();
        p.poll_transmit();
        p.handle_timeout(T + opts.silence_after);
        assert_eq!(p.poll_transmit(), Some(Transmit::QueryStatus));
        p.handle_status(None, T + opts.silence_after);
        assert!(matches!(
            p.poll_event(),
            Some(Outcome::CoordinatorSilent { .. })
        ));
    }

    #[test]
    fn abort_ends_the_wait_and_sends_an_abort() {
        let mut p = Participant::new(&cfg(), "0", "s", ParticipantOptions::default()).unwrap();
        p.arrive(1, None, T).unwrap();
        p.poll_transmit();
        p.abort("disk full");
        let Some(Transmit::Send(body)) = p.poll_transmit() else {
            panic!("no abort sent");
        };
        assert!(matches!(
            Message::decode(&body).unwrap(),
            Message::Abort {
                generation: Some(1),
                ..
            }
        ));
        assert!(matches!(
            p.poll_event(),
            Some(Outcome::Broken { generation: 1, .. })
        ));
    }
}
