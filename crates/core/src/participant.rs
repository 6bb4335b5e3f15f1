//! A participant: one member waiting at the barrier, one generation at a time.
//!
//! # Driving it
//!
//! 1. [`Participant::arrive`] at a generation; send what
//!    [`Participant::poll_transmit`] yields ([`Transmit::Send`] to the
//!    check-in queue).
//! 2. Long-poll the release queue of that generation and feed every body
//!    received to [`Participant::handle_notice`]. Receive with a visibility
//!    timeout of 0: one notice is read by every participant, and nobody
//!    hides it from the others. Delete what [`Notice::deletable`] says
//!    nobody needs, and pause a moment after an answer that held nothing
//!    for this wait, so that a leftover message cannot make the poll spin.
//! 3. Call [`Participant::handle_timeout`] when [`Participant::poll_timeout`]
//!    has passed; answer [`Transmit::QueryStatus`] with
//!    [`Participant::handle_status`] (the coordinator's published state, or
//!    `None` if there is none or it could not be read).
//! 4. Stop when [`Participant::poll_event`] yields an [`Outcome`]; then
//!    `arrive` at the next generation.
//!
//! While it waits, the participant reads the coordinator's published state
//! every [`ParticipantOptions::status_interval`], the first time one
//! interval after arriving (a coordinator cannot be judged silent sooner:
//! it promises a heartbeat a minute or more apart). The state tells it whether its generation was released (then it
//! passes, even if no notice reached it), whether to send its check-in
//! again (the coordinator does not show its arrival) and whether a
//! coordinator is alive: one that
//! has published nothing new for [`ParticipantOptions::silence_after`] (and
//! for twice the interval it promised), by the participant's own clock,
//! ends the wait with [`Outcome::CoordinatorSilent`] rather than a hang.
//!
//! The driver long-polls its release queue without a break between status
//! reads: they run beside the poll, so a waiting participant costs one
//! receive per 20 s and one status read per `status_interval`.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use crate::config::{BarrierConfig, Membership};
use crate::roll::{MAX_ELASTIC, Roll};
use crate::state::{Liveness, PublishedState};
use crate::wire::{BreakCause, Message, data_entry_size, data_limit};

/// Tunables of a participant.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct ParticipantOptions {
    /// A coordinator that published nothing new for this long (and for
    /// twice the heartbeat interval it promised), by this participant's
    /// clock, is silent; so is no state at all this long after arriving.
    pub silence_after: Duration,
    /// How often to read the coordinator's published state while waiting;
    /// the first read is this long after arriving.
    pub status_interval: Duration,
    /// How long to wait for the status read on timeout before giving up on
    /// naming the missing members.
    pub status_grace: Duration,
}

impl Default for ParticipantOptions {
    fn default() -> Self {
        Self {
            silence_after: Duration::from_secs(60),
            status_interval: Duration::from_secs(120),
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
    #[error("already waiting at phase {0}")]
    AlreadyWaiting(u64),
    /// The data is larger than a release notice leaves each member.
    #[error(
        "the data takes {size} bytes in the release notice, more than the {limit} that SQS's largest message (1 MiB) leaves each of the barrier's {members} members"
    )]
    DataTooLarge {
        /// Its size, as the notice would carry it.
        size: usize,
        /// The most each member may bring.
        limit: usize,
        /// The members it was shared among.
        members: usize,
    },
    /// A membership change on a barrier too large for it.
    #[error("a barrier of more than {MAX_ELASTIC} members cannot change its membership")]
    TooLargeToChange,
}

