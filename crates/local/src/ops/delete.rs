//! DeleteMessage and DeleteMessageBatch.

use serde::{Deserialize, Serialize};

use super::{BatchFailure, Empty, check_batch_ids, required};
use crate::error::Result;
use crate::service::{Service, now};

/// `DeleteMessage` input.
#[derive(Deserialize, Debug)]
#[serde(rename_all = "PascalCase")]
pub struct DeleteMessage {
    queue_url: Option<String>,
    receipt_handle: Option<String>,
}

impl DeleteMessage {
    pub(crate) fn apply(self, service: &Service) -> Result<Empty> {
        let slot = service.resolve_url(&required(self.queue_url, "QueueUrl")?)?;
        let handle = required(self.receipt_handle, "ReceiptHandle")?;
        let made_room = {
            let mut queue = slot.lock();
            let was_full = queue.is_at_in_flight_limit();
            queue.delete(&handle, now())?;
            was_full && !queue.is_at_in_flight_limit()
        };
        if made_room {
            // Long polls waiting for room under the in-flight quota can go on.
            slot.wakeup.notify_waiters();
        }
        Ok(Empty {})
    }
}

/// One entry of `DeleteMessageBatch`.
#[derive(Deserialize, Debug)]
#[serde(rename_all = "PascalCase")]
pub struct DeleteMessageBatchEntry {
    id: Option<String>,
    receipt_handle: Option<String>,
}

/// `DeleteMessageBatch` input.
#[derive(Deserialize, Debug)]
#[serde(rename_all = "PascalCase")]
pub struct DeleteMessageBatch {
    queue_url: Option<String>,
    entries: Option<Vec<DeleteMessageBatchEntry>>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct BatchSuccess {
    pub id: String,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct BatchOutput {
    pub successful: Vec<BatchSuccess>,
    pub failed: Vec<BatchFailure>,
}

impl DeleteMessageBatch {
    pub(crate) fn apply(self, service: &Service) -> Result<BatchOutput> {
        let slot = service.resolve_url(&required(self.queue_url, "QueueUrl")?)?;
        let entries = self.entries.unwrap_or_default();
        let mut ids = Vec::with_capacity(entries.len());
        for entry in &entries {
            ids.push(required(entry.id.as_deref(), "Id")?);
        }
        check_batch_ids(ids.iter().copied(), "DeleteMessageBatchRequestEntry")?;
        let mut output = BatchOutput {
            successful: Vec::new(),
            failed: Vec::new(),
        };
        let made_room = {
            let mut queue = slot.lock();
            let was_full = queue.is_at_in_flight_limit();
            let now = now();
            for entry in entries {
                let id = entry.id.unwrap_or_default();
                let result = required(entry.receipt_handle, "ReceiptHandle")
                    .and_then(|handle| queue.delete(&handle, now));
                match result {
                    Ok(()) => output.successful.push(BatchSuccess { id }),
                    Err(error) => output.failed.push(BatchFailure::new(&id, error)),
                }
            }
            was_full && !queue.is_at_in_flight_limit()
        };
        if made_room {
            // Long polls waiting for room under the in-flight quota can go on.
            slot.wakeup.notify_waiters();
        }
        Ok(output)
    }
}
