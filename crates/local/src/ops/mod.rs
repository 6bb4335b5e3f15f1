//! The wire operations: one file per group, each with its input type (decoded from the
//! JSON body, no IO) and an `apply` that runs it against the shared queue registry.
//!
//! [`decode_request`] is the single entry from bytes to a typed [`Request`]; it never
//! panics on any input (a test throws random bytes at it).

mod attributes;
mod delete;
mod moves;
mod queues;
mod receive;
mod send;
mod tags;
mod visibility;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

pub use attributes::{GetQueueAttributes, SetQueueAttributes};
pub use delete::{DeleteMessage, DeleteMessageBatch};
pub use moves::{CancelMessageMoveTask, ListMessageMoveTasks, StartMessageMoveTask};
pub use queues::{
    CreateQueue, DeleteQueue, GetQueueUrl, ListDeadLetterSourceQueues, ListQueues, PurgeQueue,
};
pub use receive::ReceiveMessage;
pub use send::{SendMessage, SendMessageBatch};
pub use tags::{ListQueueTags, TagQueue, UntagQueue};
pub use visibility::{ChangeMessageVisibility, ChangeMessageVisibilityBatch};

use crate::error::{ErrorCode, Result, SqsError};
use crate::service::{RequestContext, Service};

/// Most entries in one batch request.
pub const MAX_BATCH_ENTRIES: usize = 10;

/// A decoded request: one variant per supported operation.
#[derive(Debug)]
#[non_exhaustive]
#[allow(missing_docs)] // The variants are the SQS operations of the same name.
pub enum Request {
    CreateQueue(CreateQueue),
    GetQueueUrl(GetQueueUrl),
    ListQueues(ListQueues),
    DeleteQueue(DeleteQueue),
    PurgeQueue(PurgeQueue),
    ListDeadLetterSourceQueues(ListDeadLetterSourceQueues),
    GetQueueAttributes(GetQueueAttributes),
    SetQueueAttributes(SetQueueAttributes),
    TagQueue(TagQueue),
    UntagQueue(UntagQueue),
    ListQueueTags(ListQueueTags),
    SendMessage(SendMessage),
    SendMessageBatch(SendMessageBatch),
    ReceiveMessage(ReceiveMessage),
    DeleteMessage(DeleteMessage),
    DeleteMessageBatch(DeleteMessageBatch),
    ChangeMessageVisibility(ChangeMessageVisibility),
    ChangeMessageVisibilityBatch(ChangeMessageVisibilityBatch),
    StartMessageMoveTask(StartMessageMoveTask),
    ListMessageMoveTasks(ListMessageMoveTasks),
    CancelMessageMoveTask(CancelMessageMoveTask),
}

fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T> {
    // SDKs send `{}` for operations without input; be lenient with an empty body too.
    let body = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}".as_slice()
    } else {
        body
    };
    serde_json::from_slice(body).map_err(|e| {
        SqsError::new(
            ErrorCode::SerializationException,
            format!("The request body could not be parsed: {e}"),
        )
    })
}

/// Decodes the body of operation `target` (`AmazonSQS.SendMessage` or `SendMessage`).
pub fn decode_request(target: &str, body: &[u8]) -> Result<Request> {
    let operation = target.strip_prefix("AmazonSQS.").unwrap_or(target);
    Ok(match operation {
        "CreateQueue" => Request::CreateQueue(parse(body)?),
        "GetQueueUrl" => Request::GetQueueUrl(parse(body)?),
        "ListQueues" => Request::ListQueues(parse(body)?),
        "DeleteQueue" => Request::DeleteQueue(parse(body)?),
        "PurgeQueue" => Request::PurgeQueue(parse(body)?),
        "ListDeadLetterSourceQueues" => Request::ListDeadLetterSourceQueues(parse(body)?),
        "GetQueueAttributes" => Request::GetQueueAttributes(parse(body)?),
        "SetQueueAttributes" => Request::SetQueueAttributes(parse(body)?),
        "TagQueue" => Request::TagQueue(parse(body)?),
        "UntagQueue" => Request::UntagQueue(parse(body)?),
        "ListQueueTags" => Request::ListQueueTags(parse(body)?),
        "SendMessage" => Request::SendMessage(parse(body)?),
        "SendMessageBatch" => Request::SendMessageBatch(parse(body)?),
        "ReceiveMessage" => Request::ReceiveMessage(parse(body)?),
        "DeleteMessage" => Request::DeleteMessage(parse(body)?),
        "DeleteMessageBatch" => Request::DeleteMessageBatch(parse(body)?),
        "ChangeMessageVisibility" => Request::ChangeMessageVisibility(parse(body)?),
        "ChangeMessageVisibilityBatch" => Request::ChangeMessageVisibilityBatch(parse(body)?),
        "StartMessageMoveTask" => Request::StartMessageMoveTask(parse(body)?),
        "ListMessageMoveTasks" => Request::ListMessageMoveTasks(parse(body)?),
        "CancelMessageMoveTask" => Request::CancelMessageMoveTask(parse(body)?),
        _ => {
            return Err(SqsError::new(
                ErrorCode::UnsupportedOperation,
                format!("The operation {target} is not supported."),
            ));
        }
    })
}

