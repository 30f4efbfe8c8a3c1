//! `downbeat mcp install` and `downbeat agents export`, end to end in temp directories with
//! HOME pointing into them.

mod common;

use std::path::PathBuf;

use common::Env;

impl Env {
    /// A temp dir holding `proj/` (an initialised project) and `home/` (HOME); what `ok`
    /// and `fails` return has the temp dir replaced by `[TMP]`.
    fn new() -> Self {
        Env::builder()
            .home_inside()
            .tmp_placeholder()
            .init()
            .build()
    }

    fn proj(&self) -> PathBuf {
        self.path().to_path_buf()
    }
}

const CMD: &[&str] = &["--command", "downbeat"];

fn install<'a>(client: &'a str, scope: &'a str) -> Vec<&'a str> {
    let mut v = vec!["mcp", "install", "--client", client, "--scope", scope];
    v.extend_from_slice(CMD);
    v
}

// ------------------------------------------------------------------------------------------
// mcp install

#[test]
fn claude_project_writes_mcp_json_once() {
    let e = Env::new();
    let args = install("claude", "project");
    assert_eq!(e.ok(&args), "created .mcp.json\n");
    let path = e.proj().join(".mcp.json");
    let first = e.read(&path);
    insta::assert_snapshot!("claude_project", first);
    assert_eq!(e.ok(&args), "unchanged .mcp.json\n");
    assert_eq!(e.read(&path), first);
    let j = e.json(&args);
    assert_eq!(j["action"], "unchanged");
    assert_eq!(j["path"], "[TMP]/proj/.mcp.json");
    assert_eq!(j["args"], serde_json::json!(["mcp"]));
}

#[test]
fn the_command_defaults_to_this_program() {
    let e = Env::new();
    e.ok(&["mcp", "install", "--client", "claude"]);
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(e.proj().join(".mcp.json")).unwrap())
            .unwrap();
    let command = v["mcpServers"]["downbeat"]["command"].as_str().unwrap();
    let bin = assert_cmd::cargo::cargo_bin("downbeat");
    assert_eq!(
        std::fs::canonicalize(command).unwrap(),
        std::fs::canonicalize(bin).unwrap()
    );
}

#[test]
fn claude_user_scope_prints_the_claude_line() {
    let e = Env::new();
    let out = e.ok(&install("claude", "user"));
    insta::assert_snapshot!("claude_user_line", out);
    assert!(!e.proj().join(".mcp.json").exists());
    assert_eq!(std::fs::read_dir(e.home()).unwrap().count(), 0);
    let mut args = install("claude", "project");
    args.push("--print");
    assert_eq!(
        e.ok(&args),
        "claude mcp add --scope project downbeat -- downbeat mcp\n"
    );
    assert!(!e.proj().join(".mcp.json").exists());
}

#[test]
fn cursor_project_and_user_files() {
    let e = Env::new();
    assert_eq!(
        e.ok(&install("cursor", "project")),
        "created .cursor/mcp.json\n"
    );
    insta::assert_snapshot!("cursor_project", e.read(&e.proj().join(".cursor/mcp.json")));
    assert_eq!(
        e.ok(&install("cursor", "user")),
        "created [TMP]/home/.cursor/mcp.json\n"
    );
    insta::assert_snapshot!("cursor_user", e.read(&e.home().join(".cursor/mcp.json")));
    assert_eq!(
        e.ok(&install("cursor", "user")),
        "unchanged [TMP]/home/.cursor/mcp.json\n"
    );
}

#[test]
fn codex_user_and_project_files() {
    let e = Env::new();
    e.ok(&install("codex", "user"));
    insta::assert_snapshot!("codex_user", e.read(&e.home().join(".codex/config.toml")));
    assert_eq!(
        e.ok(&install("codex", "project")),
        "created .codex/config.toml\n"
    );
    insta::assert_snapshot!(
        "codex_project",
        e.read(&e.proj().join(".codex/config.toml"))
    );
    assert_eq!(
        e.ok(&install("codex", "project")),
        "unchanged .codex/config.toml\n"
    );
}

#[test]
fn codex_home_is_honoured() {
    let e = Env::new();
    let elsewhere = e.tmp().join("codex-home");
    let out = e
        .cmd(&install("codex", "user"))
        .env("CODEX_HOME", &elsewhere)
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(elsewhere.join("config.toml").exists());
    assert!(!e.home().join(".codex").exists());
}

