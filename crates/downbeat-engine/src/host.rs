//! This machine's identity for lease holders (`runner:HOST:PID`), and whether a holder named
//! that way is a process of this machine that is gone.
//!
//! Must never: signal or stop processes (`executor::process::kill_orphans` does), or guess about
//! holders of other machines.

/// Whether a lease holder named `runner:HOST:PID` is a process of this machine that is gone.
pub fn holder_is_dead(holder: &str) -> bool {
    let mut parts = holder.rsplitn(3, ':');
    let (Some(pid), Some(host), Some(_)) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    let Ok(pid) = pid.parse::<u32>() else {
        return false;
    };
    if host != this_host() || pid == std::process::id() {
        return false;
    }
    !process_alive(pid)
}

/// Whether process `pid` runs: it exists and is not a zombie (killed, not yet reaped by its
/// parent: its `/proc` entry stays, but it holds nothing any more).
fn process_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // `PID (COMMAND) STATE …`; the command may hold spaces and parentheses.
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_none_or(|state| state != "Z" && state != "X"),
        Err(_) => false,
    }
}

/// This machine's name, for lease holders.
pub fn this_host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|_| "localhost".into())
}

/// The holder name of this process: `runner:HOST:PID`.
pub fn default_holder() -> String {
    format!("runner:{}:{}", this_host(), std::process::id())
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_zombie_is_not_alive() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        // Not reaped yet: a zombie once it has exited.
        let start = std::time::Instant::now();
        while super::process_alive(pid) {
            assert!(start.elapsed().as_secs() < 10, "never became a zombie");
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert!(
            std::path::Path::new(&format!("/proc/{pid}")).exists(),
            "still listed"
        );
        assert!(super::holder_is_dead(&format!(
            "worker:{}:{pid}",
            super::this_host()
        )));
        child.wait().unwrap();
        assert!(!super::process_alive(pid));
        assert!(super::process_alive(std::process::id()));
    }
}
