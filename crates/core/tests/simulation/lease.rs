//! The coordinators' lease in the simulation: who may decide.
//!
//! The lease queue itself is SQS's (simulation/sqs.rs, `LeaseQueue`: a
//! FIFO message group locked while a token is in flight, visibility that
//! lapses, changes refused once it has, a receive count per token). Here
//! is what a coordinator does with it, as the runtime does
//! (docs/PROTOCOL.md, "The lease"), with the holder's timing kept by the
//! core's own [`Lease`] machine:
//!
//! * **Taking it** ([`Sim::take_lease`]): a receive that hides every token
//!   it gets for the lease's term (extra tokens are deleted, one stays),
//!   then an extension that confirms the one kept; the lease is held from
//!   that extension's send.
//! * **Keeping it** (a process coordinator's keeper, [`Sim::step_keeper`],
//!   beside the process's own steps): an extension to the term every 2 s,
//!   which takes a request's time to reach SQS (SQS counts the visibility
//!   from then) and may fail (tried again 250 ms later); a refused one
//!   ends the lease at once. Kept only while the process makes progress:
//!   after [`STALL`] without a step of its loop, it stops extending.
//! * **Giving it back**: a visibility of 0, only while it is still held
//!   on the holder's clock (a Lambda invocation that returns, a process
//!   that finds another's write and stands down).
//! * **Resting** (simulation/rest.rs): the active process with nothing to
//!   decide gives it back and takes it again for its next check-in or
//!   decision, if nobody else received the token meanwhile (the token's
//!   id and receive count, kept in its [`Holder`]) and the published
//!   state is still its own; else it is displaced and stands by.
//! * **A process that takes over** ([`Sim::step_waiting`], after its
//!   standby judged the active one gone, rightly or not) first waits for
//!   the lease: it polls the lease queue at every step (a long poll
//!   returns as soon as a token is visible), puts a new token if none came
//!   for [`TOKEN_MISSING_AFTER`] and the queue's approximate counts say it
//!   holds none (they can be wrong: a second token is harmless, it shares
//!   the group), then reads the published state afresh and starts from the
//!   newest state it knows (a read that fails, in an outage of the state
//!   queue, is tried again at its next step while the lease lasts).
//! * **Before every step and every request** a process coordinator checks
//!   the lease; one whose lease ran out stands down (hands its check-ins
//!   back, keeps the token: it may be somebody else's by now) and stands
//!   by again. A Lambda invocation checks it before every request
//!   (simulation/lambda.rs).
//!
//! The requests of a process coordinator's steps take no time here, and an
//! extension reaches SQS within 400 ms (a Lambda invocation's requests take
//! 5 to 100 ms each), so every request lands within the lease's margin: the
//! one timing assumption of the protocol holds, and under it no two
//! coordinators may hold the lease at once. That is checked after every
//! event ([`Sim::check_one_holder`]). Runs with the lease off
//! (`_without_the_lease`) let a process that takes over decide at once, as
//! before the lease.

use sqs_barrier_core::lease::Lease;
use sqs_barrier_core::state::PublishedState;

use super::{Actor, Role, SEC, Sim, at};

/// A holder whose work made no progress for this long stops extending
/// (the runtime's keeper does the same).
const STALL: u64 = 6 * SEC;
/// How long a process that took over waits for a token before it looks
/// whether the queue holds any (as the runtime does).
const TOKEN_MISSING_AFTER: u64 = 15 * SEC;
/// How often the queue's approximate counts say it is empty although a
/// token is in flight.
const WRONG_EMPTY: f64 = 0.2;

/// A held lease: the token's latest receipt handle, and the core's machine
/// that says until when the holder may decide.
#[derive(Clone, Debug)]
pub(super) struct Holder {
    pub(super) lease: Lease,
    pub(super) receipt: u64,
    /// The token's message id and receive count as its receive reported
    /// them: a holder that rests keeps them, to tell at its next take
    /// whether anybody else received the token in between.
    pub(super) token: u64,
    pub(super) receives: u64,
    /// When the holder's work last made progress.
    pub(super) progress: u64,
    /// An extension sent at this instant is on its way.
    pub(super) extending: Option<u64>,
}

