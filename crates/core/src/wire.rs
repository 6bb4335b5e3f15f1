//! The wire format of every message on a barrier's queues.
//!
//! Each message body is one JSON object with a format version `v` and a
//! `type`. Decoders ignore fields they do not know, so later versions can
//! add fields without breaking older readers; a change that older readers
//! must not misread bumps `v`, and a reader rejects a `v` it does not know
//! rather than guess.
//!
//! Version 2 adds membership changes (`join`, a check-in that `leave`s),
//! gathered data (a check-in's `data`, a release's `data`) and quorum
//! releases (a release's `without`). A message that uses none of them is
//! written as version 1, so barriers that use none of them work with
//! builds that read only version 1; one that uses any is written as
//! version 2, which such builds reject (dead-letter, or ignore as foreign)
//! rather than count wrongly.
//!
//! ```json
//! {"v":1,"type":"checkin","barrier":"job","instance":"5f3a…","gen":3,"member":"alice","session":"9c1e…","attempt":0}
//! {"v":2,"type":"checkin","barrier":"job","instance":"5f3a…","gen":3,"member":"alice","session":"9c1e…","attempt":0,"leave":true,"data":"s3://bucket/part-3"}
//! {"v":2,"type":"join","barrier":"job","instance":"5f3a…","member":"carol","session":"4b7a…"}
//! {"v":2,"type":"release","barrier":"job","instance":"5f3a…","gen":3,"without":["bob"],"data":{"alice":"s3://bucket/part-3"}}
//! {"v":1,"type":"abort","barrier":"job","instance":"5f3a…","gen":3,"by":"alice","reason":"disk full"}
//! {"v":1,"type":"release","barrier":"job","instance":"5f3a…","gen":3}
//! {"v":1,"type":"broken","barrier":"job","instance":"5f3a…","gen":3,"from_gen":3,"cause":{"kind":"aborted","by":"alice","reason":"disk full"},"missing":["bob"]}
//! {"v":1,"type":"probe","barrier":"job","instance":"5f3a…","from":"7d2e91c0@host2","watch":true}
//! ```
//!
//! Check-ins, aborts and probes travel on the check-in queue; releases and broken
//! notices on the release queues. Decoding checks the shape only; whether a
//! message belongs to this barrier (name, instance, member) is the state
//! machines' business.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The newest wire format version this crate writes and reads. Messages
/// that use no version 2 feature are written as version 1.
pub const VERSION: u32 = 2;

/// The largest message body SQS accepts (1 MiB), and so the largest the
/// decoder accepts: a release notice of a gathering barrier carries every
/// member's data. Anything larger is rejected before it is parsed.
pub const MAX_BODY: usize = 1_048_576;

/// Room a release notice keeps for everything but the gathered data: its
/// own fields and the names of members released without arriving.
pub const NOTICE_RESERVE: usize = 16 * 1024;

/// The most bytes one member's gathered data may take in a release notice
/// of a barrier of `members` members: what SQS's largest message leaves
/// for each, after [`NOTICE_RESERVE`]. The size counted is the data as a
/// JSON string (quotes and escapes included) plus the member's name as one
/// and 2 bytes of punctuation; [`data_entry_size`] computes it.
pub fn data_limit(members: usize) -> usize {
    (MAX_BODY - NOTICE_RESERVE) / members.max(1)
}

/// The bytes member `name`'s `data` takes in a release notice.
pub fn data_entry_size(name: &str, data: &str) -> usize {
    let json = |s: &str| serde_json::to_string(s).map_or(s.len(), |j| j.len());
    json(name) + json(data) + 2
}

/// Why a message body could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The body is larger than [`MAX_BODY`].
    #[error("message of {0} bytes is larger than any barrier message")]
    TooLarge(usize),
    /// The body is not a JSON object of a known shape.
    #[error("not a barrier message: {0}")]
    Malformed(String),
    /// The body is a barrier message of a version this build does not read.
    #[error("barrier message version {0} is not supported (this build reads version {VERSION})")]
    UnsupportedVersion(u64),
}

/// Why a generation was broken.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum BreakCause {
    /// A participant or an operator aborted the barrier.
    Aborted {
        /// Who aborted: a member's name, or an operator's label.
        by: String,
        /// The reason they gave.
        reason: String,
    },
    /// The barrier's deadline passed with members missing.
    Deadline {
        /// The deadline, in milliseconds after the generation's first check-in.
        after_ms: u64,
    },
    /// The data gathered at the generation does not fit in one SQS message
    /// (members joined after the data's size was checked).
    TooMuchData {
        /// The size the release notice would have had, in bytes.
        bytes: u64,
        /// The largest message SQS accepts.
        max: u64,
    },
    /// A member asked for something this coordinator cannot do (data
    /// gathered by a coordinator that cannot hold messages between its
    /// invocations).
    Unsupported {
        /// What, and what to do instead.
        what: String,
    },
}

