//! The README's sample output is what the commands print: each ```text block that starts with
//! `$ downbeat …` is run on the example plan and compared line by line.

mod common;

use common::{Env, example};

/// The README's samples: (command line, expected output).
fn samples() -> Vec<(String, String)> {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    let mut out = Vec::new();
    let mut rest = readme.as_str();
    while let Some(i) = rest.find("```text\n$ downbeat ") {
        let block = &rest[i + "```text\n".len()..];
        let end = block.find("```").unwrap();
        let (first, body) = block[..end].split_once('\n').unwrap();
        out.push((first.trim_start_matches("$ ").to_owned(), body.to_owned()));
        rest = &block[end..];
    }
    out
}

#[test]
fn the_readme_samples_are_real_output() {
    let e = Env::builder().fixed_clock().init().build();
    e.ok(&[
        "plan",
        "apply",
        example("rate-limiting.toml").to_str().unwrap(),
    ]);
    let samples = samples();
    assert!(!samples.is_empty(), "no sample found in the README");
    for (cmd, expected) in samples {
        let args: Vec<&str> = cmd.split_whitespace().skip(1).collect();
        let actual = e.ok(&args);
        assert_eq!(
            actual, expected,
            "`{cmd}` no longer prints what the README shows"
        );
    }
}

/// The README's first command (the one that installs and runs the main job): its steps after
/// `cargo install`, each a `downbeat …` command line.
fn first_command() -> Vec<Vec<String>> {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    let section = &readme[readme.find("## Two commands").unwrap()..];
    let block = &section[section.find("```sh\n").unwrap() + 6..];
    let line = block[..block.find("```").unwrap()].trim();
    assert!(
        line.starts_with("cargo install --locked --path crates/downbeat && "),
        "{line}"
    );
    line.split(" && ")
        .filter(|step| step.starts_with("downbeat "))
        .map(|step| step.split_whitespace().skip(1).map(str::to_owned).collect())
        .collect()
}

#[test]
fn the_first_command_runs_real_work_in_parallel_and_writes_a_report() {
    let e = Env::builder().build();
    let git = |args: &[&str]| {
        let o = std::process::Command::new("git")
            .args(["-c", "user.name=Ada", "-c", "user.email=ada@example.com"])
            .args(args)
            .current_dir(e.path())
            .output()
            .unwrap();
        assert!(o.status.success(), "git {args:?}: {o:?}");
    };
    git(&["init", "-q"]);
    e.write(
        "src/main.rs",
        "fn main() {\n    // TODO: say more\n    println!(\"hi\");\n}\n",
    );
    e.write("src/lib.rs", "pub fn one() -> u32 {\n    1\n}\n");
    e.write("README.md", "# tiny\n");
    std::fs::create_dir_all(e.path().join("examples")).unwrap();
    std::fs::copy(
        example("repo-report.toml"),
        e.path().join("examples/repo-report.toml"),
    )
    .unwrap();
    git(&["add", "-A"]);
    git(&["commit", "-q", "-m", "first commit"]);

    let steps = first_command();
    let words: Vec<&str> = steps.iter().map(|s| s[0].as_str()).collect();
    assert_eq!(words, ["init", "plan", "run"], "{steps:?}");
    assert_eq!(steps[1], ["plan", "apply", "examples/repo-report.toml"]);
    for step in &steps[..2] {
        let args: Vec<&str> = step.iter().map(String::as_str).collect();
        e.ok(&args);
    }
    // Four tasks in the first wave, the report after them.
    let waves = e.json(&["waves"]);
    let sizes: Vec<usize> = waves["waves"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w.as_array().map_or(0, Vec::len))
        .collect();
    assert_eq!(sizes, [4, 1], "{waves}");
    let mut run: Vec<&str> = steps[2].iter().map(String::as_str).collect();
    run.push("--json");
    let events = e.ok(&run);
    let started = events
        .lines()
        .filter(|l| l.contains("\"attempt-started\""))
        .count();
    assert_eq!(started, 5, "{events}");
    let finished: Vec<serde_json::Value> = events
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["event"] == "attempt-finished")
        .collect();
    assert!(
        finished.iter().all(|v| v["status"] == "completed"),
        "{events}"
    );

    let report = e.read(&e.path().join(".downbeat/reports/repo-report.md"));
    for want in [
        "## Files",
        "4 files.",
        "- rs: 2",
        "## Largest text files",
        "- src/main.rs: 4 lines",
        "## TODO and FIXME",
        "1 marker(s)",
        "src/main.rs:2:",
        "## History",
        "1 commit(s)",
        "first commit",
    ] {
        assert!(report.contains(want), "no {want:?} in:\n{report}");
    }
    // What the tasks wrote stays out of git.
    let status = std::process::Command::new("git")
        .args(["status", "--porcelain", "--untracked-files=all"])
        .current_dir(e.path())
        .output()
        .unwrap();
    let untracked = String::from_utf8_lossy(&status.stdout);
    assert!(
        !untracked.contains("reports/"),
        "report files show in git status:\n{untracked}"
    );
}
