//! What SQS accepts: characters of bodies and attribute values, message attribute
//! names, types and values, tags, and a message as a whole against its queue.

use super::{
    AttributeValue, MAX_MESSAGE_ATTRIBUTES, MAX_TAG_KEY, MAX_TAG_VALUE, MessageAttribute,
    NewMessage, Queue,
};
use crate::error::{ErrorCode, Result, SqsError};

/// Characters SQS allows in bodies and attribute values:
/// `#x9 | #xA | #xD | #x20..#xD7FF | #xE000..#xFFFD | #x10000..#x10FFFF`.
/// (Rust strings cannot hold surrogates, so only the rest needs checking.)
pub fn is_valid_message_text(text: &str) -> bool {
    text.chars().all(|c| {
        matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
    })
}

pub(super) fn validate_attribute_name(name: &str) -> Result<()> {
    let lower = name.to_ascii_lowercase();
    let ok = !name.is_empty()
        && name.len() <= 256
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
        && !name.starts_with('.')
        && !name.ends_with('.')
        && !name.contains("..")
        && !lower.starts_with("aws.")
        && !lower.starts_with("amazon.");
    if ok {
        Ok(())
    } else {
        Err(SqsError::invalid_parameter(format!(
            "Message (user) attribute '{name}' name is invalid."
        )))
    }
}

/// Checks one tag against SQS's rules: a key of 1 to [`MAX_TAG_KEY`] and a value
/// of up to [`MAX_TAG_VALUE`] characters, made of Unicode letters and digits,
/// whitespace and `_ . : / = + - @`, neither starting with the reserved `aws:`.
pub fn validate_tag(key: &str, value: &str) -> Result<()> {
    let allowed = |text: &str| {
        text.chars()
            .all(|c| c.is_alphanumeric() || c.is_whitespace() || "_.:/=+-@".contains(c))
    };
    let reserved = |text: &str| {
        text.get(..4)
            .is_some_and(|p| p.eq_ignore_ascii_case("aws:"))
    };
    let problem = if key.is_empty() || key.chars().count() > MAX_TAG_KEY {
        Some(format!("keys are 1 to {MAX_TAG_KEY} characters long"))
    } else if value.chars().count() > MAX_TAG_VALUE {
        Some(format!(
            "values are at most {MAX_TAG_VALUE} characters long"
        ))
    } else if !allowed(key) || !allowed(value) {
        Some("only letters, digits, whitespace and _ . : / = + - @ are allowed".to_owned())
    } else if reserved(key) || reserved(value) {
        Some("the prefix aws: is reserved".to_owned())
    } else {
        None
    };
    match problem {
        None => Ok(()),
        Some(problem) => Err(SqsError::invalid_parameter(format!(
            "Tag {key:?} is invalid: {problem}."
        ))),
    }
}

pub(super) fn validate_attributes(attributes: &[MessageAttribute]) -> Result<()> {
    if attributes.len() > MAX_MESSAGE_ATTRIBUTES {
        return Err(SqsError::invalid_parameter(format!(
            "Number of message attributes [{}] exceeds the allowed maximum [{MAX_MESSAGE_ATTRIBUTES}].",
            attributes.len()
        )));
    }
    for (i, attribute) in attributes.iter().enumerate() {
        validate_attribute_name(&attribute.name)?;
        if attributes[..i].iter().any(|a| a.name == attribute.name) {
            return Err(SqsError::invalid_parameter(format!(
                "Message attribute name '{}' has already been used.",
                attribute.name
            )));
        }
        let base = attribute.data_type.split('.').next().unwrap_or_default();
        let custom_ok = attribute.data_type.len() <= 256
            && attribute
                .data_type
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
        let value_ok = match (base, &attribute.value) {
            ("String", AttributeValue::String(s)) => {
                if !is_valid_message_text(s) {
                    return Err(SqsError::new(
                        ErrorCode::InvalidMessageContents,
                        "Invalid characters found in a message attribute value.",
                    ));
                }
                true
            }
            ("Number", AttributeValue::String(s)) => is_number(s),
            ("Binary", AttributeValue::Binary(_)) => true,
            _ => false,
        };
        if !custom_ok || !value_ok {
            return Err(SqsError::invalid_parameter(format!(
                "The message attribute '{}' with type '{}' has an invalid or missing value.",
                attribute.name, attribute.data_type
            )));
        }
    }
    Ok(())
}

