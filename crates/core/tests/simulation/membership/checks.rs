//! The ghost records of a run of scripted members (whom each generation
//! expects, whom a release went without, which joins a landed state
//! answered, when a quorum barrier starves) and `check_elastic`, the checks
//! of a finished run.

use std::collections::BTreeMap;

use sqs_barrier_core::participant::Outcome;
use sqs_barrier_core::roll::JOINS_KEPT;
use sqs_barrier_core::state::PublishedState;

use super::super::{Faults, PState, RELEASE_BOUND, Sim, check_no_split};
use super::{GRACE, Stats, data_of};

impl Sim {
    /// The first generation no longer expecting process `m`'s span
    /// `(from, end)`: its leave, or the first quorum release from `from`
    /// on that went without it.
    fn span_end(&self, m: usize, from: u64, end: Option<u64>) -> Option<u64> {
        let name = self.elastic.names[m].as_ref()?;
        let dropped = self
            .elastic
            .notices
            .keys()
            .chain(self.elastic.published_drops.keys())
            .filter(|&&g| g >= from && self.without(g).contains(name))
            .copied()
            .min();
        match (end, dropped) {
            (Some(e), Some(d)) => Some(e.min(d)),
            (e, d) => e.or(d),
        }
    }

    /// Whether generation `g` expected process `m`: counting a member
    /// that a quorum release of `g` went without, unless `strict`.
    fn ghost_expects(&self, m: usize, g: u64, strict: bool) -> bool {
        self.elastic.spans[m].iter().any(|&(from, end)| {
            let end = self.span_end(m, from, end);
            let dropped_here = !strict
                && self.elastic.names[m]
                    .as_ref()
                    .is_some_and(|n| self.without(g).contains(n));
            from <= g && (end.is_none_or(|e| g < e) || (dropped_here && end == Some(g)))
        })
    }

    /// Whether process `m`, still waiting at `g` (released with it: it
    /// missed the notice) when a quorum release of `g + 1` went without it,
    /// read a state that shows it gone and `g` released, and took itself
    /// for dropped at `g`. The published roll keeps no generation for a
    /// member whose span ended below the release frontier, so the
    /// participant cannot tell the two apart; it errs on the side of not
    /// passing. Counted, not a failure.
    fn dropped_late(&self, m: usize, g: u64) -> bool {
        let dropped_next = self.elastic.names[m]
            .as_ref()
            .is_some_and(|n| self.without(g + 1).contains(n) && !self.without(g).contains(n));
        dropped_next
            && self.arrivals[g as usize][m].is_some()
            && self.outcomes.iter().any(|(who, o, _)| {
                *who == m && matches!(o, Outcome::Dropped { generation, .. } if *generation == g)
            })
    }

    /// Ghost: the joins a state about to land answers. A join answered
    /// once (its session given a position) stays answered the same way in
    /// every later state (while the roll remembers that many joins), and
    /// no position is given to the sessions of two processes.
    pub(crate) fn check_join_answers(&mut self, state: &PublishedState) {
        let Some(roll) = &state.roll else {
            return;
        };
        let process = |session: &str| -> Option<usize> {
            session.strip_prefix('j')?.split('.').next()?.parse().ok()
        };
        for (session, position) in &roll.joins {
            let Some(p) = *position else { continue };
            match self.elastic.answers.get(session) {
                Some(&q) if q != p => self.fail(&format!(
                    "join answer erased: session {session} was given position {q}, now {p}"
                )),
                Some(_) => {}
                None => {
                    if let Some((other, _)) = self
                        .elastic
                        .answers
                        .iter()
                        .find(|(o, q)| **q == p && process(o) != process(session))
                    {
                        self.fail(&format!(
                            "join answer erased: position {p} was given to session {other}, now \
                             to {session}"
                        ));
                    }
                    self.elastic.answers.insert(session.clone(), p);
                }
            }
        }
        if roll.joins.len() < JOINS_KEPT {
            let missing = self
                .elastic
                .answers
                .keys()
                .find(|s| !roll.joins.iter().any(|(j, _)| j == *s));
            if let Some(s) = missing {
                self.fail(&format!(
                    "join answer erased: a state written by {} no longer records the join of \
                     session {s}",
                    state.coordinator
                ));
            }
        }
    }

