//! Setting barriers up, tearing them down, and looking at them: opening a
//! barrier (its configuration and queues) here, `setup` and `teardown` in
//! [`setup`](self::setup()), `status` and the queue table in `status`.

use std::collections::HashMap;

use aws_sdk_sqs::types::QueueAttributeName as A;
use sqs_barrier_core::names::{QueueNames, validate_barrier_name};
use sqs_barrier_core::{BarrierConfig, tags};

use crate::error::{Error, Result};
use crate::published;
use crate::sqs::{Sqs, is_missing_queue};

mod setup;
mod status;

pub use crate::info::{BarrierInfo, QueueUrls};

pub use setup::{SetupOptions, SetupOutcome, setup, teardown};
pub use status::{
    CoordinatorCheck, PROBE_TIMEOUT, QueueRow, Status, list_queues, status, status_with,
};

pub(crate) async fn queue_arn(sqs: &Sqs, url: &str) -> Result<String> {
    let out = sqs
        .client()
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(A::QueueArn)
        .send()
        .await
        .map_err(|e| sqs.error("GetQueueAttributes", e))?;
    out.attributes
        .and_then(|mut a| a.remove(&A::QueueArn))
        .ok_or_else(|| Error::Sqs {
            endpoint: sqs.endpoint().into(),
            operation: "GetQueueAttributes",
            detail: "no QueueArn in the answer".into(),
        })
}

async fn queue_url(sqs: &Sqs, queue: &str) -> Result<Option<String>> {
    match sqs.client().get_queue_url().queue_name(queue).send().await {
        Ok(out) => Ok(out.queue_url),
        Err(e) if is_missing_queue(&e) => Ok(None),
        Err(e) => Err(sqs.error("GetQueueUrl", e)),
    }
}

/// Finds barrier `name`: its queues, its configuration and the
/// coordinator's published state.
///
/// The configuration comes with the newest state the coordinator
/// published (a receive on the state queue, no tagging action); only
/// when no coordinator has published one is it read from the tags `setup`
/// stored (one `ListQueueTags`, retried while SQS throttles it).
pub async fn open(sqs: &Sqs, name: &str) -> Result<BarrierInfo> {
    let urls = find(sqs, name).await?;
    if let Some(record) = published::read_record(sqs, &urls.state).await?
        && record.config.name == name
    {
        return Ok(BarrierInfo {
            config: record.config,
            urls,
            state: Some(record.state).filter(|s| !s.is_initial()),
        });
    }
    from_tags(sqs, name, urls).await
}

/// Finds barrier `name` with the configuration `setup` stored in tags, and
/// (as its `state`) the copy of the published state kept there: one
/// `ListQueueTags`, no read of the state queue.
pub(crate) async fn open_stored(sqs: &Sqs, name: &str) -> Result<BarrierInfo> {
    let urls = find(sqs, name).await?;
    from_tags(sqs, name, urls).await
}

async fn from_tags(sqs: &Sqs, name: &str, urls: QueueUrls) -> Result<BarrierInfo> {
    let tag_map = published::list_tags(sqs, &urls.checkin).await?;
    let config = config_in_tags(name, &tag_map)?;
    Ok(BarrierInfo {
        config,
        urls,
        state: published::state_in_tags(&tag_map),
    })
}

fn config_in_tags(name: &str, tag_map: &HashMap<String, String>) -> Result<BarrierConfig> {
    let json = tags::decode(
        tags::CONFIG_PREFIX,
        tag_map.iter().map(|(k, v)| (k.as_str(), v.as_str())),
    )
    .map_err(|e| Error::Corrupt {
        barrier: name.into(),
        detail: e.to_string(),
    })?
    .ok_or_else(|| Error::Corrupt {
        barrier: name.into(),
        detail: "its check-in queue has no barrier configuration tags".into(),
    })?;
    BarrierConfig::from_json(&json).map_err(|e| Error::Corrupt {
        barrier: name.into(),
        detail: e.to_string(),
    })
}

/// The URLs of barrier `name`'s queues.
async fn find(sqs: &Sqs, name: &str) -> Result<QueueUrls> {
    validate_barrier_name(name)?;
    let not_set_up = || Error::NotSetUp {
        barrier: name.into(),
        endpoint: sqs.endpoint().into(),
    };
    let mut found = None;
    for fifo in [false, true] {
        let names = QueueNames::new(name, fifo);
        if let Some(url) = queue_url(sqs, &names.checkin).await? {
            found = Some((names, url));
            break;
        }
    }
    let (names, checkin) = found.ok_or_else(not_set_up)?;
    let r0 = queue_url(sqs, &names.release[0])
        .await?
        .ok_or_else(not_set_up)?;
    let r1 = queue_url(sqs, &names.release[1])
        .await?
        .ok_or_else(not_set_up)?;
    let dlq = queue_url(sqs, &names.dead_letter)
        .await?
        .ok_or_else(not_set_up)?;
    let outdated = |queue: &str| Error::Outdated {
        barrier: name.into(),
        queue: queue.to_owned(),
    };
    let state = queue_url(sqs, &names.state)
        .await?
        .ok_or_else(|| outdated(&names.state))?;
    let lease = queue_url(sqs, &names.lease)
        .await?
        .ok_or_else(|| outdated(&names.lease))?;
    Ok(QueueUrls {
        checkin,
        release: [r0, r1],
        dead_letter: dlq,
        state,
        lease,
    })
}

pub use crate::published::{peek_state, read_state};

/// Before the first state of version 2 (a roll, gathered data), makes the
/// stored configuration version 2 too: builds that read only version 1
/// then refuse to open the barrier (a clear error) rather than read the
/// state as none and count against the configured membership. Once per
/// barrier: returns the configuration as it is now (`config` marked
/// extended), for the caller to keep. One `ListQueueTags` and, the first
/// time, one `TagQueue`.
pub(crate) async fn mark_extended(sqs: &Sqs, info: &BarrierInfo) -> Result<BarrierConfig> {
    let mut cfg = info.config.clone();
    if cfg.extended || cfg.quorum.is_some() {
        return Ok(cfg);
    }
    let tag_map = published::list_tags(sqs, &info.urls.checkin).await?;
    let stored = config_in_tags(&cfg.name, &tag_map)?;
    if !(stored.extended || stored.quorum.is_some()) {
        let mut marked = stored;
        marked.extended = true;
        published::write_document(
            sqs,
            &info.urls.checkin,
            tags::CONFIG_PREFIX,
            &marked.to_json(),
            &cfg.name,
        )
        .await?;
    }
    cfg.extended = true;
    Ok(cfg)
}

/// This host's name, for ids and labels: the kernel's
/// (`/proc/sys/kernel/hostname`), else what `uname -n` prints, else
/// `host`. Not `$HOSTNAME`: shells set it but do not export it. Read once
/// per process.
pub fn hostname() -> String {
    static NAME: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    NAME.get_or_init(|| {
        let clean = |s: &str| {
            let s = s.trim();
            (!s.is_empty()).then(|| s.to_owned())
        };
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .and_then(|s| clean(&s))
            .or_else(|| {
                std::process::Command::new("uname")
                    .arg("-n")
                    .output()
                    .ok()
                    .filter(|o| o.status.success())
                    .and_then(|o| clean(&String::from_utf8_lossy(&o.stdout)))
            })
            .unwrap_or_else(|| "host".to_owned())
    })
    .clone()
}
