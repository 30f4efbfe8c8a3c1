//! Planning views: `ready`, `blocked`, `waves`, `status`, `graph`, `log`.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;

use downbeat_app::error::Error;
use downbeat_app::project::Project;
use downbeat_app::tasks::{resolve, shown_status};
use downbeat_app::views::{per_role, render_graph, view};
use downbeat_core::flags::FlagState;
use downbeat_core::ids::TaskId;
use downbeat_core::report::{self, ProjectView};
use downbeat_core::task::{Status, Task};
use downbeat_core::time::{Millis, Timestamp};
use downbeat_store::EventQuery;
use serde_json::{Value, json};

use super::holds::hold_line;
use super::render::{clip, ids_json, task_json};
use crate::cli::*;
use crate::output::{json as print_json, note, out, table};
use crate::style::{self, On};

pub(super) async fn ready(p: &Project, a: LimitArgs, j: bool) -> Result<(), Error> {
    let v = view(p).await?;
    let ids: Vec<TaskId> = v
        .planned
        .ready
        .iter()
        .copied()
        .take(a.limit.unwrap_or(usize::MAX))
        .collect();
    if j {
        let list: Vec<Value> = ids
            .iter()
            .filter_map(|id| v.task(*id))
            .map(|t| task_json(t, "ready"))
            .collect();
        print_json(&list);
        return Ok(());
    }
    if ids.is_empty() {
        let c = v.counts();
        note(&if c.total == 0 {
            "no tasks yet".to_owned()
        } else if c.done() == c.total {
            "everything is done".to_owned()
        } else {
            format!(
                "nothing is ready: {} running, {} waiting, {} stuck (see `downbeat blocked`)",
                c.running, c.waiting, c.stuck
            )
        });
        return Ok(());
    }
    let rows: Vec<Vec<String>> = ids
        .iter()
        .filter_map(|id| v.task(*id))
        .map(|t| {
            vec![
                t.id.to_string(),
                t.role.clone().unwrap_or_else(|| "-".into()),
                t.priority.to_string(),
                t.effort.to_string(),
                clip(&t.title, 80),
            ]
        })
        .collect();
    out(&table(
        &["ID", "ROLE", "PRIORITY", "EFFORT", "TITLE"],
        &rows,
    ));
    Ok(())
}

pub(super) async fn blocked(p: &Project, j: bool) -> Result<(), Error> {
    let v = view(p).await?;
    let held: Vec<&Task> = v
        .tasks
        .iter()
        .filter(|t| {
            matches!(
                t.status,
                Status::Failed | Status::Blocked | Status::Cancelled
            )
        })
        .filter(|t| !v.rollup.get(&t.id).is_some_and(|r| r.is_container))
        .collect();
    if j {
        let entry = |(id, on): &(TaskId, Vec<TaskId>)| json!({"task": id, "title": v.task(*id).map(|t| t.title.clone()), "waits_on": ids_json(on)});
        print_json(&json!({
            "waiting": v.planned.waiting.iter().map(entry).collect::<Vec<_>>(),
            "stuck": v.planned.stuck.iter().map(entry).collect::<Vec<_>>(),
            "stopped": held.iter().map(|t| json!({"task": t.id, "title": t.title, "status": t.status, "reason": t.result})).collect::<Vec<_>>(),
        }));
        return Ok(());
    }
    let title = |id: TaskId| v.task(id).map(|t| clip(&t.title, 60)).unwrap_or_default();
    let pending = downbeat_app::tasks::Pending::of(&v.planned);
    let state = |id: TaskId| {
        v.task(id)
            .map(|t| match v.rollup.get(&id) {
                Some(r) if r.is_container => format!("{}, {}/{} done", r.status, r.done, r.total),
                _ => style::status(&shown_status(t, &v.rollup, &pending), On::Out),
            })
            .unwrap_or_default()
    };
    let mut s = String::new();
    if !held.is_empty() {
        let _ = writeln!(s, "failed, blocked or cancelled ({}):", held.len());
        for t in &held {
            let why = t
                .result
                .as_deref()
                .map(|r| format!(" — {}", clip(r, 60)))
                .unwrap_or_default();
            let _ = writeln!(
                s,
                "  {} {} [{}]{why}",
                t.id,
                clip(&t.title, 60),
                style::status(&t.status.to_string(), On::Out)
            );
        }
    }
    for (label, list) in [
        (
            "stuck behind failed, blocked or cancelled tasks",
            &v.planned.stuck,
        ),
        ("waiting", &v.planned.waiting),
    ] {
        if list.is_empty() {
            continue;
        }
        let _ = writeln!(s, "{label} ({}):", list.len());
        for (id, on) in list {
            let _ = writeln!(s, "  {} {}", id, title(*id));
            for o in on {
                let _ = writeln!(s, "      waits on {} {} [{}]", o, title(*o), state(*o));
            }
        }
    }
    if s.is_empty() {
        note("nothing is blocked");
    } else {
        out(&s);
    }
    Ok(())
}

