//! The coordinator: counts distinct check-ins and releases generations.
//!
//! # Driving it
//!
//! 1. Build it with [`Coordinator::new`], passing the state the previous
//!    coordinator published, if any (so released generations and a broken
//!    barrier survive a restart).
//! 2. Feed every message received from the check-in queue to
//!    [`Coordinator::handle_message`] together with an opaque token (the
//!    driver's receipt handle). **Keep every message until the coordinator
//!    tells you to delete it**: while a generation is open, its check-ins
//!    stay in the queue (in flight; extend their visibility), so a crash of
//!    the coordinator loses none of them.
//! 3. Call [`Coordinator::handle_timeout`] whenever the instant returned by
//!    [`Coordinator::poll_timeout`] has passed.
//! 4. After each call, drain [`Coordinator::poll_transmit`] and carry out
//!    each [`Transmit`] in order, reporting state writes back with
//!    [`Coordinator::handle_state_written`] or
//!    [`Coordinator::handle_state_write_failed`]; drain
//!    [`Coordinator::poll_event`] for logs and metrics.
//!
//! # Why it is safe
//!
//! A generation is released only when every member of the membership has a
//! check-in *for that generation* in the coordinator's memory of this life.
//! Check-ins are counted as a set of members, so duplicates, retries and
//! redeliveries cannot inflate the count, and a message that is not a valid
//! check-in of a member of this barrier instance is never counted. Messages
//! that made a generation released are deleted only after a published state
//! recording that release has been written, so a restarted coordinator either
//! still sees them or knows the generation was released.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Duration;

use crate::config::BarrierConfig;
use crate::participant::ArrivalExtras;
use crate::roll::{MAX_ELASTIC, Roll};
use crate::state::{
    Beat, BrokenState, MAX_NAMED_MISSING, MemberSet, OpenGeneration, PublishedState,
};
use crate::wire::{BreakCause, MAX_BODY, Message};

/// How far ahead of the barrier a check-in's generation may be. A
/// participant can only be one generation past the last released one (more
/// only when members use different phase numbers); a check-in far beyond is
/// forged or foreign, and would otherwise be held for ever.
pub const MAX_AHEAD: u64 = 16;

/// How long a notice may stay in a release queue: their retention (60 s,
/// the least SQS allows) and a margin for the time between deciding to
/// send one and SQS storing it.
pub const NOTICE_LIFE: Duration = Duration::from_secs(70);

/// Whether a sweep of a release queue may delete the message `body`: it is
/// not a notice of this barrier instance for a generation at or above
/// `below` (an older notice, somebody else's message, or junk, which would
/// otherwise come back at every receive of participants reading with a
/// visibility timeout of 0).
pub fn sweepable(cfg: &BarrierConfig, body: &str, below: u64) -> bool {
    match Message::decode(body) {
        Ok(
            Message::Release {
                barrier,
                instance,
                generation,
                ..
            }
            | Message::Broken {
                barrier,
                instance,
                generation,
                ..
            },
        ) => barrier != cfg.name || instance != cfg.instance || generation < below,
        _ => true,
    }
}

/// The longest abort reason kept (longer ones are cut, with an ellipsis).
pub const MAX_REASON: usize = 512;
/// The longest `by` of an abort kept.
pub const MAX_BY: usize = 128;

