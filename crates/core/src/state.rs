//! The coordinator's published state.
//!
//! The coordinator publishes this document as a message on the barrier's
//! state queue (see [`crate::record`]) every heartbeat and after every
//! change that lets it delete messages. Several writes may be in the queue
//! at once; readers take the newest by [`PublishedState::order`]. It serves
//! three readers:
//!
//! * a restarted coordinator, which learns which generations were released
//!   and whether the barrier is broken;
//! * participants, which learn whether a coordinator is alive and, when they
//!   time out, which members had not arrived;
//! * `sqs-barrier status`.

use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use crate::members::MemberSet;
use crate::members::{member_set_b64, opt_member_set_b64};
use crate::roll::{Roll, RollState};
use crate::wire::BreakCause;

/// The most missing members a published broken state names; the count is
/// always exact.
pub const MAX_NAMED_MISSING: usize = 32;

/// The state of the lowest generation that is not yet released.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct OpenGeneration {
    /// The generation.
    #[serde(rename = "gen")]
    pub generation: u64,
    /// Who has arrived at it.
    #[serde(with = "member_set_b64")]
    pub arrived: MemberSet,
    /// When the coordinator saw its first check-in (ms since the epoch, by
    /// the writer's clock: for people; no decision reads it).
    pub since_ms: u64,
    /// How long the generation had been open when this was written (ms, by
    /// the writer's clock). A successor measures the deadline from it on its
    /// own clock, so hosts need not agree on the time. Absent in states of
    /// earlier versions, which then count from `since_ms`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub age_ms: Option<u64>,
    /// Of the arrived, those who brought data to gather. Their check-ins
    /// stay in the queue until the release (the data is there, not here),
    /// and a successor releases only once it holds the data of each.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "opt_member_set_b64"
    )]
    pub data: Option<MemberSet>,
    /// How long ago (ms, by the writer's clock) a quorum barrier's quorum
    /// was reached at this generation: a successor lets the rest of the
    /// grace run from it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quorum_age_ms: Option<u64>,
}

/// A broken barrier.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct BrokenState {
    /// The barrier is broken from this generation on.
    pub from_gen: u64,
    /// Why.
    pub cause: BreakCause,
    /// The members that had not arrived at `from_gen` (at most
    /// [`MAX_NAMED_MISSING`] of them are named).
    pub missing: Vec<String>,
    /// How many members had not arrived.
    pub missing_count: usize,
}

/// What the coordinator publishes.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PublishedState {
    /// Document version.
    pub v: u32,
    /// The id of the coordinator that wrote it.
    pub coordinator: String,
    /// The writer's term: one more than the term of the state it started
    /// from (0 in states of earlier versions). A coordinator that takes
    /// over therefore publishes states that order after every state of the
    /// one it took over from (see [`Self::order`]).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub term: u64,
    /// When it was written (ms since the epoch, by the writer's clock). For
    /// people: readers judge liveness by whether the pair (`coordinator`,
    /// `heartbeat_ms`) changes between their reads, on their own clock
    /// (see [`Liveness`]), never by comparing clocks of different hosts.
    pub heartbeat_ms: u64,
    /// The writer's write counter (1 for its first write): with
    /// `coordinator`, it tells one write from the next whatever the clocks
    /// do. 0 in states of earlier versions.
    #[serde(default)]
    pub seq: u64,
    /// The writer's promise: its next write comes within this many ms. A
    /// reader that sees no new write for [`Self::stale_after`] by its own
    /// clock may take the writer for gone.
    #[serde(default = "default_interval")]
    pub heartbeat_every_ms: u64,
    /// Set by a coordinator that stopped cleanly (SIGINT, SIGTERM): nobody
    /// coordinates until another one starts; a standby takes over at once.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub stopped: bool,
    /// Coordinators standing by to take over, as the writer last heard from
    /// them (their probes).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub standbys: Vec<String>,
    /// Every generation below this one has been released.
    pub released_below: u64,
    /// Generations at or above `released_below` that were released too
    /// (only when members work at different phases).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub released_above: Vec<u64>,
    /// The open generation whose arrivals are published: the lowest
    /// generation with check-ins that is not yet released, unless a higher
    /// one was published first and is still open. Its check-ins may have
    /// been deleted: this record is what a successor restores them from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub open: Option<OpenGeneration>,
    /// Set once the barrier is broken.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub broken: Option<BrokenState>,
    /// Messages moved to the dead-letter queue since the barrier was set up.
    #[serde(default)]
    pub rejected: u64,
    /// The roll, once the membership changed (joins, leaves, members
    /// dropped by a quorum release). States that carry one are version 2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roll: Option<RollState>,
}

