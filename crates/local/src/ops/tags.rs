//! TagQueue, UntagQueue and ListQueueTags. Tags are stored and listed, nothing more.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use super::{Empty, required};
use crate::error::Result;
use crate::service::Service;

/// `TagQueue` input.
#[derive(Deserialize, Debug)]
#[serde(rename_all = "PascalCase")]
pub struct TagQueue {
    queue_url: Option<String>,
    tags: Option<HashMap<String, String>>,
}

impl TagQueue {
    pub(crate) fn apply(self, service: &Service) -> Result<Empty> {
        let slot = service.resolve_url(&required(self.queue_url, "QueueUrl")?)?;
        let tags = required(self.tags, "Tags")?;
        slot.lock().tag(tags)?;
        Ok(Empty {})
    }
}

/// `UntagQueue` input.
#[derive(Deserialize, Debug)]
#[serde(rename_all = "PascalCase")]
pub struct UntagQueue {
    queue_url: Option<String>,
    tag_keys: Option<Vec<String>>,
}

impl UntagQueue {
    pub(crate) fn apply(self, service: &Service) -> Result<Empty> {
        let slot = service.resolve_url(&required(self.queue_url, "QueueUrl")?)?;
        let keys = required(self.tag_keys, "TagKeys")?;
        let mut queue = slot.lock();
        for key in keys {
            queue.tags_mut().remove(&key);
        }
        Ok(Empty {})
    }
}

/// `ListQueueTags` input.
#[derive(Deserialize, Debug)]
#[serde(rename_all = "PascalCase")]
pub struct ListQueueTags {
    queue_url: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct TagsOutput {
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    tags: BTreeMap<String, String>,
}

impl ListQueueTags {
    pub(crate) fn apply(self, service: &Service) -> Result<TagsOutput> {
        let slot = service.resolve_url(&required(self.queue_url, "QueueUrl")?)?;
        let tags = slot.lock().tags().clone();
        Ok(TagsOutput { tags })
    }
}
