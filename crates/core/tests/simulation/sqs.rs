//! The simulation's model of SQS: the check-in queue (received with a
//! visibility timeout, deleted with the latest receipt handle, delivered
//! again after a delete now and then), the two release queues (read with a
//! visibility timeout of 0 by participants, swept by coordinators, notices
//! expiring after their retention), the tags that hold the published
//! state (every write lands through [`Sim::publish`], which keeps the
//! ghost records of drops and join answers) and the lease queue (a FIFO queue whose
//! tokens share one message group: [`LeaseQueue`]); with the faults
//! `Faults` turns on (duplicates, delays and reordering, empty receives).

use std::collections::HashMap;

use rand::Rng;
use sqs_barrier_core::coordinator::sweepable;
use sqs_barrier_core::participant::Notice;
use sqs_barrier_core::state::PublishedState;
use sqs_barrier_core::wire::Message;

use super::{NOTICE_RETENTION, Sim, VISIBILITY};

/// Most messages one receive returns.
const RECEIVE_MAX: usize = 10;

#[derive(Clone, Debug)]
pub(super) struct CheckinMsg {
    pub(super) id: u64,
    pub(super) body: String,
    pub(super) visible_at: u64,
    /// The receipt handle of the latest receive, if any.
    pub(super) receipt: Option<u64>,
    pub(super) deleted: bool,
    pub(super) resurrected: bool,
}

/// A message on a release queue. Participants receive with a visibility
/// timeout of 0 (a receive hides nothing but gives a new receipt handle); a
/// sweep receives with a visibility timeout, which hides it until
/// `visible_at`.
#[derive(Clone, Debug)]
pub(super) struct NoticeMsg {
    pub(super) id: u64,
    pub(super) body: String,
    pub(super) visible_at: u64,
    pub(super) expires_at: u64,
    /// The receipt handle of the latest receive, if any.
    pub(super) receipt: Option<u64>,
    pub(super) resurrected: bool,
    pub(super) kind: Kind,
}

/// What a message on a release queue is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    /// A `release` notice of this barrier instance.
    Release,
    /// A `broken` notice of this barrier instance.
    Broken,
    /// Anything else (junk, another instance's notice).
    Foreign,
}

/// The model of the barrier's queues and tags.
#[derive(Default)]
pub(super) struct Sqs {
    pub(super) checkin: Vec<CheckinMsg>,
    pub(super) release: [Vec<NoticeMsg>; 2],
    pub(super) tags: Option<PublishedState>,
    pub(super) lease: LeaseQueue,
    pub(super) next_id: u64,
}

/// A message of the lease queue: a token.
#[derive(Clone, Debug)]
pub(super) struct TokenMsg {
    id: u64,
    /// Receivable from this instant on (before it: in flight, if
    /// received, or not yet delivered).
    visible_at: u64,
    /// The receipt handle of the latest receive, if any.
    receipt: Option<u64>,
    /// How many times it was received (`ApproximateReceiveCount`, exact
    /// here): a receive reports it, this receive included.
    receives: u64,
}

/// A token as a receive returns it.
#[derive(Clone, Copy, Debug)]
pub(super) struct Received {
    /// The message id.
    pub(super) id: u64,
    pub(super) receipt: u64,
    /// Its receive count, this receive included.
    pub(super) receives: u64,
}

/// The lease queue (`NAME-lease.fifo`): every token is in the message
/// group `lease`. As SQS documents for a FIFO queue: while a message of a
/// group is in flight (received, its visibility timeout not lapsed, not
/// deleted) a receive returns no message of that group; otherwise it
/// returns the group's visible messages in order, up to 10, and puts them
/// all in flight; no message is delivered twice at once. A visibility
/// change counts from when SQS handles it, and is refused for a message
/// not in flight (`MessageNotInflight`); with the receipt handle of an
/// earlier receive of a message that another receive holds now, SQS may
/// accept it (here: half the time) or refuse it
/// (`ReceiptHandleIsInvalid`). A delete with an earlier receipt handle
/// deletes nothing. A receive reports how many times each token was
/// received (`ApproximateReceiveCount`), exactly.
#[derive(Default)]
pub(super) struct LeaseQueue {
    tokens: Vec<TokenMsg>,
    /// Every receipt handle given out, and its token.
    receipts: HashMap<u64, u64>,
}

