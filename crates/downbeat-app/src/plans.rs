//! Plans: validating a parsed plan file against the project, and applying it (its role files,
//! then every task, edge and record in one transaction). [`apply`] is the one use case every
//! front end calls: a plan applied again is compared with what it created before
//! ([`diff_plan`]) and only the difference is written ([`apply_diff`]); a dry run stops after
//! the comparison.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;

use downbeat_core::ids::TaskId;
use downbeat_core::plan::{self, TaskRef};
use downbeat_core::plan_diff::{self, PlanChanges, PlanDiff, Record, Stored, record_key};
use downbeat_core::task::{Edge, Priority, Status};

use crate::error::{Error, Kind};
use crate::project::Project;

/// Validates a parsed plan against the project's roles and stored tasks (every problem names
/// the offending task or edge). Keys already in the project are the tasks the plan matches;
/// cycles are checked by the caller.
async fn validate_refs(
    p: &Project,
    parsed: Cow<'_, plan::PlanFile>,
    shown: &str,
) -> Result<plan::ValidatedPlan, Error> {
    let outside = outside_refs(&parsed);
    let known = p.store.lookup_tasks(&outside).await?;
    let mut problems = unknown_consensus_executors(p, &parsed);
    let existing = |r: &str| known.get(r).copied();
    let validated = match parsed {
        Cow::Borrowed(parsed) => plan::validate(parsed, &p.roles, &existing, &|_| false),
        Cow::Owned(parsed) => plan::validate_owned(parsed, &p.roles, &existing, &|_| false),
    };
    match validated {
        Ok(v) if problems.is_empty() => return Ok(v),
        Ok(_) => {}
        Err(e) => {
            problems.splice(0..0, e.problems);
        }
    }
    Err(Error::invalid(format!(
        "{shown}: {}",
        plan::PlanErrors { problems }
    )))
}

/// The executors consensus specs name that are neither configured nor built in.
fn unknown_consensus_executors(p: &Project, parsed: &plan::PlanFile) -> Vec<String> {
    let mut out = Vec::new();
    for (i, t) in parsed.tasks.iter().enumerate() {
        let Some(spec) = &t.consensus else { continue };
        let who = plan::task_label(i, t);
        out.extend(
            unknown_executors(p, spec)
                .into_iter()
                .map(|e| format!("{who}: consensus: {e}")),
        );
    }
    out
}

/// Why each executor `spec` names cannot be used: neither configured nor built in.
pub(crate) fn unknown_executors(
    p: &Project,
    spec: &downbeat_core::consensus::ConsensusSpec,
) -> Vec<String> {
    spec.executors
        .iter()
        .filter_map(|name| crate::runs::spec_named(&p.config.executors, name).err())
        .collect()
}

/// The plan's references that name no task of the plan (sorted, once each): stored tasks, or
/// mistakes.
fn outside_refs(parsed: &plan::PlanFile) -> Vec<String> {
    // Plan keys resolve inside the plan; only the other references need the database.
    let own: foldhash::HashSet<&str> = parsed
        .tasks
        .iter()
        .filter_map(|t| t.key.as_deref())
        .collect();
    let mut outside: Vec<String> = parsed
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
        .filter(|r| !own.contains(r.as_str()))
        .cloned()
        .collect();
    outside.sort();
    outside.dedup();
    outside
}

/// A request to apply a plan, or with `dry_run` to compare it with the project only.
pub struct ApplyRequest {
    /// How messages name the plan (its file name, or `plan`).
    pub shown: String,
    /// The name the plan's applications are recorded under when it has no `[plan] name` (its
    /// file name); with neither, nothing is recorded and tasks that leave the plan go unnoticed.
    pub fallback_name: Option<String>,
    pub dry_run: bool,
    /// Leave running or finished tasks the plan would change as they are (else such a plan is
    /// refused).
    pub skip_conflicts: bool,
    /// How the front end spells the option that skips conflicts, for the hint of a refusal.
    pub skip_option: &'static str,
}

/// What [`apply`] found and, unless it was a dry run, did.
pub struct Outcome {
    pub prepared: Prepared,
    /// What was written; `None` on a dry run.
    pub applied: Option<Applied>,
}

impl Outcome {
    /// The plan as people know it: its `[plan] name`, else how the request showed it.
    pub fn shown_name(&self, req: &ApplyRequest) -> String {
        self.prepared
            .validated
            .name
            .clone()
            .unwrap_or_else(|| req.shown.clone())
    }
}

