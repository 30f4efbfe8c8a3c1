//! `downbeat bench chaos`: `downbeat run` killed with SIGKILL again and again, then let finish.
//!
//! A temporary project gets a plan of shell tasks (the shapes of `bench run`, layered by
//! default). Each task appends `start I ATTEMPT NS` to a journal, sleeps 5–60 ms, then appends
//! `end I ATTEMPT NS` (short appends are atomic, so the journal's order is the order of
//! events). A runner (`downbeat run -j N`, this same binary) is started and killed with SIGKILL
//! after a delay, K times; only the runner is killed, so its agent guard and the next runner
//! have to stop the attempts it left behind. A last runner then runs to the end, within a
//! timeout. The journal and the database then say:
//!
//! - **lost**: tasks not `completed` in the database at the end;
//! - **re-run**: tasks whose command ran to `end` more than once (finished work done again);
//! - **cut off**: attempts that wrote `start` but never `end` (killed with their runner);
//! - **order violations**: tasks that wrote `start` before one of their dependencies had
//!   written any `end`;
//! - **completed without end**: tasks `completed` in the database whose command never ended.
//!
//! Lost tasks, order violations, completions without an end and a hung last run are failures
//! (exit code 1, after the figures).

use std::collections::HashMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use downbeat_core::plan::TaskRef;
use downbeat_core::task::Status;
use downbeat_store::TaskFilter;
use serde_json::{Value, json};

use crate::bench::{bench_dir, bench_plan};
use crate::cli::BenchChaosArgs;
use crate::error::{Error, Kind};
use crate::output::{json as print_json, note, outln};

fn bench_error(m: impl std::fmt::Display) -> Error {
    Error::new(Kind::Internal, format!("chaos benchmark: {m}"))
}

/// splitmix64: the kill delays and task durations from one seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `lo..=hi`.
    fn between(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }
}

/// What the runners did.
#[derive(Default)]
struct Campaign {
    kills: u32,
    runs: u32,
    hung: bool,
    /// The last runner's exit code (`None` if it was killed or hung).
    last_exit: Option<i32>,
}

/// The counts read from the journal and the database.
#[derive(Default)]
struct Tally {
    attempts_started: usize,
    cut_off: usize,
    re_run: usize,
    extra_runs: usize,
    order_violations: usize,
    first_violations: Vec<String>,
    completed: usize,
    lost: usize,
    completed_without_end: usize,
}

/// Runs the benchmark; see the module documentation.
pub async fn bench_chaos(a: &BenchChaosArgs, j: bool) -> Result<(), Error> {
    let n = a.tasks.max(2) as usize;
    let seed = a
        .seed
        .unwrap_or_else(|| downbeat_app::project::now().0 as u64);
    let mut rng = Rng(seed);
    let dir = bench_dir()?;
    let journal = dir.join("journal");
    let result = match set_up(&dir, &journal, n, a.shape, &mut rng) {
        Ok(deps) => measure(a, &dir, &deps, seed, &mut rng).await,
        Err(e) => Err(e),
    };
    if a.keep {
        note(&format!("kept the project in {}", dir.display()));
    } else {
        let _ = std::fs::remove_dir_all(&dir);
    }
    let r = result?;
    if j {
        print_json(&r);
    } else {
        print_text(&r);
    }
    let bad = ["lost", "order_violations", "completed_without_end"]
        .iter()
        .any(|k| r[k].as_u64().unwrap_or(0) > 0)
        || r["hung"] == true;
    if bad {
        return Err(bench_error(format!(
            "{} lost, {} order violation(s), {} completed without an end{}",
            r["lost"],
            r["order_violations"],
            r["completed_without_end"],
            if r["hung"] == true {
                ", the last run hung"
            } else {
                ""
            }
        ))
        .with_hint("`--keep` keeps the journal, the runners' logs and the database"));
    }
    Ok(())
}

