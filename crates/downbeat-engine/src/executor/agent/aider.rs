//! Aider (`aider`), from its scripting and options documentation (aider.chat/docs/scripting.html,
//! /config/options.html; version 0.86).
//!
//! `aider --message-file PROMPT`: one message, its edits, exit; stdin is empty, so no question
//! can wait on it. Its own commits, dirty commits and `.gitignore` edits are off: Downbeat
//! decides what is committed. Aider has no machine-readable output: the usage line
//! (`Tokens: 2.3k sent, 120 received. Cost: $0.01 message, $0.02 session.`) and the edit lines
//! are read from its text. It keeps no resumable session.

use super::profile::{About, AgentOutput, Command, Invocation, Permission, Profile};

pub(super) struct Aider;

/// Lines aider prints about itself rather than as the model's answer.
fn is_meta(l: &str) -> bool {
    const PREFIXES: [&str; 19] = [
        "Using ",
        "Update git ",
        "You can skip this check",
        "Aider v",
        "Model:",
        "Main model:",
        "Weak model:",
        "Editor model:",
        "Git repo:",
        "Repo-map:",
        "Tokens:",
        "Cost:",
        "Applied edit to ",
        "Did not apply edit to ",
        "Commit ",
        "Committing ",
        "Added ",
        "Warning:",
        "Restored previous conversation",
    ];
    PREFIXES.iter().any(|p| l.starts_with(p))
}

/// `2.3k` → 2300, `23k` → 23000, `768` → 768.
fn count(s: &str) -> Option<u64> {
    let s = s.trim().trim_end_matches(',');
    match s.strip_suffix('k') {
        Some(k) => k.parse::<f64>().ok().map(|n| (n * 1000.0).round() as u64),
        None => s.replace(',', "").parse().ok(),
    }
}

impl Profile for Aider {
    fn about(&self) -> About {
        About {
            title: "Aider",
            versions: &["0.86"],
            install: "python -m pip install aider-install && aider-install (or pip install aider-chat)",
            login: "set the API key of your model's provider (ANTHROPIC_API_KEY, OPENAI_API_KEY, …) and name the model (`model = \"sonnet\"` in the executor)",
            resumes: false,
            reports_cost: true,
            takes_mcp: false,
        }
    }

    fn command(&self, inv: &Invocation<'_>) -> Command {
        let dir = inv.attempt_dir;
        let mut args: Vec<String> = vec![
            "--message-file".into(),
            inv.prompt_file.display().to_string(),
            "--no-check-update".into(),
            "--no-show-release-notes".into(),
            "--no-analytics".into(),
            "--no-pretty".into(),
            "--no-stream".into(),
            "--no-fancy-input".into(),
            "--no-auto-commits".into(),
            "--no-dirty-commits".into(),
            "--no-gitignore".into(),
            "--no-suggest-shell-commands".into(),
            "--chat-history-file".into(),
            dir.join("aider.chat.history.md").display().to_string(),
            "--input-history-file".into(),
            dir.join("aider.input.history").display().to_string(),
        ];
        match inv.permission {
            Permission::Read => {
                args.extend(["--chat-mode", "ask", "--dry-run"].map(String::from));
            }
            Permission::Edit | Permission::Full => args.push("--yes-always".into()),
        }
        if let Some(m) = inv.model {
            args.extend(["--model".into(), m.to_owned()]);
        }
        Command {
            args,
            tail: Vec::new(),
            stdin_prompt: false,
            env: Default::default(),
        }
    }

    fn parse(&self, stdout: &str, _stderr: &str) -> AgentOutput {
        let mut out = AgentOutput::default();
        let (mut tin, mut tout, mut any) = (0, 0, false);
        // The model's answer is what it said before the usage line of the last exchange; what
        // follows a usage line is aider applying the edits.
        let mut answer = Vec::new();
        let mut current = Vec::new();
        for l in stdout.lines().map(str::trim) {
            if l.starts_with("Tokens:") && !current.is_empty() {
                answer = std::mem::take(&mut current);
            }
            if let Some(rest) = l.strip_prefix("Tokens:") {
                // `Tokens: 768 sent, 15 received. Cost: $0.0025 message, $0.0025 session.`
                let sent = rest.split(" sent").next().and_then(count);
                let received = rest
                    .split(" received")
                    .next()
                    .and_then(|x| x.rsplit(' ').next())
                    .and_then(count);
                if let (Some(s), Some(r)) = (sent, received) {
                    any = true;
                    tin += s;
                    tout += r;
                }
            }
            if let Some(c) = l.split("Cost: $").nth(1) {
                // The session's running total is last.
                if let Some(total) = c
                    .split(", $")
                    .nth(1)
                    .and_then(|x| x.split_whitespace().next())
                {
                    out.cost_usd = total.parse().ok();
                }
            }
            if let Some(f) = l.strip_prefix("Did not apply edit to ") {
                out.denied
                    .push(format!("edit {}", f.trim_end_matches(" (--dry-run)")));
            }
            if l.contains("AuthenticationError") || l.contains("not able to authenticate you") {
                out.error.get_or_insert_with(|| l.to_owned());
            }
            if !l.is_empty() && !is_meta(l) {
                current.push(l.to_owned());
            }
        }
        if answer.is_empty() {
            answer = current;
        }
        if any {
            out.tokens_in = Some(tin);
            out.tokens_out = Some(tout);
        }
        if !answer.is_empty() {
            let keep = answer.len().saturating_sub(40);
            out.message = Some(answer[keep..].join("\n"));
        }
        out
    }

    fn render(&self, line: &str) -> Option<String> {
        let l = line.trim_end();
        if l.trim().is_empty() {
            return None;
        }
        Some(if let Some(f) = l.strip_prefix("Applied edit to ") {
            format!("✎ {f}")
        } else if l.starts_with("Tokens:") {
            format!("✓ {l}")
        } else {
            l.to_owned()
        })
    }
}