    /// The first generation a quorum barrier cannot release any more, if
    /// members wait there: it expects fewer live members (not dead by
    /// their script) than the quorum. A quorum release may drop members
    /// that had arrived (their check-ins were not among what the
    /// coordinator had received when the grace ended: after a stall, its
    /// first receive decides); with two of them gone besides the dead
    /// one, the rest wait for ever (in practice, until their own
    /// timeouts). Counted, not a failure: it is the quorum's rule, not a
    /// split.
    fn starved_at(&self) -> Option<u64> {
        let quorum = self.elastic.quorum?;
        self.members
            .iter()
            .filter_map(|m| match m.state {
                PState::Waiting(g) => Some(g),
                _ => None,
            })
            .filter(|&g| {
                let live = (0..self.members.len())
                    .filter(|&j| {
                        self.ghost_expects(j, g, true)
                            && self.elastic.scripts[j].dead_from.is_none_or(|d| d > g)
                    })
                    .count();
                live < quorum
            })
            .min()
    }

    /// Whether every member that is not done waits at a generation that
    /// cannot be released any more (`starved_at`).
    pub(crate) fn all_starved(&self) -> bool {
        let Some(s) = self.starved_at() else {
            return false;
        };
        self.elastic.joining.is_empty()
            && self.members.iter().all(|m| match m.state {
                PState::Done => true,
                PState::Waiting(g) => g >= s,
                PState::Working(_) => false,
            })
    }

    /// Whom the release of `g` went without: as its first notice says, or
    /// if none went out, as the published state records it.
    fn without(&self, g: u64) -> &[String] {
        match self.elastic.notices.get(&g) {
            Some((w, _)) => w,
            None => self.elastic.published_drops.get(&g).map_or(&[], |w| w),
        }
    }

    /// Ghost: records whom the releases a landed state shows for the first
    /// time dropped (`Plan::published_drops`).
    pub(crate) fn note_published_drops(&mut self, state: &PublishedState) {
        let fresh: Vec<u64> = (0..state.released_below)
            .chain(state.released_above.iter().copied())
            .filter(|g| !self.elastic.published_drops.contains_key(g))
            .collect();
        if fresh.is_empty() {
            return;
        }
        let roll = state.roll(&self.cfg.members);
        for g in fresh {
            let dropped = (0..roll.len())
                .filter(|&i| roll.span(i).end == Some(g))
                .map(|i| roll.name(i))
                .filter(|name| {
                    // Not a member that left at g - 1.
                    !(0..self.members.len()).any(|p| {
                        self.elastic.names[p].as_ref() == Some(name)
                            && self.elastic.scripts[p]
                                .leave
                                .is_some_and(|(l, _)| l + 1 == g)
                    })
                })
                .collect();
            self.elastic.published_drops.insert(g, dropped);
        }
    }
}

