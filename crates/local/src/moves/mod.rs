//! Message-move tasks (dead-letter queue redrive): the endpoint's registry of
//! tasks, each task's progress, and its handle.
//!
//! A task is started by `StartMessageMoveTask` (see `ops::moves`), runs in the
//! background ([`runner`]) and is followed with `ListMessageMoveTasks` and stopped
//! with `CancelMessageMoveTask`. Its life:
//!
//! ```text
//!  RUNNING ──► COMPLETED           nothing left the task may move
//!     │ ╲────► FAILED              a queue it needs is gone (FailureReason says why)
//!     ▼
//!  CANCELLING ──► CANCELLED        after the message being moved, if any
//! ```
//!
//! A task belongs to its source queue: the tasks of a queue that was deleted are not
//! those of a new queue of the same name. The registry keeps a queue's
//! [`KEPT_PER_QUEUE`] newest tasks (more cannot be listed) for [`RETENTION`] after
//! they started; a running task is kept whatever its age.

pub(crate) mod runner;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};

use base64::Engine as _;
use tokio::sync::Notify;

use crate::error::{ErrorCode, Result, SqsError};
use crate::model::{Millis, MoveHorizon};
use crate::service::QueueSlot;

/// How long a task is listed after it started: 14 days.
pub const RETENTION: Millis = 14 * 24 * 60 * 60 * 1000;
/// Most tasks remembered per source queue: as many as `ListMessageMoveTasks` lists.
pub const KEPT_PER_QUEUE: usize = 10;
/// Highest `MaxNumberOfMessagesPerSecond`.
pub const MAX_RATE: u32 = 500;
/// `FailureReason` of a task whose source or destination queue was deleted: the
/// query code of `QueueDoesNotExist`, as SQS reports it.
pub const NON_EXISTENT_QUEUE: &str = "AWS.SimpleQueueService.NonExistentQueue";

/// A task's status, as `ListMessageMoveTasks` names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// Moving messages.
    Running,
    /// Done: nothing was left that the task could move.
    Completed,
    /// Cancel was asked for; the task stops after the message it is moving.
    Cancelling,
    /// Stopped by `CancelMessageMoveTask`.
    Cancelled,
    /// Stopped by a problem (`FailureReason`).
    Failed,
}

impl Status {
    /// The wire name: `RUNNING`, `COMPLETED`, ...
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Running => "RUNNING",
            Status::Completed => "COMPLETED",
            Status::Cancelling => "CANCELLING",
            Status::Cancelled => "CANCELLED",
            Status::Failed => "FAILED",
        }
    }

    /// Whether the task still runs (and so blocks another on its source queue).
    pub fn is_active(self) -> bool {
        matches!(self, Status::Running | Status::Cancelling)
    }
}

/// How a task ended, as its runner reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Nothing left to move (or, after a cancel, stopped).
    Completed,
    /// Stopped by a problem, described by the `FailureReason`.
    Failed(String),
}

/// A task's progress at one moment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Progress {
    /// The status.
    pub status: Status,
    /// Messages moved so far (`ApproximateNumberOfMessagesMoved`).
    pub moved: u64,
    /// Why it failed (`FailureReason`), only when [`Status::Failed`].
    pub failure_reason: Option<String>,
}

/// What a task was asked to do.
#[derive(Clone, Debug)]
pub(crate) struct TaskSpec {
    /// `SourceArn`.
    pub source_arn: String,
    /// `DestinationArn`; `None`: back to each message's source queue.
    pub destination_arn: Option<String>,
    /// `MaxNumberOfMessagesPerSecond`; `None`: as fast as the endpoint can.
    pub rate: Option<u32>,
    /// When it started (`StartedTimestamp`).
    pub started_at: Millis,
    /// Visible messages in the source when it started
    /// (`ApproximateNumberOfMessagesToMove`).
    pub to_move: u64,
    /// The source's messages at the start: later arrivals are not moved.
    pub horizon: MoveHorizon,
}

/// One message-move task, shared by the registry, its runner and the requests that
/// look at it.
#[derive(Debug)]
pub(crate) struct MoveTask {
    /// A random UUID.
    pub id: String,
    /// What it does.
    pub spec: TaskSpec,
    source: Weak<QueueSlot>,
    progress: Mutex<Progress>,
    /// Wakes the runner when the task is cancelled (it may be waiting for its rate).
    pub wake: Notify,
}

impl MoveTask {
    /// A running task over `source`.
    pub fn new(id: String, spec: TaskSpec, source: &Arc<QueueSlot>) -> Self {
        MoveTask {
            id,
            spec,
            source: Arc::downgrade(source),
            progress: Mutex::new(Progress {
                status: Status::Running,
                moved: 0,
                failure_reason: None,
            }),
            wake: Notify::new(),
        }
    }

    fn progress_mut(&self) -> MutexGuard<'_, Progress> {
        self.progress.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The source queue, unless it was deleted.
    pub fn source(&self) -> Option<Arc<QueueSlot>> {
        self.source.upgrade().filter(|slot| !slot.is_deleted())
    }

    fn belongs_to(&self, source: &Arc<QueueSlot>) -> bool {
        Weak::ptr_eq(&self.source, &Arc::downgrade(source))
    }

    /// The `TaskHandle`: names the task and its source queue.
    pub fn handle(&self) -> String {
        encode_handle(&self.id, &self.spec.source_arn)
    }

