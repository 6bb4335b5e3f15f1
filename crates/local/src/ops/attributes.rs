//! GetQueueAttributes and SetQueueAttributes.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use super::queues::check_redrive_target;
use super::{Empty, required};
use crate::error::{ErrorCode, Result, SqsError};
use crate::model::{READ_ONLY, SETTABLE};
use crate::service::{Service, now};

/// `GetQueueAttributes` input.
#[derive(Deserialize, Debug)]
#[serde(rename_all = "PascalCase")]
pub struct GetQueueAttributes {
    queue_url: Option<String>,
    #[serde(default)]
    attribute_names: Vec<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct AttributesOutput {
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    attributes: BTreeMap<&'static str, String>,
}

impl GetQueueAttributes {
    pub(crate) fn apply(self, service: &Service) -> Result<AttributesOutput> {
        let slot = service.resolve_url(&required(self.queue_url, "QueueUrl")?)?;
        let all = self.attribute_names.iter().any(|n| n == "All");
        let mut wanted: Vec<&'static str> = Vec::new();
        for name in &self.attribute_names {
            if name == "All" {
                continue;
            }
            let known = READ_ONLY
                .iter()
                .chain(SETTABLE)
                .find(|known| **known == name.as_str())
                .ok_or_else(|| {
                    SqsError::new(
                        ErrorCode::InvalidAttributeName,
                        format!("Unknown Attribute {name}."),
                    )
                })?;
            wanted.push(known);
        }
        if all {
            wanted = READ_ONLY.iter().chain(SETTABLE).copied().collect();
        }
        let mut queue = slot.lock();
        let counts = queue.counts(now());
        let mut attributes = BTreeMap::new();
        for name in wanted {
            let value = match name {
                "QueueArn" => Some(slot.arn.clone()),
                "ApproximateNumberOfMessages" => Some(counts.visible.to_string()),
                "ApproximateNumberOfMessagesNotVisible" => Some(counts.in_flight.to_string()),
                "ApproximateNumberOfMessagesDelayed" => Some(counts.delayed.to_string()),
                "CreatedTimestamp" => Some((queue.created_at() / 1000).to_string()),
                "LastModifiedTimestamp" => Some((queue.last_modified_at() / 1000).to_string()),
                settable => queue.attributes().get(settable),
            };
            if let Some(value) = value {
                attributes.insert(name, value);
            }
        }
        Ok(AttributesOutput { attributes })
    }
}

/// `SetQueueAttributes` input.
#[derive(Deserialize, Debug)]
#[serde(rename_all = "PascalCase")]
pub struct SetQueueAttributes {
    queue_url: Option<String>,
    attributes: Option<HashMap<String, String>>,
}

impl SetQueueAttributes {
    pub(crate) fn apply(self, service: &Service) -> Result<Empty> {
        let slot = service.resolve_url(&required(self.queue_url, "QueueUrl")?)?;
        let attributes = required(self.attributes, "Attributes")?;
        for name in attributes.keys() {
            if READ_ONLY.contains(&name.as_str()) {
                return Err(SqsError::new(
                    ErrorCode::InvalidAttributeName,
                    format!("Unknown Attribute {name}."),
                ));
            }
        }
        // Validate a new redrive target before taking this queue's lock: checking it
        // locks the target queue, and a queue may name itself.
        let mut probe = slot.lock().attributes().clone();
        for (name, value) in &attributes {
            probe.set(name, value)?;
        }
        if attributes.contains_key("RedrivePolicy") {
            check_redrive_target(service, &probe)?;
        }
        slot.lock().set_attributes(
            attributes.iter().map(|(k, v)| (k.as_str(), v.as_str())),
            now(),
        )?;
        // A shorter delay or visibility default does not change messages already
        // waiting, but wake pollers anyway: they recompute their deadlines.
        slot.wakeup.notify_waiters();
        Ok(Empty {})
    }
}
