//! A barrier's configuration: who takes part, and its rules.
//!
//! `setup` writes the configuration into the tags of the barrier's check-in
//! queue (see [`crate::tags`]); participants and the coordinator read it from
//! there, so nobody has to be told the party count twice.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The most members a barrier can have. The coordinator keeps one bit and
/// one small record per member; the limit keeps its published state within
/// the tags SQS allows on one queue.
pub const MAX_MEMBERS: usize = 20_000;

/// Errors in a barrier's configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The barrier name is not usable in queue names.
    #[error("invalid barrier name {0:?}: use 1 to 64 letters, digits, '-' or '_'")]
    InvalidName(String),
    /// Zero parties, or too many.
    #[error("invalid number of parties {0}: must be between 1 and {MAX_MEMBERS}")]
    InvalidParties(usize),
    /// The roster has an unusable or repeated name.
    #[error(
        "invalid member name {0:?}: names are 1 to 64 characters without ',' or control characters, and distinct"
    )]
    InvalidMember(String),
    /// A barrier or member name contains a control, bidirectional or
    /// invisible formatting character (which would reorder or hide text
    /// where the name is shown).
    #[error(
        "invalid {what} name {name:?}: character {position} is U+{code:04X} ({desc}); names may not contain control, bidirectional or invisible formatting characters",
        code = u32::from(*ch),
        desc = unsafe_char_description(*ch)
    )]
    UnsafeChar {
        /// `barrier` or `member`.
        what: &'static str,
        /// The name.
        name: String,
        /// The character's position in the name, counting from 1.
        position: usize,
        /// The character.
        ch: char,
    },
    /// `--parties` and the roster disagree.
    #[error("--parties {parties} does not match the {roster} names given with --members")]
    RosterMismatch {
        /// The party count given.
        parties: usize,
        /// The number of names in the roster.
        roster: usize,
    },
    /// A setting is out of range.
    #[error("{0}")]
    Invalid(String),
    /// The stored configuration could not be read.
    #[error("the barrier's stored configuration is unreadable: {0}")]
    Corrupt(String),
}

/// The most positions (configured and joined members together) a barrier
/// whose membership changes may have, so that its published state (arrival
/// bitmaps, the roll) fits in the tags SQS allows on one queue.
pub const MAX_ELASTIC: usize = 2048;

/// The longest barrier name: SQS queue names are at most 80 characters and
/// the longest suffix we add is `-checkin.fifo` (13).
pub const MAX_BARRIER_NAME: usize = 64;

/// Whether `c` may not be part of a name: a control character, a
/// bidirectional formatting character (embeddings, overrides, isolates,
/// marks), a line or paragraph separator, or an invisible one (zero width
/// space, word joiner, byte order mark). Zero width (non-)joiners, which
/// some scripts need, are allowed.
pub fn is_unsafe_name_char(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061C}'
                | '\u{200B}'
                | '\u{200E}'
                | '\u{200F}'
                | '\u{2028}'..='\u{202E}'
                | '\u{2060}'..='\u{2064}'
                | '\u{2066}'..='\u{2069}'
                | '\u{FEFF}'
        )
}

