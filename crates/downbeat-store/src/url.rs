//! Database URLs as they may be shown: [`redact_url`] hides their passwords.

/// A URL with any password (in the user info or a `password=` / `sslpassword=` parameter)
/// replaced by `***`, safe to print.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (rest, query) = match rest.split_once('?') {
        Some((r, q)) => (r, Some(q)),
        None => (rest, None),
    };
    let mut out = match rest.rsplit_once('@') {
        Some((auth, host)) => {
            let user = auth.split(':').next().unwrap_or("");
            if auth.contains(':') {
                format!("{scheme}://{user}:***@{host}")
            } else {
                format!("{scheme}://{user}@{host}")
            }
        }
        None => format!("{scheme}://{rest}"),
    };
    if let Some(q) = query {
        let pairs: Vec<String> = q
            .split('&')
            .map(|p| match p.split_once('=') {
                Some((k @ ("password" | "sslpassword"), _)) => format!("{k}=***"),
                _ => p.to_owned(),
            })
            .collect();
        out.push('?');
        out.push_str(&pairs.join("&"));
    }
    out
}

/// Refuses a URL of a database kind downbeat cannot use (`mysql://…`), before anything is
/// created: SQLite (`sqlite:PATH`, or a plain path) and PostgreSQL are supported.
pub fn check_supported(url: &str) -> crate::error::Result<()> {
    match url.split_once("://") {
        Some((scheme, _)) if !matches!(scheme, "sqlite" | "postgres" | "postgresql") => {
            Err(crate::error::Error::Open {
                location: redact_url(url),
                message: format!(
                    "`{scheme}` databases are not supported (use sqlite:PATH or postgres://USER@HOST/DB)"
                ),
            })
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_sqlite_and_postgres_urls_are_taken() {
        for ok in [
            "sqlite:a.db",
            "a.db",
            "sqlite:///x/a.db",
            "postgres://h/d",
            "postgresql://h/d",
        ] {
            assert!(super::check_supported(ok).is_ok(), "{ok}");
        }
        let e = super::check_supported("mysql://u:pw@h/d")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("`mysql` databases are not supported") && !e.contains("pw"),
            "{e}"
        );
    }

    #[test]
    fn passwords_never_show() {
        assert_eq!(
            super::redact_url("postgres://bob:s3cret@db/x"),
            "postgres://bob:***@db/x"
        );
        assert_eq!(
            super::redact_url("postgres://bob@db/x"),
            "postgres://bob@db/x"
        );
        assert_eq!(super::redact_url("sqlite:a.db"), "sqlite:a.db");
        assert_eq!(
            super::redact_url("postgres://bob:p@ss@db/x?schema=s&password=pw&sslmode=require"),
            "postgres://bob:***@db/x?schema=s&password=***&sslmode=require"
        );
        assert_eq!(
            super::redact_url("postgres://db/x?password=pw"),
            "postgres://db/x?password=***"
        );
    }
}
