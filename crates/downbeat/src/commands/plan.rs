//! `downbeat plan check|apply`: plans from a file or standard input; `plan check` outside a
//! project checks the file on its own.

use std::borrow::Cow;
use std::io::Read as _;
use std::path::Path;

use downbeat_app::error::{Error, Kind};
use downbeat_app::plans::{self, Applied, ApplyRequest, Prepared};
use downbeat_app::project::Project;
use downbeat_core::ids::TaskId;
use downbeat_core::plan::{self, PlanFormat};
use downbeat_core::plan_diff::{FieldChange, PlanDiff};
use serde_json::{Value, json};

use super::render::clip;
use crate::cli::*;
use crate::output::{json as print_json, note, out, outln, table, table_streamed};
use crate::style::width as shown_width;

pub(super) async fn plan_cmd(p: &Project, c: PlanCmd, j: bool) -> Result<(), Error> {
    let (file, format, dry, skip) = match c {
        PlanCmd::Apply {
            file,
            format,
            dry_run,
            skip_conflicts,
        } => (file, format, dry_run, skip_conflicts),
        PlanCmd::Check { file, format } => return check(p, &file, format, j).await,
        PlanCmd::New { .. } | PlanCmd::Draft(_) | PlanCmd::Expand(_) => {
            return Err(Error::internal("command dispatched twice"));
        }
    };
    let (parsed, read) = read_plan(&file, format)?.take(&file);
    let req = request(&file, dry, skip);
    let outcome = plans::apply_owned(p, parsed, &req)
        .await
        .map_err(|e| read.locate(e))?;
    let shown_name = outcome.shown_name(&req);
    let prepared = &outcome.prepared;
    let d = &prepared.diff;
    let Some(Applied { applied, notes }) = &outcome.applied else {
        if j {
            print_json(&diff_json(&shown_name, d, None, true));
        } else {
            out(&diff_table(d, None));
            note(&format!(
                "{shown_name}: {}; nothing written",
                summary(d, true)
            ));
        }
        return Ok(());
    };
    for n in notes {
        note(n);
    }
    if prepared.name.is_none() {
        note(&format!(
            "{}: the plan has no `[plan] name`, so this application is not recorded: tasks later left out of it will not be cancelled",
            req.shown
        ));
    }
    if j {
        let mut v = diff_json(&shown_name, d, Some(&applied.tasks), false);
        v["edges"] = json!(applied.edges);
        v["objectives"] = json!(applied.objectives);
        v["decisions"] = json!(applied.decisions);
        v["insights"] = json!(applied.insights);
        print_json(&v);
    } else if prepared.first {
        first_application(&shown_name, prepared, applied);
    } else {
        out(&diff_table(d, Some(&applied.tasks)));
        note(&format!("applied {shown_name}: {}", summary(d, false)));
        for c in d.conflicts.iter().filter(|_| skip) {
            note(&format!("skipped {} ({}): {}", c.key, c.id, c.reason));
        }
    }
    Ok(())
}

/// The application layer's request for a plan file: shown and recorded by its file name
/// unless it has a `[plan] name` (a plan from standard input or a device has no file name to
/// record it by).
fn request(file: &Path, dry_run: bool, skip_conflicts: bool) -> ApplyRequest {
    let stream = is_stdin(file) || file.starts_with("/dev");
    ApplyRequest {
        shown: shown(file),
        fallback_name: file
            .file_name()
            .filter(|_| !stream)
            .map(|n| n.to_string_lossy().into_owned()),
        dry_run,
        skip_conflicts,
        skip_option: "--skip-conflicts",
    }
}

/// `plan check` in a project: a dry run of `apply`, so keys already in the project are the
/// tasks the plan would match and references to stored tasks are checked.
async fn check(
    p: &Project,
    file: &Path,
    format: Option<PlanFormatArg>,
    j: bool,
) -> Result<(), Error> {
    let (parsed, read) = read_plan(file, format)?.take(file);
    let req = request(file, true, false);
    let validated = plans::apply_owned(p, parsed, &req)
        .await
        .map_err(|e| read.locate(e))?
        .prepared
        .validated;
    if j {
        print_json(&check_json(&validated));
    } else {
        outln(&check_line(&req.shown, &validated));
    }
    Ok(())
}

