//! The patched copy of `sqlx-core` in `vendor/` (see `vendor/README.md`) is the one the build
//! uses. Cargo applies a `[patch.crates-io]` entry only while its version matches what the
//! other sqlx crates ask for: after an upgrade it silently takes the registry's `sqlx-core`
//! instead (or records the patch as unused in `Cargo.lock`), and the 40 ms stall of Nagle's
//! algorithm on PostgreSQL connections returns. These checks fail first.

use std::path::{Path, PathBuf};

const WHAT_TO_DO: &str = "read vendor/README.md: update vendor/sqlx-core to the sqlx-core \
     version the lock asks for (re-applying its TCP_NODELAY change), or, once a sqlx release \
     sets TCP_NODELAY itself, drop vendor/sqlx-core and the [patch.crates-io] entry of the root \
     Cargo.toml";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn read(rel: &str) -> String {
    let p = root().join(rel);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("cannot read {}: {e}", p.display()))
}

fn parse(what: &str, text: &str) -> toml::Table {
    text.parse()
        .unwrap_or_else(|e| panic!("{what} is not valid TOML: {e}"))
}

/// The `[package]` version of the vendored copy.
fn vendored_version() -> String {
    let manifest = parse(
        "vendor/sqlx-core/Cargo.toml",
        &read("vendor/sqlx-core/Cargo.toml"),
    );
    let package = &manifest["package"];
    assert_eq!(
        package["name"].as_str(),
        Some("sqlx-core"),
        "vendor/sqlx-core/Cargo.toml"
    );
    package["version"]
        .as_str()
        .expect("vendor/sqlx-core/Cargo.toml has a package version")
        .to_owned()
}

fn field<'a>(p: &'a toml::Table, key: &str) -> &'a str {
    p.get(key).and_then(|v| v.as_str()).unwrap_or("")
}

fn name(p: &toml::Table) -> &str {
    field(p, "name")
}

fn version(p: &toml::Table) -> &str {
    field(p, "version")
}

/// Whether the lock text `lock` uses the vendored `sqlx-core` at `vendored`: the one
/// `sqlx-core` has no source (a path, the patch) and that version, every other `sqlx*`
/// package has that version too, and no unused patch names `sqlx-core`. Every problem
/// found, else nothing.
fn lock_problems(lock: &str, vendored: &str) -> Vec<String> {
    let lock = parse("Cargo.lock", lock);
    let mut problems = Vec::new();
    let packages: Vec<&toml::Table> = lock
        .get("package")
        .and_then(|p| p.as_array())
        .map(|a| a.iter().filter_map(|p| p.as_table()).collect())
        .unwrap_or_default();

    let cores: Vec<&toml::Table> = packages
        .iter()
        .copied()
        .filter(|p| name(p) == "sqlx-core")
        .collect();
    match cores.as_slice() {
        [core] => {
            if let Some(source) = core.get("source") {
                problems.push(format!(
                    "the lock's sqlx-core {} comes from {source}, not from vendor/sqlx-core",
                    version(core)
                ));
            }
            if version(core) != vendored {
                problems.push(format!(
                    "the lock's sqlx-core is {}, vendor/sqlx-core is {vendored}",
                    version(core)
                ));
            }
        }
        _ => problems.push(format!(
            "the lock has {} sqlx-core packages (versions {:?}), not one",
            cores.len(),
            cores.iter().map(|p| version(p)).collect::<Vec<_>>()
        )),
    }
    for p in &packages {
        if name(p).starts_with("sqlx") && name(p) != "sqlx-core" && version(p) != vendored {
            problems.push(format!(
                "the lock's {} is {}, vendor/sqlx-core is {vendored}",
                name(p),
                version(p)
            ));
        }
    }
    let unused = lock
        .get("patch")
        .and_then(|p| p.get("unused"))
        .and_then(|u| u.as_array())
        .map(Vec::as_slice)
        .unwrap_or_default();
    for u in unused {
        if u.get("name").and_then(|n| n.as_str()) == Some("sqlx-core") {
            problems.push(format!("the lock lists the sqlx-core patch as unused: {u}"));
        }
    }
    problems
}

/// The failure message for `problems`: each of them, and what to do.
fn report(problems: &[String]) -> String {
    format!(
        "the build no longer uses the patched sqlx-core of vendor/sqlx-core:\n- {}\nTo fix it, {WHAT_TO_DO}.",
        problems.join("\n- ")
    )
}

/// Panics with every problem and what to do about them.
fn check_lock(lock: &str, vendored: &str) {
    let problems = lock_problems(lock, vendored);
    assert!(problems.is_empty(), "{}", report(&problems));
}

#[test]
fn the_lock_uses_the_vendored_sqlx_core() {
    check_lock(&read("Cargo.lock"), &vendored_version());
}

/// Whether the text of `src/net/socket/mod.rs` holds the patch: TCP connections set
/// `TCP_NODELAY` right after they connect.
fn sets_nodelay(socket: &str) -> bool {
    socket
        .lines()
        .any(|l| l.trim() == "stream.set_nodelay(true)?;")
}