/// Validates a plan, compares it with the project (tasks matched by key) and, unless
/// `req.dry_run`, writes the difference in one transaction: everything on a first application.
pub async fn apply(
    p: &Project,
    parsed: &plan::PlanFile,
    req: &ApplyRequest,
) -> Result<Outcome, Error> {
    apply_starting(p, parsed, req, &HashMap::new()).await
}

/// [`apply`], taking the plan: its tasks move into the validated plan instead of being copied,
/// so a large plan is held once.
pub async fn apply_owned(
    p: &Project,
    parsed: plan::PlanFile,
    req: &ApplyRequest,
) -> Result<Outcome, Error> {
    apply_cow(p, Cow::Owned(parsed), req, &HashMap::new()).await
}

/// [`apply`], with the statuses (by key) the tasks it adds start in instead of `pending`, as
/// an import carries them over: only leaves take one (a container's status rolls up), in the
/// same transaction.
pub async fn apply_starting(
    p: &Project,
    parsed: &plan::PlanFile,
    req: &ApplyRequest,
    statuses: &HashMap<String, Status>,
) -> Result<Outcome, Error> {
    apply_cow(p, Cow::Borrowed(parsed), req, statuses).await
}

async fn apply_cow(
    p: &Project,
    parsed: Cow<'_, plan::PlanFile>,
    req: &ApplyRequest,
    statuses: &HashMap<String, Status>,
) -> Result<Outcome, Error> {
    let name = parsed
        .plan
        .name
        .clone()
        .or_else(|| req.fallback_name.clone());
    let prepared = diff_plan(p, parsed, &req.shown, name).await?;
    let applied = if req.dry_run {
        None
    } else {
        Some(apply_diff(p, &prepared, req, statuses).await?)
    };
    Ok(Outcome { prepared, applied })
}

/// A commented starting plan in `format`, with an example of every field (JSON has no
/// comments: the same plan without them). Every format parses to the same plan, which
/// validates with the built-in roles.
pub fn scaffold(format: plan::PlanFormat) -> &'static str {
    match format {
        plan::PlanFormat::Toml => include_str!("../templates/plan.toml"),
        plan::PlanFormat::Yaml => include_str!("../templates/plan.yaml"),
        plan::PlanFormat::Json => include_str!("../templates/plan.json"),
    }
}

/// Writes [`scaffold`] to `path`; an existing file is refused unless `force`.
pub fn write_scaffold(
    path: &std::path::Path,
    format: plan::PlanFormat,
    force: bool,
) -> Result<(), Error> {
    write_text(path, format, scaffold(format), force)
}

/// Writes a plan's `text` (in `format`) to `path`; a file name whose extension names another
/// format is refused, and an existing file unless `force`.
pub fn write_text(
    path: &std::path::Path,
    format: plan::PlanFormat,
    text: &str,
    force: bool,
) -> Result<(), Error> {
    use std::io::Write as _;
    let shown = path.display();
    if let Some(ext) = path.to_str().and_then(plan::PlanFormat::from_path)
        && ext != format
    {
        let name = |f: plan::PlanFormat| format!("{f:?}").to_lowercase();
        return Err(Error::invalid(format!(
            "{shown}: the file name says {} but the format asked for is {}",
            name(ext),
            name(format)
        ))
        .with_hint("give the file the extension of its format (.toml, .yaml, .json)"));
    }
    let mut open = std::fs::OpenOptions::new();
    open.write(true);
    if force {
        open.create(true).truncate(true);
    } else {
        open.create_new(true);
    }
    let mut f = open.open(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            Error::new(
                Kind::Conflict,
                format!("{shown} already exists; nothing written"),
            )
            .with_hint("choose another file with -o, or pass --force to replace it")
        } else {
            Error::invalid(format!("cannot write {shown}: {e}"))
        }
    })?;
    f.write_all(text.as_bytes())
        .map_err(|e| Error::invalid(format!("cannot write {shown}: {e}")))
}

/// A plan checked on its own, outside any project: what could not be checked there.
pub struct FileCheck {
    pub validated: plan::ValidatedPlan,
    /// References that name no task of the plan: in a project they must name a stored task.
    pub unchecked_refs: Vec<String>,
    /// Roles that are neither built in nor declared by the plan: a project may define them.
    pub unchecked_roles: Vec<String>,
}

