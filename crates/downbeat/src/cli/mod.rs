//! Command-line syntax. Behaviour lives in `commands`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

mod tools;
pub use tools::*;

/// Durable orchestration for teams of AI agents.
///
/// Keeps a task graph for specialists (architect, implementer, tester, …) with its objectives,
/// decisions and insights in a local database, and plans it: what is ready, what runs in
/// parallel, the critical path, what blocks what.
#[derive(Debug, Parser)]
#[command(
    name = "downbeat",
    version,
    max_term_width = 100,
    propagate_version = true,
    after_help = "Examples:\n  downbeat init && downbeat plan apply examples/repo-report.toml && downbeat run\n  downbeat ready\n  downbeat status --watch\n  downbeat run -j 4 --agent claude\n  downbeat mcp install --client claude\n\n`downbeat help COMMAND` shows a command's options and examples; `downbeat man` prints the manual."
)]
pub struct Cli {
    /// Run as if started in DIR (before anything else; relative paths are taken from there).
    #[arg(short = 'C', global = true, value_name = "DIR")]
    pub chdir: Option<PathBuf>,
    /// Print machine-readable JSON on stdout.
    #[arg(long, global = true)]
    pub json: bool,
    /// Print only data (stdout) and errors: no notes, warnings or progress on stderr.
    #[arg(long, short = 'q', global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// Say more: where each attempt's output is as it starts, and the last 30 lines of a
    /// failed task's output instead of 5.
    #[arg(long, short = 'v', global = true)]
    pub verbose: bool,
    /// When to colour the text output: auto (a terminal, unless NO_COLOR is set or
    /// CLICOLOR_FORCE asks for it anyway), always, never. JSON is never coloured.
    #[arg(
        long,
        global = true,
        value_enum,
        value_name = "WHEN",
        default_value = "auto"
    )]
    pub color: crate::style::When,
    /// Database URL (`sqlite:PATH`); default: .downbeat/downbeat.db at the project root.
    #[arg(long, global = true, value_name = "URL")]
    pub db: Option<String>,
    /// Project root; default: the nearest directory upwards holding .downbeat/.
    #[arg(long, global = true, value_name = "DIR")]
    pub project: Option<PathBuf>,
    /// Name recorded in the event log for changes (default: $DOWNBEAT_ACTOR, else cli:$USER).
    #[arg(long, global = true, value_name = "NAME")]
    pub actor: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create .downbeat/ (configuration and database) in the current directory.
    #[command(after_help = "Examples:\n  downbeat init\n  downbeat -C ~/src/app init")]
    Init,
    /// Apply or check a plan file (TOML, YAML or JSON; `-` reads standard input).
    #[command(subcommand)]
    #[command(
        after_help = "Examples:\n  downbeat plan apply plan.toml\n  downbeat plan apply plan.toml --dry-run\n  downbeat plan check plan.yaml\n  downbeat plan draft \"Add OAuth2 login\" --agent claude -o auth.toml"
    )]
    Plan(PlanCmd),
    /// Add a task.
    #[command(
        after_help = "Examples:\n  downbeat add \"Design the auth schema\" --role architect --effort 3\n  downbeat add \"Run the tests\" --shell \"cargo test\" --after design\n  downbeat add \"Write the parser\" --parent epic -d \"Handle nested lists\" --tag parser"
    )]
    Add(AddArgs),
    /// Change a task's fields.
    Edit(EditArgs),
    /// Show one task with its dependencies and history.
    #[command(after_help = "Examples:\n  downbeat show g8nksh\n  downbeat show design --json")]
    Show(IdArg),
    /// List tasks.
    #[command(
        after_help = "Examples:\n  downbeat list --status ready\n  downbeat list --status stuck --status failed\n  downbeat list --role tester --limit 20\n  downbeat list -s parser --json"
    )]
    List(ListArgs),
    /// Mark a task running (refused while it waits on unfinished dependencies).
    Start(StartArgs),
    /// Mark a task completed, with a result summary and artifacts.
    #[command(
        after_help = "Examples:\n  downbeat done design --result \"Schema in docs/auth.md\" --artifact docs/auth.md"
    )]
    Done(DoneArgs),
    /// Mark a running task failed.
    Fail(ReasonArgs),
    /// Hold a task by hand (waiting on something outside the graph).
    Block(ReasonArgs),
    /// Release a held task back to pending.
    Unblock(IdArg),
    /// Skip a task (dependents proceed); on a container, every open task under it.
    Skip(NoteArgs),
    /// Cancel a task (dependents stay blocked); on a container, every open task under it.
    Cancel(NoteArgs),
    /// Put a finished, failed or cancelled task back to pending.
    Reopen(IdArg),
    /// Execute everything that is ready, wave after wave, until done.
    #[command(
        after_help = "Examples:\n  downbeat run\n  downbeat run -j 8 --executor noop\n  downbeat run --agent claude --until review\n  downbeat run --dry-run\n  downbeat run --serve   # with the live page at http://127.0.0.1:4774/"
    )]
    Run(RunArgs),
    /// Take ready tasks from the shared database and run them, until stopped (any machine).
    #[command(
        after_help = "Examples:\n  DOWNBEAT_DATABASE_URL=postgres://db.internal/team downbeat worker --roles tester --slots 4"
    )]
    Worker(WorkerArgs),
    /// Registered workers: alive or silent, what each takes and holds.
    Workers,
    /// Hold back all new work (running attempts go on) until `downbeat unpause`.
    Pause(PauseArgs),
    /// Release a hold (by number), or all of them.
    Unpause(UnpauseArgs),
    /// Holds in force: what keeps work from starting.
    Holds,
    /// Put a failed or cancelled task back to pending for another attempt.
    Retry(IdArg),
    /// The attempt ledger of a task.
    Attempts(IdArg),
    /// What an attempt's agent did, readable (`--follow` while it runs).
    Logs(LogsArgs),
    /// The change a task made in its worktree, against what it started from.
    Diff(DiffArgs),
    /// Bring the integration branch (every task's merged work) into your branch.
    Land(LandArgs),
    /// Worktrees left on disk (failed attempts, kept to look at); `--clean` removes those of
    /// tasks not running.
    Worktrees(WorktreesArgs),
    /// The agent CLIs with built-in profiles: installed?, version, what each may do; `check`
    /// them for a run; `export` Claude Code subagents for the project's roles.
    Agents(AgentsArgs),
    /// Add or remove dependencies.
    #[command(subcommand)]
    #[command(
        after_help = "Examples:\n  downbeat dep add review --on tests\n  downbeat dep rm review --on tests"
    )]
    Dep(DepCmd),
    /// Tasks that can start now, best first.
    #[command(after_help = "Examples:\n  downbeat ready\n  downbeat ready --json")]
    Ready(LimitArgs),
    /// Tasks that wait, and on what.
    #[command(after_help = "Examples:\n  downbeat blocked\n  downbeat blocked --json")]
    Blocked,
    /// Parallel batches, the critical path, and makespan estimates.
    #[command(
        after_help = "Examples:\n  downbeat waves\n  downbeat waves --workers 2,4,8\n  downbeat waves --calibrated"
    )]
    Waves(WavesArgs),
    /// Progress, counts per status and role, and the task tree.
    #[command(
        after_help = "Examples:\n  downbeat status\n  downbeat status --watch\n  downbeat status --json"
    )]
    Status(StatusArgs),
    /// The task graph as Mermaid, Graphviz dot or JSON.
    #[command(
        after_help = "Examples:\n  downbeat graph > plan.mmd\n  downbeat graph --format dot | dot -Tsvg > plan.svg\n  downbeat graph --format json"
    )]
    Graph(GraphArgs),
    /// The event log.
    #[command(
        after_help = "Examples:\n  downbeat log --limit 20\n  downbeat log --task design\n  downbeat log --follow --json"
    )]
    Log(LogArgs),
    /// Working sessions: start, resume (prints a brief), status, end.
    #[command(subcommand)]
    Session(SessionCmd),
    /// Objectives: what the work is for.
    #[command(subcommand)]
    Objective(ObjectiveCmd),
    /// Insights: what was learned.
    #[command(subcommand)]
    Insight(InsightCmd),
    /// Decisions, with their rationale: recorded in force, or proposed and later accepted or
    /// rejected.
    #[command(subcommand)]
    Decision(DecisionCmd),
    /// The session context in one compact document: objectives, completed and active tasks,
    /// key insights, decisions (pending ones too), agents spawned and metrics.
    Context,
    /// Write an integration report of a container (or the whole project): what was done,
    /// results, failures and what they hold back, flags, completeness.
    Synthesize(SynthesizeArgs),
    /// Write the handover document (.downbeat/handover.md) and print its path.
    Handover(HandoverArgs),
    /// Find stale tasks, damaged structure and old work to archive; fix with --apply.
    Maintain(MaintainArgs),
    /// Specialist roles (built-in and .downbeat/roles/*.toml).
    Roles(RolesArgs),
    /// Flag rules: what a flag raised by an agent triggers (list, add, rm).
    Rules(RulesArgs),
    /// The project's memory files (CLAUDE.md, AGENTS.md): `memory sync` writes Downbeat's
    /// section into them.
    #[command(subcommand)]
    Memory(MemoryCmd),
    /// Figures derived from the event log.
    Metrics,
    /// Learned patterns from finished work, per role and per plan: time per effort unit,
    /// first-try success, retries, flags, decomposition shape.
    Patterns(PatternsArgs),
    /// The project's work (tasks, edges, objectives, decisions, insights) as JSON Lines on
    /// stdout, ids kept, sorted so it diffs well.
    Export(WorkExportArgs),
    /// Import work: an export of Downbeat (into an empty project, ids kept), a Task Master
    /// tasks.json or a beads issues.jsonl (into any project, with a report of what could not
    /// be mapped).
    Import(WorkImportArgs),
    /// Workflow templates (built in, and .downbeat/templates/): list, show, apply with
    /// parameters.
    #[command(subcommand)]
    Template(TemplateCmd),
    /// Benchmarks: the planner, the engine, recovery, workers on PostgreSQL, worktrees.
    #[command(subcommand)]
    Bench(BenchCmd),
    /// The live page in the browser: watch and steer the team (prints its address).
    #[command(
        after_help = "Examples:\n  downbeat serve\n  downbeat serve --open\n  downbeat serve --addr 127.0.0.1:8080"
    )]
    Serve(ServeArgs),
    /// The MCP server (stdio, or Streamable HTTP with --http); `downbeat mcp install` adds it
    /// to a client's configuration.
    Mcp(McpArgs),
    /// Shell completions on stdout: `downbeat completions bash > ~/.local/share/bash-completion/completions/downbeat`.
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
    /// The manual page (roff) on stdout: `downbeat man | man -l -`.
    Man,
    /// The JSON Schema of a command's `--json` output (`error`: the error envelope); without
    /// a command, the commands that have one (docs/json.md).
    Schema {
        /// The command's words, e.g. `list` or `objective add`.
        command: Vec<String>,
    },
    /// Database operations: move a project to another database.
    #[command(subcommand)]
    Db(DbCmd),
    /// Internal: the agent guard of a runner (see `downbeat run`); not for direct use.
    #[command(name = "guard-agents", hide = true)]
    GuardAgents {
        /// The lease holder whose agents to stop when the runner dies.
        holder: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum DbCmd {
    /// Copy a whole project (tasks, edges, context, attempts, the event log) into an empty
    /// database, ids included, and check the row counts on both sides.
    Migrate(MigrateArgs),
}

#[derive(Debug, Args)]
pub struct WorkExportArgs {
    /// The file format.
    #[arg(long, value_enum, default_value = "jsonl")]
    pub format: ExportFormat,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum ExportFormat {
    /// One JSON object per line: a header, then one row each.
    Jsonl,
}

#[derive(Debug, Args)]
pub struct WorkImportArgs {
    /// The file (`-`: standard input): a Downbeat export, a Task Master tasks.json or a beads
    /// issues.jsonl.
    pub file: PathBuf,
    /// What the file is (default: detected from its content).
    #[arg(long, value_enum)]
    pub from: Option<ImportFormat>,
    /// The Task Master tag to import (default: `master`, or the file's only tag).
    #[arg(long, value_name = "TAG")]
    pub tag: Option<String>,
    /// Show what would be imported and the report; write nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// The kinds of file `import` reads.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum ImportFormat {
    /// Task Master's tasks.json (legacy or tagged).
    Taskmaster,
    /// beads' issues.jsonl.
    Beads,
    /// Downbeat's own export (`downbeat export`).
    Jsonl,
}

#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// The project's database: `sqlite:PATH` (relative to the current directory) or
    /// `postgres://USER@HOST/DB[?schema=NAME]`.
    #[arg(long, value_name = "URL")]
    pub from: String,
    /// An empty database to copy it into (created if missing: an SQLite file, a PostgreSQL
    /// schema).
    #[arg(long, value_name = "URL")]
    pub to: String,
}

/// `downbeat mcp`: without a subcommand, runs the server (same as `mcp serve`).
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct McpArgs {
    #[command(subcommand)]
    pub command: Option<McpCmd>,
    #[command(flatten)]
    pub serve: McpServeArgs,
}

#[derive(Debug, Subcommand)]
pub enum McpCmd {
    /// Run the MCP server (the default action of `downbeat mcp`).
    Serve(McpServeArgs),
    /// Add the downbeat MCP server to an AI client's configuration (Claude Code, Cursor, Codex,
    /// VS Code, Windsurf, Claude Desktop, Gemini CLI).
    Install(InstallArgs),
}

#[derive(Debug, Clone, Args)]
pub struct McpServeArgs {
    /// Serve Streamable HTTP at http://ADDR/mcp instead of stdio (a non-loopback address
    /// needs a bearer token).
    #[arg(long, value_name = "ADDR")]
    pub http: Option<String>,
    /// Tool profile (default: [mcp] profile, else `default`).
    #[arg(long, value_enum)]
    pub profile: Option<McpProfile>,
    /// Environment variable holding the bearer token HTTP clients must send.
    #[arg(long, value_name = "VAR", default_value = "DOWNBEAT_MCP_TOKEN")]
    pub token_env: String,
    /// Act for this task (an agent's own server; default `DOWNBEAT_MCP_TASK`): insights and
    /// decisions are about it, added tasks are discovered from it, claims are refused.
    #[arg(long, value_name = "TASK")]
    pub task: Option<String>,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum McpProfile {
    /// About eight operation-style tools.
    Default,
    /// The default tools and finer ones.
    Full,
}

#[derive(Debug, Subcommand)]
pub enum PlanCmd {
    /// Validate a plan and write it in one transaction; applied again after editing, only the
    /// difference is written (tasks matched by key; removed tasks are cancelled).
    Apply {
        /// The plan file, or `-` for standard input (with --format).
        file: PathBuf,
        /// The plan's format (default: from the file's extension; required for `-`).
        #[arg(long, value_enum)]
        format: Option<PlanFormatArg>,
        /// Show what applying would add, change and cancel; write nothing.
        #[arg(long)]
        dry_run: bool,
        /// Leave running or finished tasks that the plan would change as they are, and apply
        /// the rest (without it, such a plan is refused).
        #[arg(long)]
        skip_conflicts: bool,
    },
    /// Validate a plan without writing anything; outside a project, the file on its own.
    Check {
        /// The plan file, or `-` for standard input (with --format).
        file: PathBuf,
        /// The plan's format (default: from the file's extension; required for `-`).
        #[arg(long, value_enum)]
        format: Option<PlanFormatArg>,
    },
    /// Write a commented starting plan (to stdout, or to a new file with -o); with --template,
    /// a template's plan.
    New {
        /// The file to create (refused if it exists, unless --force).
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
        /// The plan's format (default: from the file's extension, else toml).
        #[arg(long, value_enum)]
        format: Option<PlanFormatArg>,
        /// Replace the file if it exists.
        #[arg(long)]
        force: bool,
        /// Start from this template (`downbeat template list`), rendered with --set.
        #[arg(long, value_name = "NAME")]
        template: Option<String>,
        /// A template parameter, `KEY=VALUE` (repeat for more).
        #[arg(long = "set", value_name = "KEY=VALUE", requires = "template")]
        set: Vec<String>,
    },
    /// Ask an agent (or an OpenAI-compatible endpoint) for a plan that reaches a goal; the plan
    /// is checked, sent back with its problems for another round if need be, and shown (waves,
    /// critical path, makespan) before it is written (-o) or applied (--apply).
    Draft(DraftArgs),
    /// Ask an agent to split one task into subtasks, placed under it (the task becomes their
    /// container); shown first, applied with --apply.
    Expand(ExpandArgs),
}

#[derive(Debug, Args)]
pub struct DraftArgs {
    /// What the plan is for.
    pub goal: String,
    /// A requirements document (Markdown or text) to plan from.
    #[arg(long, value_name = "DOC")]
    pub from: Option<PathBuf>,
    #[command(flatten)]
    pub ask: AskArgs,
}

#[derive(Debug, Args)]
pub struct ExpandArgs {
    /// The task to split (id, prefix or key).
    pub task: String,
    /// What else the agent should know about the split.
    #[arg(long, value_name = "TEXT")]
    pub guidance: Option<String>,
    #[command(flatten)]
    pub ask: AskArgs,
}

/// How `plan draft` and `plan expand` ask, and what they do with the answer.
#[derive(Debug, Args)]
pub struct AskArgs {
    /// The agent CLI to ask through its built-in profile (claude, codex, gemini, aider,
    /// opencode), or the configured executor of that name.
    #[arg(long, value_name = "NAME", conflicts_with = "executor")]
    pub agent: Option<String>,
    /// The executor to ask: a configured agent or http executor (default: the architect
    /// role's executor, else [run] executor).
    #[arg(long, value_name = "NAME")]
    pub executor: Option<String>,
    /// Write the plan to this file (`-`: standard output); its format from the extension.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Replace the -o file if it exists.
    #[arg(long)]
    pub force: bool,
    /// Apply the plan once shown (recorded under its name: edit the -o file and `plan apply`
    /// it again later).
    #[arg(long)]
    pub apply: bool,
    /// At most this many calls; each after the first sends the last answer's problems back.
    #[arg(long, default_value_t = 3, value_name = "N")]
    pub rounds: u32,
    /// Limit for one call (`90s`, `10m`; default: [run] timeout, else 15m).
    #[arg(long, value_name = "DURATION")]
    pub timeout: Option<String>,
    /// The plan's format (default: from the -o file's extension, else toml).
    #[arg(long, value_enum)]
    pub format: Option<PlanFormatArg>,
}

#[derive(Debug, Subcommand)]
pub enum TemplateCmd {
    /// The templates: built in, and the project's (.downbeat/templates/).
    List,
    /// One template: its parameters and its plan as written.
    Show {
        /// The template's name.
        name: String,
    },
    /// Render a template with its parameters and apply the plan (like `plan apply`).
    Apply {
        /// The template's name.
        name: String,
        /// A parameter, `KEY=VALUE` (repeat for more).
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
        /// Show what applying would add and the waves; write nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

/// The formats a plan file may be written in.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum PlanFormatArg {
    Toml,
    Yaml,
    Json,
}

#[derive(Debug, Args)]
pub struct PauseArgs {
    /// Why (shown to everyone the hold keeps waiting).
    #[arg(long, default_value = "paused by hand")]
    pub reason: String,
}

#[derive(Debug, Args)]
pub struct UnpauseArgs {
    /// The hold's number (`downbeat holds`); all holds when left out.
    pub hold: Option<u32>,
}

#[derive(Debug, Args)]
pub struct IdArg {
    /// Task id (any unique prefix) or key.
    pub id: String,
}

#[derive(Debug, Args)]
pub struct NoteArgs {
    /// Task id (any unique prefix) or key.
    pub id: String,
    /// A note recorded as the task's result text.
    #[arg(long)]
    pub note: Option<String>,
}

#[derive(Debug, Args)]
pub struct StartArgs {
    /// Task id (any unique prefix) or key.
    pub id: String,
    /// A note recorded with the change.
    #[arg(long)]
    pub note: Option<String>,
    /// Start even though dependencies are not finished.
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct ReasonArgs {
    /// Task id (any unique prefix) or key.
    pub id: String,
    /// Why (recorded as the task's result text).
    #[arg(long)]
    pub reason: Option<String>,
}

#[derive(Debug, Args)]
pub struct DoneArgs {
    /// Task id (any unique prefix) or key.
    pub id: String,
    /// Summary of the result.
    #[arg(long)]
    pub result: Option<String>,
    /// A file the task produced (relative to the project root); repeatable.
    #[arg(long = "artifact", value_name = "PATH")]
    pub artifacts: Vec<PathBuf>,
    /// Complete it even though dependencies are not finished.
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct AddArgs {
    /// What the task is, in a few words.
    pub title: String,
    /// The specialist who does it: a built-in role (architect, implementer, tester, …) or one
    /// of .downbeat/roles/.
    #[arg(long)]
    pub role: Option<String>,
    /// Effort estimate in abstract units (default 1).
    #[arg(long)]
    pub effort: Option<u32>,
    /// low, normal, high or critical.
    #[arg(long)]
    pub priority: Option<String>,
    /// Parent task (id or key).
    #[arg(long)]
    pub parent: Option<String>,
    /// A stable name for the task, usable instead of its id.
    #[arg(long)]
    pub key: Option<String>,
    /// What to do, in detail (it goes into the agent's prompt).
    #[arg(long, short = 'd')]
    pub description: Option<String>,
    /// Acceptance criterion; repeatable.
    #[arg(long = "accept", value_name = "TEXT")]
    pub acceptance: Vec<String>,
    /// Tag; repeatable.
    #[arg(long = "tag")]
    pub tags: Vec<String>,
    /// A path or glob the task will touch; repeatable.
    #[arg(long = "file", value_name = "PATH")]
    pub files: Vec<String>,
    /// A task this one waits for; repeatable.
    #[arg(long = "after", value_name = "ID")]
    pub after: Vec<String>,
    /// How to execute it: a named executor from the configuration, `noop`, or `process` with
    /// --command/--shell.
    #[arg(long)]
    pub executor: Option<String>,
    /// The program to run (split into arguments like a shell would, but run without one).
    #[arg(long, conflicts_with = "shell")]
    pub command: Option<String>,
    /// A command line run with `sh -c`.
    #[arg(long)]
    pub shell: Option<String>,
    /// Kill an attempt after this long (90s, 30m).
    #[arg(long)]
    pub timeout: Option<String>,
    /// Attempts in all (1 = no retry).
    #[arg(long)]
    pub max_attempts: Option<u32>,
    /// Answer it N times independently, then let a resolve task decide (docs/consensus.md).
    #[arg(long, value_name = "N", group = "consensus_any")]
    pub consensus: Option<u32>,
    /// One executor per answer (comma-separated or repeated); sets N when --consensus is left
    /// out.
    #[arg(
        long,
        value_name = "NAME",
        value_delimiter = ',',
        group = "consensus_any"
    )]
    pub consensus_executors: Vec<String>,
    /// The role of the consensus task's resolve task (default: reviewer).
    #[arg(long, value_name = "ROLE", requires = "consensus_any")]
    pub resolver: Option<String>,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Attempts at once (default: [run] concurrency, else the number of CPUs).
    #[arg(long, short = 'j')]
    pub concurrency: Option<usize>,
    /// Run only these tasks (a container stands for its subtree); repeatable.
    #[arg(long, num_args = 1..)]
    pub only: Vec<String>,
    /// Run only what this task needs, and the task itself.
    #[arg(long)]
    pub until: Option<String>,
    /// Show what would run, with which executor, and check the configuration; start nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Use this executor for every task (e.g. `noop` to try a plan out).
    #[arg(long, conflicts_with = "agent")]
    pub executor: Option<String>,
    /// Run every task with this agent CLI's built-in profile (or the executor of that name).
    #[arg(long, value_parser = ["claude", "codex", "gemini", "aider", "opencode"])]
    pub agent: Option<String>,
    /// Run the tasks in this process even when workers are alive (by default they take them).
    #[arg(long)]
    pub local: bool,
    /// Serve the live page while the run goes (at ADDR, default 127.0.0.1:4774); its address
    /// is printed on stderr.
    #[arg(long, value_name = "ADDR", num_args = 0..=1, default_missing_value = downbeat_web::DEFAULT_ADDR)]
    pub serve: Option<String>,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Show it again whenever the graph changes (on a terminal, in place), until Ctrl-C; with
    /// --json, one JSON document per change.
    #[arg(long, short = 'w')]
    pub watch: bool,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Where to listen: HOST:PORT (port 0 picks a free one). Any address but loopback needs
    /// the token on every request.
    #[arg(long, default_value = downbeat_web::DEFAULT_ADDR)]
    pub addr: String,
    /// Open the page in the default browser.
    #[arg(long)]
    pub open: bool,
    /// Another host name requests may be addressed to (a name this machine has on a
    /// network); repeatable.
    #[arg(long = "allow-host", value_name = "NAME")]
    pub allow_hosts: Vec<String>,
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// The task (id, prefix or key).
    pub id: String,
    /// Which attempt (default: the latest).
    #[arg(long)]
    pub attempt: Option<u32>,
    /// Go on as the attempt writes, until it ends.
    #[arg(long, short = 'f')]
    pub follow: bool,
    /// The output as the program wrote it, not rendered.
    #[arg(long)]
    pub raw: bool,
}

#[derive(Debug, Args)]
pub struct DiffArgs {
    /// The task (id, prefix or key).
    pub id: String,
    /// Which attempt (default: the last one that changed something).
    #[arg(long)]
    pub attempt: Option<u32>,
    /// Files changed and lines added and removed, not the patch.
    #[arg(long)]
    pub stat: bool,
}

#[derive(Debug, Args)]
pub struct LandArgs {
    /// The branch to land into (default: the checked-out branch). A branch that is not
    /// checked out can only be fast-forwarded.
    #[arg(long)]
    pub into: Option<String>,
}

#[derive(Debug, Args)]
pub struct WorktreesArgs {
    /// Remove the worktrees of tasks that are not running.
    #[arg(long)]
    pub clean: bool,
}

#[derive(Debug, Args)]
pub struct AgentsArgs {
    #[command(subcommand)]
    pub cmd: Option<AgentsCmd>,
}

#[derive(Debug, Subcommand)]
pub enum AgentsCmd {
    /// Check every executor a run of what is pending would use; exit 4 listing the problems.
    Check {
        /// Check as if every task ran with this executor (like `run --executor`).
        #[arg(long)]
        executor: Option<String>,
    },
    /// Write one Claude Code subagent file per role (.claude/agents/ROLE.md).
    Export(ExportArgs),
}

#[derive(Debug, Args)]
pub struct WorkerArgs {
    /// Take only tasks of these roles (comma-separated or repeated); default: any role.
    #[arg(long, value_name = "ROLE,...")]
    pub roles: Vec<String>,
    /// Run every task it takes with this executor (like `run --executor`).
    #[arg(long)]
    pub executor: Option<String>,
    /// Take only tasks whose executor (after --executor) is one of these.
    #[arg(long, value_name = "NAME,...")]
    pub executors: Vec<String>,
    /// Labels this worker has; a task tagged `needs:LABEL` goes only to workers with LABEL.
    #[arg(long, value_name = "LABEL,...")]
    pub labels: Vec<String>,
    /// Attempts at once (default: the number of CPUs).
    #[arg(long)]
    pub slots: Option<usize>,
    /// Unique name, also the lease holder (default: worker:HOST:PID).
    #[arg(long)]
    pub name: Option<String>,
    /// Lease length: a worker silent for this long loses its tasks to others.
    #[arg(long, default_value = "10s")]
    pub lease: String,
}

#[derive(Debug, Args)]
pub struct EditArgs {
    /// Task id (any unique prefix) or key.
    pub id: String,
    /// New title.
    #[arg(long)]
    pub title: Option<String>,
    /// New description.
    #[arg(long, short = 'd')]
    pub description: Option<String>,
    /// New role; `none` clears it.
    #[arg(long)]
    pub role: Option<String>,
    /// New effort estimate, in abstract units.
    #[arg(long)]
    pub effort: Option<u32>,
    /// New priority: low, normal, high or critical.
    #[arg(long)]
    pub priority: Option<String>,
    /// New parent; `none` detaches.
    #[arg(long)]
    pub parent: Option<String>,
    /// Replace acceptance criteria; repeatable.
    #[arg(long = "accept", value_name = "TEXT")]
    pub acceptance: Vec<String>,
    /// Replace tags; repeatable.
    #[arg(long = "tag")]
    pub tags: Vec<String>,
    /// Replace the file footprint; repeatable.
    #[arg(long = "file", value_name = "PATH")]
    pub files: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only these statuses, as `list` shows them: ready, waiting, stuck, running, completed,
    /// failed, blocked, cancelled, skipped (or pending: ready, waiting and stuck); repeatable.
    #[arg(long)]
    pub status: Vec<String>,
    /// Only tasks of this role.
    #[arg(long)]
    pub role: Option<String>,
    /// Only tasks with this tag.
    #[arg(long)]
    pub tag: Option<String>,
    /// Only children of this task.
    #[arg(long)]
    pub parent: Option<String>,
    /// Text to find in titles and descriptions.
    #[arg(long, short = 's')]
    pub search: Option<String>,
    /// Include archived tasks.
    #[arg(long)]
    pub all: bool,
    /// At most this many tasks.
    #[arg(long)]
    pub limit: Option<u32>,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum EdgeKindArg {
    Blocks,
    Related,
    DiscoveredFrom,
}

#[derive(Debug, Subcommand)]
pub enum DepCmd {
    /// TASK waits for (or relates to) each --on task; a cycle is refused with its path.
    Add {
        /// The task that depends (id or key).
        task: String,
        /// The tasks it depends on (ids or keys); several may follow.
        #[arg(long, required = true, num_args = 1..)]
        on: Vec<String>,
        /// blocks (orders work), related or discovered-from (informational).
        #[arg(long, value_enum, default_value = "blocks")]
        kind: EdgeKindArg,
    },
    /// Remove dependencies of TASK on each --on task.
    Rm {
        /// The task that depends (id or key).
        task: String,
        /// The tasks it depends on (ids or keys); several may follow.
        #[arg(long, required = true, num_args = 1..)]
        on: Vec<String>,
        /// blocks (orders work), related or discovered-from (informational).
        #[arg(long, value_enum, default_value = "blocks")]
        kind: EdgeKindArg,
    },
}

#[derive(Debug, Args)]
pub struct LimitArgs {
    /// At most this many tasks.
    #[arg(long)]
    pub limit: Option<usize>,
}

#[derive(Debug, Args)]
pub struct WavesArgs {
    /// Worker counts for the makespan estimate (default: from config).
    #[arg(long, value_delimiter = ',')]
    pub workers: Vec<u32>,
    /// Convert effort into expected time per role from finished work (`downbeat patterns`):
    /// roles with enough history use their median, the others their effort.
    #[arg(long)]
    pub calibrated: bool,
}

#[derive(Debug, Args)]
pub struct PatternsArgs {
    /// Only this role's pattern (the overall and per-plan ones stay).
    #[arg(long)]
    pub role: Option<String>,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum GraphFormat {
    Mermaid,
    Dot,
    Json,
}

#[derive(Debug, Args)]
pub struct GraphArgs {
    /// mermaid (Markdown, GitHub), dot (Graphviz) or json.
    #[arg(long, value_enum, default_value = "mermaid")]
    pub format: GraphFormat,
}

#[derive(Debug, Args)]
pub struct LogArgs {
    /// Only events newer than this: a duration (30m, 1h, 2d) or an RFC 3339 time.
    #[arg(long)]
    pub since: Option<String>,
    /// Only events about this task.
    #[arg(long)]
    pub task: Option<String>,
    /// At most this many (the most recent).
    #[arg(long)]
    pub limit: Option<u32>,
    /// Go on printing changes as they happen (one JSON object per line with --json), until
    /// Ctrl-C.
    #[arg(long, short = 'f')]
    pub follow: bool,
}

#[derive(Debug, Subcommand)]
pub enum SessionCmd {
    /// Start a new session (ends any open one).
    Start {
        /// What this session is about.
        label: Option<String>,
    },
    /// Print the brief to pick the work up again.
    Resume,
    /// The current session and the project's figures.
    Status,
    /// End the open session.
    End,
}

#[derive(Debug, Subcommand)]
pub enum ObjectiveCmd {
    /// Add an objective: what the work is for.
    Add {
        /// What should be true when it is achieved.
        title: String,
        /// A task that achieves it; repeatable.
        #[arg(long = "task")]
        tasks: Vec<String>,
    },
    /// Objectives with their progress.
    List,
    /// Link tasks to an objective; it is achieved once they are all completed.
    Link {
        /// Objective id (like o3).
        id: String,
        /// Tasks (ids, prefixes or keys).
        #[arg(required = true)]
        tasks: Vec<String>,
    },
    /// Mark achieved.
    Done {
        /// Objective id (like o3).
        id: String,
    },
    /// Mark dropped.
    Drop {
        /// Objective id (like o3).
        id: String,
    },
    /// Mark active again.
    Reopen {
        /// Objective id (like o3).
        id: String,
    },
}

#[derive(Debug, Args)]
pub struct RulesArgs {
    #[command(subcommand)]
    pub action: Option<RulesCmd>,
}

#[derive(Debug, Subcommand)]
pub enum RulesCmd {
    /// The rules, numbered in file order (the default).
    List,
    /// Add a rule at the end of [[rules]] in .downbeat/config.toml (checked first; the rest of
    /// the file is left as it is).
    Add(RuleAddArgs),
    /// Remove a rule by its number, or every rule of a flag.
    Rm {
        /// A number from `downbeat rules`, or a flag's name.
        which: String,
    },
}

#[derive(Debug, Args)]
pub struct RuleAddArgs {
    /// The flag, e.g. SECURITY_BREACH.
    pub flag: String,
    /// add-task, raise-priority, pause or stop.
    pub action: String,
    /// add-task: the follow-up's role.
    #[arg(long)]
    pub role: Option<String>,
    /// add-task: the follow-up's title, a template ({{ task.title }}, {{ task.id }}, {{ flag }}).
    #[arg(long)]
    pub title: Option<String>,
    /// add-task: nothing else starts until the follow-up is done.
    #[arg(long)]
    pub pause: bool,
    /// raise-priority: the dependents' new priority (default high).
    #[arg(long)]
    pub priority: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum MemoryCmd {
    /// Write Downbeat's section (objectives and progress, decisions in force, key insights,
    /// conventions) between its markers in the memory files; the rest of each file stays.
    Sync(MemorySyncArgs),
}

#[derive(Debug, Args)]
pub struct MemorySyncArgs {
    /// Which file: a name from `[memory] files` (CLAUDE.md, AGENTS.md), or `both` (all).
    #[arg(long, default_value = "both")]
    pub file: String,
    /// Say what would change without writing.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Subcommand)]
pub enum InsightCmd {
    /// Record what was learned; it reaches the prompts of later agents.
    Add {
        /// What was learned.
        text: String,
        /// The task it is about (id or key); without it, it is about the project.
        #[arg(long)]
        task: Option<String>,
    },
    /// Insights, newest first.
    List,
}

#[derive(Debug, Subcommand)]
pub enum DecisionCmd {
    /// Record a decision in force.
    Add {
        /// What was decided.
        text: String,
        /// The rationale.
        #[arg(long)]
        why: String,
        /// The decision this one replaces.
        #[arg(long)]
        supersedes: Option<String>,
        /// The task it is about (id or key).
        #[arg(long)]
        task: Option<String>,
    },
    /// Propose a decision: pending, not in force until `decision accept`.
    Propose {
        /// What is proposed.
        text: String,
        /// The rationale.
        #[arg(long)]
        why: String,
        /// The task it is about (id or key).
        #[arg(long)]
        task: Option<String>,
    },
    /// Accept a proposed decision: it is in force from now on.
    Accept {
        /// The decision (d3).
        id: String,
        /// Why it was accepted.
        #[arg(long, default_value = "")]
        why: String,
    },
    /// Reject a proposed decision.
    Reject {
        /// The decision (d3).
        id: String,
        /// Why it was rejected.
        #[arg(long, default_value = "")]
        why: String,
    },
    /// Every decision with its status; only the pending ones with --pending.
    List {
        /// Only proposed decisions waiting to be accepted or rejected.
        #[arg(long)]
        pending: bool,
    },
}

#[derive(Debug, Args)]
pub struct SynthesizeArgs {
    /// The container (default: the whole project).
    pub id: Option<String>,
    /// Write here instead of .downbeat/reports/ (`-` for stdout).
    #[arg(long, short = 'o')]
    pub output: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct HandoverArgs {
    /// Write here instead of .downbeat/handover.md (`-` for stdout).
    #[arg(long, short = 'o')]
    pub output: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct MaintainArgs {
    /// Act on the findings (default: report only).
    #[arg(long)]
    pub apply: bool,
    /// Override the staleness threshold (e.g. 24h).
    #[arg(long)]
    pub stale_after: Option<String>,
    /// Override the archive retention (e.g. 30d; 0s disables archiving).
    #[arg(long)]
    pub archive_after: Option<String>,
}

#[derive(Debug, Args)]
pub struct RolesArgs {
    /// Show one role with its prompt template.
    pub name: Option<String>,
}
