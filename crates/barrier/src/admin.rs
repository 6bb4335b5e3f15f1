//! Setting barriers up, tearing them down, and looking at them.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_sqs::types::QueueAttributeName as A;
use sqs_barrier_core::names::{QueueNames, validate_barrier_name};
use sqs_barrier_core::state::PublishedState;
use sqs_barrier_core::wire::Message;
use sqs_barrier_core::{BarrierConfig, Membership, Roll, tags};

use crate::clock::wall_ms;
use crate::error::{Error, Result};
use crate::published;
use crate::sqs::{Sqs, is_missing_queue};

/// Queue settings, and why (docs/PROTOCOL.md explains them in full).
mod settings {
    /// Check-ins are held until their generation is released, and a phase
    /// can be long: keep them as long as SQS allows.
    pub const CHECKIN_RETENTION: &str = "1209600";
    /// The coordinator extends the visibility of check-ins it holds; if it
    /// dies, they are visible again to its successor after this long.
    pub const CHECKIN_VISIBILITY: &str = "30";
    /// A notice is read within moments of its release; one the coordinator
    /// did not sweep (a duplicate, a sweep that missed) must not outlive a
    /// few generations. 60 s is the minimum SQS allows.
    pub const RELEASE_RETENTION: &str = "60";
    /// Every participant reads the one notice of its generation with a
    /// visibility timeout of 0 and passes it on its own receives; the same
    /// default means a client that does not pass one (or an SQS-compatible
    /// server that treats 0 as "not given") hides nothing from the others.
    pub const RELEASE_VISIBILITY: &str = "0";
    /// Long polling by default, also for clients that do not ask for it.
    pub const WAIT: &str = "20";
    /// A coordinator rewrites its state at least every few minutes while it
    /// runs; without one the last state must last as long as SQS allows
    /// (the copy in tags outlives it, see `published`).
    pub const STATE_RETENTION: &str = "1209600";
    /// Readers pass visibility 0 and take nothing from anyone; the same
    /// default for clients that pass none.
    pub const STATE_VISIBILITY: &str = "0";
    /// The lease token is received and extended, never deleted: keep it as
    /// long as SQS allows (a coordinator that finds none puts a new one).
    pub const LEASE_RETENTION: &str = "1209600";
    /// What a receive of the token hides it for, unless it says otherwise:
    /// the lease's term.
    pub const LEASE_VISIBILITY: &str = "10";
    /// Dead letters are for people to read: keep them the longest.
    pub const DLQ_RETENTION: &str = "1209600";
    /// A backstop: a message that keeps coming back (a coordinator that
    /// crashes on it) moves aside. High, because every coordinator restart
    /// adds a receive to the check-ins it held.
    pub const MAX_RECEIVES: u32 = 100;
}

/// What `setup` is asked to create.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct SetupOptions {
    /// The number of members.
    pub parties: usize,
    /// Their names, if not `0..parties`.
    pub members: Option<Vec<String>>,
    /// The barrier deadline (see [`BarrierConfig::deadline`]).
    pub deadline: Option<Duration>,
    /// A FIFO check-in queue.
    pub fifo: bool,
    /// A quorum release: `(min, grace)` (see [`sqs_barrier_core::Quorum`]).
    pub quorum: Option<(usize, Duration)>,
}

impl SetupOptions {
    /// `parties` anonymous members, no deadline, standard queues.
    pub fn new(parties: usize) -> Self {
        Self {
            parties,
            members: None,
            deadline: None,
            fifo: false,
            quorum: None,
        }
    }
}

/// The URLs of a barrier's queues.
#[derive(Clone, Debug)]
pub struct QueueUrls {
    /// The check-in queue.
    pub checkin: String,
    /// The release queues, by generation parity.
    pub release: [String; 2],
    /// The dead-letter queue.
    pub dead_letter: String,
    /// The state queue: the coordinator's published state.
    pub state: String,
    /// The lease queue: the token of the coordinator that decides.
    pub lease: String,
}

impl QueueUrls {
    /// The release queue of `generation`.
    pub fn release_for(&self, generation: u64) -> &str {
        &self.release[(generation % 2) as usize]
    }
}

