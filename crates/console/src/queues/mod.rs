//! The queues API: the console manages queues as the SQS console does,
//! through the same SQS actions, against whatever endpoint the console
//! reads (SQS, the embedded endpoint, an emulator).
//!
//! Every answer is JSON. A success is `{"ok": true, ...}`; a failure is
//! `{"ok": false, "error": "what went wrong, in plain words", "operation":
//! "the SQS action" | null, "sqs_code": "SQS's error code" | null,
//! "sqs_message": "SQS's own words" | null, "details": ... | null}` with
//! 400 (a value the console refuses before asking SQS), 403 (access
//! denied), 404 (no such queue), 409 (a confirmation missing, a barrier's
//! queue, `QueueDeletedRecently`, `PurgeQueueInProgress`,
//! `QueueAlreadyExists`), 429 (throttled) or 502 (the endpoint failed or
//! does not implement the action). A request refused by the console's gate
//! is `{"ok": false, "error", "code"}` (`code`: `read-only`, `host`,
//! `cross-origin`, `content-type`, `token`).
//!
//! Reading (no gate, no token):
//!
//! * `GET /api/queues`: the first page of the table by name, 25 rows.
//! * `POST /api/queues/search` `{"prefix"?, "sort"?: "name" | "type" |
//!   "created" | "visible" | "in_flight" | "delayed", "order"?: "asc" |
//!   "desc", "page_size"?: 1..=1000, "cursor"?}`: a page of the table:
//!   `{"queues": [{"name", "url", "type": "Standard" | "FIFO", "created"
//!   (epoch s), "visible", "in_flight", "delayed", "encryption": "SSE-SQS" |
//!   "SSE-KMS" | "Disabled", "content_based_deduplication" (null for
//!   standard), "has_dead_letter_queue", "barrier": {"name", "role"} |
//!   null}], "next_cursor" (null on the last page), "total" (queues
//!   matching), "truncated" (more than 10,000 matched), "prefix", "sort",
//!   "order", "page_size", "read_ms" (the console's clock, epoch ms, before
//!   the attributes were read)}`. The whole listing is read (`ListQueues`, 1000
//!   a page); sorting by a column other than the name reads every queue's
//!   attributes and is refused above 1000 queues. The cursor is the last
//!   row's sort value and name: the next page starts after it.
//! * `GET /api/queues/{name}`: the details: `{"name", "url", "arn", "type",
//!   "attributes": {every attribute, as SQS gives it}, "redrive_policy",
//!   "redrive_allow_policy" (parsed, or null), "tags": {...},
//!   "dead_letter_sources": [names of queues using it as dead-letter
//!   queue] | null, "barrier": null | {"name", "role": "check-in" |
//!   "release" | "dead-letter" | "state" | "lease", "purpose",
//!   "purge_effect", "delete_effect", "teardown": "sqs-barrier teardown
//!   NAME", "coordinator": {"kind": "process" | "lambda" | "unknown",
//!   "id", "where" (host/pid or function), "stopped", "standbys", "note"}},
//!   "lambda_triggers": {"known": false, "note"}, "settable": [attribute
//!   names], "ranges": {name: [lowest, highest]}}`.
//! * `GET /api/queues/{name}/counts`: the queue's message counts, read now
//!   (one `GetQueueAttributes`): `{"name", "visible", "in_flight",
//!   "delayed", "read_ms"}`. The page reads them after an action on the
//!   queue, so that its row shows the change at once.
//! * `GET /api/queues/{name}/tags`: `{"tags": {...}}`.
//! * `GET /api/queues/{name}/redrive`: the newest message-move tasks out of
//!   this (dead-letter) queue: `{"source_arn", "tasks": [{"status",
//!   "task_handle", "source_arn", "destination_arn", "rate", "moved",
//!   "to_move", "failure_reason", "started_ms"}]}`.
//!
//! Acting (through the gate: page token, same origin, JSON; logged with
//! who and what):
//!
//! * `POST /api/queues` `{"name", "attributes"?: {...}, "dead_letter_queue"?:
//!   {"queue": name or ARN, "max_receive_count": 1..=1000}, "tags"?:
//!   {...}}`: creates a queue (FIFO if the name ends in `.fifo`); refused if
//!   the name is taken. Answers `{"name", "url"}`.
//! * `POST /api/queues/{name}/attributes` `{"attributes": {...}}`:
//!   `VisibilityTimeout` 0..=43200, `MessageRetentionPeriod`
//!   60..=1209600, `MaximumMessageSize` 1024..=1048576, `DelaySeconds`
//!   0..=900, `ReceiveMessageWaitTimeSeconds` 0..=20,
//!   `KmsDataKeyReusePeriodSeconds` 60..=86400, `RedrivePolicy`
//!   (`{"deadLetterTargetArn": ARN or name, "maxReceiveCount"}`, null to
//!   remove), `RedriveAllowPolicy` (`{"redrivePermission": "allowAll" |
//!   "denyAll" | "byQueue", "sourceQueueArns"}`), `ContentBasedDeduplication`,
//!   `DeduplicationScope`, `FifoThroughputLimit` (FIFO),
//!   `SqsManagedSseEnabled`, `KmsMasterKeyId`, `Policy`. Answers
//!   `{"changed": [names]}`.
//! * `POST /api/queues/{name}/tags` `{"tags": {key: value}}` (answers
//!   `{"added": [keys]}`); `POST /api/queues/{name}/tags/remove` `{"keys":
//!   [...]}` (answers `{"removed": [keys]}`). Tagging actions count
//!   against SQS's quota of 5 a second per account.
//! * `POST /api/queues/{name}/messages` `{"body", "attributes"?: {NAME:
//!   {"type": "String" | "Number" | "Binary", "value"}} (Binary in base64),
//!   "delay_seconds"?: 0..=900 (standard), "group_id"?, "deduplication_id"?
//!   (FIFO)}`: answers `{"message_id", "md5_of_body", "sequence_number"}`.
//! * `POST /api/queues/{name}/messages/poll` `{"duration_secs"?: 0..=120
//!   (20), "max_count"?: 1..=100 (10)}`: receives (long polls of up to
//!   20 s) until `max_count` messages or the duration: `{"messages":
//!   [{"message_id", "receipt_handle", "body", "md5_of_body",
//!   "receive_count", "sent_ms", "first_received_ms", "group_id",
//!   "deduplication_id", "sequence_number", "attributes",
//!   "message_attributes"}], "count", "visibility_timeout_secs",
//!   "in_flight_note"}`: the messages polled are in flight for the queue's
//!   visibility timeout, as the note says.
//! * `POST /api/queues/{name}/messages/delete` `{"receipt_handles": [...]}`
//!   (1 to 100): `{"deleted", "failed": [{"receipt_handle", "sqs_code",
//!   "error"}]}`.
//! * `POST /api/queues/{name}/purge` and `DELETE /api/queues/{name}`
//!   `{"confirm": the queue's name, "barrier_ack"?: true}`: refused (409)
//!   without `confirm`; a barrier's queue is refused unless `barrier_ack`
//!   is true, with what the action would do to the barrier and the
//!   `sqs-barrier teardown` command in `details`.
//! * `POST /api/queues/{name}/redrive` `{"destination"?: name or ARN,
//!   "rate"?: 1..=500}`: starts moving this dead-letter queue's messages
//!   back to their source queues (or to `destination`): `{"task_handle",
//!   "source_arn", "destination_arn", "rate"}`; `POST
//!   /api/queues/{name}/redrive/cancel` `{"task_handle"}`: `{"moved"}`.
//!   An endpoint without message-move tasks is named as such.
//!
//! Lambda triggers (event source mappings) belong to the Lambda API, which
//! the console does not call: the details say so.

