//! Run settings as values: retry policy, failure policy, flag rules, named executors.
//!
//! These types deserialize from the project configuration (`[run]`, `[executors.*]`,
//! `[[rules]]`); reading the file is the CLI's business.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use crate::executor::ExecutorSpec;

/// How failed attempts are retried.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (1 = no retry).
    #[serde(default = "one")]
    pub max_attempts: u32,
    #[serde(default)]
    pub backoff: Backoff,
    /// Delay before the first retry (`2s`).
    #[serde(default = "default_delay")]
    pub delay: String,
    /// Upper bound of the delay (`1m`).
    #[serde(default = "default_max_delay")]
    pub max_delay: String,
    /// Spread each delay randomly over [delay/2, delay].
    #[serde(default)]
    pub jitter: bool,
}

fn one() -> u32 {
    1
}
fn default_delay() -> String {
    "2s".into()
}
fn default_max_delay() -> String {
    "1m".into()
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 1,
            backoff: Backoff::default(),
            delay: default_delay(),
            max_delay: default_max_delay(),
            jitter: false,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backoff {
    Fixed,
    #[default]
    Exponential,
}

impl RetryPolicy {
    /// The delay before retry number `retry` (1 = the first retry); `seed` drives the jitter.
    pub fn delay_for(&self, retry: u32, seed: u64) -> Result<Duration, String> {
        let base = parse_duration(&self.delay)?;
        let max = parse_duration(&self.max_delay)?;
        let d = match self.backoff {
            Backoff::Fixed => base,
            Backoff::Exponential => base.saturating_mul(1u32 << retry.saturating_sub(1).min(20)),
        }
        .min(max);
        if self.jitter && !d.is_zero() {
            // Deterministic spread over [d/2, d] (splitmix64 of the seed).
            let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            let half = d / 2;
            let spread = half.as_millis() as u64;
            let extra = if spread == 0 { 0 } else { z % (spread + 1) };
            return Ok(half + Duration::from_millis(extra));
        }
        Ok(d)
    }
}

/// What a failed task (after its retries) does to the rest of the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FailurePolicy {
    /// Keep running everything that does not depend on the failed task.
    #[default]
    Continue,
    /// Cancel the failed task's dependents (with a note), keep running the rest.
    SkipDependents,
    /// Start nothing new; let running attempts finish; end the run.
    Stop,
}

pub use downbeat_core::flags::{FlagAction, FlagRule};

/// `[run]` in the project configuration.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunConfig {
    /// Name of the executor for tasks whose task and role name none.
    pub executor: Option<String>,
    /// Attempts running at once (default: number of CPUs).
    pub concurrency: Option<usize>,
    /// Lease length; renewed every third of it (default `30s`).
    pub lease: Option<String>,
    /// Per-attempt timeout for tasks and roles that set none.
    pub timeout: Option<String>,
    #[serde(default)]
    pub failure: FailurePolicy,
    #[serde(default)]
    pub retry: RetryPolicy,
    /// The largest artifact stored (`100MB`, `1GiB`, `500KB`, or bytes; default 100 MiB).
    pub artifact_limit: Option<String>,
    /// How much of the decisions in force and the relevant insights a prompt carries
    /// (`8KB`, or bytes; default 8,000 bytes).
    pub context_budget: Option<String>,
}

impl RunConfig {
    /// `artifact_limit` in bytes.
    pub fn artifact_limit(&self) -> Result<u64, String> {
        match &self.artifact_limit {
            Some(s) => parse_size(s),
            None => Ok(crate::artifacts::DEFAULT_LIMIT),
        }
    }
}

/// The default of `[run] context_budget`: bytes of decisions and insights in one prompt.
pub const DEFAULT_CONTEXT_BUDGET: usize = 8_000;

impl RunConfig {
    /// `context_budget` in bytes.
    pub fn context_budget(&self) -> Result<usize, String> {
        match &self.context_budget {
            Some(s) => parse_size(s).map(|n| usize::try_from(n).unwrap_or(usize::MAX)),
            None => Ok(DEFAULT_CONTEXT_BUDGET),
        }
    }
}

/// Parses `500KB`, `100MB`, `1GB` (powers of 1000), `512KiB`, `100MiB`, `1GiB` (of 1024), or
/// a number of bytes.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let bad =
        || format!("invalid size `{s}` (use forms like 500KB, 100MB, 1GiB or a number of bytes)");
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num.parse().map_err(|_| bad())?;
    let mult: u64 = match unit.trim() {
        "" | "B" => 1,
        "KB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        _ => return Err(bad()),
    };
    n.checked_mul(mult).ok_or_else(bad)
}

/// Named executors: `[executors.NAME]`.
pub type Executors = BTreeMap<String, ExecutorSpec>;

/// Parses `90s`, `30m`, `1h30m`, `250ms`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    if let Some(ms) = s.trim().strip_suffix("ms") {
        return ms
            .trim()
            .parse::<u64>()
            .map(Duration::from_millis)
            .map_err(|_| format!("invalid duration `{s}`"));
    }
    downbeat_core::time::Millis::parse(s).map(|m| Duration::from_millis(m.0.max(0) as u64))
}

#[cfg(test)]
mod size_tests {
    #[test]
    fn sizes_read_in_decimal_and_binary_units() {
        assert_eq!(super::parse_size("100MB"), Ok(100_000_000));
        assert_eq!(super::parse_size("1GiB"), Ok(1 << 30));
        assert_eq!(super::parse_size("512"), Ok(512));
        assert!(super::parse_size("12 parsecs").is_err());
        assert!(super::parse_size("MB").is_err());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exponential_backoff_doubles_up_to_the_cap() {
        let p = RetryPolicy {
            max_attempts: 5,
            delay: "1s".into(),
            max_delay: "5s".into(),
            ..Default::default()
        };
        let d: Vec<u64> = (1..=4)
            .map(|r| p.delay_for(r, 0).unwrap().as_secs())
            .collect();
        assert_eq!(d, [1, 2, 4, 5]);
        let fixed = RetryPolicy {
            backoff: Backoff::Fixed,
            ..p.clone()
        };
        assert_eq!(fixed.delay_for(3, 0).unwrap().as_secs(), 1);
        let jit = RetryPolicy { jitter: true, ..p };
        for seed in 0..50 {
            let d = jit.delay_for(2, seed).unwrap();
            assert!(
                d >= Duration::from_secs(1) && d <= Duration::from_secs(2),
                "{d:?}"
            );
        }
    }

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert!(parse_duration("soon").is_err());
    }
}
