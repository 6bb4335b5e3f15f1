//! One queue: its details, creating it, changing its attributes.

use std::collections::HashMap;

use aws_sdk_sqs::types::QueueAttributeName as A;
use hyper::StatusCode;
use serde_json::{Map, Value, json};
use sqs_barrier::Sqs;
use sqs_barrier::clock::wall_ms;

use super::barrier::{self, Finder};
use super::errors::{self, Failure, Outcome};
use super::tags::{check_tags, list_tags};
use super::{attributes, list, url_of};

async fn all_attributes(sqs: &Sqs, url: &str) -> Result<HashMap<A, String>, Failure> {
    Ok(sqs
        .client()
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(A::All)
        .send()
        .await
        .map_err(|e| errors::sqs("GetQueueAttributes", e))?
        .attributes
        .unwrap_or_default())
}

fn parsed(attrs: &HashMap<A, String>, a: &A) -> Value {
    attrs
        .get(a)
        .filter(|v| !v.is_empty())
        .and_then(|v| serde_json::from_str(v).ok())
        .unwrap_or(Value::Null)
}

pub(crate) async fn details(sqs: &Sqs, name: &str) -> Outcome {
    let url = url_of(sqs, name).await?;
    let attrs = all_attributes(sqs, &url).await?;
    let tags = list_tags(sqs, &url).await?;
    let membership = Finder::new(sqs, []).membership(name).await;
    let barrier = match &membership {
        Some(m) => barrier::details(sqs, m).await,
        None => Value::Null,
    };
    let sources = sqs
        .client()
        .list_dead_letter_source_queues()
        .queue_url(&url)
        .send()
        .await
        .ok()
        .map(|o| {
            o.queue_urls
                .iter()
                .map(|u| list::name_of(u))
                .collect::<Vec<_>>()
        });
    let fifo = name.ends_with(".fifo");
    let arn = attrs.get(&A::QueueArn).cloned();
    Ok(json!({
        "name": name,
        "url": url,
        "arn": arn,
        "type": if fifo { "FIFO" } else { "Standard" },
        "attributes": attrs.iter().map(|(k, v)| (k.as_str().to_owned(), Value::String(v.clone()))).collect::<Map<_, _>>(),
        "redrive_policy": parsed(&attrs, &A::RedrivePolicy),
        "redrive_allow_policy": parsed(&attrs, &A::RedriveAllowPolicy),
        "tags": tags,
        "dead_letter_sources": sources,
        "barrier": barrier,
        "lambda_triggers": {
            "known": false,
            "note": format!(
                "Lambda triggers (event source mappings) are set in the Lambda API, which this console does not call: see the function's triggers in the AWS console, or `aws lambda list-event-source-mappings --event-source-arn {}`",
                arn.as_deref().unwrap_or("QUEUE_ARN")
            ),
        },
        "settable": attributes::settable(),
        "ranges": attributes::RANGES.iter().map(|(n, lo, hi, _)| ((*n).to_owned(), json!([lo, hi]))).collect::<Map<_, _>>(),
    }))
}

/// A queue's message counts, the table's columns, read now: one
/// `GetQueueAttributes` of three attributes. The page reads them after an
/// action on the queue instead of waiting for the table's next read;
/// `read_ms` (the console's clock, before the read) orders them against
/// the table's pages and the console's own reads.
pub(crate) async fn counts(sqs: &Sqs, name: &str) -> Outcome {
    let url = url_of(sqs, name).await?;
    let read_ms = wall_ms();
    let attrs = sqs
        .client()
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(A::ApproximateNumberOfMessages)
        .attribute_names(A::ApproximateNumberOfMessagesNotVisible)
        .attribute_names(A::ApproximateNumberOfMessagesDelayed)
        .send()
        .await
        .map_err(|e| errors::sqs("GetQueueAttributes", e))?
        .attributes
        .unwrap_or_default();
    let num = |a: A| attrs.get(&a).and_then(|v| v.parse::<u64>().ok());
    Ok(json!({
        "name": name,
        "visible": num(A::ApproximateNumberOfMessages),
        "in_flight": num(A::ApproximateNumberOfMessagesNotVisible),
        "delayed": num(A::ApproximateNumberOfMessagesDelayed),
        "read_ms": read_ms,
    }))
}

pub(crate) async fn create(sqs: &Sqs, body: Map<String, Value>) -> (String, Outcome) {
    let name = body
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let what = format!("queue {name}");
    let outcome = async {
        attributes::check_name(&name)?;
        let fifo = name.ends_with(".fifo");
        let mut input = body
            .get("attributes")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        if let Some(d) = body.get("dead_letter_queue").filter(|v| !v.is_null()) {
            if input.contains_key("RedrivePolicy") {
                return Err(Failure::bad(
                    "give the dead-letter queue either as dead_letter_queue or as RedrivePolicy, not both",
                ));
            }
            let queue = d.get("queue").cloned().unwrap_or(Value::Null);
            let count = d.get("max_receive_count").cloned().unwrap_or(Value::Null);
            input.insert(
                "RedrivePolicy".into(),
                json!({"deadLetterTargetArn": queue, "maxReceiveCount": count}),
            );
        }
        let mut attrs = attributes::prepare(sqs, &input, fifo, true).await?;
        if fifo {
            attrs.insert(A::FifoQueue, "true".into());
        }
        let tags = check_tags(body.get("tags"))?;
        if sqs.client().get_queue_url().queue_name(&name).send().await.is_ok() {
            return Err(Failure::new(
                StatusCode::CONFLICT,
                format!("a queue named {name} already exists: nothing was changed"),
            ));
        }
        let out = sqs
            .client()
            .create_queue()
            .queue_name(&name)
            .set_attributes(Some(attrs))
            .set_tags((!tags.is_empty()).then_some(tags))
            .send()
            .await
            .map_err(|e| errors::sqs("CreateQueue", e))?;
        Ok(json!({"name": name, "url": out.queue_url}))
    }
    .await;
    (what, outcome)
}

pub(crate) async fn set_attributes(
    sqs: &Sqs,
    name: &str,
    body: Map<String, Value>,
) -> (String, Outcome) {
    let input = body
        .get("attributes")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let what = format!(
        "queue {name}: {}",
        input
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let outcome = async {
        if input.is_empty() {
            return Err(Failure::bad(
                "attributes: give at least one attribute to change",
            ));
        }
        let url = url_of(sqs, name).await?;
        let attrs = attributes::prepare(sqs, &input, name.ends_with(".fifo"), false).await?;
        let mut changed: Vec<String> = attrs.keys().map(|k| k.as_str().to_owned()).collect();
        changed.sort();
        sqs.client()
            .set_queue_attributes()
            .queue_url(&url)
            .set_attributes(Some(attrs))
            .send()
            .await
            .map_err(|e| errors::sqs("SetQueueAttributes", e))?;
        Ok(json!({"changed": changed}))
    }
    .await;
    (what, outcome)
}
