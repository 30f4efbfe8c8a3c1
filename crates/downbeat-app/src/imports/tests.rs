use super::*;
use downbeat_core::plan::PlanTask;
use downbeat_core::task::Status;

const TAGGED: &str = include_str!("../../../downbeat/tests/samples/taskmaster-tagged.json");
const LEGACY: &str = include_str!("../../../downbeat/tests/samples/taskmaster-legacy.json");
const BEADS: &str = include_str!("../../../downbeat/tests/samples/beads-issues.jsonl");

fn by_key<'a>(m: &'a Mapped, k: &str) -> &'a PlanTask {
    m.plan
        .tasks
        .iter()
        .find(|t| t.key.as_deref() == Some(k))
        .unwrap_or_else(|| panic!("no task {k}"))
}

#[test]
fn files_are_told_apart_by_their_content() {
    assert_eq!(detect(TAGGED), Some(Source::Taskmaster));
    assert_eq!(detect(LEGACY), Some(Source::Taskmaster));
    assert_eq!(detect(BEADS), Some(Source::Beads));
    assert_eq!(
        detect("{\"downbeat\":\"export\",\"version\":1,\"schema\":7}\n{\"table\":\"meta\"}\n"),
        Some(Source::Jsonl)
    );
    assert_eq!(detect("# a plan\n"), None);
}

#[test]
fn a_tagged_task_master_file_maps_tasks_subtasks_and_dependencies() {
    let m = read(Source::Taskmaster, TAGGED, None, "tasks.json").unwrap();
    let keys: Vec<&str> = m
        .plan
        .tasks
        .iter()
        .filter_map(|t| t.key.as_deref())
        .collect();
    assert_eq!(
        keys,
        vec!["tm-1", "tm-2", "tm-2.1", "tm-2.2", "tm-2.3", "tm-3", "tm-4"]
    );
    assert_eq!(m.plan.plan.name.as_deref(), Some("taskmaster-master"));
    assert_eq!(by_key(&m, "tm-2").depends_on, vec!["tm-1"]);
    assert_eq!(by_key(&m, "tm-2.1").parent.as_deref(), Some("tm-2"));
    assert_eq!(by_key(&m, "tm-2.2").depends_on, vec!["tm-2.1"]);
    assert_eq!(by_key(&m, "tm-2.3").depends_on, vec!["tm-2.2", "tm-2.1"]);
    assert_eq!(by_key(&m, "tm-3").depends_on, vec!["tm-2"]);
    assert_eq!(by_key(&m, "tm-4").depends_on, vec!["tm-2"]);
    assert_eq!(by_key(&m, "tm-1").priority.as_deref(), Some("high"));
    assert_eq!(by_key(&m, "tm-4").priority, None, "medium is normal");
    assert_eq!(by_key(&m, "tm-3").priority.as_deref(), Some("low"));
    assert!(by_key(&m, "tm-2").tags.contains(&"complexity:7".to_owned()));
    assert!(by_key(&m, "tm-1").description.contains("## Details"));
    assert_eq!(
        by_key(&m, "tm-1").acceptance,
        vec!["Test strategy: CI runs lint and tests on a fresh clone."]
    );
    let st = |k: &str| m.statuses.get(k).copied().unwrap_or(Status::Pending);
    assert_eq!(st("tm-1"), Status::Completed);
    assert_eq!(st("tm-2.1"), Status::Completed);
    assert_eq!(st("tm-2.3"), Status::Pending);
    assert_eq!(st("tm-3"), Status::Blocked);
    assert_eq!(st("tm-4"), Status::Cancelled);
    let r = &m.report;
    assert_eq!(
        r.unmapped,
        vec!["tm-3: dependency `9` is not in the file: left out"]
    );
    assert_eq!(r.unknown_fields.get("aiModelUsed"), Some(&1));
    assert_eq!(r.skipped_fields.get("updatedAt"), Some(&1));
    assert_eq!(r.skipped_fields.get("expansionPrompt"), Some(&1));
    assert!(
        r.notes.iter().any(|n| n.contains("feature-billing")),
        "{:?}",
        r.notes
    );
    assert!(
        r.notes
            .iter()
            .any(|n| n.starts_with("status `in-progress` was imported as pending")),
        "{:?}",
        r.notes
    );
    // Another tag, its keys prefixed with it.
    let b = read(
        Source::Taskmaster,
        TAGGED,
        Some("feature-billing"),
        "tasks.json",
    )
    .unwrap();
    assert_eq!(b.plan.tasks[0].key.as_deref(), Some("tm-feature-billing-1"));
    assert!(read(Source::Taskmaster, TAGGED, Some("nope"), "tasks.json").is_err());
}

