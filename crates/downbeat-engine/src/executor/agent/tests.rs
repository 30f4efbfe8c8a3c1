use std::collections::BTreeMap;
use std::path::Path;

use super::*;

fn inv<'a>(
    dir: &'a Path,
    permission: Permission,
    resume: Option<&'a str>,
    mcp: &'a BTreeMap<String, McpServer>,
) -> Invocation<'a> {
    Invocation {
        prompt_file: Path::new("/p/prompt.md"),
        attempt_dir: dir,
        permission,
        model: Some("m1"),
        resume,
        mcp,
    }
}

fn no_mcp() -> BTreeMap<String, McpServer> {
    BTreeMap::new()
}

#[test]
fn every_profile_takes_the_prompt_from_exactly_one_of_stdin_and_the_prompt_file() {
    let dir = tempfile::tempdir().unwrap();
    let mcp = no_mcp();
    for kind in AgentKind::ALL {
        for perm in [Permission::Read, Permission::Edit, Permission::Full] {
            let c = kind.profile().command(&inv(dir.path(), perm, None, &mcp));
            let by_file = c.args.iter().any(|a| a == "/p/prompt.md");
            assert!(
                c.stdin_prompt != by_file,
                "{kind:?}: exactly one of stdin and the prompt file: {:?}",
                c.args
            );
        }
    }
}

#[test]
fn permissions_map_to_each_clis_own_flags() {
    let dir = tempfile::tempdir().unwrap();
    let mcp = no_mcp();
    let args = |k: AgentKind, p| k.profile().command(&inv(dir.path(), p, None, &mcp)).args;
    assert!(
        args(AgentKind::Claude, Permission::Read).contains(&"--permission-mode=dontAsk".into())
    );
    assert!(
        args(AgentKind::Claude, Permission::Edit).contains(&"--permission-mode=acceptEdits".into())
    );
    assert!(
        args(AgentKind::Claude, Permission::Full)
            .contains(&"--dangerously-skip-permissions".into())
    );
    assert!(
        args(AgentKind::Codex, Permission::Read)
            .windows(2)
            .any(|w| w == ["--sandbox", "read-only"])
    );
    assert!(
        args(AgentKind::Codex, Permission::Edit)
            .windows(2)
            .any(|w| w == ["--sandbox", "workspace-write"])
    );
    assert!(
        args(AgentKind::Gemini, Permission::Edit)
            .windows(2)
            .any(|w| w == ["--approval-mode", "auto_edit"])
    );
    assert!(args(AgentKind::Aider, Permission::Read).contains(&"--dry-run".into()));
    assert!(!args(AgentKind::Aider, Permission::Read).contains(&"--yes-always".into()));
    assert!(args(AgentKind::Aider, Permission::Edit).contains(&"--no-auto-commits".into()));
    assert!(
        args(AgentKind::Opencode, Permission::Read)
            .windows(2)
            .any(|w| w == ["--agent", "plan"])
    );
}

#[test]
fn reviewers_and_researchers_read_and_everyone_else_edits_unless_configured() {
    assert_eq!(Permission::for_role(Some("reviewer")), Permission::Read);
    assert_eq!(Permission::for_role(Some("researcher")), Permission::Read);
    assert_eq!(Permission::for_role(Some("implementer")), Permission::Edit);
    assert_eq!(Permission::for_role(None), Permission::Edit);
    let roles = BTreeMap::from([("architect".to_owned(), Permission::Read)]);
    let a = Agent::new(
        AgentSpec {
            agent: "claude".into(),
            ..Default::default()
        },
        roles,
        no_mcp(),
    )
    .unwrap();
    assert_eq!(a.permission(Some("architect")), Permission::Read);
    assert_eq!(a.permission(Some("tester")), Permission::Edit);
    assert!(
        Agent::new(
            AgentSpec {
                agent: "cursor".into(),
                ..Default::default()
            },
            BTreeMap::new(),
            no_mcp()
        )
        .is_err()
    );
}

