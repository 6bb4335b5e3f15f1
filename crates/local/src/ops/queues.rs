//! Queue lifecycle: CreateQueue, GetQueueUrl, ListQueues, DeleteQueue, PurgeQueue,
//! ListDeadLetterSourceQueues.

use std::collections::HashMap;

use base64::Engine as _;
use serde::{Deserialize, Serialize};

use super::{Empty, in_range, required};
use crate::error::{ErrorCode, Result, SqsError};
use crate::model::{Queue, QueueAttributes};
use crate::service::{RequestContext, Service, now};

/// Queue names: 1..=80 of `[A-Za-z0-9_-]`, the `.fifo` suffix included in the 80.
pub(crate) fn validate_queue_name(name: &str) -> Result<()> {
    let stem = name.strip_suffix(".fifo").unwrap_or(name);
    let ok = !stem.is_empty()
        && name.len() <= 80
        && stem
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(SqsError::invalid_parameter(
            "Can only include alphanumeric characters, hyphens, or underscores. 1 to 80 in length",
        ))
    }
}

/// Checks that a redrive policy names an existing queue of the same kind.
pub(crate) fn check_redrive_target(service: &Service, attributes: &QueueAttributes) -> Result<()> {
    let Some(policy) = &attributes.redrive_policy else {
        return Ok(());
    };
    let invalid = |reason: &str| {
        SqsError::invalid_parameter(format!(
            "Value {{\"deadLetterTargetArn\":\"{}\",\"maxReceiveCount\":{}}} for parameter RedrivePolicy is invalid. Reason: {reason}",
            policy.dead_letter_target_arn, policy.max_receive_count
        ))
    };
    let target = service
        .get_by_arn(&policy.dead_letter_target_arn)
        .ok_or_else(|| invalid("Dead-letter target does not exist."))?;
    if target.lock().is_fifo() != attributes.fifo_queue {
        return Err(invalid(
            "Dead-letter queue must be same type of queue as the source.",
        ));
    }
    Ok(())
}

/// `CreateQueue` input.
#[derive(Deserialize, Debug)]
#[serde(rename_all = "PascalCase")]
pub struct CreateQueue {
    queue_name: Option<String>,
    #[serde(default)]
    attributes: HashMap<String, String>,
    #[serde(default, rename = "tags")]
    tags: HashMap<String, String>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct QueueUrlOutput {
    queue_url: String,
}

impl CreateQueue {
    pub(crate) fn apply(self, service: &Service, ctx: &RequestContext) -> Result<QueueUrlOutput> {
        let name = required(self.queue_name, "QueueName")?;
        validate_queue_name(&name)?;
        let attrs = || {
            self.attributes
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
        };
        let check_existing = |queue: &Queue| -> Result<()> {
            for (key, value) in attrs() {
                if !queue.attributes().matches(key, value) {
                    return Err(SqsError::new(
                        ErrorCode::QueueNameExists,
                        format!(
                            "A queue already exists with the same name and a different value for attribute {key}"
                        ),
                    ));
                }
            }
            Ok(())
        };
        if let Some(existing) = service.get(&name) {
            check_existing(&existing.lock())?;
            return Ok(QueueUrlOutput {
                queue_url: service.queue_url(ctx, &name),
            });
        }
        let attributes = QueueAttributes::for_new_queue(&name, attrs())?;
        check_redrive_target(service, &attributes)?;
        let now = now();
        let mut queue = Queue::new(&name, attributes, rand::random(), now);
        queue.tag(self.tags)?;
        let (slot, created) = service.insert_if_absent(queue, now)?;
        if !created {
            // Lost a race with a concurrent CreateQueue of the same name.
            check_existing(&slot.lock())?;
        }
        Ok(QueueUrlOutput {
            queue_url: service.queue_url(ctx, &name),
        })
    }
}

/// `GetQueueUrl` input.
#[derive(Deserialize, Debug)]
#[serde(rename_all = "PascalCase")]
pub struct GetQueueUrl {
    queue_name: Option<String>,
    #[serde(rename = "QueueOwnerAWSAccountId")]
    queue_owner_aws_account_id: Option<String>,
}

impl GetQueueUrl {
    pub(crate) fn apply(self, service: &Service, ctx: &RequestContext) -> Result<QueueUrlOutput> {
        let name = required(self.queue_name, "QueueName")?;
        if self
            .queue_owner_aws_account_id
            .is_some_and(|owner| owner != service.account_id)
        {
            return Err(SqsError::no_queue());
        }
        let slot = service.get(&name).ok_or_else(SqsError::no_queue)?;
        Ok(QueueUrlOutput {
            queue_url: service.queue_url(ctx, &slot.name),
        })
    }
}

/// `ListQueues` input.
#[derive(Deserialize, Debug)]
#[serde(rename_all = "PascalCase")]
pub struct ListQueues {
    queue_name_prefix: Option<String>,
    max_results: Option<i64>,
    next_token: Option<String>,
}

#[derive(Serialize, Default)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct ListQueuesOutput {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    queue_urls: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_token: Option<String>,
}