/// Runs a request; the answer is the JSON response body.
pub(crate) async fn execute(
    service: &Service,
    ctx: &RequestContext<'_>,
    request: Request,
) -> Result<Vec<u8>> {
    match request {
        Request::CreateQueue(r) => encode(&r.apply(service, ctx)?),
        Request::GetQueueUrl(r) => encode(&r.apply(service, ctx)?),
        Request::ListQueues(r) => encode(&r.apply(service, ctx)?),
        Request::DeleteQueue(r) => encode(&r.apply_delete(service)?),
        Request::PurgeQueue(r) => encode(&r.apply(service)?),
        Request::ListDeadLetterSourceQueues(r) => encode(&r.apply(service, ctx)?),
        Request::GetQueueAttributes(r) => encode(&r.apply(service)?),
        Request::SetQueueAttributes(r) => encode(&r.apply(service)?),
        Request::TagQueue(r) => encode(&r.apply(service)?),
        Request::UntagQueue(r) => encode(&r.apply(service)?),
        Request::ListQueueTags(r) => encode(&r.apply(service)?),
        Request::SendMessage(r) => encode(&r.apply(service, ctx)?),
        Request::SendMessageBatch(r) => encode(&r.apply(service, ctx)?),
        Request::ReceiveMessage(r) => encode(&r.apply(service, ctx).await?),
        Request::DeleteMessage(r) => encode(&r.apply(service)?),
        Request::DeleteMessageBatch(r) => encode(&r.apply(service)?),
        Request::ChangeMessageVisibility(r) => encode(&r.apply(service)?),
        Request::ChangeMessageVisibilityBatch(r) => encode(&r.apply(service)?),
        Request::StartMessageMoveTask(r) => encode(&r.apply(service)?),
        Request::ListMessageMoveTasks(r) => encode(&r.apply(service)?),
        Request::CancelMessageMoveTask(r) => encode(&r.apply(service)?),
    }
}

fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>> {
    serde_json::to_vec(value)
        .map_err(|e| SqsError::new(ErrorCode::InternalFailure, format!("encoding failed: {e}")))
}

/// The answer of operations that return nothing: `{}`.
#[derive(Serialize)]
pub(crate) struct Empty {}

/// Unwraps a required parameter.
pub(crate) fn required<T>(value: Option<T>, name: &str) -> Result<T> {
    value.ok_or_else(|| SqsError::missing(name))
}

/// Converts an integer parameter to `u32` within `range`, or `InvalidParameterValue`.
pub(crate) fn in_range(
    value: i64,
    name: &str,
    range: std::ops::RangeInclusive<u32>,
) -> Result<u32> {
    u32::try_from(value)
        .ok()
        .filter(|v| range.contains(v))
        .ok_or_else(|| {
            SqsError::invalid_parameter(format!(
                "Value {value} for parameter {name} is invalid. Reason: Must be between {} and {}, if provided.",
                range.start(),
                range.end()
            ))
        })
}

/// A failed batch entry, as `Failed` lists it.
#[derive(Serialize, Debug)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct BatchFailure {
    pub id: String,
    pub sender_fault: bool,
    pub code: &'static str,
    pub message: String,
}

impl BatchFailure {
    pub fn new(id: &str, error: SqsError) -> Self {
        BatchFailure {
            id: id.to_owned(),
            sender_fault: error.code.is_sender_fault(),
            code: error.code.query_code(),
            message: error.message,
        }
    }
}

/// Checks the whole-request rules of every batch operation: 1..=10 entries with
/// distinct, well-formed ids. `what` names the entry type in messages.
pub(crate) fn check_batch_ids<'a>(
    ids: impl ExactSizeIterator<Item = &'a str> + Clone,
    what: &str,
) -> Result<()> {
    if ids.len() == 0 {
        return Err(SqsError::new(
            ErrorCode::EmptyBatchRequest,
            format!("There should be at least one {what} in the request."),
        ));
    }
    if ids.len() > MAX_BATCH_ENTRIES {
        return Err(SqsError::new(
            ErrorCode::TooManyEntriesInBatchRequest,
            format!(
                "Maximum number of entries per request are {MAX_BATCH_ENTRIES}. You have sent {}.",
                ids.len()
            ),
        ));
    }
    for (i, id) in ids.clone().enumerate() {
        let well_formed = !id.is_empty()
            && id.len() <= 80
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !well_formed {
            return Err(SqsError::new(
                ErrorCode::InvalidBatchEntryId,
                "A batch entry id can only contain alphanumeric characters, hyphens and underscores. It can be at most 80 letters long.",
            ));
        }
        if ids.clone().take(i).any(|other| other == id) {
            return Err(SqsError::new(
                ErrorCode::BatchEntryIdsNotDistinct,
                format!("Id {id} repeated."),
            ));
        }
    }
    Ok(())
}

/// A `QueueUrl`-only input, shared by several operations.
#[derive(Deserialize, Debug)]
#[serde(rename_all = "PascalCase")]
pub struct QueueUrlOnly {
    queue_url: Option<String>,
}

#[cfg(test)]
mod tests;
