//! Worktree isolation against real git, in temporary repositories.

use std::path::Path;
use std::process::Command;

use downbeat_core::attempt::MergeState;

use super::*;

fn sh(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .current_dir(dir)
        .args(["-c", "user.name=t", "-c", "user.email=t@t"])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn repo() -> (tempfile::TempDir, Worktrees) {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    sh(root, &["init", "--quiet", "-b", "main"]);
    std::fs::write(root.join("a.txt"), "one\ntwo\nthree\n").unwrap();
    sh(root, &["add", "."]);
    sh(root, &["commit", "--quiet", "-m", "start"]);
    let w = Worktrees::open(
        root,
        root.join(".downbeat/worktrees"),
        WorktreeConfig::default(),
    )
    .unwrap()
    .unwrap();
    (tmp, w)
}

fn info(id: &str) -> TaskInfo<'_> {
    TaskInfo {
        id,
        title: "Edit a file",
        attempt: 1,
        role: Some("implementer"),
        summary: Some("did it"),
    }
}

fn ready(w: &Worktrees, task: &str, n: u32) -> Prepared {
    match w.prepare(task, n, None, &[]).unwrap() {
        Start::Ready(p) => p,
        Start::Landed(m) => panic!("landed already in {m}"),
    }
}

#[test]
fn two_attempts_on_different_files_both_land_with_one_merge_commit_each() {
    let (tmp, w) = repo();
    let tip0 = w.ensure_branch().unwrap();
    let a = ready(&w, "aaa", 1);
    let b = ready(&w, "bbb", 1);
    assert_eq!(
        (a.base.as_str(), b.base.as_str()),
        (tip0.as_str(), tip0.as_str())
    );
    std::fs::write(a.path.join("x.txt"), "x\n").unwrap();
    std::fs::write(b.path.join("y.txt"), "y\n").unwrap();
    let wa = w.integrate(&a, &info("aaa")).unwrap();
    let wb = w.integrate(&b, &info("bbb")).unwrap();
    assert_eq!(
        (wa.state, wb.state),
        (MergeState::Merged, MergeState::Merged)
    );
    assert_eq!((wa.files, wa.insertions), (1, 1));
    // The worktrees stay out of the user's `git status`.
    assert_eq!(sh(tmp.path(), &["status", "--porcelain"]), "");
    // Both files are on the integration branch; the user's branch and tree are untouched.
    let tree = sh(
        tmp.path(),
        &["ls-tree", "--name-only", "downbeat/integration"],
    );
    assert_eq!(
        tree.lines().collect::<Vec<_>>(),
        ["a.txt", "x.txt", "y.txt"]
    );
    assert_eq!(sh(tmp.path(), &["rev-parse", "main"]), tip0);
    assert!(!tmp.path().join("x.txt").exists());
    // The worktrees are gone, the branches stay; a later attempt of `aaa` is not run again.
    assert!(!a.path.exists() && !b.path.exists());
    assert_eq!(w.merges_since(Some(&tip0)).unwrap().len(), 2);
    assert!(
        matches!(w.prepare("aaa", 2, None, &[]).unwrap(), Start::Landed(m) if Some(&m) == wa.merge.as_ref())
    );
}

#[test]
fn a_conflict_is_an_answer_and_keeps_the_worktree_and_a_resolver_sees_it() {
    let (_tmp, w) = repo();
    w.ensure_branch().unwrap();
    let a = ready(&w, "aaa", 1);
    let b = ready(&w, "bbb", 1);
    std::fs::write(a.path.join("a.txt"), "one\nTWO-A\nthree\n").unwrap();
    std::fs::write(b.path.join("a.txt"), "one\nTWO-B\nthree\n").unwrap();
    assert_eq!(
        w.integrate(&a, &info("aaa")).unwrap().state,
        MergeState::Merged
    );
    let wb = w.integrate(&b, &info("bbb")).unwrap();
    assert_eq!(wb.state, MergeState::Conflict);
    assert_eq!(wb.conflicts, ["a.txt"]);
    assert!(b.path.exists(), "kept for inspection");
    // The resolver starts from the conflicted merge; markers left behind are refused.
    let r = match w.prepare("rrr", 1, Some(&wb.branch), &[]).unwrap() {
        Start::Ready(p) => p,
        other => panic!("{other:?}"),
    };
    assert_eq!(r.conflicts, ["a.txt"]);
    let text = std::fs::read_to_string(r.path.join("a.txt")).unwrap();
    assert!(
        text.contains("<<<<<<< ") && text.contains("TWO-B"),
        "{text}"
    );
    assert!(
        matches!(w.integrate(&r, &info("rrr")), Err(WorktreeError::MarkersLeft(f)) if f == "a.txt")
    );
    std::fs::write(r.path.join("a.txt"), "one\nTWO-A and TWO-B\nthree\n").unwrap();
    let wr = w.integrate(&r, &info("rrr")).unwrap();
    assert_eq!(wr.state, MergeState::Merged);
    // bbb's own commit is now part of the integration branch.
    let head_b = wb.head.unwrap();
    assert!(
        w.git
            .check(&[
                "merge-base",
                "--is-ancestor",
                &head_b,
                "downbeat/integration"
            ])
            .unwrap()
    );
}