#[test]
fn the_vendored_sqlx_core_is_patched_and_the_patch_is_declared() {
    assert!(
        sets_nodelay(&read("vendor/sqlx-core/src/net/socket/mod.rs")),
        "vendor/sqlx-core/src/net/socket/mod.rs no longer sets TCP_NODELAY on TCP connections \
         (`stream.set_nodelay(true)?;`): the copy is not the patched one; {WHAT_TO_DO}"
    );
    let manifest = parse("Cargo.toml", &read("Cargo.toml"));
    let path = manifest
        .get("patch")
        .and_then(|p| p.get("crates-io"))
        .and_then(|p| p.get("sqlx-core"))
        .and_then(|p| p.get("path"))
        .and_then(|p| p.as_str());
    assert_eq!(
        path,
        Some("vendor/sqlx-core"),
        "the root Cargo.toml no longer patches sqlx-core with vendor/sqlx-core; {WHAT_TO_DO}"
    );
}

/// The real lock, with `edit` applied to its parsed form, as text again.
fn doctored(edit: impl FnOnce(&mut toml::Table)) -> String {
    let mut lock = parse("Cargo.lock", &read("Cargo.lock"));
    edit(&mut lock);
    toml::to_string(&lock).unwrap()
}

fn packages(lock: &mut toml::Table) -> &mut Vec<toml::Value> {
    lock.get_mut("package")
        .and_then(|p| p.as_array_mut())
        .expect("the lock has packages")
}

fn package<'a>(lock: &'a mut toml::Table, name: &str) -> &'a mut toml::Table {
    packages(lock)
        .iter_mut()
        .filter_map(|p| p.as_table_mut())
        .find(|p| p.get("name").and_then(|n| n.as_str()) == Some(name))
        .unwrap_or_else(|| panic!("the lock has {name}"))
}

fn problems_of(lock: &str) -> Vec<String> {
    lock_problems(lock, &vendored_version())
}

#[test]
fn the_lock_check_catches_an_upgrade_that_drops_the_patch() {
    let registry = "registry+https://github.com/rust-lang/crates.io-index";

    // The real lock passes: the check itself is not what fails below.
    assert_eq!(problems_of(&read("Cargo.lock")), Vec::<String>::new());

    // sqlx-core from the registry instead of the path.
    let lock = doctored(|l| {
        package(l, "sqlx-core").insert("source".into(), registry.into());
    });
    let p = problems_of(&lock);
    assert!(p.iter().any(|p| p.contains("comes from")), "{p:?}");

    // Everything sqlx upgraded, the patch left behind as unused.
    let lock = doctored(|l| {
        for p in packages(l).iter_mut().filter_map(|p| p.as_table_mut()) {
            if p["name"].as_str().unwrap().starts_with("sqlx") {
                p.insert("version".into(), "9.9.9".into());
                p.insert("source".into(), registry.into());
            }
        }
        let unused: toml::Table =
            toml::from_str("name = \"sqlx-core\"\nversion = \"0.0.1\"").unwrap();
        let mut patch = toml::Table::new();
        patch.insert("unused".into(), vec![toml::Value::from(unused)].into());
        l.insert("patch".into(), patch.into());
    });
    let p = problems_of(&lock);
    assert!(p.iter().any(|p| p.contains("comes from")), "{p:?}");
    assert!(p.iter().any(|p| p.contains("sqlx-core is 9.9.9")), "{p:?}");
    assert!(
        p.iter().any(|p| p.contains("sqlx-postgres is 9.9.9")),
        "{p:?}"
    );
    assert!(p.iter().any(|p| p.contains("as unused")), "{p:?}");

    // Two sqlx-core: the patched one and a registry one beside it.
    let lock = doctored(|l| {
        let mut other = package(l, "sqlx-core").clone();
        other.insert("version".into(), "9.9.9".into());
        other.insert("source".into(), registry.into());
        packages(l).push(other.into());
    });
    let p = problems_of(&lock);
    assert!(
        p.iter().any(|p| p.contains("2 sqlx-core packages")),
        "{p:?}"
    );

    // No sqlx-core at all.
    let lock = doctored(|l| {
        packages(l).retain(|p| p["name"].as_str() != Some("sqlx-core"));
    });
    let p = problems_of(&lock);
    assert!(
        p.iter().any(|p| p.contains("0 sqlx-core packages")),
        "{p:?}"
    );

    // Another sqlx crate a version apart from the vendored one.
    let lock = doctored(|l| {
        package(l, "sqlx-macros").insert("version".into(), "0.9.1".into());
    });
    let p = problems_of(&lock);
    assert_eq!(
        p,
        [format!(
            "the lock's sqlx-macros is 0.9.1, vendor/sqlx-core is {}",
            vendored_version()
        )]
    );

    // The failure says what to do.
    let message = report(&p);
    assert!(message.contains("sqlx-macros is 0.9.1"), "{message}");
    assert!(message.contains("vendor/README.md"), "{message}");
    assert!(message.contains("drop vendor/sqlx-core"), "{message}");

    // The socket code as published, without the patch.
    let patched = read("vendor/sqlx-core/src/net/socket/mod.rs");
    assert!(sets_nodelay(&patched));
    assert!(!sets_nodelay(
        &patched.replace("stream.set_nodelay(true)?;", "")
    ));
}
