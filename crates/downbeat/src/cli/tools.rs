//! Command-line syntax of the tools around the work: benchmarks, and setting up AI clients
//! (`mcp install`, `agents export`).

use std::path::PathBuf;

use clap::{Args, Subcommand, ValueEnum};

#[derive(Debug, Subcommand)]
pub enum BenchCmd {
    /// Plan a random DAG in memory and print the time and peak memory.
    Plan {
        /// Tasks in the graph.
        #[arg(long, default_value_t = 1_000_000)]
        tasks: u32,
        /// Dependency edges.
        #[arg(long, default_value_t = 5_000_000)]
        edges: u64,
        /// Seed of the random graph (the same seed gives the same graph).
        #[arg(long, default_value_t = 42)]
        seed: u64,
    },
    /// Run noop tasks through the engine and the store in a temporary project.
    Run {
        /// Tasks to run.
        #[arg(long, default_value_t = 100_000)]
        tasks: u32,
        /// How the tasks depend on one another.
        #[arg(long, value_enum, default_value = "independent")]
        shape: crate::bench::Shape,
        /// Tasks at once.
        #[arg(long, short = 'j', default_value_t = 64)]
        concurrency: usize,
        /// Keep the temporary project.
        #[arg(long)]
        keep: bool,
        /// Run this program for every task with the process executor instead of noop
        /// (e.g. `true`).
        #[arg(long)]
        command: Option<String>,
    },
    /// Start worker processes on a PostgreSQL database (a fresh schema, dropped afterwards)
    /// and time them through noop tasks: throughput and, for chains, dependency → dependent
    /// latency across processes.
    Workers(BenchWorkersArgs),
    /// Kill `downbeat run` with SIGKILL again and again on a plan of shell tasks that write a
    /// journal, then let it finish: tasks lost, work re-run, dependencies overtaken.
    Chaos(BenchChaosArgs),
    /// Worktree isolation on a generated repository: per-task overhead (worktree, commit,
    /// merge) and a run of tasks editing disjoint files, against a run without worktrees.
    Worktrees {
        /// Files in the repository.
        #[arg(long, default_value_t = 5_000)]
        files: u32,
        /// Tasks of the engine run.
        #[arg(long, default_value_t = 200)]
        tasks: u32,
        /// Tasks timed one after the other for the overhead figures.
        #[arg(long, default_value_t = 50)]
        samples: u32,
        /// Tasks at once.
        #[arg(long, short = 'j', default_value_t = 8)]
        concurrency: usize,
        /// Keep the temporary directory.
        #[arg(long)]
        keep: bool,
    },
    /// Leave tasks running under a dead runner's lease in a large project, then time a new
    /// runner from opening the database to its first started attempt.
    Recover {
        /// Tasks in the project.
        #[arg(long, default_value_t = 1_000_000)]
        tasks: u32,
        /// Reuse (or create) this database instead of a temporary one.
        #[arg(long, value_name = "PATH")]
        database: Option<PathBuf>,
        /// Tasks at once.
        #[arg(long, short = 'j', default_value_t = 64)]
        concurrency: usize,
    },
}

#[derive(Debug, Args)]
pub struct BenchWorkersArgs {
    /// Worker processes to start.
    #[arg(long, default_value_t = 4)]
    pub workers: usize,
    /// Tasks to run.
    #[arg(long, default_value_t = 20_000)]
    pub tasks: u32,
    /// How the tasks depend on one another.
    #[arg(long, value_enum, default_value = "independent")]
    pub shape: crate::bench::Shape,
    /// Slots per worker.
    #[arg(long, default_value_t = 64)]
    pub slots: usize,
    /// PostgreSQL URL without `schema=` (default: DOWNBEAT_DATABASE_URL).
    #[arg(long, value_name = "URL")]
    pub database: Option<String>,
    /// Keep the schema and the project directory.
    #[arg(long)]
    pub keep: bool,
}

