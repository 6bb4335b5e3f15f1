//! Fault injection's hooks into a queue (see `crate::chaos`): a deleted message
//! delivered again, a visibility timeout lapsing early, a message visible late. Off
//! unless the endpoint injects faults.

use super::{Millis, Queue, State};

impl Queue {
    /// Fault injection: remember up to `n` deleted messages (and no more than
    /// 64 KiB of body each) so [`Queue::resurrect`] can deliver one again, as
    /// a standard queue may after a delete. 0 (the default) turns it off.
    pub fn keep_deleted(&mut self, n: usize) {
        self.keep_deleted = n;
        while self.graveyard.len() > n {
            self.graveyard.pop_front();
        }
    }

    /// Fault injection: makes the `pick`-th (modulo) remembered deleted
    /// message visible again, once, with its id, body and attributes. Returns
    /// whether there was one. Standard queues only.
    pub fn resurrect(&mut self, pick: usize, now: Millis) -> bool {
        if self.is_fifo() || self.graveyard.is_empty() {
            return false;
        }
        let index = pick % self.graveyard.len();
        let Some(mut message) = self.graveyard.remove(index) else {
            return false;
        };
        message.resurrected = true;
        self.take_back(message, now);
        true
    }

    /// Fault injection: the visibility timeout of the `pick`-th (modulo)
    /// in-flight message lapses now, so it is delivered again while its
    /// receiver still holds it. Returns whether a message was in flight.
    /// Standard queues only.
    pub fn redeliver_early(&mut self, pick: usize, now: Millis) -> bool {
        self.advance(now);
        if self.is_fifo() || self.in_flight.is_empty() {
            return false;
        }
        let Some(&(due, seq)) = self.in_flight.iter().nth(pick % self.in_flight.len()) else {
            return false;
        };
        self.in_flight.remove(&(due, seq));
        self.release_group(seq);
        self.make_visible(seq);
        true
    }

    /// Fault injection: the message sent last, if it is visible, becomes
    /// visible only `delay` ms from `now` (a late replica). Standard queues
    /// only. Returns whether it was held back.
    pub fn hold_back_last(&mut self, delay: Millis, now: Millis) -> bool {
        self.advance(now);
        let seq = self.next_seq.saturating_sub(1);
        if self.is_fifo() || delay == 0 || !self.visible.remove(&seq) {
            return false;
        }
        let due = self.clock + delay;
        if let Some(message) = self.messages.get_mut(&seq) {
            message.state = State::Delayed;
            message.due = due;
            self.delayed.insert((due, seq));
        }
        true
    }
}
