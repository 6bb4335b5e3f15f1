//! The messages of a barrier's state queue (`NAME-state`): each one write
//! of the coordinator's published state, with a copy of the barrier's
//! configuration.
//!
//! SQS allows an account five tagging actions a second, so the state
//! cannot live in tags, which every reader would read and every write
//! would rewrite. A message can be sent, read and deleted at data-plane
//! rates instead. A write is a new message; the writer removes the older
//! ones it finds. Several writes can be in the queue at once (two
//! coordinators, a remove that has not happened yet, an old message that
//! came back), and a reader can see any of them, so every reader takes the
//! newest of what it read by [`PublishedState::order`]: the same choice for
//! everyone who sees the same messages, and never an older write after a
//! newer one ([`crate::state::Liveness`] ignores those).
//!
//! The configuration travels with every write, so that a process that
//! opens the barrier while a coordinator runs learns it from the one
//! message it reads anyway, without a tagging action; and a message names
//! the instance it belongs to, so that a reader of a barrier that was
//! deleted and set up again under the same name tells the new instance's
//! state from its own.
//!
//! ```json
//! {"v":1,"type":"state","config":{…stored configuration…},"state":{…published state…}}
//! ```

use serde_json::Value;

use crate::config::BarrierConfig;
use crate::state::PublishedState;
use crate::wire::MAX_BODY;

/// The version of the record format this build writes and reads.
pub const RECORD_VERSION: u64 = 1;

/// One message of the state queue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StateRecord {
    /// The barrier's configuration, as the writer read it at its start.
    pub config: BarrierConfig,
    /// The published state.
    pub state: PublishedState,
}

/// Why a state queue message was not a state record.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RecordError {
    /// Larger than any SQS message.
    #[error("the message is larger than {MAX_BODY} bytes")]
    TooLarge,
    /// Not the JSON object of a state record.
    #[error("not a state record: {0}")]
    Malformed(String),
    /// A version this build does not read.
    #[error("state record version {0} is not supported by this version of sqs-barrier")]
    Version(u64),
}

impl StateRecord {
    /// The message body.
    pub fn to_json(&self) -> String {
        // Written by hand so that `v` comes first, as in every document of
        // the protocol; both parts are JSON objects of their own.
        format!(
            r#"{{"v":{RECORD_VERSION},"type":"state","config":{},"state":{}}}"#,
            self.config.to_json(),
            self.state.to_json()
        )
    }

    /// Reads a message body.
    pub fn from_json(body: &str) -> Result<Self, RecordError> {
        if body.len() > MAX_BODY {
            return Err(RecordError::TooLarge);
        }
        let bad = |what: &str| RecordError::Malformed(what.to_owned());
        let value: Value = serde_json::from_str(body).map_err(|e| bad(&e.to_string()))?;
        let obj = value.as_object().ok_or_else(|| bad("not an object"))?;
        let v = obj
            .get("v")
            .and_then(Value::as_u64)
            .ok_or_else(|| bad("no version"))?;
        if v != RECORD_VERSION {
            return Err(RecordError::Version(v));
        }
        if obj.get("type").and_then(Value::as_str) != Some("state") {
            return Err(bad("not of type \"state\""));
        }
        let config = obj.get("config").ok_or_else(|| bad("no configuration"))?;
        let config = BarrierConfig::from_json(&config.to_string())
            .map_err(|e| bad(&format!("configuration: {e}")))?;
        let state = obj.get("state").ok_or_else(|| bad("no state"))?;
        let state =
            PublishedState::from_json(&state.to_string()).ok_or_else(|| bad("unreadable state"))?;
        Ok(Self { config, state })
    }

    /// Whether this record belongs to the barrier instance `instance`.
    pub fn is_of(&self, instance: &str) -> bool {
        self.config.instance == instance
    }
}

/// The newest of `records` by [`PublishedState::order`].
pub fn newest<'a>(records: impl IntoIterator<Item = &'a StateRecord>) -> Option<&'a StateRecord> {
    records.into_iter().max_by_key(|r| r.state.order())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Membership;

    fn state(coordinator: &str, term: u64, seq: u64) -> PublishedState {
        PublishedState {
            v: 1,
            coordinator: coordinator.into(),
            term,
            heartbeat_ms: 1,
            seq,
            heartbeat_every_ms: 2_000,
            stopped: false,
            standbys: vec![],
            released_below: 3,
            released_above: vec![],
            open: None,
            broken: None,
            rejected: 0,
            roll: None,
        }
    }

    fn config() -> BarrierConfig {
        BarrierConfig::new(
            "etl",
            "5f3a9c1e0b7d2a64",
            Membership::new(3, None).unwrap(),
            None,
            false,
        )
        .unwrap()
    }

    #[test]
    fn round_trip() {
        let r = StateRecord {
            config: config(),
            state: state("a", 2, 7),
        };
        let back = StateRecord::from_json(&r.to_json()).unwrap();
        assert_eq!(back, r);
        assert!(back.is_of("5f3a9c1e0b7d2a64"));
        assert!(!back.is_of("0000000000000000"));
    }

    #[test]
    fn junk_and_other_versions_are_refused() {
        for body in [
            "",
            "[]",
            "{}",
            r#"{"v":1}"#,
            r#"{"v":1,"type":"checkin"}"#,
            r#"{"v":"1","type":"state"}"#,
            r#"{"v":1,"type":"state","config":{},"state":{}}"#,
        ] {
            assert!(
                matches!(StateRecord::from_json(body), Err(RecordError::Malformed(_))),
                "{body}"
            );
        }
        let r = StateRecord {
            config: config(),
            state: state("a", 1, 1),
        };
        let v2 = r.to_json().replacen("{\"v\":1,", "{\"v\":2,", 1);
        assert_eq!(StateRecord::from_json(&v2), Err(RecordError::Version(2)));
        let huge = " ".repeat(MAX_BODY + 1);
        assert_eq!(StateRecord::from_json(&huge), Err(RecordError::TooLarge));
    }

    #[test]
    fn the_newest_is_by_term_then_writer_then_counter() {
        let rec = |c: &str, t, s| StateRecord {
            config: config(),
            state: state(c, t, s),
        };
        let all = [rec("b", 1, 90), rec("a", 2, 1), rec("a", 1, 100)];
        assert_eq!(newest(&all).unwrap().state.order(), all[1].state.order());
        let same_term = [rec("a", 2, 50), rec("b", 2, 1)];
        assert_eq!(newest(&same_term).unwrap().state.coordinator, "b");
        let one_writer = [rec("a", 2, 5), rec("a", 2, 6)];
        assert_eq!(newest(&one_writer).unwrap().state.seq, 6);
        assert!(newest(&[]).is_none());
    }
}
