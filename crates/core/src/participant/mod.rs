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

/// What an arrival brings besides itself: the member leaves, or data for
/// the others. (Not the `sqs_barrier::Arrival` of the runtime crate, a
/// wait under way.)
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct ArrivalExtras {
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
        /// The members a quorum release went on without, as the notice
        /// named them (empty if it dropped nobody): they are members no
        /// more. `None` when the wait passed on the published state,
        /// without reading the notice.
        dropped: Option<Vec<String>>,
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
    arrival: ArrivalExtras,
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
        self.arrive_with(generation, timeout, ArrivalExtras::default(), now)
    }

    /// Checks what an arrival brings before anything is sent: the data
    /// must fit in the release notice beside every other member's.
    pub fn check_arrival(&self, arrival: &ArrivalExtras) -> Result<(), ParticipantError> {
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
        arrival: ArrivalExtras,
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
        let arrival = ArrivalExtras { leave: true, data };
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

    fn push_checkin(&mut self, generation: u64, attempt: u32, arrival: &ArrivalExtras) {
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
                generation,
                data,
                without,
                ..
            } if generation == current => Outcome::Released {
                generation,
                data: Some(data.unwrap_or_default()),
                dropped: Some(without),
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
        // A write older than one already read (a message the writer has
        // not removed yet) says less than what is known: as if nothing was
        // read.
        let state = state.filter(|s| !w.liveness.is_older(s));
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
                dropped: None,
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
mod tests;