/// What a character refused in names is, for the error.
fn unsafe_char_description(c: char) -> &'static str {
    match c {
        '\u{061C}' => "ARABIC LETTER MARK, a bidirectional mark",
        '\u{200B}' => "ZERO WIDTH SPACE, an invisible character",
        '\u{200E}' => "LEFT-TO-RIGHT MARK, a bidirectional mark",
        '\u{200F}' => "RIGHT-TO-LEFT MARK, a bidirectional mark",
        '\u{2028}' => "LINE SEPARATOR",
        '\u{2029}' => "PARAGRAPH SEPARATOR",
        '\u{202A}' => "LEFT-TO-RIGHT EMBEDDING, a bidirectional control",
        '\u{202B}' => "RIGHT-TO-LEFT EMBEDDING, a bidirectional control",
        '\u{202C}' => "POP DIRECTIONAL FORMATTING, a bidirectional control",
        '\u{202D}' => "LEFT-TO-RIGHT OVERRIDE, a bidirectional control",
        '\u{202E}' => "RIGHT-TO-LEFT OVERRIDE, a bidirectional control",
        '\u{2060}' => "WORD JOINER, an invisible character",
        '\u{2061}'..='\u{2064}' => "an invisible mathematical operator",
        '\u{2066}' => "LEFT-TO-RIGHT ISOLATE, a bidirectional control",
        '\u{2067}' => "RIGHT-TO-LEFT ISOLATE, a bidirectional control",
        '\u{2068}' => "FIRST STRONG ISOLATE, a bidirectional control",
        '\u{2069}' => "POP DIRECTIONAL ISOLATE, a bidirectional control",
        '\u{FEFF}' => "ZERO WIDTH NO-BREAK SPACE (byte order mark), an invisible character",
        _ => "a control character",
    }
}

/// The first character of `name` refused in names, as an error.
fn check_chars(what: &'static str, name: &str) -> Result<(), ConfigError> {
    match name
        .chars()
        .enumerate()
        .find(|(_, c)| is_unsafe_name_char(*c))
    {
        Some((i, ch)) => Err(ConfigError::UnsafeChar {
            what,
            name: name.to_owned(),
            position: i + 1,
            ch,
        }),
        None => Ok(()),
    }
}

/// Checks that `name` can name a barrier: 1 to 64 of `[A-Za-z0-9_-]`. A
/// control or bidirectional character is named in the error, with its
/// position.
pub fn validate_barrier_name(name: &str) -> Result<(), ConfigError> {
    check_chars("barrier", name)?;
    let ok = !name.is_empty()
        && name.len() <= MAX_BARRIER_NAME
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(ConfigError::InvalidName(name.to_owned()))
    }
}

/// Checks a new member's name (`setup`, a join): 1 to 64 bytes, no `,`,
/// no control, bidirectional or invisible formatting character (see
/// [`is_unsafe_name_char`]; the error names the character and its
/// position).
pub fn validate_member_name(name: &str) -> Result<(), ConfigError> {
    check_chars("member", name)?;
    validate_stored_member_name(name)
}

/// Checks a member's name in a stored configuration, by the rules of the
/// versions that wrote it: 1 to 64 bytes, no `,`, no control character (a
/// barrier set up before bidirectional characters were refused stays
/// readable).
fn validate_stored_member_name(name: &str) -> Result<(), ConfigError> {
    let bad = name.is_empty()
        || name.len() > 64
        || name.contains(',')
        || name.chars().any(char::is_control);
    if bad {
        return Err(ConfigError::InvalidMember(name.to_owned()));
    }
    Ok(())
}

/// A quorum release: a generation at which at least `min` of its members
/// have arrived is released `grace` after the `min`-th arrived, without
/// the members still missing, who are then dropped from the barrier.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Quorum {
    /// How many members suffice.
    pub min: usize,
    /// How long to wait for the others once `min` have arrived.
    pub grace: Duration,
}

/// Who takes part in a barrier.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Membership {
    /// `n` anonymous members named `0`, `1`, ... `n-1`.
    Count(usize),
    /// Named members, in roster order.
    Roster(Vec<String>),
}

impl Membership {
    /// Builds and validates a membership from a party count and an optional
    /// roster.
    pub fn new(parties: usize, roster: Option<Vec<String>>) -> Result<Self, ConfigError> {
        Self::build(parties, roster, validate_member_name)
    }

    /// A membership read from a stored configuration: its names checked by
    /// the rules of the versions that may have written it.
    fn stored(parties: usize, roster: Option<Vec<String>>) -> Result<Self, ConfigError> {
        Self::build(parties, roster, validate_stored_member_name)
    }

