//! `downbeat bench worktrees`: the cost of worktree isolation on a repository of many files.
//! Two figures: the per-task overhead (worktree creation, then commit and merge of a one-file
//! change), measured directly on a sample of tasks one after the other; and a whole run of
//! independent tasks editing disjoint files through the engine, with isolation and, as the
//! reference measured in the same run, without.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use downbeat_engine::executor::process::Process;
use downbeat_engine::executor::{Executor, ProcessSpec};
use downbeat_engine::run::{default_holder, run};
use downbeat_engine::worktree::{Start, TaskInfo, WorktreeConfig, WorktreeMode, Worktrees};
use serde_json::json;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::error::{Error, Kind};
use crate::output::{json as print_json, note, outln};

fn git(dir: &Path, args: &[&str]) -> Result<String, Error> {
    let out = std::process::Command::new("git")
        .current_dir(dir)
        .args(["-c", "user.name=bench", "-c", "user.email=bench@localhost"])
        .args(args)
        .output()
        .map_err(|e| Error::new(Kind::Internal, format!("git: {e}")))?;
    if !out.status.success() {
        return Err(Error::new(
            Kind::Internal,
            format!(
                "git {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr)
            ),
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

fn internal(e: impl std::fmt::Display) -> Error {
    Error::new(Kind::Internal, e.to_string())
}

/// A repository of `files` files in directories of 100, one commit.
fn make_repo(dir: &Path, files: u32) -> Result<(), Error> {
    std::fs::create_dir_all(dir)?;
    git(dir, &["init", "-q", "-b", "main"])?;
    for i in 0..files {
        let sub = dir.join(format!("src/m{:03}", i / 100));
        std::fs::create_dir_all(&sub)?;
        std::fs::write(
            sub.join(format!("f{i}.txt")),
            format!("file {i}\nline two\nline three\n"),
        )?;
    }
    git(dir, &["add", "-A"])?;
    git(dir, &["commit", "-q", "-m", "start"])?;
    Ok(())
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v.get(((v.len().max(1) - 1) as f64 * p).round() as usize)
        .copied()
        .unwrap_or(0.0)
}

/// Prepare, one-file change, commit and merge, `samples` times one after the other: the
/// milliseconds of preparing and of integrating, per task.
fn overhead(w: &Worktrees, samples: u32) -> Result<(Vec<f64>, Vec<f64>), Error> {
    let (mut prep, mut integ) = (Vec::new(), Vec::new());
    for i in 0..samples {
        let id = format!("s{i}");
        let t0 = Instant::now();
        let Start::Ready(p) = w.prepare(&id, 1, None, &[]).map_err(internal)? else {
            return Err(internal("a fresh task was found merged already"));
        };
        prep.push(t0.elapsed().as_secs_f64() * 1e3);
        let file = p.path.join(format!("src/m000/f{}.txt", i % 100));
        std::fs::write(&file, format!("changed by {id}\n"))?;
        let info = TaskInfo {
            id: &id,
            title: "bench",
            attempt: 1,
            role: None,
            summary: None,
        };
        let t1 = Instant::now();
        let work = w.integrate(&p, &info).map_err(internal)?;
        integ.push(t1.elapsed().as_secs_f64() * 1e3);
        if work.merge.is_none() {
            return Err(internal(format!("task {id} did not merge: {work:?}")));
        }
    }
    Ok((prep, integ))
}

/// `tasks` independent tasks, each writing its own file, through the engine at `concurrency`;
/// with `worktrees`, each in its own worktree. Returns the seconds and the tasks completed.
async fn engine_run(
    dir: &Path,
    repo: &Path,
    tasks: u32,
    concurrency: usize,
    worktrees: Option<Arc<Worktrees>>,
) -> Result<(f64, u64), Error> {
    let store: Arc<dyn downbeat_store::Store> = Arc::from(
        downbeat_store::open(&format!("sqlite:{}", dir.join("bench.db").display()), true).await?,
    );
    let plan = crate::bench::bench_plan(tasks as usize, crate::bench::Shape::Independent);
    let actor = downbeat_core::context::Actor::new("bench", downbeat_app::project::now());
    store.apply_plan(&plan, &actor).await?;
    let exec: Arc<dyn Executor> = Arc::new(
        Process::new(ProcessSpec {
            shell: Some("echo \"$DOWNBEAT_TASK_ID\" > \"out-$DOWNBEAT_TASK_ID.txt\"".into()),
            stdin: downbeat_engine::executor::Stdin::Empty,
            ..Default::default()
        })
        .map_err(|e| Error::invalid(e.to_string()))?,
    );
    let mut opts = crate::bench::bench_options(dir, concurrency, default_holder(), exec, true);
    opts.workspace = repo.to_path_buf();
    let isolated = worktrees.is_some();
    opts.worktrees = worktrees;
    let inner = opts.resolve.clone();
    opts.resolve = Arc::new(move |t| {
        inner(t).map(|mut r| {
            r.worktree = isolated;
            r
        })
    });
    let (tx, mut rx) = mpsc::unbounded_channel();
    tokio::spawn(async move { while rx.recv().await.is_some() {} });
    let t0 = Instant::now();
    let summary = run(store, opts, tx, CancellationToken::new())
        .await
        .map_err(internal)?;
    Ok((t0.elapsed().as_secs_f64(), summary.completed))
}

pub async fn bench_worktrees(
    files: u32,
    tasks: u32,
    samples: u32,
    concurrency: usize,
    keep: bool,
    j: bool,
) -> Result<(), Error> {
    let dir = crate::bench::bench_dir()?;
    let repo = dir.join("repo");
    let t0 = Instant::now();
    make_repo(&repo, files)?;
    note(&format!(
        "repository of {files} files made in {:.1} s",
        t0.elapsed().as_secs_f64()
    ));
    let config = WorktreeConfig {
        mode: WorktreeMode::Always,
        ..Default::default()
    };
    let w = Arc::new(
        Worktrees::open(&repo, repo.join(".downbeat/worktrees"), config)
            .map_err(internal)?
            .ok_or_else(|| internal("the bench repository is not a repository"))?,
    );
    w.ensure_branch().map_err(internal)?;
    let wb = w.clone();
    let (mut prep, mut integ) = tokio::task::spawn_blocking(move || overhead(&wb, samples))
        .await
        .map_err(internal)??;
    let mut total: Vec<f64> = prep.iter().zip(&integ).map(|(a, b)| a + b).collect();
    let (total50, total95) = (pct(&mut total, 0.5), pct(&mut total, 0.95));
    let (prep50, integ50) = (pct(&mut prep, 0.5), pct(&mut integ, 0.5));

    let run_dir = dir.join("isolated");
    std::fs::create_dir_all(&run_dir)?;
    let (secs_on, done_on) = engine_run(&run_dir, &repo, tasks, concurrency, Some(w)).await?;
    let landed = git(&repo, &["ls-tree", "--name-only", "downbeat/integration"])?
        .lines()
        .filter(|l| l.starts_with("out-"))
        .count();
    let plain = dir.join("plain");
    std::fs::create_dir_all(&plain)?;
    let (secs_off, done_off) = engine_run(&plain, &repo, tasks, concurrency, None).await?;
    if !keep {
        let _ = std::fs::remove_dir_all(&dir);
    }
    if j {
        print_json(&json!({
            "files": files, "samples": samples,
            "overhead_ms_p50": total50, "overhead_ms_p95": total95,
            "prepare_ms_p50": prep50, "integrate_ms_p50": integ50,
            "tasks": tasks, "concurrency": concurrency,
            "isolated": {"seconds": secs_on, "completed": done_on, "landed": landed},
            "reference_without_worktrees": {"seconds": secs_off, "completed": done_off},
        }));
    } else {
        outln(&format!(
            "{files} files, {samples} tasks one after the other: worktree + commit + merge per task p50 {total50:.0} ms, p95 {total95:.0} ms (prepare p50 {prep50:.0} ms, commit and merge p50 {integ50:.0} ms)"
        ));
        outln(&format!(
            "{tasks} tasks editing disjoint files at -j {concurrency}: {done_on} completed, {landed} landed on the integration branch in {secs_on:.1} s; without worktrees (reference, same run): {done_off} completed in {secs_off:.1} s"
        ));
    }
    Ok(())
}
