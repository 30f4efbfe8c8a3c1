//! Identifiers.
//!
//! A task has a dense sequence number (allocated by the store, never reused) and a short human id
//! derived from it by a fixed bijection: six characters of lowercase base32 that look random,
//! are unique by construction, and are the same for the same insertion order (so tests and
//! examples are deterministic without an injected generator). Users may type any unique prefix.
//!
//! Context records (objectives, insights, decisions, sessions) use a letter and a number: `o3`,
//! `i12`, `d2`, `s1`.

use std::fmt;
use std::str::FromStr;

/// Alphabet of short ids: digits and lowercase letters without `i`, `l`, `o`, `u` (Crockford).
const ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";
const ID_LEN: usize = 6;
const BITS: u32 = 30;
const MASK: u32 = (1 << BITS) - 1;
/// Odd multipliers (bijective modulo 2^30) and their inverses.
const M1: u32 = 0x2545_F491 & MASK | 1;
const M2: u32 = 0x1B87_3593 & MASK | 1;

/// Largest sequence number a task id can encode.
pub const MAX_TASK_SEQ: u32 = MASK;

fn inverse(m: u32) -> u32 {
    // Newton iteration for the inverse of an odd number modulo 2^32, then masked.
    let mut x = m;
    for _ in 0..5 {
        x = x.wrapping_mul(2u32.wrapping_sub(m.wrapping_mul(x)));
    }
    x & MASK
}

fn scramble(mut x: u32) -> u32 {
    x &= MASK;
    x = x.wrapping_mul(M1) & MASK;
    x ^= x >> 15;
    x = x.wrapping_mul(M2) & MASK;
    x ^= x >> 13;
    x
}

fn unscramble(mut x: u32) -> u32 {
    // Undo x ^= x >> 13 (30-bit value: two steps suffice).
    x ^= x >> 13;
    x ^= x >> 26;
    x = x.wrapping_mul(inverse(M2)) & MASK;
    x ^= x >> 15;
    x ^= x >> 30;
    x.wrapping_mul(inverse(M1)) & MASK
}

/// A task's identity: its sequence number, shown as a short id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TaskId(u32);

impl TaskId {
    /// The id of the task with sequence number `seq` (1-based; 0 is never allocated).
    pub fn from_seq(seq: u32) -> Option<Self> {
        (seq <= MAX_TASK_SEQ).then_some(Self(seq))
    }
    pub fn seq(self) -> u32 {
        self.0
    }
    /// The short id, e.g. `k3f9qa`.
    pub fn short(self) -> String {
        let mut v = scramble(self.0);
        let mut out = [0u8; ID_LEN];
        for slot in out.iter_mut().rev() {
            *slot = ALPHABET[(v & 31) as usize];
            v >>= 5;
        }
        out.iter().map(|&b| b as char).collect()
    }
    /// Parses a complete short id (exactly six characters of the alphabet).
    pub fn parse_short(s: &str) -> Option<Self> {
        if s.len() != ID_LEN {
            return None;
        }
        let mut v: u32 = 0;
        for c in s.bytes() {
            let d = ALPHABET.iter().position(|&a| a == c.to_ascii_lowercase())?;
            v = (v << 5) | d as u32;
        }
        Some(Self(unscramble(v)))
    }
    /// Whether `s` could be a prefix of a short id.
    pub fn is_prefix_syntax(s: &str) -> bool {
        !s.is_empty()
            && s.len() <= ID_LEN
            && s.bytes()
                .all(|c| ALPHABET.contains(&c.to_ascii_lowercase()))
    }
}

impl fmt::Display for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.short())
    }
}

impl serde::Serialize for TaskId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.short())
    }
}

/// The kind of a context record, which decides its letter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RecordKind {
    Objective,
    Insight,
    Decision,
    Session,
    Flag,
}

impl RecordKind {
    pub fn letter(self) -> char {
        match self {
            Self::Objective => 'o',
            Self::Insight => 'i',
            Self::Decision => 'd',
            Self::Session => 's',
            Self::Flag => 'f',
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Self::Objective => "objective",
            Self::Insight => "insight",
            Self::Decision => "decision",
            Self::Session => "session",
            Self::Flag => "flag",
        }
    }
}

