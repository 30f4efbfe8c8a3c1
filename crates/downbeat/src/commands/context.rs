//! The context around the graph: `session`, `objective`, `insight`, `decision`.

use downbeat_app::context::{self, resume_session};
use downbeat_app::error::Error;
use downbeat_app::project::Project;
use downbeat_app::tasks::{record, resolve};
use downbeat_app::views::view;
use downbeat_core::context::{Decision, DecisionStatus, ObjectiveStatus};
use downbeat_core::ids::RecordKind;
use downbeat_core::report::{self};
use serde_json::json;

use super::render::ids_json;
use crate::cli::*;
use crate::output::{json as print_json, note, out, outln, table};

pub(super) async fn session(p: &Project, c: SessionCmd, j: bool) -> Result<(), Error> {
    match c {
        SessionCmd::Start { label } => {
            let s = context::start_session(p, label.as_deref()).await?;
            if j {
                print_json(&s);
            } else {
                note(&format!("started session {} \"{}\"", s.id, s.label));
                outln(&s.id.to_string());
            }
        }
        SessionCmd::Resume => {
            let current = resume_session(p).await?;
            let v = view(p).await?;
            let brief = report::brief(&v, Some(&current));
            if j {
                print_json(
                    &json!({"session": current, "brief": brief, "ready": ids_json(&v.planned.ready), "counts": v.counts()}),
                );
            } else {
                out(&brief);
            }
        }
        SessionCmd::Status => {
            let st = context::session_status(p).await?;
            let (current, m) = (&st.session, &st.metrics);
            if j {
                print_json(&st);
            } else {
                match current {
                    Some(s) => outln(&format!(
                        "session {} \"{}\" open since {} ({})",
                        s.id, s.label, s.started_at, s.actor
                    )),
                    None => outln("no open session (`downbeat session start` opens one)"),
                }
                outln(&format!(
                    "{} session(s) so far, {} decision(s), {} insight(s), {} task(s) completed",
                    m.sessions, m.decisions, m.insights, m.tasks_completed
                ));
            }
        }
        SessionCmd::End => {
            let s = context::end_session(p).await?;
            if j {
                print_json(&s);
            } else {
                note(&format!("ended session {}", s.id));
            }
        }
    }
    Ok(())
}

pub(super) async fn objective(p: &Project, c: ObjectiveCmd, j: bool) -> Result<(), Error> {
    let set = |id: String, st: ObjectiveStatus| async move {
        let id = record(RecordKind::Objective, &id)?;
        let o = p
            .store
            .set_objective_status(id, st, &p.actor().await?)
            .await?;
        if j {
            print_json(&o);
        } else {
            outln(&format!("{} {}", o.id, o.status));
        }
        Ok::<(), Error>(())
    };
    match c {
        ObjectiveCmd::Add { title, tasks } => {
            let mut ids = Vec::new();
            for t in &tasks {
                ids.push(resolve(p, t).await?);
            }
            let o = p
                .store
                .add_objective(&title, &ids, &p.actor().await?)
                .await?;
            if j {
                print_json(&o);
            } else {
                outln(&o.id.to_string());
            }
        }
        ObjectiveCmd::List => {
            let v = view(p).await?;
            if j {
                print_json(&v.objectives);
                return Ok(());
            }
            let rows: Vec<Vec<String>> = v
                .objectives
                .iter()
                .map(|o| {
                    let (d, t) = o
                        .tasks
                        .iter()
                        .filter_map(|t| v.rollup.get(t))
                        .fold((0, 0), |(d, t), p| (d + p.done, t + p.total));
                    let prog = if o.tasks.is_empty() {
                        "-".into()
                    } else {
                        format!("{d}/{t}")
                    };
                    vec![
                        o.id.to_string(),
                        o.status.to_string(),
                        prog,
                        o.title.clone(),
                    ]
                })
                .collect();
            if rows.is_empty() {
                note("no objectives yet");
            } else {
                out(&table(&["ID", "STATUS", "TASKS", "TITLE"], &rows));
            }
        }
        ObjectiveCmd::Link { id, tasks } => {
            let o = context::link_objective(p, &id, &tasks).await?;
            if j {
                print_json(&o);
            } else {
                let linked: Vec<String> = o.tasks.iter().map(ToString::to_string).collect();
                outln(&format!(
                    "{} {} — tasks {}",
                    o.id,
                    o.status,
                    linked.join(", ")
                ));
            }
        }
        ObjectiveCmd::Done { id } => set(id, ObjectiveStatus::Achieved).await?,
        ObjectiveCmd::Drop { id } => set(id, ObjectiveStatus::Dropped).await?,
        ObjectiveCmd::Reopen { id } => set(id, ObjectiveStatus::Active).await?,
    }
    Ok(())
}

