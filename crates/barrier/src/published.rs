//! Where the coordinator's published state lives: messages on the
//! barrier's state queue (`NAME-state`), and a low-rate copy in the
//! check-in queue's tags.
//!
//! SQS allows an account five tagging actions a second (ListQueueTags,
//! TagQueue and UntagQueue together), shared by every queue and program of
//! the account, so the state is not kept in tags, which every waiting
//! member would read and every coordinator write would rewrite. Instead:
//!
//! * **A write** hides what the state queue holds (one receive with a
//!   short visibility timeout), checks that no other coordinator published
//!   a state that orders after this one (else it stands down and makes it
//!   all visible again), sends the new state as a message, and deletes the
//!   older ones it hid. Three data-plane requests, no tagging action.
//! * **A read** is one receive with visibility timeout 0 (nothing is taken
//!   from anyone) and takes the newest of the states it got, by
//!   [`PublishedState::order`]. An empty read means "nothing new", never
//!   "no coordinator": a write hides the old state for a moment.
//! * **The copy in tags** (the `sqs-barrier.state.N` tags, where earlier
//!   versions kept the state) is written at most every
//!   [`BACKSTOP_EVERY`], within [`BACKSTOP_MEMBERSHIP`] of a membership
//!   change, and when a coordinator stops cleanly; a coordinator process
//!   reads it once when it starts. It keeps the state of a barrier whose
//!   queue held nothing for longer than SQS's longest retention (14 days
//!   without a coordinator), and carries a barrier set up by an earlier
//!   version over to the queue.
//!
//! Every record carries the barrier's configuration and instance, so that
//! opening a barrier while a coordinator runs needs no tagging action, and
//! a reader of a barrier that was set up again under the same name finds
//! out ([`Error::Recreated`]).

use std::collections::HashMap;
use std::time::Duration;

use rand::Rng;
use sqs_barrier_core::record::{StateRecord, newest};
use sqs_barrier_core::state::PublishedState;
use sqs_barrier_core::{BarrierConfig, tags};

use crate::clock::mono_now;
use crate::error::{Error, Result};
use crate::info::BarrierInfo;
use crate::sqs::Sqs;

/// A read's long poll, in seconds: an empty answer then means the queue
/// held no visible state for a second (a short poll may miss messages).
const READ_WAIT: i32 = 1;

/// How long a write hides the messages it is about to replace: well over
/// the two requests until it deletes them, short enough that a writer
/// that dies in between leaves them out of sight for a few seconds only.
const WRITE_HIDE: i32 = 5;

/// The longest the copy of the state in tags may lag behind while the
/// state changes.
pub const BACKSTOP_EVERY: Duration = Duration::from_secs(600);

/// How soon after a membership change (a join, a leave, a member dropped)
/// the copy in tags records it.
pub const BACKSTOP_MEMBERSHIP: Duration = Duration::from_secs(10);

/// How long a tagging action that SQS throttles is retried before the
/// caller gets the error.
pub const TAGGING_PATIENCE: Duration = Duration::from_secs(120);

/// One message of the state queue, as received.
struct Received {
    receipt: String,
    record: Option<StateRecord>,
}

async fn receive(sqs: &Sqs, url: &str, visibility: i32, wait: i32) -> Result<Vec<Received>> {
    let out = sqs
        .client()
        .receive_message()
        .queue_url(url)
        .max_number_of_messages(10)
        .visibility_timeout(visibility)
        .wait_time_seconds(wait)
        .send()
        .await
        .map_err(|e| sqs.error("ReceiveMessage", e))?;
    Ok(out
        .messages
        .unwrap_or_default()
        .into_iter()
        .filter_map(|m| {
            let receipt = m.receipt_handle?;
            let record = m
                .body
                .as_deref()
                .and_then(|b| StateRecord::from_json(b).ok());
            Some(Received { receipt, record })
        })
        .collect())
}

