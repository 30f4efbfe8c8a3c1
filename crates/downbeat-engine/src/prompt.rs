//! Rendering a role's prompt template for one attempt (Jinja via minijinja, strict undefined:
//! a missing variable is an error, never an empty string).

use serde::Serialize;

/// A dependency's outcome, passed to the dependent's prompt.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DependencyResult {
    pub id: String,
    pub title: String,
    pub role: String,
    pub result: String,
    pub artifacts: Vec<String>,
}

/// The task as the template sees it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PromptTask {
    pub id: String,
    pub title: String,
    pub description: String,
    pub role: String,
    pub acceptance: Vec<String>,
}

/// A decision in force or an insight, as the template sees it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PromptRecord {
    pub id: String,
    pub text: String,
    /// A decision's rationale (empty for an insight).
    pub why: String,
}

/// A flag the task follows up (it was added by that flag's rule), as the template sees it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PromptFlag {
    /// `f3`.
    pub id: String,
    pub flag: String,
    /// What the flagging agent said about it.
    pub detail: String,
    /// The flagging task, its summary and artifacts.
    pub raised_by: DependencyResult,
}

/// A memory file of the project (Downbeat's own section left out), as the template sees it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PromptMemory {
    /// `CLAUDE.md`, `AGENTS.md`.
    pub file: String,
    pub text: String,
    /// Bytes left out for the budget (0: all of it).
    pub left_out: usize,
}

/// Everything a prompt template may use.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PromptContext {
    pub task: PromptTask,
    /// Titles of the active objectives.
    pub objectives: Vec<String>,
    pub dependencies: Vec<DependencyResult>,
    /// Decisions in force (superseded ones left out), oldest first.
    pub decisions: Vec<PromptRecord>,
    /// Insights relevant to the task (its own, its ancestors', its dependencies', the
    /// project's), newest first.
    pub insights: Vec<PromptRecord>,
    /// The flags this task is the follow-up of.
    pub flags: Vec<PromptFlag>,
    /// The project's memory files that exist, within the budget.
    pub memory: Vec<PromptMemory>,
}

/// The decisions and insights a template does not show itself, as sections appended to the
/// prompt: what the team decided and learned reaches every agent, whatever its template.
pub fn context_sections(template: &str, ctx: &PromptContext) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    if !ctx.flags.is_empty() && !template.contains("flags") {
        s.push_str("\n\n## The flag this task follows up\n\n");
        for f in &ctx.flags {
            let by = &f.raised_by;
            let role = if by.role.is_empty() {
                String::new()
            } else {
                format!(" ({})", by.role)
            };
            let _ = writeln!(
                s,
                "- {} {} raised by {} {}{role}",
                f.id, f.flag, by.id, by.title
            );
            if !f.detail.trim().is_empty() {
                let _ = writeln!(s, "  - detail: {}", f.detail.trim());
            }
            if !by.result.trim().is_empty() {
                let _ = writeln!(s, "  - its summary: {}", by.result.trim());
            }
            for a in &by.artifacts {
                let _ = writeln!(s, "  - artifact: {a}");
            }
        }
    }
    if !ctx.decisions.is_empty() && !template.contains("decisions") {
        s.push_str(if s.is_empty() { "\n\n" } else { "\n" });
        s.push_str("## Decisions in force\n\n");
        for d in &ctx.decisions {
            let _ = write!(s, "- {} {}", d.id, d.text.trim());
            if !d.why.trim().is_empty() {
                let _ = write!(s, " (why: {})", d.why.trim());
            }
            s.push('\n');
        }
    }
    if !ctx.insights.is_empty() && !template.contains("insights") {
        s.push_str(if s.is_empty() { "\n\n" } else { "\n" });
        s.push_str("## What the team has learned\n\n");
        for i in &ctx.insights {
            let _ = writeln!(s, "- {} {}", i.id, i.text.trim());
        }
    }
    if !template.contains("memory") {
        for m in &ctx.memory {
            s.push_str(if s.is_empty() { "\n\n" } else { "\n" });
            let _ = writeln!(s, "## Project memory ({})\n", m.file);
            s.push_str(m.text.trim_end());
            s.push('\n');
            if m.left_out > 0 {
                let _ = writeln!(
                    s,
                    "\n({} more bytes of {} left out for the context budget)",
                    m.left_out, m.file
                );
            }
        }
    }
    s
}

/// The fields of [`PromptContext`] a template shows only if it names them, and which take
/// store reads of their own: a template that names neither needs neither read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shown {
    /// The task itself (a runner holding only the fields it schedules by reads it whole).
    pub task: bool,
    pub objectives: bool,
    pub dependencies: bool,
}

impl Shown {
    /// Every field: a context for any template.
    pub const ALL: Self = Self {
        task: true,
        objectives: true,
        dependencies: true,
    };

    /// What `template` may show: the context fields it names. A name that is not a field
    /// (a function such as `debug()` shows the whole context) or a template that does not
    /// parse counts as everything.
    pub fn of(template: &str) -> Self {
        const FIELDS: [&str; 7] = [
            "task",
            "objectives",
            "dependencies",
            "decisions",
            "insights",
            "flags",
            "memory",
        ];
        let env = env();
        let Ok(parsed) = env.template_from_str(template) else {
            return Self::ALL;
        };
        let names = parsed.undeclared_variables(false);
        if names.iter().any(|n| !FIELDS.contains(&n.as_str())) {
            return Self::ALL;
        }
        Self {
            task: names.contains("task"),
            objectives: names.contains("objectives"),
            dependencies: names.contains("dependencies"),
        }
    }
}

