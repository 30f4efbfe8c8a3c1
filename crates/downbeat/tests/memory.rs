//! Memory files: `downbeat memory sync` writes Downbeat's section between its markers in
//! CLAUDE.md and AGENTS.md (idempotent, the rest of each file untouched, nothing written over
//! broken markers), prompts carry the rest of each file, and a run can sync them at its end.

mod common;

use common::Env;

const BEGIN: &str = "<!-- downbeat:begin -->";
const END: &str = "<!-- downbeat:end -->";

/// A project with an objective, a decision, insights and some work.
fn project() -> Env {
    project_with("", &[])
}

/// [`project`] with `config` appended to its configuration and `build` options for the task
/// that is left to do.
fn project_with(config: &str, build: &[&str]) -> Env {
    let e = Env::builder().keep("PATH").fixed_clock().init().build();
    e.append(".downbeat/config.toml", config);
    e.ok(&["add", "Design the login", "--key", "design"]);
    let mut add = vec![
        "add",
        "Build the login",
        "--key",
        "build",
        "--after",
        "design",
    ];
    add.extend_from_slice(build);
    e.ok(&add);
    e.ok(&["objective", "add", "Users can log in", "--task", "build"]);
    e.ok(&["decision", "add", "Use Authlib", "--why", "maintained"]);
    e.ok(&["insight", "add", "The API is rate limited to 100 rps"]);
    e.ok(&["done", "design", "--result", "OAuth2 with PKCE"]);
    e
}

#[test]
fn sync_is_idempotent_and_leaves_the_rest_of_the_file_alone() {
    let e = project();
    let before = "# Our project\n\nHand-written notes.\n";
    let after = "\n## More notes\n\nKept as they are.\n";
    let old = format!("{before}{BEGIN}\nstale content\n{END}{after}");
    e.write("CLAUDE.md", &old);
    let out = e.ok(&["memory", "sync"]);
    assert!(out.contains("updated") && out.contains("created"), "{out}");
    let text = e.read(std::path::Path::new("CLAUDE.md"));
    assert!(text.starts_with(&format!("{before}{BEGIN}\n")), "{text}");
    assert!(text.ends_with(&format!("{END}{after}")), "{text}");
    assert!(!text.contains("stale content"), "{text}");
    let section = &text[text.find(BEGIN).unwrap()..text.find(END).unwrap()];
    insta::assert_snapshot!("section", section);
    // AGENTS.md did not exist: it holds the section alone.
    let agents = e.read(std::path::Path::new("AGENTS.md"));
    assert_eq!(agents, format!("{section}{END}\n"));

    // A second sync changes no byte.
    let bytes = std::fs::read(e.path().join("CLAUDE.md")).unwrap();
    let again = e.json(&["memory", "sync"]);
    let changes: Vec<&str> = again["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["change"].as_str().unwrap())
        .collect();
    assert_eq!(changes, ["unchanged", "unchanged"]);
    assert_eq!(std::fs::read(e.path().join("CLAUDE.md")).unwrap(), bytes);

    // New facts replace the section, and only it.
    e.ok(&[
        "decision",
        "add",
        "Sessions last 8 hours",
        "--why",
        "security review",
    ]);
    e.ok(&["memory", "sync", "--file", "CLAUDE.md"]);
    let text = e.read(std::path::Path::new("CLAUDE.md"));
    assert!(
        text.contains("d2 Sessions last 8 hours (why: security review)"),
        "{text}"
    );
    assert!(text.starts_with(before) && text.ends_with(after), "{text}");
    assert!(
        !e.read(std::path::Path::new("AGENTS.md"))
            .contains("Sessions last")
    );
}

#[test]
fn a_file_without_markers_gets_the_section_at_its_end() {
    let e = project();
    e.write("CLAUDE.md", "# Notes\nno line break at the end");
    let dry = e.json(&["memory", "sync", "--dry-run"]);
    assert_eq!(dry["dry_run"], true);
    assert_eq!(dry["files"][0]["change"], "updated");
    assert_eq!(
        e.read(std::path::Path::new("CLAUDE.md")),
        "# Notes\nno line break at the end"
    );
    assert!(!e.path().join("AGENTS.md").exists());
    e.ok(&["memory", "sync", "--file", "CLAUDE.md"]);
    let text = e.read(std::path::Path::new("CLAUDE.md"));
    assert!(
        text.starts_with(&format!("# Notes\nno line break at the end\n\n{BEGIN}\n")),
        "{text}"
    );
    assert!(text.ends_with(&format!("{END}\n")), "{text}");
    assert!(!e.path().join("AGENTS.md").exists());
    let err = e.fails(&["memory", "sync", "--file", "README.md"], 4);
    assert!(
        err.contains("not one of the project's memory files"),
        "{err}"
    );
}

#[test]
fn broken_markers_are_a_clear_error_and_nothing_is_written() {
    let e = project();
    let broken = format!("# Notes\n{BEGIN}\nhalf a section\n");
    e.write("CLAUDE.md", &broken);
    let err = e.fails(&["memory", "sync"], 4);
    assert!(err.contains("CLAUDE.md"), "{err}");
    assert!(err.contains("line 2 opens a downbeat section"), "{err}");
    assert!(err.contains("nothing was written"), "{err}");
    assert_eq!(e.read(std::path::Path::new("CLAUDE.md")), broken);
    // Not even the other file.
    assert!(!e.path().join("AGENTS.md").exists());
    e.write("CLAUDE.md", &format!("{END}\n"));
    let err = e.fails(&["memory", "sync"], 4);
    assert!(err.contains("line 1 closes a downbeat section"), "{err}");
}

#[test]
fn a_prompt_carries_the_memory_files_without_downbeats_section() {
    let e = project_with(
        "\n[executors.capture]\ntype = \"process\"\nshell = \"cat > prompt-seen.txt\"\n",
        &["--executor", "capture"],
    );
    e.write(
        "CLAUDE.md",
        &format!(
            "# Conventions\n\nRun `cargo test` before you finish.\n\n{BEGIN}\nour own section\n{END}\n\nEarlier work: the login form is in src/login.rs.\n"
        ),
    );
    e.ok(&["run", "--only", "build"]);
    let prompt = e.read(std::path::Path::new("prompt-seen.txt"));
    let memory = &prompt[prompt.find("## Project memory").expect(&prompt)..];
    insta::assert_snapshot!("prompt_with_memory_file", memory);
    assert!(!prompt.contains("our own section"), "{prompt}");
    // Without the file, no section.
    std::fs::remove_file(e.path().join("CLAUDE.md")).unwrap();
    e.ok(&["reopen", "build"]);
    e.ok(&["run", "--only", "build"]);
    let prompt = e.read(std::path::Path::new("prompt-seen.txt"));
    assert!(!prompt.contains("## Project memory"), "{prompt}");
}

#[test]
fn a_run_can_sync_the_memory_files_at_its_end() {
    let e = project_with(
        "\n[memory]\nfiles = [\"CLAUDE.md\"]\nsync_on_run = true\n",
        &["--shell", "true"],
    );
    let out = e.run(&["run"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("memory file created"), "{stderr}");
    let text = e.read(std::path::Path::new("CLAUDE.md"));
    assert!(text.contains("Progress: 2/2 tasks done"), "{text}");
    // The run achieved the objective before the files were synced.
    assert!(text.contains("o1 Users can log in (achieved)"), "{text}");
    assert!(!e.path().join("AGENTS.md").exists());
}
