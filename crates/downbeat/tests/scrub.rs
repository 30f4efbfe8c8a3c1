//! Secrets an agent echoes do not stay in what it leaves behind: its output files, the error
//! and the summary in the ledger, what `logs` and `show` print.

mod common;

use common::Env;

const KEY: &str = "sk-ant-test-0123456789abcdef";

#[test]
fn a_key_an_agent_echoes_is_masked_in_its_logs_and_the_ledger() {
    let e = Env::builder()
        .fixed_clock()
        .var("ANTHROPIC_API_KEY", KEY)
        .var("PATH", "/usr/bin:/bin")
        .init()
        .build();
    e.write(
        "plan.toml",
        r#"[[tasks]]
key = "chatty"
title = "Say too much"
shell = '''echo "using key $ANTHROPIC_API_KEY"; printf '{"summary": "done with %s"}' "$ANTHROPIC_API_KEY" > "$DOWNBEAT_RESULT_FILE"'''

[[tasks]]
key = "failing"
title = "Fail loudly"
shell = '''echo "auth failed for $ANTHROPIC_API_KEY" >&2; exit 3'''
"#,
    );
    e.ok(&["plan", "apply", "plan.toml"]);
    let _ = e.run(&["run"]);
    let runs = e.path().join(".downbeat/runs");
    let mut seen = String::new();
    for entry in walk(&runs) {
        seen.push_str(&std::fs::read_to_string(&entry).unwrap_or_default());
    }
    assert!(seen.contains("using key ***"), "{seen}");
    assert!(seen.contains("auth failed for ***"), "{seen}");
    for args in [
        vec!["logs", "chatty"],
        vec!["show", "chatty"],
        vec!["show", "failing"],
        vec!["attempts", "failing", "--json"],
        vec!["log"],
    ] {
        let o = e.run(&args);
        let text =
            String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr);
        assert!(
            !text.contains(KEY),
            "`{}` shows the key: {text}",
            args.join(" ")
        );
    }
    assert_eq!(e.json(&["show", "chatty"])["result"], "done with ***");
    assert!(
        !seen.contains(KEY),
        "a file under .downbeat/runs keeps the key"
    );
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = entry.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out
}