pub(super) async fn waves(p: &Project, a: WavesArgs, j: bool) -> Result<(), Error> {
    let mut settings = p.plan_settings();
    if !a.workers.is_empty() {
        if a.workers.contains(&0) {
            return Err(Error::invalid("--workers values must be at least 1"));
        }
        settings.workers = a.workers;
    }
    let (snap, planned, used) = if a.calibrated {
        downbeat_app::patterns::planned_calibrated(p, &settings).await?
    } else {
        let (snap, planned) = downbeat_app::views::planned_with(p, &settings).await?;
        (snap, planned, None)
    };
    // Effort units, or seconds when calibrated.
    let unit = if used.is_some() {
        "second(s)"
    } else {
        "effort unit(s)"
    };
    if a.calibrated && used.is_none() {
        note("too little finished work to calibrate: the estimates are in effort units");
    }
    let titles: HashMap<TaskId, (&str, Option<&str>)> = snap
        .tasks
        .iter()
        .map(|t| (t.id, (t.title.as_str(), t.role.as_deref())))
        .collect();
    if j {
        print_json(&json!({
            "waves": planned.waves.iter().map(|w| ids_json(w)).collect::<Vec<_>>(),
            "critical_path": ids_json(&planned.critical_path),
            "critical_path_effort": planned.critical_path_effort,
            "max_parallelism": planned.max_parallelism,
            "parallel_rate": planned.parallel_rate,
            "total_effort": planned.total_effort,
            "makespans": planned.makespans.iter().map(|(k, m)| json!({"workers": k, "makespan": m, "speedup": if *m > 0 { planned.total_effort as f64 / *m as f64 } else { 1.0 }})).collect::<Vec<_>>(),
            "role_caps": settings.role_caps,
            "groups": settings.groups,
            "unit": if used.is_some() { "seconds" } else { "effort" },
            "calibration": used,
        }));
        return Ok(());
    }
    if planned.waves.is_empty() {
        note("nothing left to schedule");
        return Ok(());
    }
    let mut s = String::new();
    let cp: HashSet<TaskId> = planned.critical_path.iter().copied().collect();
    for (i, w) in planned.waves.iter().enumerate() {
        let _ = writeln!(
            s,
            "wave {} ({} task{}):",
            i + 1,
            w.len(),
            if w.len() == 1 { "" } else { "s" }
        );
        for id in w.iter().take(50) {
            let (title, role) = titles.get(id).copied().unwrap_or(("", None));
            let star = if cp.contains(id) { "*" } else { " " };
            let _ = writeln!(
                s,
                "  {star} {id} {:<12} {}",
                role.unwrap_or("-"),
                clip(title, 70)
            );
        }
        if w.len() > 50 {
            let _ = writeln!(s, "    … and {} more", w.len() - 50);
        }
    }
    let _ = writeln!(
        s,
        "\n* critical path: {} task(s), {} {unit}",
        planned.critical_path.len(),
        planned.critical_path_effort
    );
    let _ = writeln!(s, "max parallelism: {}", planned.max_parallelism);
    let _ = writeln!(
        s,
        "parallel rate: {:.0}% of tasks share a wave",
        planned.parallel_rate * 100.0
    );
    let _ = writeln!(s, "sequential: {} {unit}", planned.total_effort);
    for (k, m) in &planned.makespans {
        let speed = if *m > 0 {
            planned.total_effort as f64 / *m as f64
        } else {
            1.0
        };
        let _ = writeln!(
            s,
            "with {k} worker{}: {m} ({speed:.1}x)",
            if *k == 1 { "" } else { "s" }
        );
    }
    for r in used.iter().flatten() {
        let from = match r.basis {
            downbeat_core::patterns::Basis::Calibrated => "calibrated from its history",
            downbeat_core::patterns::Basis::Project => "the project's median (too little history)",
        };
        let _ = writeln!(
            s,
            "{}: {} per effort unit, {from}",
            r.role,
            downbeat_core::time::Millis(r.ms_per_effort).human()
        );
    }
    if !settings.role_caps.is_empty() {
        let caps: Vec<String> = settings
            .role_caps
            .iter()
            .map(|(r, c)| format!("{r} ≤ {c}"))
            .collect();
        let _ = writeln!(s, "role caps: {}", caps.join(", "));
    }
    for g in &settings.groups {
        let _ = writeln!(
            s,
            "group {}: {} ≤ {}",
            g.name,
            g.roles.join(" + "),
            g.max_parallel
        );
    }
    out(&s);
    Ok(())
}

