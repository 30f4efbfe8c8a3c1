//! Reading a plan out of an agent's answer, and the checks a draft gets on top of the plan
//! format's own: keys everywhere, and on every task without subtasks an effort, its complexity
//! and risk, (preferably) its files.

use std::collections::HashSet;

use downbeat_core::plan::{self, PlanFile, PlanFormat};

use super::prompt::tag;

/// What an answer held.
#[derive(Debug, Clone, PartialEq)]
pub enum Reading {
    /// A plan: its text as the agent wrote it, parsed.
    Plan(String, PlanFile),
    /// Something meant as a plan that does not parse (the parser's message).
    Unparsable(String),
    /// Nothing like a plan, and why.
    NotAPlan(String),
}

/// A fenced block of an answer: its info string's first word, lowercased, and its content.
fn fenced_blocks(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut open: Option<(String, String, String)> = None; // (fence, tag, content)
    for line in text.lines() {
        let trimmed = line.trim_start();
        match &mut open {
            None => {
                let fence: String = trimmed
                    .chars()
                    .take_while(|c| *c == '`' || *c == '~')
                    .collect();
                let same = fence
                    .chars()
                    .all(|c| c == fence.chars().next().unwrap_or('`'));
                if fence.len() >= 3 && same {
                    let info = trimmed[fence.len()..].trim();
                    let tag = info
                        .split_whitespace()
                        .next()
                        .unwrap_or("")
                        .to_ascii_lowercase();
                    open = Some((fence, tag, String::new()));
                }
            }
            Some((fence, tag, content)) => {
                let t = trimmed.trim_end();
                if t.starts_with(fence.as_str())
                    && t.chars().all(|c| c == fence.as_bytes()[0] as char)
                {
                    out.push((std::mem::take(tag), std::mem::take(content)));
                    open = None;
                } else {
                    content.push_str(line);
                    content.push('\n');
                }
            }
        }
    }
    out
}

/// Whether a fence tag names `format` (or nothing).
fn tag_fits(t: &str, format: PlanFormat) -> bool {
    match format {
        PlanFormat::Toml => matches!(t, "" | "toml"),
        PlanFormat::Yaml => matches!(t, "" | "yaml" | "yml"),
        PlanFormat::Json => matches!(t, "" | "json" | "jsonc"),
    }
}

/// Whether a fence tag names some plan format.
fn is_plan_tag(t: &str) -> bool {
    matches!(t, "toml" | "yaml" | "yml" | "json" | "jsonc")
}

/// Finds the plan in an answer: the last fenced block in `format` (or untagged) that parses
/// as a plan with tasks, else the whole answer.
pub fn read(answer: &str, format: PlanFormat) -> Reading {
    let blocks = fenced_blocks(answer);
    let mut parse_error: Option<String> = None;
    for (t, content) in blocks.iter().rev().filter(|(t, _)| tag_fits(t, format)) {
        match plan::parse(content, format) {
            Ok(p) if !p.tasks.is_empty() => return Reading::Plan(content.clone(), p),
            Ok(_) => {
                parse_error.get_or_insert_with(|| "the plan in the answer has no tasks".into());
            }
            Err(e) if is_plan_tag(t) => {
                parse_error.get_or_insert(e.message);
            }
            Err(_) => {}
        }
    }
    if let Some(e) = parse_error {
        return Reading::Unparsable(e);
    }
    if let Ok(p) = plan::parse(answer, format)
        && !p.tasks.is_empty()
    {
        return Reading::Plan(answer.to_owned(), p);
    }
    if let Some((t, _)) = blocks.iter().rev().find(|(t, _)| is_plan_tag(t)) {
        return Reading::NotAPlan(format!(
            "the answer's plan is in a ```{t} block; answer with the plan in one ```{} block",
            tag(format)
        ));
    }
    if answer.trim().is_empty() {
        return Reading::NotAPlan("the answer was empty".into());
    }
    Reading::NotAPlan(format!(
        "the answer holds no plan: answer with the whole plan in one ```{} block",
        tag(format)
    ))
}

/// Keys of the tasks some other task of the plan names as its parent.
fn containers(p: &PlanFile) -> HashSet<&str> {
    p.tasks.iter().filter_map(|t| t.parent.as_deref()).collect()
}

fn label(i: usize, t: &plan::PlanTask) -> String {
    match &t.key {
        Some(k) => format!("task `{k}`"),
        None => format!("task #{} (\"{}\")", i + 1, t.title),
    }
}

