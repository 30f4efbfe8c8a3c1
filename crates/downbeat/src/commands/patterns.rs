//! `downbeat patterns`: what finished work says about the estimates, per role and per plan.

use downbeat_app::project::Project;
use downbeat_core::patterns::{Pattern, Patterns, Spread};
use downbeat_core::time::Millis;
use serde_json::json;

use crate::cli::PatternsArgs;
use crate::error::Error;
use crate::output::{json as print_json, note, out, table};

pub(super) async fn patterns_cmd(p: &Project, a: PatternsArgs, j: bool) -> Result<(), Error> {
    let learned = downbeat_app::patterns::patterns(p, a.role.as_deref()).await?;
    if j {
        print_json(&json!({
            "min_samples": downbeat_core::patterns::MIN_SAMPLES,
            "overall": learned.overall,
            "roles": learned.roles,
            "plans": learned.plans,
            "templates": learned.templates,
        }));
        return Ok(());
    }
    if learned.overall.tasks == 0 {
        note("no finished attempts yet: patterns come from work that has run");
    }
    out(&render(&learned));
    Ok(())
}

const HEADER: [&str; 9] = [
    "",
    "tasks",
    "attempts",
    "per effort",
    "spread",
    "first try",
    "retries",
    "flags",
    "shape",
];

fn render(l: &Patterns) -> String {
    let mut s = String::new();
    let mut section = |title: &str, rows: Vec<Vec<String>>| {
        if rows.is_empty() {
            return;
        }
        let mut header = HEADER;
        header[0] = title;
        s.push_str(&table(&header, &rows));
        s.push('\n');
    };
    section("overall", vec![row(&l.overall)]);
    section("role", l.roles.iter().map(row).collect());
    section("plan", l.plans.iter().map(row).collect());
    section("template", l.templates.iter().map(row).collect());
    s.push_str(&format!(
        "per effort: median time of one effort unit over succeeded attempts (calibrated from {} on); spread: 25th–75th percentile; shape: children per container (median) / levels\n",
        downbeat_core::patterns::MIN_SAMPLES
    ));
    s
}

fn row(p: &Pattern) -> Vec<String> {
    let human = |ms: i64| Millis(ms).human();
    let per = match (p.ms_per_effort, p.calibrated()) {
        (Some(s), Some(_)) => human(s.median),
        (Some(s), None) => format!("({})", human(s.median)),
        (None, _) => "-".into(),
    };
    let spread = p.ms_per_effort.map_or("-".into(), |s: Spread| {
        format!("{}–{} (n={})", human(s.low), human(s.high), s.samples)
    });
    let rate = p
        .first_try_rate
        .map_or("-".into(), |r| format!("{:.0}%", r * 100.0));
    let shape = match &p.shape.children {
        Some(c) => format!("{} / {}", c.median, p.shape.depth),
        None => format!("- / {}", p.shape.depth),
    };
    vec![
        p.name.clone(),
        p.tasks.to_string(),
        p.attempts.to_string(),
        per,
        spread,
        rate,
        p.retries.to_string(),
        p.flags.to_string(),
        shape,
    ]
}
