//! Message bodies into the wire decoder: it must never panic, and whatever it accepts
//! must survive an encode/decode round trip unchanged. A message encodes as version
//! 2 exactly when it uses a field of version 2 (a `join`, a check-in's `leave` or
//! `data`, a release's `without` or `data`), so that a reader of version 1 refuses it
//! rather than drop what it cannot read; a check-in's data is measured as the
//! release notice would carry it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sqs_barrier_core::wire::{Message, data_entry_size};

fuzz_target!(|data: &[u8]| {
    let Ok(body) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(message) = Message::decode(body) {
        let encoded = message.encode();
        let again = Message::decode(&encoded)
            .unwrap_or_else(|e| panic!("re-decoding {encoded:?} failed: {e}"));
        assert_eq!(again, message, "round trip changed the message");
        let v2 = match &message {
            Message::Join { .. } => true,
            Message::Checkin {
                member,
                leave,
                data,
                ..
            } => {
                if let Some(d) = data {
                    assert!(data_entry_size(member, d) >= member.len() + d.len());
                }
                *leave || data.is_some()
            }
            Message::Release { without, data, .. } => !without.is_empty() || data.is_some(),
            _ => message.version() == 2,
        };
        assert_eq!(message.version(), if v2 { 2 } else { 1 }, "{encoded}");
        assert!(
            encoded.starts_with(&format!("{{\"v\":{},", message.version())),
            "{encoded}"
        );
    }
});
