//! Message-move tasks (dead-letter queue redrive): StartMessageMoveTask,
//! ListMessageMoveTasks, CancelMessageMoveTask. The tasks themselves and their
//! runner are in [`crate::moves`].
//!
//! Errors follow SQS: an ARN of no queue is `ResourceNotFoundException` (HTTP 404)
//! naming the parameter; a source that is no queue's dead-letter queue, a second
//! active task on one source and a malformed task handle are `InvalidParameterValue`.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::{in_range, required};
use crate::error::{ErrorCode, Result, SqsError};
use crate::moves::{self, MAX_RATE, MoveTask, Status, TaskSpec, runner};
use crate::service::{QueueSlot, Service, now, random_uuid};

/// The queue an ARN parameter names: `InvalidParameterValue` if it is not an SQS
/// queue ARN at all, `ResourceNotFoundException` if no such queue exists here.
fn queue_by_arn(service: &Service, arn: &str, parameter: &str) -> Result<Arc<QueueSlot>> {
    let parts: Vec<&str> = arn.split(':').collect();
    let well_formed = parts.len() == 6
        && parts[0] == "arn"
        && parts[2] == "sqs"
        && parts.iter().all(|p| !p.is_empty());
    if !well_formed {
        return Err(SqsError::invalid_parameter(format!(
            "Value {arn} for parameter {parameter} is invalid. Reason: It is not the ARN of an SQS queue."
        )));
    }
    service.get_by_arn(arn).ok_or_else(|| {
        SqsError::new(
            ErrorCode::ResourceNotFoundException,
            format!("The resource that you specified for the {parameter} parameter doesn't exist."),
        )
    })
}

/// Whether another queue names `arn` as its dead-letter queue in its
/// `RedrivePolicy` (SQS redrives only "queues that are configured as dead-letter
/// queues of other Amazon SQS queues").
fn is_dead_letter_queue(service: &Service, arn: &str) -> bool {
    service.all().iter().any(|slot| {
        slot.arn != arn
            && slot
                .lock()
                .attributes()
                .redrive_policy
                .as_ref()
                .is_some_and(|policy| policy.dead_letter_target_arn == arn)
    })
}

/// `StartMessageMoveTask` input.
#[derive(Deserialize, Debug)]
#[serde(rename_all = "PascalCase")]
pub struct StartMessageMoveTask {
    source_arn: Option<String>,
    destination_arn: Option<String>,
    max_number_of_messages_per_second: Option<i64>,
}

#[derive(Serialize, Debug)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct StartOutput {
    task_handle: String,
}

impl StartMessageMoveTask {
    pub(crate) fn apply(self, service: &Service) -> Result<StartOutput> {
        let source_arn = required(self.source_arn, "SourceArn")?;
        let rate = self
            .max_number_of_messages_per_second
            .map(|r| in_range(r, "MaxNumberOfMessagesPerSecond", 1..=MAX_RATE))
            .transpose()?;
        let source = queue_by_arn(service, &source_arn, "SourceArn")?;
        if !is_dead_letter_queue(service, &source.arn) {
            return Err(SqsError::invalid_parameter(
                "Source queue must be configured as a Dead Letter Queue.",
            ));
        }
        // An empty DestinationArn is "left blank": back to the source queues.
        let destination_arn = self.destination_arn.filter(|arn| !arn.is_empty());
        if let Some(arn) = &destination_arn {
            let destination = queue_by_arn(service, arn, "DestinationArn")?;
            if Arc::ptr_eq(&destination, &source) {
                return Err(SqsError::invalid_parameter(format!(
                    "Value {arn} for parameter DestinationArn is invalid. Reason: The destination must be another queue than the source."
                )));
            }
            // One lock at a time: two starts with swapped queues must not deadlock.
            let destination_fifo = destination.lock().is_fifo();
            if destination_fifo != source.lock().is_fifo() {
                return Err(SqsError::invalid_parameter(format!(
                    "Value {arn} for parameter DestinationArn is invalid. Reason: The source and destination queues must be of the same type (standard or FIFO)."
                )));
            }
        }
        let now = now();
        let (horizon, visible) = {
            let mut queue = source.lock();
            (queue.move_horizon(), queue.counts(now).visible)
        };
        let spec = TaskSpec {
            source_arn: source.arn.clone(),
            destination_arn,
            rate,
            started_at: now,
            to_move: visible as u64,
            horizon,
        };
        let shared = service.shared().ok_or_else(|| {
            SqsError::new(ErrorCode::InternalFailure, "The endpoint is shutting down.")
        })?;
        let task =
            service
                .moves
                .start(MoveTask::new(random_uuid(), spec, &source), &source, now)?;
        tracing::debug!(task = %task.id, source = %source.name, rate, "message-move task started");
        let task_handle = task.handle();
        runner::spawn(shared, task);
        Ok(StartOutput { task_handle })
    }
}

