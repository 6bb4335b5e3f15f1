//! The coordinator as an AWS Lambda function: the driver of the core's
//! [`LambdaRound`] for one invocation.
//!
//! An SQS event source mapping long-polls a barrier's check-in queue and
//! invokes the function with a batch of records; a schedule invokes it
//! with `{"barrier": "NAME"}` (a *tick*). What an invocation decides is
//! the core's (`sqs_barrier_core::lambda`, whose documentation tells the
//! whole round): it rebuilds the coordinator from the published state,
//! feeds it the batch, writes the state, sends the notices once the write
//! recorded them, checks [`VERIFY_AFTER`] later that the write stood,
//! starts again from the newer state when another invocation won the race
//! ([`MAX_RACES`] rounds at most), and says which records go back in
//! `batchItemFailures`. This driver only carries out the reads, writes
//! and sends the round asks for and feeds their results back; the mapping
//! deletes the records not named.
//!
//! The configuration of each barrier is kept per warm function instance;
//! every state read checks that the barrier is still the instance it was
//! opened as, and one that was deleted and set up again under the same
//! name ([`Error::Recreated`]) is opened afresh and its records handled by
//! a new round.
//!
//! Nothing here decides anything about the protocol: the core does.
//!
//! `emulator` (with the feature `emulator`) runs this handler behind an
//! emulated event source mapping and schedule, outside AWS.

#[cfg(feature = "emulator")]
pub mod emulator;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use sqs_barrier_core::coordinator::Event as CoordinatorEvent;
use sqs_barrier_core::lambda::{self, Event as LambdaEvent, LambdaRound, Transmit};
// The round's tunables and bounds are the core's.
pub use sqs_barrier_core::lambda::{LambdaOptions, MAX_RACES, VERIFY_AFTER};
use sqs_barrier_core::state::PublishedState;
use tokio::sync::Mutex;

use crate::admin::{self, BarrierInfo};
use crate::clock::wall_now;
use crate::error::{Error, Result};
use crate::lease::Keeper;
use crate::notices;
use crate::published;
use crate::sqs::Sqs;

/// How long an invocation waits for the coordinators' lease before it
/// hands its batch back: other invocations hold it for well under a second
/// each; a crashed one's runs out within the lease's term (10 s), longer
/// than an invocation may wait (the function timeout is 5 s by default).
const LEASE_PATIENCE: Duration = Duration::from_secs(3);

/// One SQS record of an event source mapping's batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// The message id: what `batchItemFailures` names.
    pub message_id: String,
    /// The body.
    pub body: String,
    /// The queue it came from (`arn:aws:sqs:REGION:ACCOUNT:NAME-checkin`).
    pub event_source_arn: String,
    /// The FIFO message group, if any.
    pub message_group_id: Option<String>,
}

/// What an invocation did, for its response and its log.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct BatchOutcome {
    /// The records to name in `batchItemFailures`: kept, they come back
    /// after the queue's visibility timeout.
    pub failures: Vec<String>,
    /// Races lost to another invocation (each cost one more round).
    pub races: usize,
    /// Of `races`, those found at the re-read after a write: the write was
    /// erased by another invocation's (the others were found before
    /// writing).
    pub erased: usize,
    /// Generations released by this invocation.
    pub released: Vec<u64>,
    /// The core's events, in order (of every round, lost ones included).
    pub events: Vec<sqs_barrier_core::coordinator::Event>,
}

/// The barriers' queues, looked up once per warm function instance.
#[derive(Clone, Default)]
pub struct Barriers {
    known: Arc<Mutex<BTreeMap<String, BarrierInfo>>>,
}

impl Barriers {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    async fn open(&self, sqs: &Sqs, name: &str) -> Result<BarrierInfo> {
        if let Some(info) = self.known.lock().await.get(name) {
            return Ok(info.clone());
        }
        self.reopen(sqs, name).await
    }

    /// Opens barrier `name` afresh (it was set up again since it was
    /// cached).
    async fn reopen(&self, sqs: &Sqs, name: &str) -> Result<BarrierInfo> {
        let info = admin::open(sqs, name).await?;
        self.known
            .lock()
            .await
            .insert(name.to_owned(), info.clone());
        Ok(info)
    }
}

/// The barrier whose check-in queue `arn` is: its last `:`-separated part
/// is `NAME-checkin` or `NAME-checkin.fifo`.
pub fn barrier_of_arn(arn: &str) -> Result<String> {
    let queue = arn.rsplit(':').next().unwrap_or_default();
    queue
        .strip_suffix("-checkin")
        .or_else(|| queue.strip_suffix("-checkin.fifo"))
        .filter(|n| !n.is_empty())
        .map(str::to_owned)
        .ok_or_else(|| Error::NotACheckinQueue {
            source_arn: arn.to_owned(),
        })
}

