//! Messages between queues: into a dead-letter queue after `maxReceiveCount`
//! receives, and out of it again by a message-move task (dead-letter redrive).
//!
//! The model knows no other queue, so a move is three calls on two queues, with
//! neither lock held while the other is taken:
//!
//! 1. [`Queue::next_to_move`] on the source names the oldest message the task may
//!    take and the queue it was dead-lettered from (the default destination);
//! 2. [`Queue::take_for_move`] removes exactly that message, if it is still there and
//!    still visible (a consumer may have received it in between);
//! 3. [`Queue::accept_moved`] adds it to the destination as a new message.
//!
//! A task moves only what a consumer could receive at that moment: visible messages,
//! on a FIFO queue only of groups with nothing in flight (so a group's order holds).
//! Messages in flight or delayed stay where they are until they become visible, and
//! messages that arrive after the task started ([`MoveHorizon`]) are not part of it.

use super::{Extras, MessageId, Millis, Queue, State, StoredMessage};

/// The end of a message-move task's share of a queue: messages that arrive after the
/// task started are not moved by it (so a redrive into a queue whose consumers keep
/// failing cannot go round in circles).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MoveHorizon(u64);

/// The message a move task would take next, from [`Queue::next_to_move`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MoveCandidate {
    seq: u64,
    dead_letter_source: Option<Box<str>>,
}

impl MoveCandidate {
    /// The ARN of the queue the message was dead-lettered from, if it came into this
    /// queue that way: where a task without a destination returns it.
    pub fn dead_letter_source(&self) -> Option<&str> {
        self.dead_letter_source.as_deref()
    }
}

impl StoredMessage {
    fn extras_mut(&mut self) -> &mut Extras {
        self.extras.get_or_insert_with(Box::default)
    }
}

impl Queue {
    /// Takes in a message that `source_arn`'s queue dead-lettered after
    /// `maxReceiveCount` receives. It keeps its id, body, attributes, `SentTimestamp`
    /// and receive count, records `source_arn` (`DeadLetterQueueSourceArn`, and the
    /// destination of a redrive without one), and is visible at once. On a FIFO queue
    /// its deduplication id becomes its message id, as SQS does, so two messages that
    /// shared a deduplication id in the source stay two.
    pub fn accept_dead_letter(
        &mut self,
        mut message: StoredMessage,
        source_arn: &str,
        now: Millis,
    ) {
        let fifo = self.is_fifo();
        let id = message.id;
        let extras = message.extras_mut();
        extras.dead_letter_source = Some(source_arn.into());
        if fifo {
            extras.deduplication_id = Some(id.to_string().into_boxed_str());
        }
        self.take_back(message, now);
    }

    /// Puts a message that was taken out of this queue back in, unchanged and visible
    /// (a dead letter whose dead-letter queue is gone, a message delivered again by
    /// fault injection).
    pub fn take_back(&mut self, mut message: StoredMessage, now: Millis) {
        self.advance(now);
        let seq = self.next_seq;
        self.next_seq += 1;
        message.state = State::Visible;
        message.due = 0;
        message.enqueued_at = self.clock;
        self.visible.insert(seq);
        self.messages.insert(seq, message);
    }

    /// Where a message-move task that starts now stops: it moves only messages that
    /// are in the queue now.
    pub fn move_horizon(&self) -> MoveHorizon {
        MoveHorizon(self.next_seq)
    }

    /// The oldest message a move task bounded by `horizon` may take at `now`: visible,
    /// and on a FIFO queue of a group with no message in flight. `None` when there is
    /// none (messages in flight or delayed may still become visible later).
    pub fn next_to_move(&mut self, horizon: MoveHorizon, now: Millis) -> Option<MoveCandidate> {
        self.advance(now);
        let fifo = self.is_fifo();
        self.visible.range(..horizon.0).find_map(|seq| {
            let message = self.messages.get(seq)?;
            if fifo && self.group_blocked(message) {
                return None;
            }
            Some(MoveCandidate {
                seq: *seq,
                dead_letter_source: message
                    .extras
                    .as_ref()
                    .and_then(|e| e.dead_letter_source.clone()),
            })
        })
    }

