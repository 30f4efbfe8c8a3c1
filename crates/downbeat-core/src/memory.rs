//! Memory files (`CLAUDE.md`, `AGENTS.md`): the section Downbeat keeps in them between two
//! markers, as pure text operations.
//!
//! [`splice`] puts a section into a file's text (replacing the one between the markers, or
//! appending it), leaving every other byte alone; [`without_section`] gives the text without
//! it (what a prompt carries, since the prompt has its own copy of the project's context);
//! [`section`] renders the section from what the project knows.
//!
//! Must never: perform I/O, or change a byte outside the markers.

use std::fmt::Write as _;

use crate::context::{Decision, Insight};

/// The line that opens Downbeat's section.
pub const BEGIN: &str = "<!-- downbeat:begin -->";
/// The line that closes it.
pub const END: &str = "<!-- downbeat:end -->";

/// Why a file's markers cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MarkerError {
    #[error("line {line} opens a downbeat section (`{BEGIN}`) that no `{END}` closes")]
    Unclosed { line: usize },
    #[error("line {line} closes a downbeat section (`{END}`) that no `{BEGIN}` opened")]
    Unopened { line: usize },
    #[error("lines {first} and {second} both open a downbeat section; keep one")]
    Twice { first: usize, second: usize },
}

/// Where the section lies in a text: the byte range from the start of its begin line to the
/// end of its end line (its line break included).
fn find(text: &str) -> Result<Option<(usize, usize)>, MarkerError> {
    // (line, start) of an open section; (line, start, end) of a closed one.
    let mut open: Option<(usize, usize)> = None;
    let mut found: Option<(usize, usize, usize)> = None;
    let mut at = 0;
    for (n, line) in text.split_inclusive('\n').enumerate() {
        let n = n + 1;
        let trimmed = line.trim();
        if trimmed == BEGIN {
            if let Some(first) = open.map(|o| o.0).or(found.map(|f| f.0)) {
                return Err(MarkerError::Twice { first, second: n });
            }
            open = Some((n, at));
        } else if trimmed == END {
            match open.take() {
                Some((l, start)) => found = Some((l, start, at + line.len())),
                None => return Err(MarkerError::Unopened { line: n }),
            }
        }
        at += line.len();
    }
    if let Some((line, _)) = open {
        return Err(MarkerError::Unclosed { line });
    }
    Ok(found.map(|(_, s, e)| (s, e)))
}

/// `text` with `section` (which must hold the markers) in place of the one between the markers,
/// or appended after a blank line when there is none. `None` text: a new file of the section.
pub fn splice(text: Option<&str>, section: &str) -> Result<String, MarkerError> {
    let Some(text) = text else {
        return Ok(section.to_owned());
    };
    Ok(match find(text)? {
        Some((start, end)) => {
            let mut out = String::with_capacity(text.len() + section.len());
            out.push_str(&text[..start]);
            out.push_str(section);
            // The end line's own line break goes with it; a section ends in one already.
            out.push_str(&text[end..]);
            out
        }
        None if text.is_empty() => section.to_owned(),
        None => {
            let mut out = text.to_owned();
            if !out.ends_with('\n') {
                out.push('\n');
            }
            out.push('\n');
            out.push_str(section);
            out
        }
    })
}

/// `text` without Downbeat's section (what the rest of the file says). A file whose markers
/// are broken is given whole.
pub fn without_section(text: &str) -> String {
    match find(text) {
        Ok(Some((start, end))) => {
            let mut out = text[..start].trim_end().to_owned();
            let rest = text[end..].trim_start_matches('\n');
            if !out.is_empty() && !rest.is_empty() {
                out.push_str("\n\n");
            }
            out.push_str(rest);
            out
        }
        _ => text.to_owned(),
    }
}

/// An objective as the section lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct ObjectiveLine {
    pub id: String,
    pub title: String,
    /// (done, total) of its linked tasks' leaves.
    pub progress: Option<(u32, u32)>,
    /// Achieved already (else active).
    pub achieved: bool,
}

/// What the section says.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Facts<'a> {
    /// The active and achieved objectives.
    pub objectives: Vec<ObjectiveLine>,
    /// (done, total) over all leaf tasks, and running, ready and failed leaves.
    pub done: u64,
    pub total: u64,
    pub running: u64,
    pub ready: u64,
    pub failed: u64,
    /// Decisions in force, oldest first.
    pub decisions: Vec<&'a Decision>,
    /// Insights, newest first (the caller chooses how many).
    pub insights: Vec<&'a Insight>,
    /// Conventions: one line each (the flags this project acts on, how to record things).
    pub conventions: Vec<String>,
}

