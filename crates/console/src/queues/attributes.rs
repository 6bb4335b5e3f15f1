//! Queue attributes: which ones the API sets, their ranges, and turning
//! the JSON a page sends into the strings SQS takes (checked before SQS is
//! asked, so a mistake is named in plain words).

use std::collections::HashMap;

use aws_sdk_sqs::types::QueueAttributeName as A;
use serde_json::{Map, Value};
use sqs_barrier::Sqs;

use super::errors::{self, Failure};

/// Attributes set as whole numbers: name, lowest, highest, unit.
pub(crate) const RANGES: &[(&str, u64, u64, &str)] = &[
    ("VisibilityTimeout", 0, 43_200, "seconds (12 hours)"),
    ("MessageRetentionPeriod", 60, 1_209_600, "seconds (14 days)"),
    ("MaximumMessageSize", 1_024, 1_048_576, "bytes (1 MiB)"),
    ("DelaySeconds", 0, 900, "seconds (15 minutes)"),
    ("ReceiveMessageWaitTimeSeconds", 0, 20, "seconds"),
    (
        "KmsDataKeyReusePeriodSeconds",
        60,
        86_400,
        "seconds (24 hours)",
    ),
];

/// Attributes of FIFO queues only.
const FIFO_ONLY: &[&str] = &[
    "ContentBasedDeduplication",
    "DeduplicationScope",
    "FifoThroughputLimit",
];

/// Attributes SQS computes: shown, never set.
const READ_ONLY: &[&str] = &[
    "ApproximateNumberOfMessages",
    "ApproximateNumberOfMessagesNotVisible",
    "ApproximateNumberOfMessagesDelayed",
    "CreatedTimestamp",
    "LastModifiedTimestamp",
    "QueueArn",
];

/// The attributes the API sets, for the page (and the docs).
pub(crate) fn settable() -> Vec<&'static str> {
    let mut v: Vec<&str> = RANGES.iter().map(|r| r.0).collect();
    v.extend([
        "RedrivePolicy",
        "RedriveAllowPolicy",
        "ContentBasedDeduplication",
        "DeduplicationScope",
        "FifoThroughputLimit",
        "SqsManagedSseEnabled",
        "KmsMasterKeyId",
        "Policy",
    ]);
    v
}