/// Why SQS refused a visibility change of a token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Refused {
    /// `MessageNotInflight`: its visibility lapsed.
    NotInflight,
    /// `ReceiptHandleIsInvalid`: deleted, or received again since.
    InvalidReceipt,
}

impl LeaseQueue {
    /// The queue as `setup` leaves it: one token, visible.
    pub(super) fn with_token() -> Self {
        Self {
            tokens: vec![TokenMsg {
                id: 0,
                visible_at: 0,
                receipt: None,
                receives: 0,
            }],
            receipts: HashMap::new(),
        }
    }

    /// A token is in flight: the group is locked.
    fn locked(&self, now: u64) -> bool {
        self.tokens
            .iter()
            .any(|t| t.receipt.is_some() && t.visible_at > now)
    }

    /// How many tokens the queue holds (visible, in flight or on their way).
    pub(super) fn len(&self) -> usize {
        self.tokens.len()
    }
}

impl Sim {
    pub(super) fn send_checkin(&mut self, body: String) {
        let copies = if self.chance(self.faults.duplicate) {
            2
        } else {
            1
        };
        for _ in 0..copies {
            self.sqs.next_id += 1;
            let visible_at = self.now + self.delay();
            self.sqs.checkin.push(CheckinMsg {
                id: self.sqs.next_id,
                body: body.clone(),
                visible_at,
                receipt: None,
                deleted: false,
                resurrected: false,
            });
        }
    }

    /// Drops the notices older than the release queues' retention.
    pub(super) fn expire_notices(&mut self) {
        let now = self.now;
        for q in &mut self.sqs.release {
            q.retain(|n| n.expires_at > now);
        }
    }

    pub(super) fn measure_release_queues(&mut self) {
        let now = self.now;
        let mut in_flight = 0;
        for (q, msgs) in self.sqs.release.iter().enumerate() {
            let count = |kind| msgs.iter().filter(|n| n.kind == kind).count();
            self.max_stored[q] = self.max_stored[q].max(count(Kind::Release));
            self.max_broken[q] = self.max_broken[q].max(count(Kind::Broken));
            self.max_foreign[q] = self.max_foreign[q].max(count(Kind::Foreign));
            in_flight += msgs
                .iter()
                .filter(|n| n.receipt.is_some() && n.visible_at > now)
                .count();
        }
        self.max_in_flight = self.max_in_flight.max(in_flight);
    }

    /// Sends one notice to release queue `q` (two copies if duplicated).
    pub(super) fn send_notice(&mut self, q: usize, body: String) {
        let kind = match Message::decode(&body) {
            Ok(Message::Release { instance, .. }) if instance == self.cfg.instance => Kind::Release,
            Ok(Message::Broken { instance, .. }) if instance == self.cfg.instance => Kind::Broken,
            _ => Kind::Foreign,
        };
        if kind == Kind::Release && self.elastic.active {
            self.note_release(&body);
        }
        let copies = if self.chance(self.faults.duplicate) {
            2
        } else {
            1
        };
        for _ in 0..copies {
            self.sqs.next_id += 1;
            let visible_at = self.now + self.delay();
            self.sqs.release[q].push(NoticeMsg {
                id: self.sqs.next_id,
                body: body.clone(),
                visible_at,
                expires_at: self.now + NOTICE_RETENTION,
                receipt: None,
                resurrected: false,
                kind,
            });
        }
    }

    /// Deletes release-queue message `id`: with the latest receipt handle it
    /// is gone (and may be delivered once more, as AWS allows); with an
    /// older one it "might not" be deleted (here: half the time).
    pub(super) fn delete_notice(&mut self, q: usize, id: u64, receipt: u64) {
        let Some(i) = self.sqs.release[q].iter().position(|n| n.id == id) else {
            return;
        };
        if self.sqs.release[q][i].receipt != Some(receipt) && self.rng.random_bool(0.5) {
            self.missed_deletes += 1;
            return;
        }
        let msg = self.sqs.release[q].remove(i);
        if !msg.resurrected && self.chance(self.faults.resurrect) {
            self.sqs.next_id += 1;
            let visible_at = self.now + self.delay();
            self.sqs.release[q].push(NoticeMsg {
                id: self.sqs.next_id,
                visible_at,
                receipt: None,
                resurrected: true,
                ..msg
            });
        }
    }