#[test]
fn name_env_and_db_end_up_in_the_entry() {
    let e = Env::new();
    let mut args = vec!["--db", "sqlite:/data/x.db"];
    args.extend(install("cursor", "project"));
    args.extend(["--name", "tasks", "--env", "DOWNBEAT_ACTOR=cursor"]);
    e.ok(&args);
    let v: serde_json::Value =
        serde_json::from_str(&e.read(&e.proj().join(".cursor/mcp.json"))).unwrap();
    assert_eq!(
        v["mcpServers"]["tasks"],
        serde_json::json!({
            "command": "downbeat",
            "args": ["--project", "${workspaceFolder}", "--db", "sqlite:/data/x.db", "mcp"],
            "env": {"DOWNBEAT_ACTOR": "cursor"}
        })
    );
    let err = e.fails(
        &["mcp", "install", "--client", "cursor", "--env", "NOEQUALS"],
        4,
    );
    assert!(err.contains("KEY=VALUE"), "{err}");
    let err = e.fails(
        &["mcp", "install", "--client", "cursor", "--name", "a b"],
        4,
    );
    assert!(err.contains("server name"), "{err}");
}

#[test]
fn print_writes_nothing() {
    let e = Env::new();
    let mut args = install("codex", "user");
    args.push("--print");
    insta::assert_snapshot!("codex_print", e.ok(&args));
    let mut args = install("cursor", "project");
    args.push("--print");
    let v: serde_json::Value = serde_json::from_str(&e.ok(&args)).unwrap();
    assert_eq!(v["mcpServers"]["downbeat"]["command"], "downbeat");
    assert!(!e.home().join(".codex").exists());
    assert!(!e.proj().join(".cursor").exists());
}

#[test]
fn merging_json_keeps_other_servers_and_keys() {
    let e = Env::new();
    let path = e.proj().join(".mcp.json");
    e.write(
        &path,
        r#"{
  "mcpServers": {
    "github": {"command": "npx", "args": ["-y", "@modelcontextprotocol/server-github"], "env": {"GITHUB_TOKEN": "x"}},
    "downbeat": {"command": "/old/downbeat", "args": ["mcp"], "env": {"DOWNBEAT_ACTOR": "claude"}, "timeout": 30}
  },
  "otherKey": {"keep": [1, 2.5, true, null]}
}
"#,
    );
    assert_eq!(e.ok(&install("claude", "project")), "updated .mcp.json\n");
    let merged = e.read(&path);
    insta::assert_snapshot!("claude_merged", merged);
    let v: serde_json::Value = serde_json::from_str(&merged).unwrap();
    assert_eq!(v["mcpServers"]["github"]["env"]["GITHUB_TOKEN"], "x");
    assert_eq!(
        v["mcpServers"]["downbeat"]["env"]["DOWNBEAT_ACTOR"],
        "claude"
    );
    assert_eq!(v["mcpServers"]["downbeat"]["timeout"], 30);
    assert_eq!(v["otherKey"]["keep"][1], 2.5);
    assert_eq!(e.ok(&install("claude", "project")), "unchanged .mcp.json\n");
    assert_eq!(e.read(&path), merged);
}

#[test]
fn merging_toml_keeps_comments_and_other_tables() {
    let e = Env::new();
    let path = e.home().join(".codex/config.toml");
    let original = r#"# My Codex settings
model = "o3"  # the default model

[mcp_servers.github]
# a comment inside a table
command = "npx"
args = ["-y", "@modelcontextprotocol/server-github"]
env = { "GITHUB_TOKEN" = "x" }

[profiles.fast]
model = "o4-mini"
"#;
    e.write(&path, original);
    let j = e.json(&install("codex", "user"));
    assert_eq!(j["action"], "updated");
    assert_eq!(j["path"], "[TMP]/home/.codex/config.toml");
    let merged = e.read(&path);
    // The new table joins its siblings; everything else is byte for byte the same.
    let block = "[mcp_servers.downbeat]\ncommand = \"downbeat\"\nargs = [\"--project\", \"[TMP]/proj\", \"mcp\"]\n\n";
    assert_eq!(merged.replace(block, ""), original, "{merged}");
    insta::assert_snapshot!("codex_merged", merged);
    let parsed: toml::Table = toml::from_str(&merged).unwrap();
    assert_eq!(
        parsed["mcp_servers"]["downbeat"]["command"].as_str(),
        Some("downbeat")
    );
    assert_eq!(e.json(&install("codex", "user"))["action"], "unchanged");
    assert_eq!(e.read(&path), merged);

    // A changed command replaces only that value.
    let mut other = install("codex", "user");
    let last = other.len() - 1;
    other[last] = "/opt/downbeat";
    e.ok(&other);
    let changed = e.read(&path);
    assert_eq!(
        changed,
        merged.replace("command = \"downbeat\"", "command = \"/opt/downbeat\"")
    );
}

