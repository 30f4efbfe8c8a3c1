//! `downbeat bench chaos`, small: the runner killed with SIGKILL three times on 40 shell tasks,
//! then let finish. Nothing may be lost and no task may start before its dependencies ended.

mod common;

use common::Env;
use serde_json::Value;

#[test]
fn three_kills_lose_nothing_and_keep_the_order() {
    let e = Env::builder().keep("PATH").build();
    let tmp = e.tmp().join("bench");
    std::fs::create_dir_all(&tmp).unwrap();
    // A fixed delay: with random ones the 40 tasks could all be done before the third kill.
    let out = e
        .command(&[
            "--json",
            "bench",
            "chaos",
            "--tasks",
            "40",
            "--kills",
            "3",
            "--every",
            "100",
            "--seed",
            "7",
            "--timeout",
            "120",
        ])
        .env("TMPDIR", &tmp)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "exit {:?}\n{stdout}\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    let r: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(r["kills"], 3, "{r}");
    assert_eq!(r["runs"], 4, "{r}");
    assert_eq!(r["lost"], 0, "{r}");
    assert_eq!(r["order_violations"], 0, "{r}");
    assert_eq!(r["completed_without_end"], 0, "{r}");
    assert_eq!(r["completed"], 40, "{r}");
    assert_eq!(r["hung"], false, "{r}");
    assert_eq!(r["last_exit"], 0, "{r}");
    // Every task started at least once; what a kill cut off is counted, not lost.
    assert!(r["attempts_started"].as_u64().unwrap() >= 40, "{r}");
    // The temporary project is gone.
    assert_eq!(std::fs::read_dir(&tmp).unwrap().count(), 0);
}
