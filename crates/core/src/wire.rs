//! The wire format of every message on a barrier's queues.
//!
//! Each message body is one JSON object with a format version `v` (now 1)
//! and a `type`. Decoders ignore fields they do not know, so later versions
//! can add fields (payloads, signatures) without breaking older readers; a
//! change that older readers must not misread bumps `v`, and a reader
//! rejects a `v` it does not know rather than guess.
//!
//! ```json
//! {"v":1,"type":"checkin","barrier":"job","instance":"5f3a…","gen":3,"member":"alice","session":"9c1e…","attempt":0}
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

use serde::{Deserialize, Serialize};

/// The wire format version this crate writes and reads.
pub const VERSION: u32 = 1;

/// The largest message body the decoder accepts. Barrier messages are small;
/// anything larger is foreign and is rejected before it is parsed.
pub const MAX_BODY: usize = 256 * 1024;

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
    /// Encodes the message as its JSON body.
    pub fn encode(&self) -> String {
        let json = serde_json::to_string(self).expect("messages serialise");
        // `v` goes first, for people reading raw queues; the serialised enum
        // is an object that always has at least its `type`.
        format!("{{\"v\":{VERSION},{}", &json[1..])
    }

    /// Decodes a message body.
    pub fn decode(body: &str) -> Result<Message, DecodeError> {
        if body.len() > MAX_BODY {
            return Err(DecodeError::TooLarge(body.len()));
        }
        let env: Envelope =
            serde_json::from_str(body).map_err(|e| DecodeError::Malformed(e.to_string()))?;
        if env.v != u64::from(VERSION) {
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
            assert!(body.starts_with("{\"v\":1,"), "{body}");
            assert_eq!(Message::decode(&body).unwrap(), m);
        }
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
            Message::decode("{\"v\":2,\"type\":\"release\"}"),
            Err(DecodeError::UnsupportedVersion(2))
        );
        assert!(matches!(
            Message::decode(&" ".repeat(MAX_BODY + 1)),
            Err(DecodeError::TooLarge(_))
        ));
    }
}