#[test]
fn malformed_files_are_refused_and_left_alone() {
    let e = Env::new();
    let cases: [(&str, &str, PathBuf, &str); 4] = [
        (
            "claude",
            "project",
            e.proj().join(".mcp.json"),
            "{\"mcpServers\": {,}",
        ),
        (
            "cursor",
            "project",
            e.proj().join(".cursor/mcp.json"),
            "{\"mcpServers\": []}",
        ),
        (
            "cursor",
            "user",
            e.home().join(".cursor/mcp.json"),
            "[1, 2]",
        ),
        (
            "codex",
            "user",
            e.home().join(".codex/config.toml"),
            "model = \n[mcp_servers",
        ),
    ];
    for (client, scope, path, text) in cases {
        e.write(&path, text);
        let err = e.fails(&install(client, scope), 4);
        assert!(err.contains(&e.norm(&path.display().to_string())), "{err}");
        assert!(err.contains("untouched"), "{err}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), text);
        let leftovers: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|d| d.unwrap().file_name())
            .filter(|n| n.to_string_lossy().ends_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }
}

#[test]
fn a_codex_server_that_is_not_a_table_is_refused() {
    let e = Env::new();
    let path = e.home().join(".codex/config.toml");
    e.write(&path, "[mcp_servers]\ndownbeat = 3\n");
    let err = e.fails(&install("codex", "user"), 4);
    assert!(
        err.contains("`mcp_servers.downbeat` is not a table"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        "[mcp_servers]\ndownbeat = 3\n"
    );
}

#[test]
fn exported_tools_are_the_servers_default_tools() {
    let served = downbeat_mcp::tools::tool_names(downbeat_mcp::Profile::Default);
    for (tool, _) in downbeat::clients::MCP_TOOLS {
        assert!(
            served.iter().any(|s| s == tool),
            "{tool} is not served: {served:?}"
        );
    }
}

#[test]
fn install_needs_a_project() {
    let e = Env::new();
    let bare = e.tmp().join("bare");
    std::fs::create_dir_all(&bare).unwrap();
    let o = e
        .cmd(&install("cursor", "user"))
        .current_dir(&bare)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(3));
    // --project names it from anywhere.
    let o = e
        .cmd(&install("cursor", "user"))
        .args(["--project", e.proj().to_str().unwrap()])
        .current_dir(&bare)
        .output()
        .unwrap();
    assert!(o.status.success());
    let v: serde_json::Value =
        serde_json::from_str(&e.read(&e.home().join(".cursor/mcp.json"))).unwrap();
    assert_eq!(
        v["mcpServers"]["downbeat"]["args"],
        serde_json::json!(["--project", "[TMP]/proj", "mcp"])
    );
}

// ------------------------------------------------------------------------------------------
// mcp install: VS Code, Windsurf, Claude Desktop, Gemini CLI

#[test]
fn vscode_project_and_user_files() {
    let e = Env::new();
    assert_eq!(
        e.ok(&install("vscode", "project")),
        "created .vscode/mcp.json\n"
    );
    let project = e.read(&e.proj().join(".vscode/mcp.json"));
    insta::assert_snapshot!("vscode_project", project);
    let v: serde_json::Value = serde_json::from_str(&project).unwrap();
    assert_eq!(
        v["servers"]["downbeat"],
        serde_json::json!({
            "type": "stdio",
            "command": "downbeat",
            "args": ["--project", "${workspaceFolder}", "mcp"]
        })
    );
    assert!(v.get("mcpServers").is_none(), "{project}");
    assert_eq!(
        e.ok(&install("vscode", "project")),
        "unchanged .vscode/mcp.json\n"
    );

    assert_eq!(
        e.ok(&install("vscode", "user")),
        "created [TMP]/home/.config/Code/User/mcp.json\n"
    );
    insta::assert_snapshot!(
        "vscode_user",
        e.read(&e.home().join(".config/Code/User/mcp.json"))
    );
    assert_eq!(
        e.ok(&install("vscode", "user")),
        "unchanged [TMP]/home/.config/Code/User/mcp.json\n"
    );
}

#[test]
fn xdg_config_home_moves_the_desktop_apps_files() {
    let e = Env::new();
    let cfg = e.tmp().join("cfg");
    for client in ["vscode", "claude-desktop"] {
        let out = e
            .cmd(&install(client, "user"))
            .env("XDG_CONFIG_HOME", &cfg)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
    }
    assert!(cfg.join("Code/User/mcp.json").is_file());
    assert!(cfg.join("Claude/claude_desktop_config.json").is_file());
    assert!(!e.home().join(".config").exists());
}

#[test]
fn vscode_merge_keeps_inputs_and_other_servers() {
    let e = Env::new();
    let path = e.proj().join(".vscode/mcp.json");
    e.write(
        &path,
        r#"{
  "inputs": [{"type": "promptString", "id": "token", "description": "Token", "password": true}],
  "servers": {
    "github": {"type": "http", "url": "https://api.githubcopilot.com/mcp/"},
    "downbeat": {"type": "stdio", "command": "/old/downbeat", "args": ["mcp"], "envFile": "${workspaceFolder}/.env"}
  }
}
"#,
    );
    assert_eq!(
        e.ok(&install("vscode", "project")),
        "updated .vscode/mcp.json\n"
    );
    let merged = e.read(&path);
    insta::assert_snapshot!("vscode_merged", merged);
    let v: serde_json::Value = serde_json::from_str(&merged).unwrap();
    assert_eq!(v["inputs"][0]["id"], "token");
    assert_eq!(v["servers"]["github"]["type"], "http");
    assert_eq!(
        v["servers"]["downbeat"]["envFile"],
        "${workspaceFolder}/.env"
    );
    assert_eq!(v["servers"]["downbeat"]["command"], "downbeat");
    assert!(merged.find("\"inputs\"").unwrap() < merged.find("\"servers\"").unwrap());
    assert_eq!(
        e.ok(&install("vscode", "project")),
        "unchanged .vscode/mcp.json\n"
    );
    assert_eq!(e.read(&path), merged);
}

