//! The queue model: SQS semantics with no IO, no clock and no locks.
//!
//! A [`Queue`] is a plain state machine. Every input takes `now` (milliseconds since the
//! UNIX epoch) as an argument, so tests drive it with a virtual clock:
//!
//! 1. Feed inputs with [`Queue::send`], [`Queue::receive`] (or, with a FIFO retry
//!    token, [`Queue::receive_attempt`]), [`Queue::delete`],
//!    [`Queue::change_visibility`], [`Queue::purge`] (each first applies every timer that
//!    is due at `now`, see [`Queue::advance`]).
//! 2. Ask [`Queue::next_event`] when the queue changes by itself next (a delay ends or a
//!    visibility timeout lapses), so a driver can sleep exactly until then and wake its
//!    long pollers.
//! 3. Move the messages [`Queue::receive`] reports as dead-lettered into the target
//!    queue with [`Queue::accept_dead_letter`]; the model does not know other queues.
//!    A message-move task (dead-letter redrive) takes messages out one at a time with
//!    [`Queue::next_to_move`] and [`Queue::take_for_move`] and hands them to the
//!    destination's [`Queue::accept_moved`] (see `redrive`).
//!
//! # Data structures
//!
//! Every message is in exactly one of three ordered sets, so each request costs
//! O(log n) in the queue depth and counts are exact and O(1):
//!
//! * `visible`: ready messages by sequence number (FIFO order);
//! * `delayed`: `(due, seq)` for messages whose delay has not ended;
//! * `in_flight`: `(due, seq)` for received messages until their visibility lapses.
//!
//! Messages themselves live in a `BTreeMap` by sequence number. Sequence numbers grow
//! with the (clamped, monotonic) clock, so the first entry is always the oldest one and
//! retention expiry only ever looks at the front.

mod attempts;
mod attributes;
mod digest;
mod faults;
mod message;
mod names;
mod redrive;
mod validate;

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::fmt;

pub use attempts::{MAX_ATTEMPT_ID, validate_attempt_id};
pub use attributes::{DeduplicationScope, QueueAttributes, READ_ONLY, RedrivePolicy, SETTABLE};
pub use digest::{content_dedup_id, hex, md5_of_attributes, md5_of_body};
pub use message::{
    AttributeValue, Counts, Delivery, MessageAttribute, MessageId, NewMessage, ReceiveOutcome,
    SendReceipt, StoredMessage,
};
pub use names::{NAME_REUSE_DELAY, RecentlyDeleted};
pub use redrive::{MoveCandidate, MoveHorizon};
pub use validate::{is_valid_message_text, validate_tag};

use attempts::Attempts;
use message::{Extras, ReceiptHandle, State};
#[cfg(test)]
use validate::is_number;

use crate::error::{ErrorCode, Result, SqsError};

/// Milliseconds since the UNIX epoch: the model's only notion of time.
pub type Millis = u64;

/// How long FIFO deduplication ids are remembered (5 minutes).
pub const DEDUP_WINDOW: Millis = 5 * 60 * 1000;
/// Minimum time between two purges of one queue (60 s).
pub const PURGE_INTERVAL: Millis = 60 * 1000;
/// Most message attributes per message.
pub const MAX_MESSAGE_ATTRIBUTES: usize = 10;
/// Longest visibility timeout, seconds.
pub const MAX_VISIBILITY_TIMEOUT: u32 = 43_200;
/// Most messages in flight (received, neither deleted nor lapsed) per queue: SQS's
/// quota of 120,000 for standard and FIFO queues. [`Queue::set_in_flight_limit`]
/// lowers it for one queue.
pub const MAX_IN_FLIGHT: usize = 120_000;
/// Most tags per queue (SQS's docs call more "not recommended"; it refuses them).
pub const MAX_TAGS: usize = 50;
/// Longest tag key, characters.
pub const MAX_TAG_KEY: usize = 128;
/// Longest tag value, characters.
pub const MAX_TAG_VALUE: usize = 256;