#[test]
fn claudes_result_line_gives_message_tokens_cost_and_session() {
    let out = AgentKind::Claude.profile().parse(
        concat!(
            r#"{"type":"system","subtype":"init","session_id":"s-1","model":"m"}"#, "\n",
            r#"{"type":"result","subtype":"success","is_error":false,"result":"All done","session_id":"s-1","total_cost_usd":0.25,"usage":{"input_tokens":10,"cache_read_input_tokens":5,"output_tokens":7},"permission_denials":[{"tool_name":"Write","tool_input":{"file_path":"a.txt"}}]}"#
        ),
        "",
    );
    assert_eq!(out.message.as_deref(), Some("All done"));
    assert_eq!((out.tokens_in, out.tokens_out), (Some(15), Some(7)));
    assert_eq!(out.cost_usd, Some(0.25));
    assert_eq!(out.session.as_deref(), Some("s-1"));
    assert_eq!(out.denied, vec!["Write a.txt".to_owned()]);
    assert_eq!(out.error, None);
}

#[test]
fn codex_events_sum_turns_and_keep_the_last_message() {
    let out = AgentKind::Codex.profile().parse(
        concat!(
            r#"{"type":"thread.started","thread_id":"t-9"}"#, "\n",
            r#"{"type":"item.completed","item":{"id":"i1","type":"agent_message","text":"first"}}"#, "\n",
            r#"{"type":"turn.completed","usage":{"input_tokens":3,"cached_input_tokens":1,"output_tokens":2}}"#, "\n",
            r#"{"type":"item.completed","item":{"id":"i2","type":"agent_message","text":"second"}}"#, "\n",
            r#"{"type":"turn.completed","usage":{"input_tokens":4,"cached_input_tokens":0,"output_tokens":5}}"#
        ),
        "",
    );
    assert_eq!(out.message.as_deref(), Some("second"));
    assert_eq!((out.tokens_in, out.tokens_out), (Some(7), Some(7)));
    assert_eq!(out.session.as_deref(), Some("t-9"));
    let failed = AgentKind::Codex.profile().parse(
        r#"{"type":"turn.failed","error":{"message":"401 Unauthorized"}}"#,
        "",
    );
    assert_eq!(failed.error.as_deref(), Some("401 Unauthorized"));
}

#[test]
fn aiders_text_gives_tokens_cost_and_refused_edits() {
    let out = AgentKind::Aider.profile().parse(
        "Aider v0.86.2\nModel: openai/m1 with whole edit format\nI made the change.\nTokens: 2.3k sent, 120 received. Cost: $0.0025 message, $0.0040 session.\nDid not apply edit to a.txt (--dry-run)\n",
        "",
    );
    assert_eq!((out.tokens_in, out.tokens_out), (Some(2300), Some(120)));
    assert_eq!(out.cost_usd, Some(0.004));
    assert_eq!(out.message.as_deref(), Some("I made the change."));
    assert_eq!(out.denied, vec!["edit a.txt".to_owned()]);
}

#[test]
fn opencode_sums_steps_and_gemini_reads_its_result() {
    let oc = AgentKind::Opencode.profile().parse(
        concat!(
            r#"{"type":"step_start","sessionID":"ses_1","part":{}}"#, "\n",
            r#"{"type":"step_finish","sessionID":"ses_1","part":{"tokens":{"input":5,"output":1},"cost":0.5}}"#, "\n",
            r#"{"type":"step_start","sessionID":"ses_1","part":{}}"#, "\n",
            r#"{"type":"text","sessionID":"ses_1","part":{"text":"Finished"}}"#, "\n",
            r#"{"type":"step_finish","sessionID":"ses_1","part":{"tokens":{"input":6,"output":2},"cost":0.25,"reason":"stop"}}"#
        ),
        "",
    );
    assert_eq!(oc.message.as_deref(), Some("Finished"));
    assert_eq!(
        (oc.tokens_in, oc.tokens_out, oc.cost_usd),
        (Some(11), Some(3), Some(0.75))
    );
    assert_eq!(oc.session.as_deref(), Some("ses_1"));
    let g = AgentKind::Gemini.profile().parse(
        concat!(
            r#"{"type":"init","session_id":"g-1","model":"m"}"#,
            "\n",
            r#"{"type":"message","role":"assistant","content":"Hel","delta":true}"#,
            "\n",
            r#"{"type":"message","role":"assistant","content":"lo","delta":true}"#,
            "\n",
            r#"{"type":"result","status":"success","stats":{"input_tokens":9,"output_tokens":4}}"#
        ),
        "",
    );
    assert_eq!(g.message.as_deref(), Some("Hello"));
    assert_eq!((g.tokens_in, g.tokens_out), (Some(9), Some(4)));
    assert_eq!(g.session.as_deref(), Some("g-1"));
}