#[test]
fn windsurf_and_claude_desktop_are_user_only() {
    let e = Env::new();
    for client in ["windsurf", "claude-desktop"] {
        let err = e.fails(&install(client, "project"), 2);
        assert!(
            err.contains(&format!("{client} has no project configuration")),
            "{err}"
        );
        assert!(err.contains("--scope user"), "{err}");
        // The default scope is project, so it must be asked for.
        let err = e.fails(&["mcp", "install", "--client", client], 2);
        assert!(err.contains("--scope user"), "{err}");
        let j = e.fails(&["mcp", "install", "--client", client, "--json"], 2);
        assert!(j.is_empty(), "{j}");
    }
    assert_eq!(std::fs::read_dir(e.home()).unwrap().count(), 0);
    assert!(!e.proj().join(".codeium").exists());

    assert_eq!(
        e.ok(&install("windsurf", "user")),
        "created [TMP]/home/.codeium/windsurf/mcp_config.json\n"
    );
    insta::assert_snapshot!(
        "windsurf_user",
        e.read(&e.home().join(".codeium/windsurf/mcp_config.json"))
    );
    assert_eq!(
        e.ok(&install("windsurf", "user")),
        "unchanged [TMP]/home/.codeium/windsurf/mcp_config.json\n"
    );

    let j = e.json(&install("claude-desktop", "user"));
    assert_eq!(j["action"], "created");
    assert_eq!(j["client"], "claude-desktop");
    assert_eq!(
        j["path"],
        "[TMP]/home/.config/Claude/claude_desktop_config.json"
    );
    // Claude Desktop starts servers in no project: the entry names it.
    assert_eq!(
        j["args"],
        serde_json::json!(["--project", "[TMP]/proj", "mcp"])
    );
    insta::assert_snapshot!(
        "claude_desktop_user",
        e.read(&e.home().join(".config/Claude/claude_desktop_config.json"))
    );
    assert_eq!(
        e.json(&install("claude-desktop", "user"))["action"],
        "unchanged"
    );
}

#[test]
fn claude_desktop_merge_keeps_preferences_and_other_servers() {
    let e = Env::new();
    let path = e.home().join(".config/Claude/claude_desktop_config.json");
    e.write(
        &path,
        r#"{"mcpServers": {"files": {"command": "npx", "args": ["-y", "@modelcontextprotocol/server-filesystem", "/home/me"]}}, "preferences": {"sidebarMode": "chat"}}"#,
    );
    assert_eq!(
        e.json(&install("claude-desktop", "user"))["action"],
        "updated"
    );
    let v: serde_json::Value = serde_json::from_str(&e.read(&path)).unwrap();
    assert_eq!(v["preferences"]["sidebarMode"], "chat");
    assert_eq!(v["mcpServers"]["files"]["command"], "npx");
    assert_eq!(
        v["mcpServers"]["downbeat"]["args"],
        serde_json::json!(["--project", "[TMP]/proj", "mcp"])
    );
}

