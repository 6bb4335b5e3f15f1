//! What a process knows of a barrier it opened: its configuration and the
//! URLs of its queues. Every module that talks to the barrier's queues
//! takes it; only `admin` makes one.

use sqs_barrier_core::BarrierConfig;
use sqs_barrier_core::state::PublishedState;

/// The URLs of a barrier's queues.
#[derive(Clone, Debug)]
pub struct QueueUrls {
    /// The check-in queue.
    pub checkin: String,
    /// The release queues, by generation parity.
    pub release: [String; 2],
    /// The dead-letter queue.
    pub dead_letter: String,
    /// The state queue: the coordinator's published state.
    pub state: String,
    /// The lease queue: the token of the coordinator that decides.
    pub lease: String,
}

impl QueueUrls {
    /// The release queue of `generation`.
    pub fn release_for(&self, generation: u64) -> &str {
        &self.release[(generation % 2) as usize]
    }
}

/// A barrier that exists: its configuration and queues.
#[derive(Clone, Debug)]
pub struct BarrierInfo {
    /// The configuration `setup` stored.
    pub config: BarrierConfig,
    /// The queues.
    pub urls: QueueUrls,
    /// The coordinator's published state when the barrier was opened (read
    /// with the configuration), if any: who was expected where then.
    pub state: Option<PublishedState>,
}
