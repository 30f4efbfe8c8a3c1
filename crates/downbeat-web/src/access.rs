//! Who may ask what: the Host check (against DNS rebinding), the token and the session cookie
//! it is traded for, and same-origin steering.
//!
//! - Every request must name this machine (or an address it serves, or a host given with
//!   `--allow-host`) in its `Host` header: a page of another site whose name was made to
//!   resolve to 127.0.0.1 names that site, and is refused.
//! - On loopback, reading is open to anyone who passes that check; beyond loopback every request
//!   needs the token.
//! - Steering (every method but GET and HEAD) needs the token, as `Authorization: Bearer` or as
//!   the session cookie the page gets when it is opened with `?token=`; and a browser request
//!   from another origin (its `Origin` or `Sec-Fetch-Site`) is refused even with the cookie.

use std::net::SocketAddr;

use axum::http::{HeaderMap, header};

/// The token, the address served, and the host names requests may use.
pub struct Access {
    token: String,
    served: SocketAddr,
    allow_hosts: Vec<String>,
}

impl Access {
    pub fn new(token: String, served: SocketAddr, allow_hosts: Vec<String>) -> Self {
        Self {
            token,
            served,
            allow_hosts: allow_hosts
                .into_iter()
                .map(|h| h.to_ascii_lowercase())
                .collect(),
        }
    }

    pub fn token(&self) -> &str {
        &self.token
    }

    /// The session cookie's name: one per port, as browsers share cookies between ports.
    pub fn cookie_name(&self) -> String {
        format!("downbeat_{}", self.served.port())
    }

    /// Whether reading needs the token too (any address but loopback).
    pub fn reads_need_token(&self) -> bool {
        !self.served.ip().is_loopback()
    }

    /// Whether `Host: host` names this server.
    pub fn host_allowed(&self, host: &str) -> bool {
        let name = host_name(host).to_ascii_lowercase();
        if name == "localhost" || self.allow_hosts.contains(&name) {
            return true;
        }
        let bare = name.trim_start_matches('[').trim_end_matches(']');
        bare.parse::<std::net::IpAddr>().is_ok_and(|ip| {
            ip.is_loopback() || ip == self.served.ip() || self.served.ip().is_unspecified()
        })
    }

    pub fn bearer_ok(&self, headers: &HeaderMap) -> bool {
        headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .is_some_and(|t| same(t.trim(), &self.token))
    }

    pub fn cookie_ok(&self, headers: &HeaderMap) -> bool {
        let name = self.cookie_name();
        headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|kv| kv.trim().split_once('='))
            .any(|(k, v)| k == name && same(v, &self.token))
    }
}

/// The host part of a `Host` header (`[::1]:80` → `[::1]`, `a:1` → `a`).
fn host_name(host: &str) -> &str {
    if host.starts_with('[') {
        return host.split_inclusive(']').next().unwrap_or(host);
    }
    host.rsplit_once(':').map_or(host, |(h, _)| h)
}

/// Compares secrets in time that does not depend on where they differ.
pub fn same(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A random secret: 32 hexadecimal digits from the system's random source.
pub fn random_token() -> String {
    use std::io::Read as _;
    let mut bytes = [0u8; 16];
    let read = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut bytes));
    if read.is_err() {
        // No random device: mix the clock, the process and an address into the bytes.
        let seed = format!(
            "{:?}{}{:p}",
            std::time::SystemTime::now(),
            std::process::id(),
            &bytes
        );
        for (i, b) in seed.bytes().enumerate() {
            bytes[i % 16] = bytes[i % 16].rotate_left(3) ^ b;
        }
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether a browser page at `origin` is this server's own page, addressed as `host`.
pub fn origin_allowed(origin: &str, host: &str) -> bool {
    origin
        .strip_prefix("http://")
        .is_some_and(|rest| rest.eq_ignore_ascii_case(host))
}

/// A steering request comes from this server's own page: a browser says where it comes from
/// (`Origin`, `Sec-Fetch-Site`), and it must be here. A request with the bearer token and no
/// browser headers is a program's.
pub fn same_origin(headers: &HeaderMap, host: &str, bearer: bool) -> bool {
    let origin = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok());
    let site = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok());
    if let Some(o) = origin
        && !origin_allowed(o, host)
    {
        return false;
    }
    if let Some(s) = site
        && s != "same-origin"
        && s != "none"
    {
        return false;
    }
    // With the cookie only, the browser must have said it is this page.
    bearer || origin.is_some() || site == Some("same-origin")
}

pub fn query_token(q: Option<&str>) -> Option<String> {
    q?.split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == "token")
        .map(|(_, v)| v.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn access(addr: &str) -> Access {
        Access::new(
            "t".repeat(32),
            addr.parse().unwrap(),
            vec!["box.lan".into()],
        )
    }

    #[test]
    fn hosts_are_this_machine_only() {
        let a = access("127.0.0.1:4774");
        for ok in [
            "127.0.0.1:4774",
            "localhost:4774",
            "LOCALHOST",
            "[::1]:4774",
            "box.lan:1",
        ] {
            assert!(a.host_allowed(ok), "{ok}");
        }
        for bad in [
            "evil.example:4774",
            "",
            "127.0.0.1.evil.example",
            "10.0.0.5:4774",
        ] {
            assert!(!a.host_allowed(bad), "{bad}");
        }
        let lan = access("10.0.0.5:80");
        assert!(lan.host_allowed("10.0.0.5"));
        assert!(lan.reads_need_token());
        assert!(!a.reads_need_token());
    }

    #[test]
    fn origins_must_be_the_page_itself() {
        assert!(origin_allowed("http://127.0.0.1:4774", "127.0.0.1:4774"));
        assert!(!origin_allowed("http://evil.example", "127.0.0.1:4774"));
        assert!(!origin_allowed("null", "127.0.0.1:4774"));
        assert!(!origin_allowed("http://127.0.0.1:9999", "127.0.0.1:4774"));
    }

    #[test]
    fn secrets_compare_whole() {
        assert!(same("abc", "abc"));
        assert!(!same("abc", "abd"));
        assert!(!same("abc", "abcd"));
        let t = random_token();
        assert_eq!(t.len(), 32);
        assert_ne!(t, random_token());
    }

    #[test]
    fn cookies_and_bearers() {
        let a = access("127.0.0.1:4774");
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            format!("x=1; downbeat_4774={}", "t".repeat(32))
                .parse()
                .unwrap(),
        );
        assert!(a.cookie_ok(&h));
        h.insert(header::COOKIE, "downbeat_4775=tttt".parse().unwrap());
        assert!(!a.cookie_ok(&h));
        h.insert(
            header::AUTHORIZATION,
            format!("Bearer {}", "t".repeat(32)).parse().unwrap(),
        );
        assert!(a.bearer_ok(&h));
        assert!(same_origin(&h, "127.0.0.1:4774", true));
        h.insert(header::ORIGIN, "http://evil.example".parse().unwrap());
        assert!(!same_origin(&h, "127.0.0.1:4774", true));
        let mut c = HeaderMap::new();
        assert!(!same_origin(&c, "127.0.0.1:4774", false));
        c.insert("sec-fetch-site", "same-origin".parse().unwrap());
        assert!(same_origin(&c, "127.0.0.1:4774", false));
        c.insert("sec-fetch-site", "cross-site".parse().unwrap());
        assert!(!same_origin(&c, "127.0.0.1:4774", false));
    }
}