/// Why a template could not be rendered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("prompt template of role `{role}`: {message}")]
pub struct PromptError {
    pub role: String,
    pub message: String,
}

fn env() -> minijinja::Environment<'static> {
    let mut env = minijinja::Environment::new();
    env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
    env
}

/// Renders `template` for `ctx`.
pub fn render(role: &str, template: &str, ctx: &PromptContext) -> Result<String, PromptError> {
    let err = |e: minijinja::Error| PromptError {
        role: role.to_owned(),
        message: e.to_string(),
    };
    env()
        .render_str(template, minijinja::value::Serde(ctx))
        .map_err(err)
}

/// Checks that `template` parses and renders against a sample context (used before a run).
pub fn check(role: &str, template: &str) -> Result<(), PromptError> {
    let sample = PromptContext {
        task: PromptTask {
            id: "abc123".into(),
            title: "t".into(),
            description: "d".into(),
            role: role.into(),
            acceptance: vec!["a".into()],
        },
        objectives: vec!["o".into()],
        dependencies: vec![DependencyResult {
            id: "def456".into(),
            title: "t".into(),
            role: "r".into(),
            result: "r".into(),
            artifacts: vec!["x".into()],
        }],
        decisions: vec![PromptRecord {
            id: "d1".into(),
            text: "t".into(),
            why: "w".into(),
        }],
        insights: vec![PromptRecord {
            id: "i1".into(),
            text: "t".into(),
            why: String::new(),
        }],
        flags: vec![PromptFlag {
            id: "f1".into(),
            flag: "F".into(),
            detail: "d".into(),
            raised_by: DependencyResult {
                id: "ghi789".into(),
                title: "t".into(),
                role: "r".into(),
                result: "r".into(),
                artifacts: vec!["x".into()],
            },
        }],
        memory: vec![PromptMemory {
            file: "CLAUDE.md".into(),
            text: "m".into(),
            left_out: 0,
        }],
    };
    render(role, template, &sample).map(|_| ())
}

/// Renders a follow-up title template for a flag rule.
pub fn render_title(
    template: &str,
    task_id: &str,
    task_title: &str,
    flag: &str,
) -> Result<String, PromptError> {
    let ctx = serde_json::json!({"task": {"id": task_id, "title": task_title}, "flag": flag});
    env()
        .render_str(template, minijinja::value::Serde(&ctx))
        .map_err(|e| PromptError {
            role: "rule".into(),
            message: e.to_string(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_templates_render_with_dependencies() {
        for role in downbeat_core::role::builtin_roles() {
            check(&role.name, &role.prompt).unwrap();
        }
        let tester = downbeat_core::role::RoleSet::builtin();
        let t = &tester.get("tester").unwrap().prompt;
        let ctx = PromptContext {
            task: PromptTask {
                id: "k3f9qa".into(),
                title: "Add rate limit tests".into(),
                description: String::new(),
                role: "tester".into(),
                acceptance: vec!["Burst is covered".into()],
            },
            objectives: vec!["Protect the API".into()],
            dependencies: vec![DependencyResult {
                id: "ab12cd".into(),
                title: "Middleware".into(),
                role: "implementer".into(),
                result: "429 with Retry-After".into(),
                artifacts: vec!["src/mw.rs".into()],
            }],
            decisions: vec![],
            insights: vec![],
            flags: vec![],
            memory: vec![],
        };
        let out = render("tester", t, &ctx).unwrap();
        assert!(
            out.contains("Add rate limit tests") && out.contains("- Burst is covered"),
            "{out}"
        );
        assert!(
            out.contains("ab12cd Middleware (implementer): 429 with Retry-After"),
            "{out}"
        );
        assert!(out.contains("artifact: src/mw.rs"), "{out}");
    }

    #[test]
    fn a_template_shows_the_fields_it_names() {
        let none = Shown {
            task: false,
            objectives: false,
            dependencies: false,
        };
        let task = Shown { task: true, ..none };
        assert_eq!(Shown::of(""), none);
        assert_eq!(Shown::of("## Task {{ task.id }}: {{ task.title }}"), task);
        assert_eq!(
            Shown::of("{% for o in objectives %}{{ o }}{% endfor %}"),
            Shown {
                objectives: true,
                ..none
            }
        );
        assert_eq!(
            Shown::of("{% if dependencies %}{{ dependencies[0].title }}{% endif %}"),
            Shown {
                dependencies: true,
                ..none
            }
        );
        // A name outside the context (a function, a typo) or a broken template: everything.
        assert_eq!(Shown::of("{{ debug() }}"), Shown::ALL);
        assert_eq!(Shown::of("{% if %}"), Shown::ALL);
        // Names the template declares itself are not fields.
        assert_eq!(Shown::of("{% set n = task.title %}{{ n }}"), task);
        for role in downbeat_core::role::builtin_roles() {
            let shown = Shown::of(&role.prompt);
            assert!(
                !role.prompt.contains("dependencies") || shown.dependencies,
                "{}",
                role.name
            );
        }
    }

    #[test]
    fn missing_variables_are_errors() {
        let err = check("x", "Hello {{ task.owner }}").unwrap_err();
        assert!(err.to_string().contains("undefined"), "{err}");
        assert!(check("x", "{% if %}").is_err());
    }
}
