//! What the features of version 2 change: who each generation expects
//! (leave, join, quorum drops), what each member brings (gathered data),
//! and the joining process's read of its join.

use std::collections::BTreeMap;

use sqs_barrier_core::participant::{ArrivalExtras, Participant};

use crate::state::{JoinStep, State, flag};
use crate::{BarrierModel, participant_options};

impl BarrierModel {
    /// Ghost: whether generation `g` expects member `e`, as the scenario
    /// and what was released so far say: a leaving member only up to its
    /// last generation, the joined one from the first generation it read
    /// (not before it read it: [`Action::JoinRead`](crate::Action::JoinRead)
    /// checks that nothing at or after it was released before), a member
    /// named in the `without` of an earlier generation's release no more.
    pub(crate) fn expects(&self, s: &State, e: usize, g: u64) -> bool {
        let f = self.bounds.features;
        let dropped = (0..g as usize).any(|h| s.without[h] & (1 << e) != 0);
        if e >= self.bounds.members {
            return s.joined_from.is_some_and(|from| g >= from) && !dropped;
        }
        if f.leave && e == self.special() && g > 0 {
            return false;
        }
        !dropped
    }

    /// The members generation `g` expects (ghost), as a bitmap.
    pub(crate) fn expected(&self, s: &State, g: u64) -> u8 {
        (0..self.processes())
            .filter(|e| self.expects(s, *e, g))
            .fold(0, |acc, e| acc | (1 << e))
    }

    /// What member `m` brings to generation `g`.
    pub(crate) fn arrival(&self, m: usize, g: u64) -> ArrivalExtras {
        let f = self.bounds.features;
        ArrivalExtras {
            leave: f.leave && m == self.special() && g == 0,
            data: f.gather.then(|| format!("{m}.{g}")),
        }
    }

    /// The joining process reads the published state, which shows its
    /// join: it becomes member `position` from its first generation (the
    /// span's start, or the release frontier if the span began below it,
    /// as the library reads it) and arrives there.
    pub(crate) fn join_read(&self, s: &mut State) {
        let i = self.bounds.members;
        let tags = s.tags.clone().expect("enabled by a state showing the join");
        let roll = tags.roll(&self.cfg.members);
        let Some(Some(position)) = roll.join_of(&format!("s{i}")) else {
            return flag(s, format!("the join of s{i} was refused"));
        };
        if position != i {
            return flag(s, format!("the joined member got position {position}"));
        }
        let span = roll.span(position);
        let from = span.from.max(tags.released_below);
        // Counted, then dropped by a quorum release before it could arrive
        // (as the library reads it: `NotExpected`): done, it never arrives.
        if span.end.is_some_and(|e| e <= from) {
            let named = (0..from as usize).any(|h| s.without[h] & (1 << i) != 0);
            if !named {
                return flag(
                    s,
                    format!("the joined member was dropped unnamed ({span:?})"),
                );
            }
            s.joined_from = Some(span.from);
            let m = &mut s.members[i];
            m.join = JoinStep::Joined;
            m.dropped = true;
            return;
        }
        // The join is counted in a published state: no generation at or
        // after its first may have been released without the joined member.
        if let Some(g) = (from..self.bounds.generations).find(|g| s.passed[*g as usize] != 0) {
            return flag(
                s,
                format!("generation {g} was released before its joined member (from {from})"),
            );
        }
        let machine = match Participant::with_roll(
            &self.cfg,
            roll,
            &position.to_string(),
            format!("s{i}"),
            participant_options(),
        ) {
            Ok(p) => p,
            Err(e) => return flag(s, format!("the joined member has no participant: {e}")),
        };
        s.joined_from = Some(from);
        let m = &mut s.members[i];
        m.machine = machine;
        m.join = JoinStep::Joined;
        m.next = from;
        if from < m.stop {
            self.arrive(s, i);
        }
    }

    /// C: participant `i` passed `g` by its notice, which carried `data`:
    /// it is what each member brought, it names every member `g` expects
    /// that the release did not go on without, and it is what every other
    /// participant that passed `g` by a notice saw.
    pub(crate) fn check_gathered(
        &self,
        s: &mut State,
        i: usize,
        g: u64,
        data: BTreeMap<String, String>,
    ) {
        if !self.bounds.features.gather || s.gather_violation.is_some() {
            return;
        }
        let wrong = data
            .iter()
            .find(|(who, d)| **d != format!("{who}.{g}"))
            .map(|(who, d)| format!("{who} brought {d:?}"));
        let absent = (0..self.processes())
            .filter(|e| self.expects(s, *e, g) && s.without[g as usize] & (1 << e) == 0)
            .find(|e| !data.contains_key(&e.to_string()))
            .map(|e| format!("{e}'s data is missing"));
        let differs = s.gathered[g as usize]
            .as_ref()
            .filter(|seen| **seen != data)
            .map(|seen| format!("another participant saw {seen:?}"));
        if let Some(why) = wrong.or(absent).or(differs) {
            s.gather_violation = Some(format!(
                "participant {i} passed {g} with data {data:?}: {why}"
            ));
        }
        s.gathered[g as usize].get_or_insert(data);
    }
}
