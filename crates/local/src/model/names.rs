//! Names of recently deleted queues: SQS refuses to create a queue under the name of
//! one deleted less than 60 seconds ago (`QueueDeletedRecently`).
//!
//! Pure like the rest of the model: the caller passes `now` and keeps one
//! [`RecentlyDeleted`] per endpoint, next to its registry of queues.

use std::collections::HashMap;

use super::Millis;
use crate::error::{ErrorCode, Result, SqsError};

/// How long the name of a deleted queue stays unusable (60 s).
pub const NAME_REUSE_DELAY: Millis = 60 * 1000;

/// The names of queues deleted within the last [`NAME_REUSE_DELAY`].
///
/// Call [`RecentlyDeleted::record`] when a queue is deleted and
/// [`RecentlyDeleted::check`] before a queue is created. Entries older than the delay
/// are dropped as new ones come, so it holds at most a minute's worth of deletions.
#[derive(Debug, Default)]
pub struct RecentlyDeleted {
    deleted_at: HashMap<String, Millis>,
}

impl RecentlyDeleted {
    /// An empty memory.
    pub fn new() -> Self {
        Self::default()
    }

    /// Remembers that queue `name` was deleted at `now`.
    pub fn record(&mut self, name: &str, now: Millis) {
        self.deleted_at
            .retain(|_, at| now < at.saturating_add(NAME_REUSE_DELAY));
        self.deleted_at.insert(name.to_owned(), now);
    }

    /// `QueueDeletedRecently` if a queue called `name` was deleted less than
    /// [`NAME_REUSE_DELAY`] before `now`.
    pub fn check(&mut self, name: &str, now: Millis) -> Result<()> {
        match self.deleted_at.get(name) {
            Some(at) if now < at.saturating_add(NAME_REUSE_DELAY) => Err(SqsError::new(
                ErrorCode::QueueDeletedRecently,
                "You must wait 60 seconds after deleting a queue before you can create another with the same name.",
            )),
            Some(_) => {
                self.deleted_at.remove(name);
                Ok(())
            }
            None => Ok(()),
        }
    }

    /// How many names are remembered (some may have expired since the last record).
    pub fn len(&self) -> usize {
        self.deleted_at.len()
    }

    /// Whether no name is remembered.
    pub fn is_empty(&self) -> bool {
        self.deleted_at.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: Millis = 1_700_000_000_000;

    #[test]
    fn a_deleted_name_is_blocked_for_60_seconds_and_only_that_name() {
        let mut names = RecentlyDeleted::new();
        names.check("q", T0).unwrap();
        names.record("q", T0);
        assert_eq!(
            names.check("q", T0).unwrap_err().code,
            ErrorCode::QueueDeletedRecently
        );
        assert_eq!(
            names
                .check("q", T0 + NAME_REUSE_DELAY - 1)
                .unwrap_err()
                .code,
            ErrorCode::QueueDeletedRecently
        );
        // Names are case-sensitive, like queue names.
        names.check("Q", T0 + 1).unwrap();
        names.check("q2", T0 + 1).unwrap();
        names.check("q", T0 + NAME_REUSE_DELAY).unwrap();
        // Deleting again starts a new minute.
        names.record("q", T0 + 100_000);
        assert!(names.check("q", T0 + 100_001).is_err());
    }

    #[test]
    fn old_entries_are_dropped_as_new_ones_come() {
        let mut names = RecentlyDeleted::new();
        for i in 0..100 {
            names.record(&format!("q{i}"), T0);
        }
        assert_eq!(names.len(), 100);
        names.record("late", T0 + NAME_REUSE_DELAY);
        assert_eq!(names.len(), 1);
        assert!(names.check("late", T0 + NAME_REUSE_DELAY).is_err());
    }
}
