//! `--help` is complete: every option and argument of every command says what it is, and the
//! main commands show examples.

use clap::{CommandFactory, Parser};
use downbeat::cli::Cli;

/// Every (path, command) of the tree, the root included.
fn commands() -> Vec<(String, clap::Command)> {
    let mut out = Vec::new();
    let mut stack = vec![("downbeat".to_string(), Cli::command())];
    while let Some((path, c)) = stack.pop() {
        for s in c.get_subcommands() {
            stack.push((format!("{path} {}", s.get_name()), s.clone()));
        }
        out.push((path, c));
    }
    out
}

#[test]
fn every_option_and_argument_has_a_description() {
    let mut missing = Vec::new();
    for (path, c) in commands() {
        if c.is_hide_set() {
            continue;
        }
        for a in c.get_arguments() {
            if a.is_hide_set() || a.get_id() == "help" || a.get_id() == "version" {
                continue;
            }
            let has = a
                .get_help()
                .is_some_and(|h| !h.to_string().trim().is_empty())
                || a.get_long_help()
                    .is_some_and(|h| !h.to_string().trim().is_empty());
            if !has {
                missing.push(format!("{path}: {}", a.get_id()));
            }
        }
        if c.get_about().is_none() && path != "downbeat" {
            missing.push(format!("{path}: (the command itself)"));
        }
    }
    assert!(
        missing.is_empty(),
        "without a description:\n  {}",
        missing.join("\n  ")
    );
}

#[test]
fn the_main_commands_show_examples() {
    let want = [
        "downbeat",
        "downbeat init",
        "downbeat plan",
        "downbeat add",
        "downbeat show",
        "downbeat list",
        "downbeat done",
        "downbeat run",
        "downbeat worker",
        "downbeat dep",
        "downbeat ready",
        "downbeat blocked",
        "downbeat waves",
        "downbeat status",
        "downbeat graph",
        "downbeat log",
        "downbeat serve",
    ];
    let all = commands();
    for w in want {
        let (_, c) = all.iter().find(|(p, _)| p == w).expect(w);
        let after = c
            .get_after_help()
            .map(|h| h.to_string())
            .unwrap_or_default();
        assert!(
            after.starts_with("Examples:\n  ") && after.contains("downbeat"),
            "{w}: {after:?}"
        );
        // Each example is a command of this program that parses.
        for line in after.lines().skip(1).take_while(|l| l.starts_with("  ")) {
            let line = line.trim().split("  #").next().unwrap().trim();
            let first = line.split(" && ").next().unwrap();
            let first = first.split(" | ").next().unwrap();
            let first = first.split(" > ").next().unwrap();
            let words: Vec<String> = shell_words(first);
            let start = words.iter().position(|w| w == "downbeat").expect(line);
            let r = Cli::try_parse_from(&words[start..]);
            assert!(r.is_ok(), "{w}: `{line}` does not parse: {:?}", r.err());
        }
    }
}

/// Splits like a shell for the examples' simple quoting ("…" groups).
fn shell_words(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    for ch in s.chars() {
        match ch {
            '"' => quoted = !quoted,
            ' ' if !quoted => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            _ => cur.push(ch),
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}