#[test]
fn mcp_servers_reach_every_cli_that_takes_them() {
    let dir = tempfile::tempdir().unwrap();
    let mcp = BTreeMap::from([(
        "downbeat".to_owned(),
        McpServer {
            command: "/bin/downbeat".into(),
            args: vec!["mcp".into()],
            env: BTreeMap::from([("DOWNBEAT_ACTOR".to_owned(), "agent".to_owned())]),
        },
    )]);
    let c = AgentKind::Claude
        .profile()
        .command(&inv(dir.path(), Permission::Edit, None, &mcp));
    assert!(
        c.args.contains(&"--allowedTools=mcp__downbeat".to_owned()),
        "{:?}",
        c.args
    );
    let cfg = std::fs::read_to_string(dir.path().join("claude-mcp.json")).unwrap();
    assert!(cfg.contains("/bin/downbeat"), "{cfg}");
    let c = AgentKind::Codex
        .profile()
        .command(&inv(dir.path(), Permission::Edit, None, &mcp));
    assert!(
        c.args
            .contains(&r#"mcp_servers.downbeat.command="/bin/downbeat""#.to_owned()),
        "{:?}",
        c.args
    );
    let c = AgentKind::Opencode
        .profile()
        .command(&inv(dir.path(), Permission::Edit, None, &mcp));
    assert!(c.env["OPENCODE_CONFIG_CONTENT"].contains("/bin/downbeat"));
    let c = AgentKind::Gemini
        .profile()
        .command(&inv(dir.path(), Permission::Edit, None, &mcp));
    assert!(c.env.contains_key("GEMINI_CLI_SYSTEM_SETTINGS_PATH"));
}

#[test]
fn a_retry_resumes_the_session_the_last_attempt_left() {
    let dir = tempfile::tempdir().unwrap();
    let mcp = no_mcp();
    let resumed = |k: AgentKind| {
        let c = k
            .profile()
            .command(&inv(dir.path(), Permission::Edit, Some("S1"), &mcp));
        [c.args, c.tail].concat()
    };
    assert!(resumed(AgentKind::Claude).contains(&"--resume=S1".to_owned()));
    assert!(
        resumed(AgentKind::Codex)
            .windows(2)
            .any(|w| w == ["resume", "S1"])
    );
    assert!(
        resumed(AgentKind::Gemini)
            .windows(2)
            .any(|w| w == ["--resume", "S1"])
    );
    assert!(
        resumed(AgentKind::Opencode)
            .windows(2)
            .any(|w| w == ["--session", "S1"])
    );
}

#[test]
fn extra_arguments_go_before_a_subcommands_positionals() {
    let dir = tempfile::tempdir().unwrap();
    let a = Agent::new(
        AgentSpec {
            agent: "codex".into(),
            args: vec!["-c".into(), "model_reasoning_effort=\"high\"".into()],
            ..Default::default()
        },
        BTreeMap::new(),
        no_mcp(),
    )
    .unwrap();
    let mcp = no_mcp();
    let ps = a.process_for(&inv(dir.path(), Permission::Edit, Some("S1"), &mcp));
    let n = ps.argv.len();
    assert_eq!(
        &ps.argv[n - 4..],
        ["-c", "model_reasoning_effort=\"high\"", "resume", "S1"]
    );
    let ps = a.process_for(&inv(dir.path(), Permission::Edit, None, &mcp));
    assert_eq!(ps.argv.last().map(String::as_str), Some("-"));
}

#[test]
fn gemini_gets_no_mcp_servers_where_it_would_skip_their_settings_file() {
    let p = AgentKind::Gemini.profile();
    assert!(!p.takes_mcp_in(Path::new("/tmp/project/.downbeat/runs/t/1")));
    assert!(
        AgentKind::Claude
            .profile()
            .takes_mcp_in(Path::new("/tmp/x"))
    );
}