/// `plan check` outside a project: the file on its own. References to tasks outside the plan
/// and roles that are not built in cannot be checked there; they are listed.
pub(super) fn check_file(file: &Path, format: Option<PlanFormatArg>, j: bool) -> Result<(), Error> {
    let read = read_plan(file, format)?;
    let shown = shown(file);
    let c = plans::check_file(&read.parsed, &shown).map_err(|e| read.locate(e))?;
    if j {
        let mut v = check_json(&c.validated);
        v["project"] = json!(false);
        v["unchecked_references"] = json!(c.unchecked_refs);
        v["unchecked_roles"] = json!(c.unchecked_roles);
        print_json(&v);
        return Ok(());
    }
    outln(&check_line(&shown, &c.validated));
    let mut unchecked = Vec::new();
    if !c.unchecked_refs.is_empty() {
        unchecked.push(format!(
            "references to tasks outside the plan ({})",
            c.unchecked_refs.join(", ")
        ));
    }
    if !c.unchecked_roles.is_empty() {
        unchecked.push(format!(
            "roles that are not built in ({})",
            c.unchecked_roles.join(", ")
        ));
    }
    note(&if unchecked.is_empty() {
        "checked outside a project: the file on its own".to_owned()
    } else {
        format!(
            "checked outside a project, so {} could not be checked; run `downbeat plan check` in the project to check them",
            unchecked.join(" and ")
        )
    });
    Ok(())
}

/// `plan new`: a commented starting plan, on stdout or in a new file.
pub(super) fn new_plan(
    output: Option<&Path>,
    format: Option<PlanFormatArg>,
    force: bool,
    j: bool,
) -> Result<(), Error> {
    let format = format.map(plan_format).unwrap_or_else(|| {
        output
            .and_then(|o| o.to_str())
            .and_then(PlanFormat::from_path)
            .unwrap_or(PlanFormat::Toml)
    });
    let Some(path) = output else {
        out(plans::scaffold(format));
        return Ok(());
    };
    plans::write_scaffold(path, format, force)?;
    if j {
        print_json(&json!({"written": path, "format": format_name(format)}));
    } else {
        note(&format!(
            "wrote {0}; edit it, then `downbeat plan check {0}` and `downbeat plan apply {0}`",
            path.display()
        ));
    }
    Ok(())
}

/// A format's name as options and answers spell it.
pub(super) fn format_name(f: PlanFormat) -> &'static str {
    match f {
        PlanFormat::Toml => "toml",
        PlanFormat::Yaml => "yaml",
        PlanFormat::Json => "json",
    }
}

fn plan_format(f: PlanFormatArg) -> PlanFormat {
    match f {
        PlanFormatArg::Toml => PlanFormat::Toml,
        PlanFormatArg::Yaml => PlanFormat::Yaml,
        PlanFormatArg::Json => PlanFormat::Json,
    }
}

fn check_json(v: &plan::ValidatedPlan) -> Value {
    json!({"valid": true, "tasks": v.tasks.len(), "edges": v.edges.len(), "objectives": v.objectives.len()})
}

fn check_line(shown: &str, v: &plan::ValidatedPlan) -> String {
    format!(
        "{shown} is valid: {} task(s), {} dependency edge(s), {} objective(s), {} decision(s); nothing written",
        v.tasks.len(),
        v.edges.len(),
        v.objectives.len(),
        v.decisions.len()
    )
}

fn is_stdin(file: &Path) -> bool {
    file.as_os_str() == "-"
}

/// How messages name a plan's source.
fn shown(file: &Path) -> String {
    if is_stdin(file) {
        "stdin".into()
    } else {
        file.display().to_string()
    }
}

