//! The coordinator's tunables.

use std::time::Duration;

/// Tunables of the coordinator.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct CoordinatorOptions {
    /// How often the coordinator publishes its state when nothing changed
    /// while a generation is open: its heartbeat, read by participants,
    /// standbys and `status`. Twice as long when no generation is open.
    pub heartbeat: Duration,
    /// The heartbeat while a standby is watching (it probed within
    /// `watch_window`): short, so that the standby sees a death quickly.
    pub standby_heartbeat: Duration,
    /// How long a probe keeps the coordinator on `standby_heartbeat`.
    pub watch_window: Duration,
    /// The shortest interval between two state writes. Deletes of released
    /// check-ins wait for a write, so this bounds how long they stay.
    pub min_write_interval: Duration,
    /// How long a predecessor's held check-ins may stay hidden after it
    /// died: the check-in queue's visibility timeout. A coordinator breaks
    /// no generation by deadline before this long after its start, since
    /// until then it cannot know who arrived. (It cannot tell whether it has
    /// a predecessor: one may have died before it ever published a state.)
    pub restart_grace: Duration,
    /// Extra time after a generation's deadline before it breaks. 0 for a
    /// coordinator that runs on (its start is covered by `restart_grace`).
    /// A coordinator rebuilt for every batch (the Lambda handler) cannot
    /// see the check-ins another invocation holds, or those it handed
    /// back, until the queue's visibility timeout returns them: with this
    /// set to that timeout, a deadline never names a member whose check-in
    /// was on its way.
    pub deadline_slack: Duration,
    /// Whether `now` is wall-clock time on the scale of the published
    /// state's `heartbeat_ms` (ms since the Unix epoch), so that a restored
    /// open generation's age also counts the time since that state was
    /// written. A coordinator rebuilt for every batch (the Lambda handler)
    /// needs it: without it each invocation would count the generation's
    /// age from the last write, and a deadline would advance only by the
    /// invocations' own time. It compares the writer's clock with this
    /// one's: a skew of S moves a deadline by S. Off by default (a process
    /// that takes over counts from its own start, which only delays a
    /// deadline).
    pub age_since_write: bool,
    /// Whether this coordinator can keep the check-ins that carry data in
    /// the queue until their generation's release. A coordinator rebuilt
    /// for every batch (the Lambda handler) cannot: no invocation sees the
    /// check-ins the others hold, so none could hand out everyone's data.
    /// Without it, a check-in with data breaks the barrier with a cause
    /// that says so, rather than leave everyone waiting.
    pub holds_data: bool,
}

impl Default for CoordinatorOptions {
    fn default() -> Self {
        Self {
            heartbeat: Duration::from_secs(60),
            standby_heartbeat: Duration::from_secs(2),
            watch_window: Duration::from_secs(60),
            min_write_interval: Duration::from_millis(500),
            restart_grace: Duration::from_secs(5),
            deadline_slack: Duration::ZERO,
            age_since_write: false,
            holds_data: true,
        }
    }
}