/// What an arrival brings besides itself.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Arrival {
    /// The member is expected at no later generation.
    pub leave: bool,
    /// Data for the others, handed to everyone with the release.
    pub data: Option<String>,
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
        /// The data the members brought, by member, as the release notice
        /// carried it (empty if nobody brought any). `None` when the wait
        /// passed on the published state, without reading the notice.
        data: Option<BTreeMap<String, String>>,
    },
    /// This member is not expected at the generation: a quorum release
    /// went on without it, or it left or was dropped earlier. It is a
    /// member from `since` on no more; it may join again.
    Dropped {
        /// The generation waited at.
        generation: u64,
        /// The first generation that does not expect it.
        since: u64,
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
    /// No coordinator has published anything new for long enough.
    CoordinatorSilent {
        /// The generation waited at.
        generation: u64,
        /// The coordinator's last heartbeat (ms since the epoch, by its
        /// clock), if any.
        last_heartbeat_ms: Option<u64>,
        /// How long nothing new was published, by this participant's clock.
        silent_for: Duration,
    },
}

/// What [`Participant::handle_notice`] made of a message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Notice {
    /// It ended the wait.
    Accepted,
    /// A notice of this barrier for a generation before the one waited at.
    /// Every member has passed it (a member waits at `g` only after `g - 1`
    /// was released, which took every member's check-in at `g - 1`, sent
    /// after passing `g - 2`), so nobody needs it: delete it.
    Passed,
    /// A notice of this barrier for a later generation (members using
    /// phase numbers with gaps), or no wait is under way: somebody else's,
    /// leave it. While waiting, this asks for a status read at once.
    Later,
    /// Not a notice of this barrier (junk, another barrier or instance, a
    /// check-in on a release queue): delete it, or it comes back at every
    /// receive.
    Foreign(String),
}

