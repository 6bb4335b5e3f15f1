//! The coordinator as an AWS Lambda function: the driver of the core's
//! coordinator for one invocation.
//!
//! An SQS event source mapping long-polls a barrier's check-in queue and
//! invokes the function with a batch of records. Nothing survives between
//! invocations but what is in SQS, so each invocation rebuilds the
//! coordinator from the published state, feeds it the batch, lets it write
//! the state (which records the arrivals and releases, exactly as a process
//! coordinator's write does), and carries out what it asks: notices,
//! sweeps, dead letters. A record the core has said may go (its effect is
//! in a durable state write) is left to the mapping, which deletes every
//! record of a successful invocation except those named in
//! `batchItemFailures`; every other record is named there and comes back
//! after the queue's visibility timeout.
//!
//! Two invocations may run at once and race on the state. Each publishes
//! its state as a process coordinator does (one more term than the state
//! it started from; a write that finds a state ordering after its own
//! stands down); the one that finds another's write stands down and,
//! since it still holds its whole batch, simply starts again from the new
//! state ([`MAX_RACES`] times at most, then it hands the batch back). Two
//! that read the same state and write a moment apart can both pass that
//! check, and readers then take the write that orders last: each
//! invocation therefore reads the state again [`VERIFY_AFTER`] its write,
//! and if the newest state does not include what it wrote
//! ([`PublishedState::includes`]) it starts again too. So a lost race costs
//! a read and a write more, not a visibility timeout, and nothing recorded
//! is lost (a write delayed by more than that, e.g. by retries, can still
//! be passed over; the participants' status reads then send the lost
//! arrivals again).
//!
//! The configuration of each barrier is kept per warm function instance;
//! every state read checks that the barrier is still the instance it was
//! opened as, and one that was deleted and set up again under the same
//! name is opened afresh.
//!
//! Besides batches, the function is invoked on a schedule with
//! `{"barrier": "NAME"}` (a *tick*): it publishes a heartbeat, so that
//! participants see a live coordinator while they wait for a straggler, and
//! fires the barrier deadline.
//!
//! Nothing here decides anything about the protocol: the core does.
//!
//! [`emulator`] runs this handler behind an emulated event source mapping
//! and schedule, outside AWS.

pub mod emulator;

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use sqs_barrier_core::coordinator::{Coordinator, CoordinatorOptions, Transmit};
use sqs_barrier_core::state::PublishedState;
use tokio::sync::Mutex;

use crate::admin::{self, BarrierInfo};
use crate::error::{Error, Result};
use crate::notices;
use crate::participant::wall_now;
use crate::published;
use crate::sqs::Sqs;

/// How often an invocation that lost the race on the state starts again
/// before it hands its batch back.
pub const MAX_RACES: usize = 5;

/// How long after its write an invocation checks that the write was not
/// erased by a concurrent one: well over the gap between another
/// invocation's read and its write (a request or two).
pub const VERIFY_AFTER: Duration = Duration::from_millis(250);

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

/// Tunables of the Lambda coordinator.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct LambdaOptions {
    /// The interval of the schedule that invokes the function with a tick:
    /// the heartbeat it promises in the published state.
    pub heartbeat: Duration,
    /// The check-in queue's visibility timeout (30 s as `setup` makes it):
    /// how long a record handed back, or held by another invocation, may be
    /// away. A deadline breaks only this long after it passed.
    pub queue_visibility: Duration,
}

