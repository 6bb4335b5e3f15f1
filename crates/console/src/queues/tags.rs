//! A queue's tags: list, add, remove (each a tagging action: SQS allows
//! an account 5 a second).

use std::collections::HashMap;

use serde_json::{Map, Value, json};
use sqs_barrier::Sqs;

use super::errors::{self, Failure, Outcome};
use super::url_of;

pub(crate) async fn list_tags(sqs: &Sqs, url: &str) -> Result<HashMap<String, String>, Failure> {
    Ok(sqs
        .client()
        .list_queue_tags()
        .queue_url(url)
        .send()
        .await
        .map_err(|e| errors::sqs("ListQueueTags", e))?
        .tags
        .unwrap_or_default())
}

/// Tags as SQS takes them: up to 50, keys 1 to 128 characters not
/// starting with `aws:`, values up to 256.
pub(crate) fn check_tags(input: Option<&Value>) -> Result<HashMap<String, String>, Failure> {
    let Some(v) = input.filter(|v| !v.is_null()) else {
        return Ok(HashMap::new());
    };
    let map = v
        .as_object()
        .ok_or_else(|| Failure::bad("tags must be an object {key: value}"))?;
    if map.len() > 50 {
        return Err(Failure::bad("a queue carries at most 50 tags"));
    }
    let mut out = HashMap::new();
    for (k, v) in map {
        let v = v.as_str().unwrap_or_default();
        if k.is_empty() || k.chars().count() > 128 || k.to_ascii_lowercase().starts_with("aws:") {
            return Err(Failure::bad(format!(
                "tag key {k:?}: 1 to 128 characters, not starting with aws:"
            )));
        }
        if v.chars().count() > 256 {
            return Err(Failure::bad(format!(
                "tag {k}: a value is at most 256 characters"
            )));
        }
        out.insert(k.clone(), v.to_owned());
    }
    Ok(out)
}

pub(crate) async fn tags(sqs: &Sqs, name: &str) -> Outcome {
    let url = url_of(sqs, name).await?;
    Ok(json!({"tags": list_tags(sqs, &url).await?}))
}

pub(crate) async fn tag(sqs: &Sqs, name: &str, body: Map<String, Value>) -> (String, Outcome) {
    let what = format!(
        "queue {name}: {}",
        body.get("tags").cloned().unwrap_or_default()
    );
    let outcome = async {
        let tags = check_tags(body.get("tags"))?;
        if tags.is_empty() {
            return Err(Failure::bad("tags: give at least one tag {key: value}"));
        }
        let url = url_of(sqs, name).await?;
        sqs.client()
            .tag_queue()
            .queue_url(&url)
            .set_tags(Some(tags.clone()))
            .send()
            .await
            .map_err(|e| errors::sqs("TagQueue", e))?;
        let mut added: Vec<&String> = tags.keys().collect();
        added.sort();
        Ok(json!({"added": added}))
    }
    .await;
    (what, outcome)
}

pub(crate) async fn untag(sqs: &Sqs, name: &str, body: Map<String, Value>) -> (String, Outcome) {
    let keys: Vec<String> = body
        .get("keys")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    let what = format!("queue {name}: {}", keys.join(", "));
    let outcome = async {
        if keys.is_empty() {
            return Err(Failure::bad("keys: name at least one tag key to remove"));
        }
        let url = url_of(sqs, name).await?;
        sqs.client()
            .untag_queue()
            .queue_url(&url)
            .set_tag_keys(Some(keys.clone()))
            .send()
            .await
            .map_err(|e| errors::sqs("UntagQueue", e))?;
        Ok(json!({"removed": keys}))
    }
    .await;
    (what, outcome)
}
