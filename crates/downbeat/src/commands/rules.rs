//! `downbeat rules [list|add|rm]`: the project's flag rules, edited in its configuration.

use downbeat_app::error::Error;
use downbeat_app::project::Project;
use downbeat_app::rules::{self, Listed, Which};
use downbeat_core::flags::{FlagAction, FlagRule};
use serde_json::json;

use crate::cli::{RuleAddArgs, RulesArgs, RulesCmd};
use crate::output::{json as print_json, note, out, table};

pub(super) fn rules_cmd(p: &Project, a: RulesArgs, j: bool) -> Result<(), Error> {
    match a.action.unwrap_or(RulesCmd::List) {
        RulesCmd::List => {
            let list = rules::list(p);
            if j {
                print_json(&list);
            } else if list.is_empty() {
                note(
                    "no flag rules: flags are recorded and nothing else happens (`downbeat rules add FLAG ACTION`)",
                );
            } else {
                out(&render(&list));
            }
        }
        RulesCmd::Add(a) => {
            let rule = rule_of(a)?;
            let after = rules::add(p, &rule)?;
            if j {
                print_json(&json!({"added": after.last(), "rules": after}));
            } else {
                let n = after.len();
                note(&format!(
                    "added rule {n}: {} {}",
                    rule.flag,
                    rule.describe()
                ));
                out(&render(&after));
            }
        }
        RulesCmd::Rm { which } => {
            let (removed, after) = rules::remove(p, &Which::parse(&which))?;
            if j {
                print_json(&json!({"removed": removed, "rules": after}));
            } else {
                for r in &removed {
                    note(&format!(
                        "removed rule {}: {} {}",
                        r.number, r.rule.flag, r.effect
                    ));
                }
                if !after.is_empty() {
                    out(&render(&after));
                }
            }
        }
    }
    Ok(())
}

fn rule_of(a: RuleAddArgs) -> Result<FlagRule, Error> {
    let action: FlagAction = a.action.parse().map_err(Error::invalid)?;
    Ok(FlagRule {
        flag: a.flag,
        action,
        role: a.role,
        title: a.title,
        pause: a.pause,
        priority: a.priority,
    })
}

fn render(list: &[Listed]) -> String {
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|l| {
            vec![
                l.number.to_string(),
                l.rule.flag.clone(),
                l.rule.action.as_str().to_owned(),
                l.effect.clone(),
            ]
        })
        .collect();
    table(&["#", "FLAG", "ACTION", "EFFECT"], &rows)
}
