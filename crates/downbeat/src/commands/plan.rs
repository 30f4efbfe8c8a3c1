//! `downbeat plan check|apply`.

use downbeat_app::error::{Error, Kind};
use downbeat_app::plans::{Applied, apply_plan, validate_plan};
use downbeat_app::project::Project;
use downbeat_core::plan::{self, PlanFormat};
use serde_json::json;

use super::render::clip;
use crate::cli::*;
use crate::output::{json as print_json, note, out, outln, table};

pub(super) async fn plan_cmd(p: &Project, c: PlanCmd, j: bool) -> Result<(), Error> {
    let (file, dry) = match c {
        PlanCmd::Apply { file, dry_run } => (file, dry_run),
        PlanCmd::Check { file } => (file, true),
    };
    let shown = file.display().to_string();
    let format = PlanFormat::from_path(&shown).ok_or_else(|| {
        Error::invalid(format!("{shown}: unknown plan format"))
            .with_hint("plan files end in .toml, .yaml, .yml or .json")
    })?;
    let text = std::fs::read_to_string(&file).map_err(|e| {
        let c = if e.kind() == std::io::ErrorKind::NotFound {
            Kind::NotFound
        } else {
            Kind::Invalid
        };
        Error::new(c, format!("cannot read {shown}: {e}"))
    })?;
    let parsed = plan::parse(&text, format)
        .map_err(|e| Error::invalid(format!("{shown}: {}", e.message)))?;
    let validated = validate_plan(p, &parsed, &shown).await?;
    let name = validated.name.clone().unwrap_or_else(|| shown.clone());
    if dry {
        if j {
            print_json(
                &json!({"valid": true, "tasks": validated.tasks.len(), "edges": validated.edges.len(), "objectives": validated.objectives.len()}),
            );
        } else {
            outln(&format!(
                "{shown} is valid: {} task(s), {} dependency edge(s), {} objective(s), {} decision(s); nothing written",
                validated.tasks.len(),
                validated.edges.len(),
                validated.objectives.len(),
                validated.decisions.len()
            ));
        }
        return Ok(());
    }
    let Applied { applied, notes } = apply_plan(p, &validated).await?;
    for n in &notes {
        note(n);
    }
    if j {
        print_json(&json!({
            "plan": name,
            "tasks": applied.tasks.iter().map(|(k, id)| json!({"key": k, "id": id})).collect::<Vec<_>>(),
            "edges": applied.edges,
            "objectives": applied.objectives,
            "decisions": applied.decisions,
            "insights": applied.insights,
        }));
    } else {
        note(&format!(
            "applied {name}: {} task(s), {} dependency edge(s), {} objective(s), {} decision(s), {} insight(s)",
            applied.tasks.len(),
            applied.edges,
            applied.objectives.len(),
            applied.decisions.len(),
            applied.insights.len()
        ));
        let rows: Vec<Vec<String>> = applied
            .tasks
            .iter()
            .zip(&validated.tasks)
            .map(|((k, id), t)| {
                vec![
                    id.to_string(),
                    k.clone().unwrap_or_default(),
                    clip(&t.new.title, 70),
                ]
            })
            .collect();
        out(&table(&["ID", "KEY", "TITLE"], &rows));
    }
    Ok(())
}
