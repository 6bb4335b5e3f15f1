//! The participants: arrivals, check-ins sent, status reads answered
//! from the published state, and outcomes.

use sqs_barrier_core::participant::{Outcome, Transmit as PTransmit};
use sqs_barrier_core::wire::{BreakCause, Message};

use crate::state::{Holder, JOIN, State, Tok, flag};
use crate::{BarrierModel, NOW};

impl BarrierModel {
    pub(crate) fn checkin_body(&self, t: &Tok) -> String {
        if t.generation == JOIN {
            return Message::Join {
                barrier: self.cfg.name.clone(),
                instance: self.cfg.instance.clone(),
                member: None,
                session: format!("s{}", t.member),
            }
            .encode();
        }
        let a = self.arrival(usize::from(t.member), u64::from(t.generation));
        Message::Checkin {
            barrier: self.cfg.name.clone(),
            instance: self.cfg.instance.clone(),
            generation: u64::from(t.generation),
            member: t.member.to_string(),
            session: format!("s{}", t.member),
            attempt: u32::from(t.attempt),
            leave: a.leave,
            data: a.data,
        }
        .encode()
    }

    /// Participant `i` arrives at its next generation and sends its check-in.
    pub(crate) fn arrive(&self, s: &mut State, i: usize) {
        let g = s.members[i].next;
        let arrival = self.arrival(i, g);
        if let Err(e) = s.members[i].machine.arrive_with(g, None, arrival, NOW) {
            flag(s, format!("participant {i}: arrive failed: {e}"));
        }
        s.members[i].waiting = Some(g);
        s.members[i].resends = 0;
        s.members[i].read.clear();
        s.arrived[g as usize] |= 1 << i;
        self.participant_sends(s, i);
    }

    /// Sends what participant `i` queued; answers its status reads from the
    /// register.
    pub(crate) fn participant_sends(&self, s: &mut State, i: usize) {
        while let Some(t) = s.members[i].machine.poll_transmit() {
            match t {
                PTransmit::Send(body) => match Message::decode(&body) {
                    Ok(Message::Checkin {
                        generation,
                        attempt,
                        ..
                    }) => {
                        let tok = Tok {
                            member: i as u8,
                            generation: generation as u8,
                            attempt: attempt as u8,
                            copy: 0,
                        };
                        if body != self.checkin_body(&tok) {
                            flag(s, format!("participant {i} sent an unexpected body {body}"));
                        }
                        s.sent.insert((tok.member, tok.generation, tok.attempt), 1);
                        s.checkin.insert(tok, Holder::Visible(None));
                    }
                    other => flag(s, format!("participant {i} sent {other:?}")),
                },
                PTransmit::QueryStatus => {
                    let tags = s.tags.clone();
                    s.members[i].machine.handle_status(tags.as_ref(), NOW);
                }
            }
        }
    }

    /// Collects participant `i`'s outcomes.
    pub(crate) fn participant_outcomes(&self, s: &mut State, i: usize) {
        while let Some(o) = s.members[i].machine.poll_event() {
            match o {
                Outcome::Released {
                    generation, data, ..
                } => {
                    if let Some(data) = data {
                        self.check_gathered(s, i, generation, data);
                    }
                    let m = &mut s.members[i];
                    if m.waiting != Some(generation) {
                        let w = m.waiting;
                        flag(
                            s,
                            format!("participant {i} released at {generation} waiting at {w:?}"),
                        );
                        continue;
                    }
                    if s.broken_from.is_some_and(|b| generation >= b) {
                        flag(
                            s,
                            format!("participant {i} passed {generation}, a broken generation"),
                        );
                        continue;
                    }
                    let m = &mut s.members[i];
                    m.waiting = None;
                    m.next = generation + 1;
                    m.resends = 0;
                    m.read.clear();
                    s.passed[generation as usize] |= 1 << i;
                    // Arriving at once loses no behaviour: the check-in only
                    // sits in the queue until it is received.
                    if m.next < m.stop && !m.late {
                        self.arrive(s, i);
                    }
                }
                Outcome::Dropped { generation, since } => {
                    let m = &mut s.members[i];
                    if m.waiting != Some(generation) {
                        let w = m.waiting;
                        flag(
                            s,
                            format!("participant {i} dropped at {generation} waiting at {w:?}"),
                        );
                        continue;
                    }
                    m.waiting = None;
                    m.dropped = true;
                    // Only a quorum release names anybody in `without`.
                    let named = (0..=generation as usize).any(|h| s.without[h] & (1 << i) != 0);
                    if !named || since > generation {
                        flag(
                            s,
                            format!(
                                "participant {i} dropped at {generation} (since {since}), not named in a release"
                            ),
                        );
                    }
                }
                Outcome::Broken {
                    generation,
                    from_gen,
                    cause,
                    ..
                } => {
                    // Only the Lambda coordinator breaks a barrier in the
                    // model: it cannot gather data, and says so.
                    let f = self.bounds.features;
                    let expected = self.bounds.coordinator.is_lambda()
                        && f.gather
                        && matches!(cause, BreakCause::Unsupported { .. });
                    let m = &mut s.members[i];
                    if !expected || m.waiting != Some(generation) || generation < from_gen {
                        let w = m.waiting;
                        flag(
                            s,
                            format!(
                                "participant {i} broken at {generation} from {from_gen} waiting at {w:?}: {cause}"
                            ),
                        );
                        continue;
                    }
                    m.waiting = None;
                    m.broken = true;
                    // Every member learns one break, and nobody passed a
                    // generation it breaks.
                    if *s.broken_from.get_or_insert(from_gen) != from_gen {
                        let b = s.broken_from;
                        flag(
                            s,
                            format!("participant {i} broken from {from_gen}, another from {b:?}"),
                        );
                    }
                    if let Some(g) =
                        (from_gen..self.bounds.generations).find(|g| s.passed[*g as usize] != 0)
                    {
                        flag(s, format!("generation {g} was passed and broken"));
                    }
                }
                other => flag(s, format!("participant {i}: unexpected outcome {other:?}")),
            }
        }
    }
}