    /// One receive of up to 10 visible messages with a visibility timeout
    /// of 0: nothing is hidden from the others, every message read gets a
    /// new receipt handle. What nobody needs is deleted (at the member's
    /// next step).
    pub(super) fn receive_notice(&mut self, m: usize, g: u64) {
        let q = (g % 2) as usize;
        let now = self.now;
        self.members[m].by_notice = false;
        if self.chance(self.faults.empty) || now < self.members[m].deaf_until {
            return;
        }
        let mut visible: Vec<usize> = (0..self.sqs.release[q].len())
            .filter(|&i| self.sqs.release[q][i].visible_at <= now)
            .collect();
        for i in (1..visible.len()).rev() {
            let j = self.rng.random_range(0..=i);
            visible.swap(i, j);
        }
        visible.truncate(10);
        let mut read = Vec::new();
        for i in visible {
            self.sqs.next_id += 1;
            let receipt = self.sqs.next_id;
            let msg = &mut self.sqs.release[q][i];
            msg.receipt = Some(receipt);
            read.push((msg.id, receipt, msg.body.clone()));
        }
        for (id, receipt, body) in read {
            if self.members[m].p.waiting_at().is_none() {
                break;
            }
            let verdict = self.members[m].p.handle_notice(&body);
            self.log(|| format!("member {m} reads a notice: {verdict:?}"));
            match verdict {
                Notice::Accepted => self.members[m].by_notice = true,
                Notice::Passed | Notice::Foreign(_) => {
                    self.stale_reads += 1;
                    let member = &mut self.members[m];
                    member.stale_now += 1;
                    self.max_stale_per_wait = self.max_stale_per_wait.max(member.stale_now);
                }
                // A member dropped at g may wait there after the others
                // passed g + 2 (`membership`).
                Notice::Later if self.elastic.active => {}
                // Phases here are consecutive: nobody can be released at
                // g + 2 while a member waits at g.
                Notice::Later => self.fail(&format!(
                    "member {m} waiting at {g} read a notice for a later generation: {body}"
                )),
            }
            if verdict.deletable() {
                self.members[m].deletes.push((q, id, receipt));
            }
        }
    }

    /// Carries out a coordinator's sweep of release queue `q`: receive what
    /// it holds with a visibility timeout (a sampled receive may miss
    /// some), delete what may go, make the rest visible again (which takes
    /// a request: hidden until then).
    pub(super) fn sweep(&mut self, q: usize, below: u64) {
        self.sweeps += 1;
        let now = self.now;
        let mut doomed = Vec::new();
        for i in 0..self.sqs.release[q].len() {
            if self.sqs.release[q][i].visible_at > now || self.chance(self.faults.empty) {
                continue;
            }
            self.sqs.next_id += 1;
            let receipt = self.sqs.next_id;
            let delay = self.delay();
            let msg = &mut self.sqs.release[q][i];
            msg.receipt = Some(receipt);
            if sweepable(&self.cfg, &msg.body, below) {
                doomed.push((msg.id, receipt));
            } else {
                msg.visible_at = now + delay;
            }
        }
        for (id, receipt) in doomed {
            self.delete_notice(q, id, receipt);
        }
    }

    /// Receives up to 10 visible check-ins, in any order, hidden for the
    /// queue's visibility timeout: (message id, receipt handle, body).
    pub(super) fn receive_checkins(&mut self) -> Vec<(u64, u64, String)> {
        let now = self.now;
        if self.chance(self.faults.empty) {
            return Vec::new();
        }
        let mut visible: Vec<usize> = (0..self.sqs.checkin.len())
            .filter(|&i| {
                let msg = &self.sqs.checkin[i];
                !msg.deleted && msg.visible_at <= now
            })
            .collect();
        for i in (1..visible.len()).rev() {
            let j = self.rng.random_range(0..=i);
            visible.swap(i, j);
        }
        visible.truncate(10);
        let mut got = Vec::new();
        for i in visible {
            self.sqs.next_id += 1;
            let receipt = self.sqs.next_id;
            let msg = &mut self.sqs.checkin[i];
            msg.receipt = Some(receipt);
            msg.visible_at = now + VISIBILITY;
            got.push((msg.id, receipt, msg.body.clone()));
        }
        got
    }

