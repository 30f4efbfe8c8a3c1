//! The prompts of drafting: the first one (what to plan, the project's roles, layout and
//! memory files, the plan format and what to answer), and the next rounds' (the first one,
//! the last answer and its problems).
//!
//! Must never put a secret in a prompt: it holds the goal, the document, role descriptions,
//! file names and the memory files, nothing of the configuration.

use std::fmt::Write as _;

use downbeat_core::plan::PlanFormat;

use super::context::{Layout, MEMORY_MAX, Memory, clip_bytes};
use super::types::Document;

/// The plan format's essentials, shown to every drafting agent (a valid plan on its own).
pub const FORMAT: &str = include_str!("../../templates/draft_format.toml");

/// At most this many bytes of a requirements document go into the prompt.
pub const DOCUMENT_MAX: usize = 128 * 1024;

/// At most this many bytes of the last answer go into the next round's prompt.
const ANSWER_MAX: usize = 64 * 1024;

/// The task an expansion splits, as the prompt shows it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TaskBrief {
    /// How the plan refers to it (its key, else its id).
    pub reference: String,
    pub title: String,
    pub description: String,
    pub role: Option<String>,
    pub effort: u32,
    pub acceptance: Vec<String>,
    pub files: Vec<String>,
    /// The titles of the tasks containing it, outermost first.
    pub ancestors: Vec<String>,
    /// What it waits on: (reference, title, status).
    pub dependencies: Vec<(String, String, String)>,
}

/// What the first prompt is about.
pub enum Subject<'a> {
    Goal(&'a str),
    Expand {
        task: &'a TaskBrief,
        guidance: Option<&'a str>,
    },
}

/// Everything the first prompt shows.
pub struct Facts<'a> {
    pub subject: Subject<'a>,
    pub document: Option<&'a Document>,
    /// (name, description) of every role of the project.
    pub roles: Vec<(String, String)>,
    pub layout: &'a Layout,
    pub memory: &'a [Memory],
    /// What finished work took ([`downbeat_core::patterns::Patterns::summary`]); empty
    /// without enough history.
    pub patterns: &'a str,
    pub format: PlanFormat,
}

/// The format's name as a fence tag.
pub fn tag(format: PlanFormat) -> &'static str {
    match format {
        PlanFormat::Toml => "toml",
        PlanFormat::Yaml => "yaml",
        PlanFormat::Json => "json",
    }
}

/// The first round's prompt.
pub fn first(f: &Facts<'_>) -> String {
    let mut s = String::with_capacity(16 * 1024);
    subject(&mut s, &f.subject);
    if let Some(d) = f.document {
        let (text, clipped) = clip_bytes(d.text.as_bytes(), DOCUMENT_MAX);
        let _ = write!(s, "\n## Requirements: {}", d.name);
        if clipped {
            let _ = write!(s, " (its first {DOCUMENT_MAX} bytes)");
        }
        let _ = write!(s, "\n\n{}\n", text.trim_end());
    }
    s.push_str("\n## Roles\n\nEvery task names one of these roles:\n\n");
    for (name, description) in &f.roles {
        let _ = writeln!(s, "- `{name}`: {}", description.trim());
    }
    let _ = write!(
        s,
        "\n## The repository\n\n{} of its {} file(s):\n\n```\n",
        f.layout.paths.len(),
        f.layout.total
    );
    for p in &f.layout.paths {
        let _ = writeln!(s, "{p}");
    }
    s.push_str("```\n");
    for m in f.memory {
        let _ = write!(s, "\n## {}", m.name);
        if m.clipped {
            let _ = write!(s, " (its first {MEMORY_MAX} bytes)");
        }
        let _ = write!(s, "\n\n{}\n", m.text.trim_end());
    }
    if !f.patterns.is_empty() {
        s.push_str(
            "\n## What earlier work took\n\nFrom this project's finished tasks; estimate effort so it matches:\n\n",
        );
        s.push_str(f.patterns);
    }
    answer_rules(&mut s, &f.subject, f.format);
    s
}

/// A later round's prompt: the first one, the last answer and what was wrong with it.
pub fn again(first: &str, answer: &str, problems: &[String], format: PlanFormat) -> String {
    let (answer, clipped) = clip_bytes(answer.as_bytes(), ANSWER_MAX);
    let mut s = String::with_capacity(first.len() + answer.len() + 2048);
    s.push_str(first.trim_end());
    s.push_str("\n\n## Your last answer\n\n");
    if clipped {
        let _ = writeln!(s, "(its first {ANSWER_MAX} bytes)\n");
    }
    s.push_str("~~~~\n");
    s.push_str(answer.trim_end());
    s.push_str("\n~~~~\n\n## What is wrong with it\n\n");
    for p in problems {
        let _ = writeln!(s, "- {}", p.replace('\n', "\n  "));
    }
    let _ = write!(
        s,
        "\nAnswer again with the whole corrected plan in one ```{} block.\n",
        tag(format)
    );
    s
}