fn bad_token() -> SqsError {
    SqsError::invalid_parameter("Invalid NextToken value.")
}

impl ListQueues {
    pub(crate) fn apply(self, service: &Service, ctx: &RequestContext) -> Result<ListQueuesOutput> {
        let prefix = self.queue_name_prefix.unwrap_or_default();
        // Without MaxResults SQS returns up to 1000 and never paginates.
        let limit = match self.max_results {
            Some(n) => in_range(n, "MaxResults", 1..=1000)? as usize,
            None => 1000,
        };
        // The token is the last name of the previous page, so pages stay correct when
        // queues come and go in between.
        let after = match &self.next_token {
            Some(token) => {
                let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .decode(token)
                    .map_err(|_| bad_token())?;
                Some(String::from_utf8(raw).map_err(|_| bad_token())?)
            }
            None => None,
        };
        let mut names: Vec<String> = service
            .all()
            .into_iter()
            .map(|slot| slot.name.clone())
            .filter(|name| name.starts_with(&prefix))
            .filter(|name| after.as_ref().is_none_or(|after| name > after))
            .collect();
        let more = names.len() > limit;
        names.truncate(limit);
        let next_token = (more && self.max_results.is_some())
            .then(|| names.last())
            .flatten()
            .map(|last| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(last));
        Ok(ListQueuesOutput {
            queue_urls: names
                .iter()
                .map(|name| service.queue_url(ctx, name))
                .collect(),
            next_token,
        })
    }
}

/// `DeleteQueue` input.
pub type DeleteQueue = super::QueueUrlOnly;

impl super::QueueUrlOnly {
    fn slot(self, service: &Service) -> Result<std::sync::Arc<crate::service::QueueSlot>> {
        service.resolve_url(&required(self.queue_url, "QueueUrl")?)
    }

    pub(crate) fn apply_delete(self, service: &Service) -> Result<Empty> {
        let slot = self.slot(service)?;
        service.remove(&slot.name, now());
        Ok(Empty {})
    }
}

/// `PurgeQueue` input.
#[derive(Deserialize, Debug)]
#[serde(rename_all = "PascalCase")]
pub struct PurgeQueue {
    queue_url: Option<String>,
}

impl PurgeQueue {
    pub(crate) fn apply(self, service: &Service) -> Result<Empty> {
        let slot = service.resolve_url(&required(self.queue_url, "QueueUrl")?)?;
        slot.lock().purge(now())?;
        Ok(Empty {})
    }
}

/// `ListDeadLetterSourceQueues` input.
#[derive(Deserialize, Debug)]
#[serde(rename_all = "PascalCase")]
pub struct ListDeadLetterSourceQueues {
    queue_url: Option<String>,
    max_results: Option<i64>,
}

#[derive(Serialize)]
pub(crate) struct DeadLetterSources {
    #[serde(rename = "queueUrls")]
    queue_urls: Vec<String>,
}

impl ListDeadLetterSourceQueues {
    pub(crate) fn apply(
        self,
        service: &Service,
        ctx: &RequestContext,
    ) -> Result<DeadLetterSources> {
        let target = service.resolve_url(&required(self.queue_url, "QueueUrl")?)?;
        let limit = match self.max_results {
            Some(n) => in_range(n, "MaxResults", 1..=1000)? as usize,
            None => 1000,
        };
        let queue_urls = service
            .all()
            .into_iter()
            .filter(|slot| {
                slot.lock()
                    .attributes()
                    .redrive_policy
                    .as_ref()
                    .is_some_and(|p| p.dead_letter_target_arn == target.arn)
            })
            .take(limit)
            .map(|slot| service.queue_url(ctx, &slot.name))
            .collect();
        Ok(DeadLetterSources { queue_urls })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_names_are_1_to_80_of_alphanumerics_hyphens_underscores() {
        let ok = |name: &str| validate_queue_name(name).is_ok();
        assert!(ok("a") && ok("Jobs_2-b") && ok(&"q".repeat(80)));
        assert!(ok("orders.fifo") && ok(&format!("{}.fifo", "q".repeat(75))));
        // The .fifo suffix counts towards the 80.
        assert!(!ok(&format!("{}.fifo", "q".repeat(76))));
        for bad in [
            "",
            ".fifo",
            &"q".repeat(81),
            "a.b",
            "a b",
            "ä",
            "a/b",
            "q.FIFO",
        ] {
            assert_eq!(
                validate_queue_name(bad).unwrap_err().code,
                ErrorCode::InvalidParameterValue,
                "{bad:?}"
            );
        }
    }
}
