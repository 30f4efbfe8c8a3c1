//! The messages people read, as snapshots: errors that say where and how to undo, the status
//! words, the end of a run with a failure. Each changes only on purpose.

mod common;

use common::Env;

fn stderr_of(e: &Env, args: &[&str], code: i32) -> String {
    e.norm(&e.fails(args, code))
}

#[test]
fn error_messages() {
    let e = Env::builder()
        .fixed_clock()
        .tmp_placeholder()
        .init()
        .build();
    e.write("bad.yaml", "tasks:\n  - key: a\n    title: [unclosed\n");
    insta::assert_snapshot!(
        "yaml_error",
        stderr_of(&e, &["plan", "apply", "bad.yaml"], 4)
    );
    e.write(
        "plan.toml",
        "[[tasks]]\nkey = \"a\"\ntitle = \"A\"\nrole = \"nobody\"\n\n[[tasks]]\nkey = \"b\"\ntitle = \"B\"\ndepends_on = [\"zzz\"]\n",
    );
    insta::assert_snapshot!(
        "plan_problems",
        stderr_of(&e, &["plan", "apply", "plan.toml"], 4)
    );
    e.ok(&["add", "Design the schema", "--key", "a"]);
    e.ok(&["add", "Build the API", "--key", "b", "--after", "a"]);
    e.ok(&["add", "Backend", "--key", "p"]);
    e.ok(&["edit", "a", "--parent", "p"]);
    insta::assert_snapshot!("cycle", stderr_of(&e, &["dep", "add", "p", "--on", "b"], 5));
    let cfg = e.path().join(".downbeat/config.toml");
    e.write(&cfg, "[run]\nconcurrency = 4\nbogus_key = 1\n");
    insta::assert_snapshot!("config_error", stderr_of(&e, &["status"], 4));
}

#[test]
fn status_words_and_the_end_of_a_failed_run() {
    let e = Env::builder()
        .fixed_clock()
        .tmp_placeholder()
        .init()
        .build();
    e.ok(&[
        "add",
        "Build",
        "--key",
        "build",
        "--shell",
        "echo compiling; echo 'error: the compiler gave up' >&2; exit 2",
    ]);
    e.ok(&[
        "add", "Test", "--key", "test", "--after", "build", "--shell", "true",
    ]);
    e.ok(&["add", "Docs", "--key", "docs", "--shell", "true"]);
    e.ok(&["add", "Later", "--key", "later"]);
    e.ok(&["add", "Ship", "--key", "ship", "--after", "test"]);
    e.ok(&["block", "later", "--reason", "waiting for the legal review"]);
    let o = e.run(&["run", "--only", "build", "docs"]);
    assert_eq!(o.status.code(), Some(7));
    // The end of the run: the failure again with its last lines (timings vary: masked).
    let err = String::from_utf8_lossy(&o.stderr);
    let end = &err[err.find("failed (1):").expect(&err)..];
    insta::assert_snapshot!("failed_run_end", e.norm(end));
    insta::assert_snapshot!("status_with_stuck", e.ok(&["status"]));
    insta::assert_snapshot!("blocked_with_stuck", e.ok(&["blocked"]));
    insta::assert_snapshot!("list_with_stuck", e.ok(&["list"]));
}
