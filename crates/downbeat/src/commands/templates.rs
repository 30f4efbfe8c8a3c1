//! `downbeat template list|show|apply` and `plan new --template`: workflow templates rendered
//! with their parameters by the application layer, applied through the plan path.

use std::fmt::Write as _;
use std::path::Path;

use downbeat_app::error::Error;
use downbeat_app::plans::Applied;
use downbeat_app::project::Project;
use downbeat_app::templates::{self, ParamKind, Template};
use downbeat_core::plan::{self, PlanFormat};
use serde_json::{Value, json};

use super::plan::{diff_json, diff_table, first_application, format_name, summary};
use super::render::{clip, preview_json, preview_text};
use crate::cli::{PlanFormatArg, TemplateCmd};
use crate::output::{json as print_json, note, out, table};

/// Where `plan new --template` puts the plan.
pub(super) struct Target<'a> {
    pub output: Option<&'a Path>,
    pub format: Option<PlanFormatArg>,
    pub force: bool,
}

/// `template list` and `template show`: built-in templates, and the project's under `root`.
pub(super) fn browse(root: Option<&Path>, c: TemplateCmd, j: bool) -> Result<(), Error> {
    match c {
        TemplateCmd::List => list(root, j),
        TemplateCmd::Show { name } => show(&templates::find(root, &name)?, j),
        TemplateCmd::Apply { .. } => Err(Error::internal("command dispatched twice")),
    }
}

fn list(root: Option<&Path>, j: bool) -> Result<(), Error> {
    let all = templates::list(root)?;
    if j {
        let v: Vec<Value> = all
            .iter()
            .map(|t| {
                json!({
                    "name": t.name,
                    "source": t.source,
                    "description": t.description,
                    "parameters": t.parameters.keys().collect::<Vec<_>>(),
                })
            })
            .collect();
        print_json(&v);
        return Ok(());
    }
    let rows: Vec<Vec<String>> = all
        .iter()
        .map(|t| {
            vec![
                t.name.clone(),
                if t.source == "builtin" {
                    "builtin".into()
                } else {
                    "project".into()
                },
                params_line(t),
                clip(&t.description, 70),
            ]
        })
        .collect();
    out(&table(
        &["NAME", "SOURCE", "PARAMETERS", "DESCRIPTION"],
        &rows,
    ));
    Ok(())
}

/// `name` for a required parameter, `name=default` otherwise.
fn params_line(t: &Template) -> String {
    t.parameters
        .iter()
        .map(|(k, p)| match &p.default {
            Some(d) => format!("{k}={}", d.to_string().trim_matches('"')),
            None => k.clone(),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn kind_text(p: &templates::Param) -> String {
    match p.kind {
        ParamKind::String => "string".into(),
        ParamKind::Int => "int".into(),
        ParamKind::Bool => "bool".into(),
        ParamKind::Enum => format!("enum ({})", p.values.join(" | ")),
    }
}

fn show(t: &Template, j: bool) -> Result<(), Error> {
    if j {
        print_json(t);
        return Ok(());
    }
    let mut s = String::new();
    let _ = writeln!(s, "{}: {}", t.name, t.description);
    let _ = writeln!(s, "source: {}", t.source);
    if let Some(h) = &t.hold {
        let _ = writeln!(
            s,
            "holds other work: until the task `{h}` is done, nothing else starts"
        );
    }
    s.push('\n');
    let rows: Vec<Vec<String>> = t
        .parameters
        .iter()
        .map(|(k, p)| {
            vec![
                k.clone(),
                kind_text(p),
                match &p.default {
                    Some(d) => d.to_string(),
                    None => "(required)".into(),
                },
                p.description.clone().unwrap_or_default(),
            ]
        })
        .collect();
    s.push_str(&table(
        &["PARAMETER", "TYPE", "DEFAULT", "DESCRIPTION"],
        &rows,
    ));
    let _ = write!(s, "\nplan ({}):\n{}", format_name(t.format), t.body);
    out(&s);
    Ok(())
}

/// `template apply`: renders, applies (or compares, with `dry_run`), adds the template's hold.
pub(super) async fn apply(
    p: &Project,
    name: &str,
    sets: &[String],
    dry_run: bool,
    j: bool,
) -> Result<(), Error> {
    let t = templates::find(Some(&p.root), name)?;
    let a = templates::apply(p, &t, sets, dry_run).await?;
    let prepared = &a.outcome.prepared;
    let d = &prepared.diff;
    let shown = prepared
        .name
        .clone()
        .unwrap_or_else(|| format!("template `{name}`"));
    if j {
        let created = a
            .outcome
            .applied
            .as_ref()
            .map(|x| x.applied.tasks.as_slice());
        let mut v = diff_json(&shown, d, created, dry_run);
        v["template"] = json!(t.name);
        v["values"] = json!(a.rendered.values);
        v["preview"] = preview_json(&a.preview);
        v["hold"] = json!(a.hold);
        print_json(&v);
        return Ok(());
    }
    match &a.outcome.applied {
        None => {
            out(&diff_table(d, None));
            out(&preview_text(&a.preview));
            note(&format!("{shown}: {}; nothing written", summary(d, true)));
            if let Some((key, _)) = &a.rendered.hold {
                note(&format!(
                    "applying it would hold all other work until `{key}` is done"
                ));
            }
        }
        Some(Applied { applied, notes }) => {
            for n in notes {
                note(n);
            }
            if prepared.first {
                first_application(&shown, prepared, applied);
            } else {
                out(&diff_table(d, Some(&applied.tasks)));
                note(&format!("applied {shown}: {}", summary(d, false)));
            }
            out(&preview_text(&a.preview));
            if let Some(h) = &a.hold {
                note(&format!(
                    "hold {} added: nothing but {} (and what it waits on) starts until it is done; `downbeat unpause {}` releases it",
                    h.id,
                    h.task.map(|t| t.to_string()).unwrap_or_default(),
                    h.id
                ));
            }
        }
    }
    Ok(())
}

/// `plan new --template NAME`: the rendered plan, on stdout or in a new file (in another
/// format when asked).
pub(super) fn new_from(
    root: Option<&Path>,
    name: &str,
    sets: &[String],
    target: &Target<'_>,
    j: bool,
) -> Result<(), Error> {
    let t = templates::find(root, name)?;
    let r = templates::check(&t, sets)?;
    let format = match (target.format, target.output.and_then(Path::to_str)) {
        (Some(PlanFormatArg::Toml), _) => PlanFormat::Toml,
        (Some(PlanFormatArg::Yaml), _) => PlanFormat::Yaml,
        (Some(PlanFormatArg::Json), _) => PlanFormat::Json,
        (None, Some(o)) => PlanFormat::from_path(o).unwrap_or(t.format),
        (None, None) => t.format,
    };
    let text = if format == t.format {
        r.text.clone()
    } else {
        plan::to_text(&r.plan, format).map_err(Error::internal)?
    };
    let Some(path) = target.output else {
        out(&text);
        return Ok(());
    };
    downbeat_app::plans::write_text(path, format, &text, target.force)?;
    if j {
        print_json(&json!({"written": path, "format": format_name(format), "template": t.name}));
    } else {
        note(&format!(
            "wrote {0} from template `{1}`; `downbeat plan apply {0}` applies it",
            path.display(),
            t.name
        ));
    }
    Ok(())
}