fn default_interval() -> u64 {
    5_000
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// Where a write stands among all writes of a barrier's state: by term,
/// then by writer (two coordinators that started from the same state have
/// the same term; their ids tell them apart), then by the writer's counter.
/// Every reader that sees the same writes picks the same newest one.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Order {
    /// The writer's term.
    pub term: u64,
    /// The writer.
    pub coordinator: String,
    /// The writer's write counter.
    pub seq: u64,
}

/// One write of the published state, as readers tell writes apart: the
/// writer's id, its write counter and its clock at the write.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Beat {
    /// The writer.
    pub coordinator: String,
    /// Its write counter.
    pub seq: u64,
    /// Its clock at the write.
    pub heartbeat_ms: u64,
}

/// Whether the coordinators are alive, judged on the reader's own clock.
///
/// Feed it every published state read with [`Liveness::observe`]; it
/// remembers when the beat (see [`PublishedState::beat`]) last changed, by
/// the reader's clock. The writer's wall clock is never compared with the
/// reader's, so hosts whose clocks disagree by minutes judge alike.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Liveness {
    beat: Option<Beat>,
    newest: Option<Order>,
    since: Duration,
    promise: Option<Duration>,
    stopped: bool,
}

impl Liveness {
    /// Starts watching at `now`: until a state is read, "no state" counts
    /// from here.
    pub fn new(now: Duration) -> Self {
        Self {
            beat: None,
            newest: None,
            since: now,
            promise: None,
            stopped: false,
        }
    }

    /// Records a read at `now`; returns whether the beat changed (a new
    /// write since the previous read, or the first state seen).
    ///
    /// A read that found nothing, or a write that orders before one
    /// already seen (an older message still in the state queue), tells
    /// nothing new: it leaves everything as it was.
    pub fn observe(&mut self, state: Option<&PublishedState>, now: Duration) -> bool {
        let Some(state) = state else {
            // Nothing read: either nothing was ever published, or the
            // queue's messages were out of sight for a moment (a writer
            // replacing them). Neither is a new write.
            return false;
        };
        if self.is_older(state) {
            return false;
        }
        self.newest = Some(state.order());
        let state = Some(state);
        let beat = state.map(PublishedState::beat);
        self.promise = state.map(PublishedState::stale_after);
        self.stopped = state.is_some_and(|s| s.stopped);
        if beat == self.beat {
            return false;
        }
        // A first state counts from when it was read: its age by the
        // reader's clock is unknown.
        self.beat = beat;
        self.since = now;
        self.beat.is_some()
    }

    /// Whether `state` orders before a write already observed.
    pub fn is_older(&self, state: &PublishedState) -> bool {
        self.newest
            .as_ref()
            .is_some_and(|seen| state.order() < *seen)
    }

    /// How long, by the reader's clock, the beat has not changed (or no
    /// state has been seen).
    pub fn unchanged_for(&self, now: Duration) -> Duration {
        now.saturating_sub(self.since)
    }

    /// Whether a state has been seen at all.
    pub fn seen(&self) -> bool {
        self.beat.is_some()
    }

