//! The errors of this crate.

use std::time::Duration;

use sqs_barrier_core::wire::BreakCause;

/// Everything that can go wrong, from a barrier that was never set up to one
/// that broke.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The barrier's queues do not exist.
    #[error("barrier {barrier:?} is not set up at {endpoint}: set it up first")]
    NotSetUp {
        /// The barrier.
        barrier: String,
        /// The SQS endpoint asked.
        endpoint: String,
    },
    /// The barrier exists with other rules than requested.
    #[error(
        "barrier {barrier:?} already exists with different settings ({detail}); tear it down and wait 60 s (SQS reuses a deleted queue's name only after that), or choose another name"
    )]
    Conflict {
        /// The barrier.
        barrier: String,
        /// What differs.
        detail: String,
    },
    /// A configuration value is invalid.
    #[error(transparent)]
    Config(#[from] sqs_barrier_core::ConfigError),
    /// The member is not part of the barrier.
    #[error(transparent)]
    Participant(#[from] sqs_barrier_core::participant::ParticipantError),
    /// No AWS credentials could be found.
    #[error(
        "no AWS credentials found ({detail}); set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, AWS_PROFILE, or run where an IAM role is available"
    )]
    NoCredentials {
        /// What the credential chain said.
        detail: String,
    },
    /// No AWS region is configured.
    #[error(
        "no AWS region configured; set AWS_REGION (or AWS_DEFAULT_REGION) or a profile region, or give one"
    )]
    NoRegion,
    /// The endpoint could not be reached.
    #[error(
        "cannot reach SQS at {endpoint}: {detail}; check the endpoint URL (AWS_ENDPOINT_URL) and that the endpoint is running"
    )]
    Unreachable {
        /// The endpoint.
        endpoint: String,
        /// What failed.
        detail: String,
    },
    /// SQS refused the credentials or the request's permissions.
    #[error(
        "SQS at {endpoint} denied {operation}: {code}: {message}; check your credentials and IAM permissions"
    )]
    AccessDenied {
        /// The endpoint.
        endpoint: String,
        /// The operation.
        operation: &'static str,
        /// The error code.
        code: String,
        /// The service's message.
        message: String,
    },
    /// Any other SQS error.
    #[error("SQS {operation} failed at {endpoint}: {detail}")]
    Sqs {
        /// The endpoint.
        endpoint: String,
        /// The operation.
        operation: &'static str,
        /// The error, with its causes.
        detail: String,
    },
    /// The barrier's stored configuration or state is unreadable.
    #[error(
        "barrier {barrier:?} has corrupt metadata: {detail}; tear it down and set it up again 60 s later (SQS reuses a deleted queue's name only after that)"
    )]
    Corrupt {
        /// The barrier.
        barrier: String,
        /// What is wrong.
        detail: String,
    },
    /// The barrier was deleted and set up again under the same name since
    /// this process opened it: its queues now belong to another instance.
    #[error(
        "barrier {barrier:?} was deleted and set up again since this process opened it (instance {instance} is now {now}); open it again"
    )]
    Recreated {
        /// The barrier.
        barrier: String,
        /// The instance this process opened.
        instance: String,
        /// The instance its queues belong to now.
        now: String,
    },
    /// The barrier was set up by an earlier version of sqs-barrier: a
    /// queue this version needs (the state queue, the lease queue) is
    /// missing.
    #[error(
        "barrier {barrier:?} was set up by an earlier version of sqs-barrier: its queue {queue} is missing; set it up again with the same rules (that adds the queue and keeps everything else)"
    )]
    Outdated {
        /// The barrier.
        barrier: String,
        /// The missing queue.
        queue: String,
    },
    /// A coordinator's lease ran out before a request that only the lease
    /// holder may make was sent; it was not sent. Transient: the
    /// coordinator stands down, and decides again once it holds the lease.
    #[error(
        "barrier {barrier:?}: the coordinator lease ran out before the state write was sent; not written"
    )]
    LeaseRanOut {
        /// The barrier.
        barrier: String,
    },
    /// The wait timed out.
    #[error(
        "timed out after {timeout:.1?} waiting at phase {generation} of barrier {barrier:?}; {}",
        missing_text(missing)
    )]
    TimedOut {
        /// The barrier.
        barrier: String,
        /// The generation.
        generation: u64,
        /// The timeout.
        timeout: Duration,
        /// Who had not arrived, as far as the coordinator's last published
        /// state tells (`None`: unknown).
        missing: Option<Vec<String>>,
    },
    /// The barrier is broken (aborted, or its deadline passed).
    #[error("barrier {barrier:?} is broken at phase {generation} ({cause}); {}", missing_text(&Some(missing.clone())))]
    Broken {
        /// The barrier.
        barrier: String,
        /// The generation waited at.
        generation: u64,
        /// Why.
        cause: BreakCause,
        /// Who had not arrived when it broke.
        missing: Vec<String>,
    },
    /// No coordinator is alive.
    #[error("no live coordinator for barrier {barrier:?}: {} for {:.0} s by this host's clock; start one", heartbeat_text(*last_heartbeat_ms), silent_for.as_secs_f64())]
    CoordinatorSilent {
        /// The barrier.
        barrier: String,
        /// The generation waited at.
        generation: u64,
        /// The last heartbeat seen (ms since the Unix epoch, by the
        /// coordinator's clock).
        last_heartbeat_ms: Option<u64>,
        /// How long nothing new was published, by this host's clock.
        silent_for: Duration,
    },
    /// The member is not expected at the phase: it left, or a quorum
    /// release went on without it.
    #[error(
        "{member:?} is not a member of barrier {barrier:?} at phase {generation}: it left, or a quorum release went on without it; join the barrier again to take part"
    )]
    NotExpected {
        /// The barrier.
        barrier: String,
        /// The member.
        member: String,
        /// The generation waited at.
        generation: u64,
        /// The first generation that does not expect it, as far as the
        /// published state tells (0 once that is forgotten).
        since: u64,
    },
    /// The wait asked for the data gathered at the barrier, but passed on
    /// the coordinator's published state: the release notice that carried
    /// the data was gone (it lives 60 s) before this participant read it.
    #[error(
        "phase {generation} of barrier {barrier:?} was released, but its release notice, which carries the gathered data, expired before this member read it"
    )]
    GatherLost {
        /// The barrier.
        barrier: String,
        /// The generation released.
        generation: u64,
    },
    /// A join was refused, or not counted in time.
    #[error("could not join barrier {barrier:?}: {detail}")]
    Join {
        /// The barrier.
        barrier: String,
        /// Why.
        detail: String,
    },
    /// A Lambda record came from a queue that is not a barrier's check-in
    /// queue (the function is mapped to the wrong queue).
    #[error(
        "a record came from {source_arn}, which is not a barrier's check-in queue (NAME-checkin or NAME-checkin.fifo); map the function to check-in queues only"
    )]
    NotACheckinQueue {
        /// The record's `eventSourceARN`.
        source_arn: String,
    },
    /// A wait was cancelled (its task was dropped or the runtime shut down).
    #[error("the wait was cancelled")]
    Cancelled,
}

