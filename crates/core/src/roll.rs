//! Who is expected at which generation: the roll.
//!
//! A barrier starts with the membership its configuration names. Members
//! may then leave (a check-in with `leave`: they arrive at that generation
//! and are expected at no later one), join (expected from the first
//! generation that had no check-in counted when the join was counted), or
//! be dropped (a quorum release went on without them: they are expected
//! from that generation on no more).
//!
//! Every member has a *position*: the configured members keep theirs
//! (`0..N`), joined members get the next ones, in the order their joins
//! were counted, and a position is never reused. Each position has a
//! *span* of generations `from..end` at which it is expected. Arrival
//! bitmaps are indexed by position, so they mean the same thing whatever
//! the roll does later.
//!
//! The coordinator publishes the roll in its state ([`RollState`]), in a
//! form that forgets what no longer matters: a span that ended before the
//! release frontier is a bit in `gone`, one that began before it is the
//! default, and only the changes that touch generations not yet released
//! are spelled out.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use crate::config::{Membership, validate_member_name};
use crate::members::MemberSet;

pub use crate::config::MAX_ELASTIC;

/// The most bytes of joined members' names a barrier keeps (a roster
/// barrier's joins: the published state must fit in the queue's tags).
pub const MAX_JOINED_NAMES: usize = 1024;

/// How many generations below the release frontier a member's span that
/// ended there stays spelled out in the published roll (see
/// [`Roll::to_state`]), for at most [`RECENT_END_GROUPS`] distinct ends.
pub const RECENT_ENDS: u64 = 16;

/// How many distinct recent ends the published roll spells out.
pub const RECENT_END_GROUPS: usize = 4;

/// How many recent joins the roll remembers by session: a duplicate of a
/// join message (SQS delivers at least once) finds its join, rather than
/// adding a member twice.
pub const JOINS_KEPT: usize = 16;

/// The generations at which one position is expected: `from..end`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Span {
    /// The first generation expected.
    pub from: u64,
    /// The first generation no longer expected; `None`: expected for ever.
    pub end: Option<u64>,
}

impl Span {
    const ALWAYS: Span = Span { from: 0, end: None };
    const NEVER: Span = Span {
        from: 0,
        end: Some(0),
    };

    /// Whether generation `g` expects this member.
    pub fn expects(&self, g: u64) -> bool {
        self.from <= g && self.end.is_none_or(|e| g < e)
    }
}

/// Why a join was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JoinError {
    /// The member is already expected.
    #[error("{0:?} is already a member")]
    AlreadyMember(String),
    /// The name is not usable.
    #[error(
        "invalid member name {0:?}: names are 1 to 64 characters without ',' or control characters"
    )]
    InvalidName(String),
    /// A numbered barrier takes the next number, or a number that was a
    /// member before; a roster barrier needs a name.
    #[error("{0}")]
    BadNumber(String),
    /// No room left in the published state.
    #[error(
        "the barrier has no room for more members: at most {MAX_ELASTIC} in all, and {MAX_JOINED_NAMES} bytes of joined names"
    )]
    Full,
}

/// How a join was counted.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Joined {
    /// The member's position.
    pub position: usize,
    /// Whether the roll changed (false for a duplicate of a counted join).
    pub new: bool,
}

/// Who is expected at which generation.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Roll {
    base: Membership,
    /// Names of the positions after the configured ones.
    added: Vec<String>,
    /// Positions whose span is not [`Span::ALWAYS`].
    spans: std::collections::BTreeMap<usize, Span>,
    /// Bumped on every change.
    version: u64,
    /// Recent joins: the joining session and the position it got (`None`:
    /// refused).
    joins: VecDeque<(String, Option<usize>)>,
}

impl Roll {
    /// The roll of a barrier whose membership never changed.
    pub fn new(base: Membership) -> Self {
        Self {
            base,
            added: Vec::new(),
            spans: Default::default(),
            version: 0,
            joins: VecDeque::new(),
        }
    }