fn truncate(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut cut = max - 3;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push_str("...");
    }
    s
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Seen {
    generation: u64,
    session: String,
    attempt: u32,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Open<T> {
    arrived: MemberSet,
    /// How many of the arrived the roll expects here.
    have: usize,
    since: Duration,
    /// When the quorum was reached (a quorum barrier).
    quorum_at: Option<Duration>,
    /// Data members brought, by position.
    data: BTreeMap<usize, String>,
    /// Members a predecessor published as having brought data: their
    /// check-ins come back (they stay in the queue until the release), and
    /// the generation is released only once each one's data is here.
    data_expected: MemberSet,
    /// The check-ins that carry the data: kept, whatever the pinning,
    /// until the release (or the break) is durable.
    kept: Vec<T>,
    tokens: Vec<T>,
    /// Which send of each arrived member is held: `(member, send)`.
    held: Vec<(usize, Seen)>,
    /// Whether its arrivals have been published (a write was issued with
    /// it as the state's `open`). From then on the published state is the
    /// record of its arrivals: its check-ins are deleted once a write
    /// recording them is durable, and every later state must publish it.
    pinned: bool,
}

impl<T> Open<T> {
    fn new(n: usize, since: Duration) -> Self {
        Self {
            arrived: MemberSet::new(n),
            have: 0,
            since,
            quorum_at: None,
            data: BTreeMap::new(),
            data_expected: MemberSet::new(0),
            kept: Vec::new(),
            tokens: Vec::new(),
            held: Vec::new(),
            pinned: false,
        }
    }
}

/// The coordinator's state machine. `T` is the driver's handle of a received
/// message (an SQS receipt handle, a Lambda record id, ...).
///
/// `Clone`, `Eq` and `Hash` let a model checker (crates/model) store and
/// compare whole coordinator states.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Coordinator<T> {
    cfg: BarrierConfig,
    /// Who is expected at which generation.
    roll: Roll,
    opts: CoordinatorOptions,
    id: String,
    released_below: u64,
    released_above: BTreeSet<u64>,
    open: BTreeMap<u64, Open<T>>,
    broken: Option<BrokenState>,
    last_seen: Vec<Option<Seen>>,
    rejected: u64,
    /// Bumped on every change worth publishing.
    version: u64,
    /// The highest version known to be published.
    durable: u64,
    /// A write under way, if any.
    writing: Option<u64>,
    last_write: Option<Duration>,
    /// Messages to delete once `durable` reaches their version.
    awaiting: Vec<(u64, T)>,
    /// When this coordinator first handled anything.
    started: Option<Duration>,
    /// What waits for the restart grace (deadlines, quorum ends, joins)
    /// waits at least until then: set when it resumes after resting
    /// ([`Self::handle_resumed`]).
    resumed_floor: Duration,
    /// When this coordinator last sent a notice to each release queue (by
    /// parity): a queue it sent nothing to for longer than a notice lives
    /// holds nothing to sweep.
    notice_sent: [Option<Duration>; 2],
    /// The restored open generation, how long it had been open when its
    /// state was written, and when that was (the writer's clock): a
    /// deadline counts from then, not from this coordinator's start.
    /// Applied at the first call with a `now`.
    restored_age: Option<(u64, Duration, Duration)>,
    /// How long the restored generation's quorum had been reached.
    restored_quorum_age: Option<Duration>,
    /// Whether a state write of this coordinator succeeded.
    written: bool,
    /// Writes issued (the published `seq`).
    writes: u64,
    /// The state it started from (`None`: there was none). Until its first
    /// write it may find only that one before a write; anything else means
    /// another coordinator is active.
    expected: Option<Beat>,
    /// Its term: one more than the term of the state it started from, so
    /// that its writes order after every write of its predecessors.
    term: u64,
    /// The interval promised by the last write: the next one is due by then.
    promised: Duration,
    /// A standby probed: write at once (the answer it waits for).
    probed: bool,
    /// Standbys by id, with when each last probed.
    standbys: BTreeMap<String, Duration>,
    /// Set once another coordinator took over: this one is inert.
    superseded: Option<String>,
    /// Notices of quorum releases, `(version, generation, body)`: they go
    /// once a state recording the release (and whom it went without) is
    /// durable, so that a successor never decides that generation again,
    /// differently (waiting for a member the notice dropped, or dropping
    /// one that passed).
    deferred: Vec<(u64, u64, String)>,
    /// Joins received before `restart_grace` had passed since this
    /// coordinator's start, `(token, member, session)`: counted once it
    /// has passed (see [`Self::join`]).
    joins: Vec<(T, Option<String>, String)>,
    transmits: VecDeque<Transmit<T>>,
    events: VecDeque<Event>,
}

