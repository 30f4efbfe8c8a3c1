//! Gemini CLI (`gemini`), from its headless-mode documentation and CLI reference
//! (geminicli.com/docs/cli/headless, /cli/cli-reference; version 0.61).
//!
//! `gemini --output-format stream-json --approval-mode MODE`, the prompt on stdin alone (with
//! `-p` as well, gemini joins stdin and the argument: twice the prompt). The project is
//! trusted for the run (`GEMINI_CLI_TRUST_WORKSPACE`), else a headless run refuses to start;
//! MCP servers come in a settings file of the attempt's own.

use std::path::Path;

use serde_json::{Value, json};

use super::profile::{
    About, AgentOutput, Command, Invocation, Permission, Profile, attempt_file, json_line, short,
};

pub(super) struct Gemini;

impl Profile for Gemini {
    fn about(&self) -> About {
        About {
            title: "Gemini CLI",
            versions: &["0.61"],
            install: "npm install -g @google/gemini-cli",
            login: "set GEMINI_API_KEY (or GOOGLE_GENAI_USE_VERTEXAI with GOOGLE_CLOUD_PROJECT), or log in with Google once in an interactive `gemini`",
            resumes: true,
            reports_cost: false,
            takes_mcp: true,
        }
    }

    fn command(&self, inv: &Invocation<'_>) -> Command {
        let mode = match inv.permission {
            Permission::Read => "default",
            Permission::Edit => "auto_edit",
            Permission::Full => "yolo",
        };
        let mut args: Vec<String> = vec![
            "--output-format".into(),
            "stream-json".into(),
            "--approval-mode".into(),
            mode.into(),
        ];
        if inv.permission == Permission::Edit {
            // `auto_edit` allows file edits; commands in the project need the shell tool too.
            args.extend(["--allowed-tools".into(), "run_shell_command".into()]);
        }
        if let Some(m) = inv.model {
            args.extend(["--model".into(), m.to_owned()]);
        }
        if let Some(s) = inv.resume {
            args.extend(["--resume".into(), s.to_owned()]);
        }
        let mut env = std::collections::BTreeMap::new();
        env.insert("GEMINI_CLI_TRUST_WORKSPACE".to_owned(), "true".to_owned());
        if !inv.mcp.is_empty() {
            let servers: serde_json::Map<String, Value> = inv
                .mcp
                .iter()
                .map(|(name, s)| {
                    (
                        name.clone(),
                        json!({"command": s.command, "args": s.args, "env": s.env, "trust": true}),
                    )
                })
                .collect();
            let path = attempt_file(
                inv,
                "gemini-settings.json",
                &json!({ "mcpServers": servers }).to_string(),
            );
            env.insert(
                "GEMINI_CLI_SYSTEM_SETTINGS_PATH".to_owned(),
                path.display().to_string(),
            );
            args.push("--allowed-mcp-server-names".into());
            args.extend(inv.mcp.keys().cloned());
        }
        Command {
            args,
            tail: Vec::new(),
            stdin_prompt: true,
            env,
        }
    }

    /// Gemini skips a system settings file when it, or any directory above it, is writable by
    /// group or others (under `/tmp`, say): its MCP servers would not arrive.
    fn takes_mcp_in(&self, attempt_dir: &Path) -> bool {
        use std::os::unix::fs::PermissionsExt as _;
        attempt_dir
            .ancestors()
            .all(|d| std::fs::metadata(d).map_or(true, |m| m.permissions().mode() & 0o022 == 0))
    }

    fn parse(&self, stdout: &str, _stderr: &str) -> AgentOutput {
        let mut out = AgentOutput::default();
        let mut turn = String::new();
        for v in stdout.lines().filter_map(json_line) {
            match v["type"].as_str() {
                Some("init") => out.session = v["session_id"].as_str().map(str::to_owned),
                Some("message") if v["role"] == "assistant" => {
                    turn.push_str(v["content"].as_str().unwrap_or(""));
                }
                Some("tool_use") => {
                    if !turn.trim().is_empty() {
                        out.message = Some(std::mem::take(&mut turn));
                    }
                    turn.clear();
                }
                Some("tool_result") if v["status"] == "error" => {
                    let e = &v["error"];
                    if matches!(
                        e["type"].as_str(),
                        Some("policy_violation" | "tool_not_registered")
                    ) {
                        out.denied
                            .push(short(e["message"].as_str().unwrap_or("a tool call"), 120));
                    }
                }
                Some("error") if v["severity"] == "error" => {
                    out.error = v["message"].as_str().map(str::to_owned);
                }
                Some("result") => {
                    let st = &v["stats"];
                    out.tokens_in = st["input_tokens"].as_u64();
                    out.tokens_out = st["output_tokens"].as_u64();
                    if v["status"] == "error" {
                        out.error = Some(
                            v["error"]["message"]
                                .as_str()
                                .unwrap_or("the run failed")
                                .to_owned(),
                        );
                    }
                }
                _ => {}
            }
        }
        if !turn.trim().is_empty() {
            out.message = Some(turn);
        }
        out
    }

    fn render(&self, line: &str) -> Option<String> {
        let v = json_line(line)?;
        Some(match v["type"].as_str()? {
            "init" => format!(
                "session {} · model {}",
                v["session_id"].as_str().unwrap_or("?"),
                v["model"].as_str().unwrap_or("?")
            ),
            "message" if v["role"] == "assistant" => {
                format!("› {}", short(v["content"].as_str()?, 400))
            }
            "tool_use" => format!(
                "→ {} {}",
                v["tool_name"].as_str().unwrap_or("?"),
                short(&v["parameters"].to_string(), 160)
            ),
            "tool_result" if v["status"] == "error" => format!(
                "✗ {}",
                short(v["error"]["message"].as_str().unwrap_or("?"), 200)
            ),
            "error" => format!("✗ {}", v["message"].as_str().unwrap_or("?")),
            "result" if v["status"] == "error" => format!(
                "✗ failed: {}",
                v["error"]["message"].as_str().unwrap_or("?")
            ),
            "result" => format!(
                "✓ done ({} in / {} out tokens)",
                v["stats"]["input_tokens"], v["stats"]["output_tokens"]
            ),
            _ => return None,
        })
    }
}