mod attributes;
mod barrier;
mod errors;
mod list;
mod messages;
mod queue;
mod redrive;
mod removal;
mod tags;

use aws_sdk_sqs::config::http::HttpResponse;
use aws_sdk_sqs::error::{ProvideErrorMetadata, SdkError};
use bytes::Bytes;
use http_body_util::Full;
use hyper::{Method, Response, StatusCode};
use serde_json::{Map, Value};
use sqs_barrier::Sqs;

use crate::guard::{Actor, Guard};
use crate::http::{self, Req};
use errors::{Failure, Outcome};

/// The paths this module answers: `/api/queues` and below.
pub(crate) fn handles(path: &str) -> bool {
    path == "/api/queues" || path.starts_with("/api/queues/")
}

/// Answers a request of the queues API (see the module documentation).
/// `scope` is the console's `--prefix`: a console started with one lists,
/// reads, creates and acts on the queues whose names start with it, and
/// no other.
pub(crate) async fn route(
    sqs: &Sqs,
    guard: &Guard,
    scope: Option<&str>,
    req: &Req,
) -> Response<Full<Bytes>> {
    let rest = req.path["/api/queues".len()..].trim_start_matches('/');
    let parts: Vec<&str> = rest.split('/').filter(|p| !p.is_empty()).collect();
    if let (Some(scope), Some(name)) = (scope, parts.first())
        && *name != "search"
        && !name.starts_with(scope)
    {
        return out_of_scope(name, scope).response();
    }
    match (&req.method, parts.as_slice()) {
        (&Method::GET, []) => {
            let mut b = Map::new();
            if let Some(scope) = scope {
                b.insert("prefix".into(), Value::String(scope.to_owned()));
            }
            answer(list::page(sqs, &b).await)
        }
        (&Method::POST, ["search"]) => match json_body(req) {
            Ok(mut b) => {
                if let Some(scope) = scope {
                    let asked = b.get("prefix").and_then(Value::as_str).unwrap_or("");
                    if asked.is_empty() {
                        b.insert("prefix".into(), Value::String(scope.to_owned()));
                    } else if !asked.starts_with(scope) {
                        return out_of_scope(asked, scope).response();
                    }
                }
                answer(list::page(sqs, &b).await)
            }
            Err(f) => f.response(),
        },
        (&Method::POST, []) => {
            gated(guard, req, "create", |b| async move {
                let name = b.get("name").and_then(Value::as_str).unwrap_or("");
                match scope {
                    Some(scope) if !name.starts_with(scope) => {
                        (format!("queue {name}"), Err(out_of_scope(name, scope)))
                    }
                    _ => queue::create(sqs, b).await,
                }
            })
            .await
        }
        (&Method::GET, [name]) => answer(queue::details(sqs, name).await),
        (&Method::GET, [name, "counts"]) => answer(queue::counts(sqs, name).await),
        (&Method::DELETE, [name]) => {
            gated(guard, req, "delete-queue", |b| {
                removal::delete_queue(sqs, name, b)
            })
            .await
        }
        (&Method::POST, [name, "attributes"]) => {
            gated(guard, req, "set-attributes", |b| {
                queue::set_attributes(sqs, name, b)
            })
            .await
        }
        (&Method::GET, [name, "tags"]) => answer(tags::tags(sqs, name).await),
        (&Method::POST, [name, "tags"]) => {
            gated(guard, req, "tag", |b| tags::tag(sqs, name, b)).await
        }
        (&Method::POST, [name, "tags", "remove"]) => {
            gated(guard, req, "untag", |b| tags::untag(sqs, name, b)).await
        }
        (&Method::POST, [name, "messages"]) => {
            gated(guard, req, "send", |b| send(sqs, name, b)).await
        }
        (&Method::POST, [name, "messages", "poll"]) => {
            gated(guard, req, "poll", |b| poll(sqs, name, b)).await
        }
        (&Method::POST, [name, "messages", "delete"]) => {
            gated(guard, req, "delete-messages", |b| {
                delete_messages(sqs, name, b)
            })
            .await
        }
        (&Method::POST, [name, "purge"]) => {
            gated(guard, req, "purge", |b| removal::purge(sqs, name, b)).await
        }
        (&Method::GET, [name, "redrive"]) => answer(redrive_list(sqs, name).await),
        (&Method::POST, [name, "redrive"]) => {
            gated(guard, req, "redrive-start", |b| redrive_start(sqs, name, b)).await
        }
        (&Method::POST, [name, "redrive", "cancel"]) => {
            gated(guard, req, "redrive-cancel", |b| {
                redrive_cancel(sqs, name, b)
            })
            .await
        }
        (
            _,
            []
            | ["search"]
            | [_]
            | [
                _,
                "attributes" | "counts" | "tags" | "messages" | "purge" | "redrive",
            ]
            | [_, "tags", "remove"]
            | [_, "messages", "poll" | "delete"]
            | [_, "redrive", "cancel"],
        ) => Failure::new(StatusCode::METHOD_NOT_ALLOWED, "method not allowed here").response(),
        _ => Failure::new(StatusCode::NOT_FOUND, "no such queues API path").response(),
    }
}

