//! Creating a barrier's queues (`setup`) and deleting them (`teardown`).

use std::time::Duration;

use aws_sdk_sqs::types::QueueAttributeName as A;
use sqs_barrier_core::names::{QueueNames, validate_barrier_name};
use sqs_barrier_core::{BarrierConfig, Membership, tags};

use super::{BarrierInfo, open_stored, queue_arn, queue_url};
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