/// Validates a plan without a project: its syntax, fields, keys, references within the plan,
/// parent loops and dependency cycles among its own tasks. References to other tasks and roles
/// that are not built in cannot be checked without the project; they are accepted and listed.
pub fn check_file(parsed: &plan::PlanFile, shown: &str) -> Result<FileCheck, Error> {
    use downbeat_core::role::{RoleFile, RoleSet};
    let unchecked_refs = outside_refs(parsed);
    let declared: HashSet<&str> = parsed.roles.iter().map(|r| r.name.as_str()).collect();
    let mut roles = RoleSet::builtin();
    let mut unchecked_roles: Vec<String> = parsed
        .tasks
        .iter()
        .filter_map(|t| t.role.clone())
        .filter(|r| !roles.contains(r) && !declared.contains(r.as_str()))
        .collect();
    unchecked_roles.sort();
    unchecked_roles.dedup();
    for r in &unchecked_roles {
        let stand_in = RoleFile {
            description: Some(String::new()),
            prompt: Some(String::new()),
            ..RoleFile::default()
        };
        // A malformed name is not merged, and validation reports it as an unknown role.
        let _ = roles.merge(r, "project", stand_in);
    }
    // Stand-in ids for the references outside the plan, one each.
    let stand_ins: HashMap<&str, TaskId> = unchecked_refs
        .iter()
        .zip(1u32..)
        .filter_map(|(r, n)| Some((r.as_str(), TaskId::from_seq(n)?)))
        .collect();
    let validated = plan::validate(parsed, &roles, &|r| stand_ins.get(r).copied(), &|_| false)
        .map_err(|e| Error::invalid(format!("{shown}: {e}")))?;
    // Cycles among the plan's own tasks (stored edges are unknown here).
    if let Some(cycle) = own_cycle(&validated) {
        return Err(Error::new(Kind::Conflict, format!("{shown}: {cycle}")));
    }
    Ok(FileCheck {
        validated,
        unchecked_refs,
        unchecked_roles,
    })
}

/// What applying a plan did.
pub struct Applied {
    pub applied: downbeat_store::AppliedPlan,
    /// What happened to the plan's role files, for a person to read.
    pub notes: Vec<String>,
}

/// A dependency cycle among the new tasks of `v` alone, described with their keys.
fn own_cycle(v: &plan::ValidatedPlan) -> Option<String> {
    let mut parts: Vec<String> = v
        .own_cycle()?
        .into_iter()
        .map(|i| {
            let t = &v.tasks[i].new;
            t.key.clone().unwrap_or_else(|| format!("\"{}\"", t.title))
        })
        .collect();
    if let Some(first) = parts.first().cloned() {
        parts.push(first);
    }
    Some(format!("dependency cycle: {}", parts.join(" → ")))
}

/// The dependency cycle the stored graph would have after `ch`, described with the plan's keys.
async fn cycle_after(p: &Project, ch: &PlanChanges) -> Result<Option<String>, Error> {
    Ok(cycle_in(p.store.graph().await?, ch))
}

/// The dependency cycle `snap` would have after `ch`, described with the plan's keys.
fn cycle_in(mut snap: downbeat_core::graph::GraphSnapshot, ch: &PlanChanges) -> Option<String> {
    use downbeat_core::graph::{GraphTask, find_cycle};
    let v = &ch.plan;
    let base = snap.tasks.iter().map(|t| t.id.seq()).max().unwrap_or(0) + 1_000_000;
    let id_of = |r: TaskRef| match r {
        TaskRef::New(i) => {
            TaskId::from_seq(base + i as u32).unwrap_or(TaskId::from_seq(0).expect("zero"))
        }
        TaskRef::Existing(id) => id,
    };
    let mut names: HashMap<TaskId, String> = v
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
    for t in &snap.tasks {
        if let Some(k) = &t.key {
            names.insert(t.id, k.clone());
        }
    }
    snap.edges.retain(|e| !ch.edges_removed.contains(e));
    for &(id, parent) in &ch.parents {
        if let Some(t) = snap.tasks.iter_mut().find(|t| t.id == id) {
            t.parent = parent.map(id_of);
        }
    }
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
    let added = ch
        .edges_added
        .iter()
        .map(|&(f, t, k)| (f, TaskRef::Existing(t), k));
    for (f, t, kind) in v.edges.iter().copied().chain(added) {
        snap.edges.push(Edge {
            from: id_of(f),
            to: id_of(t),
            kind,
        });
    }
    find_cycle(&snap).map(|c| {
        let mut parts: Vec<String> = c
            .path
            .iter()
            .map(|id| names.get(id).cloned().unwrap_or_else(|| id.to_string()))
            .collect();
        if let Some(first) = parts.first().cloned() {
            parts.push(first);
        }
        format!("dependency cycle: {}", parts.join(" → "))
    })
}

