//! The published state's readers. The input is split at the first NUL byte:
//! before it, a JSON document for `PublishedState::from_json` and, as a message of
//! the state queue, for `StateRecord::from_json`; after it, queue tags for
//! `tags::decode`, one `key=value` per line. None may panic; an accepted state or
//! record must round-trip through `to_json`, a record's newest-of choice must not
//! depend on the order it is given in, and a decoded tag document must round-trip
//! through `tags::encode`.
//!
//! An accepted state's version 2 parts are read as the coordinator and the
//! participants read them, over a numbered and a roster membership: the roll
//! (`roll`: joined members, gone ones, spans), the open generation's missing members
//! and who brought data (`open.data`), the quorum's age (`open.quorum_age_ms`). None
//! of it may panic, and a roll published again from what was read must expect the
//! same members at the generations from the release frontier on.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sqs_barrier_core::config::Membership;
use sqs_barrier_core::record::{StateRecord, newest};
use sqs_barrier_core::roll::Roll;
use sqs_barrier_core::state::PublishedState;
use sqs_barrier_core::tags;

fn read_v2(state: &PublishedState) {
    let bases = [
        Membership::Count(1),
        Membership::Count(3),
        Membership::Roster(vec!["a".into(), "b".into()]),
    ];
    for base in bases {
        let roll = state.roll(&base);
        if let Some(open) = &state.open {
            let missing = state.missing_at(open.generation, &roll).unwrap_or_default();
            assert!(missing.len() <= roll.len());
            if let Some(data) = &open.data {
                let _ = data.within(roll.len()).len();
            }
            let _ = open.quorum_age_ms.map(std::time::Duration::from_millis);
        }
        for (session, _) in state.roll.iter().flat_map(|r| r.joins.iter()) {
            if let Some(Some(position)) = roll.join_of(session) {
                assert!(position < roll.len(), "a join's position is a member");
                let _ = (roll.name(position), roll.span(position));
            }
        }
        if roll.version() > 0 {
            let below = state.released_below;
            let again = Roll::from_state(base.clone(), roll.to_state(below).as_ref());
            for g in below..below.saturating_add(4) {
                assert_eq!(
                    roll.expected(g).collect::<Vec<_>>(),
                    again.expected(g).collect::<Vec<_>>(),
                    "roll published again at {below}: generation {g}"
                );
            }
        }
    }
}

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
        read_v2(&state);
    }
    if let Ok(body) = std::str::from_utf8(json)
        && let Ok(record) = StateRecord::from_json(body)
    {
        let again = StateRecord::from_json(&record.to_json());
        assert_eq!(again.as_ref(), Ok(&record), "record round trip");
        read_v2(&record.state);
        // Two writes: whichever order a reader gets them in, it picks the same.
        let mut other = record.clone();
        other.state.seq = other.state.seq.wrapping_add(1);
        let a = newest([&record, &other]).map(|r| r.state.order());
        let b = newest([&other, &record]).map(|r| r.state.order());
        assert_eq!(a, b, "newest of two");
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