/// A queue outside the console's `--prefix`: as if it did not exist.
fn out_of_scope(name: &str, scope: &str) -> Failure {
    Failure::new(
        StatusCode::NOT_FOUND,
        format!(
            "{name} is outside this console's --prefix {scope}: it shows and acts on those queues only"
        ),
    )
}

/// The JSON answer of an outcome.
fn answer(outcome: Outcome) -> Response<Full<Bytes>> {
    match outcome {
        Ok(mut v) => {
            if let Some(o) = v.as_object_mut() {
                o.insert("ok".into(), Value::Bool(true));
            }
            http::json(StatusCode::OK, &v)
        }
        Err(f) => f.response(),
    }
}

/// A request body as a JSON object (an empty body is an empty object).
fn json_body(req: &Req) -> Result<Map<String, Value>, Failure> {
    if req.body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice(&req.body) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err(Failure::bad("the body must be a JSON object")),
    }
}

/// Runs a state-changing request: the gate first, then `act` on its
/// body; logs who did what, and how it went.
async fn gated<F, Fut>(guard: &Guard, req: &Req, action: &str, act: F) -> Response<Full<Bytes>>
where
    F: FnOnce(Map<String, Value>) -> Fut,
    Fut: Future<Output = (String, Outcome)>,
{
    let actor: Actor = match guard.authorize(req) {
        Ok(a) => a,
        Err(refused) => return refused,
    };
    let body = match json_body(req) {
        Ok(b) => b,
        Err(f) => return f.response(),
    };
    let (what, outcome) = act(body).await;
    match &outcome {
        Ok(_) => {
            tracing::info!(who = %actor.who, from = %actor.from(), action, what = %what, "console action")
        }
        Err(f) => {
            tracing::info!(who = %actor.who, from = %actor.from(), action, what = %what, error = %f.error, "console action failed")
        }
    }
    answer(outcome)
}