    /// A look at the check-in queue, as a resting coordinator takes one: a
    /// receive of one message with a visibility timeout of 0. Whether a
    /// check-in is visible; it hides nothing (the message it returned gets
    /// a new receipt handle, as any receive gives one).
    pub(super) fn look_at_checkins(&mut self) -> bool {
        let now = self.now;
        if self.chance(self.faults.empty) {
            return false;
        }
        let visible: Vec<usize> = (0..self.sqs.checkin.len())
            .filter(|&i| {
                let msg = &self.sqs.checkin[i];
                !msg.deleted && msg.visible_at <= now
            })
            .collect();
        let Some(&i) = visible.get(self.rng.random_range(0..visible.len().max(1))) else {
            return false;
        };
        self.sqs.next_id += 1;
        self.sqs.checkin[i].receipt = Some(self.sqs.next_id);
        true
    }

    /// A delete works only with the latest receipt handle. A deleted message
    /// may be delivered once more, as AWS allows.
    pub(super) fn delete_checkin(&mut self, receipt: u64) {
        let resurrect = self.chance(self.faults.resurrect);
        let now = self.now;
        let delay = self.delay();
        if let Some(msg) = self
            .sqs
            .checkin
            .iter_mut()
            .find(|m| m.receipt == Some(receipt) && !m.deleted)
        {
            msg.deleted = true;
            if resurrect && !msg.resurrected {
                let mut copy = msg.clone();
                copy.deleted = false;
                copy.resurrected = true;
                copy.receipt = None;
                copy.visible_at = now + delay;
                copy.id += 1_000_000_000;
                self.sqs.checkin.push(copy);
            }
        }
        self.sqs.checkin.retain(|m| !m.deleted);
    }

    /// Lands a state write: the published state is `state` from now on.
    /// Ghost (`membership`): whom the releases it records dropped, and
    /// every join a landed state answered must stay answered the same way
    /// in every later one, no position given to two processes.
    pub(super) fn publish(&mut self, state: PublishedState) {
        if self.elastic.active {
            self.note_published_drops(&state);
            self.check_join_answers(&state);
        }
        self.sqs.tags = Some(state);
    }

    /// A receive of the lease queue that hides what it returns for
    /// `visibility` ms: the tokens, first to last; none while one is in
    /// flight.
    pub(super) fn receive_lease(&mut self, visibility: u64) -> Vec<Received> {
        let now = self.now;
        if self.sqs.lease.locked(now) {
            return Vec::new();
        }
        let mut got = Vec::new();
        for i in 0..self.sqs.lease.tokens.len() {
            if got.len() == RECEIVE_MAX || self.sqs.lease.tokens[i].visible_at > now {
                continue;
            }
            self.sqs.next_id += 1;
            let receipt = self.sqs.next_id;
            let t = &mut self.sqs.lease.tokens[i];
            t.receipt = Some(receipt);
            t.visible_at = now + visibility;
            t.receives += 1;
            self.sqs.lease.receipts.insert(receipt, t.id);
            got.push(Received {
                id: t.id,
                receipt,
                receives: t.receives,
            });
        }
        got
    }

    /// `ChangeMessageVisibility` of a token to `timeout` ms from now.
    pub(super) fn change_lease_visibility(
        &mut self,
        receipt: u64,
        timeout: u64,
    ) -> Result<(), Refused> {
        let now = self.now;
        let Some(&id) = self.sqs.lease.receipts.get(&receipt) else {
            return Err(Refused::InvalidReceipt);
        };
        let Some(t) = self.sqs.lease.tokens.iter_mut().find(|t| t.id == id) else {
            return Err(Refused::InvalidReceipt);
        };
        let in_flight = t.receipt.is_some() && t.visible_at > now;
        if !in_flight {
            return Err(Refused::NotInflight);
        }
        if t.receipt != Some(receipt) && self.rng.random_bool(0.5) {
            return Err(Refused::InvalidReceipt);
        }
        t.visible_at = now + timeout;
        Ok(())
    }

    /// `DeleteMessage` of a token: only the latest receipt handle deletes.
    pub(super) fn delete_lease(&mut self, receipt: u64) {
        self.sqs.lease.tokens.retain(|t| t.receipt != Some(receipt));
    }

    /// `SendMessage` of a token (in the group `lease`).
    pub(super) fn put_lease_token(&mut self) {
        self.sqs.next_id += 1;
        let visible_at = self.now + self.delay();
        self.sqs.lease.tokens.push(TokenMsg {
            id: self.sqs.next_id,
            visible_at,
            receipt: None,
            receives: 0,
        });
    }

    /// A request's time: 5 to 100 ms.
    pub(super) fn request(&mut self) -> u64 {
        self.rng.random_range(5..=100)
    }
}