/// Reads the state queue at `url` without knowing the instance: the newest
/// record it holds, whatever its instance (for `open`, which learns the
/// instance from it).
pub(crate) async fn read_record(sqs: &Sqs, url: &str) -> Result<Option<StateRecord>> {
    let got = receive(sqs, url, 0, READ_WAIT).await?;
    Ok(newest(got.iter().filter_map(|r| r.record.as_ref())).cloned())
}

/// On a barrier just set up (or one an earlier version set up, whose state
/// queue was just added): if the state queue holds no record, publishes
/// the first one, with the configuration `setup` stored and, as its state,
/// the copy in tags if there is one (the state an earlier version kept
/// there) or [`PublishedState::initial`]. From then on opening the barrier
/// takes no tagging action, and the first coordinator starts at once.
pub(crate) async fn publish_first(sqs: &Sqs, info: &BarrierInfo) -> Result<()> {
    if read_record(sqs, &info.urls.state).await?.is_some() {
        return Ok(());
    }
    let state = info
        .state
        .clone()
        .unwrap_or_else(|| PublishedState::initial(crate::clock::wall_ms()));
    let record = StateRecord {
        config: info.config.clone(),
        state,
    };
    sqs.client()
        .send_message()
        .queue_url(&info.urls.state)
        .message_body(record.to_json())
        .send()
        .await
        .map_err(|e| sqs.error("SendMessage", e))?;
    Ok(())
}

/// Reads the coordinator's published state: the newest of the barrier
/// instance's records one receive finds; `None` if it found none.
///
/// Fails with [`Error::Recreated`] when it finds records of another
/// instance only: the barrier was deleted and set up again since `info`
/// was opened.
///
/// The state `setup` published before any coordinator ran
/// ([`PublishedState::is_initial`]) reads as none.
pub async fn read_state(sqs: &Sqs, info: &BarrierInfo) -> Result<Option<PublishedState>> {
    Ok(read_state_record(sqs, info)
        .await?
        .map(|r| r.state)
        .filter(|s| !s.is_initial()))
}

/// [`read_state`] without the long poll: it answers at once, and may find
/// nothing although a record is there (SQS samples some of its servers
/// without one). For a page that refreshes every second.
pub async fn peek_state(sqs: &Sqs, info: &BarrierInfo) -> Result<Option<PublishedState>> {
    let got = receive(sqs, &info.urls.state, 0, 0).await?;
    Ok(pick(info, got.iter().filter_map(|r| r.record.as_ref()))?
        .map(|r| r.state)
        .filter(|s| !s.is_initial()))
}

/// [`read_state`], with the configuration the state's writer went by
/// (marked version 2 once it was).
pub(crate) async fn read_state_record(
    sqs: &Sqs,
    info: &BarrierInfo,
) -> Result<Option<StateRecord>> {
    let got = receive(sqs, &info.urls.state, 0, READ_WAIT).await?;
    pick(info, got.iter().filter_map(|r| r.record.as_ref()))
}

fn pick<'a>(
    info: &BarrierInfo,
    records: impl Iterator<Item = &'a StateRecord>,
) -> Result<Option<StateRecord>> {
    let instance = &info.config.instance;
    let (ours, theirs): (Vec<_>, Vec<_>) = records.partition(|r| r.is_of(instance));
    if let (true, Some(other)) = (ours.is_empty(), theirs.first()) {
        return Err(Error::Recreated {
            barrier: info.config.name.clone(),
            instance: instance.clone(),
            now: other.config.instance.clone(),
        });
    }
    Ok(newest(ours).cloned())
}