    /// Removes the message `candidate` names, if it is still visible (and its group
    /// still unblocked): the caller then owns it and must hand it to a queue.
    pub fn take_for_move(
        &mut self,
        candidate: &MoveCandidate,
        now: Millis,
    ) -> Option<StoredMessage> {
        self.advance(now);
        let message = self.messages.get(&candidate.seq)?;
        if message.state != State::Visible || (self.is_fifo() && self.group_blocked(message)) {
            return None;
        }
        self.remove(candidate.seq)
    }

    /// Takes in a message moved here by a message-move task. Like every redriven
    /// message on SQS it is a new message: a new id, `SentTimestamp` and retention
    /// from `now`, no receives yet; body, message attributes, `AWSTraceHeader` and the
    /// FIFO group and deduplication ids stay. It is visible at once and is not checked
    /// against this queue's deduplication window. Returns its new id.
    pub fn accept_moved(&mut self, mut message: StoredMessage, now: Millis) -> MessageId {
        self.advance(now);
        let now = self.clock;
        let seq = self.next_seq;
        self.next_seq += 1;
        let id = MessageId::derive(self.incarnation, seq);
        message.id = id;
        message.sent_at = now;
        message.enqueued_at = now;
        message.first_receive_at = None;
        message.receive_count = 0;
        message.state = State::Visible;
        message.due = 0;
        message.resurrected = false;
        if let Some(extras) = message.extras.as_mut() {
            extras.dead_letter_source = None;
        }
        self.visible.insert(seq);
        self.messages.insert(seq, message);
        id
    }

    /// FIFO: whether `message`'s group has a message in flight.
    fn group_blocked(&self, message: &StoredMessage) -> bool {
        message
            .group()
            .is_some_and(|group| self.group_in_flight.contains_key(group))
    }
}

#[cfg(test)]
mod tests {
    use super::super::{NewMessage, QueueAttributes};
    use super::*;

    const T0: Millis = 1_700_000_000_000;
    const S: Millis = 1000;
    const SOURCE: &str = "arn:aws:sqs:us-east-1:000000000000:work";

    fn queue(name: &str, fifo: bool) -> Queue {
        let attributes = if fifo {
            QueueAttributes::for_new_queue(
                name,
                [("FifoQueue", "true"), ("ContentBasedDeduplication", "true")],
            )
            .unwrap()
        } else {
            QueueAttributes::default()
        };
        // Distinct incarnations, as random ones are: message ids differ per queue.
        let incarnation = name.bytes().map(u64::from).sum();
        Queue::new(name, attributes, incarnation, T0)
    }

    /// Sends `bodies` to a queue with `maxReceiveCount` 1 and receives each twice,
    /// so they land in the returned dead-letter queue.
    fn dead_letters(bodies: &[&str], fifo: bool) -> (Queue, Vec<MessageId>) {
        let suffix = if fifo { ".fifo" } else { "" };
        let mut source = queue(&format!("work{suffix}"), fifo);
        let policy = format!(
            r#"{{"deadLetterTargetArn":"arn:aws:sqs:us-east-1:000000000000:dlq{suffix}","maxReceiveCount":1}}"#
        );
        source
            .set_attributes([("RedrivePolicy", &*policy)], T0)
            .unwrap();
        let mut dlq = queue(&format!("dlq{suffix}"), fifo);
        let ids = bodies
            .iter()
            .map(|body| {
                let mut message = NewMessage::new(*body);
                if fifo {
                    message = message.in_group("g", Some(&format!("dedup-{body}")));
                }
                source.send(message, T0).unwrap().message_id
            })
            .collect();
        // The first receive delivers each message, the second dead-letters it.
        let mut t = T0;
        for _ in 0..2 {
            let out = source.receive(10, Some(0), t).unwrap();
            for m in out.dead_letters {
                dlq.accept_dead_letter(m, SOURCE, t);
            }
            t += S;
        }
        assert_eq!(dlq.counts(t).visible, bodies.len());
        (dlq, ids)
    }

