//! The agent guard: a small process that stops a runner's agents the moment the runner dies.
//!
//! `downbeat run` and `downbeat worker` start one guard each (this same binary, with the hidden
//! `guard-agents` command) before any agent, and keep the write end of a pipe that is the
//! guard's stdin. The guard blocks reading it:
//! - the runner ends normally: it writes one byte first, and the guard exits without doing
//!   anything (every agent was already stopped by the engine);
//! - the runner dies in any other way (`kill -9`, a crash, a second Ctrl-C): the kernel closes
//!   the pipe, the guard reads end-of-file and stops every process on this machine that carries
//!   the runner's `DOWNBEAT_RUNNER` marker, with its process group, at once
//!   ([`downbeat_engine::executor::process::kill_orphans`]).
//!
//! The guard lives in a process group of its own, so a Ctrl-C at the terminal does not reach
//! it. If it cannot be started, or is killed together with its runner, the next runner or
//! worker on this machine finds the agents left behind by the same marker.

use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::process::{Child, ChildStdin, Command, Stdio};

use downbeat_engine::executor::env;
use downbeat_engine::executor::process::kill_orphans;

/// The hidden command name.
pub const COMMAND: &str = "guard-agents";

/// A running guard; dropping it tells the guard the runner ended normally.
pub struct Guard {
    child: Child,
    pipe: Option<ChildStdin>,
}

/// Starts the guard for `holder`. `None` (with a note on stderr) if it cannot be started:
/// the run goes on, with the next runner as the only safety net.
pub fn start(holder: &str) -> Option<Guard> {
    let started = Command::new("/proc/self/exe")
        .arg(COMMAND)
        .arg(holder)
        .env_remove(env::RUNNER)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn();
    match started {
        Ok(mut child) => {
            let pipe = child.stdin.take();
            Some(Guard { child, pipe })
        }
        Err(e) => {
            crate::output::note(&format!(
                "could not start the agent guard ({e}): if this process is killed, its agents \
                 are stopped only by the next `downbeat run` or `downbeat worker` on this machine"
            ));
            None
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(mut pipe) = self.pipe.take() {
            let _ = pipe.write_all(b"e");
        }
        // Reaped here if it is already gone; otherwise it ends on its own and is reparented.
        let _ = self.child.try_wait();
    }
}

/// The guard's side: waits for the runner's end and stops its agents unless it ended
/// normally. Returns the exit status.
pub fn serve(holder: &str) -> std::process::ExitCode {
    let mut stdin = std::io::stdin().lock();
    let mut byte = [0u8; 1];
    let clean = loop {
        match stdin.read(&mut byte) {
            Ok(0) => break false,
            Ok(_) => break true,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => break false,
        }
    };
    if !clean {
        kill_orphans(&[holder.to_owned()]);
    }
    std::process::ExitCode::SUCCESS
}