/// Publishes `state` (written by the coordinator whose configuration is
/// `config`). Returns `Some(other)` instead, and publishes nothing, when
/// the queue holds a state of another coordinator that orders after it:
/// that one took over, and this one stands down.
///
/// `lease_until` is when (on [`mono_now`]'s clock) the writer's lease runs
/// out: past it, the write is not sent ([`Error::LeaseRanOut`]).
pub(crate) async fn write_state(
    sqs: &Sqs,
    info: &BarrierInfo,
    config: &BarrierConfig,
    state: &PublishedState,
    lease_until: Duration,
) -> Result<Option<Box<PublishedState>>> {
    let url = &info.urls.state;
    let got = receive(sqs, url, WRITE_HIDE, 0).await?;
    let mine = state.order();
    // The barrier was deleted and set up again: its queue is the new
    // instance's, and nothing of it may be deleted or outranked by this one.
    if let Some(other) = got
        .iter()
        .filter_map(|r| r.record.as_ref())
        .find(|r| !r.is_of(&config.instance))
    {
        let now = other.config.instance.clone();
        let receipts: Vec<String> = got.into_iter().map(|r| r.receipt).collect();
        let _ = sqs.change_visibility(url, &receipts, 0).await;
        return Err(Error::Recreated {
            barrier: config.name.clone(),
            instance: config.instance.clone(),
            now,
        });
    }
    let ours = got
        .iter()
        .filter_map(|r| r.record.as_ref())
        .filter(|r| r.is_of(&config.instance));
    if let Some(other) = newest(ours).filter(|r| r.state.order() > mine) {
        let other = Box::new(other.state.clone());
        let receipts: Vec<String> = got.into_iter().map(|r| r.receipt).collect();
        if let Err(e) = sqs.change_visibility(url, &receipts, 0).await {
            tracing::debug!(error = %e, "could not make the state queue's messages visible again; they reappear in seconds");
        }
        return Ok(Some(other));
    }
    let record = StateRecord {
        config: config.clone(),
        state: state.clone(),
    };
    if mono_now() >= lease_until {
        let receipts: Vec<String> = got.into_iter().map(|r| r.receipt).collect();
        let _ = sqs.change_visibility(url, &receipts, 0).await;
        return Err(Error::LeaseRanOut {
            barrier: config.name.clone(),
        });
    }
    sqs.client()
        .send_message()
        .queue_url(url)
        .message_body(record.to_json())
        .send()
        .await
        .map_err(|e| sqs.error("SendMessage", e))?;
    // Everything hidden orders before this write (or is junk): it may go.
    // Beside the caller: the write is durable now, and what a delete that
    // never happens leaves behind orders before it (the next write deletes
    // it once it is visible again).
    let receipts: Vec<String> = got.into_iter().map(|r| r.receipt).collect();
    if !receipts.is_empty() {
        let (sqs, url) = (sqs.clone(), url.clone());
        tokio::spawn(async move {
            for chunk in receipts.chunks(10) {
                if let Err(e) = sqs.delete_batch(&url, chunk).await {
                    tracing::debug!(error = %e, "could not delete older states; the next write does");
                }
            }
        });
    }
    Ok(None)
}

/// The check-in queue's tags, read with [`with_patience`].
pub(crate) async fn list_tags(sqs: &Sqs, url: &str) -> Result<HashMap<String, String>> {
    with_patience(|| async {
        let out = sqs
            .client()
            .list_queue_tags()
            .queue_url(url)
            .send()
            .await
            .map_err(|e| sqs.error("ListQueueTags", e))?;
        Ok(out.tags.unwrap_or_default())
    })
    .await
}

/// The copy of the state in the tags `tag_map`, if any.
pub(crate) fn state_in_tags(tag_map: &HashMap<String, String>) -> Option<PublishedState> {
    tags::decode(
        tags::STATE_PREFIX,
        tag_map.iter().map(|(k, v)| (k.as_str(), v.as_str())),
    )
    .ok()
    .flatten()
    .and_then(|json| PublishedState::from_json(&json))
}