impl std::fmt::Display for BreakCause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BreakCause::Aborted { by, reason } => write!(f, "aborted by {by}: {reason}"),
            BreakCause::Deadline { after_ms } => write!(
                f,
                "deadline of {:.1} s after the first check-in passed",
                *after_ms as f64 / 1000.0
            ),
            BreakCause::TooMuchData { bytes, max } => write!(
                f,
                "the data gathered takes {bytes} bytes, more than the {max} one SQS message holds"
            ),
            BreakCause::Unsupported { what } => f.write_str(what),
        }
    }
}

/// A message on one of the barrier's queues.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Message {
    /// A member has arrived at generation `gen`.
    Checkin {
        /// The barrier's name.
        barrier: String,
        /// The barrier's instance id (see [`crate::BarrierConfig::instance`]).
        instance: String,
        /// The generation (phase) arrived at.
        #[serde(rename = "gen")]
        generation: u64,
        /// The member's name.
        member: String,
        /// A random id of the waiting participant; a new `wait` after a
        /// crash has a new one.
        session: String,
        /// 0 for the first send, then 1, 2, ... for each re-send while the
        /// participant keeps waiting.
        attempt: u32,
        /// The member arrives at `gen` and is expected at no later one.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        leave: bool,
        /// The member's data for the others, handed to everyone with the
        /// release of `gen`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        data: Option<String>,
    },
    /// Somebody asks to be a member from the next generation that opens.
    Join {
        /// The barrier's name.
        barrier: String,
        /// The barrier's instance id.
        instance: String,
        /// The name to join as; `None` on a barrier of numbered members:
        /// the coordinator gives the next number.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        member: Option<String>,
        /// A random id of the joining process: it finds its join (and its
        /// number) in the published state by it.
        session: String,
    },
    /// Somebody breaks the barrier.
    Abort {
        /// The barrier's name.
        barrier: String,
        /// The barrier's instance id.
        instance: String,
        /// The generation the aborting participant was at; `None` from an
        /// operator, meaning the current generation.
        #[serde(rename = "gen", default, skip_serializing_if = "Option::is_none")]
        generation: Option<u64>,
        /// Who aborts.
        by: String,
        /// Why.
        reason: String,
    },
    /// Generation `gen` is complete: everyone may pass.
    Release {
        /// The barrier's name.
        barrier: String,
        /// The barrier's instance id.
        instance: String,
        /// The generation released.
        #[serde(rename = "gen")]
        generation: u64,
        /// Members released without having arrived (a quorum release): they
        /// are members no more.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        without: Vec<String>,
        /// The data members brought to `gen`, by member (a gathering wait).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        data: Option<BTreeMap<String, String>>,
    },
    /// Generation `gen` will never be released.
    Broken {
        /// The barrier's name.
        barrier: String,
        /// The barrier's instance id.
        instance: String,
        /// The generation this notice answers.
        #[serde(rename = "gen")]
        generation: u64,
        /// The barrier is broken from this generation on.
        from_gen: u64,
        /// Why.
        cause: BreakCause,
        /// The members that had not arrived at `from_gen` when it broke.
        missing: Vec<String>,
    },
    /// A coordinator standing by asks the active one to show it is alive:
    /// the active one publishes its state at once (a new heartbeat) and
    /// beats faster while probes keep coming.
    Probe {
        /// The barrier's name.
        barrier: String,
        /// The barrier's instance id.
        instance: String,
        /// Who asks: a standby's id, or `status@HOST`.
        from: String,
        /// `true` from a standby: keep beating fast while it watches;
        /// `false` from a one-off look (`sqs-barrier status`).
        #[serde(default)]
        watch: bool,
    },
}

#[derive(Deserialize)]
struct Envelope {
    v: u64,
}

impl Message {
    /// The oldest wire format version that can carry this message: 2 if
    /// it uses a feature of version 2, else 1.
    pub fn version(&self) -> u32 {
        let v2 = match self {
            Message::Checkin { leave, data, .. } => *leave || data.is_some(),
            Message::Join { .. } => true,
            Message::Release { without, data, .. } => !without.is_empty() || data.is_some(),
            Message::Broken { cause, .. } => matches!(
                cause,
                BreakCause::TooMuchData { .. } | BreakCause::Unsupported { .. }
            ),
            Message::Abort { .. } | Message::Probe { .. } => false,
        };
        if v2 { 2 } else { 1 }
    }

    /// Encodes the message as its JSON body.
    pub fn encode(&self) -> String {
        let json = serde_json::to_string(self).expect("messages serialise");
        // `v` goes first, for people reading raw queues; the serialised enum
        // is an object that always has at least its `type`.
        format!("{{\"v\":{},{}", self.version(), &json[1..])
    }

    /// Decodes a message body.
    pub fn decode(body: &str) -> Result<Message, DecodeError> {
        if body.len() > MAX_BODY {
            return Err(DecodeError::TooLarge(body.len()));
        }
        let env: Envelope =
            serde_json::from_str(body).map_err(|e| DecodeError::Malformed(e.to_string()))?;
        if env.v == 0 || env.v > u64::from(VERSION) {
            return Err(DecodeError::UnsupportedVersion(env.v));
        }
        serde_json::from_str(body).map_err(|e| DecodeError::Malformed(e.to_string()))
    }

