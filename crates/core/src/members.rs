//! Sets of members by position (arrivals, the roll's spans), and how they
//! travel in JSON.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

/// A set of member indexes, stored as a bitmap.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct MemberSet {
    bits: Vec<u8>,
    cap: usize,
    len: usize,
}

impl MemberSet {
    /// An empty set over `n` members.
    pub fn new(n: usize) -> Self {
        Self {
            bits: vec![0; n.div_ceil(8)],
            cap: n,
            len: 0,
        }
    }

    /// Adds member `i`; returns whether it was new. Out-of-range indexes are
    /// ignored (and reported as not new).
    pub fn insert(&mut self, i: usize) -> bool {
        if i >= self.cap {
            return false;
        }
        let (byte, bit) = (i / 8, 1u8 << (i % 8));
        match self.bits.get_mut(byte) {
            Some(b) if *b & bit == 0 => {
                *b |= bit;
                self.len += 1;
                true
            }
            _ => false,
        }
    }

    /// Whether member `i` is in the set.
    pub fn contains(&self, i: usize) -> bool {
        self.bits
            .get(i / 8)
            .is_some_and(|b| b & (1 << (i % 8)) != 0)
    }

    /// Whether every member of this set is in `other`.
    pub fn is_subset_of(&self, other: &MemberSet) -> bool {
        (0..self.cap).all(|i| !self.contains(i) || other.contains(i))
    }

    /// The number of members in the set.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The members of the set below `n`, as a set over `n` members (a set
    /// read from a published state may be longer than the membership).
    pub fn within(&self, n: usize) -> Self {
        let mut s = Self::new(n);
        for i in (0..n).filter(|i| self.contains(*i)) {
            s.insert(i);
        }
        s
    }

    /// The indexes below `n` that are not in the set.
    pub fn missing(&self, n: usize) -> impl Iterator<Item = usize> + '_ {
        (0..n).filter(|i| !self.contains(*i))
    }

    pub(crate) fn to_base64(&self) -> String {
        STANDARD.encode(&self.bits)
    }

    pub(crate) fn from_base64(s: &str) -> Option<Self> {
        let bits = STANDARD.decode(s).ok()?;
        let len = bits.iter().map(|b| b.count_ones() as usize).sum();
        let cap = bits.len() * 8;
        Some(Self { bits, cap, len })
    }
}

impl MemberSet {
    /// The positions the set can hold.
    pub(crate) fn capacity(&self) -> usize {
        self.cap
    }
}

/// A member set as the shorter of a base64 bitmap (a string) and a list
/// of positions (an array): a few members of a large roll take a few bytes.
pub(crate) mod member_set_compact {
    use super::MemberSet;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    #[derive(Serialize, Deserialize)]
    #[serde(untagged)]
    enum Form {
        Bits(String),
        Positions(Vec<usize>),
    }

    pub fn serialize<S: Serializer>(set: &MemberSet, s: S) -> Result<S::Ok, S::Error> {
        let positions: Vec<usize> = (0..set.capacity()).filter(|i| set.contains(*i)).collect();
        let list_len: usize = positions.iter().map(|p| p.to_string().len() + 1).sum();
        let bits = set.to_base64();
        if list_len + 1 < bits.len() + 2 {
            Form::Positions(positions).serialize(s)
        } else {
            Form::Bits(bits).serialize(s)
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<MemberSet, D::Error> {
        match Form::deserialize(d)? {
            Form::Bits(b) => MemberSet::from_base64(&b)
                .ok_or_else(|| serde::de::Error::custom("bad member bitmap")),
            Form::Positions(p) => {
                // Positions beyond any roll are ignored (no set is larger).
                let cap = p
                    .iter()
                    .copied()
                    .filter(|i| *i < crate::config::MAX_MEMBERS * 2)
                    .max()
                    .map_or(0, |m| m + 1);
                let mut set = MemberSet::new(cap);
                for i in p {
                    set.insert(i);
                }
                Ok(set)
            }
        }
    }
}

pub(crate) mod opt_member_set_b64 {
    use super::MemberSet;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(set: &Option<MemberSet>, s: S) -> Result<S::Ok, S::Error> {
        match set {
            Some(set) => s.serialize_str(&set.to_base64()),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<MemberSet>, D::Error> {
        let s = Option::<String>::deserialize(d)?;
        s.map(|s| {
            MemberSet::from_base64(&s).ok_or_else(|| serde::de::Error::custom("bad member bitmap"))
        })
        .transpose()
    }
}

pub(crate) mod member_set_b64 {
    use super::MemberSet;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(set: &MemberSet, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&set.to_base64())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<MemberSet, D::Error> {
        let s = String::deserialize(d)?;
        MemberSet::from_base64(&s).ok_or_else(|| serde::de::Error::custom("bad member bitmap"))
    }
}