fn subject(s: &mut String, subject: &Subject<'_>) {
    s.push_str(
        "You plan work for a team of AI agents that Downbeat coordinates: each task goes to \
         one agent in the role it names, tasks run in parallel unless one depends on another, \
         and tasks that change the same files never run at the same time. Do not change any \
         file and do not start the work: read what you need, then answer with a plan.\n",
    );
    match subject {
        Subject::Goal(goal) => {
            let _ = write!(s, "\n## Goal\n\n{}\n", goal.trim());
        }
        Subject::Expand { task, guidance } => {
            let _ = write!(
                s,
                "\n## The task to split into subtasks\n\n`{}`: {}\n",
                task.reference, task.title
            );
            if !task.description.trim().is_empty() {
                let _ = write!(s, "\n{}\n", task.description.trim());
            }
            let _ = write!(
                s,
                "\nRole: {}. Effort: {}.\n",
                task.role.as_deref().unwrap_or("none"),
                task.effort
            );
            if !task.acceptance.is_empty() {
                s.push_str("\nAcceptance criteria:\n");
                for a in &task.acceptance {
                    let _ = writeln!(s, "- {a}");
                }
            }
            if !task.files.is_empty() {
                let _ = writeln!(s, "\nFiles: {}", task.files.join(", "));
            }
            if !task.ancestors.is_empty() {
                let _ = writeln!(s, "\nPart of: {}", task.ancestors.join(" › "));
            }
            if !task.dependencies.is_empty() {
                s.push_str("\nIt waits on:\n");
                for (r, title, status) in &task.dependencies {
                    let _ = writeln!(s, "- `{r}` ({status}): {title}");
                }
            }
            if let Some(g) = guidance.filter(|g| !g.trim().is_empty()) {
                let _ = write!(s, "\n## Guidance\n\n{}\n", g.trim());
            }
        }
    }
}

fn answer_rules(s: &mut String, subject: &Subject<'_>, format: PlanFormat) {
    let _ = write!(
        s,
        "\n## The plan format\n\nA plan is TOML, YAML or JSON with these fields (and no \
         others); this example is complete and valid:\n\n```toml\n{}```\n",
        FORMAT
    );
    s.push_str("\n## Your answer\n\n");
    let _ = writeln!(
        s,
        "Answer with the whole plan in one ```{0} block{1}. Every task has a `key`; every task \
         without subtasks has an `effort`, `tags` with its complexity and risk, and the `files` \
         it will change; its description ends with a line on the risk. Split the work into \
         tasks one agent can finish in one session, let tasks that do not need each other run \
         in parallel, and add no dependency that is not real.",
        tag(format),
        if format == PlanFormat::Toml {
            ""
        } else {
            " (the same fields as the example, in that format)"
        }
    );
    if let Subject::Expand { task, .. } = subject {
        let _ = writeln!(
            s,
            "\nAnswer with the subtasks of `{0}` only: they are placed under it (a subtask \
             without a `parent` gets `{0}`), and `{0}` itself must not appear in the plan. A \
             subtask may depend on other tasks of the project by their key or id. Leave out \
             `[plan]`: Downbeat names the plan.",
            task.reference
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use downbeat_core::plan::{parse, validate};
    use downbeat_core::role::RoleSet;

    #[test]
    fn the_format_shown_to_agents_is_a_valid_plan() {
        let p = parse(FORMAT, PlanFormat::Toml).unwrap();
        let v = validate(&p, &RoleSet::builtin(), &|_| None, &|_| false).unwrap();
        assert_eq!(v.tasks.len(), 3);
    }

    #[test]
    fn the_first_prompt_carries_the_learned_patterns_only_when_there_are_some() {
        let layout = Layout {
            paths: vec!["src/main.rs".into()],
            total: 1,
        };
        let facts = |patterns| Facts {
            subject: Subject::Goal("add login"),
            document: None,
            roles: Vec::new(),
            layout: &layout,
            memory: &[],
            patterns,
            format: PlanFormat::Toml,
        };
        let line = "- implementer: one effort unit took 20s (median of 3), 67% first try, 1 retries, 0 flags\n";
        let with = first(&facts(line));
        assert!(with.contains("## What earlier work took"), "{with}");
        assert!(with.contains(line), "{with}");
        assert!(!first(&facts("")).contains("What earlier work took"));
    }

    #[test]
    fn a_later_round_carries_the_answer_and_its_problems() {
        let s = again(
            "FIRST",
            "```toml\n[[tasks]]\n```",
            &["task `a`: unknown role `x`".into()],
            PlanFormat::Json,
        );
        assert!(s.starts_with("FIRST"));
        assert!(s.contains("[[tasks]]"));
        assert!(s.contains("- task `a`: unknown role `x`"));
        assert!(s.contains("```json block"));
    }
}
