//! `downbeat plan draft` and `plan expand`: an agent drafts a plan, the application layer
//! checks it round after round; this file shows the proposal (tasks, waves, critical path,
//! makespan) and writes or applies it as asked.

use std::path::Path;
use std::time::Duration;

use downbeat_app::drafting::{self, Asking, Document, Draft, DraftRequest, ExpandRequest, Verdict};
use downbeat_app::error::Error;
use downbeat_app::plans::Applied;
use downbeat_app::project::Project;
use downbeat_core::plan::PlanFormat;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::render::{clip, preview_json, preview_text};
use crate::cli::{AskArgs, DraftArgs, ExpandArgs, PlanFormatArg};
use crate::output::{json as print_json, note, out, table};

pub(super) async fn draft(p: &Project, a: DraftArgs, j: bool) -> Result<(), Error> {
    let document = match &a.from {
        Some(path) => Some(read_document(path)?),
        None => None,
    };
    let req = DraftRequest {
        goal: a.goal,
        document,
        asking: asking(&a.ask)?,
    };
    announce(&req.asking, j, "a plan");
    let d = drafting::draft(p, &req, cancel_on_signals()).await?;
    finish(p, &d, &a.ask, j).await
}

pub(super) async fn expand(p: &Project, a: ExpandArgs, j: bool) -> Result<(), Error> {
    let req = ExpandRequest {
        task: a.task,
        guidance: a.guidance,
        asking: asking(&a.ask)?,
    };
    announce(&req.asking, j, &format!("subtasks of {}", req.task));
    let d = drafting::expand(p, &req, cancel_on_signals()).await?;
    finish(p, &d, &a.ask, j).await
}

/// A token cancelled at the first Ctrl-C, SIGTERM or SIGHUP: the agent is stopped.
fn cancel_on_signals() -> CancellationToken {
    let cancel = CancellationToken::new();
    crate::signals::stop_on_signals(cancel.clone());
    cancel
}

fn announce(a: &Asking, j: bool, what: &str) {
    if !j {
        note(&format!(
            "asking {} for {what} (up to {} round(s))…",
            a.executor
                .as_deref()
                .map_or_else(|| "the configured agent".to_owned(), |e| format!("`{e}`")),
            a.rounds
        ));
    }
}

fn plan_format(f: PlanFormatArg) -> PlanFormat {
    match f {
        PlanFormatArg::Toml => PlanFormat::Toml,
        PlanFormatArg::Yaml => PlanFormat::Yaml,
        PlanFormatArg::Json => PlanFormat::Json,
    }
}

/// How to ask, from the options: the format from --format, else the -o file's extension.
fn asking(a: &AskArgs) -> Result<Asking, Error> {
    let format = match (a.format, a.output.as_deref().and_then(Path::to_str)) {
        (Some(f), _) => plan_format(f),
        (None, Some(o)) if o != "-" => PlanFormat::from_path(o).ok_or_else(|| {
            Error::invalid(format!("{o}: unknown plan format"))
                .with_hint("plan files end in .toml, .yaml, .yml or .json; otherwise pass --format toml|yaml|json")
        })?,
        _ => PlanFormat::Toml,
    };
    let timeout = a
        .timeout
        .as_deref()
        .map(|t| {
            downbeat_engine::config::parse_duration(t)
                .map_err(|e| Error::invalid(format!("--timeout {t}: {e}")))
        })
        .transpose()?;
    if timeout == Some(Duration::ZERO) {
        return Err(Error::invalid("--timeout must be longer than 0"));
    }
    Ok(Asking {
        executor: a.agent.clone().or_else(|| a.executor.clone()),
        rounds: a.rounds,
        timeout,
        format,
    })
}

fn read_document(path: &Path) -> Result<Document, Error> {
    let text = std::fs::read(path).map_err(|e| {
        let kind = if e.kind() == std::io::ErrorKind::NotFound {
            downbeat_app::error::Kind::NotFound
        } else {
            downbeat_app::error::Kind::Invalid
        };
        Error::new(kind, format!("cannot read {}: {e}", path.display()))
    })?;
    Ok(Document {
        name: path.display().to_string(),
        text: String::from_utf8_lossy(&text).into_owned(),
    })
}

