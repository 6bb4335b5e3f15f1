//! Storing small documents in queue tags.
//!
//! SQS has no place for user metadata on a queue but its tags: up to 50 per
//! queue, keys up to 128 and values up to 256 characters, from a restricted
//! character set. A document (JSON) is base64-encoded, whose alphabet is
//! within that set, and split over numbered keys `PREFIX.0`, `PREFIX.1`, ...
//!
//! A key `PREFIX.n` holds the number of chunks. SQS applies one `TagQueue`
//! call as a whole, so a document written in one call (its chunks and its
//! count) is read whole; chunks left over from a longer earlier document are
//! beyond the count and ignored. Nobody removes them: a document takes at
//! most 25 keys, so what is left over stays within those.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

/// The most characters SQS allows in one tag value.
pub const MAX_TAG_VALUE: usize = 256;

/// The tag key prefix of the barrier's configuration.
pub const CONFIG_PREFIX: &str = "sqs-barrier.config";
/// The tag key prefix of the coordinator's published state.
pub const STATE_PREFIX: &str = "sqs-barrier.state";
/// The most tags one document may use (two documents share a queue's 50).
pub const MAX_CHUNKS: usize = 24;

/// Errors reading or writing a tag document.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TagError {
    /// The document needs more than [`MAX_CHUNKS`] tags.
    #[error("document too large for queue tags ({0} bytes)")]
    TooLarge(usize),
    /// The chunks are not valid base64 UTF-8.
    #[error("tag document {0} is corrupt")]
    Corrupt(String),
}

/// Splits `doc` into `(key, value)` tags under `prefix`.
pub fn encode(prefix: &str, doc: &str) -> Result<Vec<(String, String)>, TagError> {
    let b64 = STANDARD.encode(doc.as_bytes());
    let chunks: Vec<&str> = b64
        .as_bytes()
        .chunks(MAX_TAG_VALUE)
        .map(|c| std::str::from_utf8(c).expect("base64 is ascii"))
        .collect();
    if chunks.len() > MAX_CHUNKS {
        return Err(TagError::TooLarge(doc.len()));
    }
    let mut tags: Vec<(String, String)> = chunks
        .iter()
        .enumerate()
        .map(|(i, c)| (format!("{prefix}.{i}"), (*c).to_owned()))
        .collect();
    tags.push((format!("{prefix}.n"), chunks.len().to_string()));
    Ok(tags)
}

/// Reassembles the document under `prefix` from a queue's tags, or `None`
/// if there is none. Chunks are read from `.0` upwards until one is missing.
pub fn decode<'a, I>(prefix: &str, tags: I) -> Result<Option<String>, TagError>
where
    I: IntoIterator<Item = (&'a str, &'a str)>,
{
    let mut parts: Vec<Option<&str>> = vec![None; MAX_CHUNKS];
    let mut count = None;
    for (k, v) in tags {
        let Some(rest) = k.strip_prefix(prefix).and_then(|r| r.strip_prefix('.')) else {
            continue;
        };
        if rest == "n" {
            count = Some(
                v.parse::<usize>()
                    .ok()
                    .filter(|n| *n <= MAX_CHUNKS)
                    .ok_or_else(|| TagError::Corrupt(prefix.to_owned()))?,
            );
        } else if let Some(i) = rest.parse::<usize>().ok().filter(|i| *i < MAX_CHUNKS) {
            parts[i] = Some(v);
        }
    }
    let b64: String = match count {
        Some(n) => {
            if parts[..n].iter().any(Option::is_none) {
                return Err(TagError::Corrupt(prefix.to_owned()));
            }
            parts[..n].iter().flatten().copied().collect()
        }
        None => parts.iter().map_while(|p| *p).collect(),
    };
    if b64.is_empty() {
        return Ok(None);
    }
    let bytes = STANDARD
        .decode(b64.as_bytes())
        .map_err(|_| TagError::Corrupt(prefix.to_owned()))?;
    String::from_utf8(bytes)
        .map(Some)
        .map_err(|_| TagError::Corrupt(prefix.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_over_several_chunks() {
        let doc = "x".repeat(1000);
        let tags = encode("p", &doc).unwrap();
        assert!(tags.len() > 1);
        assert!(tags.iter().all(|(_, v)| v.len() <= MAX_TAG_VALUE));
        let back = decode("p", tags.iter().map(|(k, v)| (k.as_str(), v.as_str()))).unwrap();
        assert_eq!(back.as_deref(), Some(doc.as_str()));
    }

    #[test]
    fn missing_and_foreign_tags() {
        assert_eq!(decode("p", [("q.0", "eA==")]).unwrap(), None);
        assert_eq!(
            decode("p", [("p.0", "eA=="), ("px.1", "zz")])
                .unwrap()
                .as_deref(),
            Some("x")
        );
        assert!(decode("p", [("p.0", "!!!")]).is_err());
        assert!(encode("p", &"y".repeat(10_000)).is_err());
    }

    #[test]
    fn leftover_chunks_beyond_the_count_are_ignored() {
        let long = encode("p", &"z".repeat(600)).unwrap();
        let short = encode("p", "short").unwrap();
        // The short document written over the long one, in one call.
        let mut tags: std::collections::HashMap<String, String> = long.into_iter().collect();
        tags.extend(short);
        let back = decode("p", tags.iter().map(|(k, v)| (k.as_str(), v.as_str()))).unwrap();
        assert_eq!(back.as_deref(), Some("short"));
        assert!(decode("p", [("p.n", "2"), ("p.0", "eA==")]).is_err());
    }
}
