//! ChangeMessageVisibility and ChangeMessageVisibilityBatch.

use serde::Deserialize;

use super::delete::{BatchOutput, BatchSuccess};
use super::{BatchFailure, Empty, check_batch_ids, in_range, required};
use crate::error::Result;
use crate::service::{Service, now};

/// `ChangeMessageVisibility` input.
#[derive(Deserialize, Debug)]
#[serde(rename_all = "PascalCase")]
pub struct ChangeMessageVisibility {
    queue_url: Option<String>,
    receipt_handle: Option<String>,
    visibility_timeout: Option<i64>,
}

impl ChangeMessageVisibility {
    pub(crate) fn apply(self, service: &Service) -> Result<Empty> {
        let slot = service.resolve_url(&required(self.queue_url, "QueueUrl")?)?;
        let handle = required(self.receipt_handle, "ReceiptHandle")?;
        let timeout = in_range(
            required(self.visibility_timeout, "VisibilityTimeout")?,
            "VisibilityTimeout",
            0..=43_200,
        )?;
        slot.lock().change_visibility(&handle, timeout, now())?;
        if timeout == 0 {
            slot.wakeup.notify_waiters();
        }
        Ok(Empty {})
    }
}

/// One entry of `ChangeMessageVisibilityBatch`.
#[derive(Deserialize, Debug)]
#[serde(rename_all = "PascalCase")]
pub struct ChangeMessageVisibilityBatchEntry {
    id: Option<String>,
    receipt_handle: Option<String>,
    visibility_timeout: Option<i64>,
}

/// `ChangeMessageVisibilityBatch` input.
#[derive(Deserialize, Debug)]
#[serde(rename_all = "PascalCase")]
pub struct ChangeMessageVisibilityBatch {
    queue_url: Option<String>,
    entries: Option<Vec<ChangeMessageVisibilityBatchEntry>>,
}

impl ChangeMessageVisibilityBatch {
    pub(crate) fn apply(self, service: &Service) -> Result<BatchOutput> {
        let slot = service.resolve_url(&required(self.queue_url, "QueueUrl")?)?;
        let entries = self.entries.unwrap_or_default();
        let mut ids = Vec::with_capacity(entries.len());
        for entry in &entries {
            ids.push(required(entry.id.as_deref(), "Id")?);
        }
        check_batch_ids(
            ids.iter().copied(),
            "ChangeMessageVisibilityBatchRequestEntry",
        )?;
        let mut output = BatchOutput {
            successful: Vec::new(),
            failed: Vec::new(),
        };
        let mut wake = false;
        {
            let mut queue = slot.lock();
            let now = now();
            for entry in entries {
                let id = entry.id.unwrap_or_default();
                let result = required(entry.receipt_handle, "ReceiptHandle").and_then(|handle| {
                    // Like SQS, a missing timeout in a batch entry means 0.
                    let timeout = in_range(
                        entry.visibility_timeout.unwrap_or(0),
                        "VisibilityTimeout",
                        0..=43_200,
                    )?;
                    queue.change_visibility(&handle, timeout, now)?;
                    wake |= timeout == 0;
                    Ok(())
                });
                match result {
                    Ok(()) => output.successful.push(BatchSuccess { id }),
                    Err(error) => output.failed.push(BatchFailure::new(&id, error)),
                }
            }
        }
        if wake {
            slot.wakeup.notify_waiters();
        }
        Ok(output)
    }
}
