//! What a file of another tool maps to: a plan, the statuses its new tasks start in, and the
//! report of what could not be carried over. Shared by the readers of each format.

use std::collections::{BTreeMap, HashMap};

use downbeat_core::plan::{PlanFile, PlanTask};
use downbeat_core::task::Status;
use serde::Serialize;

/// What an import could not carry over, and how it read what it did.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Report {
    /// Items that could not be mapped, each naming the item: a dependency on something not in
    /// the file, a status or priority Downbeat has no equivalent of, a deleted issue.
    pub unmapped: Vec<String>,
    /// Fields of the format that Downbeat does not keep, with how many items had them.
    pub skipped_fields: BTreeMap<String, usize>,
    /// Fields the format (as documented in the version this reader follows) does not have —
    /// written by a newer version of the tool — with how many items had them.
    pub unknown_fields: BTreeMap<String, usize>,
    /// Readings worth knowing: statuses carried over as another, tags left behind.
    pub notes: Vec<String>,
}

impl Report {
    pub(crate) fn skipped(&mut self, field: &str) {
        *self.skipped_fields.entry(field.to_owned()).or_default() += 1;
    }

    pub(crate) fn unknown(&mut self, field: &str) {
        *self.unknown_fields.entry(field.to_owned()).or_default() += 1;
    }

    /// Counts a note once per kind: `key` names it, `text` says it the first time; the count
    /// is added when the notes are finished.
    pub(crate) fn note_once(
        &mut self,
        counts: &mut BTreeMap<String, (String, usize)>,
        key: &str,
        text: String,
    ) {
        counts.entry(key.to_owned()).or_insert((text, 0)).1 += 1;
    }

    /// Turns counted notes into lines (`… (3 items)`).
    pub(crate) fn finish_notes(&mut self, counts: BTreeMap<String, (String, usize)>) {
        for (_, (text, n)) in counts {
            self.notes.push(format!("{text} ({n} item(s))"));
        }
    }
}

/// A file of another tool, read.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Mapped {
    /// The plan it maps to (named, every task keyed).
    pub plan: PlanFile,
    /// The status each task (by key) starts in, where not `pending`.
    pub statuses: HashMap<String, Status>,
    pub report: Report,
}

/// A plan task with only a key and a title.
pub(crate) fn task(key: String, title: String) -> PlanTask {
    PlanTask {
        key: Some(key),
        title,
        description: String::new(),
        role: None,
        parent: None,
        depends_on: Vec::new(),
        related: Vec::new(),
        discovered_from: Vec::new(),
        priority: None,
        effort: None,
        acceptance: Vec::new(),
        tags: Vec::new(),
        files: Vec::new(),
        executor: None,
        command: None,
        shell: None,
        timeout: None,
        max_attempts: None,
        consensus: None,
    }
}

/// An id of the other tool made fit for a task key (letters, digits, `-`, `_`, `.`; at most
/// 64 characters); `None` when it cannot be.
pub(crate) fn key(prefix: &str, id: &str) -> Option<String> {
    let cleaned: String = id
        .trim()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '-'
            }
        })
        .collect();
    let k = format!("{prefix}{cleaned}");
    (!cleaned.is_empty() && k.len() <= 64).then_some(k)
}

/// A title fit for a task: trimmed, never empty, at most 500 characters.
pub(crate) fn title(t: &str, fallback: &str) -> String {
    let t = t.trim();
    let t = if t.is_empty() { fallback } else { t };
    t.chars().take(500).collect()
}
