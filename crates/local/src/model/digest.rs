//! Digests SQS returns so clients can check what arrived: MD5 of the body, MD5 of the
//! message (system) attributes in AWS's documented binary encoding, and the SHA-256 used
//! for content-based deduplication.

use md5::{Digest, Md5};

use super::{AttributeValue, MessageAttribute};

/// MD5 of a message body, as in `MD5OfMessageBody` / `MD5OfBody`.
pub fn md5_of_body(body: &str) -> [u8; 16] {
    Md5::digest(body.as_bytes()).into()
}

/// MD5 of message attributes, as in `MD5OfMessageAttributes`.
///
/// The encoding is AWS's: attributes sorted by name; for each, the name and the data
/// type, each preceded by its length as a 4-byte big-endian integer, then one byte for
/// the transport type (1 for string values, 2 for binary), then the length-prefixed
/// value. Returns `None` for no attributes (SQS then omits the field).
pub fn md5_of_attributes(attributes: &[MessageAttribute]) -> Option<[u8; 16]> {
    if attributes.is_empty() {
        return None;
    }
    let mut sorted: Vec<&MessageAttribute> = attributes.iter().collect();
    sorted.sort_by(|a, b| a.name.cmp(&b.name));
    let mut hasher = Md5::new();
    for attribute in sorted {
        put_prefixed(&mut hasher, attribute.name.as_bytes());
        put_prefixed(&mut hasher, attribute.data_type.as_bytes());
        match &attribute.value {
            AttributeValue::String(s) => {
                hasher.update([1u8]);
                put_prefixed(&mut hasher, s.as_bytes());
            }
            AttributeValue::Binary(b) => {
                hasher.update([2u8]);
                put_prefixed(&mut hasher, b);
            }
        }
    }
    Some(hasher.finalize().into())
}

fn put_prefixed(hasher: &mut Md5, bytes: &[u8]) {
    // Lengths are bounded by the request size limit, so they always fit in u32.
    let len = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
    hasher.update(len.to_be_bytes());
    hasher.update(bytes);
}

/// Lower-case hex of a digest.
pub fn hex(digest: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(digest.len() * 2);
    for byte in digest {
        out.push(char::from(HEX[usize::from(byte >> 4)]));
        out.push(char::from(HEX[usize::from(byte & 0xf)]));
    }
    out
}

/// SHA-256 of the body, hex: the deduplication id of `ContentBasedDeduplication`.
pub fn content_dedup_id(body: &str) -> String {
    hex(&sha2::Sha256::digest(body.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_md5_known_vector() {
        assert_eq!(
            hex(&md5_of_body("hello")),
            "5d41402abc4b2a76b9719d911017c592"
        );
    }
}