pub(super) async fn insight(p: &Project, c: InsightCmd, j: bool) -> Result<(), Error> {
    match c {
        InsightCmd::Add { text, task } => {
            let i = context::add_insight(p, &text, task.as_deref()).await?;
            if j {
                print_json(&i);
            } else {
                outln(&i.id.to_string());
            }
        }
        InsightCmd::List => {
            let list = context::insights(p).await?;
            if j {
                print_json(&list);
            } else if list.is_empty() {
                note("no insights yet");
            } else {
                for i in list {
                    let task = i.task.map(|t| format!(" (task {t})")).unwrap_or_default();
                    outln(&format!("{} {}{task}", i.id, i.text));
                }
            }
        }
    }
    Ok(())
}

pub(super) async fn decision(p: &Project, c: DecisionCmd, j: bool) -> Result<(), Error> {
    match c {
        DecisionCmd::Add {
            text,
            why,
            supersedes,
            task,
        } => {
            let d = context::add_decision(p, &text, &why, task.as_deref(), supersedes.as_deref())
                .await?;
            if j {
                print_json(&d);
            } else {
                outln(&d.id.to_string());
            }
        }
        DecisionCmd::Propose { text, why, task } => {
            let d = context::propose_decision(p, &text, &why, task.as_deref()).await?;
            if j {
                print_json(&d);
            } else {
                note(&format!(
                    "proposed {}: `downbeat decision accept {}` puts it in force",
                    d.id, d.id
                ));
                outln(&d.id.to_string());
            }
        }
        DecisionCmd::Accept { id, why } => decided(p, &id, true, &why, j).await?,
        DecisionCmd::Reject { id, why } => decided(p, &id, false, &why, j).await?,
        DecisionCmd::List { pending } => {
            let list = context::decisions(p, pending).await?;
            if j {
                print_json(&list);
            } else if list.is_empty() {
                note(if pending {
                    "no pending decisions"
                } else {
                    "no decisions yet"
                });
            } else {
                for d in list {
                    outln(&decision_line(&d));
                }
            }
        }
    }
    Ok(())
}

async fn decided(p: &Project, id: &str, accept: bool, why: &str, j: bool) -> Result<(), Error> {
    let d = context::decide(p, id, accept, why).await?;
    if j {
        print_json(&d);
    } else {
        outln(&format!("{} {}", d.id, d.status));
    }
    Ok(())
}

/// `d3 Use Authlib — maintained [proposed]`: the decision, its reason and where it stands.
fn decision_line(d: &Decision) -> String {
    let state = match (d.status, d.superseded_by) {
        (DecisionStatus::Accepted, Some(x)) => format!(" [superseded by {x}]"),
        (DecisionStatus::Accepted, None) => String::new(),
        (s, _) if d.decided_why.is_empty() => format!(" [{s}]"),
        (s, _) => format!(" [{s}: {}]", d.decided_why),
    };
    let why = if d.why.is_empty() {
        String::new()
    } else {
        format!(" — {}", d.why)
    };
    format!("{} {}{why}{state}", d.id, d.text)
}