impl Notice {
    /// Whether the driver should delete the message.
    pub fn deletable(&self) -> bool {
        matches!(self, Notice::Passed | Notice::Foreign(_))
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Waiting {
    generation: u64,
    arrival: Arrival,
    attempt: u32,
    next_status: Duration,
    /// Whether the coordinators publish anything new, by this clock.
    liveness: Liveness,
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
    /// Who is expected where, as far as this participant knows (the
    /// configuration, then each published state read).
    roll: Roll,
    /// Whether the barrier has a quorum (only then may a release go on
    /// without members).
    quorum: bool,
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
        Self::with_roll(cfg, Roll::new(cfg.members.clone()), member, session, opts)
    }

    /// A participant for `member` of the barrier `cfg` whose membership
    /// changed: `roll` is the one a published state records (a member
    /// that joined is in it, not in the configuration).
    pub fn with_roll(
        cfg: &BarrierConfig,
        roll: Roll,
        member: &str,
        session: impl Into<String>,
        opts: ParticipantOptions,
    ) -> Result<Self, ParticipantError> {
        if roll.index_of(member).is_none() {
            let hint = match &cfg.members {
                Membership::Count(n) => format!("0 to {}", roll.len().max(*n) - 1),
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
            roll,
            quorum: cfg.quorum.is_some(),
            member: member.to_owned(),
            session: session.into(),
            opts,
            waiting: None,
            last_generation: None,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
        })
    }

    /// The barrier's name.
    pub fn barrier(&self) -> &str {
        &self.barrier
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
        self.arrive_with(generation, timeout, Arrival::default(), now)
    }

    /// Checks what an arrival brings before anything is sent: the data
    /// must fit in the release notice beside every other member's.
    pub fn check_arrival(&self, arrival: &Arrival) -> Result<(), ParticipantError> {
        if arrival.leave && self.roll.len() > MAX_ELASTIC {
            return Err(ParticipantError::TooLargeToChange);
        }
        if let Some(d) = &arrival.data {
            let members = self.roll.len();
            let (size, limit) = (data_entry_size(&self.member, d), data_limit(members));
            if size > limit {
                return Err(ParticipantError::DataTooLarge {
                    size,
                    limit,
                    members,
                });
            }
        }
        Ok(())
    }

    /// Arrives at `generation` bringing `arrival` (data, a leave), giving
    /// up after `timeout` if set. A leaving member may also just
    /// [`Self::leave`] without waiting.
    pub fn arrive_with(
        &mut self,
        generation: u64,
        timeout: Option<Duration>,
        arrival: Arrival,
        now: Duration,
    ) -> Result<(), ParticipantError> {
        if let Some(w) = &self.waiting {
            return Err(ParticipantError::AlreadyWaiting(w.generation));
        }
        self.check_arrival(&arrival)?;
        self.waiting = Some(Waiting {
            generation,
            arrival,
            attempt: 0,
            next_status: now + self.opts.status_interval,
            liveness: Liveness::new(now),
            timeout_at: timeout.map(|t| now + t),
            timing_out: None,
            querying: false,
        });
        self.last_generation = Some(generation);
        self.send_checkin(generation, 0);
        Ok(())
    }

    /// Arrives at `generation` and leaves the barrier, without waiting for
    /// the others: the check-in counts as this member's arrival at
    /// `generation`, and no later generation expects it. (To wait for the
    /// release too, [`Self::arrive_with`] with `leave` set.)
    pub fn leave(&mut self, generation: u64, data: Option<String>) -> Result<(), ParticipantError> {
        if let Some(w) = &self.waiting {
            return Err(ParticipantError::AlreadyWaiting(w.generation));
        }
        let arrival = Arrival { leave: true, data };
        self.check_arrival(&arrival)?;
        self.last_generation = Some(generation);
        self.push_checkin(generation, 0, &arrival);
        Ok(())
    }

    fn send_checkin(&mut self, generation: u64, attempt: u32) {
        let arrival = self
            .waiting
            .as_ref()
            .map(|w| w.arrival.clone())
            .unwrap_or_default();
        self.push_checkin(generation, attempt, &arrival);
    }

    fn push_checkin(&mut self, generation: u64, attempt: u32, arrival: &Arrival) {
        let body = Message::Checkin {
            barrier: self.barrier.clone(),
            instance: self.instance.clone(),
            generation,
            member: self.member.clone(),
            session: self.session.clone(),
            attempt,
            leave: arrival.leave,
            data: arrival.data.clone(),
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
        let Some(w) = &mut self.waiting else {
            return Notice::Later;
        };
        let current = w.generation;
        let outcome = match msg {
            Message::Release {
                generation,
                without,
                ..
            } if generation == current && without.contains(&self.member) => Outcome::Dropped {
                generation,
                since: generation,
            },
            Message::Release {
                generation, data, ..
            } if generation == current => Outcome::Released {
                generation,
                data: Some(data.unwrap_or_default()),
            },
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
            Message::Release { generation, .. } | Message::Broken { generation, .. }
                if generation < current =>
            {
                return Notice::Passed;
            }
            Message::Release { .. } | Message::Broken { .. } => {
                // Only with gaps in the phase numbers: ask the state whether
                // this generation was released or broken too.
                if !w.querying {
                    w.querying = true;
                    self.transmits.push_back(Transmit::QueryStatus);
                }
                return Notice::Later;
            }
            other => return Notice::Foreign(format!("{} on a release queue", other.kind())),
        };
        self.waiting = None;
        self.events.push_back(outcome);
        Notice::Accepted
    }

    /// Feeds the coordinator's published state, as asked by
    /// [`Transmit::QueryStatus`]; `None` if there is none.
    ///
    /// Besides the outcomes (released, broken, silent, the missing members
    /// on a timeout), the state says whether the check-in must go again:
    /// when it does not show this member's arrival (the check-in went
    /// missing, or a coordinator lost it). A generation the state shows
    /// released ends the wait: a coordinator records a release only after
    /// counting every member's check-in, exactly as for a notice (the
    /// notice may have expired unread, or a false empty receive missed it).
    pub fn handle_status(&mut self, state: Option<&PublishedState>, now: Duration) {
        let Some(w) = &mut self.waiting else {
            return;
        };
        w.querying = false;
        w.liveness.observe(state, now);
        let generation = w.generation;
        let heartbeat = state.map(|s| s.heartbeat_ms);
        if let Some(s) = state {
            self.roll = s.roll(self.roll.base());
        }
        let me = self.roll.index_of(&self.member);
        // A leave counts as the arrival at its generation, so once that is
        // released without a quorum (a barrier without one drops nobody),
        // it was released with this member. The roll cannot say so: once
        // the frontier passed the leave, the published roll keeps only that
        // the member is gone, not since when.
        let left_here =
            w.arrival.leave && !self.quorum && state.is_some_and(|s| s.is_released(generation));
        if let Some(i) = me.filter(|i| !left_here && !self.roll.expects(*i, generation)) {
            // Dropped by a quorum release (of this generation or an earlier
            // one), or left: passing would pass a generation that did not
            // wait for this member.
            let since = self.roll.span(i).end.unwrap_or(generation);
            self.finish(Outcome::Dropped { generation, since });
            return;
        }
        if state.is_some_and(|s| s.is_released(generation)) {
            self.finish(Outcome::Released {
                generation,
                data: None,
            });
            return;
        }
        // Broken says more than a timeout would, also to a wait whose own
        // timeout has passed.
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
        let Some(w) = &mut self.waiting else {
            return;
        };
        if w.timing_out.is_some() {
            let missing = state.and_then(|s| s.missing_at(generation, &self.roll));
            self.finish(Outcome::TimedOut {
                generation,
                missing,
                last_heartbeat_ms: heartbeat,
            });
            return;
        }
        if w.liveness.silent(now, self.opts.silence_after) {
            let silent_for = w.liveness.unchanged_for(now);
            self.finish(Outcome::CoordinatorSilent {
                generation,
                last_heartbeat_ms: heartbeat,
                silent_for,
            });
            return;
        }
        let counted = state
            .and_then(|s| s.open.as_ref())
            .filter(|o| o.generation == generation)
            .is_some_and(|o| me.is_some_and(|i| o.arrived.contains(i)));
        if !counted {
            // Our arrival is not recorded (the check-in went missing, or a
            // coordinator lost it): send the check-in again.
            w.attempt += 1;
            let attempt = w.attempt;
            self.send_checkin(generation, attempt);
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

    /// Fires due timers: status reads and the wait's timeout.
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
    }

    /// Whether the wait's own timeout has passed and only the status read
    /// that names the missing members is awaited.
    pub fn is_timing_out(&self) -> bool {
        self.waiting
            .as_ref()
            .is_some_and(|w| w.timing_out.is_some())
    }

    /// The next instant at which [`Self::handle_timeout`] must be called.
    pub fn poll_timeout(&self) -> Option<Duration> {
        let w = self.waiting.as_ref()?;
        if w.querying {
            return self.poll_deadline();
        }
        Some(
            self.poll_deadline()
                .map_or(w.next_status, |t| t.min(w.next_status)),
        )
    }

    /// The next instant that must cut a long poll short: the wait's timeout
    /// or the end of its grace. Status reads need not: a driver that reads
    /// the state beside the poll calls [`Self::handle_timeout`] after each
    /// poll, and a read up to one poll late changes nothing.
    pub fn poll_deadline(&self) -> Option<Duration> {
        let w = self.waiting.as_ref()?;
        w.timing_out.or(w.timeout_at)
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
            without: vec![],
            data: None,
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
        assert_eq!(p.handle_notice(&notice(3)), Notice::Passed);
        assert!(Notice::Passed.deletable());
        assert!(matches!(p.handle_notice("junk"), Notice::Foreign(_)));
        assert!(p.handle_notice("junk").deletable());
        // A later generation's notice is somebody else's: kept, and the
        // state is read at once.
        assert_eq!(p.handle_notice(&notice(6)), Notice::Later);
        assert!(!Notice::Later.deletable());
        assert_eq!(p.poll_transmit(), Some(Transmit::QueryStatus));
        assert_eq!(p.handle_notice(&notice(4)), Notice::Accepted);
        assert_eq!(
            p.poll_event(),
            Some(Outcome::Released {
                generation: 4,
                data: Some(Default::default())
            })
        );
        assert_eq!(p.waiting_at(), None);
    }

    /// A state written by coordinator `c` at `heartbeat_ms` (its clock),
    /// with generation `g` open and `arrived` counted.
    fn state(heartbeat_ms: u64, g: u64, arrived: &[usize], released_below: u64) -> PublishedState {
        let mut set = MemberSet::new(3);
        for i in arrived {
            set.insert(*i);
        }
        PublishedState {
            v: 1,
            coordinator: "c".into(),
            heartbeat_ms,
            seq: 0,
            heartbeat_every_ms: 30_000,
            stopped: false,
            standbys: vec![],
            released_below,
            released_above: vec![],
            open: Some(OpenGeneration {
                generation: g,
                arrived: set,
                since_ms: 0,
                age_ms: Some(0),
                data: None,
                quorum_age_ms: None,
            }),
            broken: None,
            rejected: 0,
            roll: None,
        }
    }

    fn sends(p: &mut Participant) -> Vec<Message> {
        std::iter::from_fn(|| p.poll_transmit())
            .filter_map(|t| match t {
                Transmit::Send(body) => Some(Message::decode(&body).unwrap()),
                Transmit::QueryStatus => None,
            })
            .collect()
    }

    /// A member waiting for the release of the generation it leaves at,
    /// whose notice it missed, passes on a state that shows it released,
    /// although the frontier has moved past it and the published roll
    /// keeps only that the member is gone.
    #[test]
    fn a_leaving_member_passes_its_last_generation_on_a_later_state() {
        let c = cfg();
        let mut p = Participant::new(&c, "2", "s", ParticipantOptions::default()).unwrap();
        let arrival = Arrival {
            leave: true,
            data: None,
        };
        p.arrive_with(0, None, arrival, T).unwrap();
        let mut roll = Roll::new(c.members.clone());
        roll.end(2, 1);
        let mut st = state(1, 3, &[0], 3);
        st.roll = roll.to_state(3);
        assert!(
            !st.roll(&c.members).expects(2, 0),
            "the roll forgot since when"
        );
        p.handle_status(Some(&st), T);
        assert_eq!(
            p.poll_event(),
            Some(Outcome::Released {
                generation: 0,
                data: None
            })
        );
        // On a quorum barrier the release may have gone on without it:
        // the member is dropped.
        let q = c.clone().with_quorum(2, Duration::ZERO).unwrap();
        let mut p = Participant::new(&q, "2", "s", ParticipantOptions::default()).unwrap();
        p.arrive_with(
            0,
            None,
            Arrival {
                leave: true,
                data: None,
            },
            T,
        )
        .unwrap();
        p.handle_status(Some(&st), T);
        assert!(matches!(p.poll_event(), Some(Outcome::Dropped { .. })));
    }

    #[test]
    fn status_reads_decide_re_sends() {
        let opts = ParticipantOptions::default();
        let mut p = Participant::new(&cfg(), "1", "s", opts.clone()).unwrap();
        p.arrive(2, None, T).unwrap();
        p.poll_transmit();
        // Nothing is due before the status interval.
        assert_eq!(p.poll_timeout(), Some(T + opts.status_interval));
        assert_eq!(p.poll_deadline(), None, "no timer cuts a long poll short");
        let mut t = T + opts.status_interval;
        p.handle_timeout(t);
        assert_eq!(p.poll_transmit(), Some(Transmit::QueryStatus));
        // Counted: nothing to send.
        p.handle_status(Some(&state(1, 2, &[1], 2)), t);
        assert!(sends(&mut p).is_empty());
        // Not counted (lost check-in, or a coordinator lost it): again.
        t += opts.status_interval;
        p.handle_timeout(t);
        p.handle_status(Some(&state(2, 2, &[0], 2)), t);
        assert!(matches!(
            sends(&mut p)[..],
            [Message::Checkin {
                generation: 2,
                attempt: 1,
                ..
            }]
        ));
        assert_eq!(p.poll_event(), None, "still waiting");
        // Released, but no notice came (it expired, or a receive missed
        // it): the state is enough, nothing is sent.
        t += opts.status_interval;
        p.handle_timeout(t);
        p.handle_status(Some(&state(3, 3, &[], 3)), t);
        assert!(sends(&mut p).is_empty());
        assert_eq!(
            p.poll_event(),
            Some(Outcome::Released {
                generation: 2,
                data: None
            })
        );
    }

    #[test]
    fn a_timed_out_wait_whose_generation_was_released_passes() {
        let mut p = Participant::new(&cfg(), "1", "s", ParticipantOptions::default()).unwrap();
        p.arrive(2, Some(Duration::from_secs(3)), T).unwrap();
        p.poll_transmit();
        p.handle_timeout(T + Duration::from_secs(3));
        assert_eq!(p.poll_transmit(), Some(Transmit::QueryStatus));
        p.handle_status(Some(&state(1, 3, &[], 3)), T + Duration::from_secs(3));
        assert_eq!(
            p.poll_event(),
            Some(Outcome::Released {
                generation: 2,
                data: None
            })
        );
    }

    #[test]
    fn timeout_names_the_missing_from_the_published_state() {
        let mut p = Participant::new(&cfg(), "1", "s", ParticipantOptions::default()).unwrap();
        p.arrive(2, Some(Duration::from_secs(3)), T).unwrap();
        p.poll_transmit();
        assert_eq!(p.poll_deadline(), Some(T + Duration::from_secs(3)));
        p.handle_timeout(T + Duration::from_secs(3));
        assert_eq!(p.poll_transmit(), Some(Transmit::QueryStatus));
        let st = state(T.as_millis() as u64, 2, &[1], 2);
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
    fn no_state_at_all_is_a_silent_coordinator() {
        let opts = ParticipantOptions::default();
        let mut p = Participant::new(&cfg(), "0", "s", opts.clone()).unwrap();
        p.arrive(0, None, T).unwrap();
        p.poll_transmit();
        // Not before `silence_after`: a first read then (here, with a short
        // interval) finds nothing, and the wait goes on.
        let mut short = opts.clone();
        short.status_interval = opts.silence_after / 2;
        let mut q = Participant::new(&cfg(), "0", "s", short.clone()).unwrap();
        q.arrive(0, None, T).unwrap();
        q.poll_transmit();
        let early = T + short.status_interval;
        q.handle_timeout(early);
        q.handle_status(None, early);
        assert_eq!(q.poll_event(), None, "{early:?} is not yet silent");
        // The default first read (120 s) comes after `silence_after` (60 s):
        // no state at all by then is a silent coordinator.
        let first = T + opts.status_interval;
        assert!(first >= T + opts.silence_after);
        p.handle_timeout(first);
        p.handle_status(None, first);
        assert!(matches!(
            p.poll_event(),
            Some(Outcome::CoordinatorSilent { .. })
        ));
    }

    /// Liveness is judged on the participant's own clock: a heartbeat
    /// written by a clock minutes ahead or behind changes nothing; a beat
    /// that stops changing does, whatever the clocks say.
    #[test]
    fn skewed_clocks_change_nothing() {
        let opts = ParticipantOptions::default();
        let five_min = 300_000;
        let here = T.as_millis() as u64;
        for skew in [here - five_min, here + five_min, 1, u64::MAX / 2] {
            let mut p = Participant::new(&cfg(), "1", "s", opts.clone()).unwrap();
            p.arrive(2, None, T).unwrap();
            p.poll_transmit();
            let mut t = T + opts.status_interval;
            // A live coordinator: its beat changes between reads.
            for k in 0..5 {
                p.handle_timeout(t);
                p.handle_status(Some(&state(skew + k, 2, &[1], 2)), t);
                assert_eq!(p.poll_event(), None, "skew {skew}: live called silent");
                t += opts.status_interval;
            }
            // It dies after its last beat (read at t - interval): the same
            // beat again, a read later (longer than silence_after and twice
            // the promised 30 s), is silence.
            p.handle_timeout(t);
            p.handle_status(Some(&state(skew + 4, 2, &[1], 2)), t);
            assert!(
                matches!(p.poll_event(), Some(Outcome::CoordinatorSilent { .. })),
                "skew {skew}: a dead coordinator was not noticed"
            );
        }
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
