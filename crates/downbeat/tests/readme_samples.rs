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
