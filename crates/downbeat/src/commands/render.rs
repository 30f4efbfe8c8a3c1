//! Small pieces of rendering and parsing shared by the command files.

use downbeat_core::ids::TaskId;
use downbeat_core::task::Task;
use serde_json::{Value, json};

use crate::error::Error;

pub(crate) fn unreachable_args() -> Result<Option<String>, Error> {
    Err(Error::invalid(
        "--command and --shell cannot be used together",
    ))
}

/// Splits a command line into arguments: whitespace separates, single and double quotes group,
/// a backslash escapes the next character. No expansion of any kind.
pub fn split_command(s: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = s.chars();
    let mut quote: Option<char> = None;
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some('"'), '\\') | (None, '\\') => match chars.next() {
                Some(n) => cur.push(n),
                None => return Err(format!("command `{s}` ends with a lone backslash")),
            },
            (Some(_), c) => cur.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                in_word = true;
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            (None, c) => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    if quote.is_some() {
        return Err(format!("command `{s}` has an unclosed quote"));
    }
    if in_word {
        out.push(cur);
    }
    if out.is_empty() {
        return Err("the command is empty".into());
    }
    Ok(out)
}

pub(crate) fn task_json(t: &Task, shown: &str) -> Value {
    let mut v = serde_json::to_value(t).unwrap_or(Value::Null);
    v["state"] = json!(shown);
    v
}

pub(crate) fn clip(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_owned()
    } else {
        let mut c: String = s.chars().take(n - 1).collect();
        c.push('…');
        c
    }
}

pub(crate) fn ids_json(v: &[TaskId]) -> Vec<String> {
    v.iter().map(ToString::to_string).collect()
}
