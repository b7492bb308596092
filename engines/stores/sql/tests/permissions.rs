//! Session keys are bearer credentials: a SQLite session database the store creates, and its
//! `-wal` and `-shm` files, are readable by this user only.

use std::os::unix::fs::PermissionsExt;

use sessionkit_sdk::{SessionRecord, SessionStore, SessionWrite, Timestamp};
use sessionkit_sql::{DatabaseUrl, SqlStore, SqlStoreOptions};

fn mode(path: &std::path::Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

#[test]
fn a_new_sqlite_database_and_its_wal_and_shm_files_are_private() {
    let dir = tempfile::tempdir().unwrap();
    // Without the store creating it first, SQLite makes it 0644 under the usual umask 022.
    let file = dir.path().join("sessions.sqlite3");
    let url = DatabaseUrl::parse(&format!("sqlite://{}", file.display())).unwrap();
    let store = SqlStore::open(&url, SqlStoreOptions::new("django_session")).unwrap();
    let write = SessionWrite::new(
        SessionRecord::new(
            "permissionstest00000000000000001",
            "data",
            Timestamp::from_micros(Timestamp::now().micros + 3_600_000_000),
        ),
        "{}",
    );
    store.create(write).unwrap();
    assert_eq!(mode(&file), 0o600, "the database file");
    for suffix in ["-wal", "-shm"] {
        let side = dir.path().join(format!("sessions.sqlite3{suffix}"));
        assert_eq!(mode(&side), 0o600, "the {suffix} file");
    }
}