/// `o3`, `i12`, `d2`, `s1`, `f4`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RecordId {
    pub kind: RecordKind,
    pub num: i64,
}

impl RecordId {
    pub fn new(kind: RecordKind, num: i64) -> Self {
        Self { kind, num }
    }
    /// Parses `o3` (for `kind` objective) or a bare `3`.
    pub fn parse(kind: RecordKind, s: &str) -> Option<Self> {
        let s = s.trim();
        let digits = s
            .strip_prefix(kind.letter())
            .or_else(|| s.strip_prefix(kind.letter().to_ascii_uppercase()))
            .unwrap_or(s);
        let num = i64::from_str(digits).ok().filter(|n| *n > 0)?;
        Some(Self { kind, num })
    }
}

impl fmt::Display for RecordId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.kind.letter(), self.num)
    }
}

impl serde::Serialize for RecordId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn short_ids_round_trip_and_are_unique() {
        let mut seen = HashSet::new();
        for seq in (1..200_000).chain([MAX_TASK_SEQ - 1, MAX_TASK_SEQ]) {
            let id = TaskId::from_seq(seq).unwrap();
            let s = id.short();
            assert_eq!(s.len(), 6);
            assert_eq!(TaskId::parse_short(&s), Some(id), "{seq} -> {s}");
            assert!(seen.insert(s));
        }
    }

    #[test]
    fn consecutive_ids_do_not_share_prefixes() {
        let a = TaskId::from_seq(1).unwrap().short();
        let b = TaskId::from_seq(2).unwrap().short();
        assert_ne!(a[..2], b[..2]);
    }

    #[test]
    fn seq_beyond_range_is_refused() {
        assert!(TaskId::from_seq(MAX_TASK_SEQ + 1).is_none());
    }

    #[test]
    fn record_ids_parse_with_or_without_letter() {
        let o = RecordId::parse(RecordKind::Objective, "o3").unwrap();
        assert_eq!(o.to_string(), "o3");
        assert_eq!(RecordId::parse(RecordKind::Objective, "3"), Some(o));
        assert_eq!(RecordId::parse(RecordKind::Objective, "d3"), None);
        assert_eq!(RecordId::parse(RecordKind::Decision, "0"), None);
    }
}

/// A number with a meaning of its own, shown as the number.
macro_rules! number_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(
            Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord,
            serde::Serialize, serde::Deserialize,
        )]
        #[serde(transparent)]
        pub struct $name(pub i64);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

number_type!(
    /// The fencing token of a claim: a task's lease epoch grows by one with every claim, and
    /// the end of an attempt is accepted only under the epoch it was claimed with.
    LeaseEpoch
);

number_type!(
    /// One row of the attempt ledger (allocated by the store, never reused).
    AttemptId
);

/// What the end of claimed work presents: the epoch it was claimed under and its attempt.
/// Written `EPOCH.ATTEMPT` (`7.123`) where it leaves the process (MCP's `token`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fence {
    pub epoch: LeaseEpoch,
    pub attempt: AttemptId,
}

impl fmt::Display for Fence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.epoch, self.attempt)
    }
}

impl FromStr for Fence {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let bad =
            || format!("`{s}` is not a fencing token (EPOCH.ATTEMPT, as the claim returned it)");
        let (e, a) = s.trim().split_once('.').ok_or_else(bad)?;
        let epoch = e.parse::<i64>().map_err(|_| bad())?;
        let attempt = a.parse::<i64>().map_err(|_| bad())?;
        if epoch < 1 || attempt < 1 {
            return Err(bad());
        }
        Ok(Self {
            epoch: LeaseEpoch(epoch),
            attempt: AttemptId(attempt),
        })
    }
}

#[cfg(test)]
mod fence_tests {
    use super::*;

    #[test]
    fn a_fence_reads_back_what_it_writes_and_refuses_anything_else() {
        let f = Fence {
            epoch: LeaseEpoch(7),
            attempt: AttemptId(123),
        };
        assert_eq!(f.to_string(), "7.123");
        assert_eq!("7.123".parse::<Fence>(), Ok(f));
        for bad in ["7", "7.", ".3", "a.b", "0.1", "1.0", "-1.2", "1.2.3", ""] {
            assert!(bad.parse::<Fence>().is_err(), "{bad} parsed");
        }
    }
}