#[test]
fn gemini_settings_keep_every_other_setting() {
    let e = Env::new();
    let path = e.home().join(".gemini/settings.json");
    e.write(
        &path,
        r#"{
  "theme": "GitHub",
  "mcp": {"allowed": ["downbeat", "github"]},
  "mcpServers": {
    "github": {"httpUrl": "https://api.githubcopilot.com/mcp/", "headers": {"Authorization": "Bearer $GITHUB_TOKEN"}},
    "downbeat": {"command": "/old/downbeat", "args": ["--project", "[PROJ]", "mcp"], "cwd": "/tmp", "timeout": 30000, "trust": true}
  },
  "general": {"vimMode": true, "checkpointing": {"enabled": false}}
}
"#
        .replace("[PROJ]", &e.proj().display().to_string())
        .as_str(),
    );
    let j = e.json(&install("gemini", "user"));
    assert_eq!(j["action"], "updated");
    assert_eq!(j["path"], "[TMP]/home/.gemini/settings.json");
    let merged = e.read(&path);
    insta::assert_snapshot!("gemini_merged", merged);
    let v: serde_json::Value = serde_json::from_str(&merged).unwrap();
    let entry = &v["mcpServers"]["downbeat"];
    assert_eq!(entry["command"], "downbeat");
    assert_eq!(
        (&entry["cwd"], &entry["timeout"], &entry["trust"]),
        (&"/tmp".into(), &30000.into(), &true.into())
    );
    assert_eq!(v["theme"], "GitHub");
    assert_eq!(v["general"]["checkpointing"]["enabled"], false);
    assert_eq!(v["mcp"]["allowed"][1], "github");
    assert_eq!(
        v["mcpServers"]["github"]["headers"]["Authorization"],
        "Bearer $GITHUB_TOKEN"
    );
    // The top-level settings keep their order.
    let at: Vec<usize> = ["\"theme\"", "\"mcp\"", "\"mcpServers\"", "\"general\""]
        .iter()
        .map(|k| merged.find(k).unwrap())
        .collect();
    assert!(at.windows(2).all(|w| w[0] < w[1]), "{merged}");
    assert_eq!(e.json(&install("gemini", "user"))["action"], "unchanged");
    assert_eq!(e.read(&path), merged);

    assert_eq!(
        e.ok(&install("gemini", "project")),
        "created .gemini/settings.json\n"
    );
    insta::assert_snapshot!(
        "gemini_project",
        e.read(&e.proj().join(".gemini/settings.json"))
    );
}

#[test]
fn print_writes_nothing_for_the_new_clients() {
    let e = Env::new();
    for (client, scope, key, args) in [
        (
            "vscode",
            "project",
            "servers",
            serde_json::json!(["--project", "${workspaceFolder}", "mcp"]),
        ),
        (
            "vscode",
            "user",
            "servers",
            serde_json::json!(["--project", "[TMP]/proj", "mcp"]),
        ),
        (
            "windsurf",
            "user",
            "mcpServers",
            serde_json::json!(["--project", "[TMP]/proj", "mcp"]),
        ),
        (
            "claude-desktop",
            "user",
            "mcpServers",
            serde_json::json!(["--project", "[TMP]/proj", "mcp"]),
        ),
        (
            "gemini",
            "project",
            "mcpServers",
            serde_json::json!(["mcp"]),
        ),
        (
            "gemini",
            "user",
            "mcpServers",
            serde_json::json!(["--project", "[TMP]/proj", "mcp"]),
        ),
    ] {
        let mut a = install(client, scope);
        a.push("--print");
        let v: serde_json::Value = serde_json::from_str(&e.ok(&a)).unwrap();
        assert_eq!(v[key]["downbeat"]["args"], args, "{client} {scope}");
        assert_eq!(
            v[key]["downbeat"]["command"], "downbeat",
            "{client} {scope}"
        );
        let j = e.json(&a);
        assert_eq!(j["client"], client);
        assert!(j["print"].as_str().unwrap().contains("\"downbeat\""), "{j}");
    }
    assert_eq!(std::fs::read_dir(e.home()).unwrap().count(), 0);
    assert!(!e.proj().join(".vscode").exists());
    assert!(!e.proj().join(".gemini").exists());
}

