//! Codex CLI (`codex`), from its non-interactive-mode documentation and CLI reference
//! (developers.openai.com/codex/noninteractive, /cli/reference; version 0.157).
//!
//! `codex exec --json --skip-git-repo-check --sandbox LEVEL … -`: the prompt is `-`, so codex
//! reads it from stdin alone (an argument plus a piped stdin would be joined: twice the
//! prompt). A resumed session takes its flags before `resume ID`, then reads stdin.

use super::profile::{
    About, AgentOutput, Command, Invocation, Permission, Profile, json_line, short,
};

pub(super) struct Codex;

/// A TOML string (a JSON string is one, for what an MCP configuration holds).
fn toml_str(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

impl Profile for Codex {
    fn about(&self) -> About {
        About {
            title: "Codex CLI",
            versions: &["0.157"],
            install: "npm install -g @openai/codex",
            login: "run `codex login` (or `printenv OPENAI_API_KEY | codex login --with-api-key`); CODEX_API_KEY works for `codex exec`",
            resumes: true,
            reports_cost: false,
            takes_mcp: true,
        }
    }

    fn command(&self, inv: &Invocation<'_>) -> Command {
        let sandbox = match inv.permission {
            Permission::Read => "read-only",
            Permission::Edit => "workspace-write",
            Permission::Full => "danger-full-access",
        };
        let mut args: Vec<String> = vec![
            "exec".into(),
            "--json".into(),
            "--skip-git-repo-check".into(),
            "--sandbox".into(),
            sandbox.into(),
        ];
        if let Some(m) = inv.model {
            args.extend(["--model".into(), m.to_owned()]);
        }
        for (name, s) in inv.mcp {
            let key = format!("mcp_servers.{name}");
            args.push("-c".into());
            args.push(format!("{key}.command={}", toml_str(&s.command)));
            args.push("-c".into());
            let list: Vec<String> = s.args.iter().map(|a| toml_str(a)).collect();
            args.push(format!("{key}.args=[{}]", list.join(", ")));
            if !s.env.is_empty() {
                let env: Vec<String> = s
                    .env
                    .iter()
                    .map(|(k, v)| format!("{} = {}", toml_str(k), toml_str(v)))
                    .collect();
                args.push("-c".into());
                args.push(format!("{key}.env={{ {} }}", env.join(", ")));
            }
        }
        // Last, after any extra options: `resume ID` (then the prompt from stdin), or `-` (the
        // prompt is stdin).
        let tail = match inv.resume {
            Some(id) => vec!["resume".into(), id.to_owned()],
            None => vec!["-".into()],
        };
        Command {
            args,
            tail,
            stdin_prompt: true,
            env: Default::default(),
        }
    }

    fn parse(&self, stdout: &str, _stderr: &str) -> AgentOutput {
        let mut out = AgentOutput::default();
        let (mut tin, mut tout, mut any) = (0, 0, false);
        for v in stdout.lines().filter_map(json_line) {
            match v["type"].as_str() {
                Some("thread.started") => out.session = v["thread_id"].as_str().map(str::to_owned),
                Some("item.completed") => {
                    let item = &v["item"];
                    match item["type"].as_str() {
                        Some("agent_message") => {
                            out.message = item["text"].as_str().map(str::to_owned);
                        }
                        Some("file_change") if item["status"] == "failed" => {
                            for c in item["changes"].as_array().into_iter().flatten() {
                                out.denied
                                    .push(format!("edit {}", c["path"].as_str().unwrap_or("?")));
                            }
                        }
                        _ => {}
                    }
                }
                Some("turn.completed") => {
                    let u = &v["usage"];
                    any = true;
                    tin += u["input_tokens"].as_u64().unwrap_or(0);
                    tout += u["output_tokens"].as_u64().unwrap_or(0);
                }
                Some("turn.failed") => {
                    out.error = v["error"]["message"].as_str().map(str::to_owned);
                }
                Some("error") if out.error.is_none() => {
                    out.error = v["message"].as_str().map(str::to_owned);
                }
                _ => {}
            }
        }
        if any {
            out.tokens_in = Some(tin);
            out.tokens_out = Some(tout);
        }
        out
    }

    fn render(&self, line: &str) -> Option<String> {
        let v = json_line(line)?;
        match v["type"].as_str()? {
            "thread.started" => Some(format!("session {}", v["thread_id"].as_str()?)),
            "item.completed" => {
                let item = &v["item"];
                Some(match item["type"].as_str()? {
                    "agent_message" => format!("› {}", short(item["text"].as_str()?, 400)),
                    "command_execution" => format!(
                        "$ {} (exit {})",
                        short(item["command"].as_str().unwrap_or("?"), 200),
                        item["exit_code"]
                    ),
                    "file_change" => {
                        let paths: Vec<String> = item["changes"]
                            .as_array()?
                            .iter()
                            .map(|c| {
                                format!(
                                    "{} {}",
                                    c["kind"].as_str().unwrap_or("?"),
                                    c["path"].as_str().unwrap_or("?")
                                )
                            })
                            .collect();
                        let mark = if item["status"] == "failed" {
                            "✗"
                        } else {
                            "✎"
                        };
                        format!("{mark} {}", paths.join(", "))
                    }
                    "mcp_tool_call" => format!(
                        "→ {}.{} ({})",
                        item["server"].as_str().unwrap_or("?"),
                        item["tool"].as_str().unwrap_or("?"),
                        item["status"].as_str().unwrap_or("?")
                    ),
                    "error" => format!("✗ {}", item["message"].as_str().unwrap_or("?")),
                    _ => return None,
                })
            }
            "turn.completed" => Some(format!(
                "✓ turn done ({} in / {} out tokens)",
                v["usage"]["input_tokens"], v["usage"]["output_tokens"]
            )),
            "turn.failed" => Some(format!(
                "✗ failed: {}",
                v["error"]["message"].as_str().unwrap_or("?")
            )),
            "error" => Some(format!("✗ {}", v["message"].as_str().unwrap_or("?"))),
            _ => None,
        }
    }
}
