//! The storage contract, run against the SQLite backend.

use downbeat_store::contract::Fixture;
use downbeat_store::sqlite::SqliteStore;

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("downbeat.db");
    let store = SqliteStore::open(&path, true).await.expect("open");
    let p2 = path.clone();
    Fixture {
        store: Box::new(store),
        reopen: Box::new(move || {
            let p = p2.clone();
            Box::pin(async move {
                Box::new(SqliteStore::open(&p, false).await.expect("reopen"))
                    as Box<dyn downbeat_store::Store>
            })
        }),
        guard: Box::new(dir),
    }
}

downbeat_store::store_contract_tests!(fixture);