#[test]
fn malformed_files_of_the_new_clients_are_refused_and_left_alone() {
    let e = Env::new();
    let cases: [(&str, &str, PathBuf, &str, &str); 5] = [
        (
            "vscode",
            "project",
            e.proj().join(".vscode/mcp.json"),
            "{\"servers\": []}",
            "`servers` is not an object",
        ),
        (
            "vscode",
            "user",
            e.home().join(".config/Code/User/mcp.json"),
            "{\"servers\": {\"downbeat\": 1}}",
            "`servers.downbeat` is not an object",
        ),
        (
            "windsurf",
            "user",
            e.home().join(".codeium/windsurf/mcp_config.json"),
            "{\"mcpServers\": {,}}",
            "not valid JSON",
        ),
        (
            "claude-desktop",
            "user",
            e.home().join(".config/Claude/claude_desktop_config.json"),
            "[1]",
            "not a JSON object",
        ),
        (
            "gemini",
            "project",
            e.proj().join(".gemini/settings.json"),
            "{\n  // comments are not JSON\n  \"theme\": \"GitHub\"\n}\n",
            "not valid JSON",
        ),
    ];
    for (client, scope, path, text, why) in cases {
        e.write(&path, text);
        let err = e.fails(&install(client, scope), 4);
        assert!(err.contains(&e.norm(&path.display().to_string())), "{err}");
        assert!(err.contains(why), "{err}");
        assert!(err.contains("untouched"), "{err}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), text);
        let leftovers: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|d| d.unwrap().file_name())
            .filter(|n| n.to_string_lossy().ends_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }
}

// ------------------------------------------------------------------------------------------
// mcp install --scope user never repoints silently

/// A second initialised project beside the first, `[TMP]/other`.
fn other_project(e: &Env) -> PathBuf {
    let other = e.tmp().join("other");
    std::fs::create_dir_all(&other).unwrap();
    let o = e.cmd(&["init"]).current_dir(&other).output().unwrap();
    assert!(o.status.success(), "{o:?}");
    other
}

/// `install(client, "user")` run in `dir`, with `extra` arguments.
fn install_in(
    e: &Env,
    dir: &std::path::Path,
    client: &str,
    extra: &[&str],
) -> std::process::Output {
    e.cmd(&install(client, "user"))
        .args(extra)
        .current_dir(dir)
        .output()
        .unwrap()
}

#[test]
fn a_user_entry_for_another_project_is_not_repointed() {
    let e = Env::new();
    let other = other_project(&e);
    let files = [
        ("cursor", e.home().join(".cursor/mcp.json")),
        ("codex", e.home().join(".codex/config.toml")),
        ("vscode", e.home().join(".config/Code/User/mcp.json")),
        (
            "windsurf",
            e.home().join(".codeium/windsurf/mcp_config.json"),
        ),
        (
            "claude-desktop",
            e.home().join(".config/Claude/claude_desktop_config.json"),
        ),
        ("gemini", e.home().join(".gemini/settings.json")),
    ];
    for (client, path) in &files {
        e.ok(&install(client, "user"));
        let before = std::fs::read_to_string(path).unwrap();
        let o = install_in(&e, &other, client, &[]);
        assert_eq!(o.status.code(), Some(5), "{client}: {o:?}");
        let err = e.norm(&String::from_utf8_lossy(&o.stderr));
        assert!(
            err.contains(&format!(
                "error: the user-wide entry `downbeat` in {} serves another project, [TMP]/proj; this project is [TMP]/other",
                e.norm(&path.display().to_string())
            )),
            "{client}: {err}"
        );
        assert!(err.contains("--name downbeat-other"), "{err}");
        assert!(err.contains("--force"), "{err}");
        assert_eq!(std::fs::read_to_string(path).unwrap(), before, "{client}");
        // The same project again is no conflict.
        assert!(
            e.ok(&install(client, "user")).starts_with("unchanged "),
            "{client}"
        );
    }
    // Under --json the refusal is data.
    let o = install_in(&e, &other, "cursor", &["--json"]);
    assert_eq!(o.status.code(), Some(5));
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(j["error"]["kind"], "conflict");
    assert!(o.stderr.is_empty());
}

#[test]
fn force_repoints_and_a_second_name_adds_an_entry() {
    let e = Env::new();
    let other = other_project(&e);
    let path = e.home().join(".cursor/mcp.json");
    e.ok(&install("cursor", "user"));

    let o = install_in(&e, &other, "cursor", &["--name", "downbeat-other"]);
    assert!(o.status.success(), "{o:?}");
    let v: serde_json::Value = serde_json::from_str(&e.read(&path)).unwrap();
    assert_eq!(v["mcpServers"]["downbeat"]["args"][1], "[TMP]/proj");
    assert_eq!(v["mcpServers"]["downbeat-other"]["args"][1], "[TMP]/other");

    let o = install_in(&e, &other, "cursor", &["--force", "--json"]);
    assert!(o.status.success(), "{o:?}");
    let j: serde_json::Value =
        serde_json::from_str(&e.norm(&String::from_utf8_lossy(&o.stdout))).unwrap();
    assert_eq!(j["action"], "updated");
    assert_eq!(j["repointed_from"], "[TMP]/proj");
    let v: serde_json::Value = serde_json::from_str(&e.read(&path)).unwrap();
    assert_eq!(v["mcpServers"]["downbeat"]["args"][1], "[TMP]/other");
    assert_eq!(v["mcpServers"]["downbeat-other"]["args"][1], "[TMP]/other");

    // Without --json, the repointing is told on stderr.
    let o = install_in(&e, e.proj().as_path(), "cursor", &["--force"]);
    assert!(o.status.success(), "{o:?}");
    let err = e.norm(&String::from_utf8_lossy(&o.stderr));
    assert!(
        err.contains("note: `downbeat` pointed at [TMP]/other; it now serves [TMP]/proj"),
        "{err}"
    );
    // Codex's TOML too: only the path changes.
    e.ok(&install("codex", "user"));
    let toml_path = e.home().join(".codex/config.toml");
    let before = e.read(&toml_path);
    let o = install_in(&e, &other, "codex", &["--force"]);
    assert!(o.status.success(), "{o:?}");
    assert_eq!(
        e.read(&toml_path),
        before.replace("[TMP]/proj", "[TMP]/other")
    );
}

#[test]
fn the_claude_code_line_does_not_repoint_either() {
    let e = Env::new();
    let other = other_project(&e);
    // Claude Code's own user file, which downbeat reads and never writes.
    let claude_json = e.home().join(".claude.json");
    let text = format!(
        r#"{{"numStartups": 3, "mcpServers": {{"downbeat": {{"type": "stdio", "command": "downbeat", "args": ["--project", "{}", "mcp"]}}}}}}"#,
        e.proj().display()
    );
    e.write(&claude_json, &text);
    // This project: the line as usual.
    assert!(
        e.ok(&install("claude", "user"))
            .starts_with("claude mcp add --scope user downbeat")
    );
    let o = install_in(&e, &other, "claude", &[]);
    assert_eq!(o.status.code(), Some(5), "{o:?}");
    let err = e.norm(&String::from_utf8_lossy(&o.stderr));
    assert!(
        err.contains("the user-wide entry `downbeat` in [TMP]/home/.claude.json serves another project, [TMP]/proj; this project is [TMP]/other"),
        "{err}"
    );
    assert!(o.stdout.is_empty());
    let o = install_in(&e, &other, "claude", &["--force"]);
    assert!(o.status.success(), "{o:?}");
    assert_eq!(
        e.norm(&String::from_utf8_lossy(&o.stdout)),
        "claude mcp remove --scope user downbeat && claude mcp add --scope user downbeat -- downbeat --project [TMP]/other mcp\n"
    );
    let o = install_in(&e, &other, "claude", &["--name", "downbeat-other"]);
    assert!(o.status.success(), "{o:?}");
    assert_eq!(std::fs::read_to_string(&claude_json).unwrap(), text);
    // CLAUDE_CONFIG_DIR moves the file.
    let moved = e.tmp().join("cc");
    let o = e
        .cmd(&install("claude", "user"))
        .env("CLAUDE_CONFIG_DIR", &moved)
        .current_dir(&other)
        .output()
        .unwrap();
    assert!(o.status.success(), "{o:?}");
}

#[test]
fn project_scope_and_print_do_not_check_other_projects() {
    let e = Env::new();
    let other = other_project(&e);
    e.ok(&install("cursor", "user"));
    // A project file serves its own project only.
    let o = e
        .cmd(&install("cursor", "project"))
        .current_dir(&other)
        .output()
        .unwrap();
    assert!(o.status.success(), "{o:?}");
    // --print writes nothing, so it has nothing to refuse.
    let o = install_in(&e, &other, "cursor", &["--print"]);
    assert!(o.status.success(), "{o:?}");
    // An entry that names no project (the user wrote it) is taken over as before.
    let path = e.home().join(".gemini/settings.json");
    e.write(
        &path,
        r#"{"mcpServers": {"downbeat": {"command": "downbeat", "args": ["mcp"]}}}"#,
    );
    assert_eq!(e.json(&install("gemini", "user"))["action"], "updated");
}

// ------------------------------------------------------------------------------------------
// agents export

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct FrontMatter {
    name: String,
    description: String,
    tools: String,
    model: Option<String>,
}

fn front_matter(text: &str) -> FrontMatter {
    let rest = text.strip_prefix("---\n").expect("starts with ---");
    let end = rest.find("\n---\n").expect("front matter ends");
    serde_saphyr::from_str(&rest[..end]).unwrap()
}

const ROLES: [&str; 9] = [
    "architect",
    "database",
    "debugger",
    "documenter",
    "implementer",
    "researcher",
    "reviewer",
    "security",
    "tester",
];

#[test]
fn export_writes_one_subagent_per_role() {
    let e = Env::new();
    let out = e.ok(&["agents", "export"]);
    insta::assert_snapshot!("export_first", out);
    for r in ROLES {
        let text = e.read(&e.proj().join(format!(".claude/agents/{r}.md")));
        let fm = front_matter(&text);
        assert_eq!(fm.name, r);
        assert!(
            fm.description.starts_with(&format!("Downbeat {r}: ")),
            "{}",
            fm.description
        );
        let tools: Vec<&str> = fm.tools.split(", ").collect();
        assert!(tools.contains(&"Read"), "{tools:?}");
        assert!(tools.contains(&"mcp__downbeat__claim"), "{tools:?}");
        assert!(tools.contains(&"mcp__downbeat__work"), "{tools:?}");
        assert!(!tools.contains(&"mcp__downbeat__run"), "{tools:?}");
        assert_eq!(fm.model, None);
        assert!(!text.contains("{{"), "{text}");
    }
    let reviewer = front_matter(&e.read(&e.proj().join(".claude/agents/reviewer.md")));
    assert!(!reviewer.tools.contains("Edit") && !reviewer.tools.contains("Bash"));
    insta::assert_snapshot!(
        "implementer_md",
        e.read(&e.proj().join(".claude/agents/implementer.md"))
    );
    let j = e.json(&["agents", "export"]);
    let actions: Vec<&str> = j
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["unchanged"; 9]);
    assert_eq!(j[0]["path"], "[TMP]/proj/.claude/agents/architect.md");
}

