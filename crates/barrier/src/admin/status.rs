//! What `status`, the console and `queues` show: a barrier's state and
//! whether its coordinator answers, and the queue table.

use std::time::Duration;

use aws_sdk_sqs::types::QueueAttributeName as A;
use sqs_barrier_core::state::PublishedState;
use sqs_barrier_core::wire::Message;
use sqs_barrier_core::{BarrierConfig, Roll};

use super::{hostname, open};
use crate::clock::wall_ms;
use crate::error::Result;
use crate::published::read_state;
use crate::sqs::{Sqs, is_missing_queue};

/// The state of a barrier, for `status`.
#[derive(Clone, Debug)]
pub struct Status {
    /// The configuration.
    pub config: BarrierConfig,
    /// The coordinator's published state, if any (the newest read).
    pub state: Option<PublishedState>,
    /// The age of the coordinator's last heartbeat by this host's wall clock
    /// (for people: the writer's clock may differ).
    pub heartbeat_age: Option<Duration>,
    /// Whether a coordinator is alive, and how that was found out.
    pub check: CoordinatorCheck,
    /// Messages waiting in the dead-letter queue (approximate).
    pub dead_letters: Option<u64>,
}

/// How `status` found out whether a coordinator is alive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CoordinatorCheck {
    /// No coordinator has ever published a state.
    NoState,
    /// The last coordinator stopped cleanly; none is active.
    Stopped,
    /// It answered a probe (published a new state) after this long.
    Answered(Duration),
    /// It did not answer a probe within this long.
    NoAnswer(Duration),
    /// Not probed: judged by the heartbeat's age on this host's clock only,
    /// which is right only if the clocks of the hosts agree.
    Unprobed {
        /// The heartbeat looks recent by this host's clock.
        looks_recent: bool,
    },
}

impl std::fmt::Display for CoordinatorCheck {
    /// How the coordinator was judged, in words.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NoState => f.write_str("no coordinator has run"),
            Self::Stopped => f.write_str("stopped cleanly; start one to go on"),
            Self::Answered(d) => write!(f, "answered a probe in {:.2} s", d.as_secs_f64()),
            Self::NoAnswer(d) => write!(f, "did not answer a probe in {:.1} s", d.as_secs_f64()),
            Self::Unprobed { .. } => f.write_str("not probed; judged by this host's clock"),
        }
    }
}

impl Status {
    /// Whether a coordinator is alive (see [`CoordinatorCheck`]).
    pub fn coordinator_alive(&self) -> bool {
        matches!(
            self.check,
            CoordinatorCheck::Answered(_) | CoordinatorCheck::Unprobed { looks_recent: true }
        )
    }

    /// Who is expected at which generation: the configured membership as
    /// the coordinator's published state changed it.
    pub fn roll(&self) -> Roll {
        match &self.state {
            Some(s) => s.roll(&self.config.members),
            None => Roll::new(self.config.members.clone()),
        }
    }

    /// The members of every phase from the current one on, as far as the
    /// published roll tells: `(first phase, members)`, the last entry
    /// holding for every later phase.
    pub fn members_by_phase(&self) -> Vec<(u64, Vec<String>)> {
        let roll = self.roll();
        let start = self.generation().unwrap_or(0);
        let mut bounds: Vec<u64> = (0..roll.len())
            .flat_map(|i| {
                let s = roll.span(i);
                [Some(s.from), s.end].into_iter().flatten()
            })
            .filter(|g| *g > start)
            .collect();
        bounds.sort_unstable();
        bounds.dedup();
        let names = |g: u64| roll.expected(g).map(|i| roll.name(i)).collect::<Vec<_>>();
        let mut out = vec![(start, names(start))];
        for g in bounds {
            let m = names(g);
            if out.last().is_some_and(|(_, l)| *l != m) {
                out.push((g, m));
            }
        }
        out
    }

