//! `downbeat db`: operations on whole databases. They name their databases explicitly, so
//! they run anywhere, inside a project or not (`--db` and `DOWNBEAT_DATABASE_URL` play no
//! part).

use downbeat_store::{Error as StoreError, redact_url, transfer};
use serde_json::{Map, Value, json};

use crate::cli::{DbCmd, MigrateArgs};
use crate::error::{Error, Kind};
use crate::output::{json as print_json, note, out, table};

pub async fn command(c: DbCmd, j: bool) -> Result<(), Error> {
    match c {
        DbCmd::Migrate(a) => migrate(a, j).await,
    }
}

/// A URL the store can open: `sqlite:PATH`, `postgres://…`, or a bare path ending in `.db`
/// (anything else would be taken for a file name).
fn check_url(flag: &str, url: &str) -> Result<(), Error> {
    let sqlite = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"));
    let ok = match sqlite {
        Some(path) => !path.is_empty(),
        None => {
            url.starts_with("postgres://")
                || url.starts_with("postgresql://")
                || (!url.contains("://") && url.ends_with(".db"))
        }
    };
    if ok {
        return Ok(());
    }
    Err(Error::new(
        Kind::Storage,
        format!("unsupported database URL `{}` for {flag}", redact_url(url)),
    )
    .with_hint(
        "use sqlite:PATH (relative to the current directory) or postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE[?schema=NAME]",
    ))
}

async fn migrate(a: MigrateArgs, j: bool) -> Result<(), Error> {
    check_url("--from", &a.from)?;
    check_url("--to", &a.to)?;
    let (from, to) = (redact_url(&a.from), redact_url(&a.to));
    if a.from == a.to {
        return Err(Error::invalid(format!(
            "--from and --to name the same database ({from})"
        )));
    }
    let done = transfer::migrate(&a.from, &a.to).await.map_err(|e| {
        let missing = matches!(&e, StoreError::Open { message, .. } if message.starts_with("no database there"));
        let err = Error::from(e);
        if missing {
            // Only the source is opened without creating it.
            err.with_kind(Kind::NotFound).with_hint("--from names the project's existing database")
        } else {
            err
        }
    })?;
    if j {
        let tables: Map<String, Value> = done
            .tables
            .iter()
            .map(|(t, n)| ((*t).to_owned(), json!(n)))
            .collect();
        print_json(&json!({"from": from, "to": to, "tables": tables, "millis": done.millis}));
        return Ok(());
    }
    let rows: Vec<Vec<String>> = done
        .tables
        .iter()
        .map(|(t, n)| vec![(*t).to_owned(), n.to_string()])
        .collect();
    out(&table(&["table", "rows"], &rows));
    note(&format!(
        "copied {from} to {to} in {:.2} s; every table holds as many rows on both sides",
        done.millis as f64 / 1000.0
    ));
    note(
        "the source is unchanged; point downbeat at the copy with --db URL or DOWNBEAT_DATABASE_URL",
    );
    Ok(())
}
