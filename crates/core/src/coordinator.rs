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

/// Tunables of the coordinator.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct CoordinatorOptions {
    /// How often the coordinator publishes its state when nothing changed
    /// while a generation is open: its heartbeat, read by participants,
    /// standbys and `status`. Twice as long when no generation is open.
    pub heartbeat: Duration,
    /// The heartbeat while a standby is watching (it probed within
    /// `watch_window`): short, so that the standby sees a death quickly.
    pub standby_heartbeat: Duration,
    /// How long a probe keeps the coordinator on `standby_heartbeat`.
    pub watch_window: Duration,
    /// The shortest interval between two state writes. Deletes of released
    /// check-ins wait for a write, so this bounds how long they stay.
    pub min_write_interval: Duration,
    /// How long a predecessor's held check-ins may stay hidden after it
    /// died: the check-in queue's visibility timeout. A coordinator breaks
    /// no generation by deadline before this long after its start, since
    /// until then it cannot know who arrived. (It cannot tell whether it has
    /// a predecessor: one may have died before it ever published a state.)
    pub restart_grace: Duration,
    /// Extra time after a generation's deadline before it breaks. 0 for a
    /// coordinator that runs on (its start is covered by `restart_grace`).
    /// A coordinator rebuilt for every batch (the Lambda handler) cannot
    /// see the check-ins another invocation holds, or those it handed
    /// back, until the queue's visibility timeout returns them: with this
    /// set to that timeout, a deadline never names a member whose check-in
    /// was on its way.
    pub deadline_slack: Duration,
    /// Whether `now` is wall-clock time on the scale of the published
    /// state's `heartbeat_ms` (ms since the Unix epoch), so that a restored
    /// open generation's age also counts the time since that state was
    /// written. A coordinator rebuilt for every batch (the Lambda handler)
    /// needs it: without it each invocation would count the generation's
    /// age from the last write, and a deadline would advance only by the
    /// invocations' own time. It compares the writer's clock with this
    /// one's: a skew of S moves a deadline by S. Off by default (a process
    /// that takes over counts from its own start, which only delays a
    /// deadline).
    pub age_since_write: bool,
    /// Whether this coordinator can keep the check-ins that carry data in
    /// the queue until their generation's release. A coordinator rebuilt
    /// for every batch (the Lambda handler) cannot: no invocation sees the
    /// check-ins the others hold, so none could hand out everyone's data.
    /// Without it, a check-in with data breaks the barrier with a cause
    /// that says so, rather than leave everyone waiting.
    pub holds_data: bool,
}

impl Default for CoordinatorOptions {
    fn default() -> Self {
        Self {
            heartbeat: Duration::from_secs(60),
            standby_heartbeat: Duration::from_secs(2),
            watch_window: Duration::from_secs(60),
            min_write_interval: Duration::from_millis(500),
            restart_grace: Duration::from_secs(5),
            deadline_slack: Duration::ZERO,
            age_since_write: false,
            holds_data: true,
        }
    }
}

/// Whether a coordinator may write over the published state it just read
/// (see [`Coordinator::write_guard`]): only over its own last write, or,
/// before its first write, over the state it started from. Anything else
/// was written by another coordinator, whose records it would overwrite.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WriteGuard {
    id: String,
    start: Option<Beat>,
}

impl WriteGuard {
    /// Whether a write may go over `current` (`None`: nothing published, or
    /// nothing readable).
    pub fn allows(&self, current: Option<&PublishedState>) -> bool {
        current.is_none_or(|s| s.coordinator == self.id || self.start.as_ref() == Some(&s.beat()))
    }
}

