//! Specialist roles: built-in ones, and project overrides parsed from TOML text.
//!
//! Prompt templates use Jinja syntax (`{{ task.title }}`); they are rendered by the execution
//! engine with strict undefined variables. Here they are only text.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A specialist a task can be assigned to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Role {
    pub name: String,
    pub description: String,
    pub prompt: String,
    /// At most this many tasks of this role in one wave / running at once; `None` = no cap.
    pub max_parallel: Option<u32>,
    /// Tasks of this role are stale after this long without activity (e.g. `24h`).
    pub stale_after: Option<String>,
    /// `builtin`, or the file it came from.
    pub source: String,
}

const COMMON_TAIL: &str = r#"
## Task {{ task.id }}: {{ task.title }}
{% if task.description %}
{{ task.description }}
{% endif %}{% if task.acceptance %}
### Acceptance criteria
{% for c in task.acceptance %}- {{ c }}
{% endfor %}{% endif %}{% if objectives %}
### Objectives
{% for o in objectives %}- {{ o }}
{% endfor %}{% endif %}{% if dependencies %}
### Results of the work this depends on
{% for d in dependencies %}- {{ d.id }} {{ d.title }} ({{ d.role }}): {{ d.result }}{% for a in d.artifacts %}
  - artifact: {{ a }}{% endfor %}
{% endfor %}{% endif %}
Report a short summary of what you did when you finish."#;

const BUILTIN: &[(&str, &str, &str)] = &[
    (
        "architect",
        "Designs structure: components, interfaces, data models, trade-offs.",
        "You are the architect. Think like a city planner designing for the future: structure, \
         scalability, patterns and trade-offs. Ask how this will scale, what could go wrong and \
         which patterns fit. Produce a design others can implement without guessing.",
    ),
    (
        "implementer",
        "Writes the code: clean, maintainable, handles edge cases.",
        "You are the implementer. Build to last: clean code, best practices, maintainability. \
         Follow the design you were given, handle the edge cases, and keep changes focused on \
         this task.",
    ),
    (
        "tester",
        "Proves it works: tests, edge cases, validation, reliability.",
        "You are the tester. Think like a detective looking for what could break. Write tests \
         that prove the behaviour, cover edge cases and failure modes, and report what fails.",
    ),
    (
        "documenter",
        "Makes it usable: guides, references, explanations.",
        "You are the documenter. Explain for someone reading in six months: what it is, how to \
         use it, what context they need. Keep documentation accurate to the code.",
    ),
    (
        "debugger",
        "Finds causes and bottlenecks: troubleshooting, performance.",
        "You are the debugger. Find the root cause, not the symptom: reproduce, measure, narrow \
         down. For performance, find where time and memory go before changing anything.",
    ),
    (
        "reviewer",
        "Reviews work for correctness, security and clarity.",
        "You are the reviewer. Read the work critically: correctness, security, clarity, tests. \
         Say what must change, what should change, and what is fine as it is.",
    ),
    (
        "security",
        "Responds to security findings: assesses, contains, fixes, documents.",
        "You are the security specialist. Treat the finding as real until shown otherwise: \
         assess what is exposed and since when, contain it, fix the cause, and record what \
         others must know (rotated secrets, changed access) so the paused work can resume.",
    ),
    (
        "database",
        "Investigates data models, queries, indexes and migrations.",
        "You are the database specialist. Look at what the database is asked to do: queries, \
         indexes, schema and migrations. Measure before changing (query plans, counts), fix the \
         cause, and say what the application side must change.",
    ),
    (
        "researcher",
        "Gathers facts: prior art, options, constraints.",
        "You are the researcher. Find the facts the team needs: existing code, prior art, \
         options and their constraints. Cite where each fact comes from; separate facts from \
         opinions.",
    ),
];

/// The built-in roles, sorted by name.
pub fn builtin_roles() -> Vec<Role> {
    let mut v: Vec<Role> = BUILTIN
        .iter()
        .map(|(name, description, intro)| Role {
            name: (*name).to_owned(),
            description: (*description).to_owned(),
            prompt: format!("{intro}\n{COMMON_TAIL}"),
            max_parallel: None,
            stale_after: None,
            source: "builtin".to_owned(),
        })
        .collect();
    v.sort_by(|a, b| a.name.cmp(&b.name));
    v
}

/// A role file: `.downbeat/roles/<name>.toml`. Every field is optional when it overrides a
/// built-in role; a new role needs `description` and `prompt`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleFile {
    pub description: Option<String>,
    pub prompt: Option<String>,
    pub max_parallel: Option<u32>,
    pub stale_after: Option<String>,
}