/// A JSON value as the text of a whole number, if it is one.
fn whole(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn boolean(name: &str, v: &Value) -> Result<bool, Failure> {
    match v {
        Value::Bool(b) => Ok(*b),
        Value::String(s) if s == "true" || s == "false" => Ok(s == "true"),
        _ => Err(Failure::bad(format!("{name} must be true or false"))),
    }
}

/// The attributes of `input` as SQS takes them, checked, for a queue
/// that is FIFO or not. `creating`: `FifoQueue` may be given (and must
/// agree with `fifo`). Queue names in a redrive policy (in place of ARNs)
/// are turned into ARNs with `sqs`.
pub(crate) async fn prepare(
    sqs: &Sqs,
    input: &Map<String, Value>,
    fifo: bool,
    creating: bool,
) -> Result<HashMap<A, String>, Failure> {
    let mut out = HashMap::new();
    for (name, value) in input {
        let name = name.as_str();
        if READ_ONLY.contains(&name) {
            return Err(Failure::bad(format!(
                "{name} is computed by SQS and cannot be set"
            )));
        }
        if FIFO_ONLY.contains(&name) && !fifo {
            return Err(Failure::bad(format!("{name} applies to FIFO queues only")));
        }
        let text = if let Some((_, lo, hi, unit)) = RANGES.iter().find(|r| r.0 == name) {
            match whole(value) {
                Some(n) if (*lo..=*hi).contains(&n) => n.to_string(),
                _ => {
                    return Err(Failure::bad(format!(
                        "{name} must be a whole number from {lo} to {hi} {unit}, not {value}"
                    )));
                }
            }
        } else {
            match name {
                "FifoQueue" if creating => {
                    if boolean(name, value)? != fifo {
                        return Err(Failure::bad(
                            "FifoQueue must agree with the name: a FIFO queue's name ends in .fifo",
                        ));
                    }
                    fifo.to_string()
                }
                "FifoQueue" => {
                    return Err(Failure::bad(
                        "FifoQueue cannot change: create another queue",
                    ));
                }
                "ContentBasedDeduplication" | "SqsManagedSseEnabled" => {
                    boolean(name, value)?.to_string()
                }
                "DeduplicationScope" => one_of(name, value, &["messageGroup", "queue"])?,
                "FifoThroughputLimit" => one_of(name, value, &["perQueue", "perMessageGroupId"])?,
                "KmsMasterKeyId" => match value {
                    Value::String(s) => s.trim().to_owned(),
                    Value::Null => String::new(),
                    _ => {
                        return Err(Failure::bad(
                            "KmsMasterKeyId must be a key id, ARN or alias",
                        ));
                    }
                },
                "Policy" => json_object(name, value)?,
                "RedrivePolicy" => redrive_policy(sqs, value, fifo).await?,
                "RedriveAllowPolicy" => redrive_allow_policy(sqs, value).await?,
                other => {
                    return Err(Failure::bad(format!(
                        "{other} is not an attribute the console sets (it sets {})",
                        settable().join(", ")
                    )));
                }
            }
        };
        out.insert(A::from(name), text);
    }
    let sse = out
        .get(&A::SqsManagedSseEnabled)
        .is_some_and(|v| v == "true");
    let kms = out.get(&A::KmsMasterKeyId).is_some_and(|v| !v.is_empty());
    if sse && kms {
        return Err(Failure::bad(
            "choose one encryption: SqsManagedSseEnabled (SSE-SQS) or KmsMasterKeyId (SSE-KMS), not both",
        ));
    }
    Ok(out)
}

fn one_of(name: &str, value: &Value, allowed: &[&str]) -> Result<String, Failure> {
    match value.as_str() {
        Some(s) if allowed.contains(&s) => Ok(s.to_owned()),
        _ => Err(Failure::bad(format!(
            "{name} must be one of {}, not {value}",
            allowed.join(", ")
        ))),
    }
}

fn json_object(name: &str, value: &Value) -> Result<String, Failure> {
    match value {
        Value::Null => Ok(String::new()),
        Value::String(s) if s.trim().is_empty() => Ok(String::new()),
        Value::String(s) => match serde_json::from_str::<Value>(s) {
            Ok(Value::Object(_)) => Ok(s.clone()),
            _ => Err(Failure::bad(format!("{name} must be a JSON object"))),
        },
        Value::Object(_) => Ok(value.to_string()),
        _ => Err(Failure::bad(format!("{name} must be a JSON object"))),
    }
}

/// A JSON object given as an object or as its text; `None` for null or
/// an empty string (remove the policy).
fn object_of(name: &str, value: &Value) -> Result<Option<Map<String, Value>>, Failure> {
    match value {
        Value::Null => Ok(None),
        Value::String(s) if s.trim().is_empty() => Ok(None),
        Value::String(s) => match serde_json::from_str::<Value>(s) {
            Ok(Value::Object(m)) => Ok(Some(m)),
            _ => Err(Failure::bad(format!("{name} must be a JSON object"))),
        },
        Value::Object(m) => Ok(Some(m.clone())),
        _ => Err(Failure::bad(format!("{name} must be a JSON object"))),
    }
}

/// The name of the queue an SQS ARN names (its last part).
pub(crate) fn name_in_arn(arn: &str) -> &str {
    arn.rsplit(':').next().unwrap_or(arn)
}

/// An ARN, or the ARN of the queue named so.
pub(crate) async fn arn_of(sqs: &Sqs, name_or_arn: &str) -> Result<String, Failure> {
    if name_or_arn.starts_with("arn:") {
        return Ok(name_or_arn.to_owned());
    }
    let url = super::url_of(sqs, name_or_arn).await?;
    let out = sqs
        .client()
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(A::QueueArn)
        .send()
        .await
        .map_err(|e| errors::sqs("GetQueueAttributes", e))?;
    out.attributes
        .and_then(|mut a| a.remove(&A::QueueArn))
        .ok_or_else(|| Failure::bad(format!("SQS gave no ARN for {name_or_arn}")))
}

/// `RedrivePolicy`: `{"deadLetterTargetArn": ARN or queue name,
/// "maxReceiveCount": 1..=1000}`, or null/"" to remove it.
async fn redrive_policy(sqs: &Sqs, value: &Value, fifo: bool) -> Result<String, Failure> {
    let Some(m) = object_of("RedrivePolicy", value)? else {
        return Ok(String::new());
    };
    let target = m
        .get("deadLetterTargetArn")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            Failure::bad(
                "RedrivePolicy needs deadLetterTargetArn: the dead-letter queue's ARN or name",
            )
        })?;
    let count = m.get("maxReceiveCount").and_then(whole);
    let Some(count) = count.filter(|c| (1..=1000).contains(c)) else {
        return Err(Failure::bad(
            "RedrivePolicy needs maxReceiveCount, a whole number from 1 to 1000: the receives after which a message moves to the dead-letter queue",
        ));
    };
    if name_in_arn(target).ends_with(".fifo") != fifo {
        return Err(Failure::bad(if fifo {
            "the dead-letter queue of a FIFO queue must be a FIFO queue"
        } else {
            "the dead-letter queue of a standard queue must be a standard queue"
        }));
    }
    let arn = arn_of(sqs, target).await?;
    Ok(serde_json::json!({"deadLetterTargetArn": arn, "maxReceiveCount": count}).to_string())
}