struct DedupEntry {
    expires_at: Millis,
    message_id: MessageId,
    seq: u64,
}

/// One SQS queue. See the [module documentation](self) for how to drive it.
pub struct Queue {
    name: String,
    /// Random per creation, so handles of a deleted queue do not work on a new one.
    incarnation: u64,
    attributes: QueueAttributes,
    tags: BTreeMap<String, String>,
    created_at: Millis,
    last_modified_at: Millis,
    /// Latest `now` seen: the model never lets time run backwards.
    clock: Millis,
    next_seq: u64,
    messages: BTreeMap<u64, StoredMessage>,
    visible: BTreeSet<u64>,
    delayed: BTreeSet<(Millis, u64)>,
    in_flight: BTreeSet<(Millis, u64)>,
    /// FIFO: in-flight messages per group; a group with any is blocked.
    group_in_flight: HashMap<Box<str>, u32>,
    /// FIFO: remembered deduplication ids (survive delete) and their expiry order.
    dedup: HashMap<Box<str>, DedupEntry>,
    dedup_expiry: VecDeque<(Millis, Box<str>)>,
    /// FIFO: receives remembered by `ReceiveRequestAttemptId` (see `attempts`).
    attempts: Attempts,
    last_purge: Option<Millis>,
    /// Most messages in flight at once ([`MAX_IN_FLIGHT`] unless lowered).
    in_flight_limit: usize,
    /// Fault injection only: how many recently deleted messages to remember
    /// so that they can be delivered once more ([`Queue::resurrect`]); 0 = off.
    keep_deleted: usize,
    /// The remembered deleted messages, oldest first.
    graveyard: VecDeque<StoredMessage>,
}

impl fmt::Debug for Queue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Queue")
            .field("name", &self.name)
            .field("messages", &self.messages.len())
            .finish_non_exhaustive()
    }
}

fn secs(seconds: u32) -> Millis {
    Millis::from(seconds) * 1000
}

impl Queue {
    /// A new, empty queue. `incarnation` should be random: receipt handles of a queue
    /// that was deleted and created again must not match.
    pub fn new(name: &str, attributes: QueueAttributes, incarnation: u64, now: Millis) -> Self {
        Queue {
            name: name.to_owned(),
            incarnation,
            attributes,
            tags: BTreeMap::new(),
            created_at: now,
            last_modified_at: now,
            clock: now,
            next_seq: 1,
            messages: BTreeMap::new(),
            visible: BTreeSet::new(),
            delayed: BTreeSet::new(),
            in_flight: BTreeSet::new(),
            group_in_flight: HashMap::new(),
            dedup: HashMap::new(),
            dedup_expiry: VecDeque::new(),
            attempts: Attempts::default(),
            last_purge: None,
            in_flight_limit: MAX_IN_FLIGHT,
            keep_deleted: 0,
            graveyard: VecDeque::new(),
        }
    }

    /// The queue name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether this is a FIFO queue.
    pub fn is_fifo(&self) -> bool {
        self.attributes.fifo_queue
    }

    /// The settable attributes.
    pub fn attributes(&self) -> &QueueAttributes {
        &self.attributes
    }

    /// Creation time.
    pub fn created_at(&self) -> Millis {
        self.created_at
    }

    /// Time of the last attribute change.
    pub fn last_modified_at(&self) -> Millis {
        self.last_modified_at
    }