    fn build(
        parties: usize,
        roster: Option<Vec<String>>,
        validate: fn(&str) -> Result<(), ConfigError>,
    ) -> Result<Self, ConfigError> {
        if parties == 0 || parties > MAX_MEMBERS {
            return Err(ConfigError::InvalidParties(parties));
        }
        let Some(roster) = roster else {
            return Ok(Membership::Count(parties));
        };
        if roster.len() != parties {
            return Err(ConfigError::RosterMismatch {
                parties,
                roster: roster.len(),
            });
        }
        let mut seen = std::collections::HashSet::new();
        for name in &roster {
            validate(name)?;
            if !seen.insert(name.as_str()) {
                return Err(ConfigError::InvalidMember(name.clone()));
            }
        }
        Ok(Membership::Roster(roster))
    }

    /// The number of members.
    pub fn len(&self) -> usize {
        match self {
            Membership::Count(n) => *n,
            Membership::Roster(r) => r.len(),
        }
    }

    /// Always false: a membership has at least one member.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The index of the member called `name`, if it is one.
    pub fn index_of(&self, name: &str) -> Option<usize> {
        match self {
            Membership::Count(n) => {
                // Only the canonical spelling counts: "007" is not member 7.
                let i: usize = name.parse().ok()?;
                (i < *n && i.to_string() == name).then_some(i)
            }
            Membership::Roster(r) => r.iter().position(|m| m == name),
        }
    }

    /// The name of member `index`.
    ///
    /// # Panics
    /// If `index` is out of range.
    pub fn name(&self, index: usize) -> String {
        match self {
            Membership::Count(n) => {
                assert!(index < *n, "member index out of range");
                index.to_string()
            }
            Membership::Roster(r) => r[index].clone(),
        }
    }
}

/// Everything the participants and the coordinator of one barrier agree on.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct BarrierConfig {
    /// The barrier's name; its queues are named from it.
    pub name: String,
    /// A random id made by `setup`. Messages carry it, so a message left
    /// over from an earlier barrier of the same name is recognised as foreign.
    pub instance: String,
    /// Who takes part.
    pub members: Membership,
    /// If set, a generation that is not complete this long after its first
    /// check-in is broken by the coordinator, naming the missing members.
    pub deadline: Option<Duration>,
    /// Whether the check-in queue is a FIFO queue.
    pub fifo: bool,
    /// A quorum release, if set (see [`Quorum`]).
    pub quorum: Option<Quorum>,
    /// Whether the barrier has used a feature of wire version 2 (its
    /// membership changed, or members brought data): the stored
    /// configuration is then version 2, which builds that read only
    /// version 1 refuse to open, rather than count against a membership
    /// they do not know. The coordinator sets it before it first publishes
    /// such a state.
    pub extended: bool,
}

/// The stored form of [`BarrierConfig`]: version 1, or 2 with a quorum
/// (builds that read only version 1 refuse it rather than wait for all).
#[derive(Serialize, Deserialize)]
struct StoredConfig {
    v: u32,
    name: String,
    instance: String,
    parties: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    members: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    deadline_ms: Option<u64>,
    #[serde(default)]
    fifo: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    quorum: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    grace_ms: Option<u64>,
}

impl BarrierConfig {
    /// Validates and builds a configuration.
    pub fn new(
        name: &str,
        instance: &str,
        members: Membership,
        deadline: Option<Duration>,
        fifo: bool,
    ) -> Result<Self, ConfigError> {
        validate_barrier_name(name)?;
        Ok(Self {
            name: name.to_owned(),
            instance: instance.to_owned(),
            members,
            deadline,
            fifo,
            quorum: None,
            extended: false,
        })
    }

