//! Queue names derived from a barrier's name.
//!
//! A barrier `NAME` owns six queues, all created by `setup`:
//!
//! | queue | direction | purpose |
//! |---|---|---|
//! | `NAME-checkin` (`NAME-checkin.fifo` with `--fifo`) | participants → coordinator | check-ins and aborts; the barrier's configuration lives in its tags |
//! | `NAME-state` | coordinator → everyone | the coordinator's published state, with a copy of the configuration (see [`crate::record`]) |
//! | `NAME-release-0`, `NAME-release-1` | coordinator → participants | release and broken notices for even and odd generations |
//! | `NAME-dlq` (`NAME-dlq.fifo`) | coordinator → operators | malformed and foreign messages, moved aside |
//! | `NAME-lease.fifo` | coordinators | the lease token: the coordinator that holds it in flight is the one that decides (see [`crate::lease`]) |

pub use crate::config::{MAX_BARRIER_NAME, validate_barrier_name};

/// The names of a barrier's queues.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueueNames {
    /// Check-ins and aborts (participants → coordinator).
    pub checkin: String,
    /// Release notices for even (`[0]`) and odd (`[1]`) generations.
    pub release: [String; 2],
    /// Dead letters: messages the coordinator could not use.
    pub dead_letter: String,
    /// The coordinator's published state (always a standard queue).
    pub state: String,
    /// The coordinators' lease (always a FIFO queue).
    pub lease: String,
}

impl QueueNames {
    /// Derives the queue names of barrier `name`.
    pub fn new(name: &str, fifo: bool) -> Self {
        let sfx = if fifo { ".fifo" } else { "" };
        Self {
            checkin: format!("{name}-checkin{sfx}"),
            release: [format!("{name}-release-0"), format!("{name}-release-1")],
            dead_letter: format!("{name}-dlq{sfx}"),
            state: format!("{name}-state"),
            lease: format!("{name}-lease.fifo"),
        }
    }

    /// The release queue that carries notices for generation `gen`.
    pub fn release_for(&self, generation: u64) -> &str {
        &self.release[(generation % 2) as usize]
    }

    /// The queue names in creation order (the dead-letter queue first, since
    /// the check-in queue's redrive policy points at it).
    pub fn all(&self) -> [&str; 6] {
        [
            &self.dead_letter,
            &self.checkin,
            &self.release[0],
            &self.release[1],
            &self.state,
            &self.lease,
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_parity() {
        let q = QueueNames::new("job", false);
        assert_eq!(q.checkin, "job-checkin");
        assert_eq!(q.release_for(0), "job-release-0");
        assert_eq!(q.release_for(7), "job-release-1");
        let f = QueueNames::new("job", true);
        assert_eq!(f.checkin, "job-checkin.fifo");
        assert_eq!(f.dead_letter, "job-dlq.fifo");
        assert_eq!(f.release_for(2), "job-release-0");
        assert_eq!(
            (q.lease.as_str(), f.lease.as_str()),
            ("job-lease.fifo", "job-lease.fifo")
        );
        let longest = "x".repeat(MAX_BARRIER_NAME);
        assert!(
            QueueNames::new(&longest, true)
                .all()
                .iter()
                .all(|q| q.len() <= 80)
        );
    }

    #[test]
    fn barrier_name_rules() {
        assert!(validate_barrier_name("a-b_C9").is_ok());
        assert!(validate_barrier_name("").is_err());
        assert!(validate_barrier_name("has space").is_err());
        assert!(validate_barrier_name("x.fifo").is_err());
        assert!(validate_barrier_name(&"a".repeat(64)).is_ok());
        assert!(validate_barrier_name(&"a".repeat(65)).is_err());
    }
}
