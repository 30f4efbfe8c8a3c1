//! What the attempt ledger keeps of an attempt beyond its outcome: which agent CLI ran it and
//! its session (so a retry on any machine resumes it), its cost, and the git work of an attempt
//! run in its own worktree. Stored as one JSON object per attempt.

use serde::{Deserialize, Serialize};

/// An attempt's detail. Every field is optional: a shell command has none of them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AttemptDetail {
    /// The agent CLI's profile name (`claude`, `codex`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    /// The agent's session id, resumed by the next attempt of the same task.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<String>,
    /// What the agent reported the attempt cost, in US dollars.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_usd: Option<f64>,
    /// The attempt's worktree, branch and merge.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub git: Option<GitWork>,
}

impl AttemptDetail {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// The git side of an attempt that worked in its own worktree.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GitWork {
    /// The attempt's branch, e.g. `downbeat/t/k3m9qa/1`.
    pub branch: String,
    /// The integration branch commit the attempt started from.
    pub base: String,
    /// The attempt's last commit (what the agent committed, plus what Downbeat committed of
    /// what it left), when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub head: Option<String>,
    /// The integration branch commit that brought the attempt's work in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merge: Option<String>,
    pub state: MergeState,
    /// Files changed between `base` and `head`, and lines added and removed.
    #[serde(default)]
    pub files: u32,
    #[serde(default)]
    pub insertions: u32,
    #[serde(default)]
    pub deletions: u32,
    /// Files in conflict, when the merge conflicted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conflicts: Vec<String>,
    /// The task that resolves the conflict, under the `resolve` policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolver: Option<String>,
}

/// Where an attempt's work stands with respect to the integration branch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MergeState {
    /// The attempt did not succeed: nothing was merged (the worktree is kept to look at).
    #[default]
    NotMerged,
    /// Merged into the integration branch.
    Merged,
    /// The attempt changed nothing: there was nothing to merge.
    Unchanged,
    /// The merge conflicted; see `conflicts`.
    Conflict,
    /// The merge conflicted and a resolver task integrates it.
    Resolving,
}

impl MergeState {
    pub fn name(self) -> &'static str {
        match self {
            MergeState::NotMerged => "not-merged",
            MergeState::Merged => "merged",
            MergeState::Unchanged => "unchanged",
            MergeState::Conflict => "conflict",
            MergeState::Resolving => "resolving",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_detail_serializes_to_an_empty_object_and_back() {
        let d = AttemptDetail::default();
        assert_eq!(serde_json::to_string(&d).unwrap(), "{}");
        assert!(
            serde_json::from_str::<AttemptDetail>("{}")
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn git_work_round_trips() {
        let d = AttemptDetail {
            agent: Some("claude".into()),
            session: Some("s1".into()),
            cost_usd: Some(0.25),
            git: Some(GitWork {
                branch: "downbeat/t/abc/1".into(),
                base: "b".into(),
                head: Some("h".into()),
                merge: None,
                state: MergeState::Conflict,
                files: 2,
                insertions: 3,
                deletions: 1,
                conflicts: vec!["a.txt".into()],
                resolver: None,
            }),
        };
        let text = serde_json::to_string(&d).unwrap();
        assert!(text.contains("\"state\":\"conflict\""), "{text}");
        assert_eq!(serde_json::from_str::<AttemptDetail>(&text).unwrap(), d);
    }
}
