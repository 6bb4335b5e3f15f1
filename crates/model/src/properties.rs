//! The properties checked: safety invariants (S1, S3-S6, no unexpected
//! outcome, the notice bound B) and liveness (L1).

use stateright::Property;

use sqs_barrier_core::wire::Message;

use crate::BarrierModel;
use crate::state::State;

/// Every property of the model.
pub(crate) fn properties() -> Vec<Property<BarrierModel>> {
    vec![
        Property::always(
            "S1: released at g only after a check-in for g of every member g expects reached a coordinator, or on a quorum release of min of them with the rest named in without",
            |m: &BarrierModel, s: &State| {
                (0..m.bounds.generations).all(|g| m.released_rightly(s, g))
            },
        ),
        Property::always(
            "S4: a dropped or left member never passes a generation that does not expect it",
            |m: &BarrierModel, s: &State| {
                (0..m.bounds.generations).all(|g| {
                    let g = g as usize;
                    s.passed[g] & (s.without[g] | !m.expected(s, g as u64)) == 0
                })
            },
        ),
        Property::always(
            "S5: every participant passing g by its notice sees the same gathered data, as the members brought it",
            |_: &BarrierModel, s: &State| s.gather_violation.is_none(),
        ),
        Property::always(
            "S6: a published state includes every earlier one (no release, arrival or join lost: the roll's version never goes back)",
            |_: &BarrierModel, s: &State| s.published_violation.is_none(),
        ),
        Property::always(
            "released only at the generation waited at; no other outcome, rejection or stray transmit",
            |_: &BarrierModel, s: &State| s.violation.is_none(),
        ),
        Property::always(
            "S3: a generation someone passed is in the tags or re-countable from the tags and the queue",
            |m: &BarrierModel, s: &State| recountable(m, s),
        ),
        Property::always(
            "L1: no deadlock unless every participant is done",
            |m: &BarrierModel, s: &State| m.all_done(s) || !m.enabled(s).is_empty(),
        ),
        Property::eventually(
            "L1: every participant completes every generation",
            |m: &BarrierModel, s: &State| m.all_done(s),
        ),
        Property::sometimes(
            "every participant completes after every allowed fault",
            |m: &BarrierModel, s: &State| {
                let (b, u) = (&m.bounds, &s.used);
                m.all_done(s)
                    && u.crashes == b.crashes
                    && u.lapses == b.lapses
                    && u.expiries == b.expiries
                    && u.duplications == b.duplications
                    && u.takeovers == b.takeovers
                    && u.rests == b.rests
                    && u.stuck_deletes == b.stuck_deletes
            },
        ),
        Property::always(
            "B: a release queue holds at most 1 + f release notices (f = crashes, takeovers, rests and duplications so far)",
            |_: &BarrierModel, s: &State| {
                let f = u32::from(s.used.crashes)
                    + u32::from(s.used.takeovers)
                    + u32::from(s.used.rests)
                    + u32::from(s.used.duplications);
                // Release notices: a broken notice goes to every member
                // that checks in after the break (only the Lambda
                // coordinator breaks a barrier in the model).
                s.release.iter().all(|q| {
                    q.iter()
                        .filter(|(body, _)| is_release(body))
                        .map(|(_, n)| u32::from(*n))
                        .sum::<u32>()
                        <= 1 + f
                })
            },
        ),
    ]
}

impl BarrierModel {
    /// S1 at generation `g`: nobody passed it, or every member it expects
    /// arrived and its check-in reached a coordinator; on a quorum barrier,
    /// those that did not are named in a release notice's `without` and at
    /// least the quorum of those expected did.
    pub(crate) fn released_rightly(&self, s: &State, g: u64) -> bool {
        let gi = g as usize;
        if s.passed[gi] == 0 {
            return true;
        }
        let expected = self.expected(s, g);
        let here = expected & s.arrived[gi] & s.counted[gi];
        let missing = expected & !here;
        missing == 0
            || self.cfg.quorum.is_some_and(|q| {
                missing & !s.without[gi] == 0 && here.count_ones() as usize >= q.min
            })
    }
}

/// S3 as a state invariant: while a generation that somebody passed is not
/// recorded as released in the published state, every member's arrival at
/// it is either recorded in the published state's open generation or still
/// a check-in in the queue, so a successor coordinator can count it again.
pub(crate) fn recountable(m: &BarrierModel, s: &State) -> bool {
    (0..m.bounds.generations).all(|g| {
        s.passed[g as usize] == 0
            || s.tags.as_ref().is_some_and(|t| t.is_released(g))
            || (0..m.processes() as u8).all(|i| {
                !m.expects(s, usize::from(i), g)
                    || s.without[g as usize] & (1 << i) != 0
                    || s.tags.as_ref().is_some_and(|t| {
                        t.open
                            .as_ref()
                            .is_some_and(|o| o.generation == g && o.arrived.contains(i as usize))
                    })
                    || s.checkin
                        .keys()
                        .any(|t| t.member == i && u64::from(t.generation) == g)
            })
    })
}

fn is_release(body: &str) -> bool {
    matches!(Message::decode(body), Ok(Message::Release { .. }))
}
