//! Consensus: one question answered independently N times, then a resolve task that sees every
//! answer side by side and decides.
//!
//! A plan task with `consensus` becomes a container (the task itself, tagged `consensus`) with
//! N answer subtasks (`KEY.answer-1` …, tagged `consensus:answer`, each with its own executor
//! when the spec names them) and one resolve subtask (`KEY.resolve`, tagged
//! `consensus:resolve`, role `reviewer` unless the spec names another) that depends on every
//! answer. The expansion itself is `plan::expand_consensus`; this module holds the spec, the
//! names and texts of the subtasks, and how answers are compared for the integration report.

use std::fmt;

use serde::de::{self, MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Tag of a consensus container.
pub const TAG: &str = "consensus";
/// Tag of an answer subtask.
pub const ANSWER_TAG: &str = "consensus:answer";
/// Tag of the resolve subtask.
pub const RESOLVE_TAG: &str = "consensus:resolve";
/// The resolve task's role unless the spec names one.
pub const DEFAULT_RESOLVER: &str = "reviewer";
/// The most answers one consensus task may ask for.
pub const MAX_ANSWERS: u32 = 10;

/// `consensus = 3`, or `consensus = { n = 3, executors = [...], resolver = "architect" }`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConsensusSpec {
    /// How many answers; `None` takes the number of `executors`.
    pub n: Option<u32>,
    /// One executor per answer (named executors or built-in agents); empty: every answer runs
    /// on the task's own executor (else its role's, else the project's).
    pub executors: Vec<String>,
    /// The resolve task's role (default `reviewer`).
    pub resolver: Option<String>,
}

impl ConsensusSpec {
    /// How many answers this spec asks for, or why it is not a valid spec.
    pub fn answers(&self) -> Result<u32, String> {
        let n = match (self.n, self.executors.len()) {
            (Some(n), 0) => n,
            (Some(n), e) if e as u64 != u64::from(n) => {
                return Err(format!(
                    "consensus names {e} executor{} for {n} answers (name one per answer, or leave `n` out)",
                    if e == 1 { "" } else { "s" }
                ));
            }
            (Some(n), _) => n,
            (None, 0) => return Err("consensus needs `n` or a list of `executors`".into()),
            (None, e) => e as u32,
        };
        if n < 2 {
            return Err(format!(
                "consensus needs at least 2 answers to compare, got {n}"
            ));
        }
        if n > MAX_ANSWERS {
            return Err(format!(
                "consensus allows at most {MAX_ANSWERS} answers, got {n}"
            ));
        }
        if let Some(e) = self.executors.iter().find(|e| e.trim().is_empty()) {
            return Err(format!("consensus executor `{e}` is empty"));
        }
        Ok(n)
    }

    /// The resolve task's role.
    pub fn resolver(&self) -> &str {
        self.resolver.as_deref().unwrap_or(DEFAULT_RESOLVER)
    }

    /// The executor of answer `i` (0-based) when the spec names one.
    pub fn executor_of(&self, i: usize) -> Option<&str> {
        self.executors.get(i).map(String::as_str)
    }
}

impl Serialize for ConsensusSpec {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.executors.is_empty()
            && self.resolver.is_none()
            && let Some(n) = self.n
        {
            return s.serialize_u32(n);
        }
        let mut m = s.serialize_map(None)?;
        if let Some(n) = self.n {
            m.serialize_entry("n", &n)?;
        }
        if !self.executors.is_empty() {
            m.serialize_entry("executors", &self.executors)?;
        }
        if let Some(r) = &self.resolver {
            m.serialize_entry("resolver", r)?;
        }
        m.end()
    }
}

impl<'de> Deserialize<'de> for ConsensusSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(SpecVisitor)
    }
}

struct SpecVisitor;

const FIELDS: &[&str] = &["n", "executors", "resolver"];

impl<'de> Visitor<'de> for SpecVisitor {
    type Value = ConsensusSpec;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a number of answers, or a table with `n`, `executors` and `resolver`")
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        let n = u32::try_from(v).map_err(|_| E::custom(format!("{v} answers is too many")))?;
        Ok(ConsensusSpec {
            n: Some(n),
            ..Default::default()
        })
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        match u64::try_from(v) {
            Ok(u) => self.visit_u64(u),
            Err(_) => Err(E::custom(format!(
                "consensus needs at least 2 answers to compare, got {v}"
            ))),
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut spec = ConsensusSpec::default();
        while let Some(k) = map.next_key::<String>()? {
            match k.as_str() {
                "n" => spec.n = Some(map.next_value()?),
                "executors" => spec.executors = map.next_value()?,
                "resolver" => spec.resolver = Some(map.next_value()?),
                other => return Err(de::Error::unknown_field(other, FIELDS)),
            }
        }
        Ok(spec)
    }
}