    /// Applies `SetQueueAttributes`: all or nothing.
    pub fn set_attributes<'a>(
        &mut self,
        attributes: impl IntoIterator<Item = (&'a str, &'a str)>,
        now: Millis,
    ) -> Result<()> {
        let mut updated = self.attributes.clone();
        for (name, value) in attributes {
            updated.set(name, value)?;
        }
        self.attributes = updated;
        self.last_modified_at = self.tick(now);
        Ok(())
    }

    /// Sets the most messages this queue lets be in flight at once (default
    /// [`MAX_IN_FLIGHT`]). Messages already in flight stay so; receives fail
    /// (standard) or come back empty (FIFO) until fewer are in flight.
    pub fn set_in_flight_limit(&mut self, limit: usize) {
        self.in_flight_limit = limit;
    }

    /// The most messages this queue lets be in flight at once.
    pub fn in_flight_limit(&self) -> usize {
        self.in_flight_limit
    }

    /// Whether as many messages are in flight as the limit allows, as of the
    /// last input (no timers are applied). A driver uses it to wake long polls
    /// waiting for room when a delete makes some.
    pub fn is_at_in_flight_limit(&self) -> bool {
        self.in_flight.len() >= self.in_flight_limit
    }

    /// The queue's tags.
    pub fn tags(&self) -> &BTreeMap<String, String> {
        &self.tags
    }

    /// Mutable access to the tags, unchecked ([`Queue::tag`] checks).
    pub fn tags_mut(&mut self) -> &mut BTreeMap<String, String> {
        &mut self.tags
    }

    /// `TagQueue` (and the tags of `CreateQueue`): adds or overwrites `tags`, all or
    /// nothing. Each must pass [`validate_tag`], and the queue may end up with at
    /// most [`MAX_TAGS`] tags.
    pub fn tag(&mut self, tags: impl IntoIterator<Item = (String, String)>) -> Result<()> {
        let tags: Vec<(String, String)> = tags.into_iter().collect();
        for (key, value) in &tags {
            validate_tag(key, value)?;
        }
        let mut new_keys: Vec<&str> = tags
            .iter()
            .map(|(k, _)| k.as_str())
            .filter(|k| !self.tags.contains_key(*k))
            .collect();
        new_keys.sort_unstable();
        new_keys.dedup();
        if self.tags.len() + new_keys.len() > MAX_TAGS {
            return Err(SqsError::invalid_parameter(format!(
                "Too many tags added for queue {}: a queue can have at most {MAX_TAGS} tags.",
                self.name
            )));
        }
        self.tags.extend(tags);
        Ok(())
    }

    fn tick(&mut self, now: Millis) -> Millis {
        self.clock = self.clock.max(now);
        self.clock
    }

    /// Applies every timer due at `now`: ends delays, lapses visibility timeouts,
    /// drops messages past retention and forgets expired deduplication ids and
    /// receive attempt ids. Every input calls this first; call it directly only to
    /// observe the state at `now`.
    pub fn advance(&mut self, now: Millis) {
        let now = self.tick(now);
        while let Some(&(due, seq)) = self.delayed.first() {
            if due > now {
                break;
            }
            self.delayed.pop_first();
            self.make_visible(seq);
        }
        while let Some(&(due, seq)) = self.in_flight.first() {
            if due > now {
                break;
            }
            self.in_flight.pop_first();
            self.release_group(seq);
            self.make_visible(seq);
        }
        let retention = secs(self.attributes.message_retention_period);
        while let Some(entry) = self.messages.first_entry() {
            if entry.get().enqueued_at.saturating_add(retention) > now {
                break;
            }
            let seq = *entry.key();
            self.remove(seq);
        }
        while let Some((expires_at, _)) = self.dedup_expiry.front() {
            if *expires_at > now {
                break;
            }
            if let Some((_, key)) = self.dedup_expiry.pop_front() {
                // A key sent again after expiry has a newer entry; keep that one.
                if self.dedup.get(&key).is_some_and(|e| e.expires_at <= now) {
                    self.dedup.remove(&key);
                }
            }
        }
        self.attempts.expire(now);
    }

    fn make_visible(&mut self, seq: u64) {
        if let Some(message) = self.messages.get_mut(&seq) {
            message.state = State::Visible;
            self.visible.insert(seq);
        }
    }

    /// FIFO bookkeeping when an in-flight message stops being in flight.
    fn release_group(&mut self, seq: u64) {
        let Some(group) = self.messages.get(&seq).and_then(StoredMessage::group) else {
            return;
        };
        if let Some(count) = self.group_in_flight.get_mut(group) {
            *count -= 1;
            if *count == 0 {
                self.group_in_flight.remove(group);
            }
        }
    }

    /// Removes message `seq` from the queue, whatever its state.
    fn remove(&mut self, seq: u64) -> Option<StoredMessage> {
        let message = self.messages.get(&seq)?;
        match message.state {
            State::Visible => {
                self.visible.remove(&seq);
            }
            State::Delayed => {
                self.delayed.remove(&(message.due, seq));
            }
            State::InFlight => {
                self.in_flight.remove(&(message.due, seq));
                self.release_group(seq);
            }
        }
        self.messages.remove(&seq)
    }

    /// When the queue next changes by itself (a delay ends or a visibility timeout
    /// lapses); `None` if nothing is pending. Long pollers sleep until then.
    pub fn next_event(&self) -> Option<Millis> {
        let delayed = self.delayed.first().map(|&(due, _)| due);
        let in_flight = self.in_flight.first().map(|&(due, _)| due);
        match (delayed, in_flight) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Exact counts at `now`.
    pub fn counts(&mut self, now: Millis) -> Counts {
        self.advance(now);
        Counts {
            visible: self.visible.len(),
            in_flight: self.in_flight.len(),
            delayed: self.delayed.len(),
        }
    }

    fn sequence_number(&self, seq: u64) -> Option<String> {
        // 20 digits like SQS's, strictly increasing within the queue.
        self.is_fifo()
            .then(|| format!("{}", 10_000_000_000_000_000_000u128 + u128::from(seq)))
    }

    /// `SendMessage`.
    pub fn send(&mut self, message: NewMessage, now: Millis) -> Result<SendReceipt> {
        self.validate(&message)?;
        self.advance(now);
        let now = self.clock;
        let md5_of_body = md5_of_body(&message.body);
        let md5_of_system_attributes = md5_of_attributes(&message.system_attributes);
        let md5_of_attributes = md5_of_attributes(&message.attributes);

        let dedup_key = if self.is_fifo() {
            let id = match &message.deduplication_id {
                Some(id) => id.clone(),
                None => content_dedup_id(&message.body),
            };
            let key = match (self.attributes.deduplication_scope, &message.group_id) {
                (DeduplicationScope::MessageGroup, Some(group)) => format!("{group}\u{0}{id}"),
                _ => id,
            };
            if let Some(entry) = self.dedup.get(key.as_str()) {
                return Ok(SendReceipt {
                    message_id: entry.message_id,
                    md5_of_body,
                    md5_of_attributes,
                    md5_of_system_attributes,
                    sequence_number: self.sequence_number(entry.seq),
                    duplicate: true,
                });
            }
            Some(key.into_boxed_str())
        } else {
            None
        };

        let seq = self.next_seq;
        self.next_seq += 1;
        let message_id = MessageId::derive(self.incarnation, seq);
        if let Some(key) = dedup_key {
            let expires_at = now + DEDUP_WINDOW;
            self.dedup_expiry.push_back((expires_at, key.clone()));
            self.dedup.insert(
                key,
                DedupEntry {
                    expires_at,
                    message_id,
                    seq,
                },
            );
        }
        let delay = secs(
            message
                .delay_seconds
                .unwrap_or(self.attributes.delay_seconds),
        );
        let has_extras = !message.attributes.is_empty()
            || !message.system_attributes.is_empty()
            || message.group_id.is_some()
            || message.deduplication_id.is_some();
        let extras = has_extras.then(|| {
            Box::new(Extras {
                attributes: message.attributes,
                attributes_md5: md5_of_attributes,
                system_attributes: message.system_attributes,
                system_attributes_md5: md5_of_system_attributes,
                group_id: message.group_id.map(String::into_boxed_str),
                deduplication_id: message.deduplication_id.map(String::into_boxed_str),
                dead_letter_source: None,
            })
        });
        let (state, due) = if delay > 0 {
            self.delayed.insert((now + delay, seq));
            (State::Delayed, now + delay)
        } else {
            self.visible.insert(seq);
            (State::Visible, 0)
        };
        self.messages.insert(
            seq,
            StoredMessage {
                id: message_id,
                body: message.body.into_boxed_str(),
                body_md5: md5_of_body,
                sent_at: now,
                enqueued_at: now,
                first_receive_at: None,
                receive_count: 0,
                state,
                due,
                extras,
                resurrected: false,
            },
        );
        Ok(SendReceipt {
            message_id,
            md5_of_body,
            md5_of_attributes,
            md5_of_system_attributes,
            sequence_number: self.sequence_number(seq),
            duplicate: false,
        })
    }

    /// `ReceiveMessage` without waiting: up to `max` (1..=10) visible messages, made
    /// invisible for `visibility_timeout` seconds (the queue's default if `None`).
    ///
    /// On FIFO queues, groups with a message in flight are skipped and messages of one
    /// group come out in order.
    ///
    /// At most [`Queue::in_flight_limit`] messages are in flight at once: a receive
    /// delivers no more than there is room for, and with none left it fails with
    /// `OverLimit` on a standard queue (SQS's answer to a short poll; a long poll
    /// driver treats it as "nothing yet") and returns nothing on a FIFO queue. Messages that already had `maxReceiveCount` receives
    /// are moved out into [`ReceiveOutcome::dead_letters`] instead of being delivered.
    pub fn receive(
        &mut self,
        max: usize,
        visibility_timeout: Option<u32>,
        now: Millis,
    ) -> Result<ReceiveOutcome> {
        self.receive_from(max, visibility_timeout, now, 0)
    }

    /// [`Queue::receive`], but the scan for visible messages starts at the
    /// `start`-th visible message (modulo their number) and wraps around, so
    /// newer messages come out before older ones: the reordering a standard
    /// queue may do. `start = 0` is [`Queue::receive`]. Used by fault
    /// injection; FIFO queues ignore `start` (their order is guaranteed).
    pub fn receive_from(
        &mut self,
        max: usize,
        visibility_timeout: Option<u32>,
        now: Millis,
        start: usize,
    ) -> Result<ReceiveOutcome> {
        let timeout = self.receive_timeout(max, visibility_timeout)?;
        self.advance(now);
        let now = self.clock;
        // The in-flight quota: a receive with a visibility timeout of 0 puts nothing
        // in flight, so it is not limited.
        let room = if timeout == 0 {
            max
        } else {
            self.in_flight_limit.saturating_sub(self.in_flight.len())
        };
        if room == 0 {
            if self.is_fifo() {
                // FIFO queues answer no error at the quota: nothing more is delivered.
                return Ok(ReceiveOutcome::default());
            }
            return Err(SqsError::new(
                ErrorCode::OverLimit,
                format!(
                    "Too many messages in flight in queue {}: at most {} may be received and not yet deleted.",
                    self.name, self.in_flight_limit
                ),
            ));
        }
        let max = max.min(room);
        let max_receives = self
            .attributes
            .redrive_policy
            .as_ref()
            .map(|p| p.max_receive_count);
        let fifo = self.is_fifo();
        let mut outcome = ReceiveOutcome::default();
        // FIFO: groups this call already delivered from may continue, in order.
        let mut taken_groups: Vec<Box<str>> = Vec::new();
        // The scan covers `start_seq..` first, then wraps to `..start_seq`.
        let start_seq = if fifo || start == 0 || self.visible.is_empty() {
            0
        } else {
            self.visible
                .iter()
                .nth(start % self.visible.len())
                .copied()
                .unwrap_or(0)
        };
        let mut cursor = start_seq;
        // In the wrapped-around pass: stop before `start_seq`.
        let mut bound: Option<u64> = None;
        while outcome.deliveries.len() < max {
            let next = self.visible.range(cursor..).next().copied();
            let seq = match next {
                Some(seq) if bound.is_none_or(|b| seq < b) => seq,
                _ if bound.is_some() || start_seq == 0 => break,
                _ => {
                    bound = Some(start_seq);
                    cursor = 0;
                    continue;
                }
            };
            cursor = seq + 1;
            let Some(message) = self.messages.get(&seq) else {
                // Cannot happen: `visible` only holds stored messages. Heal and go on.
                self.visible.remove(&seq);
                continue;
            };
            if fifo {
                // Scanning past blocked groups is linear in their backlog; FIFO queues
                // with a huge blocked group are the one non-logarithmic case.
                if let Some(group) = message.group() {
                    let taken = taken_groups.iter().any(|g| &**g == group);
                    if !taken && self.group_in_flight.contains_key(group) {
                        continue;
                    }
                }
            }
            if max_receives.is_some_and(|limit| message.receive_count >= limit) {
                if let Some(dead) = self.remove(seq) {
                    outcome.dead_letters.push(dead);
                }
                continue;
            }
            self.visible.remove(&seq);
            let Some(message) = self.messages.get_mut(&seq) else {
                continue;
            };
            message.receive_count = message.receive_count.saturating_add(1);
            message.first_receive_at.get_or_insert(now);
            let group_id: Option<Box<str>> = message.group().map(Box::from);
            if timeout == 0 {
                // Visible again at once; with zero timeout nothing blocks the group.
                self.visible.insert(seq);
            } else {
                message.state = State::InFlight;
                message.due = now + secs(timeout);
                self.in_flight.insert((message.due, seq));
                if let Some(group) = &group_id {
                    *self.group_in_flight.entry(group.clone()).or_insert(0) += 1;
                }
            }
            if let Some(group) = group_id
                && !taken_groups.contains(&group)
            {
                taken_groups.push(group);
            }
            outcome.deliveries.extend(self.delivery(seq));
        }
        Ok(outcome)
    }

    /// Checks a receive's `MaxNumberOfMessages` and `VisibilityTimeout` and returns
    /// the timeout that applies (the queue's default if `None`).
    fn receive_timeout(&self, max: usize, visibility_timeout: Option<u32>) -> Result<u32> {
        if !(1..=10).contains(&max) {
            return Err(SqsError::invalid_parameter(format!(
                "Value {max} for parameter MaxNumberOfMessages is invalid. Reason: Must be between 1 and 10, if provided."
            )));
        }
        let timeout = visibility_timeout.unwrap_or(self.attributes.visibility_timeout);
        if timeout > MAX_VISIBILITY_TIMEOUT {
            return Err(SqsError::invalid_parameter(format!(
                "Value {timeout} for parameter VisibilityTimeout is invalid. Reason: Must be >= 0 and <= {MAX_VISIBILITY_TIMEOUT}, if provided."
            )));
        }
        Ok(timeout)
    }

    /// What a receive hands out for stored message `seq`, as of its latest receive
    /// (the receipt handle names that receive).
    fn delivery(&self, seq: u64) -> Option<Delivery> {
        let message = self.messages.get(&seq)?;
        let extras = message.extras.as_deref();
        Some(Delivery {
            message_id: message.id,
            receipt_handle: ReceiptHandle {
                incarnation: self.incarnation,
                seq,
                receive: message.receive_count,
            }
            .encode(),
            body: message.body.clone(),
            md5_of_body: message.body_md5,
            sent_at: message.sent_at,
            first_receive_at: message.first_receive_at.unwrap_or(self.clock),
            receive_count: message.receive_count,
            attributes: extras.map(|e| e.attributes.clone()).unwrap_or_default(),
            md5_of_attributes: extras.and_then(|e| e.attributes_md5),
            system_attributes: extras
                .map(|e| e.system_attributes.clone())
                .unwrap_or_default(),
            group_id: extras.and_then(|e| e.group_id.clone()),
            deduplication_id: extras.and_then(|e| e.deduplication_id.clone()),
            sequence_number: self.sequence_number(seq),
            dead_letter_source: extras.and_then(|e| e.dead_letter_source.clone()),
        })
    }

    /// Resolves a receipt handle to a stored message of this queue, or says why not.
    fn resolve(&self, handle: &str) -> Result<Option<u64>> {
        let parsed = ReceiptHandle::decode(handle)
            .filter(|h| h.incarnation == self.incarnation && h.seq < self.next_seq)
            .ok_or_else(|| SqsError::bad_handle(handle))?;
        match self.messages.get(&parsed.seq) {
            Some(message) if parsed.receive > message.receive_count => {
                Err(SqsError::bad_handle(handle))
            }
            Some(_) => Ok(Some(parsed.seq)),
            // Deleted, expired or moved to a dead-letter queue.
            None => Ok(None),
        }
    }

    /// `DeleteMessage`. A handle of a message that is already gone succeeds silently,
    /// as on SQS; so does an older handle of the same message (it deletes the message,
    /// which SQS documents it "might" do). A handle this queue never issued fails.
    pub fn delete(&mut self, handle: &str, now: Millis) -> Result<()> {
        self.advance(now);
        if let Some(seq) = self.resolve(handle)?
            && let Some(message) = self.remove(seq)
            && self.keep_deleted > 0
            && message.body.len() <= 64 * 1024
            && !message.resurrected
        {
            if self.graveyard.len() >= self.keep_deleted {
                self.graveyard.pop_front();
            }
            self.graveyard.push_back(message);
        }
        Ok(())
    }

    /// `ChangeMessageVisibility`: the message must be in flight; the new timeout counts
    /// from `now`. Zero makes it visible at once.
    pub fn change_visibility(&mut self, handle: &str, timeout: u32, now: Millis) -> Result<()> {
        if timeout > MAX_VISIBILITY_TIMEOUT {
            return Err(SqsError::invalid_parameter(format!(
                "Value {timeout} for parameter VisibilityTimeout is invalid. Reason: Must be >= 0 and <= {MAX_VISIBILITY_TIMEOUT}, if provided."
            )));
        }
        self.advance(now);
        let now = self.clock;
        let Some(seq) = self.resolve(handle)? else {
            return Err(SqsError::bad_handle(handle));
        };
        let Some(message) = self.messages.get_mut(&seq) else {
            return Err(SqsError::bad_handle(handle));
        };
        if message.state != State::InFlight {
            return Err(SqsError::new(
                ErrorCode::MessageNotInflight,
                "The message referred to isn't in flight.",
            ));
        }
        self.in_flight.remove(&(message.due, seq));
        if timeout == 0 {
            self.release_group(seq);
            self.make_visible(seq);
        } else {
            message.due = now + secs(timeout);
            self.in_flight.insert((message.due, seq));
        }
        Ok(())
    }

    /// `PurgeQueue`: deletes every message; allowed once per 60 s. FIFO deduplication
    /// ids are kept (they are not messages).
    pub fn purge(&mut self, now: Millis) -> Result<()> {
        self.advance(now);
        let now = self.clock;
        if let Some(last) = self.last_purge
            && now < last + PURGE_INTERVAL
        {
            return Err(SqsError::new(
                ErrorCode::PurgeQueueInProgress,
                format!(
                    "Only one PurgeQueue operation on {} is allowed every 60 seconds.",
                    self.name
                ),
            ));
        }
        self.last_purge = Some(now);
        self.messages.clear();
        self.visible.clear();
        self.delayed.clear();
        self.in_flight.clear();
        self.group_in_flight.clear();
        self.attempts.clear();
        Ok(())
    }
}

#[cfg(test)]
mod tests;
