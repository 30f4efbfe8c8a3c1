//! End-to-end behaviour of the `downbeat` binary, in temp directories with a fixed clock.

mod common;

use common::{Env, NOW, example};

impl Env {
    fn new() -> Self {
        Env::builder().fixed_clock().actor("tester").build()
    }

    fn initialised() -> Self {
        let e = Self::new();
        e.ok(&["init"]);
        e
    }

    fn with_example() -> Self {
        let e = Self::initialised();
        e.ok(&[
            "plan",
            "apply",
            example("rate-limiting.toml").to_str().unwrap(),
        ]);
        e
    }
}

#[test]
fn a_fresh_project_plans_the_example() {
    let e = Env::with_example();
    insta::assert_snapshot!("ready_after_apply", e.ok(&["ready"]));
    insta::assert_snapshot!("waves_after_apply", e.ok(&["waves"]));
    insta::assert_snapshot!("status_after_apply", e.ok(&["status"]));
    insta::assert_snapshot!("graph_mermaid", e.ok(&["graph", "--format", "mermaid"]));
    let dot = e.ok(&["graph", "--format", "dot"]);
    assert!(
        dot.starts_with("digraph downbeat {") && dot.trim_end().ends_with('}'),
        "{dot}"
    );
    let g = e.json(&["graph", "--format", "json"]);
    assert_eq!(g["tasks"].as_array().unwrap().len(), 11);
}

#[test]
fn init_is_idempotent_and_says_so() {
    let e = Env::initialised();
    let o = e.run(&["init"]);
    assert!(o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("nothing changed"));
    assert!(e.path().join(".downbeat/config.toml").exists());
}

#[test]
fn work_moves_through_the_graph() {
    let e = Env::with_example();
    let err = e.fails(&["start", "middleware"], 5);
    assert!(err.contains("waits on unfinished work"), "{err}");
    assert!(err.contains("--force"), "{err}");
    e.ok(&["start", "design"]);
    e.ok(&["done", "design", "--result", "token bucket per client"]);
    let ready: Vec<String> = e
        .json(&["ready"])
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["key"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ready.len(), 2);
    assert!(ready.contains(&"middleware".to_owned()) && ready.contains(&"redis".to_owned()));
    e.ok(&["start", "redis"]);
    e.ok(&["fail", "redis", "--reason", "no redis in staging"]);
    insta::assert_snapshot!("blocked_after_failure", e.ok(&["blocked"]));
    let err = e.fails(&["done", "redis"], 5);
    assert!(
        err.contains("cannot move a failed task to completed"),
        "{err}"
    );
    e.ok(&["reopen", "redis"]);
    let show = e.json(&["show", "design"]);
    assert_eq!(show["status"], "completed");
    assert_eq!(show["result"], "token bucket per client");
    assert_eq!(show["events"].as_array().unwrap().len(), 3);
}

#[test]
fn added_tasks_and_dependencies() {
    let e = Env::initialised();
    let a = e
        .ok(&[
            "add",
            "Design auth schema",
            "--role",
            "architect",
            "--effort",
            "3",
        ])
        .trim()
        .to_owned();
    let b = e
        .ok(&[
            "add",
            "Build login",
            "--role",
            "implementer",
            "--after",
            &a,
            "--key",
            "login",
        ])
        .trim()
        .to_owned();
    assert_eq!(a.len(), 6);
    let err = e.fails(&["dep", "add", &a, "--on", "login"], 5);
    assert!(err.contains("dependency cycle:\n"), "{err}");
    assert!(
        err.contains(&format!("→ {b} \"Build login\" (waits for {a})")),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "→ {a} \"Design auth schema\" (would wait for {b}: the dependency being added)"
        )),
        "{err}"
    );
    assert!(err.contains("hint:"), "{err}");
    let err = e.fails(&["add", "x", "--role", "wizard"], 4);
    assert!(
        err.contains("unknown role `wizard`") && err.contains("architect"),
        "{err}"
    );
    let err = e.fails(&["add", "x", "--priority", "urgent"], 4);
    assert!(err.contains("unknown priority"), "{err}");
    e.ok(&["dep", "add", &a, "--on", "login", "--kind", "related"]);
    let out = e.ok(&["dep", "rm", "login", "--on", &a]);
    assert!(out.contains("no longer depends on"), "{out}");
    let list = e.json(&["list"]);
    assert!(
        list.as_array()
            .unwrap()
            .iter()
            .all(|t| t["state"] == "ready")
    );
    e.ok(&[
        "edit",
        "login",
        "--title",
        "Build login form",
        "--tag",
        "auth",
    ]);
    let found = e.json(&["list", "--tag", "auth"]);
    assert_eq!(found[0]["title"], "Build login form");
}