/// The key of answer `i` (1-based) of the consensus task keyed `key`.
pub fn answer_key(key: &str, i: u32) -> String {
    format!("{key}.answer-{i}")
}

/// The key of the resolve task of the consensus task keyed `key`.
pub fn resolve_key(key: &str) -> String {
    format!("{key}.resolve")
}

/// The title of answer `i` (1-based) of `n`.
pub fn answer_title(title: &str, i: u32, n: u32) -> String {
    format!("{} (answer {i} of {n})", title.trim())
}

/// The title of the resolve task.
pub fn resolve_title(title: &str) -> String {
    format!("Resolve: {}", title.trim())
}

/// What the resolve task is asked to do; the answers themselves reach its prompt as the
/// results and artifacts of the tasks it depends on.
pub fn resolve_description(title: &str, description: &str, n: u32) -> String {
    let mut s = format!(
        "{n} independent answers were given to the same question: \"{}\".\n",
        title.trim()
    );
    if !description.trim().is_empty() {
        s.push_str("\nThe question as it was asked:\n\n");
        s.push_str(description.trim());
        s.push('\n');
    }
    s.push_str(
        "\nThe answers are the results (and artifacts) of the tasks this one depends on, side by \
         side. Compare them: say where they agree and where they conflict, weigh the \
         conflicting points, and decide. Your summary is the decision the rest of the work \
         builds on.",
    );
    s
}

/// An answer as the comparison sees it: lower case, runs of whitespace as one space, trailing
/// punctuation and surrounding whitespace dropped.
pub fn normalise(answer: &str) -> String {
    let words: Vec<&str> = answer.split_whitespace().collect();
    words
        .join(" ")
        .trim_end_matches(['.', '!', '?', ';', ':', ','])
        .to_lowercase()
}

/// Answers grouped by agreement: two answers agree when their normalised texts ([`normalise`])
/// are equal. Each group lists indices into `answers`; groups come in the order of their first
/// answer. Answers that are empty after normalising agree with nothing and form no group.
pub fn agreement(answers: &[&str]) -> Vec<Vec<usize>> {
    let mut groups: Vec<(String, Vec<usize>)> = Vec::new();
    for (i, a) in answers.iter().enumerate() {
        let n = normalise(a);
        if n.is_empty() {
            continue;
        }
        match groups.iter_mut().find(|(k, _)| *k == n) {
            Some((_, g)) => g.push(i),
            None => groups.push((n, vec![i])),
        }
    }
    groups.into_iter().map(|(_, g)| g).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_count_from_n_or_executors() {
        let s = |n, e: &[&str]| ConsensusSpec {
            n,
            executors: e.iter().map(|x| (*x).to_owned()).collect(),
            resolver: None,
        };
        assert_eq!(s(Some(3), &[]).answers(), Ok(3));
        assert_eq!(s(None, &["claude", "codex"]).answers(), Ok(2));
        assert!(
            s(Some(1), &[])
                .answers()
                .unwrap_err()
                .contains("at least 2")
        );
        assert!(
            s(Some(11), &[])
                .answers()
                .unwrap_err()
                .contains("at most 10")
        );
        assert!(
            s(Some(3), &["claude", "codex"])
                .answers()
                .unwrap_err()
                .contains("names 2 executors for 3 answers")
        );
        assert!(s(None, &[]).answers().unwrap_err().contains("needs `n`"));
    }

    #[test]
    fn the_short_form_and_the_table_both_parse_and_write_back() {
        #[derive(Deserialize, Serialize)]
        struct T {
            consensus: ConsensusSpec,
        }
        let short: T = toml::from_str("consensus = 3").unwrap();
        assert_eq!(short.consensus.n, Some(3));
        assert_eq!(toml::to_string(&short).unwrap().trim(), "consensus = 3");
        let long: T = toml::from_str(
            "consensus = { executors = [\"claude\", \"codex\"], resolver = \"architect\" }",
        )
        .unwrap();
        assert_eq!(long.consensus.executors, ["claude", "codex"]);
        assert_eq!(long.consensus.resolver(), "architect");
        let back: T = toml::from_str(&toml::to_string(&long).unwrap()).unwrap();
        assert_eq!(back.consensus, long.consensus);
        let err = toml::from_str::<T>("consensus = { count = 3 }")
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("unknown field `count`"), "{err}");
        let j: T = serde_json::from_str(r#"{"consensus": {"n": 2}}"#).unwrap();
        assert_eq!(j.consensus.answers(), Ok(2));
    }

    #[test]
    fn answers_agree_when_their_normalised_texts_are_equal() {
        let groups = agreement(&[
            "Use Authlib.",
            "use   authlib",
            "Use python-jose",
            "",
            "USE AUTHLIB!",
        ]);
        assert_eq!(groups, vec![vec![0, 1, 4], vec![2]]);
    }
}
