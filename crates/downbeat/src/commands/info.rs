//! About the project and Downbeat itself: `roles`, `metrics`, `bench plan`.

use downbeat_app::error::{Error, Kind};
use downbeat_app::project::Project;
use serde_json::json;

use crate::cli::*;
use crate::output::{json as print_json, out, outln, table};

pub(super) fn roles(p: &Project, a: RolesArgs, j: bool) -> Result<(), Error> {
    match a.name {
        Some(n) => {
            let r = p.roles.get(&n).ok_or_else(|| {
                Error::not_found(format!("no role `{n}`"))
                    .with_hint(format!("known roles: {}", p.roles.names().join(", ")))
            })?;
            if j {
                print_json(r);
            } else {
                let cap = r
                    .max_parallel
                    .map(|c| format!("\nmax parallel: {c}"))
                    .unwrap_or_default();
                out(&format!(
                    "{} ({})\n{}{cap}\n\nprompt template:\n{}\n",
                    r.name,
                    r.source,
                    r.description,
                    r.prompt.trim_end()
                ));
            }
        }
        None => {
            let list: Vec<_> = p.roles.iter().collect();
            if j {
                print_json(&list);
            } else {
                let rows: Vec<Vec<String>> = list
                    .iter()
                    .map(|r| {
                        vec![
                            r.name.clone(),
                            r.max_parallel
                                .map(|c| c.to_string())
                                .unwrap_or_else(|| "-".into()),
                            r.source.clone(),
                            r.description.clone(),
                        ]
                    })
                    .collect();
                out(&table(&["ROLE", "MAX", "SOURCE", "DESCRIPTION"], &rows));
            }
        }
    }
    Ok(())
}

pub(super) async fn metrics(p: &Project, j: bool) -> Result<(), Error> {
    let m = downbeat_app::context::metrics(p).await?;
    let spent = downbeat_app::views::spend(p, &Default::default()).await?;
    if j {
        let mut v = serde_json::to_value(&m).unwrap_or_default();
        v["spend"] = serde_json::to_value(&spent).unwrap_or_default();
        print_json(&v);
        return Ok(());
    }
    let pct = |x: Option<f64>| {
        x.map(|x| format!("{:.0}%", x * 100.0))
            .unwrap_or_else(|| "n/a".into())
    };
    out(&format!(
        "tasks completed:         {}\ntasks failed:            {}\nsuccess rate:            {}\nparallel execution rate: {}\nsessions:                {}\ndecisions:               {}\ninsights:                {}\nevents:                  {}\n",
        m.tasks_completed,
        m.tasks_failed,
        pct(m.success_rate),
        pct(m.parallel_execution_rate),
        m.sessions,
        m.decisions,
        m.insights,
        m.events
    ));
    if !spent.is_empty() {
        let rows: Vec<Vec<String>> = spent
            .iter()
            .map(|r| {
                vec![
                    r.role.clone(),
                    r.attempts.to_string(),
                    r.tokens_in.to_string(),
                    r.tokens_out.to_string(),
                    r.cost_usd
                        .map_or_else(|| "-".into(), |c| format!("${c:.4}")),
                ]
            })
            .collect();
        out("\n");
        out(&crate::output::table(
            &["ROLE", "ATTEMPTS", "TOKENS IN", "TOKENS OUT", "COST"],
            &rows,
        ));
    }
    Ok(())
}

pub(super) fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

pub(super) fn bench(b: BenchCmd, j: bool) -> Result<(), Error> {
    let BenchCmd::Plan { tasks, edges, seed } = b else {
        return Err(Error::new(Kind::Internal, "not a planner benchmark"));
    };
    if tasks == 0 {
        return Err(Error::invalid("--tasks must be at least 1"));
    }
    use downbeat_core::planner::{PlanOptions, analyze, random_graph};
    let t0 = std::time::Instant::now();
    let builder = random_graph(tasks, edges, seed);
    let generated = t0.elapsed();
    let t1 = std::time::Instant::now();
    let dag = builder.build().map_err(|c| {
        Error::new(
            Kind::Internal,
            format!("the generated graph has a cycle of {} nodes", c.path.len()),
        )
    })?;
    let built = t1.elapsed();
    let t2 = std::time::Instant::now();
    let a = analyze(
        &dag,
        &PlanOptions {
            group_caps: vec![],
            workers: vec![1, 4, 16],
        },
    );
    let analysed = t2.elapsed();
    let rss = peak_rss_mb();
    if j {
        print_json(&json!({
            "tasks": tasks, "edges": edges, "seed": seed,
            "generate_ms": generated.as_secs_f64() * 1e3,
            "build_ms": built.as_secs_f64() * 1e3,
            "analyze_ms": analysed.as_secs_f64() * 1e3,
            "waves": a.waves.len(), "critical_path_effort": a.critical_path_effort,
            "max_parallelism": a.max_parallelism, "peak_rss_mb": rss,
        }));
    } else {
        outln(&format!(
            "{tasks} tasks, {} edges: generate {:.0} ms, build {:.0} ms, analyze {:.0} ms, plan (build + analyze) {:.0} ms; {} waves, critical path {} units, max parallelism {}; peak RSS {}",
            dag.edge_count(),
            generated.as_secs_f64() * 1e3,
            built.as_secs_f64() * 1e3,
            analysed.as_secs_f64() * 1e3,
            (built + analysed).as_secs_f64() * 1e3,
            a.waves.len(),
            a.critical_path_effort,
            a.max_parallelism,
            rss.map(|r| format!("{r:.0} MB"))
                .unwrap_or_else(|| "n/a".into())
        ));
    }
    Ok(())
}
