//! Writing to stdout (data) and stderr (notes), quietly surviving a closed pipe.

use std::io::Write;

use serde::Serialize;

use crate::style::{On, Tone, paint, width as shown_width};

/// Set while work runs that a closed stdout must stop gracefully rather than by exiting.
static ON_CLOSED: std::sync::OnceLock<tokio_util::sync::CancellationToken> =
    std::sync::OnceLock::new();
/// Whether stdout was found closed: nothing more is written to it.
static CLOSED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// From now on a closed stdout cancels `token` (a run stops its agents and puts their tasks
/// back) instead of ending the process at once.
pub fn cancel_on_closed_stdout(token: tokio_util::sync::CancellationToken) {
    let _ = ON_CLOSED.set(token);
}

/// Whether stdout was found closed (its reader went away).
pub fn stdout_closed() -> bool {
    CLOSED.load(std::sync::atomic::Ordering::Relaxed)
}

/// Writes data to stdout; a closed pipe (`downbeat list | head`) ends the process quietly, or
/// cancels the work registered with [`cancel_on_closed_stdout`].
pub fn out(s: &str) {
    use std::sync::atomic::Ordering;
    if CLOSED.load(Ordering::Relaxed) {
        return;
    }
    let mut o = std::io::stdout().lock();
    if let Err(e) = o.write_all(s.as_bytes()).and_then(|()| o.flush())
        && e.kind() == std::io::ErrorKind::BrokenPipe
    {
        CLOSED.store(true, Ordering::Relaxed);
        match ON_CLOSED.get() {
            Some(token) => token.cancel(),
            None => std::process::exit(0),
        }
    }
}

/// Writes a line of data.
pub fn outln(s: &str) {
    let mut line = String::with_capacity(s.len() + 1);
    line.push_str(s);
    line.push('\n');
    out(&line);
}

/// Writes a value as pretty JSON on stdout.
pub fn json<T: Serialize + ?Sized>(v: &T) {
    match serde_json::to_string_pretty(v) {
        Ok(s) => outln(&s),
        Err(e) => note(&format!("cannot encode JSON: {e}")),
    }
}

/// Set by `--quiet`: notes are not written.
static QUIET: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// `--quiet`: from now on [`note`] writes nothing (errors are written by the caller).
pub fn set_quiet(quiet: bool) {
    QUIET.store(quiet, std::sync::atomic::Ordering::Relaxed);
}

/// Set by `--verbose`.
static VERBOSE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// `--verbose`: commands that can say more do.
pub fn set_verbose(verbose: bool) {
    VERBOSE.store(verbose, std::sync::atomic::Ordering::Relaxed);
}

/// Whether `--verbose` was given.
pub fn verbose() -> bool {
    VERBOSE.load(std::sync::atomic::Ordering::Relaxed)
}

/// Whether `--quiet` was given.
pub fn quiet() -> bool {
    QUIET.load(std::sync::atomic::Ordering::Relaxed)
}

/// A note for people, on stderr (nothing with `--quiet`).
pub fn note(s: &str) {
    if quiet() {
        return;
    }
    let _ = match s.split_once(' ') {
        Some((w @ ("warning:" | "note:" | "hint:"), rest)) => {
            let tone = if w == "warning:" {
                Tone::Warn
            } else {
                Tone::Hint
            };
            writeln!(std::io::stderr(), "{} {rest}", paint(w, tone, On::Err))
        }
        _ => writeln!(std::io::stderr(), "{s}"),
    };
}

/// Left-aligned columns; the last column is not padded.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let n = header.len();
    let mut width = vec![0usize; n];
    for (i, h) in header.iter().enumerate() {
        width[i] = h.chars().count();
    }
    for r in rows {
        for (i, c) in r.iter().enumerate().take(n) {
            width[i] = width[i].max(shown_width(c));
        }
    }
    let mut s = String::new();
    push_header(header, &width, &mut s);
    for r in rows {
        push_row(r, &width, &mut s);
    }
    s
}

/// [`table`] written as it goes, for more rows than are worth holding: `width` is each
/// column's width but the last's (at least its header's), the rows come from an iterator and
/// go out a block at a time.
pub fn table_streamed<S: AsRef<str>, const N: usize>(
    header: &[&str; N],
    width: &[usize; N],
    rows: impl Iterator<Item = [S; N]>,
) {
    let mut s = String::new();
    push_header(header, width, &mut s);
    for r in rows {
        // Nobody reads any more: the rest need not be made.
        if stdout_closed() {
            return;
        }
        push_row(&r, width, &mut s);
        if s.len() >= 1 << 16 {
            out(&s);
            s.clear();
        }
    }
    out(&s);
}

fn push_header(header: &[&str], width: &[usize], s: &mut String) {
    let header: Vec<String> = header
        .iter()
        .map(|h| paint(h, Tone::Strong, On::Out))
        .collect();
    push_row(&header, width, s);
}

/// One line of a table: every cell but the last padded to its column's width.
fn push_row<S: AsRef<str>>(cells: &[S], width: &[usize], s: &mut String) {
    let start = s.len();
    for (i, c) in cells.iter().enumerate() {
        let c = c.as_ref();
        s.push_str(c);
        if i + 1 < cells.len() {
            let pad = width[i].saturating_sub(shown_width(c)) + 2;
            s.extend(std::iter::repeat_n(' ', pad));
        }
    }
    let end = s[start..].trim_end().len() + start;
    s.truncate(end);
    s.push('\n');
}
