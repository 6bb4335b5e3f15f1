//! The coordinator's published state: when to write it, what it holds,
//! and what a write (or another coordinator's) means for this one.

use std::time::Duration;

use super::*;

impl<T> Coordinator<T> {
    /// The open generation whose arrivals the state publishes: the pinned
    /// one if any, else the lowest.
    pub(super) fn published_generation(&self) -> Option<u64> {
        self.open
            .iter()
            .find(|(_, o)| o.pinned)
            .or_else(|| self.open.iter().next())
            .map(|(g, _)| *g)
    }

    /// The heartbeat interval that fits what is going on: short while a
    /// standby watches, normal while a generation is open, twice as long
    /// while the barrier is idle.
    pub(super) fn interval(&self) -> Duration {
        if !self.standbys.is_empty() {
            self.opts.standby_heartbeat.min(self.opts.heartbeat)
        } else if self.open.is_empty() {
            2 * self.opts.heartbeat
        } else {
            self.opts.heartbeat
        }
    }

    pub(super) fn next_write(&self) -> Option<Duration> {
        if self.writing.is_some() || self.superseded.is_some() {
            return None;
        }
        let Some(last) = self.last_write else {
            return Some(Duration::ZERO);
        };
        if self.probed {
            Some(last)
        } else if self.version > self.durable && self.awaiting.len() >= 2 * self.roll.len() {
            // Episodes faster than the write interval: the check-ins that
            // wait for a write (in flight until it lands) would pile up with
            // the episode rate. Writing now keeps them within 2 N.
            Some(last)
        } else if self.version > self.durable {
            Some(last + self.opts.min_write_interval)
        } else {
            // Never later than the last write promised.
            Some(last + self.interval().min(self.promised))
        }
    }

    /// The state this coordinator would publish now.
    pub fn snapshot(&self, now: Duration) -> PublishedState {
        let mut st = PublishedState {
            v: 1,
            coordinator: self.id.clone(),
            term: self.term,
            heartbeat_ms: now.as_millis() as u64,
            seq: self.writes,
            heartbeat_every_ms: if self.promised.is_zero() {
                self.interval()
            } else {
                self.promised
            }
            .as_millis() as u64,
            stopped: false,
            standbys: self.standbys.keys().cloned().collect(),
            released_below: self.released_below,
            released_above: self.released_above.iter().copied().collect(),
            open: self.published_generation().map(|g| {
                let o = &self.open[&g];
                let mut data = o.data_expected.within(self.roll.len());
                for i in o.data.keys() {
                    data.insert(*i);
                }
                OpenGeneration {
                    generation: g,
                    arrived: o.arrived.clone(),
                    since_ms: o.since.as_millis() as u64,
                    age_ms: Some(now.saturating_sub(o.since).as_millis() as u64),
                    data: (!data.is_empty()).then_some(data),
                    quorum_age_ms: o
                        .quorum_at
                        .map(|t| now.saturating_sub(t).as_millis() as u64),
                }
            }),
            broken: self.broken.clone(),
            rejected: self.rejected,
            roll: self.roll.to_state(self.released_below),
        };
        st.v = st.needed_version();
        st
    }

    /// The state to publish when this coordinator stops cleanly: its last
    /// word, marked `stopped`, so that a standby takes over at once.
    pub fn final_snapshot(&self, now: Duration) -> PublishedState {
        PublishedState {
            stopped: true,
            ..self.snapshot(now)
        }
    }

    /// Reports that the state of `version` was published. Messages whose
    /// effect it records become deletable.
    pub fn handle_state_written(&mut self, version: u64) {
        self.writing = None;
        self.written = true;
        self.durable = self.durable.max(version);
        let durable = self.durable;
        let (done, keep): (Vec<_>, Vec<_>) =
            self.awaiting.drain(..).partition(|(v, _)| *v <= durable);
        self.awaiting = keep;
        let (ready, later): (Vec<_>, Vec<_>) = std::mem::take(&mut self.deferred)
            .into_iter()
            .partition(|(v, _, _)| *v <= durable);
        self.deferred = later;
        let sent = self.last_write.unwrap_or_default();
        for (_, g, body) in ready {
            self.notify(g, body, sent);
        }
        if !done.is_empty() {
            self.transmits
                .push_back(Transmit::Delete(done.into_iter().map(|(_, t)| t).collect()));
        }
    }

    /// Feeds a state published by the barrier's coordinators, as read back
    /// from the queue's tags: the driver reads it before each write.
    ///
    /// A coordinator writes only over a state it knows completely: its own
    /// last write, or, before its first write, the state it started from.
    /// Anything else was written by another coordinator that is (or was
    /// just now) active, whose records this one has not seen and would
    /// overwrite (tags are last-writer-wins). So it stands down
    /// ([`Event::Superseded`]; then it does nothing more): the driver hands
    /// its held check-ins back, and the other carries on with everything it
    /// published. Of two active coordinators the one that reads the other's
    /// write first stands down, so one stands back within a heartbeat.
    pub fn handle_state_observed(&mut self, state: &PublishedState, now: Duration) {
        self.begin(now);
        if self.superseded.is_some() || self.write_guard().allows(Some(state)) {
            return;
        }
        self.superseded = Some(state.coordinator.clone());
        self.events.push_back(Event::Superseded {
            by: state.coordinator.clone(),
        });
        // Its deletes and writes would undo the other's work; notices of
        // generations it counted complete are still true.
        self.transmits
            .retain(|t| matches!(t, Transmit::Notify { .. } | Transmit::DeadLetter { .. }));
    }

    /// What a driver that reads the published state and writes over it
    /// away from this machine (on another task, while it goes on counting)
    /// needs to know of it: whether the state it read lets the write go
    /// ahead. It stays true while the write is under way, since only the
    /// write's own outcome changes it ([`Self::handle_state_written`]).
    /// A state it does not allow goes to [`Self::handle_state_observed`],
    /// which stands this coordinator down.
    pub fn write_guard(&self) -> WriteGuard {
        WriteGuard {
            id: self.id.clone(),
            start: if self.written {
                None
            } else {
                self.expected.clone()
            },
        }
    }

    /// Reports that a state write failed. It is retried after
    /// [`CoordinatorOptions::min_write_interval`] if it had changes to
    /// publish, else at the next heartbeat.
    pub fn handle_state_write_failed(&mut self) {
        self.writing = None;
    }
}
