//! Plans: validating a parsed plan file against the project, and applying it (its role files,
//! then every task, edge and record in one transaction).

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;

use downbeat_core::ids::TaskId;
use downbeat_core::plan;
use downbeat_core::task::{Edge, Priority, Status};

use crate::error::{Error, Kind};
use crate::project::Project;

/// Validates a parsed plan against the project (roles, existing tasks and keys, cycles formed
/// with stored edges); every problem names the offending task or edge. `shown` prefixes the
/// messages (the file name, or `plan`).
pub async fn validate_plan(
    p: &Project,
    parsed: &plan::PlanFile,
    shown: &str,
) -> Result<plan::ValidatedPlan, Error> {
    // References to tasks outside the plan: look them all up once.
    let refs: Vec<String> = parsed
        .tasks
        .iter()
        .flat_map(|t| {
            t.depends_on
                .iter()
                .chain(&t.related)
                .chain(&t.discovered_from)
                .chain(t.parent.iter())
        })
        .chain(parsed.objectives.iter().flat_map(|o| o.tasks.iter()))
        .chain(parsed.decisions.iter().filter_map(|d| d.task.as_ref()))
        .chain(parsed.insights.iter().filter_map(|i| i.task.as_ref()))
        .cloned()
        .collect();
    // Plan keys resolve inside the plan; only the other references need the database.
    let keys: Vec<String> = parsed.tasks.iter().filter_map(|t| t.key.clone()).collect();
    let own: HashSet<&str> = keys.iter().map(String::as_str).collect();
    let mut outside: Vec<String> = refs
        .into_iter()
        .filter(|r| !own.contains(r.as_str()))
        .collect();
    outside.sort();
    outside.dedup();
    let known = p.store.lookup_tasks(&outside).await?;
    let taken = p.store.keys_in_use(&keys).await?;
    let validated = plan::validate(parsed, &p.roles, &|r| known.get(r).copied(), &|k| {
        taken.contains(k)
    })
    .map_err(|e| Error::invalid(format!("{shown}: {e}")))?;
    if let Some(cycle) = dry_cycle_check(p, &validated).await? {
        return Err(Error::new(Kind::Conflict, format!("{shown}: {cycle}")));
    }
    Ok(validated)
}

/// Writes the plan's role files, then inserts the plan in one transaction.
pub async fn apply_plan(p: &Project, validated: &plan::ValidatedPlan) -> Result<Applied, Error> {
    let notes = if validated.roles.is_empty() {
        Vec::new()
    } else {
        write_plan_roles(p, &validated.roles)?
    };
    let actor = p.actor().await?;
    let applied = p.store.apply_plan(validated, &actor).await?;
    Ok(Applied { applied, notes })
}

/// What applying a plan did.
pub struct Applied {
    pub applied: downbeat_store::AppliedPlan,
    /// What happened to the plan's role files, for a person to read.
    pub notes: Vec<String>,
}

/// Catches cycles before writing so a dry run reports them too (the store re-checks on write).
pub async fn dry_cycle_check(
    p: &Project,
    v: &plan::ValidatedPlan,
) -> Result<Option<String>, Error> {
    use downbeat_core::graph::{GraphSnapshot, GraphTask, find_cycle};
    use downbeat_core::plan::TaskRef;
    let mut snap: GraphSnapshot = p.store.graph().await?;
    let base = snap.tasks.iter().map(|t| t.id.seq()).max().unwrap_or(0) + 1_000_000;
    let id_of = |r: TaskRef| match r {
        TaskRef::New(i) => {
            TaskId::from_seq(base + i as u32).unwrap_or(TaskId::from_seq(0).expect("zero"))
        }
        TaskRef::Existing(id) => id,
    };
    let names: HashMap<TaskId, String> = v
        .tasks
        .iter()
        .enumerate()
        .map(|(i, t)| {
            (
                id_of(TaskRef::New(i)),
                t.new
                    .key
                    .clone()
                    .unwrap_or_else(|| format!("\"{}\"", t.new.title)),
            )
        })
        .collect();
    for (i, t) in v.tasks.iter().enumerate() {
        snap.tasks.push(GraphTask {
            id: id_of(TaskRef::New(i)),
            key: t.new.key.clone(),
            parent: t.parent.map(id_of),
            title: t.new.title.clone(),
            status: Status::Pending,
            role: None,
            effort: 1,
            priority: Priority::Normal,
            footprint: vec![],
        });
    }
    for &(f, t, kind) in &v.edges {
        snap.edges.push(Edge {
            from: id_of(f),
            to: id_of(t),
            kind,
        });
    }
    Ok(find_cycle(&snap).map(|c| {
        let mut parts: Vec<String> = c
            .path
            .iter()
            .map(|id| names.get(id).cloned().unwrap_or_else(|| id.to_string()))
            .collect();
        if let Some(first) = parts.first().cloned() {
            parts.push(first);
        }
        format!("dependency cycle: {}", parts.join(" → "))
    }))
}

fn write_plan_roles(
    p: &Project,
    roles: &[(String, downbeat_core::role::RoleFile)],
) -> Result<Vec<String>, Error> {
    let mut notes = Vec::new();
    let dir = p.dir().join("roles");
    std::fs::create_dir_all(&dir)?;
    for (name, r) in roles {
        let path = dir.join(format!("{name}.toml"));
        if path.exists() {
            notes.push(format!(
                "role `{name}`: {} exists; keeping it",
                path.display()
            ));
            continue;
        }
        let mut s = String::new();
        let q = |v: &str| toml::Value::String(v.to_owned()).to_string();
        if let Some(d) = &r.description {
            let _ = writeln!(s, "description = {}", q(d));
        }
        if let Some(pr) = &r.prompt {
            let _ = writeln!(s, "prompt = {}", q(pr));
        }
        if let Some(m) = r.max_parallel {
            let _ = writeln!(s, "max_parallel = {m}");
        }
        if let Some(st) = &r.stale_after {
            let _ = writeln!(s, "stale_after = {}", q(st));
        }
        std::fs::write(&path, s)?;
        notes.push(format!("role `{name}` written to {}", path.display()));
    }
    Ok(notes)
}