/// Handles one batch of an event source mapping: the records of every
/// barrier in it, barrier by barrier. Returns the records to report as
/// failures. An `Err` means the whole batch comes back (the mapping
/// treats a failed invocation so), which is safe too.
pub async fn handle_batch(
    sqs: &Sqs,
    barriers: &Barriers,
    records: Vec<Record>,
    opts: &LambdaOptions,
) -> Result<BatchOutcome> {
    let mut by_barrier: BTreeMap<String, Vec<Record>> = BTreeMap::new();
    for r in records {
        by_barrier
            .entry(barrier_of_arn(&r.event_source_arn)?)
            .or_default()
            .push(r);
    }
    let mut outcome = BatchOutcome::default();
    for (name, records) in by_barrier {
        let one = coordinate_fresh(sqs, barriers, &name, &records, opts).await?;
        outcome.failures.extend(one.failures);
        outcome.races += one.races;
        outcome.erased += one.erased;
        outcome.released.extend(one.released);
        outcome.events.extend(one.events);
    }
    Ok(outcome)
}

/// Handles a scheduled tick for barrier `name`: publishes a heartbeat and
/// fires the deadline.
pub async fn handle_tick(
    sqs: &Sqs,
    barriers: &Barriers,
    name: &str,
    opts: &LambdaOptions,
) -> Result<BatchOutcome> {
    coordinate_fresh(sqs, barriers, name, &[], opts).await
}

/// [`coordinate`] with the cached configuration, or with a fresh one if
/// the barrier was set up again since it was cached.
async fn coordinate_fresh(
    sqs: &Sqs,
    barriers: &Barriers,
    name: &str,
    records: &[Record],
    opts: &LambdaOptions,
) -> Result<BatchOutcome> {
    let info = barriers.open(sqs, name).await?;
    // Boxed: the round is a large future, and two of them in one would
    // nest its type twice.
    match Box::pin(coordinate(sqs, &info, records, opts)).await {
        Err(Error::Recreated { .. }) => {
            tracing::info!(barrier = %name, "the barrier was set up again; opening it afresh");
            let info = barriers.reopen(sqs, name).await?;
            Box::pin(coordinate(sqs, &info, records, opts)).await
        }
        other => other,
    }
}

/// One barrier's records (or none, for a tick): drives the core's
/// [`LambdaRound`], carrying out the reads, writes and sends it asks for.
async fn coordinate(
    sqs: &Sqs,
    info: &BarrierInfo,
    records: &[Record],
    opts: &LambdaOptions,
) -> Result<BatchOutcome> {
    // Only the holder of the lease decides: invocations that overlap take
    // turns (each holds it for its round, well under a second), so no
    // write of one can erase another's and no two decide one generation.
    let base = format!("token-{}", info.config.instance);
    let lease_url = &info.urls.lease;
    let Some(lease) = crate::lease::wait_for(
        sqs,
        lease_url,
        Some(LEASE_PATIENCE),
        Some(LEASE_PATIENCE),
        &base,
    )
    .await?
    else {
        tracing::warn!(barrier = %info.config.name, "the coordinator lease was held for {LEASE_PATIENCE:?}; handing the batch back");
        return Ok(BatchOutcome {
            failures: all(records),
            ..BatchOutcome::default()
        });
    };
    let outcome = Box::pin(coordinate_holding(sqs, info, records, opts, &lease)).await;
    if lease.is_held() {
        lease.release().await;
    }
    outcome
}

