//! Purging and deleting a queue: only with the queue's name in
//! `confirm`, and a barrier's queue only with `barrier_ack` as well.

use hyper::StatusCode;
use serde_json::{Map, Value, json};
use sqs_barrier::Sqs;

use super::barrier::{self, Finder, Membership};
use super::errors::{self, Failure, Outcome};
use super::{attributes, url_of};

async fn confirmed(
    sqs: &Sqs,
    name: &str,
    body: &Map<String, Value>,
    action: &str,
) -> Result<Option<Membership>, Failure> {
    attributes::check_name(name)?;
    let membership = Finder::new(sqs, []).membership(name).await;
    let effect = |m: &Membership| {
        let effect = if action == "purge" {
            m.role.purge_effect().to_owned()
        } else {
            barrier::delete_effect(&m.barrier)
        };
        json!({
            "barrier": m.barrier,
            "role": m.role.name(),
            "effect": effect,
            "teardown": barrier::teardown(&m.barrier),
        })
    };
    if body.get("confirm").and_then(Value::as_str) != Some(name) {
        let f = Failure::new(
            StatusCode::CONFLICT,
            format!(
                "to {action} {name}, send \"confirm\" equal to the queue's name: nothing was done"
            ),
        );
        return Err(match &membership {
            Some(m) => f.with_details(effect(m)),
            None => f,
        });
    }
    if let Some(m) = &membership
        && body.get("barrier_ack") != Some(&Value::Bool(true))
    {
        let what = if action == "purge" {
            m.role.purge_effect().to_owned()
        } else {
            barrier::delete_effect(&m.barrier)
        };
        return Err(Failure::new(
            StatusCode::CONFLICT,
            format!(
                "{name} is the {} queue of barrier {}: {what}. Refused: use `{}` to remove the barrier, or send \"barrier_ack\": true to {action} this queue anyway",
                m.role.name(),
                m.barrier,
                barrier::teardown(&m.barrier)
            ),
        )
        .with_details(effect(m)));
    }
    Ok(membership)
}

pub(crate) async fn purge(sqs: &Sqs, name: &str, body: Map<String, Value>) -> (String, Outcome) {
    let mut what = format!("queue {name}");
    let outcome = async {
        let m = confirmed(sqs, name, &body, "purge").await?;
        if let Some(m) = &m {
            what = format!("queue {name} ({} queue of barrier {}, acknowledged)", m.role.name(), m.barrier);
        }
        let url = url_of(sqs, name).await?;
        sqs.client()
            .purge_queue()
            .queue_url(&url)
            .send()
            .await
            .map_err(|e| errors::sqs("PurgeQueue", e))?;
        Ok(json!({"purged": name, "note": "SQS deletes the messages within 60 s; another purge is refused for 60 s"}))
    }
    .await;
    (what, outcome)
}

pub(crate) async fn delete_queue(
    sqs: &Sqs,
    name: &str,
    body: Map<String, Value>,
) -> (String, Outcome) {
    let mut what = format!("queue {name}");
    let outcome = async {
        let m = confirmed(sqs, name, &body, "delete").await?;
        if let Some(m) = &m {
            what = format!(
                "queue {name} ({} queue of barrier {}, acknowledged)",
                m.role.name(),
                m.barrier
            );
        }
        let url = url_of(sqs, name).await?;
        sqs.client()
            .delete_queue()
            .queue_url(&url)
            .send()
            .await
            .map_err(|e| errors::sqs("DeleteQueue", e))?;
        Ok(json!({"deleted": name, "note": "SQS refuses a new queue of this name for 60 s"}))
    }
    .await;
    (what, outcome)
}
