//! Where each client keeps its MCP configuration: a file in the project, and one for the user
//! that depends on the platform and on a few environment variables.
//!
//! The paths are decided by pure functions of the client, the platform and [`Dirs`] (the
//! directories the environment names), so they are tested for every platform on any one.

use std::path::{Path, PathBuf};

use crate::cli::Client;

/// The platforms whose user directories differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Os {
    Linux,
    Mac,
    Windows,
}

impl Os {
    /// The platform this program runs on (other Unix systems are treated as Linux).
    pub fn current() -> Self {
        if cfg!(target_os = "macos") {
            Self::Mac
        } else if cfg!(windows) {
            Self::Windows
        } else {
            Self::Linux
        }
    }
}

/// The directories the environment names; empty or relative values count as unset.
#[derive(Debug, Clone, Default)]
pub struct Dirs {
    /// `HOME`, else `USERPROFILE`.
    pub home: Option<PathBuf>,
    /// `XDG_CONFIG_HOME` (Linux).
    pub xdg_config: Option<PathBuf>,
    /// `APPDATA` (Windows).
    pub appdata: Option<PathBuf>,
    /// `CODEX_HOME` (Codex's own directory).
    pub codex_home: Option<PathBuf>,
    /// `CLAUDE_CONFIG_DIR` (Claude Code's own directory).
    pub claude_config: Option<PathBuf>,
}

impl Dirs {
    pub fn from_env() -> Self {
        let var = |name: &str| {
            std::env::var_os(name)
                .map(PathBuf::from)
                .filter(|p| p.is_absolute())
        };
        Self {
            home: var("HOME").or_else(|| var("USERPROFILE")),
            xdg_config: var("XDG_CONFIG_HOME"),
            appdata: var("APPDATA"),
            codex_home: var("CODEX_HOME"),
            claude_config: var("CLAUDE_CONFIG_DIR"),
        }
    }
}

/// The environment variable that would have told where a user's file is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Missing(pub &'static str);

/// The client's file in a project, relative to its root; `None` for clients that read only a
/// user-wide file (Windsurf, Claude Desktop).
pub fn project_file(c: Client) -> Option<PathBuf> {
    let p = match c {
        Client::Claude => ".mcp.json",
        Client::Cursor => ".cursor/mcp.json",
        Client::Codex => ".codex/config.toml",
        Client::Vscode => ".vscode/mcp.json",
        Client::Gemini => ".gemini/settings.json",
        Client::Windsurf | Client::ClaudeDesktop => return None,
    };
    Some(p.split('/').collect())
}

/// The client's user-wide file on `os`; `Ok(None)` for Claude Code, whose own command edits
/// its user configuration.
pub fn user_file(c: Client, os: Os, d: &Dirs) -> Result<Option<PathBuf>, Missing> {
    let home = || d.home.clone().ok_or(Missing("HOME"));
    let p = match c {
        Client::Claude => return Ok(None),
        Client::Cursor => join(home()?, &[".cursor", "mcp.json"]),
        Client::Codex => match &d.codex_home {
            Some(h) => h.join("config.toml"),
            None => join(home()?, &[".codex", "config.toml"]),
        },
        Client::Windsurf => join(home()?, &[".codeium", "windsurf", "mcp_config.json"]),
        Client::Gemini => join(home()?, &[".gemini", "settings.json"]),
        Client::Vscode => join(app_config(os, d)?, &["Code", "User", "mcp.json"]),
        Client::ClaudeDesktop => join(
            app_config(os, d)?,
            &["Claude", "claude_desktop_config.json"],
        ),
    };
    Ok(Some(p))
}

/// The file where Claude Code keeps its user-wide servers (under `mcpServers`), which
/// downbeat reads but never writes: `~/.claude.json`, or `$CLAUDE_CONFIG_DIR/.claude.json`.
pub fn claude_code_user_file(d: &Dirs) -> Result<PathBuf, Missing> {
    match (&d.claude_config, &d.home) {
        (Some(c), _) => Ok(c.join(".claude.json")),
        (None, Some(h)) => Ok(h.join(".claude.json")),
        (None, None) => Err(Missing("HOME")),
    }
}

/// Where desktop applications keep their settings: `~/Library/Application Support` on macOS,
/// `%APPDATA%` on Windows, `$XDG_CONFIG_HOME` or `~/.config` on Linux.
fn app_config(os: Os, d: &Dirs) -> Result<PathBuf, Missing> {
    match os {
        Os::Mac => Ok(join(
            d.home.clone().ok_or(Missing("HOME"))?,
            &["Library", "Application Support"],
        )),
        Os::Windows => match (&d.appdata, &d.home) {
            (Some(a), _) => Ok(a.clone()),
            (None, Some(h)) => Ok(join(h.clone(), &["AppData", "Roaming"])),
            (None, None) => Err(Missing("APPDATA")),
        },
        Os::Linux => match (&d.xdg_config, &d.home) {
            (Some(x), _) => Ok(x.clone()),
            (None, Some(h)) => Ok(h.join(".config")),
            (None, None) => Err(Missing("HOME")),
        },
    }
}

