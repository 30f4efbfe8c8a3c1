//! Conventions of the command line: `log --follow`, `-C DIR`, `--quiet`, the derived status
//! words in filters.

mod common;

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::Duration;

use common::Env;

#[test]
fn log_follow_prints_changes_as_they_happen_until_sigterm() {
    let mut env = Env::builder().init().build();
    env.ok(&["add", "First", "--key", "first"]);
    let child = env
        .command(&["log", "--follow", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut child = child;
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    env.adopt(child);
    // What was there: one object a line.
    let first: serde_json::Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    assert_eq!(first["action"], "task.created");
    // What comes.
    env.ok(&["done", "first", "--result", "done it"]);
    let next: serde_json::Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    assert_eq!(next["action"], "task.status");
    assert_eq!(next["after"]["status"], "completed");
    assert_eq!(
        next["seq"].as_i64(),
        Some(first["seq"].as_i64().unwrap() + 1)
    );
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let child = env.children.iter_mut().find(|c| c.id() == pid).unwrap();
    let status = common::exit_within(child, Duration::from_secs(10), "log --follow after SIGTERM");
    assert!(status.success(), "{status:?}");
}

#[test]
fn log_follow_of_one_task_shows_only_its_changes() {
    let mut env = Env::builder().init().build();
    env.ok(&["add", "Watched", "--key", "watched"]);
    env.ok(&["add", "Other", "--key", "other"]);
    let mut child = env
        .command(&["log", "--follow", "--task", "watched"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    env.adopt(child);
    assert!(lines.next().unwrap().unwrap().contains("task.created"));
    env.ok(&["done", "other"]);
    env.ok(&["done", "watched"]);
    let line = lines.next().unwrap().unwrap();
    let id = env.json(&["show", "watched"])["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(line.contains("task.status") && line.contains(&id), "{line}");
}

#[test]
fn dash_c_runs_as_if_started_there() {
    let env = Env::builder().build();
    let sub = env.tmp().join("elsewhere");
    std::fs::create_dir_all(&sub).unwrap();
    env.ok(&["-C", "elsewhere", "init"]);
    assert!(sub.join(".downbeat/config.toml").is_file());
    env.ok(&["-C", "elsewhere", "add", "Over there"]);
    let titles: Vec<String> = env
        .json(&["-C", "elsewhere", "list"])
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["title"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(titles, ["Over there"]);
    let err = env.fails(&["-C", "nowhere", "status"], 3);
    assert!(err.contains("cannot change to nowhere"), "{err}");
}

#[test]
fn quiet_leaves_only_data_and_errors() {
    let env = Env::builder().init().build();
    let o = env.run(&["-q", "add", "Quietly"]);
    assert!(o.status.success());
    assert!(
        o.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).trim().len(),
        6,
        "the id, as data"
    );
    let loud = env.run(&["add", "Loudly"]);
    assert!(String::from_utf8_lossy(&loud.stderr).contains("created task"));
    // Errors still say what went wrong.
    let err = env.fails(&["--quiet", "show", "nosuch"], 3);
    assert!(err.contains("error:"), "{err}");
}

#[test]
fn list_filters_on_the_words_it_shows() {
    let env = Env::builder().init().build();
    env.ok(&["add", "First", "--key", "first"]);
    env.ok(&["add", "Second", "--key", "second", "--after", "first"]);
    env.ok(&["add", "Third", "--key", "third", "--after", "first"]);
    let keys = |args: &[&str]| -> Vec<String> {
        env.json(args)
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["key"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(keys(&["list", "--status", "ready"]), ["first"]);
    assert_eq!(keys(&["list", "--status", "waiting"]), ["second", "third"]);
    assert_eq!(
        keys(&["list", "--status", "waiting", "--limit", "1"]),
        ["second"]
    );
    assert_eq!(
        keys(&["list", "--status", "pending"]),
        ["first", "second", "third"]
    );
    env.ok(&["done", "first"]);
    assert_eq!(
        keys(&["list", "--status", "ready", "--status", "completed"]),
        ["first", "second", "third"]
    );
    let err = env.fails(&["list", "--status", "bogus"], 4);
    assert!(err.contains("ready, waiting"), "{err}");
}

#[test]
fn log_lines_read_as_words_not_json() {
    let env = Env::builder().fixed_clock().init().build();
    env.ok(&[
        "add",
        "Write the parser",
        "--key",
        "parser",
        "--role",
        "implementer",
    ]);
    env.ok(&[
        "decision",
        "add",
        "Use a hand-written lexer",
        "--why",
        "error messages",
    ]);
    env.ok(&["done", "parser", "--result", "parser in src/parse.rs"]);
    let log = env.ok(&["log"]);
    let lines: Vec<&str> = log.lines().collect();
    assert!(lines[0].ends_with("“Write the parser”, role: implementer, effort: 1, key: parser, priority: normal, status: pending"), "{log}");
    assert!(
        lines[1].ends_with("“Use a hand-written lexer”, why: error messages"),
        "{log}"
    );
    assert!(
        lines[2].ends_with(": pending → completed — parser in src/parse.rs"),
        "{log}"
    );
    assert!(!log.contains('{'), "{log}");
}

#[test]
fn under_json_an_error_is_one_envelope_on_stdout() {
    let env = Env::builder().init().build();
    let o = env.run(&["show", "nosuch", "--json"]);
    assert_eq!(o.status.code(), Some(3));
    assert!(
        o.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["error"]["kind"], "not_found");
    assert_eq!(v["error"]["code"], 3);
    assert_eq!(v["error"]["message"], "no task matches `nosuch`");
    assert!(
        v["error"]["hint"]
            .as_str()
            .unwrap()
            .contains("downbeat list")
    );
    let o = env.run(&["dep", "add", "nosuch", "--on", "other", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["error"]["code"].as_i64(), o.status.code().map(i64::from));
}

#[test]
fn status_watch_shows_the_status_again_when_the_graph_changes() {
    let mut env = Env::builder().init().build();
    env.ok(&["add", "First", "--key", "first"]);
    let mut child = env
        .command(&["status", "--watch", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    let out = child.stdout.take().unwrap();
    env.adopt(child);
    // One JSON document per change, read as a stream.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let docs = serde_json::Deserializer::from_reader(out).into_iter::<serde_json::Value>();
        for d in docs.flatten() {
            if tx.send(d).is_err() {
                break;
            }
        }
    });
    let first = rx.recv_timeout(Duration::from_secs(20)).unwrap();
    assert_eq!(first["done"], 0, "{first}");
    env.ok(&["done", "first"]);
    let next = rx.recv_timeout(Duration::from_secs(20)).unwrap();
    assert_eq!(next["done"], 1, "{next}");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let child = env.children.iter_mut().find(|c| c.id() == pid).unwrap();
    let status = common::exit_within(
        child,
        Duration::from_secs(10),
        "status --watch after SIGTERM",
    );
    assert!(status.success(), "{status:?}");
}

#[test]
fn colour_follows_no_color_clicolor_force_and_the_color_flag() {
    let esc = |s: &str| s.contains('\x1b');
    let base = Env::builder().init().build();
    base.ok(&["add", "First", "--key", "first"]);
    base.ok(&["done", "first"]);
    let dir = base.path().to_owned();
    let with = |vars: &[(&str, &str)], args: &[&str]| {
        let mut b = Env::builder();
        for (k, v) in vars {
            b = b.var(k, v);
        }
        let e = b.build();
        let mut all = vec!["-C", dir.to_str().unwrap()];
        all.extend_from_slice(args);
        e.run(&all)
    };
    // Not a terminal: plain text, the same as before.
    let plain = with(&[], &["list"]);
    assert!(!esc(&String::from_utf8_lossy(&plain.stdout)));
    // CLICOLOR_FORCE: the status word in its colour (green), the header bold.
    let forced = with(&[("CLICOLOR_FORCE", "1")], &["list"]);
    let out = String::from_utf8_lossy(&forced.stdout);
    assert!(out.contains("\x1b[32mcompleted\x1b[0m"), "{out:?}");
    assert!(out.contains("\x1b[1mSTATUS\x1b[0m"), "{out:?}");
    // Columns still line up: widths do not count escape codes.
    let stripped: Vec<String> = out
        .lines()
        .map(|l| {
            let mut s = String::new();
            let mut skip = false;
            for ch in l.chars() {
                match ch {
                    '\x1b' => skip = true,
                    'm' if skip => skip = false,
                    _ if skip => {}
                    _ => s.push(ch),
                }
            }
            s
        })
        .collect();
    assert_eq!(
        stripped[0].find("STATUS"),
        stripped[1].find("completed"),
        "{stripped:?}"
    );
    // NO_COLOR wins over CLICOLOR_FORCE; --color never and always win over both.
    let none = with(&[("CLICOLOR_FORCE", "1"), ("NO_COLOR", "1")], &["list"]);
    assert!(!esc(&String::from_utf8_lossy(&none.stdout)));
    let never = with(&[("CLICOLOR_FORCE", "1")], &["--color", "never", "list"]);
    assert!(!esc(&String::from_utf8_lossy(&never.stdout)));
    let always = with(&[("NO_COLOR", "1")], &["--color", "always", "list"]);
    assert!(esc(&String::from_utf8_lossy(&always.stdout)));
    // JSON is data: never painted.
    let json = with(&[("CLICOLOR_FORCE", "1")], &["list", "--json"]);
    assert!(!esc(&String::from_utf8_lossy(&json.stdout)));
    // Errors: `error:` and `hint:` painted on stderr when it gets colour.
    let err = with(&[("CLICOLOR_FORCE", "1")], &["show", "nothing-like-this"]);
    let text = String::from_utf8_lossy(&err.stderr);
    assert!(
        text.starts_with("\x1b[1m\x1b[31merror:\x1b[0m "),
        "{text:?}"
    );
    let err = with(&[], &["show", "nothing-like-this"]);
    assert!(String::from_utf8_lossy(&err.stderr).starts_with("error: "));
}

#[test]
fn status_words_agree_between_text_json_and_filters() {
    let e = Env::builder().init().build();
    e.ok(&["add", "Build", "--key", "build"]);
    e.ok(&["add", "Test", "--key", "test", "--after", "build"]);
    e.ok(&["add", "Ship", "--key", "ship", "--after", "test"]);
    e.ok(&["add", "Docs", "--key", "docs"]);
    e.ok(&["start", "build"]);
    e.ok(&["fail", "build", "--reason", "compiler crashed"]);
    // `test` and `ship` can only start after someone acts on `build`: stuck, not waiting.
    let status = e.json(&["status"]);
    assert_eq!(status["counts"]["stuck"], 2, "{status}");
    assert_eq!(status["counts"]["waiting"], 0, "{status}");
    let text = e.ok(&["status"]);
    assert!(text.contains("\n1 ready · 2 stuck · 1 failed\n"), "{text}");
    assert!(text.contains("Test [stuck]"), "{text}");
    let listed = e.ok(&["list", "--status", "stuck"]);
    assert!(
        listed.contains("Test") && listed.contains("Ship"),
        "{listed}"
    );
    assert!(!listed.contains("Docs"), "{listed}");
    let shown = e.json(&["show", "test"]);
    assert_eq!(shown["state"], "stuck", "{shown}");
    let blocked = e.ok(&["blocked"]);
    assert!(
        blocked.starts_with("failed, blocked or cancelled (1):"),
        "{blocked}"
    );
    assert!(!blocked.contains("held"), "{blocked}");
    // Once `build` is back to pending, the others only wait.
    e.ok(&["retry", "build"]);
    let text = e.ok(&["status"]);
    assert!(text.contains("\n2 ready · 2 waiting\n"), "{text}");
}

#[test]
fn errors_say_where_and_how_to_undo() {
    let e = Env::builder().init().build();
    // A YAML error says `error:` once.
    e.write("bad.yaml", "tasks:\n  - key: a\n    title: [unclosed\n");
    let err = e.fails(&["plan", "apply", "bad.yaml"], 4);
    assert_eq!(err.matches("error:").count(), 1, "{err}");
    assert!(
        err.starts_with("error: bad.yaml: line 3 column 12"),
        "{err}"
    );
    // A plan problem names the task and its line.
    e.write(
        "plan.toml",
        "[[tasks]]\nkey = \"a\"\ntitle = \"A\"\n\n[[tasks]]\nkey = \"b\"\ntitle = \"B\"\ndepends_on = [\"zzz\"]\n",
    );
    let err = e.fails(&["plan", "apply", "plan.toml"], 4);
    assert!(
        err.contains("  - task `b` (line 6): dependency `zzz`"),
        "{err}"
    );
    // A cycle through a container is told with titles, and each link with how to undo it.
    e.ok(&["add", "A", "--key", "a"]);
    e.ok(&["add", "B", "--key", "b", "--after", "a"]);
    e.ok(&["add", "Parent", "--key", "p"]);
    e.ok(&["edit", "a", "--parent", "p"]);
    let id = |k: &str| e.json(&["show", k])["id"].as_str().unwrap().to_owned();
    let (a, b, p) = (id("a"), id("b"), id("p"));
    let err = e.fails(&["dep", "add", "p", "--on", "b"], 5);
    assert!(
        err.contains(&format!("  → {b} \"B\" (waits for {a})")),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "  → {a} \"A\" (inside {p}, so it waits for what {p} waits for)"
        )),
        "{err}"
    );
    assert!(err.contains("the dependency being added"), "{err}");
    assert!(
        err.contains(&format!("`downbeat dep rm {b} --on {a}`"))
            && err.contains(&format!("`downbeat edit {a} --parent none`"))
            && !err.contains(&format!("dep rm {p} --on {b}")),
        "{err}"
    );
    // A configuration error points at the bad key, and the hint does not send to `init`.
    let cfg = e.path().join(".downbeat/config.toml");
    e.write(&cfg, "[run]\nconcurrency = 4\nbogus_key = 1\n");
    let err = e.fails(&["status"], 4);
    assert!(err.contains("line 3") && err.contains("bogus_key"), "{err}");
    assert!(err.contains("docs/configuration.md"), "{err}");
}

#[test]
fn verbose_says_where_output_goes_and_shows_more_of_a_failure() {
    let e = Env::builder().init().build();
    let script = (1..=12)
        .map(|i| format!("echo line{i} >&2"))
        .collect::<Vec<_>>()
        .join("; ");
    e.ok(&[
        "add",
        "Noisy",
        "--key",
        "noisy",
        "--shell",
        &format!("{script}; exit 1"),
    ]);
    let o = e.run(&["run", "-v"]);
    assert_eq!(o.status.code(), Some(7));
    let err = String::from_utf8_lossy(&o.stderr);
    let id = e.json(&["show", "noisy"])["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        err.contains(&format!(
            "output: {}",
            e.path()
                .join(".downbeat/runs")
                .join(&id)
                .join("1")
                .display()
        )),
        "{err}"
    );
    // The failure is told again at the end with its last lines: 30 with -v, so all 12 here.
    let told = &err[err.find("failed (1):").expect(&err)..];
    assert!(
        told.contains("│ line1\n") && told.contains("│ line12\n"),
        "{told}"
    );
    e.ok(&["retry", "noisy"]);
    let o = e.run(&["run"]);
    let err = String::from_utf8_lossy(&o.stderr);
    let told = &err[err.find("failed (1):").expect(&err)..];
    assert!(
        !told.contains("│ line7\n") && told.contains("│ line8\n") && told.contains("│ line12\n"),
        "{told}"
    );
    assert!(!err.contains("output: "), "{err}");
    // --quiet and --verbose do not go together.
    e.fails(&["-q", "-v", "status"], 2);
}