/// Reads and parses a plan from a file or standard input (`-`); its format from `format`,
/// else from the file's extension.
fn read_plan(file: &Path, format: Option<PlanFormatArg>) -> Result<ReadPlan, Error> {
    let shown = shown(file);
    let format = match format {
        Some(f) => plan_format(f),
        None if is_stdin(file) => {
            return Err(Error::new(
                Kind::Usage,
                "a plan read from standard input needs its format: --format toml|yaml|json",
            ));
        }
        None => PlanFormat::from_path(&shown).ok_or_else(|| {
            Error::invalid(format!("{shown}: unknown plan format"))
                .with_hint("plan files end in .toml, .yaml, .yml or .json; otherwise pass --format toml|yaml|json")
        })?,
    };
    let text = if is_stdin(file) {
        let mut text = String::new();
        std::io::stdin().read_to_string(&mut text).map_err(|e| {
            Error::invalid(format!("cannot read the plan from standard input: {e}"))
        })?;
        text
    } else {
        std::fs::read_to_string(file).map_err(|e| {
            let c = if e.kind() == std::io::ErrorKind::NotFound {
                Kind::NotFound
            } else {
                Kind::Invalid
            };
            Error::new(c, format!("cannot read {shown}: {e}"))
        })?
    };
    let parsed = plan::parse(&text, format)
        .map_err(|e| Error::invalid(format!("{shown}: {}", e.message)))?;
    Ok(ReadPlan {
        parsed,
        text,
        format,
    })
}

/// A plan as read: parsed, with its text to tell where its tasks are.
struct ReadPlan {
    parsed: plan::PlanFile,
    text: String,
    format: PlanFormat,
}

impl ReadPlan {
    /// An error about this plan, with the line of every task its problems name.
    fn locate(&self, e: Error) -> Error {
        annotate(e, &self.text, self.format, &self.parsed)
    }

    /// The parsed plan, to be handed over, and where its text is, to tell where its tasks are.
    /// A regular file's text is let go (a plan of a million tasks is a hundred megabytes) and
    /// read again should an error need it; what cannot be read twice (standard input, a pipe)
    /// is kept.
    fn take(self, file: &Path) -> (plan::PlanFile, PlanText) {
        let again = !is_stdin(file) && std::fs::metadata(file).is_ok_and(|m| m.is_file());
        let text = PlanText {
            text: (!again).then_some(self.text),
            file: file.to_path_buf(),
            format: self.format,
        };
        (self.parsed, text)
    }
}

/// Where the text of a plan whose parsed form was handed over is.
struct PlanText {
    /// The text itself, when it cannot be read again.
    text: Option<String>,
    file: std::path::PathBuf,
    format: PlanFormat,
}

impl PlanText {
    /// [`ReadPlan::locate`], reading and parsing the text again (only errors need it).
    fn locate(&self, e: Error) -> Error {
        let text = match &self.text {
            Some(t) => std::borrow::Cow::Borrowed(t.as_str()),
            None => match std::fs::read_to_string(&self.file) {
                Ok(t) => std::borrow::Cow::Owned(t),
                Err(_) => return e,
            },
        };
        match plan::parse(&text, self.format) {
            Ok(parsed) => annotate(e, &text, self.format, &parsed),
            Err(_) => e,
        }
    }
}

/// `e` with the line of every task of the plan its problems name.
fn annotate(mut e: Error, text: &str, format: PlanFormat, parsed: &plan::PlanFile) -> Error {
    e.message = downbeat_core::plan_lines::annotate(&e.message, text, format, parsed);
    e
}

/// The output of a plan's first application: what was created.
pub(super) fn first_application(
    name: &str,
    prepared: &Prepared,
    applied: &downbeat_store::AppliedPlan,
) {
    note(&format!(
        "applied {name}: {} task(s), {} dependency edge(s), {} objective(s), {} decision(s), {} insight(s)",
        applied.tasks.len(),
        applied.edges,
        applied.objectives.len(),
        applied.decisions.len(),
        applied.insights.len()
    ));
    // A plan of a million tasks is listed without holding a million rows.
    let header = ["ID", "KEY", "TITLE"];
    let ids = applied.tasks.iter().map(|(_, id)| id.to_string().len());
    let keys = applied.tasks.iter().filter_map(|(k, _)| k.as_deref());
    let width = [
        ids.max().unwrap_or(0).max(header[0].len()),
        keys.map(shown_width)
            .max()
            .unwrap_or(0)
            .max(header[1].len()),
        0,
    ];
    let rows = applied
        .tasks
        .iter()
        .zip(&prepared.diff.new.tasks)
        .map(|((k, id), t)| {
            [
                Cow::Owned(id.to_string()),
                Cow::Borrowed(k.as_deref().unwrap_or_default()),
                Cow::Owned(clip(&t.new.title, 70)),
            ]
        });
    table_streamed(&header, &width, rows);
}