/// Whether an SQS error says the queue does not exist.
pub(crate) fn is_missing<E: ProvideErrorMetadata>(e: &SdkError<E, HttpResponse>) -> bool {
    e.as_service_error()
        .and_then(|e| e.code())
        .is_some_and(|c| c == "AWS.SimpleQueueService.NonExistentQueue" || c == "QueueDoesNotExist")
}

/// The URL of queue `name` (named in the path).
pub(crate) async fn url_of(sqs: &Sqs, name: &str) -> Result<String, Failure> {
    attributes::check_name(name)?;
    let out = sqs
        .client()
        .get_queue_url()
        .queue_name(name)
        .send()
        .await
        .map_err(|e| {
            let mut f = errors::sqs("GetQueueUrl", e);
            if f.status == StatusCode::NOT_FOUND {
                f.error = format!("there is no queue {name} (deleted, or never created)");
            }
            f
        })?;
    out.queue_url
        .ok_or_else(|| Failure::bad(format!("SQS gave no URL for {name}")))
}

async fn send(sqs: &Sqs, name: &str, body: Map<String, Value>) -> (String, Outcome) {
    let len = body.get("body").and_then(Value::as_str).map_or(0, str::len);
    let what = format!("queue {name}: a message of {len} bytes");
    let outcome = async {
        let url = url_of(sqs, name).await?;
        messages::send(sqs, &url, name.ends_with(".fifo"), &body).await
    }
    .await;
    (what, outcome)
}

async fn poll(sqs: &Sqs, name: &str, body: Map<String, Value>) -> (String, Outcome) {
    let outcome = async {
        let url = url_of(sqs, name).await?;
        messages::poll(sqs, &url, &body).await
    }
    .await;
    let n = outcome
        .as_ref()
        .map_or(0, |v| v["count"].as_u64().unwrap_or(0));
    (
        format!("queue {name}: {n} message(s) received, now in flight"),
        outcome,
    )
}

async fn delete_messages(sqs: &Sqs, name: &str, body: Map<String, Value>) -> (String, Outcome) {
    let outcome = async {
        let url = url_of(sqs, name).await?;
        messages::delete(sqs, &url, &body).await
    }
    .await;
    let n = outcome
        .as_ref()
        .map_or(0, |v| v["deleted"].as_u64().unwrap_or(0));
    (format!("queue {name}: {n} message(s) deleted"), outcome)
}

/// Checks the confirmation of a purge or a delete: `confirm` must be the
/// queue's name, and a barrier's queue needs `barrier_ack` too.
async fn redrive_list(sqs: &Sqs, name: &str) -> Outcome {
    let url = url_of(sqs, name).await?;
    redrive::list(sqs, &url).await
}

async fn redrive_start(sqs: &Sqs, name: &str, body: Map<String, Value>) -> (String, Outcome) {
    let what = format!(
        "dead-letter queue {name} to {}",
        body.get("destination")
            .and_then(Value::as_str)
            .unwrap_or("the source queues")
    );
    let outcome = async {
        let url = url_of(sqs, name).await?;
        redrive::start(sqs, &url, &body).await
    }
    .await;
    (what, outcome)
}

async fn redrive_cancel(sqs: &Sqs, name: &str, body: Map<String, Value>) -> (String, Outcome) {
    let outcome = async {
        attributes::check_name(name)?;
        redrive::cancel(sqs, &body).await
    }
    .await;
    (format!("dead-letter queue {name}: a move task"), outcome)
}