    /// The roll a published state records (`None`: the configured one).
    /// Parts that do not fit the configuration (a position beyond the
    /// bitmaps, a name that is not valid) are ignored.
    pub fn from_state(base: Membership, st: Option<&RollState>) -> Self {
        let mut r = Self::new(base);
        let Some(st) = st else {
            return r;
        };
        r.version = st.v;
        match &st.added {
            Added::Names(names) if matches!(r.base, Membership::Roster(_)) => {
                r.added = names.clone();
            }
            Added::Count(n) if matches!(r.base, Membership::Count(_)) => {
                let b = r.base.len();
                r.added = (b..b + n.min(&MAX_ELASTIC))
                    .map(|i| i.to_string())
                    .collect();
            }
            _ => {}
        }
        let len = r.len();
        if let Some(gone) = &st.gone {
            for i in (0..len).filter(|i| gone.contains(*i)) {
                r.spans.insert(i, Span::NEVER);
            }
        }
        for c in &st.changes {
            let span = Span {
                from: c.from,
                end: c.end,
            };
            for i in (0..len).filter(|i| c.members.contains(*i)) {
                r.spans.insert(i, span);
            }
        }
        // A join's position must be one of the roll's: a joining process
        // takes its name from it.
        r.joins = st
            .joins
            .iter()
            .filter(|(_, p)| p.is_none_or(|p| p < len))
            .cloned()
            .collect();
        r
    }

    /// The published form, forgetting what generations below
    /// `released_below` alone needed; `None` if the roll never changed.
    pub fn to_state(&self, released_below: u64) -> Option<RollState> {
        if self.version == 0 {
            return None;
        }
        let len = self.len();
        let mut gone = MemberSet::new(len);
        let mut groups: Vec<(Span, MemberSet)> = Vec::new();
        // Spans that ended shortly below the frontier stay spelled out (the
        // most recent ends first, a few of them): a participant that missed
        // its notice of a generation the member was released at, and reads
        // the state after a later generation dropped it, can then tell the
        // two apart. Older ones are bits in `gone`.
        let mut ends: Vec<u64> = self
            .spans
            .values()
            .filter_map(|s| s.end)
            .filter(|e| *e < released_below && released_below - e <= RECENT_ENDS)
            .collect();
        ends.sort_unstable_by(|a, b| b.cmp(a));
        ends.dedup();
        ends.truncate(RECENT_END_GROUPS);
        for (&i, span) in &self.spans {
            // A span that ends at the frontier is kept: the release of
            // its end (the frontier) keeps the notice its member may still
            // wait for, and a successor that releases it again must know.
            let recent = span.end.is_some_and(|e| ends.contains(&e));
            if span.end.is_some_and(|e| e < released_below) && !recent {
                gone.insert(i);
            } else if (span.from > 0 && span.from >= released_below) || span.end.is_some() {
                match groups.iter_mut().find(|(s, _)| s == span) {
                    Some((_, set)) => {
                        set.insert(i);
                    }
                    None => {
                        let mut set = MemberSet::new(len);
                        set.insert(i);
                        groups.push((*span, set));
                    }
                }
            }
        }
        Some(RollState {
            v: self.version,
            added: match self.base {
                Membership::Count(_) => Added::Count(self.added.len()),
                Membership::Roster(_) => Added::Names(self.added.clone()),
            },
            gone: (!gone.is_empty()).then_some(gone),
            changes: groups
                .into_iter()
                .map(|(s, members)| SpanChange {
                    from: s.from,
                    end: s.end,
                    members,
                })
                .collect(),
            joins: self.joins.iter().cloned().collect(),
        })
    }

    /// The configured membership.
    pub fn base(&self) -> &Membership {
        &self.base
    }

    /// The number of positions: configured and joined members.
    pub fn len(&self) -> usize {
        self.base.len() + self.added.len()
    }

    /// Always false: the configured membership has at least one member.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The number of changes counted since setup (0: none).
    pub fn version(&self) -> u64 {
        self.version
    }