#[test]
fn an_attempt_that_changes_nothing_merges_nothing() {
    let (_tmp, w) = repo();
    let tip = w.ensure_branch().unwrap();
    let a = ready(&w, "aaa", 1);
    let wa = w.integrate(&a, &info("aaa")).unwrap();
    assert_eq!((wa.state, wa.head), (MergeState::Unchanged, None));
    assert_eq!(w.tip().unwrap(), tip);
}

#[test]
fn land_fast_forwards_refuses_a_dirty_tree_and_never_rewrites() {
    let (tmp, w) = repo();
    w.ensure_branch().unwrap();
    let a = ready(&w, "aaa", 1);
    std::fs::write(a.path.join("x.txt"), "x\n").unwrap();
    w.integrate(&a, &info("aaa")).unwrap();
    std::fs::write(tmp.path().join("a.txt"), "dirty\n").unwrap();
    assert!(matches!(w.land(None), Err(LandError::Dirty)));
    sh(tmp.path(), &["checkout", "--quiet", "a.txt"]);
    let l = w.land(None).unwrap();
    assert_eq!(
        (l.into.as_str(), l.how, l.commits),
        ("main", "fast-forward", 2)
    );
    assert!(tmp.path().join("x.txt").exists());
    assert_eq!(w.land(None).unwrap().how, "up-to-date");
    // A branch that moved on its own is merged when checked out, refused otherwise.
    sh(tmp.path(), &["branch", "side", "main"]);
    sh(tmp.path(), &["checkout", "--quiet", "side"]);
    std::fs::write(tmp.path().join("s.txt"), "s\n").unwrap();
    sh(tmp.path(), &["add", "."]);
    sh(tmp.path(), &["commit", "--quiet", "-m", "side work"]);
    sh(tmp.path(), &["checkout", "--quiet", "main"]);
    let b = ready(&w, "bbb", 1);
    std::fs::write(b.path.join("y.txt"), "y\n").unwrap();
    w.integrate(&b, &info("bbb")).unwrap();
    assert!(matches!(
        w.land(Some("side")),
        Err(LandError::Diverged { .. })
    ));
    sh(tmp.path(), &["checkout", "--quiet", "side"]);
    assert_eq!(w.land(None).unwrap().how, "merge");
    assert!(tmp.path().join("y.txt").exists() && tmp.path().join("s.txt").exists());
}

#[test]
fn the_integration_branch_checked_out_by_the_user_is_refused() {
    let (tmp, w) = repo();
    w.ensure_branch().unwrap();
    sh(tmp.path(), &["checkout", "--quiet", "downbeat/integration"]);
    assert!(matches!(
        w.ensure_branch(),
        Err(WorktreeError::CheckedOut { .. })
    ));
}

#[test]
fn a_repository_without_a_commit_and_a_bad_branch_name_are_explained() {
    let tmp = tempfile::tempdir().unwrap();
    sh(tmp.path(), &["init", "--quiet"]);
    let w = Worktrees::open(tmp.path(), tmp.path().join("wt"), WorktreeConfig::default())
        .unwrap()
        .unwrap();
    assert_eq!(w.ensure_branch(), Err(WorktreeError::NoCommit));
    let bad = WorktreeConfig {
        branch: "no..dots".into(),
        ..Default::default()
    };
    assert!(matches!(
        Worktrees::open(tmp.path(), tmp.path().join("wt"), bad),
        Err(WorktreeError::BadBranch(_))
    ));
    let plain = tempfile::tempdir().unwrap();
    assert!(
        Worktrees::open(
            plain.path(),
            plain.path().join("wt"),
            WorktreeConfig::default()
        )
        .unwrap()
        .is_none()
    );
}