/// The lease's switch and what it did (ghost counters).
#[derive(Clone, Debug, Default)]
pub(super) struct Leasing {
    /// Coordinators take the lease (as the runtime and the handler do).
    pub(super) on: bool,
    /// Times the lease was taken.
    pub(super) takes: u64,
    /// Times a process coordinator's lease ran out while it was active.
    pub(super) ran_out: u64,
    /// Extensions SQS refused (the token's visibility had lapsed).
    pub(super) refused: u64,
    /// Extensions that failed (transient errors).
    pub(super) failed: u64,
    /// Tokens put because the queue looked empty, and extra tokens
    /// deleted at a receive.
    pub(super) put: u64,
    pub(super) extras: u64,
    /// Times a holder gave the lease back.
    pub(super) given_back: u64,
    /// Times a process took over while another was active (the lease
    /// decides which of them coordinates), and of those, while the active
    /// one could not reach the state queue.
    pub(super) contested: u64,
    pub(super) contested_cut_off: u64,
    /// How long an active process coordinator with nothing to decide goes
    /// on holding the lease before it rests (simulation/rest.rs); `None`:
    /// it never rests.
    pub(super) rest_after: Option<u64>,
    /// In this run a coordinator that takes the lease again after resting
    /// skips check 1 (the token's id and receive count) and trusts any
    /// token it receives, as if SQS's approximate count lied every time:
    /// check 2 (the published state) and the resumed grace alone guard
    /// its wakes.
    pub(super) blind: bool,
    /// Runs with `blind` on (over many runs).
    pub(super) blind_runs: u64,
    /// Times an active process coordinator rested, and took the lease
    /// again and went on.
    pub(super) rests: u64,
    pub(super) wakes: u64,
    /// Wakes that ended displaced: no token came (another holds it), the
    /// token was not the one given back received once more (check 1), the
    /// published state was not its own (check 2), or it had been
    /// superseded already.
    pub(super) displaced_held: u64,
    pub(super) displaced_count: u64,
    pub(super) displaced_state: u64,
    pub(super) displaced_superseded: u64,
    /// Wakes tried again at the next step: the state or lease queue could
    /// not be reached.
    pub(super) wake_retries: u64,
    /// Wakes that went on although another coordinator had received the
    /// token since it was given back (only with `blind`).
    pub(super) wakes_after_another: u64,
    /// Resting coordinators superseded by a heartbeat write that found a
    /// newer state.
    pub(super) superseded_resting: u64,
}

impl Leasing {
    pub(super) fn add(&mut self, o: &Leasing) {
        self.takes += o.takes;
        self.ran_out += o.ran_out;
        self.refused += o.refused;
        self.failed += o.failed;
        self.put += o.put;
        self.extras += o.extras;
        self.given_back += o.given_back;
        self.contested += o.contested;
        self.contested_cut_off += o.contested_cut_off;
        self.blind_runs += o.blind_runs + u64::from(o.blind);
        self.rests += o.rests;
        self.wakes += o.wakes;
        self.displaced_held += o.displaced_held;
        self.displaced_count += o.displaced_count;
        self.displaced_state += o.displaced_state;
        self.displaced_superseded += o.displaced_superseded;
        self.wake_retries += o.wake_retries;
        self.wakes_after_another += o.wakes_after_another;
        self.superseded_resting += o.superseded_resting;
    }

    /// Wakes that ended displaced, whatever the reason.
    pub(super) fn displaced(&self) -> u64 {
        self.displaced_held
            + self.displaced_count
            + self.displaced_state
            + self.displaced_superseded
    }
}

