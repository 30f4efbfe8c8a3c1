//! A dependency cycle told so a person can undo it: each task with its title, each link with
//! what makes it (a dependency, or a container passing its own dependencies to the tasks
//! inside it), and the commands that remove a link of either kind.

use downbeat_core::graph::TaskCycle;
use downbeat_core::ids::TaskId;
use downbeat_core::task::Task;

use crate::error::Error;
use crate::project::Project;

/// A store error, with a cycle told in titles and removable links.
pub async fn told(p: &Project, e: downbeat_store::Error) -> Error {
    told_adding(p, e, None).await
}

/// [`told`] for a refused new dependency `(from, to)` (to waits for from): that link is named
/// as the new one, and the hint offers only links that exist.
pub async fn told_adding(
    p: &Project,
    e: downbeat_store::Error,
    new: Option<(TaskId, TaskId)>,
) -> Error {
    match e {
        downbeat_store::Error::Cycle(c) => explain(p, &c, new).await,
        e => e.into(),
    }
}

/// The error for a cycle: `[a, b, c]` means b waits for a, c for b, a for c.
async fn explain(p: &Project, c: &TaskCycle, new: Option<(TaskId, TaskId)>) -> Error {
    let mut tasks: Vec<Option<Known>> = Vec::with_capacity(c.path.len());
    for id in &c.path {
        tasks.push(p.store.task(*id).await.ok().map(|t: Task| Known {
            title: t.title,
            parent: t.parent,
        }));
    }
    let (text, hint) = render(&c.path, &tasks, new);
    Error::conflict(text).with_hint(hint)
}

/// What the cycle's message says of a task.
struct Known {
    title: String,
    parent: Option<TaskId>,
}

/// The message and the hint, from the cycle's tasks (`None`: not found any more).
fn render(
    path: &[TaskId],
    tasks: &[Option<Known>],
    new: Option<(TaskId, TaskId)>,
) -> (String, String) {
    let title = |i: usize| {
        tasks[i]
            .as_ref()
            .map(|t| format!("{} \"{}\"", path[i], t.title))
            .unwrap_or_else(|| path[i].to_string())
    };
    let n = path.len();
    let mut text = format!("dependency cycle:\n  {}", title(0));
    let mut undo = Vec::new();
    for step in 1..=n {
        let (from, to) = (path[step - 1], path[step % n]);
        let inside = tasks[step % n]
            .as_ref()
            .is_some_and(|t| t.parent == Some(from));
        let why = if new == Some((from, to)) {
            format!("would wait for {from}: the dependency being added")
        } else if inside {
            undo.push(format!("`downbeat edit {to} --parent none`"));
            format!("inside {from}, so it waits for what {from} waits for")
        } else {
            undo.push(format!("`downbeat dep rm {to} --on {from}`"));
            format!("waits for {from}")
        };
        text.push_str(&format!("\n  → {} ({why})", title(step % n)));
    }
    let hint = format!("break one link: {}", undo.join(", or "));
    (text, hint)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_through_a_container_are_told_and_undone_with_edit() {
        let ids: Vec<TaskId> = ["aaaaaa", "bbbbbb", "cccccc"]
            .iter()
            .map(|s| TaskId::parse_short(s).unwrap())
            .collect();
        let task = |title: &str, parent: Option<TaskId>| {
            Some(Known {
                title: title.into(),
                parent,
            })
        };
        // b waits for a; the container p waits for b; a is inside p.
        let tasks = [
            task("A", Some(ids[2])),
            task("B", None),
            task("Parent", None),
        ];
        let (text, hint) = render(&ids, &tasks, None);
        assert_eq!(
            text,
            "dependency cycle:\n  aaaaaa \"A\"\n  → bbbbbb \"B\" (waits for aaaaaa)\n  → cccccc \"Parent\" (waits for bbbbbb)\n  → aaaaaa \"A\" (inside cccccc, so it waits for what cccccc waits for)"
        );
        assert_eq!(
            hint,
            "break one link: `downbeat dep rm bbbbbb --on aaaaaa`, or `downbeat dep rm cccccc --on bbbbbb`, or `downbeat edit aaaaaa --parent none`"
        );
    }

    #[test]
    fn the_refused_new_link_is_named_and_not_offered_for_removal() {
        let ids: Vec<TaskId> = ["aaaaaa", "bbbbbb"]
            .iter()
            .map(|s| TaskId::parse_short(s).unwrap())
            .collect();
        let t = |title: &str| {
            Some(Known {
                title: title.into(),
                parent: None,
            })
        };
        let (text, hint) = render(&ids, &[t("A"), t("B")], Some((ids[1], ids[0])));
        assert!(
            text.ends_with("→ aaaaaa \"A\" (would wait for bbbbbb: the dependency being added)"),
            "{text}"
        );
        assert_eq!(hint, "break one link: `downbeat dep rm bbbbbb --on aaaaaa`");
    }
}
