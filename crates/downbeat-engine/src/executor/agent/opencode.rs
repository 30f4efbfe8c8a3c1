//! OpenCode (`opencode`), from its CLI, permissions and MCP documentation
//! (opencode.ai/docs/cli, /permissions, /mcp-servers; version 1.18).
//!
//! `opencode run --format json`, the prompt on stdin alone (a message argument would be quoted
//! word by word, and stdin appended to it). Permissions and MCP servers go in
//! `OPENCODE_CONFIG_CONTENT`, the configuration layer above the project's.

use serde_json::{Value, json};

use super::profile::{
    About, AgentOutput, Command, Invocation, Permission, Profile, json_line, short,
};

pub(super) struct Opencode;

impl Profile for Opencode {
    fn about(&self) -> About {
        About {
            title: "OpenCode",
            versions: &["1.18"],
            install: "npm install -g opencode-ai",
            login: "run `opencode auth login`, or set your provider's API key (ANTHROPIC_API_KEY, OPENAI_API_KEY, …)",
            resumes: true,
            reports_cost: true,
            takes_mcp: true,
        }
    }

    fn command(&self, inv: &Invocation<'_>) -> Command {
        let mut args: Vec<String> = vec!["run".into(), "--format".into(), "json".into()];
        let permission = match inv.permission {
            Permission::Read => {
                args.extend(["--agent".into(), "plan".into()]);
                json!({"edit": "deny", "bash": "deny", "webfetch": "deny"})
            }
            Permission::Edit => json!({"edit": "allow", "bash": "allow"}),
            Permission::Full => {
                args.push("--auto".into());
                json!("allow")
            }
        };
        if let Some(m) = inv.model {
            args.extend(["--model".into(), m.to_owned()]);
        }
        if let Some(s) = inv.resume {
            args.extend(["--session".into(), s.to_owned()]);
        }
        let mut config = json!({ "permission": permission });
        if !inv.mcp.is_empty() {
            let servers: serde_json::Map<String, Value> = inv
                .mcp
                .iter()
                .map(|(name, s)| {
                    let mut command = vec![s.command.clone()];
                    command.extend(s.args.iter().cloned());
                    (
                        name.clone(),
                        json!({"type": "local", "command": command, "environment": s.env, "enabled": true}),
                    )
                })
                .collect();
            config["mcp"] = Value::Object(servers);
        }
        let mut env = std::collections::BTreeMap::new();
        env.insert("OPENCODE_CONFIG_CONTENT".to_owned(), config.to_string());
        Command {
            args,
            tail: Vec::new(),
            stdin_prompt: true,
            env,
        }
    }

    fn parse(&self, stdout: &str, _stderr: &str) -> AgentOutput {
        let mut out = AgentOutput::default();
        let (mut tin, mut tout, mut cost, mut any) = (0, 0, 0.0, false);
        let mut step = Vec::new();
        let mut last = Vec::new();
        for v in stdout.lines().filter_map(json_line) {
            if let Some(s) = v["sessionID"].as_str() {
                out.session = Some(s.to_owned());
            }
            let part = &v["part"];
            match v["type"].as_str() {
                Some("step_start") => step.clear(),
                Some("text") => step.push(part["text"].as_str().unwrap_or("").to_owned()),
                Some("tool_use") if part["state"]["status"] == "error" => {
                    let e = part["state"]["error"].as_str().unwrap_or("");
                    if e.contains("rejected permission") || e.contains("prevents you") {
                        out.denied.push(format!(
                            "{} {}",
                            part["tool"].as_str().unwrap_or("tool"),
                            short(&part["state"]["input"].to_string(), 80)
                        ));
                    }
                }
                Some("step_finish") => {
                    let t = &part["tokens"];
                    any = true;
                    tin += t["input"].as_u64().unwrap_or(0);
                    tout += t["output"].as_u64().unwrap_or(0);
                    cost += part["cost"].as_f64().unwrap_or(0.0);
                    if !step.is_empty() {
                        last = std::mem::take(&mut step);
                    }
                }
                Some("error") => {
                    out.error = Some(
                        v["error"]["data"]["message"]
                            .as_str()
                            .or_else(|| v["error"]["name"].as_str())
                            .unwrap_or("error")
                            .to_owned(),
                    );
                }
                _ => {}
            }
        }
        if !step.is_empty() {
            last = step;
        }
        if any {
            out.tokens_in = Some(tin);
            out.tokens_out = Some(tout);
            out.cost_usd = Some(cost);
        }
        if !last.is_empty() {
            out.message = Some(last.join("\n"));
        }
        out
    }

    fn render(&self, line: &str) -> Option<String> {
        let v = json_line(line)?;
        let part = &v["part"];
        Some(match v["type"].as_str()? {
            "text" => format!("› {}", short(part["text"].as_str()?, 400)),
            "tool_use" => {
                let st = &part["state"];
                let mark = if st["status"] == "error" {
                    "✗"
                } else {
                    "→"
                };
                format!(
                    "{mark} {} {}",
                    part["tool"].as_str().unwrap_or("?"),
                    short(
                        st["title"]
                            .as_str()
                            .map(str::to_owned)
                            .unwrap_or_else(|| st["input"].to_string())
                            .as_str(),
                        160
                    )
                )
            }
            "step_finish" if part["reason"] == "stop" => format!(
                "✓ done ({} in / {} out tokens, ${})",
                part["tokens"]["input"], part["tokens"]["output"], part["cost"]
            ),
            "error" => format!(
                "✗ {}",
                v["error"]["data"]["message"]
                    .as_str()
                    .or_else(|| v["error"]["name"].as_str())
                    .unwrap_or("?")
            ),
            _ => return None,
        })
    }
}