/// Options of `downbeat bench chaos`.
#[derive(Debug, Args)]
pub struct BenchChaosArgs {
    /// Tasks in the plan.
    #[arg(long, default_value_t = 1000)]
    pub tasks: u32,
    /// Times the runner is killed before the last run is let finish.
    #[arg(long, default_value_t = 20)]
    pub kills: u32,
    /// Milliseconds from each runner's start to its kill (default: random, 100 to 600).
    #[arg(long, value_name = "MS")]
    pub every: Option<u64>,
    /// Tasks at once.
    #[arg(long, short = 'j', default_value_t = 8)]
    pub concurrency: usize,
    /// How the tasks depend on one another.
    #[arg(long, value_enum, default_value = "layered")]
    pub shape: crate::bench::Shape,
    /// Seed of the kill delays and task durations (default: from the clock; printed).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Seconds the last run may take before it counts as hung and is killed.
    #[arg(long, value_name = "SECS", default_value_t = 600)]
    pub timeout: u64,
    /// Keep the temporary project (journal, runner logs, database).
    #[arg(long)]
    pub keep: bool,
}

/// An MCP client whose configuration `downbeat mcp install` knows.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum Client {
    /// Claude Code: `.mcp.json` (project); prints a `claude mcp add` line for user scope.
    Claude,
    /// Cursor: `.cursor/mcp.json` (project) or `~/.cursor/mcp.json` (user).
    Cursor,
    /// Codex: `.codex/config.toml` (project) or `~/.codex/config.toml` (user).
    Codex,
    /// VS Code: `.vscode/mcp.json` (project) or the user profile's `mcp.json` (user).
    Vscode,
    /// Windsurf: `~/.codeium/windsurf/mcp_config.json` (user scope only).
    Windsurf,
    /// Claude Desktop: `claude_desktop_config.json` in its settings directory (user scope
    /// only).
    ClaudeDesktop,
    /// Gemini CLI: `.gemini/settings.json` (project) or `~/.gemini/settings.json` (user).
    Gemini,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum Scope {
    /// A file in the project, shared with everyone who opens it.
    Project,
    /// The client's configuration for the current user, pointed at this project.
    User,
}

#[derive(Debug, Args)]
pub struct InstallArgs {
    /// The AI client whose configuration gets the server entry.
    #[arg(long, value_enum)]
    pub client: Client,
    /// The project's shared file, or the client's file for the current user.
    #[arg(long, value_enum, default_value = "project")]
    pub scope: Scope,
    /// Print the configuration (for Claude Code: the `claude mcp add` line) instead of
    /// writing it.
    #[arg(long)]
    pub print: bool,
    /// The server's name in the client's configuration.
    #[arg(long, default_value = "downbeat")]
    pub name: String,
    /// The program the client starts (default: the absolute path of this downbeat).
    #[arg(long, value_name = "PROGRAM")]
    pub command: Option<String>,
    /// An environment variable for the server; repeatable.
    #[arg(long = "env", value_name = "KEY=VALUE")]
    pub env: Vec<String>,
    /// Repoint a user-wide entry of the same name that serves another project at this one.
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Where to write, relative to the project root.
    #[arg(long, default_value = ".claude/agents")]
    pub dir: PathBuf,
    /// Overwrite files that downbeat did not write.
    #[arg(long)]
    pub force: bool,
    /// Only these roles (comma-separated; default: every role).
    #[arg(long, value_delimiter = ',')]
    pub roles: Vec<String>,
    /// The model the subagents use (e.g. `sonnet`, `opus`, `inherit`); default: the model a
    /// regenerated file already names, else Claude Code's choice; `none` removes it.
    #[arg(long)]
    pub model: Option<String>,
    /// The MCP server's name, as given to `downbeat mcp install --name`.
    #[arg(long, default_value = "downbeat")]
    pub server: String,
}