/// [`coordinate`] once the lease is held: drives the core's
/// [`LambdaRound`], carrying out the reads, writes and sends it asks for,
/// while the lease lasts.
async fn coordinate_holding(
    sqs: &Sqs,
    info: &BarrierInfo,
    records: &[Record],
    opts: &LambdaOptions,
    lease: &Keeper,
) -> Result<BatchOutcome> {
    let mut opts = opts.clone();
    // No other invocation writes while this one holds the lease.
    opts.verify = false;
    let opts = &opts;
    let id = format!("{:08x}@lambda/{}", rand::random::<u32>(), function_name());
    let batch = records
        .iter()
        .map(|r| lambda::Record {
            token: r.message_id.clone(),
            body: r.body.clone(),
            group: r.message_group_id.clone(),
        })
        .collect();
    let mut round = LambdaRound::new(info.config.clone(), id, opts.clone(), batch);
    let mut outcome = BatchOutcome::default();
    // The configuration the state's writer went by: the same as the
    // cached one, but marked version 2 once that was done.
    let mut writer = info.clone();
    // The error of a failed state write: the round checks whether the
    // write took effect (then its notices go) before the invocation fails
    // with it. Errors of those last steps change nothing.
    let mut failed: Option<Error> = None;
    loop {
        while let Some(t) = round.poll_transmit() {
            lease.alive();
            if !lease.is_held() && failed.is_none() {
                // The whole batch comes back: safe, as after a crash.
                return Err(Error::LeaseRanOut {
                    barrier: info.config.name.clone(),
                });
            }
            match t {
                Transmit::ReadState => {
                    match published::read_state_record(sqs, info).await? {
                        Some(r) => {
                            writer = BarrierInfo {
                                config: r.config.clone(),
                                ..info.clone()
                            };
                            round.handle_state_read(Some(r.config), Some(&r.state), wall_now());
                        }
                        // Nothing published on the state queue yet: the
                        // copy in tags, if any (a barrier an earlier
                        // version ran, or whose queue emptied); one tagging
                        // action, until the first write.
                        None => {
                            let tags = published::list_tags(sqs, &info.urls.checkin).await?;
                            writer = info.clone();
                            let state = published::state_in_tags(&tags);
                            round.handle_state_read(None, state.as_ref(), wall_now());
                        }
                    }
                }
                Transmit::WriteState { state } => {
                    match write_state(sqs, &writer, &state, lease.until()).await {
                        Ok(None) => round.handle_state_written(wall_now()),
                        Ok(Some(other)) => round.handle_write_refused(&other, wall_now()),
                        Err(e) => {
                            failed = Some(e);
                            round.handle_write_failed();
                        }
                    }
                }
                Transmit::CheckState => {
                    let read = published::read_state(sqs, &writer).await;
                    let current = match (read, &failed) {
                        (Ok(s), _) => s,
                        (Err(_), Some(_)) => None,
                        (Err(e), None) => return Err(e),
                    };
                    round.handle_check(current.as_ref());
                }
                Transmit::Notify { generation, body } => {
                    let sent =
                        notices::send_notice(sqs, writer.urls.release_for(generation), &body).await;
                    if failed.is_none() {
                        sent?;
                    }
                }
                Transmit::Sweep { generation, below } => {
                    // Awaited: a function instance may be frozen as soon as
                    // it returns.
                    notices::sweep(
                        sqs.clone(),
                        writer.urls.release_for(generation).to_owned(),
                        writer.config.clone(),
                        below,
                    )
                    .await;
                }
                Transmit::DeadLetter { body, reason, .. } => {
                    notices::send_dead_letter(sqs, &writer, &body, &reason).await?;
                }
            }
        }
        while let Some(e) = round.poll_event() {
            match e {
                LambdaEvent::Coordinator(e) => {
                    if let CoordinatorEvent::Released { generation } = e {
                        outcome.released.push(generation);
                    }
                    tracing::debug!(event = ?e, "coordinator event");
                    outcome.events.push(e);
                }
                LambdaEvent::Lost { erased, by, .. } => {
                    outcome.races += 1;
                    outcome.erased += usize::from(erased);
                    tracing::info!(barrier = %info.config.name, by = ?by, erased, "another invocation wrote the state first; starting again from it");
                }
                other => tracing::debug!(event = ?other, "lambda round event"),
            }
        }
        if let Some(ending) = round.ending() {
            match (ending.failures(), failed) {
                (Some(failures), _) => outcome.failures = failures.to_vec(),
                (None, Some(e)) => return Err(e),
                // A failed invocation without an error cannot be: hand
                // everything back, which is as safe.
                (None, None) => outcome.failures = all(records),
            }
            return Ok(outcome);
        }
        let Some(at) = round.poll_timeout() else {
            // Nothing to do and not over: cannot be either.
            tracing::warn!(barrier = %info.config.name, "the Lambda round stalled; handing the batch back");
            outcome.failures = all(records);
            return Ok(outcome);
        };
        tokio::time::sleep(at.saturating_sub(wall_now())).await;
        round.handle_timeout(wall_now().max(at));
    }
}

fn all(records: &[Record]) -> Vec<String> {
    records.iter().map(|r| r.message_id.clone()).collect()
}

/// Publishes the state as a process coordinator does. `Some(other)` if
/// another invocation (or coordinator) published a state that orders after
/// it: this one stands down.
async fn write_state(
    sqs: &Sqs,
    info: &BarrierInfo,
    state: &PublishedState,
    lease_until: Duration,
) -> Result<Option<Box<PublishedState>>> {
    let config = if state.needed_version() >= 2 {
        admin::mark_extended(sqs, info).await?
    } else {
        info.config.clone()
    };
    published::write_state(sqs, info, &config, state, lease_until).await
}

/// The function's name, for the coordinator id (`AWS_LAMBDA_FUNCTION_NAME`
/// in Lambda).
fn function_name() -> String {
    std::env::var("AWS_LAMBDA_FUNCTION_NAME").unwrap_or_else(|_| admin::hostname())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn barrier_names_from_queue_arns() {
        assert_eq!(
            barrier_of_arn("arn:aws:sqs:us-east-1:123456789012:etl-checkin").unwrap(),
            "etl"
        );
        assert_eq!(
            barrier_of_arn("arn:aws:sqs:eu-west-1:1:etl-2-checkin.fifo").unwrap(),
            "etl-2"
        );
        assert!(barrier_of_arn("arn:aws:sqs:eu-west-1:1:etl-release-0").is_err());
        assert!(barrier_of_arn("arn:aws:sqs:eu-west-1:1:-checkin").is_err());
    }
}
