//! Resting, in the simulation: the active process coordinator gives the
//! lease back while it has nothing to decide, and takes it again for its
//! next decision, as the driver does (docs/PROTOCOL.md, "The lease",
//! "Resting"; `sqs_barrier`'s coordinator/rest.rs and active.rs).
//!
//! * **It rests** ([`Sim::may_rest`], at the end of a step) once no
//!   check-in came for `Leasing::rest_after` (the driver's default,
//!   [`REST_AFTER`](super::REST_AFTER), unless a scenario says), the core
//!   is settled (`Coordinator::is_settled`), it holds no receipt handle,
//!   and no decision is due within as long (`poll_decision_timeout`): a
//!   visibility change of the token to 0 ([`Sim::rest`]). One that cannot
//!   reach the lease queue gives nothing back (the token stays in flight
//!   until its visibility lapses), and an extension under way when it
//!   gives the lease back reaches SQS after the give-back half the time
//!   (the token is in flight for a term more).
//! * **Resting** ([`Sim::step_resting`]), it is still the active
//!   coordinator: it looks at the check-in queue without hiding anything
//!   (`Sim::look_at_checkins`, a receive with a visibility timeout of 0),
//!   and fires its timers only while no decision is due: heartbeats and
//!   the deletes their writes allow are all that can come of them,
//!   carried out without the lease (anything else fails the run).
//! * **A check-in seen or a decision due takes the lease again**
//!   ([`Sim::wake`]): a receive of the lease queue (the driver's 1 s
//!   long poll is one instant here; no token while somebody else holds
//!   it: displaced), then check 1, the token is the one it gave back
//!   received exactly once more (its id and receive count), and check 2,
//!   the published state is still its own record. Either
//!   fails: the token goes back at once and it is displaced (it stands by,
//!   as when its lease runs out, holding nothing). Both pass:
//!   `Coordinator::handle_resumed` (the restart grace again), and its next
//!   step receives the check-ins for real. A receive
//!   that fails (the lease queue unreachable) or a state read that fails
//!   (the state queue unreachable: the token goes back) is tried again at
//!   the next step (sooner than the driver, whose loop comes round within
//!   2 s: more takes of the token to interleave with others').
//!
//! In runs with `Leasing::blind` (`Faults::blind_count`) check 1 is
//! skipped, as if SQS's approximate receive count lied: check 2 and the
//! resumed grace alone must keep a coordinator that rested from deciding
//! against what another holder decided meanwhile.

use rand::Rng;

use super::{Sim, VISIBILITY, at};

/// A resting coordinator process's memory of its rest.
#[derive(Debug)]
pub(super) struct Rested {
    /// The token given back: its message id and receive count then (after
    /// a wake that was tried again: the token of that try).
    token: u64,
    receives: u64,
    /// A look found a check-in waiting: it takes the lease again (tried
    /// again at every step until it holds it or is displaced).
    rung: bool,
    /// Ghost: another coordinator received the token since it was given
    /// back.
    others: bool,
}

/// What taking the lease again came to.
enum Wake {
    /// It holds the lease and goes on.
    On,
    /// Another coordinator holds the lease, or may have decided since:
    /// why.
    Displaced(String),
    /// A request failed: tried again at the next step.
    Again,
}

impl Sim {
    /// Whether active process `k` should rest now (the driver's
    /// `may_rest`): resting is on, it holds the lease, no check-in came
    /// for `rest_after`, it holds no receipt handle, its core is settled
    /// and no decision is due within `rest_after` or the visibility
    /// timeout, whichever is longer (one it woke for waits that long again:
    /// resting meanwhile it would put it off for ever). (Its requests take
    /// no time here: none is under way.)
    pub(super) fn may_rest(&self, k: usize) -> bool {
        let Some(after) = self.leasing.rest_after else {
            return false;
        };
        let (p, now) = (&self.procs[k], self.now);
        let Some(c) = self.active(k) else {
            return false;
        };
        p.rest.is_none()
            && p.lease.is_some()
            && now >= p.last_batch + after
            && p.held.is_empty()
            && c.is_settled()
            && c.poll_decision_timeout()
                .is_none_or(|t| t > at(now + after.max(super::VISIBILITY)))
    }