/// What a draft must have beyond a valid plan: a key on every task, and on every task
/// without subtasks an effort and `complexity:` and `risk:` tags (low, medium or high).
pub fn problems(p: &PlanFile) -> Vec<String> {
    let parents = containers(p);
    let mut out = Vec::new();
    for (i, t) in p.tasks.iter().enumerate() {
        if t.key.is_none() {
            out.push(format!("{} has no `key`", label(i, t)));
        }
        if t.key.as_deref().is_some_and(|k| parents.contains(k)) {
            continue;
        }
        if t.effort.is_none() {
            out.push(format!("{} has no `effort`", label(i, t)));
        }
        for what in ["complexity", "risk"] {
            let values: Vec<&str> = t
                .tags
                .iter()
                .filter_map(|g| g.strip_prefix(what)?.strip_prefix(':'))
                .collect();
            match values.as_slice() {
                [] => out.push(format!(
                    "{} has no `{what}:low|medium|high` tag",
                    label(i, t)
                )),
                [v] if matches!(*v, "low" | "medium" | "high") => {}
                _ => out.push(format!(
                    "{}: its `{what}:` tag must be one of low, medium, high (once)",
                    label(i, t)
                )),
            }
        }
    }
    out
}

/// Remarks that are no reason to send a draft back: tasks without subtasks that declare no
/// files.
pub fn notes(p: &PlanFile) -> Vec<String> {
    let parents = containers(p);
    let bare: Vec<String> = p
        .tasks
        .iter()
        .enumerate()
        .filter(|(_, t)| {
            t.files.is_empty() && !t.key.as_deref().is_some_and(|k| parents.contains(k))
        })
        .map(|(i, t)| t.key.clone().unwrap_or_else(|| format!("#{}", i + 1)))
        .collect();
    if bare.is_empty() {
        Vec::new()
    } else {
        vec![format!(
            "{} task(s) declare no files, so nothing keeps them apart from tasks changing the same files: {}",
            bare.len(),
            bare.join(", ")
        )]
    }
}

/// The problems in an error message of the plan checks: its `  - ` items, else the message.
pub fn problems_of(message: &str) -> Vec<String> {
    let items: Vec<String> = message
        .split("\n  - ")
        .skip(1)
        .map(|s| s.trim_end().to_owned())
        .collect();
    if items.is_empty() {
        vec![message.to_owned()]
    } else {
        items
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PLAN: &str = "[[tasks]]\nkey = \"a\"\ntitle = \"A\"\n";

    #[test]
    fn the_last_fitting_block_wins_else_the_whole_text() {
        let answer = format!(
            "Here is a first try:\n```toml\n{PLAN}```\nAnd the plan:\n```toml\n{}```\nDone.",
            PLAN.replace("\"A\"", "\"B\"")
        );
        let Reading::Plan(text, p) = read(&answer, PlanFormat::Toml) else {
            panic!("no plan")
        };
        assert_eq!(p.tasks[0].title, "B");
        assert!(text.starts_with("[[tasks]]"));
        assert!(matches!(read(PLAN, PlanFormat::Toml), Reading::Plan(..)));
        // Another fence style, a longer fence.
        let tilde = format!("~~~~toml\n{PLAN}~~~~\n");
        assert!(matches!(read(&tilde, PlanFormat::Toml), Reading::Plan(..)));
    }

    #[test]
    fn what_is_not_a_plan_says_why() {
        let Reading::NotAPlan(why) = read("I would rather not.", PlanFormat::Toml) else {
            panic!()
        };
        assert!(why.contains("no plan"), "{why}");
        let Reading::NotAPlan(why) = read("```json\n{\"tasks\": []}\n```", PlanFormat::Toml) else {
            panic!()
        };
        assert!(why.contains("```json block"), "{why}");
        let Reading::Unparsable(e) = read("```toml\n[[tasks]]\ntitel = 1\n```", PlanFormat::Toml)
        else {
            panic!()
        };
        assert!(e.contains("titel"), "{e}");
        assert!(matches!(
            read("  \n", PlanFormat::Toml),
            Reading::NotAPlan(_)
        ));
    }

    #[test]
    fn leaves_need_effort_complexity_and_risk_containers_do_not() {
        let p = plan::parse(
            "[[tasks]]\nkey = \"c\"\ntitle = \"C\"\n\
             [[tasks]]\nkey = \"a\"\nparent = \"c\"\ntitle = \"A\"\neffort = 2\ntags = [\"complexity:low\", \"risk:high\"]\nfiles = [\"x\"]\n\
             [[tasks]]\nparent = \"c\"\ntitle = \"B\"\ntags = [\"risk:huge\"]\n",
            PlanFormat::Toml,
        )
        .unwrap();
        assert_eq!(
            problems(&p),
            vec![
                "task #3 (\"B\") has no `key`",
                "task #3 (\"B\") has no `effort`",
                "task #3 (\"B\") has no `complexity:low|medium|high` tag",
                "task #3 (\"B\"): its `risk:` tag must be one of low, medium, high (once)",
            ]
        );
        assert_eq!(notes(&p).len(), 1);
        assert!(notes(&p)[0].ends_with(": #3"), "{:?}", notes(&p));
    }

    #[test]
    fn problems_are_read_from_a_message() {
        assert_eq!(
            problems_of("draft: the plan has 2 problems:\n  - one\n  - two"),
            vec!["one", "two"]
        );
        assert_eq!(
            problems_of("draft: dependency cycle: a → b → a"),
            vec!["draft: dependency cycle: a → b → a"]
        );
    }
}