/// The campaign, timed, then its counts.
async fn measure(
    a: &BenchChaosArgs,
    dir: &Path,
    deps: &[Vec<usize>],
    seed: u64,
    rng: &mut Rng,
) -> Result<Value, Error> {
    let t0 = Instant::now();
    let c = campaign(dir, a, rng).await?;
    let secs = t0.elapsed().as_secs_f64();
    let t = tally(dir, &dir.join("journal"), deps).await?;
    Ok(figures(a, deps.len(), seed, secs, &c, &t))
}

/// The project: `downbeat init`, then the plan applied with `downbeat plan apply`. Returns
/// each task's dependencies.
fn set_up(
    dir: &Path,
    journal: &Path,
    n: usize,
    shape: crate::bench::Shape,
    rng: &mut Rng,
) -> Result<Vec<Vec<usize>>, Error> {
    let plan = bench_plan(n, shape);
    let mut deps = vec![Vec::new(); n];
    for (a, b, _) in &plan.edges {
        if let (TaskRef::New(a), TaskRef::New(b)) = (a, b) {
            deps[*b].push(*a);
        }
    }
    // Quoted for `sh`: inside single quotes, a quote is `'\''`.
    let j = journal.display().to_string().replace('\'', "'\\''");
    let tasks: Vec<Value> = (0..n)
        .map(|i| {
            let ms = rng.between(5, 60);
            let line = |what: &str| {
                format!("echo \"{what} {i} $DOWNBEAT_ATTEMPT $(date +%s%N)\" >> '{j}'")
            };
            json!({
                "key": format!("t{i}"),
                "title": format!("task {i}"),
                "depends_on": deps[i].iter().map(|d| format!("t{d}")).collect::<Vec<_>>(),
                "shell": format!("{}; sleep 0.{ms:03}; {}", line("start"), line("end")),
            })
        })
        .collect();
    let file = dir.join("plan.json");
    std::fs::write(
        &file,
        json!({"plan": {"name": "chaos"}, "tasks": tasks}).to_string(),
    )?;
    std::fs::write(journal, "")?;
    downbeat(dir, &["init"])?;
    downbeat(dir, &["plan", "apply", "plan.json"])?;
    Ok(deps)
}

/// This binary in `dir`, with the environment that would point it elsewhere removed.
fn command(dir: &Path) -> Result<Command, Error> {
    let mut c = Command::new(std::env::current_exe().map_err(bench_error)?);
    c.current_dir(dir)
        .env_remove("DOWNBEAT_DATABASE_URL")
        .env_remove("DOWNBEAT_NOW")
        .stdin(Stdio::null());
    Ok(c)
}

