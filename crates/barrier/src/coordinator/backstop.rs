//! When the active coordinator copies its state into the check-in queue's
//! tags (see [`crate::published`]): rarely, so that the account's tagging
//! quota is never in the way.

use std::time::Instant;

use sqs_barrier_core::state::PublishedState;

use crate::published::{BACKSTOP_EVERY, BACKSTOP_MEMBERSHIP};

/// When the copy of the state in tags was last written, and what it held.
pub(super) struct Backstop {
    at: Instant,
    /// The released frontier, break and roll version it recorded (`None`:
    /// the last copy failed).
    recorded: Option<(u64, bool, u64)>,
    pub(super) writing: bool,
}

fn backstop_key(state: &PublishedState) -> (u64, bool, u64) {
    (
        state.released_below,
        state.broken.is_some(),
        state.roll.as_ref().map_or(0, |r| r.v),
    )
}

impl Backstop {
    /// Starting from `restored`: the copy in tags (or the state queue) holds
    /// it already, so nothing is due before it changes.
    pub(super) fn new(restored: Option<&PublishedState>) -> Self {
        Self {
            at: Instant::now(),
            recorded: Some(restored.map_or((0, false, 0), backstop_key)),
            writing: false,
        }
    }

    /// Whether `state`, just published, is due for a copy in tags: a
    /// membership change after [`BACKSTOP_MEMBERSHIP`], any other change
    /// after [`BACKSTOP_EVERY`], and after a copy that failed (SQS
    /// throttled it), the next one after [`BACKSTOP_MEMBERSHIP`].
    pub(super) fn due(&self, state: &PublishedState) -> bool {
        if self.writing {
            return false;
        }
        let now = backstop_key(state);
        let since = self.at.elapsed();
        match self.recorded {
            None => since >= BACKSTOP_MEMBERSHIP,
            Some(was) => {
                (now.2 != was.2 && since >= BACKSTOP_MEMBERSHIP)
                    || (now != was && since >= BACKSTOP_EVERY)
            }
        }
    }

    pub(super) fn record(&mut self, state: &PublishedState) {
        self.at = Instant::now();
        self.recorded = Some(backstop_key(state));
        self.writing = true;
    }

    pub(super) fn failed(&mut self) {
        self.writing = false;
        self.recorded = None;
    }
}