impl std::fmt::Display for Leasing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} takeovers while another coordinator was active ({} of them from one cut off \
             from the state queue); lease taken {} times, given back {} times, ran out under an \
             active coordinator {} times; {} extensions refused, {} failed; {} tokens put into a \
             queue that looked empty, {} extra tokens deleted",
            self.contested,
            self.contested_cut_off,
            self.takes,
            self.given_back,
            self.ran_out,
            self.refused,
            self.failed,
            self.put,
            self.extras
        )?;
        if self.rests == 0 {
            return Ok(());
        }
        write!(
            f,
            "; rested {} times, took the lease again and went on {} times ({} of them although \
             another coordinator had received the token meanwhile, in {} runs that skip check \
             1), displaced at a wake {} times ({} by another holder, {} by check 1, {} by check \
             2, {} superseded before), {} wakes tried again, {} resting coordinators superseded \
             by a newer state",
            self.rests,
            self.wakes,
            self.wakes_after_another,
            self.blind_runs,
            self.displaced(),
            self.displaced_held,
            self.displaced_count,
            self.displaced_state,
            self.displaced_superseded,
            self.wake_retries,
            self.superseded_resting
        )
    }
}

impl Sim {
    pub(super) fn term(&self) -> u64 {
        Lease::default().term().as_millis() as u64
    }

    /// Tries to take the lease: one receive, the extras deleted, the token
    /// kept confirmed by an extension. `None`: no token came (another
    /// holds it, or there is none).
    pub(super) fn take_lease(&mut self) -> Option<Holder> {
        let term = self.term();
        let mut got = self.receive_lease(term).into_iter();
        let first = got.next()?;
        for extra in got {
            self.leasing.extras += 1;
            self.delete_lease(extra.receipt);
        }
        let receipt = first.receipt;
        let sent = self.now;
        self.change_lease_visibility(receipt, term).ok()?;
        let mut lease = Lease::default();
        lease.handle_acquired(at(sent));
        self.leasing.takes += 1;
        Some(Holder {
            lease,
            receipt,
            token: first.id,
            receives: first.receives,
            progress: sent,
            extending: None,
        })
    }

    /// Whether `h` may decide now.
    pub(super) fn holds(&self, h: &Holder) -> bool {
        h.lease.is_held(at(self.now))
    }

    /// Gives the lease back (the token visible at once), if it is still
    /// held: one that ran out may be somebody else's.
    pub(super) fn give_back(&mut self, h: Holder) {
        if self.holds(&h) {
            self.leasing.given_back += 1;
            let _ = self.change_lease_visibility(h.receipt, 0);
        }
    }

    /// Whether process `k` may decide now: it holds the lease (or the
    /// lease is off).
    pub(super) fn decides(&self, k: usize) -> bool {
        !self.leasing.on || self.procs[k].lease.as_ref().is_some_and(|h| self.holds(h))
    }

    /// Process `k` took over: it waits for the lease, then reads the
    /// published state and becomes the active coordinator.
    pub(super) fn step_waiting(&mut self, k: usize) {
        let now = self.now;
        let Role::Waiting { since, put, .. } = self.procs[k].role else {
            unreachable!("process {k} is not waiting for the lease")
        };
        let outage = self.procs[k].outage_until > now;
        if self.procs[k].lease.as_ref().is_some_and(|h| !self.holds(h)) {
            // It ran out before the state could be read.
            self.procs[k].lease = None;
        }
        if self.procs[k].lease.is_none() {
            if outage && self.procs[k].outage_lease {
                return;
            }
            match self.take_lease() {
                Some(h) => {
                    let receipt = h.receipt;
                    self.procs[k].lease = Some(h);
                    self.log(|| format!("process {k} takes the lease"));
                    self.schedule_keeper(k, receipt);
                }
                None => {
                    let looks_empty = self.sqs.lease.len() == 0 || self.chance(WRONG_EMPTY);
                    if !put && now >= since + TOKEN_MISSING_AFTER && looks_empty {
                        self.log(|| format!("process {k} puts a lease token"));
                        self.leasing.put += 1;
                        self.put_lease_token();
                        if let Role::Waiting { put, .. } = &mut self.procs[k].role {
                            *put = true;
                        }
                    }
                    return;
                }
            }
        }
        if outage {
            // The state read fails: tried again at the next step, while
            // the lease lasts (it is kept for a while without progress).
            return;
        }
        // The last holder's writes landed before its lease ran out, and so
        // before this read.
        let fresh = self.sqs.tags.clone();
        let Role::Waiting { state, .. } =
            std::mem::replace(&mut self.procs[k].role, Role::Down(now))
        else {
            unreachable!()
        };
        let restored = [state.map(|s| *s), fresh]
            .into_iter()
            .flatten()
            .max_by(|a, b| a.order().cmp(&b.order()));
        self.activate(k, restored.as_ref());
    }

