//! FIFO receive retries: `ReceiveRequestAttemptId`.
//!
//! SQS deduplicates `ReceiveMessage` calls on FIFO queues: if the answer of a receive
//! is lost, a retry with the same `ReceiveRequestAttemptId` gets the same messages and
//! receipt handles, and resets their visibility timeout (Amazon SQS API Reference,
//! `ReceiveMessage`, `ReceiveRequestAttemptId`). The queue remembers every receive
//! that put messages in flight under an attempt id, for 5 minutes after it:
//!
//! * a retry while all of its messages are still in flight under that receive (none
//!   deleted, none with its visibility changed, none lapsed and received again)
//!   answers them again, with the same receipt handles and receive counts, and
//!   restarts their visibility timeout at the retry (with the retry's
//!   `VisibilityTimeout`, or the queue's);
//! * otherwise ("It is possible to retry ... if none of the messages have been
//!   modified") the remembered receive is forgotten and the call is a new receive,
//!   remembered under the same id in turn.
//!
//! An empty answer is not remembered, so a long poll keeps looking, and a retry of a
//! lost empty answer is simply a new receive. Standard queues ignore the id.

use std::collections::{HashMap, VecDeque};

use super::{DEDUP_WINDOW, Millis, Queue, ReceiptHandle, ReceiveOutcome, State, secs};
use crate::error::{Result, SqsError};

/// Longest `ReceiveRequestAttemptId`, characters.
pub const MAX_ATTEMPT_ID: usize = 128;

/// Checks a `ReceiveRequestAttemptId`: 1 to 128 characters, each a letter, a digit
/// or ASCII punctuation (`!"#$%&'()*+,-./:;<=>?@[\]^_`{|}~`), as SQS documents.
pub fn validate_attempt_id(id: &str) -> Result<()> {
    let ok =
        !id.is_empty() && id.len() <= MAX_ATTEMPT_ID && id.bytes().all(|b| b.is_ascii_graphic());
    if ok {
        Ok(())
    } else {
        Err(SqsError::invalid_parameter(format!(
            "Value for parameter ReceiveRequestAttemptId is invalid. Reason: Must be 1 to {MAX_ATTEMPT_ID} characters of a-z, A-Z, 0-9 and punctuation."
        )))
    }
}

/// One message of a remembered receive.
#[derive(Clone, Copy, Debug)]
struct Taken {
    seq: u64,
    /// The message's receive count after this receive: its receipt handle.
    receive: u32,
    /// The end of its visibility timeout as this receive (or its last retry) set it;
    /// any other value means its visibility was changed since. (A change that lands on
    /// the very same millisecond goes unnoticed; it changed nothing either.)
    due: Millis,
}

#[derive(Debug)]
struct Attempt {
    expires_at: Millis,
    taken: Vec<Taken>,
}

/// A queue's remembered receives, by attempt id, and their expiry order.
#[derive(Debug, Default)]
pub(super) struct Attempts {
    by_id: HashMap<Box<str>, Attempt>,
    expiry: VecDeque<(Millis, Box<str>)>,
}

impl Attempts {
    /// Forgets the receives of more than 5 minutes ago.
    pub(super) fn expire(&mut self, now: Millis) {
        while let Some((expires_at, _)) = self.expiry.front() {
            if *expires_at > now {
                break;
            }
            if let Some((_, id)) = self.expiry.pop_front() {
                // An id used again after it was forgotten has a newer entry: keep it.
                if self.by_id.get(&id).is_some_and(|a| a.expires_at <= now) {
                    self.by_id.remove(&id);
                }
            }
        }
    }

    pub(super) fn clear(&mut self) {
        self.by_id.clear();
        self.expiry.clear();
    }

    /// How many receives are remembered.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.by_id.len()
    }
}