#[test]
fn bad_input_gets_clear_errors_and_exit_codes() {
    let e = Env::new();
    let err = e.fails(&["status"], 3);
    assert!(
        err.contains("no downbeat project") && err.contains("downbeat init"),
        "{err}"
    );
    e.ok(&["init"]);
    let err = e.fails(&["show", "zzzzzz"], 3);
    assert!(err.contains("no task matches `zzzzzz`"), "{err}");
    e.fails(&["list", "--bogus"], 2);
    let bad = e.write(
        "bad.toml",
        "[[tasks]]\ntitle = \"ok\"\n\n[[tasks]]\ntitle = \n",
    );
    let err = e.fails(&["plan", "apply", bad.to_str().unwrap()], 4);
    assert!(err.contains("line 5"), "{err}");
    let bad = e.write(
        "refs.toml",
        "[[tasks]]\nkey = \"a\"\ntitle = \"A\"\ndepends_on = [\"ghost\"]\nrole = \"wizard\"\n",
    );
    let err = e.fails(&["plan", "apply", bad.to_str().unwrap()], 4);
    assert!(
        err.contains("2 problems") && err.contains("`ghost`") && err.contains("wizard"),
        "{err}"
    );
    let cyc = e.write("cycle.toml", "[[tasks]]\nkey = \"a\"\ntitle = \"A\"\ndepends_on = [\"b\"]\n[[tasks]]\nkey = \"b\"\ntitle = \"B\"\ndepends_on = [\"a\"]\n");
    let err = e.fails(&["plan", "apply", cyc.to_str().unwrap()], 5);
    assert!(
        err.contains("dependency cycle: a → b → a") || err.contains("dependency cycle: b → a → b"),
        "{err}"
    );
    let err = e.fails(&["plan", "apply", "missing.toml"], 3);
    assert!(err.contains("cannot read missing.toml"), "{err}");
    let err = e.fails(
        &["plan", "apply", e.write("plan.txt", "").to_str().unwrap()],
        4,
    );
    assert!(err.contains("unknown plan format"), "{err}");
    // Nothing of the failed plans was written.
    assert_eq!(e.json(&["list"]).as_array().unwrap().len(), 0);
    let err = e.fails(&["log", "--since", "yesterday"], 4);
    assert!(err.contains("invalid duration"), "{err}");
    let err = e.fails(
        &["decision", "add", "x", "--why", "y", "--supersedes", "o1"],
        4,
    );
    assert!(err.contains("not a decision id"), "{err}");
    let err = e.fails(&["--db", "postgres://u:secret@db/x", "status"], 6);
    assert!(!err.contains("secret"), "{err}");
}

#[test]
fn a_newer_schema_is_refused() {
    let e = Env::initialised();
    let db = e.path().join(".downbeat/downbeat.db");
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        use sqlx::ConnectOptions;
        let mut c = sqlx::sqlite::SqliteConnectOptions::new().filename(&db).connect().await.unwrap();
        sqlx::query("INSERT INTO _sqlx_migrations(version, description, installed_on, success, checksum, execution_time) VALUES (9999, 'future', CURRENT_TIMESTAMP, 1, x'00', 0)")
            .execute(&mut c)
            .await
            .unwrap();
    });
    let err = e.fails(&["status"], 6);
    assert!(err.contains("newer than this downbeat"), "{err}");
}

#[test]
fn a_read_only_project_is_reported() {
    // Root ignores permissions, so this only means something as an ordinary user.
    if std::fs::metadata("/root")
        .map(|m| m.permissions().readonly())
        .unwrap_or(false)
        || is_root()
    {
        return;
    }
    let e = Env::initialised();
    use std::os::unix::fs::PermissionsExt;
    let d = e.path().join(".downbeat");
    std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o555)).unwrap();
    let o = e.run(&["add", "x"]);
    std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o755)).unwrap();
    assert_ne!(o.status.code(), Some(0));
    assert!(!String::from_utf8_lossy(&o.stderr).contains("panicked"));
}