/// `RedriveAllowPolicy`: `{"redrivePermission": "allowAll" | "denyAll" |
/// "byQueue", "sourceQueueArns": [ARN or name, 1 to 10, byQueue only]}`.
async fn redrive_allow_policy(sqs: &Sqs, value: &Value) -> Result<String, Failure> {
    let Some(m) = object_of("RedriveAllowPolicy", value)? else {
        return Ok(String::new());
    };
    let permission = m
        .get("redrivePermission")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let sources: Vec<&str> = match m.get("sourceQueueArns") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
        Some(_) => {
            return Err(Failure::bad(
                "sourceQueueArns must be a list of ARNs or names",
            ));
        }
    };
    match permission {
        "allowAll" | "denyAll" if sources.is_empty() => {
            Ok(serde_json::json!({"redrivePermission": permission}).to_string())
        }
        "allowAll" | "denyAll" => Err(Failure::bad(
            "sourceQueueArns goes with redrivePermission byQueue only",
        )),
        "byQueue" if (1..=10).contains(&sources.len()) => {
            let mut arns = Vec::new();
            for s in sources {
                arns.push(arn_of(sqs, s).await?);
            }
            Ok(
                serde_json::json!({"redrivePermission": "byQueue", "sourceQueueArns": arns})
                    .to_string(),
            )
        }
        "byQueue" => Err(Failure::bad(
            "redrivePermission byQueue needs 1 to 10 source queues in sourceQueueArns",
        )),
        _ => Err(Failure::bad(
            "redrivePermission must be allowAll, denyAll or byQueue",
        )),
    }
}

/// A queue name SQS accepts: 1 to 80 letters, digits, `-` and `_`, a
/// FIFO queue's ending in `.fifo`.
pub(crate) fn check_name(name: &str) -> Result<(), Failure> {
    let stem = name.strip_suffix(".fifo").unwrap_or(name);
    let ok = !stem.is_empty()
        && name.len() <= 80
        && stem
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(Failure::bad(format!(
            "{name:?} is not a queue name: 1 to 80 letters, digits, hyphens or underscores, ending in .fifo for a FIFO queue"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_arns() {
        assert!(check_name("a-b_C9").is_ok());
        assert!(check_name("jobs.fifo").is_ok());
        assert!(check_name(".fifo").is_err());
        assert!(check_name("").is_err());
        assert!(check_name("a b").is_err());
        assert!(check_name(&"a".repeat(81)).is_err());
        assert_eq!(name_in_arn("arn:aws:sqs:us-east-1:123:q-dlq"), "q-dlq");
        assert!(settable().contains(&"VisibilityTimeout"));
    }
}