/// Writes the copy of `state` into the check-in queue's tags: one
/// `TagQueue`, not retried (a copy that SQS throttles waits for the next
/// one: it must not hold up a coordinator that is stopping).
pub(crate) async fn write_backstop(
    sqs: &Sqs,
    info: &BarrierInfo,
    state: &PublishedState,
) -> Result<()> {
    let chunks =
        tags::encode(tags::STATE_PREFIX, &state.to_json()).map_err(|e| Error::Corrupt {
            barrier: info.config.name.clone(),
            detail: e.to_string(),
        })?;
    let mut req = sqs.client().tag_queue().queue_url(&info.urls.checkin);
    for (k, v) in chunks {
        req = req.tags(k, v);
    }
    req.send().await.map_err(|e| sqs.error("TagQueue", e))?;
    Ok(())
}

/// Writes the document `json` under `prefix` in the queue's tags, in one
/// `TagQueue` call (retried with [`with_patience`]).
pub(crate) async fn write_document(
    sqs: &Sqs,
    queue_url: &str,
    prefix: &str,
    json: &str,
    barrier: &str,
) -> Result<()> {
    let chunks = tags::encode(prefix, json).map_err(|e| Error::Corrupt {
        barrier: barrier.into(),
        detail: e.to_string(),
    })?;
    with_patience(|| async {
        let mut req = sqs.client().tag_queue().queue_url(queue_url);
        for (k, v) in chunks.clone() {
            req = req.tags(k, v);
        }
        req.send().await.map_err(|e| sqs.error("TagQueue", e))?;
        Ok(())
    })
    .await
}

/// Runs `op` until it succeeds, fails with anything but throttling, or
/// has been throttled for [`TAGGING_PATIENCE`]: SQS throttles tagging
/// actions account-wide, so a burst of them (many processes starting at
/// once) is worth waiting out. Backoff doubles from 200 ms to 5 s, with
/// full jitter so that processes throttled together do not retry together.
pub(crate) async fn with_patience<T, F, Fut>(mut op: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    let start = tokio::time::Instant::now();
    let mut backoff = Duration::from_millis(200);
    loop {
        match op().await {
            Err(e) if e.is_throttled() && start.elapsed() < TAGGING_PATIENCE => {
                let pause = backoff.mul_f64(rand::rng().random_range(0.0..=1.0));
                tracing::debug!(error = %e, ?pause, "throttled; retrying");
                tokio::time::sleep(pause).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::info::QueueUrls;
    use sqs_barrier_core::Membership;

    fn info(instance: &str) -> BarrierInfo {
        BarrierInfo {
            config: BarrierConfig::new(
                "b",
                instance,
                Membership::new(2, None).unwrap(),
                None,
                false,
            )
            .unwrap(),
            urls: QueueUrls {
                checkin: "c".into(),
                release: ["r0".into(), "r1".into()],
                dead_letter: "d".into(),
                state: "s".into(),
                lease: "l".into(),
            },
            state: None,
        }
    }

    fn record(instance: &str, coordinator: &str, seq: u64) -> StateRecord {
        let mut state = PublishedState::from_json(
            r#"{"v":1,"coordinator":"x","heartbeat_ms":1,"released_below":0}"#,
        )
        .unwrap();
        state.coordinator = coordinator.into();
        state.seq = seq;
        StateRecord {
            config: info(instance).config,
            state,
        }
    }

    #[test]
    fn a_reader_takes_the_newest_of_its_instance() {
        let i = info("00000000000000aa");
        let rs = [
            record("00000000000000aa", "a", 2),
            record("00000000000000aa", "a", 5),
            record("00000000000000bb", "z", 9),
        ];
        let got = pick(&i, rs.iter()).unwrap().unwrap().state;
        assert_eq!((got.coordinator.as_str(), got.seq), ("a", 5));
        assert!(pick(&i, [].iter()).unwrap().is_none());
    }

    #[test]
    fn only_another_instance_means_the_barrier_was_set_up_again() {
        let i = info("00000000000000aa");
        let rs = [record("00000000000000bb", "z", 9)];
        let err = pick(&i, rs.iter()).unwrap_err();
        assert!(matches!(err, Error::Recreated { .. }), "{err}");
    }
}