fn is_root() -> bool {
    std::process::Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout.starts_with(b"0"))
        .unwrap_or(false)
}

#[test]
fn handover_is_deterministic_and_complete() {
    let e = Env::with_example();
    e.ok(&["session", "start", "first pass"]);
    e.ok(&["start", "design"]);
    e.ok(&[
        "insight",
        "add",
        "the gateway already counts requests",
        "--task",
        "design",
    ]);
    let path = e.ok(&["handover"]);
    let first = std::fs::read(path.trim()).unwrap();
    e.ok(&["handover"]);
    let second = std::fs::read(path.trim()).unwrap();
    assert_eq!(first, second, "same database, same bytes");
    let text = String::from_utf8(first).unwrap();
    insta::assert_snapshot!("handover", text);
    // A new decision shows up as new in the next handover, then no longer.
    e.ok(&[
        "decision",
        "add",
        "Fail open when Redis is down",
        "--why",
        "availability first",
    ]);
    let third = std::fs::read_to_string(e.ok(&["handover"]).trim()).unwrap();
    let new_part = third
        .split("## Decisions since the last handover")
        .nth(1)
        .unwrap()
        .split("##")
        .next()
        .unwrap()
        .split("Earlier")
        .next()
        .unwrap()
        .to_owned();
    assert!(new_part.contains("d2 Fail open"), "{new_part}");
    assert!(!new_part.contains("d1 "), "{new_part}");
    e.ok(&["add", "unrelated"]);
    let fourth = std::fs::read_to_string(e.ok(&["handover"]).trim()).unwrap();
    let new_part = fourth
        .split("## Decisions since the last handover")
        .nth(1)
        .unwrap()
        .split("##")
        .next()
        .unwrap()
        .split("Earlier")
        .next()
        .unwrap()
        .to_owned();
    assert!(new_part.contains("None."), "{new_part}");
}

#[test]
fn resume_brief_stays_compact_for_500_tasks() {
    let e = Env::initialised();
    let mut plan = String::new();
    plan.push_str("[[objectives]]\ntitle = \"Ship the big thing\"\ntasks = [\"t0\"]\n");
    for i in 0..500 {
        plan.push_str(&format!(
            "[[tasks]]\nkey = \"t{i}\"\ntitle = \"Task number {i} with a reasonably long descriptive title to stress the brief\"\nrole = \"implementer\"\n"
        ));
        if i >= 100 {
            plan.push_str(&format!("depends_on = [\"t{}\"]\n", i % 100));
        }
    }
    let p = e.write("big.toml", &plan);
    e.ok(&["plan", "apply", p.to_str().unwrap()]);
    for i in 0..5 {
        e.ok(&["start", &format!("t{i}")]);
        e.ok(&[
            "decision",
            "add",
            &format!("Decision {i}"),
            "--why",
            "because of reasons that matter",
        ]);
    }
    let brief = e.ok(&["session", "resume"]);
    assert!(
        brief.len() < 6 * 1024,
        "brief is {} bytes:\n{brief}",
        brief.len()
    );
    assert!(
        brief.contains("In flight:")
            && brief.contains("Next (ready now):")
            && brief.contains("Objectives:"),
        "{brief}"
    );
    assert!(brief.contains("and 87 more ready tasks"), "{brief}");
}

#[test]
fn maintenance_finds_stale_work_and_applies_only_when_asked() {
    let mut e = Env::with_example();
    e.ok(&["start", "design"]);
    e.set_clock("2026-03-03T09:00:00Z"); // two days later
    let report = e.ok(&["maintain"]);
    assert!(
        report.contains("stale:") && report.contains("dry run"),
        "{report}"
    );
    assert_eq!(
        e.json(&["show", "design"])["status"],
        "running",
        "a dry run changes nothing"
    );
    e.ok(&["maintain", "--apply"]);
    assert_eq!(e.json(&["show", "design"])["status"], "pending");
    let log = e.ok(&["log", "--task", "design"]);
    assert!(log.contains("running → pending"), "{log}");
    // Archive: finish everything, then look again 40 days later.
    e.ok(&["start", "design"]);
    e.ok(&["done", "design"]);
    e.set_clock("2026-04-20T09:00:00Z");
    let report = e.ok(&["maintain", "--json"]);
    assert!(
        !report.contains("\"archive\""),
        "unfinished subtrees are not archived: {report}"
    );
}