/// Shows the proposal, then writes and applies it as asked.
async fn finish(p: &Project, d: &Draft, a: &AskArgs, j: bool) -> Result<(), Error> {
    let to_stdout = a.output.as_deref().is_some_and(|o| o.as_os_str() == "-");
    if !j {
        for r in d.rounds.iter().filter(|r| r.verdict != Verdict::Valid) {
            let problems = r.verdict.problems();
            note(&format!(
                "round {}: sent back with {} problem(s):",
                r.number,
                problems.len()
            ));
            for p in problems {
                note(&format!("  - {p}"));
            }
        }
        let shown = proposal(d);
        if to_stdout {
            note(shown.trim_end());
        } else {
            out(&shown);
        }
        for n in &d.notes {
            note(&format!("note: {n}"));
        }
    }
    let mut written = None;
    match a.output.as_deref() {
        Some(_) if to_stdout => out(&d.text),
        Some(path) => {
            drafting::write(d, path, a.force)?;
            written = Some(path.display().to_string());
        }
        None => {}
    }
    let applied = if a.apply {
        let outcome = drafting::apply(p, d).await?;
        outcome.applied
    } else {
        None
    };
    if j {
        print_json(&draft_json(d, written.as_deref(), applied.as_ref()));
        return Ok(());
    }
    if let Some(w) = &written {
        note(&format!("wrote {w}"));
    }
    match &applied {
        Some(Applied { applied, notes }) => {
            for n in notes {
                note(n);
            }
            note(&format!(
                "applied `{}`: {} task(s), {} dependency edge(s); `downbeat run` starts the work",
                d.name(),
                applied.tasks.len(),
                applied.edges
            ));
        }
        None if written.is_none() && !to_stdout => note(&format!(
            "nothing written: the plan is in {}; write it with -o FILE, or apply it with --apply",
            shown_path(p, &d.saved)
        )),
        None => {}
    }
    Ok(())
}

fn shown_path(p: &Project, path: &Path) -> String {
    path.strip_prefix(&p.root)
        .unwrap_or(path)
        .display()
        .to_string()
}

/// The value of a task's `NAME:` tag.
fn tag_value<'a>(tags: &'a [String], name: &str) -> Option<&'a str> {
    tags.iter()
        .find_map(|t| t.strip_prefix(name)?.strip_prefix(':'))
}

/// The proposal for people: the rounds, the tasks, the waves, the critical path, the makespan.
fn proposal(d: &Draft) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let sent_back = d
        .rounds
        .iter()
        .filter(|r| r.verdict != Verdict::Valid)
        .count();
    let _ = writeln!(
        s,
        "plan `{}` drafted by {} in {} round(s){}:",
        d.name(),
        d.executor,
        d.rounds.len(),
        if sent_back > 0 {
            format!(" ({sent_back} sent back with its problems)")
        } else {
            String::new()
        }
    );
    let rows: Vec<Vec<String>> = d
        .plan
        .tasks
        .iter()
        .map(|t| {
            vec![
                t.key.clone().unwrap_or_default(),
                t.role.clone().unwrap_or_else(|| "-".into()),
                t.effort.map_or_else(|| "-".into(), |e| e.to_string()),
                tag_value(&t.tags, "complexity").unwrap_or("-").to_owned(),
                tag_value(&t.tags, "risk").unwrap_or("-").to_owned(),
                t.files.len().to_string(),
                clip(&t.title, 60),
            ]
        })
        .collect();
    s.push_str(&table(
        &[
            "KEY",
            "ROLE",
            "EFFORT",
            "COMPLEXITY",
            "RISK",
            "FILES",
            "TITLE",
        ],
        &rows,
    ));
    s.push_str(&preview_text(&d.preview));
    let (tin, tout): (u64, u64) = d
        .rounds
        .iter()
        .fold((0, 0), |(a, b), r| (a + r.tokens_in, b + r.tokens_out));
    let cost: Option<f64> = d
        .rounds
        .iter()
        .filter_map(|r| r.cost_usd)
        .reduce(|a, b| a + b);
    let _ = writeln!(
        s,
        "spent: {tin} token(s) in, {tout} out{}",
        cost.map(|c| format!(", ${c:.4}")).unwrap_or_default()
    );
    s
}

/// The JSON answer of `plan draft` and `plan expand` (documented in docs/drafting.md).
fn draft_json(d: &Draft, written: Option<&str>, applied: Option<&Applied>) -> Value {
    let rounds: Vec<Value> = d
        .rounds
        .iter()
        .map(|r| {
            json!({
                "round": r.number,
                "verdict": r.verdict.name(),
                "problems": r.verdict.problems(),
                "tokens_in": r.tokens_in,
                "tokens_out": r.tokens_out,
                "cost_usd": r.cost_usd,
                "duration_ms": u64::try_from(r.duration.as_millis()).unwrap_or(u64::MAX),
            })
        })
        .collect();
    let tasks: Vec<Value> = d
        .plan
        .tasks
        .iter()
        .map(|t| {
            json!({
                "key": t.key,
                "title": t.title,
                "role": t.role,
                "parent": t.parent,
                "depends_on": t.depends_on,
                "effort": t.effort,
                "complexity": tag_value(&t.tags, "complexity"),
                "risk": tag_value(&t.tags, "risk"),
                "files": t.files,
            })
        })
        .collect();
    let mut v = json!({
        "plan": d.name(),
        "executor": d.executor,
        "expanded": d.expanded,
        "format": super::plan::format_name(d.format),
        "rounds": rounds,
        "tasks": tasks,
        "notes": d.notes,
        "text": d.text,
        "saved": d.saved,
        "written": written,
        "applied": applied.map(|a| json!({
            "tasks": a.applied.tasks.iter().map(|(k, id)| json!({"key": k, "id": id})).collect::<Vec<_>>(),
            "edges": a.applied.edges,
        })),
    });
    if let (Value::Object(m), Value::Object(pv)) = (&mut v, preview_json(&d.preview)) {
        m.extend(pv);
    }
    v
}