#[test]
fn export_never_overwrites_a_hand_written_file_without_force() {
    let e = Env::new();
    let path = e.proj().join(".claude/agents/reviewer.md");
    let mine = "---\nname: reviewer\ndescription: my own reviewer\n---\n\nBe strict.\n";
    e.write(&path, mine);
    let o = e.run(&["agents", "export", "--roles", "reviewer,tester"]);
    assert!(o.status.success());
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "skipped    .claude/agents/reviewer.md\ncreated    .claude/agents/tester.md\n"
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("--force"), "{err}");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), mine);
    assert!(!e.proj().join(".claude/agents/architect.md").exists());

    let j = e.json(&["agents", "export", "--roles", "reviewer"]);
    assert_eq!(j[0]["action"], "skipped");
    assert!(j[0]["reason"].as_str().unwrap().contains("marker"));

    assert_eq!(
        e.ok(&["agents", "export", "--roles", "reviewer", "--force"]),
        "updated    .claude/agents/reviewer.md\n"
    );
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains("# generated-by: downbeat"), "{text}");
    assert_eq!(
        e.ok(&["agents", "export", "--roles", "reviewer"]),
        "unchanged  .claude/agents/reviewer.md\n"
    );
}

#[test]
fn export_updates_its_own_files_when_they_differ() {
    let e = Env::new();
    e.ok(&["agents", "export", "--roles", "tester"]);
    let path = e.proj().join(".claude/agents/tester.md");
    let edited = std::fs::read_to_string(&path)
        .unwrap()
        .replace("detective", "bloodhound");
    std::fs::write(&path, &edited).unwrap();
    assert_eq!(
        e.ok(&["agents", "export", "--roles", "tester"]),
        "updated    .claude/agents/tester.md\n"
    );
    assert!(
        std::fs::read_to_string(&path)
            .unwrap()
            .contains("detective")
    );
}