/// `status --watch`: the status again whenever the event log moves (looked at twice a
/// second), in place on a terminal (one JSON document a line with `--json`), until Ctrl-C or
/// SIGTERM.
pub(super) async fn watch_status(p: &Project, j: bool) -> Result<(), Error> {
    use std::io::IsTerminal as _;
    let cancel = tokio_util::sync::CancellationToken::new();
    crate::signals::stop_on_signals(cancel.clone());
    let in_place = !j && std::io::stdout().is_terminal();
    let mut seen = -1;
    loop {
        // A database that is briefly away is asked again at the next look.
        if let Ok(last) = p.store.last_event_seq().await
            && last != seen
        {
            if in_place {
                out("\x1b[H\x1b[2J");
            }
            status_as(p, j, true).await?;
            seen = last;
        }
        tokio::select! {
            () = cancel.cancelled() => return Ok(()),
            () = tokio::time::sleep(std::time::Duration::from_millis(500)) => {}
        }
    }
}

pub(super) async fn status(p: &Project, j: bool) -> Result<(), Error> {
    status_as(p, j, false).await
}

/// The status; with `--json`, one document (on one line when `lines`: `--watch` prints JSON
/// Lines).
async fn status_as(p: &Project, j: bool, lines: bool) -> Result<(), Error> {
    let v = view(p).await?;
    let c = v.counts();
    let ready = downbeat_app::tasks::Pending::of(&v.planned);
    let per_role = per_role(&v);
    let workers = downbeat_app::runs::workers(p).await?;
    let holds = downbeat_app::holds::list(p).await?;
    let work = downbeat_app::worktrees::summary(p).await?;
    let maintained = downbeat_app::maintenance::last_round(p).await?;
    if j {
        let mut doc = json!({
            "counts": c,
            "done": c.done(),
            "total": c.total,
            "roles": per_role.iter().map(|(r, (d, t))| json!({"role": r, "done": d, "total": t})).collect::<Vec<_>>(),
            "session": downbeat_app::context::session_status(p).await?.session,
            "objectives": v.objectives,
            "workers": workers,
            "holds": holds,
            "work": work,
            "flags": flags_json(&v),
        });
        // Only once a scheduled round has run (`[maintain] every`).
        if let Some(r) = &maintained {
            doc["maintenance"] = json!(r);
        }
        if lines {
            crate::output::outln(&doc.to_string());
        } else {
            print_json(&doc);
        }
        return Ok(());
    }
    let mut s = String::new();
    let pct = (c.done() * 100).checked_div(c.total).unwrap_or(0);
    let _ = writeln!(s, "{} {pct}%", report::progress_bar(c.done(), c.total, 20));
    let _ = writeln!(s, "{}", count_lines(&c));
    if !workers.is_empty() {
        let alive: Vec<_> = workers.iter().filter(|w| w.alive).collect();
        let busy: usize = alive.iter().map(|w| w.holding.len()).sum();
        let slots: u32 = alive.iter().map(|w| w.slots).sum();
        let _ = writeln!(
            s,
            "workers: {} alive ({busy}/{slots} slots busy), {} silent — `downbeat workers` for details",
            alive.len(),
            workers.len() - alive.len()
        );
    }
    if let Some(w) = work
        .as_ref()
        .filter(|w| w.merged + w.conflicts.len() + w.kept > 0)
    {
        let _ = writeln!(s, "{}", work_line(w));
    }
    for h in &holds {
        let _ = writeln!(
            s,
            "{} (`downbeat unpause {}` releases it)",
            hold_line(h),
            h.id
        );
    }
    if let Some(r) = &maintained {
        let _ = writeln!(s, "{}", maintenance_line(r));
    }
    objective_lines(&mut s, &v);
    flag_lines(&mut s, &v);
    if !per_role.is_empty() {
        let _ = writeln!(s, "\nby role:");
        for (r, (d, t)) in &per_role {
            let _ = writeln!(s, "  {r:<14} {}", report::progress_bar(*d, *t, 10));
        }
    }
    // The tree.
    let mut kids: BTreeMap<Option<TaskId>, Vec<&Task>> = BTreeMap::new();
    let live: HashSet<TaskId> = v.tasks.iter().map(|t| t.id).collect();
    for t in &v.tasks {
        let parent = t.parent.filter(|p| live.contains(p));
        kids.entry(parent).or_default().push(t);
    }
    if !v.tasks.is_empty() {
        let _ = writeln!(s, "\ntasks:");
        let mut lines = 0usize;
        let limit = 200;
        let mut stack: Vec<(&Task, usize)> = kids
            .get(&None)
            .map(|r| r.iter().rev().map(|t| (*t, 0)).collect())
            .unwrap_or_default();
        while let Some((t, depth)) = stack.pop() {
            if lines == limit {
                let _ = writeln!(
                    s,
                    "  … ({} tasks in all; `downbeat list` shows every one)",
                    v.tasks.len()
                );
                break;
            }
            lines += 1;
            let shown = shown_status(t, &v.rollup, &ready);
            let mark = match shown.as_str() {
                "completed" => "✓",
                "skipped" => "–",
                "running" => "▶",
                "failed" => "✗",
                "blocked" | "cancelled" => "■",
                "stuck" => "!",
                "ready" => "○",
                _ => "·",
            };
            let extra = match v.rollup.get(&t.id) {
                Some(r) if r.is_container => format!(" {}/{}", r.done, r.total),
                _ => t
                    .role
                    .as_deref()
                    .map(|r| format!(" ({r})"))
                    .unwrap_or_default(),
            };
            // One line of at most 80 columns: the title gives way (to no less than 20).
            let fixed = 2 + 2 * depth + 2 + 7 + extra.chars().count() + shown.len() + 3;
            let room = 80usize.saturating_sub(fixed).max(20);
            let _ = writeln!(
                s,
                "  {}{mark} {} {}{extra} [{}]",
                "  ".repeat(depth),
                t.id,
                clip(&t.title, room),
                style::status(&shown, On::Out)
            );
            if let Some(ch) = kids.get(&Some(t.id)) {
                for c in ch.iter().rev() {
                    stack.push((c, depth + 1));
                }
            }
        }
    } else {
        let _ = writeln!(
            s,
            "\nno tasks yet: `downbeat plan apply FILE` or `downbeat add TITLE`"
        );
    }
    out(&s);
    Ok(())
}