/// A barrier that exists: its configuration and queues.
#[derive(Clone, Debug)]
pub struct BarrierInfo {
    /// The configuration `setup` stored.
    pub config: BarrierConfig,
    /// The queues.
    pub urls: QueueUrls,
    /// The coordinator's published state when the barrier was opened (read
    /// with the configuration), if any: who was expected where then.
    pub state: Option<PublishedState>,
}

/// What `setup` did.
#[derive(Clone, Debug)]
pub struct SetupOutcome {
    /// The barrier.
    pub info: BarrierInfo,
    /// False if it existed already with the same rules.
    pub created: bool,
}

fn random_id() -> String {
    format!("{:016x}", rand::random::<u64>())
}

/// Creates barrier `name`'s queues and stores its configuration.
///
/// Idempotent: setting up an existing barrier with the same rules returns
/// it unchanged; with different rules it is an [`Error::Conflict`].
pub async fn setup(sqs: &Sqs, name: &str, opts: &SetupOptions) -> Result<SetupOutcome> {
    validate_barrier_name(name)?;
    let members = Membership::new(opts.parties, opts.members.clone())?;
    let mut wanted = BarrierConfig::new(name, &random_id(), members, opts.deadline, opts.fifo)?;
    if let Some((min, grace)) = opts.quorum {
        wanted = wanted.with_quorum(min, grace)?;
    }
    let names = QueueNames::new(name, opts.fifo);

    let existing = match open_stored(sqs, name).await {
        Err(Error::Outdated { .. }) => {
            // Set up by an earlier version: add the queues it lacks.
            create_state_queue(sqs, &names).await?;
            create_lease_queue(sqs, &names).await?;
            open_stored(sqs, name).await.ok()
        }
        found => found.ok(),
    };
    if let Some(existing) = existing {
        if existing.config.same_rules(&wanted) {
            published::publish_first(sqs, &existing).await?;
            return Ok(SetupOutcome {
                info: existing,
                created: false,
            });
        }
        return Err(Error::Conflict {
            barrier: name.into(),
            detail: describe_difference(&existing.config, &wanted),
        });
    }

    let sse = |b: aws_sdk_sqs::operation::create_queue::builders::CreateQueueFluentBuilder| {
        b.attributes(A::SqsManagedSseEnabled, "true")
            .attributes(A::ReceiveMessageWaitTimeSeconds, settings::WAIT)
    };
    let fifo = |b: aws_sdk_sqs::operation::create_queue::builders::CreateQueueFluentBuilder| {
        if opts.fifo {
            b.attributes(A::FifoQueue, "true")
        } else {
            b
        }
    };

    let dlq_url = create(
        sqs,
        fifo(sse(sqs
            .client()
            .create_queue()
            .queue_name(&names.dead_letter)))
        .attributes(A::MessageRetentionPeriod, settings::DLQ_RETENTION),
    )
    .await?;
    let dlq_arn = queue_arn(sqs, &dlq_url).await?;
    let redrive = format!(
        r#"{{"deadLetterTargetArn":"{dlq_arn}","maxReceiveCount":"{}"}}"#,
        settings::MAX_RECEIVES
    );
    let config_tags = tags::encode(tags::CONFIG_PREFIX, &wanted.to_json()).map_err(|e| {
        Error::Config(sqs_barrier_core::ConfigError::Invalid(format!(
            "the roster is too large to store in the queue's tags: {e}"
        )))
    })?;
    let mut checkin = fifo(sse(sqs.client().create_queue().queue_name(&names.checkin)))
        .attributes(A::MessageRetentionPeriod, settings::CHECKIN_RETENTION)
        .attributes(A::VisibilityTimeout, settings::CHECKIN_VISIBILITY)
        .attributes(A::RedrivePolicy, redrive);
    for (k, v) in config_tags {
        checkin = checkin.tags(k, v);
    }
    create(sqs, checkin).await?;
    for release in &names.release {
        create(
            sqs,
            sse(sqs.client().create_queue().queue_name(release))
                .attributes(A::MessageRetentionPeriod, settings::RELEASE_RETENTION)
                .attributes(A::VisibilityTimeout, settings::RELEASE_VISIBILITY),
        )
        .await?;
    }
    create_state_queue(sqs, &names).await?;
    create_lease_queue(sqs, &names).await?;
    // Two set-ups racing: the queue's tags say whose configuration won.
    let info = open_stored(sqs, name).await?;
    if !info.config.same_rules(&wanted) {
        return Err(Error::Conflict {
            barrier: name.into(),
            detail: describe_difference(&info.config, &wanted),
        });
    }
    published::publish_first(sqs, &info).await?;
    Ok(SetupOutcome {
        info,
        created: true,
    })
}

