//! Claude Code (`claude`), from its CLI reference and headless-mode documentation
//! (code.claude.com/docs/en/cli-reference, /headless, /permission-modes; version 2.1).
//!
//! `claude -p --output-format stream-json --verbose`, the prompt on stdin only (an argument
//! and stdin would be joined: twice the prompt), options in their `--flag=value` form (several
//! of them take many values and would swallow what follows).

use serde_json::{Value, json};

use super::profile::{
    About, AgentOutput, Command, Invocation, Permission, Profile, attempt_file, json_line, short,
};

pub(super) struct Claude;

impl Profile for Claude {
    fn about(&self) -> About {
        About {
            title: "Claude Code",
            versions: &["2.1"],
            install: "npm install -g @anthropic-ai/claude-code",
            login: "run `claude auth login`, or set ANTHROPIC_API_KEY (CLAUDE_CODE_OAUTH_TOKEN from `claude setup-token` in CI)",
            resumes: true,
            reports_cost: true,
            takes_mcp: true,
        }
    }

    fn command(&self, inv: &Invocation<'_>) -> Command {
        let mut args: Vec<String> = ["-p", "--output-format=stream-json", "--verbose"]
            .map(String::from)
            .to_vec();
        match inv.permission {
            Permission::Read => args.push("--permission-mode=dontAsk".into()),
            Permission::Edit => {
                args.push("--permission-mode=acceptEdits".into());
                args.push("--allowedTools=Bash".into());
            }
            Permission::Full => args.push("--dangerously-skip-permissions".into()),
        }
        if let Some(m) = inv.model {
            args.push(format!("--model={m}"));
        }
        if !inv.mcp.is_empty() {
            let servers: serde_json::Map<String, Value> = inv
                .mcp
                .iter()
                .map(|(name, s)| {
                    (
                        name.clone(),
                        json!({"type": "stdio", "command": s.command, "args": s.args, "env": s.env}),
                    )
                })
                .collect();
            let path = attempt_file(
                inv,
                "claude-mcp.json",
                &json!({ "mcpServers": servers }).to_string(),
            );
            args.push(format!("--mcp-config={}", path.display()));
            args.push("--strict-mcp-config".into());
            if inv.permission != Permission::Full {
                for name in inv.mcp.keys() {
                    args.push(format!("--allowedTools=mcp__{name}"));
                }
            }
        }
        if let Some(s) = inv.resume {
            args.push(format!("--resume={s}"));
        }
        Command {
            args,
            tail: Vec::new(),
            stdin_prompt: true,
            env: Default::default(),
        }
    }

    fn parse(&self, stdout: &str, _stderr: &str) -> AgentOutput {
        let mut out = AgentOutput::default();
        for v in stdout.lines().filter_map(json_line) {
            if let Some(s) = v["session_id"].as_str() {
                out.session = Some(s.to_owned());
            }
            if v["type"] != "result" {
                continue;
            }
            let u = &v["usage"];
            let input = [
                "input_tokens",
                "cache_creation_input_tokens",
                "cache_read_input_tokens",
            ]
            .iter()
            .filter_map(|k| u[*k].as_u64())
            .sum::<u64>();
            out.tokens_in = u["input_tokens"].as_u64().map(|_| input);
            out.tokens_out = u["output_tokens"].as_u64();
            out.cost_usd = v["total_cost_usd"].as_f64();
            let errors: Vec<&str> = v["errors"]
                .as_array()
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let text = v["result"]
                .as_str()
                .map(str::to_owned)
                .or_else(|| (!errors.is_empty()).then(|| errors.join("; ")));
            if v["is_error"].as_bool() == Some(true) {
                out.error = Some(
                    text.clone()
                        .unwrap_or_else(|| v["subtype"].as_str().unwrap_or("error").to_owned()),
                );
            }
            out.message = text;
            out.denied = v["permission_denials"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .map(|d| {
                            let input = &d["tool_input"];
                            let target = input["file_path"]
                                .as_str()
                                .or_else(|| input["command"].as_str())
                                .unwrap_or("");
                            format!("{} {target}", d["tool_name"].as_str().unwrap_or("tool"))
                                .trim()
                                .to_owned()
                        })
                        .collect()
                })
                .unwrap_or_default();
        }
        out
    }

    fn render(&self, line: &str) -> Option<String> {
        let v = json_line(line)?;
        match v["type"].as_str()? {
            "system" if v["subtype"] == "init" => Some(format!(
                "session {} · model {} · {}",
                v["session_id"].as_str().unwrap_or("?"),
                v["model"].as_str().unwrap_or("?"),
                v["permissionMode"].as_str().unwrap_or("?")
            )),
            "assistant" => {
                let lines: Vec<String> = v["message"]["content"]
                    .as_array()?
                    .iter()
                    .filter_map(|c| match c["type"].as_str()? {
                        "text" => Some(format!("› {}", short(c["text"].as_str()?, 400))),
                        "tool_use" => Some(format!(
                            "→ {} {}",
                            c["name"].as_str()?,
                            short(&c["input"].to_string(), 160)
                        )),
                        _ => None,
                    })
                    .collect();
                (!lines.is_empty()).then(|| lines.join("\n"))
            }
            "user" => {
                let errs: Vec<String> = v["message"]["content"]
                    .as_array()?
                    .iter()
                    .filter(|c| c["is_error"] == true)
                    .map(|c| format!("✗ {}", short(&text_of(&c["content"]), 200)))
                    .collect();
                (!errs.is_empty()).then(|| errs.join("\n"))
            }
            "result" => Some(if v["is_error"] == true {
                format!("✗ failed: {}", short(&text_of(&v["result"]), 300))
            } else {
                format!(
                    "✓ done ({} turns, {} in / {} out tokens, ${})",
                    v["num_turns"],
                    v["usage"]["input_tokens"],
                    v["usage"]["output_tokens"],
                    v["total_cost_usd"]
                )
            }),
            _ => None,
        }
    }
}

fn text_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Array(a) => a
            .iter()
            .filter_map(|x| x["text"].as_str().or_else(|| x.as_str()))
            .collect::<Vec<_>>()
            .join(" "),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}