pub(super) async fn graph(p: &Project, a: GraphArgs, j: bool) -> Result<(), Error> {
    let v = view(p).await?;
    let format = if j { GraphFormat::Json } else { a.format };
    if format == GraphFormat::Json {
        let ready = downbeat_app::tasks::Pending::of(&v.planned);
        print_json(&json!({
            "tasks": v.tasks.iter().map(|t| json!({"id": t.id, "key": t.key, "title": t.title, "role": t.role, "parent": t.parent, "state": shown_status(t, &v.rollup, &ready)})).collect::<Vec<_>>(),
            "edges": v.edges,
        }));
        return Ok(());
    }
    let format = match format {
        GraphFormat::Mermaid => downbeat_app::views::GraphFormat::Mermaid,
        GraphFormat::Dot => downbeat_app::views::GraphFormat::Dot,
        GraphFormat::Json => downbeat_app::views::GraphFormat::Json,
    };
    out(&render_graph(&v, format));
    Ok(())
}

pub(super) async fn log(p: &Project, a: LogArgs, j: bool) -> Result<(), Error> {
    let since = match a.since.as_deref() {
        None => None,
        Some(s) => Some(match Timestamp::parse_rfc3339(s) {
            Some(t) => t,
            None => p.now().saturating_sub(Millis::parse(s).map_err(|e| {
                Error::invalid(format!("--since: {e}"))
                    .with_hint("or give an RFC 3339 time like 2026-03-01T09:00:00Z")
            })?),
        }),
    };
    let task = match &a.task {
        Some(t) => Some(resolve(p, t).await?),
        None => None,
    };
    let events = p
        .store
        .events(&EventQuery {
            since,
            task,
            limit: a.limit,
            ..Default::default()
        })
        .await?;
    if a.follow {
        // What is there, then what comes, in the same form: one event a line.
        let last = match events.last() {
            Some(e) => e.seq,
            None => p.store.last_event_seq().await?,
        };
        for e in &events {
            if j {
                crate::output::outln(&serde_json::to_string(e).unwrap_or_default());
            } else {
                out(&super::follow::line(e));
            }
        }
        return super::follow::follow(p, last, task, j).await;
    }
    if j {
        print_json(&events);
        return Ok(());
    }
    let s: String = events.iter().map(super::follow::line).collect();
    if s.is_empty() {
        note("no events");
    } else {
        out(&s);
    }
    Ok(())
}

