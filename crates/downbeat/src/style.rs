//! Colour in Downbeat's own text output, decided in one place.
//!
//! Whether a stream gets colour is decided once, at start-up, by [`init`]: `--color always`
//! or `never` when given, else the environment and the terminal (`NO_COLOR` set and not empty:
//! never; `CLICOLOR_FORCE` set: always; `CLICOLOR=0`: never; otherwise only when the stream
//! is a terminal that supports colour). stdout and stderr are decided apart, so
//! `downbeat list | less` gets plain data while notes on the terminal stay coloured.
//!
//! Text is painted where it is made ([`paint`], [`status`]); JSON is never painted. Widths of
//! painted text are measured without the escape codes ([`width`]).

use std::sync::atomic::{AtomicBool, Ordering};

use anstream::ColorChoice;
use anstyle::{AnsiColor, Effects, Style};

/// `--color`: when to use colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum When {
    /// Colour on a terminal that supports it, unless `NO_COLOR` is set (or `CLICOLOR_FORCE`
    /// asks for it anyway).
    Auto,
    Always,
    Never,
}

static OUT: AtomicBool = AtomicBool::new(false);
static ERR: AtomicBool = AtomicBool::new(false);

/// Decides, once, whether stdout and stderr get colour.
pub fn init(when: When) {
    let choice = match when {
        When::Auto => ColorChoice::Auto,
        When::Always => ColorChoice::Always,
        When::Never => ColorChoice::Never,
    };
    choice.write_global();
    let on = |c: ColorChoice| !matches!(c, ColorChoice::Never);
    OUT.store(
        on(anstream::AutoStream::choice(&std::io::stdout())),
        Ordering::Relaxed,
    );
    ERR.store(
        on(anstream::AutoStream::choice(&std::io::stderr())),
        Ordering::Relaxed,
    );
}

/// Where painted text goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum On {
    /// Data on stdout.
    Out,
    /// Notes, errors and progress on stderr.
    Err,
}

impl On {
    fn colours(self) -> bool {
        match self {
            On::Out => OUT.load(Ordering::Relaxed),
            On::Err => ERR.load(Ordering::Relaxed),
        }
    }
}

/// What a piece of text means; each tone has one look everywhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tone {
    /// Done and well: completed, merged.
    Good,
    /// Went wrong: failed, `error:`, conflicts.
    Bad,
    /// Needs a look: stuck, retrying, `warning:`.
    Warn,
    /// Under way: running.
    Active,
    /// Can start now: ready.
    Ready,
    /// Held by hand or by a pause.
    Held,
    /// Not important now: waiting, skipped, cancelled, ids in passing.
    Dim,
    /// Headings and names.
    Strong,
    /// `hint:` and `note:`.
    Hint,
}

impl Tone {
    fn style(self) -> Style {
        let fg = |c: AnsiColor| Style::new().fg_color(Some(c.into()));
        match self {
            Tone::Good => fg(AnsiColor::Green),
            Tone::Bad => fg(AnsiColor::Red).effects(Effects::BOLD),
            Tone::Warn => fg(AnsiColor::Yellow),
            Tone::Active => fg(AnsiColor::Cyan),
            Tone::Ready => fg(AnsiColor::Blue).effects(Effects::BOLD),
            Tone::Held => fg(AnsiColor::Magenta),
            Tone::Dim => Style::new().effects(Effects::DIMMED),
            Tone::Strong => Style::new().effects(Effects::BOLD),
            Tone::Hint => fg(AnsiColor::Cyan).effects(Effects::BOLD),
        }
    }
}

/// `text` in `tone`, when the stream gets colour; `text` as it is otherwise.
pub fn paint(text: &str, tone: Tone, on: On) -> String {
    if !on.colours() || text.is_empty() {
        return text.to_owned();
    }
    let s = tone.style();
    format!("{s}{text}{s:#}")
}

/// The tone of a status word (`completed`, `ready`, `stuck`, …); `None` for other words.
pub fn tone_of(word: &str) -> Option<Tone> {
    Some(match word {
        "completed" | "merged" => Tone::Good,
        "failed" | "conflict" => Tone::Bad,
        "stuck" | "retrying" => Tone::Warn,
        "running" => Tone::Active,
        "ready" => Tone::Ready,
        "blocked" | "held" | "paused" => Tone::Held,
        "waiting" | "pending" | "skipped" | "cancelled" => Tone::Dim,
        _ => return None,
    })
}

/// A status word painted in its tone.
pub fn status(word: &str, on: On) -> String {
    match tone_of(word) {
        Some(t) => paint(word, t, on),
        None => word.to_owned(),
    }
}

/// `3 failed`: a count and its word, the word painted in `tone` when the count is not zero.
pub fn count(n: u64, word: &str, tone: Tone, on: On) -> String {
    if n == 0 {
        format!("0 {word}")
    } else {
        format!("{n} {}", paint(word, tone, on))
    }
}

/// The width of `text` on a terminal: characters, escape codes not counted.
pub fn width(text: &str) -> usize {
    if !text.contains('\x1b') {
        return text.chars().count();
    }
    anstream::adapter::strip_str(text)
        .map(|s| s.chars().count())
        .sum()
}

/// `text` without escape codes (for a stream that gets no colour).
pub fn plain(text: &str) -> String {
    if !text.contains('\x1b') {
        return text.to_owned();
    }
    anstream::adapter::strip_str(text).to_string()
}

/// Whether stderr gets colour (progress bars draw there).
pub fn stderr_colours() -> bool {
    On::Err.colours()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn widths_do_not_count_escape_codes() {
        let s = Tone::Good.style();
        let painted = format!("{s}completed{s:#}");
        assert_eq!(width(&painted), "completed".len());
        assert_eq!(plain(&painted), "completed");
        assert_eq!(width("plain ✓"), 7);
    }

    #[test]
    fn every_status_word_has_a_tone() {
        for w in [
            "completed",
            "skipped",
            "running",
            "ready",
            "waiting",
            "stuck",
            "failed",
            "blocked",
            "cancelled",
            "pending",
        ] {
            assert!(tone_of(w).is_some(), "{w}");
        }
        assert_eq!(tone_of("title"), None);
    }
}