/// A plan compared with the project: what applying it would do.
pub struct Prepared {
    /// The plan as validated, every task counted as new (shared with `diff` when all its
    /// tasks are).
    pub validated: std::sync::Arc<plan::ValidatedPlan>,
    pub diff: PlanDiff,
    /// Under which name the plan's application is recorded (none: nothing is recorded, so
    /// tasks that leave the plan are not noticed).
    pub name: Option<String>,
    /// The record of the last application under that name.
    pub previous: Option<Record>,
    /// True when nothing of the plan is in the project yet.
    pub first: bool,
}

/// Validates a plan and compares it with the project: tasks are matched by key; `name`
/// identifies the plan's earlier applications (its `[plan] name`, else its file name).
async fn diff_plan(
    p: &Project,
    parsed: Cow<'_, plan::PlanFile>,
    shown: &str,
    name: Option<String>,
) -> Result<Prepared, Error> {
    let previous = match &name {
        Some(n) => p
            .store
            .meta_get(&record_key(n))
            .await?
            .and_then(|t| Record::from_json(&t)),
        None => None,
    };
    // Consensus tasks written out, so their answers and resolve task are found by key.
    let keyless = previous.as_ref().and_then(|_| {
        plan::expand_consensus(&parsed)
            .0
            .tasks
            .iter()
            .enumerate()
            .find(|(_, t)| t.key.is_none())
            .map(|(i, t)| (i, t.title.clone()))
    });
    let validated = std::sync::Arc::new(validate_refs(p, parsed, shown).await?);
    if let Some((i, title)) = keyless {
        return Err(Error::invalid(format!(
            "{shown}: task #{} (\"{title}\") has no key; this plan was applied before, and a task without a key would be created again",
            i + 1,
        ))
        .with_hint("give every task a `key`: it is how a plan applied again finds its tasks"));
    }
    // The stored tasks under the plan's keys and the keys the last application had.
    let mut keys: Vec<String> = validated
        .tasks
        .iter()
        .filter_map(|t| t.new.key.clone())
        .collect();
    if let Some(prev) = &previous {
        keys.extend(prev.keys.iter().cloned());
    }
    keys.sort();
    keys.dedup();
    let used: Vec<String> = p.store.keys_in_use(&keys).await?.into_iter().collect();
    let ids = p.store.lookup_tasks(&used).await?;
    let mut tasks = Vec::with_capacity(ids.len());
    let mut incoming = Vec::new();
    for (k, id) in &ids {
        tasks.push((k.clone(), p.store.task(*id).await?));
        incoming.extend(
            p.store
                .edges_of(*id)
                .await?
                .into_iter()
                .filter(|e| e.to == *id),
        );
    }
    let previous_ids = match &previous {
        Some(prev) => p.store.lookup_tasks(&prev.names()).await?,
        None => HashMap::new(),
    };
    let first = tasks.is_empty() && previous.is_none();
    let busy = if previous.is_some() {
        busy_containers(p).await?
    } else {
        HashSet::new()
    };
    let stored = Stored {
        by_key: tasks.iter().map(|(k, t)| (k.clone(), t)).collect(),
        incoming,
        previous: previous.as_ref(),
        previous_ids,
        busy,
        objectives: p
            .store
            .objectives()
            .await?
            .into_iter()
            .map(|o| o.title)
            .collect(),
        decisions: p
            .store
            .decisions()
            .await?
            .into_iter()
            .map(|d| d.text)
            .collect(),
        insights: p
            .store
            .insights()
            .await?
            .into_iter()
            .map(|i| i.text)
            .collect(),
    };
    let diff = plan_diff::diff(&validated, &stored);
    // Read the whole graph only when the plan reaches stored tasks: a million tasks are
    // copied with their names for it.
    let changes = diff.changes(None);
    let cycle = if changes.reaches_stored() {
        cycle_after(p, &changes).await?
    } else {
        own_cycle(&diff.new)
    };
    if let Some(cycle) = cycle {
        return Err(Error::new(Kind::Conflict, format!("{shown}: {cycle}")));
    }
    Ok(Prepared {
        validated,
        diff,
        name,
        previous,
        first,
    })
}

/// Containers with running work below them.
async fn busy_containers(p: &Project) -> Result<HashSet<TaskId>, Error> {
    let snap = p.store.graph().await?;
    let parent: HashMap<TaskId, TaskId> = snap
        .tasks
        .iter()
        .filter_map(|t| Some((t.id, t.parent?)))
        .collect();
    let mut busy = HashSet::new();
    for t in snap.tasks.iter().filter(|t| t.status == Status::Running) {
        let mut cur = t.id;
        while let Some(&up) = parent.get(&cur) {
            if !busy.insert(up) {
                break;
            }
            cur = up;
        }
    }
    Ok(busy)
}

