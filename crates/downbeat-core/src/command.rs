//! A task's own command: how `downbeat add --command/--shell` and a plan task's `command` or
//! `shell` become its executor setting (an inline `process` spec), in one place.

use serde_json::json;

/// The executor setting of a task given an executor name and/or a command (a program and its
/// arguments, split by [`split_command`]) or a shell line (for `sh -c`): a name, or an inline
/// process spec. The message of an error reads well on its own.
pub fn executor_setting(
    executor: Option<&str>,
    command: Option<&str>,
    shell: Option<&str>,
) -> Result<Option<String>, String> {
    match (executor, command, shell) {
        (None | Some("process"), Some(_), Some(_)) => {
            Err("a task takes either a command or a shell line, not both".into())
        }
        (None | Some("process"), Some(cmd), None) => {
            let argv = split_command(cmd)?;
            Ok(Some(json!({"type": "process", "argv": argv}).to_string()))
        }
        (None | Some("process"), None, Some(sh)) => {
            if sh.trim().is_empty() {
                return Err("the shell line is empty".into());
            }
            Ok(Some(json!({"type": "process", "shell": sh}).to_string()))
        }
        (Some("process"), None, None) => {
            Err("the process executor needs a command or a shell line".into())
        }
        (Some(_), Some(_), _) | (Some(_), _, Some(_)) => {
            Err("a command or a shell line goes with the process executor (or no executor)".into())
        }
        (name, None, None) => Ok(name.map(str::to_owned)),
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_split_like_a_shell_without_expansion() {
        assert_eq!(
            split_command(r#"cargo test -p "my crate" 'a b' c\ d $HOME"#).unwrap(),
            ["cargo", "test", "-p", "my crate", "a b", "c d", "$HOME"]
        );
        assert!(
            split_command("echo 'open")
                .unwrap_err()
                .contains("unclosed quote")
        );
        assert!(split_command("  ").unwrap_err().contains("empty"));
    }

    #[test]
    fn a_command_becomes_an_inline_process_spec() {
        assert_eq!(
            executor_setting(None, Some("make test"), None)
                .unwrap()
                .unwrap(),
            r#"{"argv":["make","test"],"type":"process"}"#
        );
        assert_eq!(
            executor_setting(Some("process"), None, Some("make && make test"))
                .unwrap()
                .unwrap(),
            r#"{"shell":"make && make test","type":"process"}"#
        );
        assert_eq!(
            executor_setting(Some("claude"), None, None).unwrap(),
            Some("claude".into())
        );
        assert!(executor_setting(None, Some("a"), Some("b")).is_err());
        assert!(executor_setting(Some("claude"), Some("a"), None).is_err());
        assert!(executor_setting(Some("process"), None, None).is_err());
    }
}