#[test]
fn old_finished_work_is_archived_on_apply() {
    let mut e = Env::initialised();
    let plan = e.write(
        "p.toml",
        "[[tasks]]\nkey = \"epic\"\ntitle = \"Epic\"\n[[tasks]]\nkey = \"a\"\ntitle = \"A\"\nparent = \"epic\"\n[[tasks]]\nkey = \"b\"\ntitle = \"B\"\nparent = \"epic\"\n[[tasks]]\nkey = \"later\"\ntitle = \"Later\"\ndepends_on = [\"epic\"]\n",
    );
    e.ok(&["plan", "apply", plan.to_str().unwrap()]);
    e.ok(&["done", "a"]);
    e.ok(&["skip", "b"]);
    e.set_clock("2026-04-20T09:00:00Z");
    let report = e.ok(&["maintain"]);
    assert!(
        report.contains("archive:") && report.contains("(3 task(s))"),
        "{report}"
    );
    let applied = e.ok(&["maintain", "--apply"]);
    assert!(
        applied.contains("archived 3 task(s)") && applied.contains("optimised"),
        "{applied}"
    );
    let live: Vec<String> = e
        .json(&["list"])
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["key"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(live, ["later"]);
    assert_eq!(e.json(&["list", "--all"]).as_array().unwrap().len(), 4);
    // Archived work still satisfies its dependents.
    assert_eq!(e.json(&["ready"])[0]["key"], "later");
    let log = e.ok(&["log", "--since", "1h"]);
    assert_eq!(log.matches("task.archived").count(), 3, "{log}");
    assert!(log.contains("maintain.optimized"), "{log}");
}

#[test]
fn two_processes_write_at_once_without_losing_anything() {
    let e = Env::initialised();
    let spawn = |tag: &str| {
        let script = format!(
            "for i in $(seq 1 15); do {} add \"{tag} $i\" >/dev/null || exit 1; done",
            assert_cmd::cargo::cargo_bin("downbeat").display()
        );
        let mut sh = std::process::Command::new("sh");
        sh.current_dir(e.path())
            .env_clear()
            .env("DOWNBEAT_NOW", NOW)
            .arg("-c")
            .arg(script);
        sh.spawn().unwrap()
    };
    let mut a = spawn("a");
    let mut b = spawn("b");
    assert!(a.wait().unwrap().success());
    assert!(b.wait().unwrap().success());
    assert_eq!(e.json(&["list"]).as_array().unwrap().len(), 30);
    let m = e.json(&["metrics"]);
    assert_eq!(m["events"], 30);
}

#[test]
fn context_records_and_metrics() {
    let e = Env::with_example();
    e.ok(&[
        "objective",
        "add",
        "Document the limits",
        "--task",
        "api-docs",
    ]);
    e.ok(&["objective", "done", "o1"]);
    insta::assert_snapshot!("objectives", e.ok(&["objective", "list"]));
    let err = e.fails(&["objective", "done", "o9"], 3);
    assert!(err.contains("no objective matches `o9`"), "{err}");
    e.ok(&["session", "start"]);
    let status = e.ok(&["session", "status"]);
    assert!(status.contains("session s1"), "{status}");
    e.ok(&["session", "end"]);
    e.fails(&["session", "end"], 3);
    let roles = e.ok(&["roles"]);
    assert!(
        roles.contains("architect") && roles.contains("researcher"),
        "{roles}"
    );
    std::fs::write(e.path().join(".downbeat/roles/security.toml"), "description = \"Audits security\"\nprompt = \"You are the security auditor.\"\nmax_parallel = 1\n").unwrap();
    let roles = e.ok(&["roles", "security"]);
    assert!(roles.contains("You are the security auditor."), "{roles}");
    std::fs::write(
        e.path().join(".downbeat/roles/broken.toml"),
        "descripton = 1\n",
    )
    .unwrap();
    let err = e.fails(&["roles"], 4);
    assert!(
        err.contains("broken.toml") && err.contains("unknown field"),
        "{err}"
    );
}

#[test]
fn yaml_and_json_plans_apply_too() {
    let e = Env::initialised();
    e.ok(&[
        "plan",
        "apply",
        example("checkout-performance.yaml").to_str().unwrap(),
    ]);
    let j = e.write(
        "p.json",
        r#"{"tasks":[{"key":"x","title":"From JSON","role":"researcher"}]}"#,
    );
    e.ok(&["plan", "check", j.to_str().unwrap()]);
    e.ok(&["plan", "apply", j.to_str().unwrap()]);
    let waves = e.json(&["waves"]);
    assert!(waves["waves"].as_array().unwrap().len() >= 3, "{waves}");
    assert!(waves["role_caps"].as_array().unwrap().is_empty());
}

#[test]
fn named_groups_cap_their_roles_together() {
    let e = Env::initialised();
    let config = e.path().join(".downbeat/config.toml");
    std::fs::write(
        &config,
        "[groups.heavy]\nmax_parallel = 2\nroles = [\"implementer\", \"tester\"]\n",
    )
    .unwrap();
    let mut plan = String::new();
    for role in ["implementer", "implementer", "tester", "tester", "reviewer"] {
        plan.push_str(&format!(
            "[[tasks]]\ntitle = \"{role}\"\nrole = \"{role}\"\n"
        ));
    }
    let p = e.write("p.toml", &plan);
    e.ok(&["plan", "apply", p.to_str().unwrap()]);
    let w = e.json(&["waves"]);
    // Four tasks of the group at two at a time: two waves, the reviewer in the first.
    assert_eq!(w["waves"].as_array().unwrap().len(), 2, "{w}");
    assert_eq!(w["waves"][0].as_array().unwrap().len(), 3, "{w}");
    assert_eq!(w["groups"][0]["name"], "heavy", "{w}");
    assert!(
        e.ok(&["waves"])
            .contains("group heavy: implementer + tester ≤ 2")
    );
    // Mistakes name the group and the role.
    std::fs::write(
        &config,
        "[groups.heavy]\nmax_parallel = 2\nroles = [\"implementr\"]\n",
    )
    .unwrap();
    let err = e.fails(&["waves"], 4);
    assert!(
        err.contains("[groups.heavy] names an unknown role `implementr`"),
        "{err}"
    );
    std::fs::write(
        &config,
        "[roles.tester]\nmax_parallel = 1\n[groups.heavy]\nmax_parallel = 2\nroles = [\"tester\"]\n",
    )
    .unwrap();
    let err = e.fails(&["waves"], 4);
    assert!(
        err.contains("group `heavy`: role `tester` has a max_parallel of its own"),
        "{err}"
    );
    std::fs::write(&config, "[groups.heavy]\nroles = [\"tester\"]\n").unwrap();
    let err = e.fails(&["waves"], 4);
    assert!(err.contains("max_parallel"), "{err}");
}

#[test]
fn role_caps_and_footprints_shape_the_waves() {
    let e = Env::initialised();
    std::fs::write(
        e.path().join(".downbeat/config.toml"),
        "[roles.tester]\nmax_parallel = 2\n",
    )
    .unwrap();
    let mut plan = String::new();
    for i in 0..5 {
        plan.push_str(&format!(
            "[[tasks]]\ntitle = \"test {i}\"\nrole = \"tester\"\n"
        ));
    }
    plan.push_str("[[tasks]]\ntitle = \"edit a\"\nfiles = [\"src/a.rs\"]\n[[tasks]]\ntitle = \"edit dir\"\nfiles = [\"src/\"]\n");
    let p = e.write("p.toml", &plan);
    e.ok(&["plan", "apply", p.to_str().unwrap()]);
    let w = e.json(&["waves"]);
    let waves = w["waves"].as_array().unwrap();
    assert_eq!(waves.len(), 3, "{w}");
    let err = std::fs::write(
        e.path().join(".downbeat/config.toml"),
        "[planner]\nworkerz = [1]\n",
    );
    assert!(err.is_ok());
    let err = e.fails(&["waves"], 4);
    assert!(err.contains("unknown field `workerz`"), "{err}");
}

#[test]
fn done_is_refused_while_dependencies_are_unfinished() {
    let e = Env::with_example();
    let err = e.fails(&["done", "middleware", "--result", "early"], 5);
    assert!(err.contains("waits on unfinished work"), "{err}");
    assert!(err.contains("Design the rate limiting model"), "{err}");
    assert!(err.contains("--force"), "{err}");
    let t = e.json(&["show", "middleware"]);
    assert_eq!(t["status"], "pending", "{t}");
    // A task started early with --force still cannot complete early without it.
    e.ok(&["start", "middleware", "--force"]);
    e.fails(&["done", "middleware"], 5);
    let done = e.json(&["done", "middleware", "--force", "--result", "forced"]);
    assert_eq!(done["tasks"][0]["status"], "completed", "{done}");
    // With its dependency done, no force is needed.
    e.ok(&["start", "design"]);
    e.ok(&["done", "design"]);
    e.ok(&["start", "redis"]);
    e.ok(&["done", "redis"]);
}

#[test]
fn a_database_url_of_an_unsupported_kind_is_refused_before_anything_is_created() {
    let e = Env::builder().build();
    let err = e.fails(&["--db", "mysql://u:secret@localhost/x", "init"], 6);
    assert!(err.contains("`mysql` databases are not supported"), "{err}");
    assert!(!err.contains("secret"), "{err}");
    assert!(!e.path().join(".downbeat").exists(), "nothing was created");
    let err = e.fails(&["--db", "mysql://localhost/x", "status"], 6);
    assert!(err.contains("sqlite:PATH or postgres://"), "{err}");
}

#[test]
fn completions_and_the_manual_come_from_the_command_definitions() {
    let e = Env::builder().build();
    let bash = e.ok(&["completions", "bash"]);
    assert!(
        bash.contains("downbeat") && bash.contains("agents"),
        "{bash}"
    );
    let script = e.write("downbeat.bash", &bash);
    let check = std::process::Command::new("bash")
        .arg("-n")
        .arg(&script)
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    // Bash completes a subcommand from the generated function.
    let complete = std::process::Command::new("bash")
        .arg("-c")
        .arg(format!(
            "source {}; COMP_WORDS=(downbeat li); COMP_CWORD=1; COMP_LINE='downbeat li'; COMP_POINT=11; _downbeat downbeat li downbeat; echo \"${{COMPREPLY[@]}}\"",
            script.display()
        ))
        .output()
        .unwrap();
    let offered = String::from_utf8_lossy(&complete.stdout);
    assert!(
        offered.split_whitespace().any(|w| w == "list"),
        "{offered:?}"
    );
    // zsh and fish parse theirs (CI installs both; DOWNBEAT_REQUIRE_SHELLS makes them required).
    let required = std::env::var_os("DOWNBEAT_REQUIRE_SHELLS").is_some();
    for (shell, check) in [("zsh", &["-n"][..]), ("fish", &["--no-execute"][..])] {
        let text = e.ok(&["completions", shell]);
        assert!(text.contains("downbeat"), "{shell}");
        let file = e.write(format!("downbeat.{shell}"), &text);
        match std::process::Command::new(shell)
            .args(check)
            .arg(&file)
            .output()
        {
            Ok(o) => assert!(
                o.status.success(),
                "{shell} does not parse its completions: {}",
                String::from_utf8_lossy(&o.stderr)
            ),
            Err(err) if !required => eprintln!("{shell} not installed ({err}): not parsed here"),
            Err(err) => panic!("{shell} is required here (DOWNBEAT_REQUIRE_SHELLS): {err}"),
        }
    }
    for shell in ["powershell", "elvish"] {
        assert!(
            e.ok(&["completions", shell]).contains("downbeat"),
            "{shell}"
        );
    }
    let man = e.ok(&["man"]);
    assert!(
        man.starts_with(".ie") && man.contains(".TH downbeat 1"),
        "{man}"
    );
    e.fails(&["completions", "tcsh"], 2);
}

#[test]
fn init_keeps_what_runs_leave_behind_out_of_git() {
    let e = Env::builder().init().build();
    let gi = e.read(&e.path().join(".downbeat/.gitignore"));
    for entry in ["downbeat.db*", "runs/", "reports/", "artifacts/"] {
        assert!(gi.lines().any(|l| l == entry), "{entry}: {gi}");
    }
}
