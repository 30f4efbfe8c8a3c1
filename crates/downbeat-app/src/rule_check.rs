//! Whether a flag rule can work in a project: its fields, its role, its title template. A leaf
//! module, so that opening a project (which checks every rule) and editing rules share it.

use downbeat_core::flags::{FlagAction, FlagRule};
use downbeat_core::role::RoleSet;

use crate::error::Error;

/// Checks `rule` against the project's `roles`: the fields of its action, a known role, a
/// title template that renders.
pub fn check(roles: &RoleSet, rule: &FlagRule) -> Result<(), Error> {
    rule.check().map_err(Error::invalid)?;
    if let Some(role) = &rule.role
        && !roles.contains(role)
    {
        return Err(Error::invalid(format!(
            "rule for {}: unknown role `{role}` (known: {})",
            rule.flag,
            roles.names().join(", ")
        ))
        .with_hint("add the role in .downbeat/roles/ROLE.toml, or name a known one"));
    }
    if rule.action == FlagAction::AddTask
        && let Some(t) = &rule.title
    {
        downbeat_engine::prompt::render_title(t, "abc123", "a task", &rule.flag).map_err(|e| {
            Error::invalid(format!("rule for {}: title: {e}", rule.flag))
                .with_hint("a title may use {{ task.title }}, {{ task.id }} and {{ flag }}")
        })?;
    }
    Ok(())
}

/// Checks every rule of a configuration, naming the one that fails (`where_`: the file).
pub fn check_all(roles: &RoleSet, rules: &[FlagRule], where_: &str) -> Result<(), Error> {
    for (i, r) in rules.iter().enumerate() {
        check(roles, r).map_err(|e| {
            let mut err = Error::invalid(format!("{where_}: [[rules]] {}: {}", i + 1, e.message));
            err.hint = e.hint;
            err
        })?;
    }
    Ok(())
}