    /// Sets a quorum release: at least `min` members (1 to the party
    /// count, and at most [`MAX_ELASTIC`] parties: dropping
    /// members changes the roll) and a grace of at most a day.
    pub fn with_quorum(mut self, min: usize, grace: Duration) -> Result<Self, ConfigError> {
        let n = self.members.len();
        if min == 0 || min > n {
            return Err(ConfigError::Invalid(format!(
                "invalid quorum {min}: must be between 1 and the {n} parties"
            )));
        }
        if n > MAX_ELASTIC {
            return Err(ConfigError::Invalid(format!(
                "a quorum needs a barrier of at most {} parties",
                MAX_ELASTIC
            )));
        }
        if grace > Duration::from_secs(86_400) {
            return Err(ConfigError::Invalid(
                "invalid grace: at most 86400 seconds".into(),
            ));
        }
        self.quorum = Some(Quorum { min, grace });
        Ok(self)
    }

    /// Serialises the configuration to JSON (the payload stored in tags).
    pub fn to_json(&self) -> String {
        let stored = StoredConfig {
            v: if self.quorum.is_some() || self.extended {
                2
            } else {
                1
            },
            name: self.name.clone(),
            instance: self.instance.clone(),
            parties: self.members.len(),
            members: match &self.members {
                Membership::Count(_) => None,
                Membership::Roster(r) => Some(r.clone()),
            },
            deadline_ms: self.deadline.map(|d| d.as_millis() as u64),
            fifo: self.fifo,
            quorum: self.quorum.map(|q| q.min),
            grace_ms: self.quorum.map(|q| q.grace.as_millis() as u64),
        };
        serde_json::to_string(&stored).expect("config serialises")
    }

    /// Parses and validates a configuration stored by [`Self::to_json`].
    pub fn from_json(json: &str) -> Result<Self, ConfigError> {
        let s: StoredConfig =
            serde_json::from_str(json).map_err(|e| ConfigError::Corrupt(e.to_string()))?;
        if s.v != 1 && s.v != 2 {
            return Err(ConfigError::Corrupt(format!(
                "configuration version {} is not supported by this version of sqs-barrier",
                s.v
            )));
        }
        let members = Membership::stored(s.parties, s.members)?;
        let cfg = Self::new(
            &s.name,
            &s.instance,
            members,
            s.deadline_ms.map(Duration::from_millis),
            s.fifo,
        )?;
        let mut cfg = match s.quorum {
            Some(min) => cfg.with_quorum(min, Duration::from_millis(s.grace_ms.unwrap_or(0)))?,
            None => cfg,
        };
        // Version 2 says so by itself only without a quorum (which needs it).
        cfg.extended = s.v == 2 && cfg.quorum.is_none();
        Ok(cfg)
    }