    /// Process `k` gives the lease back and rests.
    pub(super) fn rest(&mut self, k: usize) {
        let now = self.now;
        let h = self.procs[k]
            .lease
            .take()
            .expect("a coordinator that rests holds the lease");
        let p = &self.procs[k];
        if !(p.outage_lease && p.outage_until > now) {
            let _ = self.change_lease_visibility(h.receipt, 0);
            if h.extending.is_some() && self.rng.random_bool(0.5) {
                // Its keeper's extension, sent before the give-back, is
                // handled after it.
                let term = self.term();
                let _ = self.change_lease_visibility(h.receipt, term);
            }
        }
        self.leasing.rests += 1;
        self.procs[k].rest = Some(Rested {
            token: h.token,
            receives: h.receives,
            rung: false,
            others: false,
        });
        self.log(|| format!("process {k} rests: lease given back"));
    }

    /// The start of resting process `k`'s step: it looks at the check-in
    /// queue; a check-in seen, or a decision due, takes the lease again.
    /// `false`: it was displaced and stood down.
    pub(super) fn step_resting(&mut self, k: usize) -> bool {
        let now = self.now;
        let seen = !self.procs[k].rest.as_ref().expect("resting").rung && self.look_at_checkins();
        let p = &mut self.procs[k];
        if seen {
            p.last_batch = now;
        }
        let rest = p.rest.as_mut().expect("resting");
        rest.rung |= seen;
        let waiting = rest.rung;
        let due = self
            .active(k)
            .and_then(|c| c.poll_decision_timeout())
            .is_some_and(|t| t <= at(now));
        if !waiting && !due {
            return true;
        }
        match self.wake(k) {
            Wake::On => {
                // It rests again only once nothing came for `rest_after`
                // (as the driver: what rang is received first).
                self.procs[k].last_batch = now;
                self.log(|| format!("process {k} takes the lease again"));
                true
            }
            Wake::Again => {
                self.leasing.wake_retries += 1;
                true
            }
            Wake::Displaced(why) => {
                self.stand_down(k, &format!("displaced while resting: {why}"));
                false
            }
        }
    }

    /// Resting process `k` takes the lease again (the driver's `wake`).
    fn wake(&mut self, k: usize) -> Wake {
        let now = self.now;
        if let Some(by) = self
            .active(k)
            .and_then(|c| c.superseded())
            .map(str::to_owned)
        {
            self.leasing.displaced_superseded += 1;
            return Wake::Displaced(format!("coordinator {by} published a newer state"));
        }
        let p = &self.procs[k];
        if p.outage_lease && p.outage_until > now {
            // The receive fails.
            return Wake::Again;
        }
        let Some(h) = self.take_lease() else {
            self.leasing.displaced_held += 1;
            return Wake::Displaced("another coordinator holds the lease".into());
        };
        let state_out = self.procs[k].outage_until > now;
        let rest = self.procs[k].rest.as_mut().expect("resting");
        let (token, receives) = (rest.token, rest.receives);
        let follows = h.token == token && h.receives == receives + 1;
        rest.others |= !follows;
        if !follows && !self.leasing.blind {
            let why = if h.token == token {
                format!(
                    "another coordinator received the lease token since this one gave it back \
                     ({} receives)",
                    h.receives - receives - 1
                )
            } else {
                "the lease token was replaced since this coordinator gave it back".to_owned()
            };
            self.leasing.displaced_count += 1;
            let _ = self.change_lease_visibility(h.receipt, 0);
            return Wake::Displaced(why);
        }
        if state_out {
            // The state read fails: the token goes back, and is the one to
            // expect at the next try.
            (rest.token, rest.receives) = (h.token, h.receives);
            let _ = self.change_lease_visibility(h.receipt, 0);
            return Wake::Again;
        }
        let c = self.active(k).expect("active");
        match &self.sqs.tags {
            Some(s) if s.coordinator == c.id() => {}
            other => {
                let why = match other {
                    Some(s) => format!("coordinator {} published since", s.coordinator),
                    None => "its published state was not found".to_owned(),
                };
                self.leasing.displaced_state += 1;
                let _ = self.change_lease_visibility(h.receipt, 0);
                return Wake::Displaced(why);
            }
        }
        let rest = self.procs[k].rest.take().expect("resting");
        self.leasing.wakes += 1;
        self.leasing.wakes_after_another += u64::from(rest.others);
        self.coordinator(k).handle_resumed(at(now), at(VISIBILITY));
        let receipt = h.receipt;
        self.procs[k].lease = Some(h);
        self.schedule_keeper(k, receipt);
        Wake::On
    }
}