/// The agents' work in one line: merged, conflicts, worktrees kept.
fn work_line(w: &downbeat_app::worktrees::WorkSummary) -> String {
    let mut parts = vec![format!("{} task(s) merged into {}", w.merged, w.branch)];
    if !w.conflicts.is_empty() {
        let list: Vec<String> = w
            .conflicts
            .iter()
            .map(|(t, files)| format!("{t} in {}", files.join(", ")))
            .collect();
        parts.push(format!("conflicts: {}", list.join("; ")));
    }
    if w.kept > 0 {
        parts.push(format!(
            "{} worktree(s) kept (`downbeat worktrees`)",
            w.kept
        ));
    }
    format!(
        "work: {} — `downbeat land` brings it into your branch",
        parts.join(" · ")
    )
}

/// The flags as `status --json` gives them: those raised and suppressed, and how many were
/// handled.
fn flags_json(v: &ProjectView) -> serde_json::Value {
    let of = |st: FlagState| v.flags.iter().filter(|f| f.state == st).collect::<Vec<_>>();
    json!({
        "raised": of(FlagState::Raised),
        "suppressed": of(FlagState::Suppressed),
        "handled": of(FlagState::Handled).len(),
    })
}

/// The flags in `status`: a count per state, then the ones raised or suppressed (the newest
/// few).
fn flag_lines(s: &mut String, v: &ProjectView) {
    const SHOWN: usize = 10;
    if v.flags.is_empty() {
        return;
    }
    let count = |st: FlagState| v.flags.iter().filter(|f| f.state == st).count();
    let _ = writeln!(
        s,
        "flags: {} raised, {} handled, {} suppressed",
        count(FlagState::Raised),
        count(FlagState::Handled),
        count(FlagState::Suppressed)
    );
    let open: Vec<_> = v
        .flags
        .iter()
        .filter(|f| f.state != FlagState::Handled)
        .collect();
    for f in open.iter().rev().take(SHOWN).rev() {
        let _ = writeln!(
            s,
            "  {} {} by {} — {}",
            f.id,
            f.flag,
            f.task,
            report::flag_state(v, f)
        );
    }
    if open.len() > SHOWN {
        let _ = writeln!(
            s,
            "  … and {} more (`downbeat status --json`)",
            open.len() - SHOWN
        );
    }
}