    /// The position of the member called `name`, if it ever was one.
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.base.index_of(name).or_else(|| {
            self.added
                .iter()
                .position(|a| a == name)
                .map(|i| self.base.len() + i)
        })
    }

    /// The name of position `i`.
    ///
    /// # Panics
    /// If `i` is out of range.
    pub fn name(&self, i: usize) -> String {
        if i < self.base.len() {
            self.base.name(i)
        } else {
            self.added[i - self.base.len()].clone()
        }
    }

    /// The span of position `i`.
    pub fn span(&self, i: usize) -> Span {
        self.spans.get(&i).copied().unwrap_or(Span::ALWAYS)
    }

    /// Whether generation `g` expects position `i`.
    pub fn expects(&self, i: usize, g: u64) -> bool {
        i < self.len() && self.span(i).expects(g)
    }

    /// The positions generation `g` expects.
    pub fn expected(&self, g: u64) -> impl Iterator<Item = usize> + '_ {
        (0..self.len()).filter(move |&i| self.expects(i, g))
    }

    /// How many members generation `g` expects.
    pub fn expected_count(&self, g: u64) -> usize {
        let changed = self
            .spans
            .iter()
            .filter(|(i, s)| **i < self.len() && !s.expects(g))
            .count();
        self.len() - changed
    }

    /// The names of the members of `g` that are not in `arrived`.
    pub fn missing(&self, g: u64, arrived: &MemberSet) -> Vec<String> {
        self.expected(g)
            .filter(|i| !arrived.contains(*i))
            .map(|i| self.name(i))
            .collect()
    }

    /// The join counted for `session`, if the roll remembers it: the
    /// position, or `None` if it was refused.
    pub fn join_of(&self, session: &str) -> Option<Option<usize>> {
        self.joins
            .iter()
            .find(|(s, _)| s == session)
            .map(|(_, p)| *p)
    }

    /// Counts a join of `name` (a new number if `None`, on a numbered
    /// barrier) by `session`, expected from generation `from`; every
    /// generation below `released_below` has been released.
    pub fn join(
        &mut self,
        name: Option<&str>,
        session: &str,
        from: u64,
        released_below: u64,
    ) -> Result<Joined, JoinError> {
        if let Some(p) = self.join_of(session) {
            return match p {
                Some(position) => Ok(Joined {
                    position,
                    new: false,
                }),
                None => Err(JoinError::Full),
            };
        }
        let result = self.place(name, from, released_below);
        self.version += 1;
        self.joins
            .push_back((session.to_owned(), result.as_ref().ok().copied()));
        if self.joins.len() > JOINS_KEPT {
            self.joins.pop_front();
        }
        let position = result?;
        self.spans.insert(position, Span { from, end: None });
        if self.spans.get(&position) == Some(&Span::ALWAYS) {
            self.spans.remove(&position);
        }
        Ok(Joined {
            position,
            new: true,
        })
    }

    /// Where a join goes, or why it cannot.
    fn place(
        &mut self,
        name: Option<&str>,
        from: u64,
        released_below: u64,
    ) -> Result<usize, JoinError> {
        let existing = match (&self.base, name) {
            (Membership::Roster(_), None) => {
                return Err(JoinError::BadNumber(
                    "this barrier's members have names: join with one".into(),
                ));
            }
            (Membership::Roster(_), Some(n)) => {
                validate_member_name(n).map_err(|_| JoinError::InvalidName(n.to_owned()))?;
                self.index_of(n)
            }
            (Membership::Count(_), None) => None,
            (Membership::Count(_), Some(n)) => match self.index_of(n) {
                Some(i) => Some(i),
                None => {
                    return Err(JoinError::BadNumber(format!(
                        "{n:?} was never a member: this barrier's members are numbered, and a new member gets the next number (join without a name)"
                    )));
                }
            },
        };
        if let Some(i) = existing {
            // A position has one span, and the new one replaces it: the
            // old one must be over, every generation of it released. (A
            // member that left at a generation still open is expected
            // there: its arrival, and its data, count.)
            let span = self.span(i);
            if span.end.is_none_or(|e| e > from || e > released_below) {
                return Err(JoinError::AlreadyMember(self.name(i)));
            }
            return Ok(i);
        }
        if self.len() >= MAX_ELASTIC {
            return Err(JoinError::Full);
        }
        let name = match &self.base {
            Membership::Count(_) => self.len().to_string(),
            Membership::Roster(_) => {
                let n = name.expect("checked above").to_owned();
                let bytes: usize = self.added.iter().map(|a| a.len() + 3).sum();
                if bytes + n.len() + 3 > MAX_JOINED_NAMES {
                    return Err(JoinError::Full);
                }
                n
            }
        };
        self.added.push(name);
        Ok(self.len() - 1)
    }

    /// Position `i` is expected at no generation from `end` on (it left
    /// after `end - 1`, or was dropped at `end`). Returns whether the roll
    /// changed.
    pub fn end(&mut self, i: usize, end: u64) -> bool {
        let span = self.span(i);
        if i >= self.len() || span.end.is_some_and(|e| e <= end) {
            return false;
        }
        let new = Span {
            from: span.from,
            end: Some(end),
        };
        self.spans.insert(i, new);
        self.version += 1;
        true
    }
}