fn missing_text(missing: &Option<Vec<String>>) -> String {
    match missing {
        None => "who is missing is unknown (no coordinator state)".into(),
        Some(m) if m.is_empty() => "nobody was missing".into(),
        Some(m) if m.len() <= 20 => format!("missing: {}", m.join(", ")),
        Some(m) => format!("missing: {}, ... ({} in all)", m[..20].join(", "), m.len()),
    }
}

fn heartbeat_text(ms: Option<u64>) -> &'static str {
    match ms {
        None => "no coordinator state",
        Some(_) => "no new heartbeat",
    }
}

impl Error {
    /// Whether retrying later may succeed: the endpoint was unreachable or
    /// SQS failed in a way that is not about the request (throttling, 5xx
    /// after the SDK's own retries).
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Unreachable { .. } | Error::LeaseRanOut { .. } => true,
            Error::Sqs { detail, .. } => {
                !detail.contains("NonExistentQueue")
                    && !detail.contains("QueueDoesNotExist")
                    && !detail.starts_with("InvalidParameterValue")
                    && !detail.starts_with("MissingParameter")
            }
            _ => false,
        }
    }

    /// Whether SQS throttled the request (`RequestThrottled`,
    /// `ThrottlingException`, `OverLimit`, ...): worth retrying after a
    /// pause.
    pub fn is_throttled(&self) -> bool {
        match self {
            Error::Sqs { detail, .. } => [
                "RequestThrottled",
                "Throttling",
                "OverLimit",
                "TooManyRequests",
            ]
            .iter()
            .any(|code| detail.starts_with(code)),
            _ => false,
        }
    }

    /// Whether the error is about the infrastructure (SQS, credentials,
    /// setup) rather than the barrier's outcome.
    pub fn is_infrastructure(&self) -> bool {
        !matches!(
            self,
            Error::TimedOut { .. }
                | Error::Broken { .. }
                | Error::CoordinatorSilent { .. }
                | Error::NotExpected { .. }
                | Error::GatherLost { .. }
        )
    }
}

/// This crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
