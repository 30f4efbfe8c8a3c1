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
    !std::path::Path::new(&format!("/proc/{pid}")).exists()
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
