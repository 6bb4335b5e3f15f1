//! Dead-letter redrive: message-move tasks out of a dead-letter queue
//! (`StartMessageMoveTask`, `ListMessageMoveTasks`,
//! `CancelMessageMoveTask`).

use serde_json::{Map, Value, json};
use sqs_barrier::Sqs;

use super::attributes::arn_of;
use super::errors::{self, Failure, Outcome};

/// What an endpoint without message-move tasks is told in plain words.
fn unsupported(mut f: Failure) -> Failure {
    if f.sqs_code.is_none() && f.status == hyper::StatusCode::BAD_GATEWAY {
        let op = f.operation.unwrap_or("StartMessageMoveTask");
        f.error = format!(
            "this endpoint does not implement dead-letter redrive ({op}): it failed without an SQS error code; SQS and the embedded endpoint do, some emulators do not"
        );
    }
    f
}

/// Starts moving the messages of dead-letter queue `source_url` back to
/// their source queues, or to `destination`, at most `rate` a second.
pub(crate) async fn start(sqs: &Sqs, source_url: &str, body: &Map<String, Value>) -> Outcome {
    let rate = match body.get("rate") {
        None | Some(Value::Null) => None,
        Some(v) => match v.as_u64() {
            Some(r) if (1..=500).contains(&r) => Some(r as i32),
            _ => {
                return Err(Failure::bad(
                    "rate must be from 1 to 500 messages a second (or absent: as fast as SQS goes)",
                ));
            }
        },
    };
    let source = arn_of(sqs, source_url_name(source_url)).await?;
    let destination = match body.get("destination").and_then(Value::as_str) {
        Some(d) if !d.is_empty() => Some(arn_of(sqs, d).await?),
        _ => None,
    };
    let out = sqs
        .client()
        .start_message_move_task()
        .source_arn(&source)
        .set_destination_arn(destination.clone())
        .set_max_number_of_messages_per_second(rate)
        .send()
        .await
        .map_err(|e| unsupported(errors::sqs("StartMessageMoveTask", e)))?;
    Ok(json!({
        "task_handle": out.task_handle,
        "source_arn": source,
        "destination_arn": destination,
        "rate": rate,
    }))
}

fn source_url_name(url: &str) -> &str {
    url.rsplit('/').next().unwrap_or(url)
}

/// The newest tasks (up to 10) of dead-letter queue `source_url`.
pub(crate) async fn list(sqs: &Sqs, source_url: &str) -> Outcome {
    let source = arn_of(sqs, source_url_name(source_url)).await?;
    let out = sqs
        .client()
        .list_message_move_tasks()
        .source_arn(&source)
        .max_results(10)
        .send()
        .await
        .map_err(|e| unsupported(errors::sqs("ListMessageMoveTasks", e)))?;
    let tasks: Vec<Value> = out
        .results
        .unwrap_or_default()
        .into_iter()
        .map(|t| {
            json!({
                "status": t.status,
                "task_handle": t.task_handle,
                "source_arn": t.source_arn,
                "destination_arn": t.destination_arn,
                "rate": t.max_number_of_messages_per_second,
                "moved": t.approximate_number_of_messages_moved,
                "to_move": t.approximate_number_of_messages_to_move,
                "failure_reason": t.failure_reason,
                "started_ms": t.started_timestamp,
            })
        })
        .collect();
    Ok(json!({"source_arn": source, "tasks": tasks}))
}

/// Cancels a running task by its handle.
pub(crate) async fn cancel(sqs: &Sqs, body: &Map<String, Value>) -> Outcome {
    let handle = body
        .get("task_handle")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| Failure::bad("task_handle is required (from the list of tasks)"))?;
    let out = sqs
        .client()
        .cancel_message_move_task()
        .task_handle(handle)
        .send()
        .await
        .map_err(|e| unsupported(errors::sqs("CancelMessageMoveTask", e)))?;
    Ok(json!({"moved": out.approximate_number_of_messages_moved}))
}
