//! `downbeat serve` for the tests that use it: a server adopted by its [`Env`], and plain
//! HTTP/1.1 exchanges with it.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::Stdio;
use std::time::Duration;

use super::Env;

pub const TOKEN: &str = "0123456789abcdef0123456789abcdef";

/// A server started by `downbeat serve`, adopted by its `Env`.
pub struct Server {
    /// `127.0.0.1:PORT` (loopback, whatever address it listens on).
    pub addr: String,
    /// The printed address, with the token.
    pub url: String,
    pub pid: u32,
}

pub fn serve(env: &mut Env, addr: &str, token: Option<&str>) -> Server {
    let mut c = env.command(&["serve", "--addr", addr]);
    if let Some(t) = token {
        c.env("DOWNBEAT_WEB_TOKEN", t);
    }
    let mut child = c
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line.trim().to_owned();
    let served = url
        .strip_prefix("http://")
        .and_then(|r| r.split('/').next())
        .unwrap_or_else(|| panic!("printed {url:?}"));
    // Reached through loopback whatever address it listens on.
    let port = served.rsplit(':').next().unwrap();
    let addr = format!("127.0.0.1:{port}");
    let pid = env.adopt(child);
    Server { addr, url, pid }
}

/// One HTTP/1.1 exchange: (status, headers, body).
pub fn http(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\nConnection: close\r\n");
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        req.push_str(&format!("Host: {addr}\r\n"));
    }
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    s.write_all(req.as_bytes()).unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, head.to_owned(), body.to_owned())
}

/// A project of `n` tasks `t0`… (each running `true`), `t{i}` waiting on `t{i-7}`: seven
/// chains, so layers of seven.
pub fn project(n: usize) -> Env {
    let env = Env::builder().init().build();
    let mut plan = String::new();
    for i in 0..n {
        plan.push_str(&format!(
            "[[tasks]]\nkey = \"t{i}\"\ntitle = \"Task {i}\"\nshell = \"true\"\n"
        ));
        if i >= 7 {
            plan.push_str(&format!("depends_on = [\"t{}\"]\n", i - 7));
        }
    }
    env.write("plan.toml", &plan);
    env.ok(&["plan", "apply", "plan.toml"]);
    env
}