    /// Whether nothing new was published for `floor` and for the writer's
    /// own [`PublishedState::stale_after`], by the reader's clock (or no
    /// state was seen for `floor`). A coordinator that stopped cleanly counts
    /// like any other: a supervisor may start another.
    pub fn silent(&self, now: Duration, floor: Duration) -> bool {
        self.unchanged_for(now) >= self.promise.map_or(floor, |p| p.max(floor))
    }

    /// Whether the writer looks gone at `now`, for a coordinator deciding to
    /// take over: it stopped cleanly, or it is [`Self::silent`].
    pub fn gone(&self, now: Duration, floor: Duration) -> bool {
        (self.promise.is_some() && self.stopped) || self.silent(now, floor)
    }
}

/// The writer id of the state `setup` publishes before any coordinator ran.
pub const SETUP_WRITER: &str = "setup";

impl PublishedState {
    /// The state `setup` publishes on a new barrier's state queue, so that
    /// the configuration travels in a state record from the start: nothing
    /// released, no coordinator (marked stopped, so that the first
    /// coordinator takes over at once), ordered before every coordinator's
    /// write (term 0, counter 0). `now_ms` is for people only.
    pub fn initial(now_ms: u64) -> Self {
        Self {
            v: 1,
            coordinator: SETUP_WRITER.into(),
            term: 0,
            heartbeat_ms: now_ms,
            seq: 0,
            heartbeat_every_ms: 0,
            stopped: true,
            standbys: Vec::new(),
            released_below: 0,
            released_above: Vec::new(),
            open: None,
            broken: None,
            rejected: 0,
            roll: None,
        }
    }

    /// Stamps the writer's wall clock (`wall`: time since the Unix epoch)
    /// on the fields people read: `heartbeat_ms`, and the open generation's
    /// `since_ms` (taken back from its `age_ms`). A coordinator core run on
    /// a monotonic clock snapshots its state in that clock; its driver
    /// stamps the state before it writes it. No decision reads these
    /// fields (readers judge liveness by [`Self::beat`] changing, ages by
    /// `age_ms`), so a wall clock that steps changes nothing but them.
    pub fn stamp_wall(&mut self, wall: Duration) {
        let wall_ms = wall.as_millis() as u64;
        self.heartbeat_ms = wall_ms;
        if let Some(o) = &mut self.open
            && let Some(age) = o.age_ms
        {
            o.since_ms = wall_ms.saturating_sub(age);
        }
    }

    /// Whether this is the state `setup` published ([`Self::initial`]): no
    /// coordinator has run since.
    pub fn is_initial(&self) -> bool {
        self.coordinator == SETUP_WRITER && self.term == 0 && self.seq == 0
    }

    /// Where this write stands among all writes of the barrier's state.
    pub fn order(&self) -> Order {
        Order {
            term: self.term,
            coordinator: self.coordinator.clone(),
            seq: self.seq,
        }
    }

    /// What identifies one write: a reader that sees the same beat twice has
    /// seen no write in between.
    pub fn beat(&self) -> Beat {
        Beat {
            coordinator: self.coordinator.clone(),
            seq: self.seq,
            heartbeat_ms: self.heartbeat_ms,
        }
    }

    /// How long a reader may see no new write before it takes the writer
    /// for gone: two promised intervals plus two seconds for slow requests.
    pub fn stale_after(&self) -> Duration {
        Duration::from_millis(2 * self.heartbeat_every_ms + 2_000)
    }

    /// Whether the heartbeat looks recent by the reader's wall clock
    /// (`now_ms`): a hint for people only (`status` without a probe), since
    /// clocks of different hosts may disagree. Decisions use [`Liveness`].
    pub fn looks_recent(&self, now_ms: u64) -> bool {
        !self.stopped
            && now_ms.saturating_sub(self.heartbeat_ms) <= self.stale_after().as_millis() as u64
    }

