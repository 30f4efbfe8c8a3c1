//! The `downbeat` binary against PostgreSQL: init, plan apply, run and status in a schema of
//! its own, created fresh and dropped at the end.
//!
//! The server comes from `DOWNBEAT_TEST_POSTGRES_URL`, else `postgres://postgres@127.0.0.1:5432/test`.

mod common;

use common::{Env, example};

impl Env {
    fn new() -> Self {
        Env::builder()
            .keep_prefix("PG")
            .postgres("cli")
            .fixed_clock()
            .actor("tester")
            .build()
    }
}

#[test]
fn init_plan_run_and_status_against_postgres() {
    let e = Env::new();
    // Before `init` the schema does not exist: the error says what to do.
    let o = e.cmd(&["status"]).output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(err.contains("downbeat init"), "{err}");

    let init = e.json(&["init"]);
    assert_eq!(init["created"], true);
    let location = init["database"].as_str().unwrap();
    assert!(location.starts_with("postgres"), "{location}");

    e.ok(&[
        "plan",
        "apply",
        example("rate-limiting.toml").to_str().unwrap(),
    ]);
    let before = e.json(&["status"]);
    assert_eq!(before["counts"]["total"], 10);
    assert_eq!(before["counts"]["completed"], 0);

    e.ok(&["run", "--executor", "noop"]);

    let after = e.json(&["status"]);
    assert_eq!(after["counts"]["total"], 10, "{after}");
    assert_eq!(after["counts"]["completed"], 10, "{after}");
    assert_eq!(after["counts"]["failed"], 0, "{after}");
    // `init` again leaves the project alone.
    assert_eq!(e.json(&["init"])["created"], false);
}

/// Downbeat's credentials never reach an agent: the database URL loses its password, the MCP
/// token is gone, and Downbeat's own MCP server (which would need the password) is not handed
/// over. The runner itself still reaches the database.
#[test]
fn agents_never_see_downbeats_credentials() {
    let e = Env::builder().postgres("agent_env").init().build();
    let with_password =
        e.url()
            .replacen("postgres://postgres@", "postgres://postgres:sekret-pw@", 1);
    assert_ne!(with_password, e.url(), "the test URL names the user");
    e.append(
        ".downbeat/config.toml",
        "[executors.look]\ntype = \"process\"\nshell = \"env > seen-env.txt\"\n",
    );
    let run = |args: &[&str]| {
        let o = e
            .command(args)
            .env("DOWNBEAT_DATABASE_URL", &with_password)
            .env("DOWNBEAT_MCP_TOKEN", "mcp-bearer-secret")
            .env("DOWNBEAT_WEB_TOKEN", "web-token-secret-0123456789")
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    };
    run(&["add", "look around", "--key", "look", "--executor", "look"]);
    run(&["run"]);
    let seen = std::fs::read_to_string(e.path().join("seen-env.txt")).unwrap();
    assert!(
        !seen.contains("sekret-pw"),
        "the password reached the agent"
    );
    assert!(
        !seen.contains("mcp-bearer-secret"),
        "the MCP token reached the agent"
    );
    assert!(
        !seen.contains("web-token-secret"),
        "the web token reached the agent"
    );
    assert!(
        seen.contains("DOWNBEAT_DATABASE_URL=postgres://postgres:***@"),
        "{seen}"
    );
}