#[test]
fn workers_in_their_own_clones_merge_through_the_remote_one_at_a_time() {
    // A bare repository stands in for the remote; two clones stand in for two machines.
    let (seed, _) = repo();
    let tmp = tempfile::tempdir().unwrap();
    let bare = tmp.path().join("remote.git");
    sh(
        tmp.path(),
        &[
            "clone",
            "--quiet",
            "--bare",
            &seed.path().display().to_string(),
            "remote.git",
        ],
    );
    let cfg = WorktreeConfig {
        remote: Some("origin".into()),
        ..Default::default()
    };
    let clone = |name: &str| {
        sh(
            tmp.path(),
            &["clone", "--quiet", &bare.display().to_string(), name],
        );
        let root = tmp.path().join(name);
        Worktrees::open(&root, root.join(".downbeat/worktrees"), cfg.clone())
            .unwrap()
            .unwrap()
    };
    let (w1, w2) = (clone("one"), clone("two"));
    // The first to ask creates the integration branch on the remote; the other fetches it.
    let tip = w1.ensure_branch().unwrap();
    assert_eq!(w2.ensure_branch().unwrap(), tip);
    let a = ready(&w1, "aaa", 1);
    let b = ready(&w2, "bbb", 1);
    std::fs::write(a.path.join("x.txt"), "x\n").unwrap();
    std::fs::write(b.path.join("y.txt"), "y\n").unwrap();
    assert_eq!(
        w1.integrate(&a, &info("aaa")).unwrap().state,
        MergeState::Merged
    );
    // The second worker fetches the remote's new tip before merging on it.
    let wb = w2.integrate(&b, &info("bbb")).unwrap();
    assert_eq!(wb.state, MergeState::Merged);
    let tree = sh(&bare, &["ls-tree", "--name-only", "downbeat/integration"]);
    assert_eq!(
        tree.lines().collect::<Vec<_>>(),
        ["a.txt", "x.txt", "y.txt"]
    );
    // Task branches are on the remote; both merges are on its first-parent line, once each.
    assert!(!sh(&bare, &["branch", "--list", "downbeat/tasks/*"]).is_empty());
    let merges = sh(
        &bare,
        &[
            "log",
            "--first-parent",
            "--merges",
            "--format=%s",
            "downbeat/integration",
        ],
    );
    assert_eq!(merges.lines().count(), 2, "{merges}");
    // A worker sees the other's merge: its task is not run again there.
    assert!(matches!(
        w2.prepare("aaa", 2, None, &[]).unwrap(),
        Start::Landed(_)
    ));
}

/// Slots of one worker (threads sharing a `Worktrees`), two runners in one clone (two
/// `Worktrees` on it, as two processes would have) and a worker in another clone, all at once:
/// git refuses a second writer of the remote-tracking ref, and no attempt may fail for it.
#[test]
fn concurrent_attempts_in_one_clone_and_across_clones_all_land() {
    let (seed, _) = repo();
    let tmp = tempfile::tempdir().unwrap();
    let bare = tmp.path().join("remote.git");
    let seed = seed.path().display().to_string();
    sh(
        tmp.path(),
        &["clone", "--quiet", "--bare", &seed, "remote.git"],
    );
    let cfg = WorktreeConfig {
        remote: Some("origin".into()),
        ..Default::default()
    };
    for name in ["one", "two"] {
        sh(
            tmp.path(),
            &["clone", "--quiet", &bare.display().to_string(), name],
        );
    }
    let open = |name: &str, dir: &str| {
        let root = tmp.path().join(name);
        std::sync::Arc::new(
            Worktrees::open(&root, root.join(dir), cfg.clone())
                .unwrap()
                .unwrap(),
        )
    };
    let runners = [
        open("one", ".downbeat/worktrees"),
        open("one", ".downbeat/worktrees-b"),
        open("two", ".downbeat/worktrees"),
    ];
    std::thread::scope(|s| {
        for (r, w) in runners.iter().enumerate() {
            for slot in 0..2 {
                let w = w.clone();
                s.spawn(move || {
                    for n in 0..3 {
                        let id = format!("t{r}{slot}{n}");
                        let p = ready(&w, &id, 1);
                        std::fs::write(p.path.join(format!("{id}.txt")), "x\n").unwrap();
                        let work = w.integrate(&p, &info(&id)).unwrap();
                        assert_eq!(work.state, MergeState::Merged, "{id}");
                    }
                });
            }
        }
    });
    let tree = sh(&bare, &["ls-tree", "--name-only", "downbeat/integration"]);
    assert_eq!(tree.lines().count(), 1 + 3 * 2 * 3, "{tree}");
}