/// SQS numbers: an optional sign, digits, an optional fraction and exponent.
pub(super) fn is_number(s: &str) -> bool {
    let s = s.strip_prefix(['-', '+']).unwrap_or(s);
    let (mantissa, exponent) = match s.split_once(['e', 'E']) {
        Some((m, e)) => (m, Some(e.strip_prefix(['-', '+']).unwrap_or(e))),
        None => (s, None),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits = |t: &str| t.bytes().all(|b| b.is_ascii_digit());
    (!int.is_empty() || !frac.is_empty())
        && digits(int)
        && digits(frac)
        && exponent.is_none_or(|e| !e.is_empty() && digits(e))
}

impl Queue {
    /// Checks a message against this queue's limits without changing anything.
    pub fn validate(&self, message: &NewMessage) -> Result<()> {
        if message.body.is_empty() {
            return Err(SqsError::missing("MessageBody"));
        }
        if !is_valid_message_text(&message.body) {
            return Err(SqsError::new(
                ErrorCode::InvalidMessageContents,
                "Invalid characters found. Valid unicode characters are #x9 | #xA | #xD | #x20 to #xD7FF | #xE000 to #xFFFD | #x10000 to #x10FFFF",
            ));
        }
        let max = self.attributes.maximum_message_size as usize;
        if message.size() > max {
            return Err(SqsError::invalid_parameter(format!(
                "One or more parameters are invalid. Reason: Message must be shorter than {max} bytes."
            )));
        }
        validate_attributes(&message.attributes)?;
        for attribute in &message.system_attributes {
            if &*attribute.name != "AWSTraceHeader"
                || !matches!(attribute.value, AttributeValue::String(_))
                || &*attribute.data_type != "String"
            {
                return Err(SqsError::invalid_parameter(format!(
                    "Message system attribute name '{}' is invalid.",
                    attribute.name
                )));
            }
        }
        if let Some(delay) = message.delay_seconds
            && delay > 900
        {
            return Err(SqsError::invalid_parameter(format!(
                "Value {delay} for parameter DelaySeconds is invalid. Reason: DelaySeconds must be >= 0 and <= 900."
            )));
        }
        let fifo_id_ok = |id: &str| {
            !id.is_empty() && id.len() <= 128 && id.bytes().all(|b| b.is_ascii_graphic())
        };
        if self.is_fifo() {
            if message.delay_seconds.is_some_and(|d| d > 0) {
                return Err(SqsError::invalid_parameter(
                    "Value for parameter DelaySeconds is invalid. Reason: The request include parameter that is not valid for this queue type.",
                ));
            }
            match &message.group_id {
                None => return Err(SqsError::missing("MessageGroupId")),
                Some(g) if !fifo_id_ok(g) => {
                    return Err(SqsError::invalid_parameter(
                        "Value for parameter MessageGroupId is invalid.",
                    ));
                }
                Some(_) => {}
            }
            match &message.deduplication_id {
                None if !self.attributes.content_based_deduplication => {
                    return Err(SqsError::invalid_parameter(
                        "The queue should either have ContentBasedDeduplication enabled or MessageDeduplicationId provided explicitly",
                    ));
                }
                Some(d) if !fifo_id_ok(d) => {
                    return Err(SqsError::invalid_parameter(
                        "Value for parameter MessageDeduplicationId is invalid.",
                    ));
                }
                _ => {}
            }
        } else if message.deduplication_id.is_some() {
            return Err(SqsError::invalid_parameter(
                "The request includes a parameter that is not valid for this queue type: MessageDeduplicationId",
            ));
        }
        Ok(())
    }
}