/// "2 added, 1 changed, …" (`dry`: "2 to add, …").
pub(super) fn summary(d: &PlanDiff, dry: bool) -> String {
    let cancelled = d.removed.iter().filter(|r| r.cancel).count();
    let kept = d.removed.len() - cancelled;
    let mut parts = vec![
        format!(
            "{} {}",
            d.new.tasks.len(),
            if dry { "to add" } else { "added" }
        ),
        format!(
            "{} {}",
            d.changed.len(),
            if dry { "to change" } else { "changed" }
        ),
        format!(
            "{cancelled} {}",
            if dry { "to cancel" } else { "cancelled" }
        ),
    ];
    if kept > 0 {
        parts.push(format!("{kept} removed but already finished"));
    }
    if !d.conflicts.is_empty() {
        parts.push(format!("{} conflict(s)", d.conflicts.len()));
    }
    parts.push(format!("{} unchanged", d.unchanged));
    parts.join(", ")
}

fn field_text(f: &FieldChange) -> String {
    match f.field {
        "description" => "description changed".into(),
        "dependencies" => {
            let mut parts = Vec::new();
            if !f.after.is_empty() {
                parts.push(format!("+{}", f.after));
            }
            if !f.before.is_empty() {
                parts.push(format!("-{}", f.before));
            }
            format!("dependencies: {}", parts.join(" "))
        }
        _ => format!(
            "{}: {} → {}",
            f.field,
            clip(&f.before, 30),
            clip(&f.after, 30)
        ),
    }
}

/// One line per task the plan adds, changes, removes or cannot change (`+ ~ - = !`).
pub(super) fn diff_table(d: &PlanDiff, created: Option<&[(Option<String>, TaskId)]>) -> String {
    let mut rows: Vec<Vec<String>> = Vec::new();
    for (i, t) in d.new.tasks.iter().enumerate() {
        let id = created
            .and_then(|c| c.get(i))
            .map_or("new".into(), |(_, id)| id.to_string());
        rows.push(vec![
            "+".into(),
            id,
            t.new.key.clone().unwrap_or_default(),
            clip(&t.new.title, 50),
            "added".into(),
        ]);
    }
    for c in &d.changed {
        let what: Vec<String> = c.fields.iter().map(field_text).collect();
        rows.push(vec![
            "~".into(),
            c.id.to_string(),
            c.key.clone(),
            clip(&c.title, 50),
            what.join("; "),
        ]);
    }
    for r in &d.removed {
        let (mark, what) = if r.cancel {
            ("-", "removed: cancelled".to_owned())
        } else {
            (
                "=",
                format!("removed, already {}: stays as it is", r.status),
            )
        };
        rows.push(vec![
            mark.into(),
            r.id.to_string(),
            r.key.clone(),
            clip(&r.title, 50),
            what,
        ]);
    }
    for c in &d.conflicts {
        rows.push(vec![
            "!".into(),
            c.id.to_string(),
            c.key.clone(),
            clip(&c.title, 50),
            format!("conflict: {}", c.reason),
        ]);
    }
    if rows.is_empty() {
        return String::new();
    }
    table(&["", "ID", "KEY", "TITLE", "CHANGE"], &rows)
}

/// The JSON answer of `plan apply` (documented in docs/plan-format.md).
pub(super) fn diff_json(
    name: &str,
    d: &PlanDiff,
    created: Option<&[(Option<String>, TaskId)]>,
    dry: bool,
) -> Value {
    let tasks: Vec<Value> = d
        .new
        .tasks
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let mut v = json!({"key": t.new.key, "title": t.new.title});
            if let Some((_, id)) = created.and_then(|c| c.get(i)) {
                v["id"] = json!(id);
            }
            v
        })
        .collect();
    json!({
        "plan": name,
        "dry_run": dry,
        "tasks": tasks,
        "changed": d.changed,
        "removed": d.removed,
        "conflicts": d.conflicts,
        "unchanged": d.unchanged,
    })
}