/// Checks a finished run; returns its figures.
pub(super) fn check_elastic(sim: &Sim) -> Stats {
    let plan = &sim.elastic;
    // Every notice of a generation carries the same `without` and data:
    // two that differ are two decisions of one generation.
    if let Some((g, other)) = plan.conflicts.first() {
        sim.fail(&format!(
            "split decision: two release notices of generation {g} differ: {:?} and {other:?}",
            plan.notices[g]
        ));
    }
    check_no_split(sim);
    let actors = sim.members.len();
    let starved = sim.starved_at();
    for (m, member) in sim.members.iter().enumerate() {
        let waits_starved =
            matches!(member.state, PState::Waiting(g) if starved.is_some_and(|s| g >= s));
        if (!matches!(member.state, PState::Done) || plan.joining.contains_key(&m))
            && !waits_starved
        {
            sim.fail(&format!("process {m} never finished"));
        }
    }
    let mut worst = 0;
    let mut dropped_arrived = 0;
    let mut dropped_late = 0;
    // What members learned of each release agrees (`check_no_split`, above).
    for (m, o, t) in &sim.outcomes {
        let name = plan.names[*m].clone().unwrap_or_default();
        match o {
            Outcome::Released {
                generation: g,
                data,
                ..
            } => {
                let g = *g;
                // A member passes only a generation that expects it.
                if !sim.ghost_expects(*m, g, true) {
                    sim.fail(&format!(
                        "process {m} ({name}) passed {g}, which does not expect it"
                    ));
                }
                let without = sim.without(g);
                let mut arrived = 0;
                let mut expected_data = BTreeMap::new();
                for j in 0..actors {
                    if !sim.ghost_expects(j, g, false) {
                        continue;
                    }
                    let jn = plan.names[j]
                        .clone()
                        .expect("an expected member has a name");
                    if without.contains(&jn) {
                        continue;
                    }
                    // Among them a member that joined for g: its join was
                    // answered, so g must not go without it.
                    match sim.arrivals[g as usize][j] {
                        Some(a) if a <= *t => arrived += 1,
                        a => sim.fail(&format!(
                            "process {m} ({name}) passed {g} at {t} ms before {jn} arrived ({a:?})"
                        )),
                    }
                    if plan.data_phases >> g & 1 == 1 {
                        expected_data.insert(jn, data_of(j, g));
                    }
                }
                if !without.is_empty() && arrived < plan.quorum.unwrap_or(usize::MAX) {
                    sim.fail(&format!(
                        "generation {g} was released without {without:?} with {arrived} arrived, \
                         fewer than the quorum {:?}",
                        plan.quorum
                    ));
                }
                if let Some(d) = data
                    && *d != expected_data
                {
                    sim.fail(&format!(
                        "process {m} ({name}) passed {g} with data {d:?}, not {expected_data:?}"
                    ));
                }
            }
            Outcome::Dropped { generation: g, .. } => {
                if sim.ghost_expects(*m, *g, true) {
                    if !sim.dropped_late(*m, *g) {
                        sim.fail(&format!(
                            "process {m} ({name}) was dropped at {g}, which expects it"
                        ));
                    }
                    dropped_late += 1;
                } else {
                    // Arrived before anybody passed: its check-in was held
                    // where the releasing coordinator could not see it.
                    let before = sim.released_at.get(g).copied().unwrap_or(u64::MAX);
                    dropped_arrived +=
                        u64::from(sim.arrivals[*g as usize][*m].is_some_and(|a| a < before));
                }
            }
            _ => unreachable!("other outcomes fail at once"),
        }
    }
    // Liveness: every generation that expects a member (until a quorum
    // release drops it) sees it pass, unless it left there without waiting.
    for m in 0..actors {
        for g in 0..sim.phases {
            if !sim.ghost_expects(m, g, true)
                || plan.left_unwaited[m] == Some(g)
                || sim.dropped_late(m, g)
                || starved.is_some_and(|s| g >= s)
            {
                continue;
            }
            let passed = sim.outcomes.iter().any(|(who, o, _)| {
                *who == m && matches!(o, Outcome::Released { generation, .. } if *generation == g)
            });
            if !passed {
                sim.fail(&format!(
                    "process {m} ({:?}) never passed {g}, which expects it: {:?}",
                    plan.names[m],
                    sim.outcome_of(m)
                ));
            }
        }
    }
    // Each generation is released within the bound of the last arrival
    // of the members it released.
    let grace = plan.quorum.map_or(0, |_| GRACE);
    for g in 0..sim.phases {
        let Some(rel) = sim.released_at.get(&g) else {
            continue;
        };
        let without = sim.without(g);
        let last = (0..actors)
            .filter(|&j| {
                sim.ghost_expects(j, g, false)
                    && !plan.names[j].as_ref().is_some_and(|n| without.contains(n))
            })
            .filter_map(|j| sim.arrivals[g as usize][j])
            .chain(plan.rerun_at.get(&g).copied())
            .max()
            .unwrap_or(0);
        let took = rel.saturating_sub(last);
        if took > RELEASE_BOUND + grace {
            sim.fail(&format!(
                "generation {g} released {took} ms after its last arrival"
            ));
        }
        worst = worst.max(took);
    }
    for k in 0..sim.procs.len() {
        let held = sim.active(k).map_or(0, |c| c.held());
        if held != 0 && starved.is_none() {
            sim.fail(&format!(
                "the idle coordinator {k} still holds {held} messages"
            ));
        }
    }
    let mut stats = plan.stats.clone();
    stats.runs = 1;
    stats.worst = worst;
    stats.dropped_arrived = dropped_arrived;
    stats.dropped_late = dropped_late;
    stats.starved = u64::from(starved.is_some());
    stats.outages = u64::from(Faults::HOSTILE.outages - sim.outages_left);
    stats.stalls = u64::from(Faults::HOSTILE.stalls - sim.stalls_left);
    stats.lease = sim.leasing.clone();
    stats.coordinator_crashes = u64::from(Faults::HOSTILE.coordinator_crashes - sim.crashes_left);
    stats.two_active = u64::from(sim.max_active > 1);
    stats
}
