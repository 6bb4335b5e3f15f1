//! The published state's two readers. The input is split at the first NUL byte:
//! before it, a JSON document for `PublishedState::from_json`; after it, queue tags
//! for `tags::decode`, one `key=value` per line. Neither may panic; an accepted state
//! must round-trip through `to_json`, and a decoded tag document through
//! `tags::encode`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sqs_barrier_core::state::PublishedState;
use sqs_barrier_core::tags;

fuzz_target!(|data: &[u8]| {
    let (json, rest) = match data.iter().position(|&b| b == 0) {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (data, &[][..]),
    };
    if let Ok(json) = std::str::from_utf8(json)
        && let Some(state) = PublishedState::from_json(json)
    {
        let again = PublishedState::from_json(&state.to_json());
        assert_eq!(again.as_ref(), Some(&state), "state round trip");
    }

    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    let pairs: Vec<(&str, &str)> = text
        .lines()
        .map(|line| line.split_once('=').unwrap_or((line, "")))
        .collect();
    for prefix in [tags::STATE_PREFIX, tags::CONFIG_PREFIX] {
        if let Ok(Some(doc)) = tags::decode(prefix, pairs.iter().copied()) {
            // What was read must be writable again and read back the same.
            if let Ok(written) = tags::encode(prefix, &doc) {
                let read = tags::decode(
                    prefix,
                    written.iter().map(|(k, v)| (k.as_str(), v.as_str())),
                );
                assert_eq!(read, Ok(Some(doc)), "tag document round trip");
            }
        }
    }
});
