//! The `downbeat` command-line interface, as a library so other binaries can embed it.
//!
//! This crate is the only one that reads the environment and the terminal; it parses the
//! command line, calls the application layer (`downbeat-app`) and renders its answers. stdout carries data (text tables or `--json`); stderr carries notes and hints.

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;

mod bench;
mod bench_chaos;
mod bench_workers;
mod bench_worktrees;
pub mod cli;
pub mod clients;
mod commands;
mod db_cmd;
pub mod error;
mod guard;
mod output;
mod progress;
pub mod run_cmd;
mod schedule;
pub mod schemas;
mod signals;
pub mod style;
mod web_cmd;
pub mod worker_cmd;

use error::{Error, code, exit_code};

/// Parses the command line, runs the command, and maps the outcome to an exit code.
pub fn run() -> ExitCode {
    let cli = match cli::Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(match e.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => {
                    code::OK
                }
                _ => code::USAGE,
            });
        }
    };
    output::set_quiet(cli.quiet);
    output::set_verbose(cli.verbose);
    style::init(cli.color);
    if let Some(dir) = &cli.chdir
        && let Err(e) = std::env::set_current_dir(dir)
    {
        return report(
            Error::not_found(format!("cannot change to {}: {e}", dir.display()))
                .with_hint("-C takes a directory that exists"),
        );
    }
    if let cli::Command::GuardAgents { holder } = &cli.command {
        return guard::serve(holder);
    }
    match &cli.command {
        cli::Command::Completions { shell } => {
            let mut cmd = <cli::Cli as clap::CommandFactory>::command();
            let mut out = Vec::new();
            clap_complete::generate(*shell, &mut cmd, "downbeat", &mut out);
            output::out(&String::from_utf8_lossy(&out));
            return ExitCode::SUCCESS;
        }
        cli::Command::Man => {
            let cmd = <cli::Cli as clap::CommandFactory>::command();
            let mut out = Vec::new();
            if let Err(e) = clap_mangen::Man::new(cmd).render(&mut out) {
                return report(Error::internal(format!("cannot render the manual: {e}")));
            }
            output::out(&String::from_utf8_lossy(&out));
            return ExitCode::SUCCESS;
        }
        cli::Command::Schema { command } => {
            return match schemas::command(command, cli.json) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => fail(e, cli.json),
            };
        }
        _ => {}
    }
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            return report(Error::internal(format!("cannot start the runtime: {e}")));
        }
    };
    let json = cli.json;
    match rt.block_on(commands::dispatch(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(e, json),
    }
}

/// A failed command's exit: under --json the error is data too, one envelope on stdout and
/// nothing on stderr (unless nobody reads stdout any more); otherwise the message on stderr.
fn fail(e: Error, json: bool) -> ExitCode {
    if json && !output::stdout_closed() {
        output::outln(&error::envelope(&e).to_string());
        ExitCode::from(exit_code(e.kind))
    } else {
        report(e)
    }
}

fn report(e: Error) -> ExitCode {
    let mut err = std::io::stderr().lock();
    use style::{On, Tone, paint};
    let _ = writeln!(err, "{} {}", paint("error:", Tone::Bad, On::Err), e.message);
    if let Some(h) = &e.hint {
        let _ = writeln!(err, "{} {h}", paint("hint:", Tone::Hint, On::Err));
    }
    ExitCode::from(exit_code(e.kind))
}