#[test]
fn export_custom_roles_model_server_and_dir() {
    let e = Env::new();
    e.write(
        e.proj().join(".downbeat/roles/security.toml"),
        r#"description = "Finds \"holes\": injection, auth; secrets — and #tags.\nSecond line."
prompt = """You audit security.
Check {{ task.title }} carefully."""
"#,
    );
    let out = e.ok(&[
        "agents", "export", "--roles", "security", "--model", "opus", "--server", "db", "--dir",
        "agents",
    ]);
    assert_eq!(out, "created    agents/security.md\n");
    let text = e.read(&e.proj().join("agents/security.md"));
    let fm = front_matter(&text);
    assert_eq!(fm.name, "security");
    assert_eq!(
        fm.description,
        "Downbeat security: Finds \"holes\": injection, auth; secrets — and #tags.\nSecond line. Use for Downbeat tasks of the security role; it claims a task, does it and completes it through the db MCP tools."
    );
    assert_eq!(fm.model.as_deref(), Some("opus"));
    assert!(fm.tools.contains("mcp__db__claim"), "{}", fm.tools);
    assert!(text.contains("You audit security.\n\n## Working"), "{text}");
    assert!(!text.contains("{{"), "{text}");
    // Regenerated without --model, the file keeps its model; `--model none` drops it.
    let again = [
        "agents", "export", "--roles", "security", "--server", "db", "--dir", "agents",
    ];
    assert_eq!(e.ok(&again), "unchanged  agents/security.md\n");
    let fm = front_matter(&e.read(&e.proj().join("agents/security.md")));
    assert_eq!(fm.model.as_deref(), Some("opus"));
    let mut drop = again.to_vec();
    drop.extend(["--model", "none"]);
    assert_eq!(e.ok(&drop), "updated    agents/security.md\n");
    let fm = front_matter(&e.read(&e.proj().join("agents/security.md")));
    assert_eq!(fm.model, None);
    let err = e.fails(&["agents", "export", "--roles", "nobody"], 4);
    assert!(err.contains("unknown role `nobody`"), "{err}");
}