/// The objectives in `status`: the active ones with their linked tasks' progress, and the
/// achieved ones.
fn objective_lines(s: &mut String, v: &ProjectView) {
    use downbeat_core::context::ObjectiveStatus;
    for o in v
        .objectives
        .iter()
        .filter(|o| o.status != ObjectiveStatus::Dropped)
    {
        let how = match (o.status, report::objective_progress(v, o)) {
            (ObjectiveStatus::Achieved, _) => "achieved".to_owned(),
            (_, Some((d, t))) => format!("{d}/{t} tasks done"),
            (_, None) => "no tasks linked".to_owned(),
        };
        let _ = writeln!(s, "objective {} {} — {how}", o.id, clip(&o.title, 70));
    }
}

/// The last scheduled maintenance round, as `status` shows it.
fn maintenance_line(r: &downbeat_app::maintenance::Round) -> String {
    let what = if !r.done {
        "started, not finished".to_owned()
    } else if r.actions.is_empty() {
        format!("{} finding(s), nothing done", r.findings)
    } else {
        format!("{} finding(s); {}", r.findings, r.actions.join(", "))
    };
    format!(
        "maintenance: last round {} by {}: {what} (`downbeat log` has the findings)",
        r.at(),
        r.holder
    )
}

/// The counts per status that are not zero, `·` between them, in lines of at most 80
/// columns (broken between counts, never inside one).
fn count_lines(c: &report::Counts) -> String {
    let parts: Vec<String> = [
        (c.completed, "completed"),
        (c.skipped, "skipped"),
        (c.running, "running"),
        (c.ready, "ready"),
        (c.waiting, "waiting"),
        (c.stuck, "stuck"),
        (c.failed, "failed"),
        (c.blocked, "blocked"),
        (c.cancelled, "cancelled"),
    ]
    .into_iter()
    .filter(|(n, _)| *n > 0)
    .map(|(n, w)| counted(n, w))
    .collect();
    if parts.is_empty() {
        return "no tasks".into();
    }
    let mut out = String::new();
    let mut width = 0;
    for p in parts {
        let w = style::width(&p);
        if width == 0 {
            out.push_str(&p);
            width = w;
        } else if width + 3 + w > 80 {
            out.push('\n');
            out.push_str(&p);
            width = w;
        } else {
            out.push_str(" · ");
            out.push_str(&p);
            width += 3 + w;
        }
    }
    out
}

/// `3 failed`, the word painted in its status colour when there are any.
fn counted(n: u64, word: &str) -> String {
    let tone = style::tone_of(word).unwrap_or(style::Tone::Strong);
    style::count(n, word, tone, On::Out)
}