impl Default for LambdaOptions {
    fn default() -> Self {
        Self {
            heartbeat: Duration::from_secs(60),
            queue_visibility: Duration::from_secs(30),
        }
    }
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

fn core_options(opts: &LambdaOptions) -> CoordinatorOptions {
    let mut core = CoordinatorOptions::default();
    core.heartbeat = opts.heartbeat;
    // Every invocation is a coordinator's whole life: the grace a process
    // gives a dead predecessor's held check-ins is the slack below.
    core.restart_grace = Duration::ZERO;
    core.deadline_slack = opts.queue_visibility;
    // The generation's age goes on between invocations: `now` is wall time.
    core.age_since_write = true;
    // An invocation sees its batch only: the check-ins that carry data,
    // handed back to the mapping, would never all meet in one.
    core.holds_data = false;
    core
}

/// One barrier's records (or none, for a tick): rebuild the coordinator
/// from the published state, feed the records, carry out what it asks;
/// start again from the newer state when another invocation wrote first.
async fn coordinate(
    sqs: &Sqs,
    info: &BarrierInfo,
    records: &[Record],
    opts: &LambdaOptions,
) -> Result<BatchOutcome> {
    let mut outcome = BatchOutcome::default();
    // Dead-lettered records are gone for good whatever happens next: a
    // later round counts them again (the published `rejected`) but does
    // not send them twice.
    let mut dead: HashSet<String> = HashSet::new();
    for _ in 0..MAX_RACES {
        // The configuration the state's writer went by: the same as the
        // cached one, but marked version 2 once that was done.
        let round;
        let (info, state) = match published::read_state_record(sqs, info).await? {
            Some(r) => {
                round = BarrierInfo {
                    config: r.config,
                    ..info.clone()
                };
                (&round, Some(r.state))
            }
            // Nothing published on the state queue yet: the copy in tags,
            // if any (a barrier an earlier version ran, or whose queue
            // emptied); one tagging action, until the first write.
            None => {
                let tags = published::list_tags(sqs, &info.urls.checkin).await?;
                (info, published::state_in_tags(&tags))
            }
        };
        let id = format!("{:08x}@lambda/{}", rand::random::<u32>(), function_name());
        let mut core: Coordinator<String> =
            Coordinator::new(info.config.clone(), id, core_options(opts), state.as_ref());
        let now = wall_now();
        for r in records {
            core.handle_message(r.message_id.clone(), &r.body, now);
        }
        core.handle_timeout(now);
        let mut done: HashSet<String> = HashSet::new();
        let mut lost = false;
        let mut written: Option<PublishedState> = None;
        // Notices wait for the state write that records their release:
        // the participants released check in at the next generation at
        // once, and the invocation that counts those check-ins must find
        // this release in the state, or it takes the next generation for a
        // second open one and hands its check-ins back for a visibility
        // timeout. (A process coordinator knows its own releases and
        // sends first.)
        let mut notices: Vec<(u64, String)> = Vec::new();
        let mut sweeps: Vec<(u64, u64)> = Vec::new();
        while let Some(t) = core.poll_transmit() {
            match t {
                Transmit::Notify { generation, body } => notices.push((generation, body)),
                // After the round: a sweep long-polls for a second or
                // more, and a write that waited for it would mostly find
                // another invocation's (or a tick's) write first.
                Transmit::Sweep { generation, below } => sweeps.push((generation, below)),
                Transmit::Delete(ids) => done.extend(ids),
                Transmit::DeadLetter {
                    token,
                    body,
                    reason,
                } => {
                    if !dead.contains(&token) {
                        notices::send_dead_letter(sqs, info, &body, &reason).await?;
                        dead.insert(token);
                    }
                }
                Transmit::WriteState { version, state } => {
                    match write_state(sqs, info, &mut core, &state).await {
                        Ok(true) => {
                            core.handle_state_written(version);
                            written = Some(*state);
                            send_notices(sqs, info, &mut notices).await?;
                        }
                        Ok(false) => {
                            lost = true;
                            break;
                        }
                        Err(e) => {
                            // The write may have taken effect although it
                            // failed, and an invocation that finds a release
                            // in the state does not announce it again: its
                            // members would wait for their next status read.
                            // So if the state now holds what this write
                            // recorded, send its notices (only then: a
                            // release announced but not recorded could
                            // still be broken by a deadline).
                            let landed = published::read_state(sqs, info).await;
                            if let Ok(Some(now)) = landed
                                && now.includes(&state)
                            {
                                let _ = send_notices(sqs, info, &mut notices).await;
                            }
                            return Err(e);
                        }
                    }
                }
            }
        }
        if !lost {
            // Notices of a round that wrote nothing (none is due).
            send_notices(sqs, info, &mut notices).await?;
        }
        while let Some(e) = core.poll_event() {
            if let sqs_barrier_core::coordinator::Event::Released { generation } = e {
                outcome.released.push(generation);
            }
            tracing::debug!(event = ?e, "coordinator event");
            outcome.events.push(e);
        }
        if let (false, Some(mine)) = (lost, &written) {
            tokio::time::sleep(VERIFY_AFTER).await;
            let now = published::read_state(sqs, info).await?;
            lost = !now.is_some_and(|s| s.includes(mine));
            outcome.erased += usize::from(lost);
        }
        if lost {
            outcome.races += 1;
            tracing::info!(barrier = %info.config.name, "another invocation wrote the state first; starting again from it");
            continue;
        }
        // Awaited: a function instance may be frozen as soon as it returns.
        for (generation, below) in sweeps {
            notices::sweep(
                sqs.clone(),
                info.urls.release_for(generation).to_owned(),
                info.config.clone(),
                below,
            )
            .await;
        }
        outcome.failures = keep(records, &done, &dead, info.config.fifo);
        return Ok(outcome);
    }
    // Kept losing: hand everything back; it comes again after the
    // visibility timeout, to a less busy moment.
    outcome.failures = keep(records, &HashSet::new(), &dead, info.config.fifo);
    Ok(outcome)
}

async fn send_notices(
    sqs: &Sqs,
    info: &BarrierInfo,
    notices: &mut Vec<(u64, String)>,
) -> Result<()> {
    for (generation, body) in notices.drain(..) {
        notices::send_notice(sqs, info.urls.release_for(generation), &body).await?;
    }
    Ok(())
}

/// Publishes the state as a process coordinator does. `false` if another
/// invocation (or coordinator) published a state that orders after it:
/// this one stands down.
async fn write_state(
    sqs: &Sqs,
    info: &BarrierInfo,
    core: &mut Coordinator<String>,
    state: &PublishedState,
) -> Result<bool> {
    let config = if state.needed_version() >= 2 {
        admin::mark_extended(sqs, info).await?
    } else {
        info.config.clone()
    };
    match published::write_state(sqs, info, &config, state).await? {
        None => Ok(true),
        Some(other) => {
            core.handle_state_observed(&other, wall_now());
            Ok(false)
        }
    }
}

/// The records to report as failures: every one neither deletable nor
/// dead-lettered. On a FIFO queue a failure also keeps every later record
/// of its message group (the mapping must not delete a group's messages
/// past one it returns).
fn keep(
    records: &[Record],
    done: &HashSet<String>,
    dead: &HashSet<String>,
    fifo: bool,
) -> Vec<String> {
    let mut blocked: HashSet<&str> = HashSet::new();
    let mut failures = Vec::new();
    for r in records {
        let group = r.message_group_id.as_deref();
        let blocked_group = fifo && group.is_some_and(|g| blocked.contains(g));
        let gone = dead.contains(&r.message_id) || done.contains(&r.message_id);
        if blocked_group || !gone {
            failures.push(r.message_id.clone());
            if let (true, Some(g)) = (fifo, group) {
                blocked.insert(g);
            }
        }
    }
    failures
}

/// The function's name, for the coordinator id (`AWS_LAMBDA_FUNCTION_NAME`
/// in Lambda).
fn function_name() -> String {
    std::env::var("AWS_LAMBDA_FUNCTION_NAME").unwrap_or_else(|_| admin::hostname())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(id: &str, group: Option<&str>) -> Record {
        Record {
            message_id: id.into(),
            body: String::new(),
            event_source_arn: "arn:aws:sqs:us-east-1:1:b-checkin".into(),
            message_group_id: group.map(str::to_owned),
        }
    }

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

    #[test]
    fn failures_keep_what_is_not_done_and_later_records_of_a_fifo_group() {
        let rs = [
            rec("a", Some("g1")),
            rec("b", Some("g1")),
            rec("c", Some("g2")),
            rec("d", Some("g2")),
        ];
        let done: HashSet<String> = ["b", "c", "d"].map(String::from).into();
        let none = HashSet::new();
        assert_eq!(keep(&rs, &done, &none, false), vec!["a".to_owned()]);
        // FIFO: b follows the kept a in its group, so it is kept too.
        assert_eq!(
            keep(&rs, &done, &none, true),
            vec!["a".to_owned(), "b".to_owned()]
        );
        let dead: HashSet<String> = ["a"].map(String::from).into();
        assert!(keep(&rs, &done, &dead, true).is_empty());
    }
}