fn join(base: PathBuf, parts: &[&str]) -> PathBuf {
    parts.iter().fold(base, |p, part| p.join(Path::new(part)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dirs(home: &str) -> Dirs {
        Dirs {
            home: Some(home.into()),
            ..Dirs::default()
        }
    }

    fn user(c: Client, os: Os, d: &Dirs) -> String {
        user_file(c, os, d)
            .unwrap()
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/")
    }

    #[test]
    fn linux_user_files() {
        let d = dirs("/home/me");
        let l = Os::Linux;
        assert_eq!(user(Client::Cursor, l, &d), "/home/me/.cursor/mcp.json");
        assert_eq!(user(Client::Codex, l, &d), "/home/me/.codex/config.toml");
        assert_eq!(
            user(Client::Vscode, l, &d),
            "/home/me/.config/Code/User/mcp.json"
        );
        assert_eq!(
            user(Client::Windsurf, l, &d),
            "/home/me/.codeium/windsurf/mcp_config.json"
        );
        assert_eq!(
            user(Client::ClaudeDesktop, l, &d),
            "/home/me/.config/Claude/claude_desktop_config.json"
        );
        assert_eq!(
            user(Client::Gemini, l, &d),
            "/home/me/.gemini/settings.json"
        );
        assert_eq!(user_file(Client::Claude, l, &d), Ok(None));
        let xdg = Dirs {
            xdg_config: Some("/cfg".into()),
            codex_home: Some("/codex".into()),
            ..d
        };
        assert_eq!(user(Client::Vscode, l, &xdg), "/cfg/Code/User/mcp.json");
        assert_eq!(
            user(Client::ClaudeDesktop, l, &xdg),
            "/cfg/Claude/claude_desktop_config.json"
        );
        assert_eq!(user(Client::Codex, l, &xdg), "/codex/config.toml");
    }

    #[test]
    fn macos_user_files() {
        let d = dirs("/Users/me");
        let m = Os::Mac;
        assert_eq!(
            user(Client::Vscode, m, &d),
            "/Users/me/Library/Application Support/Code/User/mcp.json"
        );
        assert_eq!(
            user(Client::ClaudeDesktop, m, &d),
            "/Users/me/Library/Application Support/Claude/claude_desktop_config.json"
        );
        assert_eq!(
            user(Client::Windsurf, m, &d),
            "/Users/me/.codeium/windsurf/mcp_config.json"
        );
        assert_eq!(
            user(Client::Gemini, m, &d),
            "/Users/me/.gemini/settings.json"
        );
        // XDG_CONFIG_HOME is a Linux convention; macOS applications do not read it.
        let xdg = Dirs {
            xdg_config: Some("/cfg".into()),
            ..d
        };
        assert_eq!(
            user(Client::Vscode, m, &xdg),
            "/Users/me/Library/Application Support/Code/User/mcp.json"
        );
    }

    #[test]
    fn windows_user_files() {
        let d = Dirs {
            home: Some("C:/Users/me".into()),
            appdata: Some("C:/Users/me/AppData/Roaming".into()),
            ..Dirs::default()
        };
        let w = Os::Windows;
        assert_eq!(
            user(Client::Vscode, w, &d),
            "C:/Users/me/AppData/Roaming/Code/User/mcp.json"
        );
        assert_eq!(
            user(Client::ClaudeDesktop, w, &d),
            "C:/Users/me/AppData/Roaming/Claude/claude_desktop_config.json"
        );
        assert_eq!(
            user(Client::Windsurf, w, &d),
            "C:/Users/me/.codeium/windsurf/mcp_config.json"
        );
        assert_eq!(user(Client::Cursor, w, &d), "C:/Users/me/.cursor/mcp.json");
        // Without APPDATA, the roaming directory under the profile.
        let no_appdata = Dirs { appdata: None, ..d };
        assert_eq!(
            user(Client::Vscode, w, &no_appdata),
            "C:/Users/me/AppData/Roaming/Code/User/mcp.json"
        );
    }

    #[test]
    fn missing_variables_are_named() {
        let none = Dirs::default();
        assert_eq!(
            user_file(Client::Vscode, Os::Windows, &none),
            Err(Missing("APPDATA"))
        );
        assert_eq!(
            user_file(Client::Windsurf, Os::Linux, &none),
            Err(Missing("HOME"))
        );
        let codex_only = Dirs {
            codex_home: Some("/codex".into()),
            ..none
        };
        assert!(user_file(Client::Codex, Os::Linux, &codex_only).is_ok());
    }

    #[test]
    fn claude_codes_own_file() {
        let f = |d: &Dirs| {
            claude_code_user_file(d)
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/")
        };
        assert_eq!(f(&dirs("/home/me")), "/home/me/.claude.json");
        let moved = Dirs {
            claude_config: Some("/cc".into()),
            ..dirs("/home/me")
        };
        assert_eq!(f(&moved), "/cc/.claude.json");
        assert_eq!(
            claude_code_user_file(&Dirs::default()),
            Err(Missing("HOME"))
        );
    }

    #[test]
    fn project_files() {
        let f = |c| project_file(c).map(|p| p.to_string_lossy().replace('\\', "/"));
        assert_eq!(f(Client::Vscode).as_deref(), Some(".vscode/mcp.json"));
        assert_eq!(f(Client::Gemini).as_deref(), Some(".gemini/settings.json"));
        assert_eq!(f(Client::Claude).as_deref(), Some(".mcp.json"));
        assert_eq!(f(Client::Windsurf), None);
        assert_eq!(f(Client::ClaudeDesktop), None);
    }
}