    /// The members that have arrived at the open generation (none if no
    /// generation is open).
    pub fn arrived(&self) -> Vec<String> {
        let roll = self.roll();
        self.state
            .as_ref()
            .and_then(|s| s.open.as_ref())
            .map(|o| {
                (0..roll.len())
                    .filter(|i| o.arrived.contains(*i))
                    .map(|i| roll.name(i))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The members that have not arrived at the open generation (`None` if
    /// no generation is open).
    pub fn missing(&self) -> Option<Vec<String>> {
        let roll = self.roll();
        self.state
            .as_ref()
            .and_then(|s| s.open.as_ref())
            .map(|o| roll.missing(o.generation, &o.arrived))
    }

    /// The generation the barrier is at: the open one, else the lowest not
    /// yet released (`None` before any coordinator published a state).
    pub fn generation(&self) -> Option<u64> {
        self.state
            .as_ref()
            .map(|s| s.open.as_ref().map_or(s.released_below, |o| o.generation))
    }

    /// The status as a JSON object: the document `sqs-barrier status --json`
    /// prints, for programs.
    pub fn to_json(&self) -> serde_json::Value {
        let cfg = &self.config;
        let state = self.state.as_ref();
        serde_json::json!({
            "barrier": cfg.name,
            "instance": cfg.instance,
            "parties": cfg.members.len(),
            "fifo": cfg.fifo,
            "deadline_secs": cfg.deadline.map(|d| d.as_secs_f64()),
            "quorum": cfg.quorum.map(|q| serde_json::json!({
                "min": q.min,
                "grace_secs": q.grace.as_secs_f64(),
            })),
            "roll_version": state.and_then(|s| s.roll.as_ref()).map_or(0, |r| r.v),
            "members_by_phase": self.members_by_phase().into_iter().map(|(from, members)| {
                serde_json::json!({"from_phase": from, "members": members})
            }).collect::<Vec<_>>(),
            "generation": self.generation(),
            "released_below": state.map(|s| s.released_below),
            "arrived": self.arrived(),
            "missing": self.missing(),
            "coordinator": state.map(|s| s.coordinator.clone()),
            "coordinator_alive": self.coordinator_alive(),
            "coordinator_check": self.check.to_string(),
            "standbys": state.map_or(vec![], |s| s.standbys.clone()),
            "heartbeat_age_secs": self.heartbeat_age.map(|d| d.as_secs_f64()),
            "broken": state.and_then(|s| s.broken.as_ref()).map(|b| serde_json::json!({
                "from_gen": b.from_gen,
                "cause": b.cause.to_string(),
                "missing": b.missing,
                "missing_count": b.missing_count,
            })),
            "rejected": state.map_or(0, |s| s.rejected),
            "dead_letters": self.dead_letters,
        })
    }
}

/// How long `status` waits for a coordinator to answer a probe.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

/// Reads the status of barrier `name`, probing the coordinator.
pub async fn status(sqs: &Sqs, name: &str) -> Result<Status> {
    status_with(sqs, name, true).await
}

/// Reads the status of barrier `name`. With `probe`, it sends the
/// coordinator a probe (a message on the check-in queue, which the
/// coordinator deletes) and waits up to [`PROBE_TIMEOUT`] for a new state:
/// liveness is then judged without comparing clocks of different hosts.
pub async fn status_with(sqs: &Sqs, name: &str, probe: bool) -> Result<Status> {
    let info = open(sqs, name).await?;
    let mut state = read_state(sqs, &info).await?;
    let check = match &state {
        None => CoordinatorCheck::NoState,
        Some(s) if s.stopped => CoordinatorCheck::Stopped,
        Some(s) if !probe => CoordinatorCheck::Unprobed {
            looks_recent: s.looks_recent(wall_ms()),
        },
        Some(s) => {
            let seen = s.order();
            let body = Message::Probe {
                barrier: info.config.name.clone(),
                instance: info.config.instance.clone(),
                from: format!("status@{}", hostname()),
                watch: false,
            }
            .encode();
            crate::checkin::send_checkin(sqs, &info, &body, "status-probe").await?;
            let sent = std::time::Instant::now();
            loop {
                tokio::time::sleep(Duration::from_millis(250)).await;
                let now = read_state(sqs, &info).await?;
                // An older write still in the queue is no answer.
                let changed = now.as_ref().is_some_and(|n| n.order() > seen);
                if changed {
                    state = now;
                    break CoordinatorCheck::Answered(sent.elapsed());
                }
                if sent.elapsed() >= PROBE_TIMEOUT {
                    break CoordinatorCheck::NoAnswer(sent.elapsed());
                }
            }
        }
    };
    let heartbeat_age = state
        .as_ref()
        .map(|s| Duration::from_millis(wall_ms().saturating_sub(s.heartbeat_ms)));
    let dead_letters = sqs
        .client()
        .get_queue_attributes()
        .queue_url(&info.urls.dead_letter)
        .attribute_names(A::ApproximateNumberOfMessages)
        .send()
        .await
        .ok()
        .and_then(|o| o.attributes)
        .and_then(|a| a.get(&A::ApproximateNumberOfMessages).cloned())
        .and_then(|v| v.parse().ok());
    Ok(Status {
        config: info.config,
        state,
        heartbeat_age,
        check,
        dead_letters,
    })
}

/// One row of the SQS console's queue table.
#[derive(Clone, Debug, serde::Serialize)]
pub struct QueueRow {
    /// The queue's name.
    pub name: String,
    /// `Standard` or `FIFO`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Creation time, seconds since the Unix epoch.
    pub created: Option<u64>,
    /// ApproximateNumberOfMessages.
    pub messages_available: Option<u64>,
    /// ApproximateNumberOfMessagesNotVisible.
    pub messages_in_flight: Option<u64>,
    /// ApproximateNumberOfMessagesDelayed.
    pub messages_delayed: Option<u64>,
    /// `SSE-SQS`, `SSE-KMS` or `Disabled`.
    pub encryption: String,
    /// `Enabled`/`Disabled` for FIFO queues, `-` for standard ones.
    pub content_based_deduplication: String,
    /// The queue's URL.
    pub url: String,
}

/// Lists queues (optionally by name prefix) with the console's columns.
pub async fn list_queues(sqs: &Sqs, prefix: Option<&str>) -> Result<Vec<QueueRow>> {
    let mut urls = Vec::new();
    let mut token = None;
    loop {
        let out = sqs
            .client()
            .list_queues()
            .set_queue_name_prefix(prefix.map(str::to_owned))
            .max_results(1000)
            .set_next_token(token)
            .send()
            .await
            .map_err(|e| sqs.error("ListQueues", e))?;
        urls.extend(out.queue_urls.unwrap_or_default());
        token = out.next_token;
        if token.is_none() {
            break;
        }
    }
    let mut rows = Vec::with_capacity(urls.len());
    for url in urls {
        let attrs = match sqs
            .client()
            .get_queue_attributes()
            .queue_url(&url)
            .attribute_names(A::All)
            .send()
            .await
        {
            Ok(o) => o.attributes.unwrap_or_default(),
            // Deleted between the listing and now.
            Err(e) if is_missing_queue(&e) => continue,
            Err(e) => return Err(sqs.error("GetQueueAttributes", e)),
        };
        let num = |k: &A| attrs.get(k).and_then(|v| v.parse::<u64>().ok());
        let name = url.rsplit('/').next().unwrap_or(&url).to_owned();
        let fifo = attrs.get(&A::FifoQueue).is_some_and(|v| v == "true") || name.ends_with(".fifo");
        let encryption = if attrs.get(&A::KmsMasterKeyId).is_some_and(|v| !v.is_empty()) {
            "SSE-KMS"
        } else if attrs
            .get(&A::SqsManagedSseEnabled)
            .is_some_and(|v| v == "true")
        {
            "SSE-SQS"
        } else {
            "Disabled"
        };
        let cbd = if !fifo {
            "-"
        } else if attrs
            .get(&A::ContentBasedDeduplication)
            .is_some_and(|v| v == "true")
        {
            "Enabled"
        } else {
            "Disabled"
        };
        rows.push(QueueRow {
            kind: if fifo { "FIFO" } else { "Standard" }.into(),
            created: num(&A::CreatedTimestamp),
            messages_available: num(&A::ApproximateNumberOfMessages),
            messages_in_flight: num(&A::ApproximateNumberOfMessagesNotVisible),
            messages_delayed: num(&A::ApproximateNumberOfMessagesDelayed),
            encryption: encryption.into(),
            content_based_deduplication: cbd.into(),
            name,
            url,
        });
    }
    rows.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(rows)
}