/// Something the driver must do.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Transmit<T> {
    /// Send one message with `body` to the release queue of `generation`
    /// (see [`crate::names::QueueNames::release_for`]). Participants read it
    /// without hiding it (visibility timeout 0): one notice reaches all.
    Notify {
        /// The generation the notice is for.
        generation: u64,
        /// The message body.
        body: String,
    },
    /// Remove the notices nobody needs any more from the release queue of
    /// `generation`: receive what it holds with a visibility timeout (so
    /// that the receipt handle is the latest one, which a delete needs),
    /// delete every message [`sweepable`] says may go, and make the others
    /// visible again. Best effort: a notice missed here expires with the
    /// queue's retention, and a participant that meets one deletes it.
    Sweep {
        /// Selects the queue (by parity).
        generation: u64,
        /// Notices of generations below this one may go.
        below: u64,
    },
    /// Delete these messages from the check-in queue.
    Delete(Vec<T>),
    /// Move a message aside: send `body` to the dead-letter queue (with
    /// `reason` as an attribute), then delete `token` from the check-in queue.
    DeadLetter {
        /// The message to delete once it is safely in the dead-letter queue.
        token: T,
        /// Its body, as received.
        body: String,
        /// Why it was rejected.
        reason: String,
    },
    /// Publish `state` (the check-in queue's tags), then report
    /// [`Coordinator::handle_state_written`] with `version`.
    WriteState {
        /// Identifies this write in the report.
        version: u64,
        /// The document to publish.
        state: Box<PublishedState>,
    },
}

/// Something that happened, for logs, metrics and the demo's timeline.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Event {
    /// A member arrived at a generation (first check-in of that member there).
    Arrived {
        /// The generation.
        generation: u64,
        /// The member.
        member: String,
        /// Distinct members arrived so far.
        count: usize,
        /// Members in all.
        of: usize,
    },
    /// A generation was released.
    Released {
        /// The generation.
        generation: u64,
    },
    /// The barrier broke.
    Broken {
        /// It is broken from this generation on.
        from_gen: u64,
        /// Why.
        cause: BreakCause,
        /// Who had not arrived at `from_gen`.
        missing: Vec<String>,
    },
    /// A message was rejected and moved to the dead-letter queue.
    Rejected {
        /// Why.
        reason: String,
    },
    /// A coordinator started standing by (its first probe): this one now
    /// beats every [`CoordinatorOptions::standby_heartbeat`].
    Watched {
        /// The standby's id.
        by: String,
    },
    /// Another coordinator wrote the published state after this one's last
    /// write: two were active, and this one stands down. The driver hands
    /// every message it holds back to the queue and stops feeding it.
    Superseded {
        /// The other coordinator's id.
        by: String,
    },
    /// A member joined: it is expected from generation `from` on.
    Joined {
        /// The member.
        member: String,
        /// The first generation that expects it.
        from: u64,
    },
    /// A join was refused.
    JoinRefused {
        /// The name asked for, if any.
        member: Option<String>,
        /// Why.
        reason: String,
    },
    /// A member left: `generation` is the last one that expects it.
    Left {
        /// The member.
        member: String,
        /// Its last generation.
        generation: u64,
    },
    /// A quorum release went on without these members, who are members
    /// from `generation` on no more.
    Dropped {
        /// The generation released without them.
        generation: u64,
        /// Who.
        members: Vec<String>,
    },
}

/// What a check-in brings besides the arrival.
struct Arrival {
    leave: bool,
    data: Option<String>,
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
            notice_sent: [None, None],
            restored_age: None,
            restored_quorum_age: None,
            written: false,
            writes: 0,
            expected: restored.map(PublishedState::beat),
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

    /// Recounts how many of `g`'s arrived the roll expects (after the roll
    /// changed).
    fn recount(&mut self, g: u64) {
        let min = self.cfg.quorum.map(|q| q.min);
        let Some(o) = self.open.get_mut(&g) else {
            return;
        };
        o.have = self
            .roll
            .expected(g)
            .filter(|i| o.arrived.contains(*i))
            .count();
        // Arrivals of members no longer expected (they left, or a quorum
        // release dropped them) count for no quorum: a grace under way
        // stops until enough have arrived again.
        if min.is_some_and(|min| o.have < min) {
            o.quorum_at = None;
        }
    }