/// How the published state names the joined members.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Added {
    /// A numbered barrier: how many numbers were given after the configured ones.
    Count(usize),
    /// A roster barrier: the joined names, in order.
    Names(Vec<String>),
}

impl Default for Added {
    fn default() -> Self {
        Added::Count(0)
    }
}

impl Added {
    fn is_empty(&self) -> bool {
        match self {
            Added::Count(n) => *n == 0,
            Added::Names(v) => v.is_empty(),
        }
    }
}

/// Positions whose span is `from..end`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SpanChange {
    /// The first generation expected.
    pub from: u64,
    /// The first generation no longer expected (absent: for ever).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<u64>,
    /// The positions: a base64 bitmap, or a list of positions when that
    /// is shorter.
    #[serde(with = "crate::members::member_set_compact")]
    pub members: MemberSet,
}

/// The roll as the coordinator publishes it (`roll` in the state).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RollState {
    /// The roll's version: the number of changes counted since setup.
    pub v: u64,
    /// The joined members.
    #[serde(default, skip_serializing_if = "Added::is_empty")]
    pub added: Added,
    /// Positions expected at no generation from the release frontier on.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "crate::members::opt_member_set_b64"
    )]
    pub gone: Option<MemberSet>,
    /// Spans that touch generations not yet released.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<SpanChange>,
    /// Recent joins: `[session, position]`, position `null` if refused.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub joins: Vec<(String, Option<usize>)>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(v: &[&str]) -> Membership {
        Membership::new(v.len(), Some(v.iter().map(|s| s.to_string()).collect())).unwrap()
    }

    #[test]
    fn joins_and_leaves_shape_the_expected_sets() {
        let mut r = Roll::new(names(&["a", "b", "c"]));
        assert_eq!(r.expected_count(0), 3);
        assert!(r.end(1, 3)); // b leaves after 2
        assert!(!r.end(1, 5), "a later end changes nothing");
        let j = r.join(Some("d"), "s1", 2, 0).unwrap();
        assert_eq!(
            j,
            Joined {
                position: 3,
                new: true
            }
        );
        assert!(!r.join(Some("d"), "s1", 4, 0).unwrap().new, "a duplicate");
        assert!(matches!(
            r.join(Some("a"), "s2", 4, 0),
            Err(JoinError::AlreadyMember(_))
        ));
        assert_eq!(r.expected(1).collect::<Vec<_>>(), vec![0, 1, 2]);
        assert_eq!(r.expected(2).collect::<Vec<_>>(), vec![0, 1, 2, 3]);
        assert_eq!(r.expected(3).collect::<Vec<_>>(), vec![0, 2, 3]);
        assert_eq!(r.expected_count(3), 3);
        // b comes back from 6, once its last generation (2) is released.
        assert!(matches!(
            r.join(Some("b"), "s3", 6, 2),
            Err(JoinError::AlreadyMember(_))
        ));
        assert!(r.expects(1, 2), "still expected where it left");
        assert_eq!(r.join(Some("b"), "s4", 6, 3).unwrap().position, 1);
        assert!(!r.expects(1, 5) && r.expects(1, 6));
        assert_eq!(r.join_of("s2"), Some(None));
    }

    #[test]
    fn numbered_barriers_give_the_next_number() {
        let mut r = Roll::new(Membership::Count(2));
        assert_eq!(r.join(None, "s", 1, 0).unwrap().position, 2);
        assert_eq!(r.name(2), "2");
        assert_eq!(r.index_of("2"), Some(2));
        assert!(matches!(
            r.join(Some("7"), "t", 1, 0),
            Err(JoinError::BadNumber(_))
        ));
    }

    #[test]
    fn the_published_roll_restores_what_unreleased_generations_need() {
        let mut r = Roll::new(names(&["a", "b", "c"]));
        r.end(1, 3);
        r.join(Some("d"), "s1", 5, 0).unwrap();
        r.end(2, 0); // c dropped at 0
        for below in [0, 3, 4, 5, 6] {
            let st = r.to_state(below).unwrap();
            let json = serde_json::to_string(&st).unwrap();
            let back: RollState = serde_json::from_str(&json).unwrap();
            let r2 = Roll::from_state(names(&["a", "b", "c"]), Some(&back));
            for g in below..below + 8 {
                assert_eq!(
                    r.expected(g).collect::<Vec<_>>(),
                    r2.expected(g).collect::<Vec<_>>(),
                    "below {below}, gen {g}: {json}"
                );
            }
            assert_eq!(r2.join_of("s1"), Some(Some(3)));
        }
        assert!(Roll::new(Membership::Count(2)).to_state(0).is_none());
    }

    /// A member that left at g - 1 may still wait for g - 1's notice when
    /// g is released; a successor that starts from a state released up to
    /// g (exclusive) and releases g again must know that the member's span
    /// ends at g, not only that it is gone.
    #[test]
    fn a_span_ending_at_the_frontier_is_published_whole() {
        let mut r = Roll::new(names(&["a", "b"]));
        r.end(1, 1); // b left at 0
        let back = |below| {
            let json = serde_json::to_string(&r.to_state(below).unwrap()).unwrap();
            let st: RollState = serde_json::from_str(&json).unwrap();
            Roll::from_state(names(&["a", "b"]), Some(&st)).span(1)
        };
        assert_eq!(
            back(1),
            Span {
                from: 0,
                end: Some(1)
            }
        );
        assert!(!back(2).expects(1));
    }

    #[test]
    fn recent_ends_stay_spelled_out_and_few_members_are_a_list() {
        let mut r = Roll::new(Membership::Count(2000));
        r.end(1500, 3);
        let st = r.to_state(10).unwrap();
        let json = serde_json::to_string(&st).unwrap();
        assert!(json.contains("\"members\":[1500]"), "{json}");
        let back = Roll::from_state(
            Membership::Count(2000),
            Some(&serde_json::from_str(&json).unwrap()),
        );
        assert_eq!(back.span(1500).end, Some(3));
        // Long after, only that it is gone.
        let st = r.to_state(3 + RECENT_ENDS + 1).unwrap();
        let back = Roll::from_state(Membership::Count(2000), Some(&st));
        assert!(!back.expects(1500, 0) && back.span(1500).end == Some(0));
    }

    #[test]
    fn a_published_join_beyond_the_roll_is_ignored() {
        let mut r = Roll::new(Membership::Count(3));
        r.join(None, "s1", 1, 0).unwrap();
        let st = r.to_state(0).unwrap();
        // Read over a smaller configuration (a state that does not fit it):
        // position 3 is no member of a roll of 2, so the join is not there.
        let small = Roll::from_state(Membership::Count(1), Some(&st));
        assert_eq!(small.len(), 2);
        assert_eq!(small.join_of("s1"), None);
        let same = Roll::from_state(Membership::Count(3), Some(&st));
        assert_eq!(same.join_of("s1"), Some(Some(3)));
        assert_eq!(same.name(3), "3");
    }
}