    /// The progress now.
    pub fn progress(&self) -> Progress {
        self.progress_mut().clone()
    }

    /// Counts one moved message.
    pub fn moved_one(&self) {
        self.progress_mut().moved += 1;
    }

    /// Whether a cancel was asked for.
    pub fn cancel_requested(&self) -> bool {
        self.progress_mut().status == Status::Cancelling
    }

    /// `CancelMessageMoveTask`: a running task turns `CANCELLING` and its runner is
    /// woken; answers the messages moved so far. Any other status: `UnsupportedOperation`
    /// (SQS cancels only running tasks).
    pub fn cancel(&self) -> Result<u64> {
        let mut progress = self.progress_mut();
        if progress.status != Status::Running {
            return Err(SqsError::new(
                ErrorCode::UnsupportedOperation,
                format!(
                    "Only a task with status RUNNING can be cancelled; this task is {}.",
                    progress.status.as_str()
                ),
            ));
        }
        progress.status = Status::Cancelling;
        let moved = progress.moved;
        drop(progress);
        // A permit is stored if the runner is not waiting right now.
        self.wake.notify_one();
        Ok(moved)
    }

    /// Ends the task: `COMPLETED`, or `CANCELLED` if a cancel came first, or `FAILED`.
    pub fn finish(&self, outcome: Outcome) {
        let mut progress = self.progress_mut();
        match outcome {
            Outcome::Completed if progress.status == Status::Cancelling => {
                progress.status = Status::Cancelled;
            }
            Outcome::Completed => progress.status = Status::Completed,
            Outcome::Failed(reason) => {
                progress.status = Status::Failed;
                progress.failure_reason = Some(reason);
            }
        }
    }
}

/// `base64url("<task id> <source ARN>")`: the task handle. Opaque to clients.
pub fn encode_handle(id: &str, source_arn: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{id} {source_arn}"))
}

/// The task id and source ARN of a handle, or `InvalidParameterValue` with SQS's
/// message for a malformed one.
pub fn decode_handle(handle: &str) -> Result<(String, String)> {
    let invalid = || SqsError::invalid_parameter("Value for parameter TaskHandle is invalid.");
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(handle)
        .map_err(|_| invalid())?;
    let text = String::from_utf8(raw).map_err(|_| invalid())?;
    let (id, arn) = text.split_once(' ').ok_or_else(invalid)?;
    let id_ok = id.len() == 36 && id.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-');
    if !id_ok || !arn.starts_with("arn:") {
        return Err(invalid());
    }
    Ok((id.to_owned(), arn.to_owned()))
}

/// Every task of the endpoint, by source ARN, newest first.
#[derive(Debug, Default)]
pub(crate) struct MoveTasks {
    by_source: Mutex<HashMap<String, Vec<Arc<MoveTask>>>>,
}

impl MoveTasks {
    /// The tasks of `source` (this incarnation of the queue) at `now`, newest first,
    /// after dropping what is no longer kept.
    fn tasks_of<'a>(
        by_source: &'a mut HashMap<String, Vec<Arc<MoveTask>>>,
        source: &Arc<QueueSlot>,
        now: Millis,
    ) -> &'a mut Vec<Arc<MoveTask>> {
        let tasks = by_source.entry(source.arn.clone()).or_default();
        let mut kept = 0;
        tasks.retain(|task| {
            let keep = task.belongs_to(source)
                && (task.progress().status.is_active()
                    || (kept < KEPT_PER_QUEUE
                        && now < task.spec.started_at.saturating_add(RETENTION)));
            kept += usize::from(keep);
            keep
        });
        tasks
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Vec<Arc<MoveTask>>>> {
        self.by_source
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Registers a new task on `source` unless one is active there already
    /// (`InvalidParameterValue`, SQS's answer).
    pub fn start(
        &self,
        task: MoveTask,
        source: &Arc<QueueSlot>,
        now: Millis,
    ) -> Result<Arc<MoveTask>> {
        let mut by_source = self.lock();
        let tasks = Self::tasks_of(&mut by_source, source, now);
        if tasks.iter().any(|t| t.progress().status.is_active()) {
            return Err(SqsError::invalid_parameter(
                "There is already a task running. Only one active task is allowed for a source queue arn at a given time.",
            ));
        }
        let task = Arc::new(task);
        tasks.insert(0, task.clone());
        if tasks.len() > KEPT_PER_QUEUE {
            Self::tasks_of(&mut by_source, source, now);
        }
        Ok(task)
    }

    /// Up to `max` tasks of `source`, newest first.
    pub fn list(&self, source: &Arc<QueueSlot>, max: usize, now: Millis) -> Vec<Arc<MoveTask>> {
        let mut by_source = self.lock();
        let tasks = Self::tasks_of(&mut by_source, source, now);
        tasks.iter().take(max).cloned().collect()
    }

    /// The task `id` of `source`, if it is kept.
    pub fn find(&self, source: &Arc<QueueSlot>, id: &str, now: Millis) -> Option<Arc<MoveTask>> {
        let mut by_source = self.lock();
        let tasks = Self::tasks_of(&mut by_source, source, now);
        tasks.iter().find(|t| t.id == id).cloned()
    }
}

#[cfg(test)]
mod tests;