/// `ListMessageMoveTasks` input.
#[derive(Deserialize, Debug)]
#[serde(rename_all = "PascalCase")]
pub struct ListMessageMoveTasks {
    source_arn: Option<String>,
    max_results: Option<i64>,
}

/// One entry of `Results`: optional fields only where SQS sends them.
#[derive(Serialize, Debug)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct TaskEntry {
    approximate_number_of_messages_moved: u64,
    approximate_number_of_messages_to_move: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    destination_arn: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    failure_reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_number_of_messages_per_second: Option<u32>,
    source_arn: String,
    started_timestamp: u64,
    status: &'static str,
    /// Only while the task runs (the handle is for cancelling it).
    #[serde(skip_serializing_if = "Option::is_none")]
    task_handle: Option<String>,
}

impl TaskEntry {
    fn of(task: &MoveTask) -> Self {
        let progress = task.progress();
        TaskEntry {
            approximate_number_of_messages_moved: progress.moved,
            approximate_number_of_messages_to_move: task.spec.to_move,
            destination_arn: task.spec.destination_arn.clone(),
            failure_reason: progress.failure_reason,
            max_number_of_messages_per_second: task.spec.rate,
            source_arn: task.spec.source_arn.clone(),
            started_timestamp: task.spec.started_at,
            status: progress.status.as_str(),
            task_handle: (progress.status == Status::Running).then(|| task.handle()),
        }
    }
}

#[derive(Serialize, Debug)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct ListOutput {
    results: Vec<TaskEntry>,
}

impl ListMessageMoveTasks {
    pub(crate) fn apply(self, service: &Service) -> Result<ListOutput> {
        let source_arn = required(self.source_arn, "SourceArn")?;
        let max = match self.max_results {
            Some(n) => in_range(n, "MaxResults", 1..=10)? as usize,
            None => 1,
        };
        let source = queue_by_arn(service, &source_arn, "SourceArn")?;
        let results = service
            .moves
            .list(&source, max, now())
            .iter()
            .map(|task| TaskEntry::of(task))
            .collect();
        Ok(ListOutput { results })
    }
}

/// `CancelMessageMoveTask` input.
#[derive(Deserialize, Debug)]
#[serde(rename_all = "PascalCase")]
pub struct CancelMessageMoveTask {
    task_handle: Option<String>,
}

#[derive(Serialize, Debug)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct CancelOutput {
    approximate_number_of_messages_moved: u64,
}

impl CancelMessageMoveTask {
    pub(crate) fn apply(self, service: &Service) -> Result<CancelOutput> {
        let handle = required(self.task_handle, "TaskHandle")?;
        let (id, source_arn) = moves::decode_handle(&handle)?;
        let source = service.get_by_arn(&source_arn).ok_or_else(|| {
            SqsError::new(
                ErrorCode::ResourceNotFoundException,
                "The resource that you specified for the SourceArn parameter doesn't exist.",
            )
        })?;
        let task = service.moves.find(&source, &id, now()).ok_or_else(|| {
            SqsError::new(ErrorCode::ResourceNotFoundException, "Task does not exist.")
        })?;
        let moved = task.cancel()?;
        tracing::debug!(task = %task.id, moved, "message-move task cancelling");
        Ok(CancelOutput {
            approximate_number_of_messages_moved: moved,
        })
    }
}