    /// Whether two configurations describe the same barrier rules, ignoring
    /// the instance id (used to make `setup` idempotent).
    pub fn same_rules(&self, other: &Self) -> bool {
        self.name == other.name
            && self.members == other.members
            && self.deadline == other.deadline
            && self.fifo == other.fifo
            && self.quorum == other.quorum
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_with_control_or_bidi_characters_are_refused() {
        let e = Membership::new(2, Some(vec!["ok".into(), "ab\u{202E}cd".into()])).unwrap_err();
        assert_eq!(
            e,
            ConfigError::UnsafeChar {
                what: "member",
                name: "ab\u{202E}cd".into(),
                position: 3,
                ch: '\u{202E}',
            }
        );
        let text = e.to_string();
        assert!(text.contains("character 3 is U+202E"), "{text}");
        assert!(text.contains("RIGHT-TO-LEFT OVERRIDE"), "{text}");
        for (name, position, code) in [
            ("\u{2066}x", 1, "U+2066"),
            ("x\u{200F}", 2, "U+200F"),
            ("a\tb", 2, "U+0009"),
            ("é\u{0085}", 2, "U+0085"),
            ("z\u{FEFF}", 2, "U+FEFF"),
            ("line\u{2028}", 5, "U+2028"),
        ] {
            let text = validate_member_name(name).unwrap_err().to_string();
            assert!(
                text.contains(&format!("character {position} is {code}")),
                "{name:?}: {text}"
            );
        }
        // Other scripts, and the joiners they need, are fine.
        for name in ["Ωμέγα", "עברית", "عربي", "क्‍ष", "worker-7", "a b"] {
            assert_eq!(validate_member_name(name), Ok(()), "{name:?}");
        }
        let text = validate_barrier_name("etl\u{202E}x")
            .unwrap_err()
            .to_string();
        assert!(text.starts_with("invalid barrier name"), "{text}");
        assert!(text.contains("character 4 is U+202E"), "{text}");
        assert!(matches!(
            validate_barrier_name("a\u{7}"),
            Err(ConfigError::UnsafeChar { position: 2, .. })
        ));
        assert_eq!(
            validate_barrier_name("é"),
            Err(ConfigError::InvalidName("é".into()))
        );
        assert_eq!(
            BarrierConfig::new("a\u{202E}", "i", Membership::Count(1), None, false).map(drop),
            Err(ConfigError::UnsafeChar {
                what: "barrier",
                name: "a\u{202E}".into(),
                position: 2,
                ch: '\u{202E}'
            })
        );
    }

    #[test]
    fn stored_configurations_with_bidi_names_stay_readable() {
        // Written before such names were refused: still opens.
        let json = r#"{"v":1,"name":"b","instance":"i","parties":2,"members":["a","x\u202ey"]}"#;
        let cfg = BarrierConfig::from_json(json).expect("readable");
        assert_eq!(cfg.members.name(1), "x\u{202E}y");
        // Control characters never were allowed.
        let json = r#"{"v":1,"name":"b","instance":"i","parties":1,"members":["x\u0007"]}"#;
        assert!(BarrierConfig::from_json(json).is_err());
    }

    #[test]
    fn membership_lookup() {
        let m = Membership::new(3, None).unwrap();
        assert_eq!(m.index_of("2"), Some(2));
        assert_eq!(m.index_of("3"), None);
        assert_eq!(m.index_of("02"), None);
        assert_eq!(m.index_of("x"), None);
        let r = Membership::new(2, Some(vec!["a".into(), "b".into()])).unwrap();
        assert_eq!(r.index_of("b"), Some(1));
        assert_eq!(r.name(0), "a");
    }

    #[test]
    fn membership_validation() {
        assert!(Membership::new(0, None).is_err());
        assert!(Membership::new(2, Some(vec!["a".into()])).is_err());
        assert!(Membership::new(2, Some(vec!["a".into(), "a".into()])).is_err());
        assert!(Membership::new(1, Some(vec!["a,b".into()])).is_err());
        assert!(Membership::new(1, Some(vec!["".into()])).is_err());
    }

    #[test]
    fn config_round_trip() {
        let c = BarrierConfig::new(
            "job",
            "i1",
            Membership::new(2, Some(vec!["a".into(), "b".into()])).unwrap(),
            Some(Duration::from_secs(90)),
            true,
        )
        .unwrap();
        let back = BarrierConfig::from_json(&c.to_json()).unwrap();
        assert_eq!(c, back);
        assert!(c.to_json().starts_with("{\"v\":1,"));
        let q = c.clone().with_quorum(1, Duration::from_secs(30)).unwrap();
        assert!(q.to_json().starts_with("{\"v\":2,"), "{}", q.to_json());
        assert_eq!(BarrierConfig::from_json(&q.to_json()).unwrap(), q);
        assert!(!q.same_rules(&c));
        let mut e = c.clone();
        e.extended = true;
        assert!(e.to_json().starts_with("{\"v\":2,"));
        assert_eq!(BarrierConfig::from_json(&e.to_json()).unwrap(), e);
        assert!(e.same_rules(&c), "the version is not a rule");
        assert!(c.clone().with_quorum(3, Duration::ZERO).is_err());
        assert!(c.clone().with_quorum(0, Duration::ZERO).is_err());
        assert!(BarrierConfig::from_json("{").is_err());
        assert!(
            BarrierConfig::from_json(r#"{"v":3,"name":"a","instance":"i","parties":1}"#).is_err()
        );
    }
}