    /// Whether this state (read later) still records everything `earlier`
    /// recorded: its releases, its break, and the arrivals of its open
    /// generation (unless that generation was released or broken since).
    /// Records only accumulate, so a state written on top of `earlier`
    /// includes it; one that does not was written by a writer that had not
    /// seen `earlier` (tags are last-writer-wins), and what `earlier`
    /// recorded must be recorded again.
    pub fn includes(&self, earlier: &PublishedState) -> bool {
        // Only the part of `earlier`'s frontier this state has not passed is
        // looked at one by one (it stops at the first gap).
        let released = (self.released_below..earlier.released_below)
            .chain(earlier.released_above.iter().copied())
            .all(|g| self.is_released(g));
        let broken = earlier.broken.as_ref().is_none_or(|b| {
            self.broken
                .as_ref()
                .is_some_and(|mine| mine.from_gen <= b.from_gen)
        });
        let arrivals = earlier.open.as_ref().is_none_or(|o| {
            let g = o.generation;
            self.is_released(g)
                || self.broken.as_ref().is_some_and(|b| b.from_gen <= g)
                || self.open.as_ref().is_some_and(|mine| {
                    mine.generation == g && o.arrived.is_subset_of(&mine.arrived)
                })
        });
        let roll =
            earlier.roll.as_ref().map_or(0, |r| r.v) <= self.roll.as_ref().map_or(0, |r| r.v);
        released && broken && arrivals && roll
    }

    /// Whether generation `g` was released.
    pub fn is_released(&self, g: u64) -> bool {
        g < self.released_below || self.released_above.contains(&g)
    }