/// The section, markers included, ending in a line break. The same facts give the same bytes
/// (nothing in it depends on the clock), so syncing twice changes nothing.
pub fn section(f: &Facts<'_>) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "{BEGIN}");
    let _ = writeln!(
        s,
        "<!-- Written by `downbeat memory sync`; edits between these markers are replaced. -->"
    );
    let _ = writeln!(s, "## Project memory (Downbeat)\n");
    let _ = writeln!(s, "### What the project is doing\n");
    if f.objectives.is_empty() {
        let _ = writeln!(s, "No objectives recorded.");
    }
    for o in &f.objectives {
        let prog = match (o.achieved, o.progress) {
            (true, _) => " (achieved)".to_owned(),
            (false, Some((d, t))) => format!(" ({d}/{t} tasks done)"),
            (false, None) => String::new(),
        };
        let _ = writeln!(s, "- {} {}{prog}", o.id, one_line(&o.title));
    }
    let _ = writeln!(
        s,
        "\nProgress: {}/{} tasks done, {} running, {} ready, {} failed.\n",
        f.done, f.total, f.running, f.ready, f.failed
    );
    let _ = writeln!(s, "### Decisions in force\n");
    if f.decisions.is_empty() {
        let _ = writeln!(s, "None recorded.");
    }
    for d in &f.decisions {
        let why = if d.why.trim().is_empty() {
            String::new()
        } else {
            format!(" (why: {})", one_line(&d.why))
        };
        let _ = writeln!(s, "- {} {}{why}", d.id, one_line(&d.text));
    }
    let _ = writeln!(s, "\n### Key insights\n");
    if f.insights.is_empty() {
        let _ = writeln!(s, "None recorded.");
    }
    for i in &f.insights {
        let about = i.task.map(|t| format!(" (task {t})")).unwrap_or_default();
        let _ = writeln!(s, "- {} {}{about}", i.id, one_line(&i.text));
    }
    if !f.conventions.is_empty() {
        let _ = writeln!(s, "\n### Conventions\n");
        for c in &f.conventions {
            let _ = writeln!(s, "- {c}");
        }
    }
    let _ = writeln!(s, "{END}");
    s
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// At most `budget` bytes of `text`, cut at the last line break that fits (or a character
/// boundary); whether anything was cut.
pub fn clip_to(text: &str, budget: usize) -> (&str, bool) {
    if text.len() <= budget {
        return (text, false);
    }
    let mut end = budget;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let cut = text[..end].rfind('\n').map_or(end, |i| i + 1);
    (&text[..cut], true)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECTION: &str = "<!-- downbeat:begin -->\nnew\n<!-- downbeat:end -->\n";

    #[test]
    fn a_section_replaces_the_one_between_the_markers_and_nothing_else() {
        let text =
            "# Mine\n\nkeep\n<!-- downbeat:begin -->\nold\nlines\n<!-- downbeat:end -->\nafter\n";
        let out = splice(Some(text), SECTION).unwrap();
        assert_eq!(
            out,
            "# Mine\n\nkeep\n<!-- downbeat:begin -->\nnew\n<!-- downbeat:end -->\nafter\n"
        );
        assert_eq!(splice(Some(&out), SECTION).unwrap(), out);
        // An end marker without a line break at the end of the file.
        let text = "x\n<!-- downbeat:begin -->\nold\n<!-- downbeat:end -->";
        assert_eq!(
            splice(Some(text), SECTION).unwrap(),
            format!("x\n{SECTION}")
        );
    }

    #[test]
    fn without_markers_the_section_is_appended() {
        assert_eq!(
            splice(Some("# Notes\nmine"), SECTION).unwrap(),
            format!("# Notes\nmine\n\n{SECTION}")
        );
        assert_eq!(splice(None, SECTION).unwrap(), SECTION);
        assert_eq!(splice(Some(""), SECTION).unwrap(), SECTION);
    }

    #[test]
    fn broken_markers_are_errors_naming_the_line() {
        let e = splice(Some("a\n<!-- downbeat:begin -->\nb\n"), SECTION).unwrap_err();
        assert_eq!(e, MarkerError::Unclosed { line: 2 });
        assert!(e.to_string().contains("no `<!-- downbeat:end -->` closes"));
        let e = splice(Some("<!-- downbeat:end -->\n"), SECTION).unwrap_err();
        assert_eq!(e, MarkerError::Unopened { line: 1 });
        let twice = format!("{SECTION}{SECTION}");
        assert_eq!(
            splice(Some(&twice), SECTION).unwrap_err(),
            MarkerError::Twice {
                first: 1,
                second: 4
            }
        );
    }

    #[test]
    fn the_rest_of_a_file_is_what_prompts_carry() {
        let text = "# Mine\n\n<!-- downbeat:begin -->\nours\n<!-- downbeat:end -->\n\nmore\n";
        assert_eq!(without_section(text), "# Mine\n\nmore\n");
        assert_eq!(without_section(SECTION), "");
        assert_eq!(without_section("plain\n"), "plain\n");
        let broken = "a\n<!-- downbeat:begin -->\n";
        assert_eq!(without_section(broken), broken);
    }

    #[test]
    fn clipping_keeps_whole_lines() {
        assert_eq!(clip_to("ab\ncd\n", 10), ("ab\ncd\n", false));
        assert_eq!(clip_to("ab\ncd\n", 4), ("ab\n", true));
        assert_eq!(clip_to("abcdé", 5), ("abcd", true));
    }
}
