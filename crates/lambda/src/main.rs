//! `sqs-barrier-lambda`: the barrier's coordinator as an AWS Lambda function
//! (runtime `provided.al2023`, the binary shipped as `bootstrap`).
//!
//! It handles two kinds of events:
//!
//! * an SQS event from the event source mapping of a barrier's check-in
//!   queue (map it with `ReportBatchItemFailures`): the barrier is taken
//!   from each record's `eventSourceARN`, and the answer names the records
//!   that must come back (`batchItemFailures`);
//! * `{"barrier": "NAME"}` from a schedule (every minute): a heartbeat, and
//!   the barrier's deadline.
//!
//! Endpoint, region and credentials come from the standard AWS environment
//! (`AWS_ENDPOINT_URL` points it at another SQS endpoint). Optional:
//! `SQS_BARRIER_HEARTBEAT_SECS` (default 60: the schedule's interval) and
//! `SQS_BARRIER_QUEUE_VISIBILITY_SECS` (default 30: the check-in queue's
//! visibility timeout). Everything it decides, `sqs_barrier::lambda` and
//! the protocol core decide.

use std::time::Duration;

use anyhow::{Context as _, bail};
use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::{Value, json};
use sqs_barrier::lambda::{self, Barriers, LambdaOptions, Record};
use sqs_barrier::{ClientOptions, Sqs};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_ansi(false)
        .without_time() // CloudWatch Logs stamps every line
        .init();
    let opts = options().map_err(|e| format!("{e:#}"))?;
    let sqs = Sqs::connect(&ClientOptions::default()).await?;
    let barriers = Barriers::new();
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| {
        let (sqs, barriers, opts) = (&sqs, &barriers, &opts);
        async move {
            // Boxed: the handler's future is deep, and the runtime's
            // service would nest it further.
            Box::pin(handle(sqs, barriers, opts, event.payload))
                .await
                .map_err(|e| format!("{e:#}"))
        }
    }))
    .await
}

fn options() -> anyhow::Result<LambdaOptions> {
    let mut opts = LambdaOptions::default();
    if let Some(d) = secs_from_env("SQS_BARRIER_HEARTBEAT_SECS")? {
        opts.heartbeat = d;
    }
    if let Some(d) = secs_from_env("SQS_BARRIER_QUEUE_VISIBILITY_SECS")? {
        opts.queue_visibility = d;
    }
    Ok(opts)
}

fn secs_from_env(name: &str) -> anyhow::Result<Option<Duration>> {
    let Ok(v) = std::env::var(name) else {
        return Ok(None);
    };
    let secs: u64 = v
        .trim()
        .parse()
        .with_context(|| format!("{name}={v:?} is not a whole number of seconds"))?;
    if !(1..=3600).contains(&secs) {
        bail!("{name}={secs} is out of range (1 to 3600 seconds)");
    }
    Ok(Some(Duration::from_secs(secs)))
}

async fn handle(
    sqs: &Sqs,
    barriers: &Barriers,
    opts: &LambdaOptions,
    event: Value,
) -> anyhow::Result<Value> {
    if event.get("Records").is_some() {
        let event: SqsEvent =
            serde_json::from_value(event).context("an SQS event that cannot be read")?;
        let records: Vec<Record> = event
            .records
            .into_iter()
            .map(|m| Record {
                message_id: m.message_id.unwrap_or_default(),
                body: m.body.unwrap_or_default(),
                event_source_arn: m.event_source_arn.unwrap_or_default(),
                message_group_id: m.attributes.get("MessageGroupId").cloned(),
            })
            .collect();
        let n = records.len();
        let out = lambda::handle_batch(sqs, barriers, records, opts).await?;
        tracing::info!(
            records = n,
            kept = out.failures.len(),
            races = out.races,
            erased = out.erased,
            released = ?out.released,
            "batch"
        );
        let mut response = SqsBatchResponse::default();
        response.batch_item_failures = out
            .failures
            .into_iter()
            .map(|id| {
                let mut f = BatchItemFailure::default();
                f.item_identifier = id;
                f
            })
            .collect();
        return Ok(serde_json::to_value(response)?);
    }
    if let Some(name) = event.get("barrier").and_then(Value::as_str) {
        let out = lambda::handle_tick(sqs, barriers, name, opts).await?;
        tracing::info!(barrier = name, races = out.races, "tick");
        return Ok(json!({ "barrier": name, "heartbeat": true }));
    }
    bail!(
        "unexpected event (neither an SQS event nor {{\"barrier\": NAME}}): {}",
        truncate(&event.to_string(), 200)
    )
}

fn truncate(s: &str, max: usize) -> &str {
    let mut cut = s.len().min(max);
    while !s.is_char_boundary(cut) {
        cut -= 1;
    }
    &s[..cut]
}