    /// Releases `g` if every member it expects has arrived and the data of
    /// each that brought some is here; on a quorum barrier, starts the
    /// grace once enough have.
    fn check_complete(&mut self, g: u64, now: Duration) {
        let need = self.roll.expected_count(g);
        let Some(o) = self.open.get_mut(&g) else {
            return;
        };
        if let Some(q) = self.cfg.quorum
            && o.quorum_at.is_none()
            && o.have >= q.min
            && self.started.is_some()
        {
            o.quorum_at = Some(now);
        }
        if o.have >= need && self.data_here(g) {
            self.release(g, now);
        }
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
                self.checkin(token, body, m, seen, Arrival { leave, data }, now);
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

    /// Counts a join: the member is expected from the first generation
    /// that has no check-in counted yet. The join goes once a state that
    /// records it is durable: the joining process learns its first
    /// generation (and its number) from there.
    ///
    /// Not before `restart_grace` has passed since this coordinator's
    /// start: a dead predecessor may have released generations it never
    /// published (a notice goes before the write that records it), on
    /// check-ins it held, hidden until then. Counted earlier, the join
    /// could be placed at such a generation: the joining member would
    /// pass it by the predecessor's notice, which went without it, and
    /// the generation would be released twice, with different data.
    fn join(&mut self, token: T, member: Option<String>, session: String, now: Duration) {
        let start = self.started.unwrap_or(now);
        if now < self.deadline_floor(start) {
            self.joins.push((token, member, session));
            return;
        }
        self.count_held_joins(now);
        self.count_join(token, member, session);
    }

    /// Counts the joins held back while `restart_grace` ran, once it has.
    fn count_held_joins(&mut self, now: Duration) {
        let start = self.started.unwrap_or(now);
        if self.joins.is_empty() || now < self.deadline_floor(start) {
            return;
        }
        for (token, member, session) in std::mem::take(&mut self.joins) {
            self.count_join(token, member, session);
        }
    }

    fn count_join(&mut self, token: T, member: Option<String>, session: String) {
        let from = self
            .open
            .keys()
            .next_back()
            .map_or(0, |g| g + 1)
            .max(self.frontier());
        let before = self.roll.version();
        let settled = self.released_below;
        match self.roll.join(member.as_deref(), &session, from, settled) {
            Ok(j) if j.new => {
                self.last_seen.resize(self.roll.len(), None);
                self.events.push_back(Event::Joined {
                    member: self.roll.name(j.position),
                    from,
                });
            }
            Ok(_) => {}
            Err(e) => self.events.push_back(Event::JoinRefused {
                member,
                reason: e.to_string(),
            }),
        }
        if self.roll.version() != before {
            self.version += 1;
        }
        self.await_write(token);
    }

    fn checkin(
        &mut self,
        token: T,
        body: &str,
        m: usize,
        seen: Seen,
        arrival: Arrival,
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
        start + self.opts.restart_grace
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

    fn release(&mut self, g: u64, now: Duration) {
        let Some(open) = self.open.get(&g) else {
            return;
        };
        // Those g expects that have not arrived: none, unless a quorum
        // release goes on without them.
        let without: Vec<usize> = self
            .roll
            .expected(g)
            .filter(|i| !open.arrived.contains(*i))
            .collect();
        let data = (!open.data.is_empty()).then(|| {
            open.data
                .iter()
                .filter(|(i, _)| self.roll.expects(**i, g))
                .map(|(i, d)| (self.roll.name(*i), d.clone()))
                .collect()
        });
        let body = Message::Release {
            barrier: self.cfg.name.clone(),
            instance: self.cfg.instance.clone(),
            generation: g,
            without: without.iter().map(|&i| self.roll.name(i)).collect(),
            data,
        }
        .encode();
        if body.len() > MAX_BODY {
            // Members joined after the data's size was checked against the
            // membership: no message can carry it.
            let cause = BreakCause::TooMuchData {
                bytes: body.len() as u64,
                max: MAX_BODY as u64,
            };
            return self.break_from(g, cause, now);
        }
        let open = self.open.remove(&g).expect("looked up above");
        let mut recheck = Vec::new();
        if !without.is_empty() {
            for &i in &without {
                self.roll.end(i, g);
            }
            self.events.push_back(Event::Dropped {
                generation: g,
                members: without.iter().map(|&i| self.roll.name(i)).collect(),
            });
            // Generations open above g (phase numbers with gaps) wait for
            // the dropped no more: one may be complete now.
            let later: Vec<u64> = self.open.range(g + 1..).map(|(g, _)| *g).collect();
            for h in &later {
                self.recount(*h);
            }
            recheck = later;
        }
        if g == self.released_below {
            self.released_below += 1;
            while self.released_above.remove(&self.released_below) {
                self.released_below += 1;
            }
        } else {
            self.released_above.insert(g);
        }
        self.version += 1;
        let v = self.version;
        self.awaiting
            .extend(open.tokens.into_iter().chain(open.kept).map(|t| (v, t)));
        // Every member checked in at g, so every member has passed g - 1
        // (and anything before it): the notices on the other queue are
        // needed by nobody, and the participants about to wait at g + 1
        // poll that queue. Sweep it, unless nothing sent there can still
        // be alive.
        let other = g + 1;
        let parity = (other % 2) as usize;
        let fresh = self.notice_sent[parity].is_some_and(|t| now < t + NOTICE_LIFE)
            || self.started.is_none_or(|s| now < s + NOTICE_LIFE);
        // A member that left at g - 1 (or that this release went on
        // without: it may still wait at g - 1) checked in at g - 1 but not
        // at g, so nothing says it has read g - 1's notice: that one stays
        // (it brings the gathered data), and only older ones go.
        let lingering = g > 0
            && (0..self.roll.len()).any(|i| {
                let span = self.roll.span(i);
                span.end == Some(g) && span.from < g
            });
        let below = if lingering { g - 1 } else { other };
        if without.is_empty() {
            self.notify(g, body, now);
        } else {
            self.deferred.push((v, g, body));
        }
        if fresh {
            self.transmits.push_back(Transmit::Sweep {
                generation: other,
                below,
            });
        }
        self.events.push_back(Event::Released { generation: g });
        for h in recheck {
            self.check_complete(h, now);
        }
    }

    fn abort(
        &mut self,
        token: T,
        body: &str,
        generation: Option<u64>,
        by: String,
        reason: String,
        now: Duration,
    ) {
        if let Some(g) = generation.filter(|g| *g > self.frontier() + MAX_AHEAD) {
            let reason = format!(
                "abort for generation {g}, more than {MAX_AHEAD} ahead of the barrier (at {})",
                self.frontier()
            );
            return self.reject(token, body, reason);
        }
        // The published state must stay small enough for the queue's tags.
        let by = truncate(by, MAX_BY);
        let reason = truncate(reason, MAX_REASON);
        if self.broken.is_none() {
            // A participant that aborts right after its generation was
            // released breaks the next one: that is where the others will wait.
            let mut from = generation.unwrap_or(self.released_below);
            while self.is_released(from) {
                from += 1;
            }
            self.break_from(from, BreakCause::Aborted { by, reason }, now);
        }
        let v = self.version;
        self.awaiting.push((v, token));
    }

    fn break_from(&mut self, from: u64, cause: BreakCause, now: Duration) {
        let missing_idx: Vec<usize> = match self.open.get(&from) {
            Some(o) => self
                .roll
                .expected(from)
                .filter(|i| !o.arrived.contains(*i))
                .collect(),
            None => self.roll.expected(from).collect(),
        };
        let broken = BrokenState {
            from_gen: from,
            cause: cause.clone(),
            missing: missing_idx
                .iter()
                .take(MAX_NAMED_MISSING)
                .map(|&i| self.roll.name(i))
                .collect(),
            missing_count: missing_idx.len(),
        };
        self.version += 1;
        let v = self.version;
        let doomed: Vec<u64> = self.open.range(from..).map(|(g, _)| *g).collect();
        for g in doomed {
            let open = self.open.remove(&g).expect("listed above");
            let body = self.broken_notice(g, &broken);
            self.notify(g, body, now);
            self.awaiting
                .extend(open.tokens.into_iter().chain(open.kept).map(|t| (v, t)));
        }
        self.events.push_back(Event::Broken {
            from_gen: from,
            cause,
            missing: missing_idx.iter().map(|&i| self.roll.name(i)).collect(),
        });
        self.broken = Some(broken);
    }

    fn reject(&mut self, token: T, body: &str, reason: String) {
        self.rejected += 1;
        self.version += 1;
        self.events.push_back(Event::Rejected {
            reason: reason.clone(),
        });
        self.transmits.push_back(Transmit::DeadLetter {
            token,
            body: body.to_owned(),
            reason,
        });
    }

    fn notify(&mut self, generation: u64, body: String, now: Duration) {
        self.notice_sent[(generation % 2) as usize] = Some(now);
        self.transmits
            .push_back(Transmit::Notify { generation, body });
    }

    fn broken_notice(&self, generation: u64, b: &BrokenState) -> String {
        Message::Broken {
            barrier: self.cfg.name.clone(),
            instance: self.cfg.instance.clone(),
            generation,
            from_gen: b.from_gen,
            cause: b.cause.clone(),
            missing: b.missing.clone(),
        }
        .encode()
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

    /// When a quorum reached at `t` releases its generation: after the
    /// grace, and never before a predecessor's held check-ins are back
    /// (as a deadline: `restart_grace` after this coordinator's start, and
    /// `deadline_slack` more for a coordinator rebuilt for every batch).
    fn quorum_end(&self, t: Duration) -> Duration {
        let grace = self.cfg.quorum.map_or(Duration::ZERO, |q| q.grace);
        let floor = self.deadline_floor(self.started.unwrap_or_default());
        (t + grace + self.opts.deadline_slack).max(floor)
    }

    /// The next quorum release due, if any.
    fn quorum_due(&self) -> Option<Duration> {
        if self.broken.is_some() {
            return None;
        }
        self.open
            .values()
            .filter_map(|o| o.quorum_at)
            .map(|t| self.quorum_end(t))
            .min()
    }

    /// Whether the data of every member of `g` known to have brought some
    /// is here.
    fn data_here(&self, g: u64) -> bool {
        self.open.get(&g).is_some_and(|o| {
            (0..self.roll.len())
                .filter(|i| o.data_expected.contains(*i))
                .all(|i| o.data.contains_key(&i))
        })
    }

    /// The open generation whose arrivals the state publishes: the pinned
    /// one if any, else the lowest.
    fn published_generation(&self) -> Option<u64> {
        self.open
            .iter()
            .find(|(_, o)| o.pinned)
            .or_else(|| self.open.iter().next())
            .map(|(g, _)| *g)
    }

    /// The heartbeat interval that fits what is going on: short while a
    /// standby watches, normal while a generation is open, twice as long
    /// while the barrier is idle.
    fn interval(&self) -> Duration {
        if !self.standbys.is_empty() {
            self.opts.standby_heartbeat.min(self.opts.heartbeat)
        } else if self.open.is_empty() {
            2 * self.opts.heartbeat
        } else {
            self.opts.heartbeat
        }
    }

    fn next_write(&self) -> Option<Duration> {
        if self.writing.is_some() || self.superseded.is_some() {
            return None;
        }
        let Some(last) = self.last_write else {
            return Some(Duration::ZERO);
        };
        if self.probed {
            Some(last)
        } else if self.version > self.durable && self.awaiting.len() >= 2 * self.roll.len() {
            // Episodes faster than the write interval: the check-ins that
            // wait for a write (in flight until it lands) would pile up with
            // the episode rate. Writing now keeps them within 2 N.
            Some(last)
        } else if self.version > self.durable {
            Some(last + self.opts.min_write_interval)
        } else {
            // Never later than the last write promised.
            Some(last + self.interval().min(self.promised))
        }
    }

    /// The state this coordinator would publish now.
    pub fn snapshot(&self, now: Duration) -> PublishedState {
        let mut st = PublishedState {
            v: 1,
            coordinator: self.id.clone(),
            heartbeat_ms: now.as_millis() as u64,
            seq: self.writes,
            heartbeat_every_ms: if self.promised.is_zero() {
                self.interval()
            } else {
                self.promised
            }
            .as_millis() as u64,
            stopped: false,
            standbys: self.standbys.keys().cloned().collect(),
            released_below: self.released_below,
            released_above: self.released_above.iter().copied().collect(),
            open: self.published_generation().map(|g| {
                let o = &self.open[&g];
                let mut data = o.data_expected.within(self.roll.len());
                for i in o.data.keys() {
                    data.insert(*i);
                }
                OpenGeneration {
                    generation: g,
                    arrived: o.arrived.clone(),
                    since_ms: o.since.as_millis() as u64,
                    age_ms: Some(now.saturating_sub(o.since).as_millis() as u64),
                    data: (!data.is_empty()).then_some(data),
                    quorum_age_ms: o
                        .quorum_at
                        .map(|t| now.saturating_sub(t).as_millis() as u64),
                }
            }),
            broken: self.broken.clone(),
            rejected: self.rejected,
            roll: self.roll.to_state(self.released_below),
        };
        st.v = st.needed_version();
        st
    }

    /// The state to publish when this coordinator stops cleanly: its last
    /// word, marked `stopped`, so that a standby takes over at once.
    pub fn final_snapshot(&self, now: Duration) -> PublishedState {
        PublishedState {
            stopped: true,
            ..self.snapshot(now)
        }
    }

    /// Reports that the state of `version` was published. Messages whose
    /// effect it records become deletable.
    pub fn handle_state_written(&mut self, version: u64) {
        self.writing = None;
        self.written = true;
        self.durable = self.durable.max(version);
        let durable = self.durable;
        let (done, keep): (Vec<_>, Vec<_>) =
            self.awaiting.drain(..).partition(|(v, _)| *v <= durable);
        self.awaiting = keep;
        let (ready, later): (Vec<_>, Vec<_>) = std::mem::take(&mut self.deferred)
            .into_iter()
            .partition(|(v, _, _)| *v <= durable);
        self.deferred = later;
        let sent = self.last_write.unwrap_or_default();
        for (_, g, body) in ready {
            self.notify(g, body, sent);
        }
        if !done.is_empty() {
            self.transmits
                .push_back(Transmit::Delete(done.into_iter().map(|(_, t)| t).collect()));
        }
    }

    /// Feeds a state published by the barrier's coordinators, as read back
    /// from the queue's tags: the driver reads it before each write.
    ///
    /// A coordinator writes only over a state it knows completely: its own
    /// last write, or, before its first write, the state it started from.
    /// Anything else was written by another coordinator that is (or was
    /// just now) active, whose records this one has not seen and would
    /// overwrite (tags are last-writer-wins). So it stands down
    /// ([`Event::Superseded`]; then it does nothing more): the driver hands
    /// its held check-ins back, and the other carries on with everything it
    /// published. Of two active coordinators the one that reads the other's
    /// write first stands down, so one stands back within a heartbeat.
    pub fn handle_state_observed(&mut self, state: &PublishedState, now: Duration) {
        self.begin(now);
        if self.superseded.is_some() || self.write_guard().allows(Some(state)) {
            return;
        }
        self.superseded = Some(state.coordinator.clone());
        self.events.push_back(Event::Superseded {
            by: state.coordinator.clone(),
        });
        // Its deletes and writes would undo the other's work; notices of
        // generations it counted complete are still true.
        self.transmits
            .retain(|t| matches!(t, Transmit::Notify { .. } | Transmit::DeadLetter { .. }));
    }

    /// What a driver that reads the published state and writes over it
    /// away from this machine (on another task, while it goes on counting)
    /// needs to know of it: whether the state it read lets the write go
    /// ahead. It stays true while the write is under way, since only the
    /// write's own outcome changes it ([`Self::handle_state_written`]).
    /// A state it does not allow goes to [`Self::handle_state_observed`],
    /// which stands this coordinator down.
    pub fn write_guard(&self) -> WriteGuard {
        WriteGuard {
            id: self.id.clone(),
            start: if self.written {
                None
            } else {
                self.expected.clone()
            },
        }
    }

    /// Reports that a state write failed. It is retried after
    /// [`CoordinatorOptions::min_write_interval`] if it had changes to
    /// publish, else at the next heartbeat.
    pub fn handle_state_write_failed(&mut self) {
        self.writing = None;
    }

    /// The next instant at which [`Self::handle_timeout`] must be called.
    pub fn poll_timeout(&self) -> Option<Duration> {
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
        [deadline, self.quorum_due(), joins, self.next_write()]
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

#[cfg(test)]
mod tests;