async fn create_state_queue(sqs: &Sqs, names: &QueueNames) -> Result<String> {
    create(
        sqs,
        sqs.client()
            .create_queue()
            .queue_name(&names.state)
            .attributes(A::SqsManagedSseEnabled, "true")
            .attributes(A::ReceiveMessageWaitTimeSeconds, settings::WAIT)
            .attributes(A::MessageRetentionPeriod, settings::STATE_RETENTION)
            .attributes(A::VisibilityTimeout, settings::STATE_VISIBILITY),
    )
    .await
}

/// The lease queue (FIFO), with its token (see [`crate::lease`]). The token
/// is put with a deduplication id per queue URL and hour, so that set-ups
/// that race or run again put one; a second one would be harmless.
async fn create_lease_queue(sqs: &Sqs, names: &QueueNames) -> Result<String> {
    let url = create(
        sqs,
        sqs.client()
            .create_queue()
            .queue_name(&names.lease)
            .attributes(A::FifoQueue, "true")
            .attributes(A::SqsManagedSseEnabled, "true")
            .attributes(A::MessageRetentionPeriod, settings::LEASE_RETENTION)
            .attributes(A::VisibilityTimeout, settings::LEASE_VISIBILITY),
    )
    .await?;
    let hour = wall_ms() / 3_600_000;
    crate::lease::put_token(sqs, &url, &format!("setup-{hour}")).await?;
    Ok(url)
}

fn describe_difference(have: &BarrierConfig, want: &BarrierConfig) -> String {
    let mut d = Vec::new();
    if have.members != want.members {
        d.push(format!(
            "it has {} members{}",
            have.members.len(),
            if matches!(have.members, Membership::Roster(_)) {
                " by name"
            } else {
                ""
            }
        ));
    }
    if have.deadline != want.deadline {
        d.push(format!("deadline {:?}", have.deadline));
    }
    if have.fifo != want.fifo {
        d.push(format!("fifo {}", have.fifo));
    }
    if have.quorum != want.quorum {
        d.push(match have.quorum {
            Some(q) => format!("quorum {} with grace {:?}", q.min, q.grace),
            None => "no quorum".into(),
        });
    }
    d.join(", ")
}

async fn create(
    sqs: &Sqs,
    req: aws_sdk_sqs::operation::create_queue::builders::CreateQueueFluentBuilder,
) -> Result<String> {
    let out = req.send().await.map_err(|e| sqs.error("CreateQueue", e))?;
    out.queue_url.ok_or_else(|| Error::Sqs {
        endpoint: sqs.endpoint().into(),
        operation: "CreateQueue",
        detail: "no queue URL in the answer".into(),
    })
}

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

/// Deletes barrier `name`'s queues; returns the names of those deleted.
/// Queues that do not exist are skipped.
///
/// SQS does not allow a queue of the same name to be created for 60 s after
/// it is deleted.
pub async fn teardown(sqs: &Sqs, name: &str) -> Result<Vec<String>> {
    validate_barrier_name(name)?;
    let mut deleted = Vec::new();
    for fifo in [false, true] {
        let names = QueueNames::new(name, fifo);
        for queue in names.all() {
            if fifo && !queue.ends_with(".fifo") {
                continue; // release and state queues are standard either way
            }
            let Some(url) = queue_url(sqs, queue).await? else {
                continue;
            };
            match sqs.client().delete_queue().queue_url(&url).send().await {
                Ok(_) => deleted.push(queue.to_owned()),
                Err(e) if is_missing_queue(&e) => {}
                Err(e) => return Err(sqs.error("DeleteQueue", e)),
            }
        }
    }
    Ok(deleted)
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
            crate::participant::send_checkin_queue(sqs, &info, &body, "status-probe").await?;
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

/// This host's name for ids and labels (`$HOSTNAME`, else `host`).
pub(crate) fn hostname() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "host".to_owned())
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
            encryption: encryption.into(),
            content_based_deduplication: cbd.into(),
            name,
            url,
        });
    }
    rows.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(rows)
}