#[test]
fn a_legacy_task_master_file_is_the_master_tag() {
    let m = read(Source::Taskmaster, LEGACY, None, "tasks.json").unwrap();
    assert_eq!(m.plan.tasks.len(), 5);
    assert_eq!(by_key(&m, "tm-2.2").depends_on, vec!["tm-2.1"]);
    assert_eq!(by_key(&m, "tm-3").depends_on, vec!["tm-2"]);
    assert_eq!(m.statuses.get("tm-1"), Some(&Status::Completed));
}

#[test]
fn beads_issues_map_parents_edges_statuses_and_priorities() {
    let m = read(Source::Beads, BEADS, None, "issues.jsonl").unwrap();
    let keys: Vec<&str> = m
        .plan
        .tasks
        .iter()
        .filter_map(|t| t.key.as_deref())
        .collect();
    assert_eq!(
        keys,
        vec!["bd-a1b2", "bd-a1b2.1", "bd-a1b2.2", "bd-c3d4", "bd-e5f6"]
    );
    assert_eq!(by_key(&m, "bd-a1b2.1").parent.as_deref(), Some("bd-a1b2"));
    assert_eq!(by_key(&m, "bd-a1b2.2").depends_on, vec!["bd-a1b2.1"]);
    assert_eq!(by_key(&m, "bd-c3d4").related, vec!["bd-a1b2.2"]);
    assert_eq!(by_key(&m, "bd-e5f6").discovered_from, vec!["bd-a1b2.2"]);
    assert_eq!(
        by_key(&m, "bd-a1b2.2").priority.as_deref(),
        Some("critical")
    );
    assert_eq!(by_key(&m, "bd-a1b2").priority.as_deref(), Some("high"));
    assert_eq!(by_key(&m, "bd-e5f6").priority.as_deref(), Some("low"));
    assert_eq!(by_key(&m, "bd-a1b2.1").effort, Some(2), "90 minutes");
    assert_eq!(
        by_key(&m, "bd-a1b2.2").acceptance,
        vec!["Cart queries use an index", "Checkout loads in under 2 s"]
    );
    assert!(by_key(&m, "bd-a1b2").tags.contains(&"type:epic".to_owned()));
    assert!(by_key(&m, "bd-c3d4").tags.contains(&"later".to_owned()));
    assert!(by_key(&m, "bd-a1b2.1").description.contains("## Design"));
    let st = |k: &str| m.statuses.get(k).copied().unwrap_or(Status::Pending);
    assert_eq!(st("bd-a1b2.1"), Status::Completed);
    assert_eq!(st("bd-a1b2.2"), Status::Pending);
    assert_eq!(st("bd-c3d4"), Status::Blocked);
    assert_eq!(st("bd-e5f6"), Status::Blocked);
    let r = &m.report;
    for expected in [
        "bd-c3d4: blocks dependency on bd-zz99, which is not imported: left out",
        "bd-e5f6: `supersedes` dependency on bd-a1b2.1 has no equivalent: left out",
        "bd-g7h8: deleted in beads (tombstone): not imported",
        "bd-i9j0: a message, not work: not imported",
    ] {
        assert!(
            r.unmapped.iter().any(|u| u == expected),
            "{expected}: {:?}",
            r.unmapped
        );
    }
    assert_eq!(r.unknown_fields.get("quality_score"), Some(&1));
    assert_eq!(r.skipped_fields.get("assignee"), Some(&1));
    assert_eq!(r.skipped_fields.get("created_at"), Some(&5));
}

#[test]
fn a_file_that_is_not_what_it_claims_is_refused() {
    let e = read(
        Source::Beads,
        "{\"id\": \"a\", \"title\": \"A\"}\nnot json\n",
        None,
        "x.jsonl",
    )
    .unwrap_err();
    assert!(e.message.contains("line 2"), "{}", e.message);
    let e = read(Source::Taskmaster, "[1, 2]", None, "t.json").unwrap_err();
    assert!(e.message.contains("not a Task Master"), "{}", e.message);
}