    /// The barrier name and instance the message claims to belong to.
    pub fn barrier(&self) -> (&str, &str) {
        match self {
            Message::Checkin {
                barrier, instance, ..
            }
            | Message::Abort {
                barrier, instance, ..
            }
            | Message::Release {
                barrier, instance, ..
            }
            | Message::Broken {
                barrier, instance, ..
            }
            | Message::Probe {
                barrier, instance, ..
            }
            | Message::Join {
                barrier, instance, ..
            } => (barrier, instance),
        }
    }

    /// A short name of the message's type, for logs and counters.
    pub fn kind(&self) -> &'static str {
        match self {
            Message::Checkin { .. } => "checkin",
            Message::Abort { .. } => "abort",
            Message::Release { .. } => "release",
            Message::Broken { .. } => "broken",
            Message::Probe { .. } => "probe",
            Message::Join { .. } => "join",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checkin() -> Message {
        Message::Checkin {
            barrier: "b".into(),
            instance: "i".into(),
            generation: 3,
            member: "alice".into(),
            session: "s".into(),
            attempt: 1,
            leave: false,
            data: None,
        }
    }

    #[test]
    fn round_trip_every_type() {
        let msgs = [
            checkin(),
            Message::Abort {
                barrier: "b".into(),
                instance: "i".into(),
                generation: None,
                by: "op".into(),
                reason: "r".into(),
            },
            Message::Release {
                barrier: "b".into(),
                instance: "i".into(),
                generation: 9,
                without: vec![],
                data: None,
            },
            Message::Release {
                barrier: "b".into(),
                instance: "i".into(),
                generation: 9,
                without: vec!["bob".into()],
                data: Some([("alice".to_owned(), "x\"y".to_owned())].into()),
            },
            Message::Checkin {
                barrier: "b".into(),
                instance: "i".into(),
                generation: 3,
                member: "alice".into(),
                session: "s".into(),
                attempt: 0,
                leave: true,
                data: Some("payload".into()),
            },
            Message::Join {
                barrier: "b".into(),
                instance: "i".into(),
                member: None,
                session: "s".into(),
            },
            Message::Broken {
                barrier: "b".into(),
                instance: "i".into(),
                generation: 4,
                from_gen: 3,
                cause: BreakCause::Deadline { after_ms: 5000 },
                missing: vec!["bob".into()],
            },
            Message::Probe {
                barrier: "b".into(),
                instance: "i".into(),
                from: "c2".into(),
                watch: true,
            },
        ];
        for m in msgs {
            let body = m.encode();
            let v = m.version();
            assert!(body.starts_with(&format!("{{\"v\":{v},")), "{body}");
            assert_eq!(Message::decode(&body).unwrap(), m);
        }
    }

    #[test]
    fn only_messages_using_version_2_features_are_version_2() {
        assert_eq!(checkin().version(), 1);
        assert!(checkin().encode().starts_with("{\"v\":1,"));
        let mut leaving = checkin();
        if let Message::Checkin { leave, .. } = &mut leaving {
            *leave = true;
        }
        assert!(leaving.encode().starts_with("{\"v\":2,"));
    }

    #[test]
    fn data_limits() {
        assert_eq!(data_entry_size("a", "xy"), 3 + 4 + 2);
        assert_eq!(data_entry_size("a", "\""), 3 + 4 + 2);
        assert_eq!(data_limit(1), MAX_BODY - NOTICE_RESERVE);
        assert_eq!(data_limit(1000), (MAX_BODY - NOTICE_RESERVE) / 1000);
    }

    #[test]
    fn documented_example_decodes() {
        let m = Message::decode(
            r#"{"v":1,"type":"checkin","barrier":"b","instance":"i","gen":3,"member":"alice","session":"s","attempt":1,"future_field":[1,2]}"#,
        )
        .unwrap();
        assert_eq!(m, checkin());
    }

    #[test]
    fn rejects_junk() {
        for junk in [
            "",
            "null",
            "[]",
            "{}",
            "{\"v\":1}",
            "{\"v\":1,\"type\":\"checkin\"}",
            "{\"v\":\"1\",\"type\":\"release\"}",
            "Process 3 completed Phase 1",
            "{\"v\":1,\"type\":\"release\",\"barrier\":\"b\",\"instance\":\"i\",\"gen\":-1}",
        ] {
            assert!(Message::decode(junk).is_err(), "{junk:?} decoded");
        }
        assert_eq!(
            Message::decode("{\"v\":3,\"type\":\"release\"}"),
            Err(DecodeError::UnsupportedVersion(3))
        );
        assert_eq!(
            Message::decode("{\"v\":0,\"type\":\"release\"}"),
            Err(DecodeError::UnsupportedVersion(0))
        );
        assert!(matches!(
            Message::decode(&" ".repeat(MAX_BODY + 1)),
            Err(DecodeError::TooLarge(_))
        ));
    }
}
