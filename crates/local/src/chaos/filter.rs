//! The filters of a chaos rule (`SCOPE[queue=…;key=…;from=…;to=…]`) and
//! the facts of a request they look at.

use std::fmt;
use std::time::Duration;

/// The conditions of a rule, written `SCOPE[queue=…;key=…;from=…;to=…]`; a
/// rule applies to a request only if all of its conditions hold. No
/// condition: the rule applies to every request of its scope.
#[derive(Clone, Debug, Default, PartialEq)]
pub(super) struct Filters {
    /// The request's queue name ends with this.
    pub(super) queue: Option<String>,
    /// The request is signed with this access key id.
    pub(super) key: Option<String>,
    /// At least these many seconds after the server started.
    pub(super) from: Option<f64>,
    /// Less than these many seconds after the server started.
    pub(super) to: Option<f64>,
}

impl Filters {
    pub(super) fn is_empty(&self) -> bool {
        *self == Filters::default()
    }

    pub(super) fn matches(&self, facts: &RequestFacts, elapsed: Duration) -> bool {
        let queue_ok = self.queue.as_deref().is_none_or(|suffix| {
            facts
                .queue
                .as_deref()
                .is_some_and(|queue| queue.ends_with(suffix))
        });
        let key_ok = self
            .key
            .as_deref()
            .is_none_or(|key| facts.key.as_deref() == Some(key));
        let secs = elapsed.as_secs_f64();
        let from_ok = self.from.is_none_or(|from| secs >= from);
        let to_ok = self.to.is_none_or(|to| secs < to);
        queue_ok && key_ok && from_ok && to_ok
    }

    /// Parses the text between `[` and `]`.
    pub(super) fn parse(text: &str) -> Result<Filters, String> {
        const KNOWN: &str = "filters: queue=SUFFIX, key=ACCESS_KEY_ID, from=SECS, to=SECS";
        if text.contains(',') {
            return Err("filters are separated by ';', not ','".into());
        }
        if text.trim().is_empty() {
            return Err(format!(
                "[] holds no filter; leave the brackets out or write some ({KNOWN})"
            ));
        }
        let mut filters = Filters::default();
        for part in text.split(';') {
            let part = part.trim();
            if part.is_empty() {
                return Err("empty filter (a ';' too many)".into());
            }
            let (name, value) = part
                .split_once('=')
                .ok_or_else(|| format!("filter {part:?} is not NAME=VALUE; {KNOWN}"))?;
            let (name, value) = (name.trim(), value.trim());
            let twice = || format!("filter {name}= is given twice");
            match name {
                "queue" => {
                    if filters.queue.is_some() {
                        return Err(twice());
                    }
                    filters.queue = Some(parse_queue_suffix(value)?);
                }
                "key" => {
                    if filters.key.is_some() {
                        return Err(twice());
                    }
                    filters.key = Some(parse_access_key_id(value)?);
                }
                "from" | "to" => {
                    let slot = if name == "from" {
                        &mut filters.from
                    } else {
                        &mut filters.to
                    };
                    if slot.is_some() {
                        return Err(twice());
                    }
                    *slot = Some(parse_secs(name, value)?);
                }
                other => return Err(format!("unknown filter {other:?}; {KNOWN}")),
            }
        }
        if let Some(to) = filters.to {
            let from = filters.from.unwrap_or(0.0);
            if from >= to {
                return Err(format!(
                    "the window from={from} to={to} is empty (from is inclusive, to exclusive)"
                ));
            }
        }
        Ok(filters)
    }
}

impl fmt::Display for Filters {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return Ok(());
        }
        let mut parts = Vec::new();
        if let Some(queue) = &self.queue {
            parts.push(format!("queue={queue}"));
        }
        if let Some(key) = &self.key {
            parts.push(format!("key={key}"));
        }
        if let Some(from) = self.from {
            parts.push(format!("from={from}"));
        }
        if let Some(to) = self.to {
            parts.push(format!("to={to}"));
        }
        write!(f, "[{}]", parts.join(";"))
    }
}

fn parse_queue_suffix(value: &str) -> Result<String, String> {
    if value.is_empty() {
        return Err("queue= needs the end of a queue name, e.g. queue=-state".into());
    }
    if value.len() > 80
        || !value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return Err(format!(
            "queue={value:?} cannot end a queue name (at most 80 letters, digits, '-', '_', and '.fifo')"
        ));
    }
    Ok(value.to_owned())
}

fn parse_access_key_id(value: &str) -> Result<String, String> {
    if value.is_empty() {
        return Err("key= needs an access key id, e.g. key=AKIDEXAMPLE".into());
    }
    if value.len() > 128
        || !value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return Err(format!(
            "key={value:?} is not an access key id (at most 128 letters, digits, '-', '_', '.')"
        ));
    }
    Ok(value.to_owned())
}

fn parse_secs(name: &str, value: &str) -> Result<f64, String> {
    let secs: f64 = value
        .parse()
        .ok()
        .filter(|v: &f64| v.is_finite())
        .ok_or_else(|| {
            format!("{name}={value:?} is not a number of seconds (e.g. {name}=20 or {name}=2.5)")
        })?;
    if secs < 0.0 {
        return Err(format!(
            "{name}={value} is negative (seconds after the server started)"
        ));
    }
    Ok(secs)
}

/// What the filters of a rule look at in a request.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct RequestFacts {
    /// The queue's name: the last path segment of `QueueUrl`, else
    /// `QueueName` (CreateQueue, GetQueueUrl); `None` for ListQueues.
    pub queue: Option<String>,
    /// The access key id of a SigV4 `Authorization` header.
    pub key: Option<String>,
}

/// The access key id of a SigV4 `Authorization` header
/// (`AWS4-HMAC-SHA256 Credential=AKID/DATE/REGION/SERVICE/aws4_request, …`).
pub(crate) fn access_key_id(authorization: &str) -> Option<&str> {
    let params = authorization.trim().strip_prefix("AWS4-HMAC-SHA256")?;
    if !params.starts_with(char::is_whitespace) {
        return None;
    }
    let credential = params
        .split(',')
        .find_map(|p| p.trim().strip_prefix("Credential="))?;
    let (key, scope) = credential.split_once('/')?;
    (!key.is_empty() && !scope.is_empty()).then_some(key)
}

/// The queue a request body names (see [`RequestFacts::queue`]).
pub(crate) fn queue_of(body: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct Names {
        queue_url: Option<String>,
        queue_name: Option<String>,
    }
    let names: Names = serde_json::from_slice(body).ok()?;
    if let Some(url) = names.queue_url {
        let path = match url.split_once("://") {
            Some((_, rest)) => rest.split_once('/').map_or("", |(_, path)| path),
            None => &url,
        };
        return path.rsplit('/').find(|s| !s.is_empty()).map(str::to_owned);
    }
    names.queue_name
}