/// Runs `downbeat ARGS` to its end; an error if it fails.
fn downbeat(dir: &Path, args: &[&str]) -> Result<(), Error> {
    let out = command(dir)?.args(args).output().map_err(bench_error)?;
    if !out.status.success() {
        return Err(bench_error(format!(
            "`downbeat {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(())
}

/// Appends `line` to the file `name` of `dir`.
fn append(dir: &Path, name: &str, line: &str) -> Result<(), Error> {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join(name))?;
    f.write_all(format!("{line}\n").as_bytes())?;
    Ok(())
}

/// A runner process, killed (SIGKILL) and reaped if it is dropped still running, so that an
/// error of the benchmark never leaves one behind.
struct Runner(Child);

impl Drop for Runner {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// Starts runner number `run` (from 1), its output going to `runners.log`; the journal and the
/// log get a `runner N` line first.
fn start_runner(dir: &Path, concurrency: usize, run: u32) -> Result<Runner, Error> {
    append(dir, "journal", &format!("runner {run}"))?;
    append(dir, "runners.log", &format!("== runner {run}"))?;
    let log = std::fs::OpenOptions::new()
        .append(true)
        .open(dir.join("runners.log"))?;
    command(dir)?
        .args(["run", "-j", &concurrency.max(1).to_string()])
        .stdout(Stdio::from(log.try_clone()?))
        .stderr(Stdio::from(log))
        .spawn()
        .map(Runner)
        .map_err(bench_error)
}

/// Waits for `child` to exit, up to `limit`; its exit code (-1 for a signal), or `None`.
async fn wait_for(Runner(child): &mut Runner, limit: Duration) -> Result<Option<i32>, Error> {
    let until = Instant::now() + limit;
    loop {
        if let Some(s) = child.try_wait()? {
            return Ok(Some(s.code().unwrap_or(-1)));
        }
        if Instant::now() >= until {
            return Ok(None);
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// K runners killed with SIGKILL, then one let finish. A runner that ends on its own before
/// its kill ends the campaign early (nothing was left to do).
async fn campaign(dir: &Path, a: &BenchChaosArgs, rng: &mut Rng) -> Result<Campaign, Error> {
    let mut c = Campaign::default();
    while c.kills < a.kills {
        let delay = a.every.unwrap_or_else(|| rng.between(100, 600));
        c.runs += 1;
        let mut child = start_runner(dir, a.concurrency, c.runs)?;
        if let Some(code) = wait_for(&mut child, Duration::from_millis(delay)).await? {
            note(&format!(
                "the run ended (exit {code}) before kill {}",
                c.kills + 1
            ));
            c.last_exit = Some(code);
            return Ok(c);
        }
        child.0.kill()?;
        let ns = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        child.0.wait()?;
        c.kills += 1;
        let line = format!("killed {} after {delay} ms {ns}", c.runs);
        append(dir, "journal", &line)?;
        note(&format!("kill {}/{} after {delay} ms", c.kills, a.kills));
    }
    c.runs += 1;
    let mut child = start_runner(dir, a.concurrency, c.runs)?;
    c.last_exit = wait_for(&mut child, Duration::from_secs(a.timeout)).await?;
    if c.last_exit.is_none() {
        c.hung = true;
        child.0.kill()?;
        child.0.wait()?;
    }
    Ok(c)
}

/// One journal line: `start|end TASK ATTEMPT NS`.
fn parse(line: &str) -> Option<(bool, usize, u32)> {
    let mut w = line.split_whitespace();
    let start = match w.next()? {
        "start" => true,
        "end" => false,
        _ => return None,
    };
    Some((start, w.next()?.parse().ok()?, w.next()?.parse().ok()?))
}

/// The counts: the journal in its order, and the tasks' statuses in the database.
async fn tally(dir: &Path, journal: &Path, deps: &[Vec<usize>]) -> Result<Tally, Error> {
    let (mut t, ended) = read_journal(&std::fs::read_to_string(journal)?, deps);
    let db = dir.join(".downbeat/downbeat.db");
    let store = downbeat_store::open(&format!("sqlite:{}", db.display()), false).await?;
    let status: HashMap<usize, Status> = store
        .tasks(&TaskFilter::default())
        .await?
        .into_iter()
        .filter_map(|x| Some((x.title.strip_prefix("task ")?.parse().ok()?, x.status)))
        .collect();
    for (i, e) in ended.iter().enumerate() {
        if status.get(&i) == Some(&Status::Completed) {
            t.completed += 1;
            t.completed_without_end += usize::from(*e == 0);
        } else {
            t.lost += 1;
        }
    }
    Ok(t)
}

/// The journal's counts, read in its order, and the number of ends of each task.
fn read_journal(text: &str, deps: &[Vec<usize>]) -> (Tally, Vec<usize>) {
    let mut t = Tally::default();
    let mut ended = vec![0usize; deps.len()];
    // Starts minus ends per (task, attempt): an attempt number could come back after a kill.
    let mut open: HashMap<(usize, u32), usize> = HashMap::new();
    let mut violated = vec![false; deps.len()];
    for (start, task, attempt) in text.lines().filter_map(parse) {
        if task >= deps.len() {
            continue;
        }
        if start {
            t.attempts_started += 1;
            *open.entry((task, attempt)).or_default() += 1;
            if let Some(d) = deps[task].iter().find(|d| ended[**d] == 0) {
                if !violated[task] && t.first_violations.len() < 10 {
                    t.first_violations
                        .push(format!("task {task} started before task {d} ended"));
                }
                violated[task] = true;
            }
        } else {
            ended[task] += 1;
            if let Some(o) = open.get_mut(&(task, attempt)) {
                *o = o.saturating_sub(1);
            }
        }
    }
    t.cut_off = open.values().sum();
    t.order_violations = violated.iter().filter(|v| **v).count();
    t.re_run = ended.iter().filter(|e| **e > 1).count();
    t.extra_runs = ended.iter().map(|e| e.saturating_sub(1)).sum();
    (t, ended)
}

fn figures(a: &BenchChaosArgs, n: usize, seed: u64, secs: f64, c: &Campaign, t: &Tally) -> Value {
    json!({
        "tasks": n,
        "shape": format!("{:?}", a.shape).to_lowercase(),
        "concurrency": a.concurrency,
        "seed": seed,
        "every_ms": a.every,
        "kills": c.kills,
        "runs": c.runs,
        "seconds": secs,
        "last_exit": c.last_exit,
        "hung": c.hung,
        "completed": t.completed,
        "lost": t.lost,
        "re_run": t.re_run,
        "re_run_extra_ends": t.extra_runs,
        "attempts_started": t.attempts_started,
        "cut_off": t.cut_off,
        "order_violations": t.order_violations,
        "order_violation_examples": t.first_violations,
        "completed_without_end": t.completed_without_end,
    })
}

fn print_text(r: &Value) {
    outln(&format!(
        "{} tasks ({}, -j {}, seed {}): {} kill(s) in {} run(s), {:.1} s; last run {}",
        r["tasks"],
        r["shape"].as_str().unwrap_or(""),
        r["concurrency"],
        r["seed"],
        r["kills"],
        r["runs"],
        r["seconds"].as_f64().unwrap_or(0.0),
        if r["hung"] == true {
            "hung (killed)".to_owned()
        } else {
            format!("exited {}", r["last_exit"])
        },
    ));
    outln(&format!(
        "lost {}; re-run {} ({} extra end(s)); cut off by a kill {} of {} attempts started; order violations {}; completed without end {}",
        r["lost"],
        r["re_run"],
        r["re_run_extra_ends"],
        r["cut_off"],
        r["attempts_started"],
        r["order_violations"],
        r["completed_without_end"],
    ));
    if let Some(v) = r["order_violation_examples"].as_array() {
        for e in v {
            outln(&format!("  {}", e.as_str().unwrap_or("")));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::read_journal;

    /// Task 1 depends on task 0, task 2 on tasks 0 and 1.
    fn deps() -> Vec<Vec<usize>> {
        vec![vec![], vec![0], vec![0, 1]]
    }

    #[test]
    fn a_start_before_a_dependency_ended_is_an_order_violation() {
        let text = "runner 1\nstart 0 1 5\nstart 1 1 6\nend 0 1 7\nend 1 1 8\n\
                    start 2 1 9\nend 2 1 10\n";
        let (t, ended) = read_journal(text, &deps());
        assert_eq!(t.order_violations, 1);
        assert_eq!(t.first_violations, ["task 1 started before task 0 ended"]);
        assert_eq!(ended, [1, 1, 1]);
        assert_eq!((t.re_run, t.cut_off, t.attempts_started), (0, 0, 3));
    }

    #[test]
    fn cut_off_attempts_and_work_done_twice_are_counted_apart() {
        // Task 0 ended, then its runner was killed before the completion was stored: it ran
        // again. Task 1's first attempt was killed before its end.
        let text = "runner 1\nstart 0 1 1\nend 0 1 2\nstart 1 1 3\nkilled 1 after 100 ms 4\n\
                    runner 2\nstart 0 2 5\nend 0 2 6\nstart 1 2 7\nend 1 2 8\n\
                    start 2 1 9\nend 2 1 10\n";
        let (t, ended) = read_journal(text, &deps());
        assert_eq!(t.order_violations, 0);
        assert_eq!(ended, [2, 1, 1]);
        assert_eq!((t.re_run, t.extra_runs), (1, 1));
        assert_eq!(t.cut_off, 1);
        assert_eq!(t.attempts_started, 5);
    }
}