    /// Process `k` becomes the active coordinator, from `restored`.
    pub(super) fn activate(&mut self, k: usize, restored: Option<&PublishedState>) {
        let c = self.new_coordinator(k, restored);
        self.procs[k].role = Role::Active(Box::new(c));
        self.procs[k].last_batch = self.now;
        if let Some(h) = &mut self.procs[k].lease {
            h.progress = self.now;
        }
    }

    pub(super) fn schedule_keeper(&mut self, k: usize, receipt: u64) {
        let Some(h) = &self.procs[k].lease else {
            return;
        };
        if let Some(sent) = h.extending {
            let lands = self.request() + self.delay();
            let after = (sent + lands).saturating_sub(self.now);
            self.schedule(after, Actor::Keeper(k, receipt));
        } else if let Some(t) = h.lease.poll_timeout() {
            let after = (t.as_millis() as u64).saturating_sub(self.now);
            self.schedule(after, Actor::Keeper(k, receipt));
        }
    }

    /// The keeper of process `k`'s lease (the token `receipt`): sends an
    /// extension when one is due, and takes in its answer when it lands.
    pub(super) fn step_keeper(&mut self, k: usize, receipt: u64) {
        let now = self.now;
        let Some(mut h) = self.procs[k].lease.take_if(|h| h.receipt == receipt) else {
            // A lease this process no longer holds.
            return;
        };
        if let Some(sent) = h.extending.take() {
            // The extension lands: SQS handles it now, and answers.
            let unreachable = self.procs[k].outage_lease && self.procs[k].outage_until > sent;
            if unreachable || self.chance(self.faults.lease_fail) {
                self.leasing.failed += 1;
                h.lease.handle_extend_failed(at(now));
            } else {
                let term = self.term();
                match self.change_lease_visibility(receipt, term) {
                    Ok(()) => h.lease.handle_extended(at(sent)),
                    Err(why) => {
                        self.leasing.refused += 1;
                        self.log(|| format!("process {k}'s extension is refused: {why:?}"));
                        h.lease.handle_lost();
                    }
                }
            }
        } else if now >= h.progress + STALL && h.lease.is_held(at(now)) {
            // No progress: let it run out.
            h.lease.handle_extend_failed(at(now));
        } else if h.lease.poll_extend(at(now)) {
            h.extending = Some(now);
        }
        self.procs[k].lease = Some(h);
        self.schedule_keeper(k, receipt);
    }

    /// Ghost: no two coordinators hold the lease at once (each by its own
    /// machine, on its own clock).
    pub(super) fn check_one_holder(&self) {
        let processes = self
            .procs
            .iter()
            .filter(|p| p.lease.as_ref().is_some_and(|h| self.holds(h)))
            .count();
        let holders = processes + self.lambda.holders(self.now);
        if holders > 1 {
            self.fail(&format!("{holders} coordinators hold the lease at once"));
        }
    }
}
