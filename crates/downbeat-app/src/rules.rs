//! The project's flag rules (`[[rules]]` in `.downbeat/config.toml`): list, add, remove.
//!
//! Edits go through `toml_edit`, so the rest of the file keeps its comments and layout; a rule
//! is checked (its fields, its role, its title template) before it is written, and the edited
//! file is read back as a whole configuration before it replaces the old one.
//!
//! Must never: write a configuration that would not load, or touch anything but the
//! `[[rules]]` tables (and, for a removed rule, the comments attached to it).

use downbeat_core::flags::FlagRule;
use serde::Serialize;
use toml_edit::{DocumentMut, Item, Table, value};

use crate::error::{Error, Kind};
use crate::project::{CONFIG_FILE, Config, DEFAULT_CONFIG, DIR, Project};

/// A rule as listed: its number (1-based, in file order), the rule, what it does.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Listed {
    pub number: usize,
    #[serde(flatten)]
    pub rule: FlagRule,
    pub effect: String,
}

fn listed(rules: &[FlagRule]) -> Vec<Listed> {
    rules
        .iter()
        .enumerate()
        .map(|(i, r)| Listed {
            number: i + 1,
            rule: r.clone(),
            effect: r.describe(),
        })
        .collect()
}

/// The project's rules, in file order.
pub fn list(p: &Project) -> Vec<Listed> {
    listed(&p.config.rules)
}

/// Checks a rule against the project: its fields, its role (a known one), its title template.
pub fn check(p: &Project, rule: &FlagRule) -> Result<(), Error> {
    crate::rule_check::check(&p.roles, rule)
}

/// Adds `rule` at the end of `[[rules]]`; the rules afterwards.
pub fn add(p: &Project, rule: &FlagRule) -> Result<Vec<Listed>, Error> {
    check(p, rule)?;
    if let Some(n) = p.config.rules.iter().position(|r| r == rule) {
        return Err(Error::new(
            Kind::Conflict,
            format!("the same rule is there already (rule {})", n + 1),
        ));
    }
    let mut doc = read(p)?;
    let mut t = Table::new();
    t.insert("flag", value(rule.flag.as_str()));
    t.insert("action", value(rule.action.as_str()));
    if let Some(r) = &rule.role {
        t.insert("role", value(r.as_str()));
    }
    if let Some(x) = &rule.title {
        t.insert("title", value(x.as_str()));
    }
    if rule.pause {
        t.insert("pause", value(true));
    }
    if let Some(x) = &rule.priority {
        t.insert("priority", value(x.as_str()));
    }
    t.decor_mut().set_prefix("\n");
    match doc.get_mut("rules") {
        Some(Item::ArrayOfTables(a)) => a.push(t),
        Some(_) => return Err(not_tables()),
        None => {
            let mut a = toml_edit::ArrayOfTables::new();
            a.push(t);
            doc.insert("rules", Item::ArrayOfTables(a));
        }
    }
    write(p, &doc)
}

/// Which rules to remove: a number from the list, or every rule of a flag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Which {
    Number(usize),
    Flag(String),
}

impl Which {
    /// A number (as `rules` lists them) or a flag's name.
    pub fn parse(s: &str) -> Self {
        match s.trim().parse::<usize>() {
            Ok(n) => Self::Number(n),
            Err(_) => Self::Flag(s.trim().to_owned()),
        }
    }
}

/// Removes the rules `which` names; the rules removed and the rules afterwards.
pub fn remove(p: &Project, which: &Which) -> Result<(Vec<Listed>, Vec<Listed>), Error> {
    let all = list(p);
    let gone: Vec<usize> = match which {
        Which::Number(n) if (1..=all.len()).contains(n) => vec![n - 1],
        Which::Number(n) => {
            return Err(Error::not_found(format!(
                "no rule {n}: the project has {} rule(s)",
                all.len()
            ))
            .with_hint("`downbeat rules` lists them with their numbers"));
        }
        Which::Flag(f) => all
            .iter()
            .filter(|l| &l.rule.flag == f)
            .map(|l| l.number - 1)
            .collect(),
    };
    if gone.is_empty() {
        return Err(Error::not_found(format!(
            "no rule for flag `{}`",
            match which {
                Which::Flag(f) => f.as_str(),
                Which::Number(_) => "",
            }
        ))
        .with_hint("`downbeat rules` lists the rules"));
    }
    let mut doc = read(p)?;
    let Some(Item::ArrayOfTables(a)) = doc.get_mut("rules") else {
        return Err(not_tables());
    };
    let mut trailing = String::new();
    for &i in gone.iter().rev() {
        let removed = a.remove(i);
        // Comments above a blank line before the rule are not the rule's own: they stay.
        let prefix = removed
            .decor()
            .prefix()
            .and_then(|r| r.as_str())
            .unwrap_or_default();
        let keep = prefix
            .rfind("\n\n")
            .map(|at| &prefix[..at + 1])
            .unwrap_or_default();
        if keep.trim().is_empty() {
            continue;
        }
        match a.get_mut(i) {
            Some(next) => {
                let own = next
                    .decor()
                    .prefix()
                    .and_then(|r| r.as_str())
                    .unwrap_or("\n")
                    .to_owned();
                next.decor_mut().set_prefix(format!("{keep}{own}"));
            }
            None => trailing.insert_str(0, keep),
        }
    }
    if a.is_empty() {
        doc.remove("rules");
    }
    if !trailing.is_empty() {
        let old = doc.trailing().as_str().unwrap_or_default().to_owned();
        doc.set_trailing(format!("{old}{trailing}"));
    }
    let removed = gone.iter().map(|&i| all[i].clone()).collect();
    Ok((removed, write(p, &doc)?))
}

fn not_tables() -> Error {
    Error::invalid(format!(
        "{DIR}/{CONFIG_FILE}: `rules` is not an array of [[rules]] tables"
    ))
}

/// The configuration as an editable document (the default one when there is no file).
fn read(p: &Project) -> Result<DocumentMut, Error> {
    let path = p.dir().join(CONFIG_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => DEFAULT_CONFIG.to_owned(),
        Err(e) => {
            return Err(Error::new(
                Kind::Storage,
                format!("cannot read {}: {e}", path.display()),
            ));
        }
    };
    text.parse()
        .map_err(|e: toml_edit::TomlError| Error::invalid(format!("{}: {e}", path.display())))
}

/// Writes the edited configuration once it reads back as a whole; the rules it holds.
fn write(p: &Project, doc: &DocumentMut) -> Result<Vec<Listed>, Error> {
    let text = doc.to_string();
    let config: Config = toml::from_str(&text).map_err(|e| {
        Error::new(
            Kind::Internal,
            format!("the edited configuration would not load: {e}"),
        )
    })?;
    crate::documents::write_atomically(&p.dir().join(CONFIG_FILE), text.as_bytes())?;
    Ok(listed(&config.rules))
}