    #[test]
    fn dead_letters_record_their_source_and_fifo_ones_their_id_as_dedup_id() {
        let (mut dlq, ids) = dead_letters(&["a"], false);
        let got = dlq.receive(1, None, T0 + 5 * S).unwrap();
        assert_eq!(got.deliveries[0].message_id, ids[0]);
        assert_eq!(
            got.deliveries[0].dead_letter_source.as_deref(),
            Some(SOURCE)
        );

        let (mut dlq, ids) = dead_letters(&["f"], true);
        let got = dlq.receive(1, None, T0 + 5 * S).unwrap();
        let dedup = got.deliveries[0].deduplication_id.as_deref();
        assert_eq!(dedup, Some(ids[0].to_string().as_str()));
        assert_eq!(got.deliveries[0].group_id.as_deref(), Some("g"));
    }

    #[test]
    fn a_move_takes_the_oldest_visible_message_and_it_arrives_as_a_new_one() {
        let (mut dlq, ids) = dead_letters(&["a", "b"], false);
        let mut target = queue("target", false);
        let t = T0 + 20 * S;
        let horizon = dlq.move_horizon();
        let first = dlq.next_to_move(horizon, t).unwrap();
        assert_eq!(first.dead_letter_source(), Some(SOURCE));
        let message = dlq.take_for_move(&first, t).unwrap();
        assert_eq!(&*message.body, "a");
        // Taken once only.
        assert!(dlq.take_for_move(&first, t).is_none());
        let new_id = target.accept_moved(message, t);
        assert_ne!(new_id, ids[0]);
        let got = target.receive(10, None, t).unwrap().deliveries;
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].message_id, new_id);
        assert_eq!((got[0].receive_count, got[0].sent_at), (1, t));
        assert_eq!(got[0].dead_letter_source, None);
        assert_eq!(dlq.counts(t).visible, 1);
    }

    #[test]
    fn a_move_leaves_in_flight_messages_and_later_arrivals_alone() {
        let (mut dlq, _) = dead_letters(&["a", "b"], false);
        let t = T0 + 20 * S;
        let horizon = dlq.move_horizon();
        // A consumer holds "a"; "late" arrives after the task started.
        let held = dlq.receive(1, Some(30), t).unwrap().deliveries;
        assert_eq!(&*held[0].body, "a");
        dlq.send(NewMessage::new("late"), t).unwrap();
        let next = dlq.next_to_move(horizon, t).unwrap();
        assert_eq!(&*dlq.take_for_move(&next, t).unwrap().body, "b");
        assert_eq!(dlq.next_to_move(horizon, t), None);
        // Once "a"'s visibility lapses it may be moved; "late" never is.
        let next = dlq.next_to_move(horizon, t + 30 * S).unwrap();
        assert_eq!(&*dlq.take_for_move(&next, t + 30 * S).unwrap().body, "a");
        assert_eq!(dlq.next_to_move(horizon, t + 30 * S), None);
        assert_eq!(dlq.counts(t + 30 * S).visible, 1);
    }

    #[test]
    fn a_candidate_received_in_between_is_not_taken() {
        let (mut dlq, _) = dead_letters(&["a"], false);
        let t = T0 + 20 * S;
        let candidate = dlq.next_to_move(dlq.move_horizon(), t).unwrap();
        assert_eq!(dlq.receive(1, Some(30), t).unwrap().deliveries.len(), 1);
        assert!(dlq.take_for_move(&candidate, t).is_none());
        assert_eq!(dlq.counts(t).in_flight, 1);
    }

    #[test]
    fn fifo_moves_skip_groups_with_a_message_in_flight() {
        let mut dlq = queue("dlq.fifo", true);
        let t = T0;
        for (body, group) in [("g1-a", "g1"), ("g1-b", "g1"), ("g2-a", "g2")] {
            dlq.send(NewMessage::new(body).in_group(group, None), t)
                .unwrap();
        }
        let horizon = dlq.move_horizon();
        let held = dlq.receive(1, Some(30), t).unwrap().deliveries;
        assert_eq!(&*held[0].body, "g1-a");
        let next = dlq.next_to_move(horizon, t).unwrap();
        let message = dlq.take_for_move(&next, t).unwrap();
        assert_eq!(&*message.body, "g2-a");
        assert_eq!(dlq.next_to_move(horizon, t), None, "g1-b waits behind g1-a");
        let mut target = queue("target.fifo", true);
        target.accept_moved(message, t);
        let got = target.receive(1, None, t).unwrap().deliveries;
        assert_eq!(got[0].group_id.as_deref(), Some("g2"));
        assert!(got[0].sequence_number.is_some());
    }
}