impl Queue {
    /// `ReceiveMessage` with a `ReceiveRequestAttemptId`.
    ///
    /// On a FIFO queue, receives that put messages in flight are remembered by
    /// attempt id for 5 minutes ([`DEDUP_WINDOW`]). The retry of a remembered
    /// receive whose messages are all still in flight under it (none deleted, none
    /// with its visibility changed or lapsed) answers the same deliveries, with the
    /// same receipt handles (at most `max` of them), and restarts their visibility
    /// timeout at `now`. Anything else is [`Queue::receive`], remembered under
    /// `attempt_id` in turn. An invalid id (see [`validate_attempt_id`]) fails with
    /// `InvalidParameterValue`.
    ///
    /// A standard queue ignores the id: this is [`Queue::receive`].
    pub fn receive_attempt(
        &mut self,
        attempt_id: &str,
        max: usize,
        visibility_timeout: Option<u32>,
        now: Millis,
    ) -> Result<ReceiveOutcome> {
        if !self.is_fifo() {
            return self.receive(max, visibility_timeout, now);
        }
        validate_attempt_id(attempt_id)?;
        let timeout = self.receive_timeout(max, visibility_timeout)?;
        self.advance(now);
        let now = self.clock;
        if let Some(attempt) = self.attempts.by_id.get(attempt_id) {
            if attempt.taken.iter().all(|t| self.still_taken(t)) {
                return Ok(self.retry(attempt_id, max, timeout, now));
            }
            self.attempts.by_id.remove(attempt_id);
        }
        let outcome = self.receive(max, visibility_timeout, now)?;
        let taken: Vec<Taken> = outcome
            .deliveries
            .iter()
            .filter_map(|d| {
                let handle = ReceiptHandle::decode(&d.receipt_handle)?;
                let message = self.messages.get(&handle.seq)?;
                (message.state == State::InFlight).then_some(Taken {
                    seq: handle.seq,
                    receive: handle.receive,
                    due: message.due,
                })
            })
            .collect();
        if !taken.is_empty() {
            let expires_at = now + DEDUP_WINDOW;
            let id: Box<str> = attempt_id.into();
            self.attempts.expiry.push_back((expires_at, id.clone()));
            self.attempts
                .by_id
                .insert(id, Attempt { expires_at, taken });
        }
        Ok(outcome)
    }

    /// Whether a remembered message is still in flight under the receive that took it,
    /// its visibility untouched since.
    fn still_taken(&self, taken: &Taken) -> bool {
        self.messages.get(&taken.seq).is_some_and(|m| {
            m.state == State::InFlight && m.receive_count == taken.receive && m.due == taken.due
        })
    }