    /// Serialises to JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("state serialises")
    }

    /// The document version a state needs: 2 if it records a roll or
    /// gathered data (which builds that read only version 1 must not
    /// mistake for a barrier whose membership never changed), else 1.
    pub fn needed_version(&self) -> u32 {
        let data = self
            .open
            .as_ref()
            .is_some_and(|o| o.data.is_some() || o.quorum_age_ms.is_some());
        if self.roll.is_some() || data { 2 } else { 1 }
    }

    /// Parses a published state; `None` if it is unreadable.
    pub fn from_json(s: &str) -> Option<Self> {
        serde_json::from_str::<Self>(s)
            .ok()
            .filter(|st| st.v == 1 || st.v == 2)
    }

    /// The roll this state records over the configured membership.
    pub fn roll(&self, base: &crate::config::Membership) -> Roll {
        Roll::from_state(base.clone(), self.roll.as_ref())
    }

    /// The members of `roll` missing from the open generation `g`, if the
    /// state knows it.
    pub fn missing_at(&self, g: u64, roll: &Roll) -> Option<Vec<String>> {
        let open = self.open.as_ref().filter(|o| o.generation == g)?;
        Some(roll.missing(g, &open.arrived))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn member_set() {
        let mut s = MemberSet::new(10);
        assert!(s.insert(3));
        assert!(!s.insert(3));
        assert!(!s.insert(10), "out of range is ignored");
        assert!(s.insert(9));
        assert_eq!(s.len(), 2);
        assert_eq!(s.missing(10).count(), 8);
        let back = MemberSet::from_base64(&s.to_base64()).unwrap();
        assert_eq!(back.len(), 2);
        assert!(back.contains(3) && back.contains(9) && !back.contains(4));
    }

    #[test]
    fn state_round_trip_and_missing() {
        let mut arrived = MemberSet::new(3);
        arrived.insert(1);
        let st = PublishedState {
            v: 1,
            coordinator: "c".into(),
            term: 0,
            heartbeat_ms: 5,
            seq: 3,
            heartbeat_every_ms: 1000,
            stopped: false,
            standbys: vec![],
            released_below: 4,
            released_above: vec![6],
            open: Some(OpenGeneration {
                generation: 4,
                arrived,
                since_ms: 1,
                age_ms: Some(7),
                data: None,
                quorum_age_ms: None,
            }),
            broken: None,
            rejected: 2,
            roll: None,
        };
        let back = PublishedState::from_json(&st.to_json()).unwrap();
        assert_eq!(back.to_json(), st.to_json());
        assert!(back.is_released(3) && back.is_released(6) && !back.is_released(4));
        let m = st.roll(&crate::config::Membership::new(3, None).unwrap());
        assert_eq!(st.missing_at(4, &m).unwrap(), vec!["0", "2"]);
        assert_eq!(st.missing_at(5, &m), None);
        assert_eq!(PublishedState::from_json("{}"), None);
    }

    #[test]
    fn stamp_wall_sets_only_the_fields_people_read() {
        let mut st = PublishedState::initial(0);
        st.open = Some(OpenGeneration {
            generation: 2,
            arrived: MemberSet::new(3),
            since_ms: 11,
            age_ms: Some(4_000),
            data: None,
            quorum_age_ms: Some(1_000),
        });
        let before = st.clone();
        st.stamp_wall(Duration::from_millis(1_700_000_000_000));
        assert_eq!(st.heartbeat_ms, 1_700_000_000_000);
        let o = st.open.as_ref().unwrap();
        assert_eq!(o.since_ms, 1_699_999_996_000);
        assert_eq!((o.age_ms, o.quorum_age_ms), (Some(4_000), Some(1_000)));
        assert_eq!(st.order(), before.order());
    }

    #[test]
    fn liveness_ignores_older_writes_and_empty_reads() {
        let sec = Duration::from_secs;
        let write = |coordinator: &str, term, seq| PublishedState {
            coordinator: coordinator.into(),
            term,
            seq,
            ..st(0, None)
        };
        let mut l = Liveness::new(sec(0));
        assert!(l.observe(Some(&write("a", 1, 5)), sec(1)));
        // An older message still in the queue, or nothing read (a writer
        // replacing the messages): no new write.
        assert!(l.is_older(&write("a", 1, 4)));
        assert!(!l.observe(Some(&write("a", 1, 4)), sec(2)));
        assert!(!l.observe(None, sec(3)));
        assert_eq!(l.unchanged_for(sec(3)), sec(2));
        // A newer write of the same writer, then a successor's.
        assert!(l.observe(Some(&write("a", 1, 6)), sec(4)));
        assert!(l.observe(Some(&write("0", 2, 1)), sec(5)));
        assert!(l.is_older(&write("z", 1, 99)));
    }

    fn st(released_below: u64, open: Option<(u64, &[usize])>) -> PublishedState {
        PublishedState {
            v: 1,
            coordinator: "c".into(),
            term: 0,
            heartbeat_ms: 0,
            seq: 1,
            heartbeat_every_ms: 1000,
            stopped: false,
            standbys: vec![],
            released_below,
            released_above: vec![],
            open: open.map(|(g, who)| {
                let mut arrived = MemberSet::new(4);
                for i in who {
                    arrived.insert(*i);
                }
                OpenGeneration {
                    generation: g,
                    arrived,
                    since_ms: 0,
                    age_ms: None,
                    data: None,
                    quorum_age_ms: None,
                }
            }),
            broken: None,
            rejected: 0,
            roll: None,
        }
    }

    #[test]
    fn a_later_state_includes_an_earlier_one_unless_it_overwrote_it() {
        let mine = st(3, Some((3, &[0, 2])));
        // Written on top: more arrivals, or the generation released.
        assert!(st(3, Some((3, &[0, 1, 2]))).includes(&mine));
        assert!(st(4, None).includes(&mine));
        assert!(st(5, Some((5, &[1]))).includes(&mine));
        // Written by somebody that had not seen it: an arrival is gone, or
        // a release.
        assert!(!st(3, Some((3, &[0]))).includes(&mine));
        assert!(!st(3, None).includes(&mine));
        assert!(!st(2, Some((2, &[0, 1, 2, 3]))).includes(&st(3, None)));
        // A break covers the open generation's arrivals.
        let mut broken = st(3, None);
        broken.broken = Some(BrokenState {
            from_gen: 3,
            cause: crate::wire::BreakCause::Deadline { after_ms: 1 },
            missing: vec![],
            missing_count: 0,
        });
        assert!(broken.includes(&mine));
        assert!(!st(4, None).includes(&broken), "the break is gone");
    }
}