/// A fetch that receives objects checks them against every ref, each worktree's `HEAD`
/// included, and `git worktree add` writes the new one's as a null object first. Fetches in a
/// clone where another slot adds worktrees, while another clone keeps pushing, must never see
/// one half made (`fatal: bad object worktrees/…/HEAD`).
#[test]
fn fetches_never_see_a_worktree_half_added() {
    let (seed, _) = repo();
    let tmp = tempfile::tempdir().unwrap();
    let seed = seed.path().display().to_string();
    sh(
        tmp.path(),
        &["clone", "--quiet", "--bare", &seed, "remote.git"],
    );
    let bare = tmp.path().join("remote.git").display().to_string();
    let cfg = WorktreeConfig {
        remote: Some("origin".into()),
        ..Default::default()
    };
    let open = |name: &str| {
        sh(tmp.path(), &["clone", "--quiet", &bare, name]);
        let root = tmp.path().join(name);
        Worktrees::open(&root, root.join(".downbeat/worktrees"), cfg.clone())
            .unwrap()
            .unwrap()
    };
    let (w, other) = (open("one"), open("two"));
    w.ensure_branch().unwrap();
    let busy = std::sync::atomic::AtomicBool::new(true);
    let still = || busy.load(std::sync::atomic::Ordering::SeqCst);
    std::thread::scope(|s| {
        s.spawn(|| {
            for n in 0..30 {
                ready(&w, &format!("add{n}"), 1);
            }
            busy.store(false, std::sync::atomic::Ordering::SeqCst);
        });
        s.spawn(|| {
            let mut n = 0;
            while still() {
                let id = format!("push{n}");
                let p = ready(&other, &id, 1);
                std::fs::write(p.path.join(format!("{id}.txt")), "x\n").unwrap();
                other.integrate(&p, &info(&id)).unwrap();
                n += 1;
            }
        });
        s.spawn(|| {
            while still() {
                w.tip().unwrap();
            }
        });
    });
    assert_eq!(w.list().unwrap().len(), 30);
}

#[test]
fn a_merged_attempts_worktree_is_reused_clean_for_the_next_task() {
    let (_tmp, w) = repo();
    w.ensure_branch().unwrap();
    let a = ready(&w, "aaa", 1);
    std::fs::write(a.path.join("x.txt"), "x\n").unwrap();
    w.integrate(&a, &info("aaa")).unwrap();
    let pool: Vec<_> = std::fs::read_dir(w.dir.join(POOL))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(pool.len(), 1, "the merged worktree waits in the pool");
    std::fs::write(pool[0].join("junk.txt"), "left behind\n").unwrap();
    let b = ready(&w, "bbb", 1);
    assert_eq!(std::fs::read_dir(w.dir.join(POOL)).unwrap().count(), 0);
    // On its own branch, at the new tip (with aaa's file), nothing left of before.
    assert!(b.path.join("x.txt").exists() && !b.path.join("junk.txt").exists());
    let wt = Git::new(&b.path);
    assert_eq!(
        wt.run(&["rev-parse", "--abbrev-ref", "HEAD"]).unwrap(),
        b.branch
    );
    assert_eq!(wt.commit_of("HEAD").unwrap().unwrap(), w.tip().unwrap());
    assert_eq!(w.list().unwrap().len(), 1);
    assert_eq!(w.drain_pool(), 0);
}