impl<T> Coordinator<T> {
    /// Creates a coordinator with id `id` (it signs its published state with
    /// it), resuming from `restored`, the state a previous coordinator
    /// published.
    pub fn new(
        cfg: BarrierConfig,
        id: impl Into<String>,
        opts: CoordinatorOptions,
        restored: Option<&PublishedState>,
    ) -> Self {
        let roll = match restored {
            Some(st) => st.roll(&cfg.members),
            None => Roll::new(cfg.members.clone()),
        };
        let n = roll.len();
        let mut c = Self {
            cfg,
            roll,
            opts,
            id: id.into(),
            released_below: 0,
            released_above: BTreeSet::new(),
            open: BTreeMap::new(),
            broken: None,
            last_seen: vec![None; n],
            rejected: 0,
            version: 1,
            durable: 0,
            writing: None,
            last_write: None,
            awaiting: Vec::new(),
            started: None,
            resumed_floor: Duration::ZERO,
            notice_sent: [None, None],
            restored_age: None,
            restored_quorum_age: None,
            written: false,
            writes: 0,
            expected: restored.map(PublishedState::beat),
            term: restored.map_or(0, |s| s.term) + 1,
            promised: Duration::ZERO,
            probed: false,
            standbys: BTreeMap::new(),
            superseded: None,
            deferred: Vec::new(),
            joins: Vec::new(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
        };
        if let Some(st) = restored {
            c.released_below = st.released_below;
            c.released_above = st.released_above.iter().copied().collect();
            c.broken = st.broken.clone();
            c.rejected = st.rejected;
            if let Some(o) = &st.open {
                c.restore_open(o, st.heartbeat_ms);
            }
        }
        c
    }

    /// Takes over the arrivals a predecessor published for an open
    /// generation: its check-ins may be deleted, so this is their record.
    /// Ignored if the generation is released or broken. Called at
    /// construction; [`Self::begin`] fixes its start on this clock.
    fn restore_open(&mut self, o: &OpenGeneration, written_ms: u64) {
        let g = o.generation;
        if self.is_released(g) || self.broken.as_ref().is_some_and(|b| g >= b.from_gen) {
            return;
        }
        let n = self.roll.len();
        let mut open = Open::new(n, Duration::ZERO);
        open.arrived = o.arrived.within(n);
        open.data_expected = o.data.as_ref().map_or(MemberSet::new(0), |d| d.within(n));
        open.pinned = true;
        if !open.arrived.is_empty() {
            self.version += 1;
        }
        self.open.insert(g, open);
        self.recount(g);
        self.restored_age = Some((
            g,
            Duration::from_millis(o.age_ms.unwrap_or(0)),
            Duration::from_millis(written_ms),
        ));
        self.restored_quorum_age = o.quorum_age_ms.map(Duration::from_millis);
        // At construction there is no clock yet; the sweep a release may
        // ask for is decided by `started` (unset), so the instant is unused.
        self.check_complete(g, Duration::ZERO);
    }

    /// The first call with a clock: fixes the restored generation's start.
    fn begin(&mut self, now: Duration) -> Duration {
        if self.started.is_none() {
            self.started = Some(now);
            if let Some((g, age, written)) = self.restored_age.take()
                && let Some(o) = self.open.get_mut(&g)
            {
                let since_write = if self.opts.age_since_write {
                    now.saturating_sub(written)
                } else {
                    Duration::ZERO
                };
                o.since = now.saturating_sub(age + since_write);
                if let Some(q) = self.restored_quorum_age.take() {
                    o.quorum_at = Some(now.saturating_sub(q + since_write));
                }
            }
            if let Some(q) = self.cfg.quorum {
                for o in self.open.values_mut() {
                    if o.quorum_at.is_none() && o.have >= q.min {
                        o.quorum_at = Some(now);
                    }
                }
            }
        }
        self.started.unwrap_or(now)
    }

    /// The id this coordinator signs its published state with.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Whether a state write of this coordinator succeeded: from then on,
    /// another coordinator's state found before a write means it was
    /// superseded.
    pub fn has_published(&self) -> bool {
        self.written
    }

    /// The other coordinator's id, once this one has been superseded.
    pub fn superseded(&self) -> Option<&str> {
        self.superseded.as_deref()
    }

    /// The barrier's configuration.
    pub fn config(&self) -> &BarrierConfig {
        &self.cfg
    }

    /// Whether generation `g` has been released.
    pub fn is_released(&self, g: u64) -> bool {
        g < self.released_below || self.released_above.contains(&g)
    }

    /// Every generation below this one has been released.
    pub fn released_below(&self) -> u64 {
        self.released_below
    }

    /// The broken state, once the barrier is broken.
    pub fn broken(&self) -> Option<&BrokenState> {
        self.broken.as_ref()
    }

    /// Whether more check-ins are expected: a generation has some of its
    /// members counted (here or by a predecessor) but is not released yet.
    pub fn is_collecting(&self) -> bool {
        self.broken.is_none() && !self.open.is_empty()
    }

    /// How many received messages the coordinator holds (not yet deletable).
    pub fn held(&self) -> usize {
        self.open
            .values()
            .map(|o| o.tokens.len() + o.kept.len())
            .sum::<usize>()
            + self.awaiting.len()
            + self.joins.len()
    }

    /// Who is expected at which generation.
    pub fn roll(&self) -> &Roll {
        &self.roll
    }

    /// Feeds one message received from the check-in queue.
    pub fn handle_message(&mut self, token: T, body: &str, now: Duration) {
        self.begin(now);
        if self.superseded.is_some() {
            return;
        }
        let msg = match Message::decode(body) {
            Ok(m) => m,
            Err(e) => return self.reject(token, body, e.to_string()),
        };
        let (barrier, instance) = msg.barrier();
        if barrier != self.cfg.name || instance != self.cfg.instance {
            let reason = format!(
                "message of barrier {barrier:?} instance {instance:?}, not of {:?} instance {:?}",
                self.cfg.name, self.cfg.instance
            );
            return self.reject(token, body, reason);
        }
        match msg {
            Message::Checkin {
                generation,
                member,
                session,
                attempt,
                leave,
                data,
                ..
            } => {
                let Some(m) = self.roll.index_of(&member) else {
                    let reason = format!("check-in from {member:?}, who is not a member");
                    return self.reject(token, body, reason);
                };
                if leave && self.roll.len() > MAX_ELASTIC {
                    let reason = format!(
                        "leave of {member:?}: a barrier of more than {MAX_ELASTIC} members cannot change its membership"
                    );
                    return self.reject(token, body, reason);
                }
                let seen = Seen {
                    generation,
                    session,
                    attempt,
                };
                self.checkin(token, body, m, seen, ArrivalExtras { leave, data }, now);
            }
            Message::Join {
                member, session, ..
            } => self.join(token, member, session, now),
            Message::Abort {
                generation,
                by,
                reason,
                ..
            } => self.abort(token, body, generation, by, reason, now),
            Message::Probe { from, watch, .. } => {
                // Somebody asks whether this coordinator lives: answer with a
                // write now, and beat fast while a standby watches. Nothing
                // to keep: the probe goes at once.
                self.transmits.push_back(Transmit::Delete(vec![token]));
                if from != self.id {
                    if watch && self.standbys.insert(from.clone(), now).is_none() {
                        self.events.push_back(Event::Watched { by: from });
                    }
                    self.probed = true;
                }
            }
            other => {
                let reason = format!("{} notice on the check-in queue", other.kind());
                self.reject(token, body, reason);
            }
        }
    }

    fn checkin(
        &mut self,
        token: T,
        body: &str,
        m: usize,
        seen: Seen,
        arrival: ArrivalExtras,
        now: Duration,
    ) {
        let g = seen.generation;
        if let Some(b) = self.broken.as_ref().filter(|b| g >= b.from_gen) {
            // Tell this participant too (a new send: a redelivered copy of
            // one already answered adds nothing); forget the message once
            // the broken state that explains it is published.
            if self.last_seen[m].as_ref() != Some(&seen) {
                let body = self.broken_notice(g, b);
                self.notify(g, body, now);
                self.remember(m, seen);
            }
            let v = self.version;
            self.awaiting.push((v, token));
            return;
        }
        if self.is_released(g) {
            // A redelivered copy of a counted check-in, a re-send that
            // crossed the release, or a participant re-run for a phase
            // already passed: the release notice is on its queue, and the
            // published state says the generation is released, which a
            // participant's next status read takes as its release. Nothing
            // to send.
            self.remember(m, seen);
            // This may be a counted check-in of g itself, back after its
            // visibility lapsed, under a new receipt handle: deleting it
            // deletes the message a successor would re-count. So it goes
            // only once the state recording the release is published (at
            // once if it already is).
            self.await_write(token);
            return;
        }
        let frontier = self.frontier();
        if g > frontier + MAX_AHEAD {
            let reason = format!(
                "check-in for generation {g}, more than {MAX_AHEAD} ahead of the barrier (at {frontier})"
            );
            return self.reject(token, body, reason);
        }
        if arrival.data.is_some() && !self.opts.holds_data && self.broken.is_none() {
            let what = "a member brought data to gather, and this coordinator (the Lambda function) cannot hold it between invocations: gather with a process coordinator (`sqs-barrier coordinator`)".to_owned();
            self.break_from(g, BreakCause::Unsupported { what }, now);
            self.remember(m, seen);
            let v = self.version;
            self.awaiting.push((v, token));
            return;
        }
        if !self.roll.expects(m, g) {
            // A member that left or was dropped before g, or that joined
            // after it: g does not wait for it, and its check-in counts for
            // nothing. The participant learns why from the published state
            // (or from the release notice that went on without it).
            self.remember(m, seen);
            self.await_write(token);
            return;
        }
        let n = self.roll.len();
        let open = self.open.entry(g).or_insert_with(|| Open::new(n, now));
        let new = open.arrived.insert(m);
        // The same send as the held check-in: possibly the held message
        // itself, back after its visibility lapsed, under a new receipt
        // handle. Deleting it early would delete the check-in that counts.
        let same_send = !new && open.held.iter().any(|(i, s)| *i == m && *s == seen);
        if new {
            open.held.push((m, seen.clone()));
            open.have += 1;
        }
        // The data a member brings stays in its check-in, in the queue,
        // until the release that hands it out is durable.
        let keep = match arrival.data {
            Some(d) if (new || same_send || !open.data.contains_key(&m)) => {
                if !new && !same_send {
                    // The data of an arrival a predecessor published: this
                    // message is its only copy. If it comes back under a
                    // new receipt handle (its visibility lapsed), that is
                    // this same send, to be kept too, not deleted.
                    open.held.push((m, seen.clone()));
                }
                open.data.insert(m, d);
                true
            }
            _ => false,
        };
        let (count, pinned) = (open.have, open.pinned);
        if new {
            self.version += 1;
            self.events.push_back(Event::Arrived {
                generation: g,
                member: self.roll.name(m),
                count,
                of: self.roll.expected_count(g),
            });
        }
        if keep {
            if let Some(open) = self.open.get_mut(&g) {
                open.kept.push(token);
            }
        } else if !new && !same_send {
            // The member's first check-in counts; a re-send or a new session
            // adds nothing, so it need not be kept.
            self.transmits.push_back(Transmit::Delete(vec![token]));
        } else if pinned {
            // The published state records this generation's arrivals: the
            // check-in may go once a write recording this one is durable.
            self.await_write(token);
        } else if let Some(open) = self.open.get_mut(&g) {
            // Held (in flight) until the generation is published or released.
            open.tokens.push(token);
        }
        self.remember(m, seen);
        if arrival.leave && self.roll.end(m, g + 1) {
            // Expected at no later generation: one with gaps in the phase
            // numbers may be open above g, and waits for one fewer.
            self.version += 1;
            self.events.push_back(Event::Left {
                member: self.roll.name(m),
                generation: g,
            });
            let later: Vec<u64> = self.open.range(g + 1..).map(|(g, _)| *g).collect();
            for h in later {
                self.recount(h);
                self.check_complete(h, now);
            }
        }
        self.check_complete(g, now);
    }

    /// Deletes `token` once everything changed so far is published (at once
    /// if it already is).
    fn await_write(&mut self, token: T) {
        if self.durable >= self.version {
            self.transmits.push_back(Transmit::Delete(vec![token]));
        } else {
            self.awaiting.push((self.version, token));
        }
    }

    /// No deadline fires before this: a coordinator first waits for the
    /// check-ins a dead predecessor may have held to become visible again.
    fn deadline_floor(&self, start: Duration) -> Duration {
        (start + self.opts.restart_grace).max(self.resumed_floor)
    }

    /// The generation after the highest released one.
    fn frontier(&self) -> u64 {
        self.released_above
            .last()
            .map_or(self.released_below, |g| g + 1)
            .max(self.released_below)
    }

    fn remember(&mut self, m: usize, seen: Seen) {
        let slot = &mut self.last_seen[m];
        if slot
            .as_ref()
            .is_none_or(|s| s.generation <= seen.generation)
        {
            *slot = Some(seen);
        }
    }

    /// Fires due timers: the barrier deadline and state writes (heartbeats).
    pub fn handle_timeout(&mut self, now: Duration) {
        let start = self.begin(now);
        if self.superseded.is_some() {
            return;
        }
        if let (Some(deadline), None) = (self.cfg.deadline, &self.broken) {
            let floor = self.deadline_floor(start);
            let expired = self
                .open
                .iter()
                .find(|(_, o)| (o.since + deadline + self.opts.deadline_slack).max(floor) <= now)
                .map(|(g, _)| *g);
            if let Some(g) = expired {
                let after_ms = deadline.as_millis() as u64;
                self.break_from(g, BreakCause::Deadline { after_ms }, now);
            }
        }
        if let Some(due) = self.quorum_due()
            && due <= now
        {
            let ready: Vec<u64> = self
                .open
                .iter()
                .filter(|(_, o)| o.quorum_at.is_some_and(|t| self.quorum_end(t) <= now))
                .map(|(g, _)| *g)
                .collect();
            for g in ready {
                // An earlier one's release may have dropped members this
                // one's quorum counted (`recount`): look again.
                let due = self
                    .open
                    .get(&g)
                    .and_then(|o| o.quorum_at)
                    .is_some_and(|t| self.quorum_end(t) <= now);
                if due && self.broken.is_none() && self.data_here(g) {
                    self.release(g, now);
                }
            }
        }
        self.count_held_joins(now);
        let window = self.opts.watch_window;
        self.standbys.retain(|_, t| now.saturating_sub(*t) < window);
        if self.writing.is_none() && self.next_write().is_some_and(|t| t <= now) {
            self.probed = false;
            self.writes += 1;
            self.writing = Some(self.version);
            self.last_write = Some(now);
            self.promised = self.interval();
            // The published generation's check-ins held so far may go once
            // this write is durable; from now on it is published in every
            // state until it is released or broken.
            if let Some(g) = self.published_generation() {
                let v = self.version;
                let open = self.open.get_mut(&g).expect("published is open");
                open.pinned = true;
                let tokens = std::mem::take(&mut open.tokens);
                self.awaiting.extend(tokens.into_iter().map(|t| (v, t)));
            }
            let state = Box::new(self.snapshot(now));
            self.transmits.push_back(Transmit::WriteState {
                version: self.version,
                state,
            });
        }
    }

    /// The next instant at which [`Self::handle_timeout`] must be called.
    pub fn poll_timeout(&self) -> Option<Duration> {
        [self.poll_decision_timeout(), self.next_write()]
            .into_iter()
            .flatten()
            .min()
    }

    /// The next instant at which something is to be decided (a deadline,
    /// a quorum's end, joins held back for the restart grace): the timers of
    /// [`Self::poll_timeout`] but heartbeats, which decide nothing.
    pub fn poll_decision_timeout(&self) -> Option<Duration> {
        if self.superseded.is_some() {
            return None;
        }
        let deadline = match (self.cfg.deadline, &self.broken) {
            (Some(d), None) => {
                let floor = self.deadline_floor(self.started.unwrap_or_default());
                let d = d + self.opts.deadline_slack;
                self.open.values().map(|o| (o.since + d).max(floor)).min()
            }
            _ => None,
        };
        let joins =
            (!self.joins.is_empty()).then(|| self.deadline_floor(self.started.unwrap_or_default()));
        [deadline, self.quorum_due(), joins]
            .into_iter()
            .flatten()
            .min()
    }

    /// The next thing the driver must do.
    pub fn poll_transmit(&mut self) -> Option<Transmit<T>> {
        self.transmits.pop_front()
    }

    /// The next thing that happened.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }
}

mod membership;
mod options;
mod outputs;
mod publish;
mod release;
mod rest;

pub use options::CoordinatorOptions;
pub use outputs::{Event, Transmit, WriteGuard};

#[cfg(test)]
mod tests;