/// Applies a compared plan: its role files, then the difference in one transaction. Conflicts
/// refuse the whole plan unless `req.skip_conflicts`, which leaves those tasks as they are.
async fn apply_diff(
    p: &Project,
    prepared: &Prepared,
    req: &ApplyRequest,
    statuses: &HashMap<String, Status>,
) -> Result<Applied, Error> {
    let d = &prepared.diff;
    if !d.conflicts.is_empty() && !req.skip_conflicts {
        let list: Vec<String> = d
            .conflicts
            .iter()
            .map(|c| format!("  - {} ({}): {}", c.key, c.id, c.reason))
            .collect();
        return Err(Error::new(
            Kind::Conflict,
            format!(
                "the plan would change {} task(s) that are running or finished; nothing was written:\n{}",
                d.conflicts.len(),
                list.join("\n")
            ),
        )
        .with_hint(format!(
            "undo those edits in the plan, reopen the tasks, or apply with {} to leave them as they are",
            req.skip_option
        )));
    }
    let record = prepared.name.as_ref().map(|n| {
        (
            record_key(n),
            d.record(&prepared.validated, prepared.previous.as_ref()),
        )
    });
    let record_changed = record
        .as_ref()
        .is_some_and(|(_, r)| Some(r) != prepared.previous.as_ref());
    let notes = if d.new.roles.is_empty() {
        Vec::new()
    } else {
        write_plan_roles(p, &d.new.roles)?
    };
    if d.is_empty() && !record_changed {
        return Ok(Applied {
            applied: downbeat_store::AppliedPlan::default(),
            notes,
        });
    }
    let mut changes = d.changes(record.map(|(k, r)| (k, r.to_json())));
    changes.statuses = starting_statuses(&d.new, statuses);
    let actor = p.actor().await?;
    let applied = p.store.apply_plan_changes(&changes, &actor).await?;
    Ok(Applied { applied, notes })
}

/// The statuses of `statuses` (by key) for the leaves among the new tasks of `v`.
fn starting_statuses(
    v: &plan::ValidatedPlan,
    statuses: &HashMap<String, Status>,
) -> Vec<(TaskRef, Status)> {
    let containers: HashSet<usize> = v
        .tasks
        .iter()
        .filter_map(|t| match t.parent {
            Some(TaskRef::New(i)) => Some(i),
            _ => None,
        })
        .collect();
    v.tasks
        .iter()
        .enumerate()
        .filter(|(i, _)| !containers.contains(i))
        .filter_map(|(i, t)| {
            let s = *statuses.get(t.new.key.as_ref()?)?;
            (s != Status::Pending).then_some((TaskRef::New(i), s))
        })
        .collect()
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

#[cfg(test)]
mod tests {
    use super::*;
    use downbeat_core::plan::PlanFormat;

    #[test]
    fn a_plan_written_back_as_text_reads_the_same_in_every_format() {
        let plan = plan::parse(scaffold(PlanFormat::Toml), PlanFormat::Toml).unwrap();
        for f in [PlanFormat::Toml, PlanFormat::Yaml, PlanFormat::Json] {
            let text = plan::to_text(&plan, f).unwrap();
            let again = plan::parse(&text, f).unwrap_or_else(|e| panic!("{f:?}: {e}\n{text}"));
            assert_eq!(again, plan, "{f:?}");
        }
    }

    #[test]
    fn the_scaffold_is_one_valid_plan_in_every_format() {
        let toml = plan::parse(scaffold(PlanFormat::Toml), PlanFormat::Toml).unwrap();
        for f in [PlanFormat::Yaml, PlanFormat::Json] {
            let other = plan::parse(scaffold(f), f).unwrap_or_else(|e| panic!("{f:?}: {e}"));
            assert_eq!(other, toml, "{f:?}");
        }
        let c = check_file(&toml, "scaffold").unwrap_or_else(|e| panic!("{}", e.message));
        assert!(c.unchecked_refs.is_empty() && c.unchecked_roles.is_empty());
        assert_eq!(c.validated.tasks.len(), 5);
        // It shows the fields people look for.
        for field in [
            "depends_on",
            "command",
            "timeout",
            "max_attempts",
            "executor",
            "files",
        ] {
            assert!(scaffold(PlanFormat::Toml).contains(field), "{field}");
        }
    }
}