/// Why a role definition was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RoleError {
    #[error("role file {source_name}: {message}")]
    Parse {
        source_name: String,
        message: String,
    },
    #[error("role `{name}` ({source_name}) is new, so it needs both `description` and `prompt`")]
    Incomplete { name: String, source_name: String },
    #[error("role name `{0}` must be lowercase letters, digits or `-`")]
    BadName(String),
}

/// Validates a role name.
pub fn check_role_name(name: &str) -> Result<(), RoleError> {
    if !name.is_empty()
        && name.len() <= 40
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    {
        Ok(())
    } else {
        Err(RoleError::BadName(name.to_owned()))
    }
}

/// The roles of a project: built-ins merged with the project's files.
#[derive(Debug, Clone)]
pub struct RoleSet {
    roles: BTreeMap<String, Role>,
}

impl Default for RoleSet {
    fn default() -> Self {
        Self::builtin()
    }
}

impl RoleSet {
    pub fn builtin() -> Self {
        Self {
            roles: builtin_roles()
                .into_iter()
                .map(|r| (r.name.clone(), r))
                .collect(),
        }
    }

    /// Merges a role file's TOML text; `source_name` is shown in errors and in `Role::source`.
    pub fn merge_toml(
        &mut self,
        name: &str,
        source_name: &str,
        text: &str,
    ) -> Result<(), RoleError> {
        check_role_name(name)?;
        let file: RoleFile = toml::from_str(text).map_err(|e| RoleError::Parse {
            source_name: source_name.to_owned(),
            message: e.to_string().trim_end().to_owned(),
        })?;
        self.merge(name, source_name, file)
    }

    pub fn merge(
        &mut self,
        name: &str,
        source_name: &str,
        file: RoleFile,
    ) -> Result<(), RoleError> {
        check_role_name(name)?;
        match self.roles.get_mut(name) {
            Some(r) => {
                if let Some(d) = file.description {
                    r.description = d;
                }
                if let Some(p) = file.prompt {
                    r.prompt = p;
                }
                if file.max_parallel.is_some() {
                    r.max_parallel = file.max_parallel;
                }
                if file.stale_after.is_some() {
                    r.stale_after = file.stale_after;
                }
                r.source = source_name.to_owned();
            }
            None => {
                let (Some(description), Some(prompt)) = (file.description, file.prompt) else {
                    return Err(RoleError::Incomplete {
                        name: name.to_owned(),
                        source_name: source_name.to_owned(),
                    });
                };
                self.roles.insert(
                    name.to_owned(),
                    Role {
                        name: name.to_owned(),
                        description,
                        prompt,
                        max_parallel: file.max_parallel,
                        stale_after: file.stale_after,
                        source: source_name.to_owned(),
                    },
                );
            }
        }
        Ok(())
    }

    /// Sets a concurrency cap (from project config).
    pub fn set_max_parallel(&mut self, name: &str, cap: u32) -> bool {
        match self.roles.get_mut(name) {
            Some(r) => {
                r.max_parallel = Some(cap);
                true
            }
            None => false,
        }
    }

    pub fn get(&self, name: &str) -> Option<&Role> {
        self.roles.get(name)
    }
    pub fn contains(&self, name: &str) -> bool {
        self.roles.contains_key(name)
    }
    pub fn iter(&self) -> impl Iterator<Item = &Role> {
        self.roles.values()
    }
    pub fn names(&self) -> Vec<&str> {
        self.roles.keys().map(String::as_str).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtins_cover_the_specialists() {
        let set = RoleSet::builtin();
        assert_eq!(
            set.names(),
            [
                "architect",
                "database",
                "debugger",
                "documenter",
                "implementer",
                "researcher",
                "reviewer",
                "security",
                "tester"
            ]
        );
        assert!(
            set.get("tester")
                .unwrap()
                .prompt
                .contains("{{ task.title }}")
        );
    }

    #[test]
    fn project_files_override_and_add() {
        let mut set = RoleSet::builtin();
        set.merge_toml("tester", "roles/tester.toml", "max_parallel = 2")
            .unwrap();
        assert_eq!(set.get("tester").unwrap().max_parallel, Some(2));
        assert!(set.get("tester").unwrap().prompt.contains("detective"));
        let err = set
            .merge_toml("legal", "roles/legal.toml", "description = 'x'")
            .unwrap_err();
        assert!(err.to_string().contains("needs both"), "{err}");
        set.merge_toml("legal", "s.toml", "description = 'x'\nprompt = 'p'")
            .unwrap();
        assert!(set.contains("legal"));
        let err = set
            .merge_toml("tester", "t.toml", "colour = 1")
            .unwrap_err();
        assert!(err.to_string().contains("unknown field"), "{err}");
    }
}