    /// Answers remembered receive `attempt_id` again (every message of it checked by
    /// [`Queue::still_taken`]) and restarts the visibility timeout of its messages.
    fn retry(&mut self, attempt_id: &str, max: usize, timeout: u32, now: Millis) -> ReceiveOutcome {
        let taken = self
            .attempts
            .by_id
            .get(attempt_id)
            .map(|a| a.taken.clone())
            .unwrap_or_default();
        let mut renewed = Vec::with_capacity(taken.len());
        for mut t in taken {
            let Some(message) = self.messages.get_mut(&t.seq) else {
                continue;
            };
            self.in_flight.remove(&(message.due, t.seq));
            if timeout == 0 {
                // As a receive with timeout 0: visible at once, nothing blocks the
                // group, and nothing is left to retry.
                self.release_group(t.seq);
                self.make_visible(t.seq);
            } else {
                message.due = now + secs(timeout);
                self.in_flight.insert((message.due, t.seq));
                t.due = message.due;
            }
            renewed.push(t);
        }
        let deliveries = renewed
            .iter()
            .take(max)
            .filter_map(|t| self.delivery(t.seq))
            .collect();
        if let Some(attempt) = self.attempts.by_id.get_mut(attempt_id) {
            attempt.taken = renewed;
        }
        ReceiveOutcome {
            deliveries,
            dead_letters: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{NewMessage, QueueAttributes};
    use super::*;

    const T0: Millis = 1_700_000_000_000;
    const S: Millis = 1000;

    fn fifo() -> Queue {
        let attrs = QueueAttributes::for_new_queue(
            "q.fifo",
            [("FifoQueue", "true"), ("ContentBasedDeduplication", "true")],
        )
        .unwrap();
        let mut q = Queue::new("q.fifo", attrs, 9, T0);
        for (body, group) in [("a1", "A"), ("a2", "A"), ("b1", "B")] {
            q.send(NewMessage::new(body).in_group(group, None), T0)
                .unwrap();
        }
        q
    }

    fn handles(outcome: &ReceiveOutcome) -> Vec<(&str, &str)> {
        outcome
            .deliveries
            .iter()
            .map(|d| (&*d.body, d.receipt_handle.as_str()))
            .collect()
    }

    #[test]
    fn a_retry_answers_the_same_deliveries_and_restarts_their_visibility() {
        let mut q = fifo();
        let first = q.receive_attempt("x", 10, Some(30), T0).unwrap();
        assert_eq!(
            first
                .deliveries
                .iter()
                .map(|d| &*d.body)
                .collect::<Vec<_>>(),
            ["a1", "a2", "b1"]
        );
        let retry = q.receive_attempt("x", 10, Some(30), T0 + 20 * S).unwrap();
        assert_eq!(handles(&retry), handles(&first));
        assert_eq!(
            retry.deliveries, first.deliveries,
            "same receive counts too"
        );
        // Visibility restarted at the retry: hidden past the first receive's 30 s.
        assert!(
            q.receive(10, None, T0 + 45 * S)
                .unwrap()
                .deliveries
                .is_empty()
        );
        assert_eq!(q.next_event(), Some(T0 + 50 * S));
        let again = q.receive(10, None, T0 + 50 * S).unwrap();
        assert_eq!(again.deliveries.len(), 3);
        assert!(again.deliveries.iter().all(|d| d.receive_count == 2));
    }

    #[test]
    fn another_id_gets_nothing_of_a_locked_group() {
        let mut q = fifo();
        let first = q.receive_attempt("x", 1, Some(30), T0).unwrap();
        assert_eq!(first.deliveries[0].body.as_ref(), "a1");
        let other = q.receive_attempt("y", 10, Some(30), T0 + S).unwrap();
        assert_eq!(
            other
                .deliveries
                .iter()
                .map(|d| &*d.body)
                .collect::<Vec<_>>(),
            ["b1"],
            "group A is locked by a1"
        );
        let retry = q.receive_attempt("x", 1, Some(30), T0 + 2 * S).unwrap();
        assert_eq!(handles(&retry), handles(&first));
    }

    #[test]
    fn a_modified_receive_is_forgotten_and_the_retry_receives_anew() {
        // Deleted.
        let mut q = fifo();
        let first = q.receive_attempt("x", 1, Some(30), T0).unwrap();
        q.delete(&first.deliveries[0].receipt_handle, T0 + S)
            .unwrap();
        let retry = q.receive_attempt("x", 1, Some(30), T0 + 2 * S).unwrap();
        assert_eq!(retry.deliveries[0].body.as_ref(), "a2");
        // The new receive is what the id names now.
        let again = q.receive_attempt("x", 1, Some(30), T0 + 3 * S).unwrap();
        assert_eq!(handles(&again), handles(&retry));

        // Visibility changed (extended): the old handle is not answered again.
        let mut q = fifo();
        let first = q.receive_attempt("x", 1, Some(30), T0).unwrap();
        q.change_visibility(&first.deliveries[0].receipt_handle, 60, T0 + S)
            .unwrap();
        let retry = q.receive_attempt("x", 1, Some(30), T0 + 2 * S).unwrap();
        assert_eq!(
            retry.deliveries[0].body.as_ref(),
            "b1",
            "group A still locked"
        );

        // Visibility lapsed: received anew, with a new handle.
        let mut q = fifo();
        let first = q.receive_attempt("x", 1, Some(30), T0).unwrap();
        let retry = q.receive_attempt("x", 1, Some(30), T0 + 30 * S).unwrap();
        assert_eq!(retry.deliveries[0].body.as_ref(), "a1");
        assert_eq!(retry.deliveries[0].receive_count, 2);
        assert_ne!(handles(&retry), handles(&first));
    }

    #[test]
    fn ids_are_remembered_for_five_minutes() {
        let mut q = fifo();
        let first = q.receive_attempt("x", 1, Some(600), T0).unwrap();
        let retry = q
            .receive_attempt("x", 1, Some(600), T0 + DEDUP_WINDOW - 1)
            .unwrap();
        assert_eq!(handles(&retry), handles(&first));
        let late = q
            .receive_attempt("x", 1, Some(600), T0 + DEDUP_WINDOW)
            .unwrap();
        assert_eq!(late.deliveries[0].body.as_ref(), "b1", "a1 is still hidden");
        assert_eq!(q.attempts.len(), 1, "the old receive is forgotten");
    }

    #[test]
    fn empty_answers_are_not_remembered() {
        let attrs = QueueAttributes::for_new_queue(
            "e.fifo",
            [("FifoQueue", "true"), ("ContentBasedDeduplication", "true")],
        )
        .unwrap();
        let mut q = Queue::new("e.fifo", attrs, 3, T0);
        assert!(
            q.receive_attempt("x", 1, None, T0)
                .unwrap()
                .deliveries
                .is_empty()
        );
        q.send(NewMessage::new("m").in_group("g", None), T0 + S)
            .unwrap();
        let got = q.receive_attempt("x", 1, None, T0 + 2 * S).unwrap();
        assert_eq!(got.deliveries[0].body.as_ref(), "m");
    }

    #[test]
    fn a_smaller_retry_lists_fewer_and_a_zero_timeout_releases_them() {
        let mut q = fifo();
        let first = q.receive_attempt("x", 10, Some(30), T0).unwrap();
        let one = q.receive_attempt("x", 1, Some(30), T0 + S).unwrap();
        assert_eq!(handles(&one), handles(&first)[..1]);
        let all = q.receive_attempt("x", 10, Some(30), T0 + 2 * S).unwrap();
        assert_eq!(
            handles(&all),
            handles(&first),
            "the rest stayed under the receive"
        );
        let released = q.receive_attempt("x", 10, Some(0), T0 + 3 * S).unwrap();
        assert_eq!(handles(&released), handles(&first));
        assert_eq!(q.counts(T0 + 3 * S).visible, 3);
    }

    #[test]
    fn attempt_ids_are_checked_on_fifo_queues_and_ignored_on_standard_ones() {
        let mut q = fifo();
        let longest = "!".repeat(MAX_ATTEMPT_ID);
        assert!(q.receive_attempt(&longest, 1, None, T0).is_ok());
        let punctuation = r##"!"#$%&'()*+,-./:;<=>?@[\]^_`{|}~azAZ09"##;
        assert!(validate_attempt_id(punctuation).is_ok());
        for bad in [
            &"a".repeat(MAX_ATTEMPT_ID + 1),
            "",
            "has space",
            "é",
            "tab\t",
        ] {
            let err = q.receive_attempt(bad, 1, None, T0).unwrap_err();
            assert_eq!(
                err.code,
                crate::error::ErrorCode::InvalidParameterValue,
                "{bad:?}"
            );
        }

        let mut standard = Queue::new("s", QueueAttributes::default(), 5, T0);
        for body in ["m1", "m2"] {
            standard.send(NewMessage::new(body), T0).unwrap();
        }
        let first = standard.receive_attempt("has space", 1, None, T0).unwrap();
        let second = standard.receive_attempt("has space", 1, None, T0).unwrap();
        assert_eq!(first.deliveries[0].body.as_ref(), "m1");
        assert_eq!(second.deliveries[0].body.as_ref(), "m2", "no deduplication");
    }
}
