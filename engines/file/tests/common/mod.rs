//! Helpers shared by the file engine's integration tests.
#![allow(dead_code)] // each test file uses a different subset

use std::{
    fs,
    path::PathBuf,
    time::{Duration, SystemTime},
};

use chrono::{DateTime, Utc};
use serde_json::Value;
use sessionkit_codec::{
    SESSION_STORE_SALT, SessionMap,
    expiry::{self, EXPIRY_KEY},
    signing::SessionCodec,
    time::from_datetime,
};
use sessionkit_engine_file::{FileConfig, FileStore};
use sessionkit_sdk::{SessionRecord, SessionWrite};
use tempfile::TempDir;

/// The secret every test store signs with.
pub(crate) const SECRET: &str = "file-engine-test-secret-key";

/// Builds what the host hands the engine: signed data, plain JSON, `expire_date`.
pub(crate) struct Writer {
    pub codec: SessionCodec,
    pub cookie_age: i64,
}

impl Writer {
    pub(crate) fn new(cookie_age: i64) -> Self {
        Self {
            codec: SessionCodec::new(SESSION_STORE_SALT, SECRET.as_bytes(), &[]),
            cookie_age,
        }
    }

    /// What the host hands `create`/`save` for `session` saved now: signed data, plain JSON
    /// and `expire_date = get_expiry_date()`.
    pub(crate) fn write(&self, key: &str, session: Value) -> SessionWrite {
        self.write_at(key, session, Utc::now())
    }

    /// The same, saved at `now`.
    pub(crate) fn write_at(&self, key: &str, session: Value, now: DateTime<Utc>) -> SessionWrite {
        let map: SessionMap = session.as_object().expect("a JSON object").clone();
        let encoded = self.codec.encode(&map, now.timestamp()).expect("encode");
        let expire = expiry::expiry_date(now, map.get(EXPIRY_KEY), self.cookie_age);
        write_of(
            key,
            &encoded.session_data,
            &encoded.session_json,
            from_datetime(expire).micros,
        )
    }

    /// The signed data string for `session`.
    pub(crate) fn encode(&self, session: Value) -> String {
        let map: SessionMap = session.as_object().expect("a JSON object").clone();
        self.codec
            .encode(&map, Utc::now().timestamp())
            .expect("encode")
            .session_data
    }

    pub(crate) fn decode(&self, record: &SessionRecord) -> SessionMap {
        self.codec
            .decode(record.session_data.as_str(), None, Utc::now().timestamp())
            .expect("stored data decodes")
    }
}

/// A store in a fresh private directory, plus what the host would write with it.
pub(crate) struct Fixture {
    pub dir: TempDir,
    pub store: FileStore,
    pub writer: Writer,
    pub cookie_age: i64,
}

impl Fixture {
    pub(crate) fn new() -> Self {
        Self::with(|config| config)
    }

    pub(crate) fn with(adjust: impl FnOnce(FileConfig) -> FileConfig) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let config = adjust(FileConfig::new(dir.path(), SECRET));
        let cookie_age = config.cookie_age();
        let store = FileStore::open(&config).expect("open store");
        Self {
            dir,
            store,
            writer: Writer::new(cookie_age),
            cookie_age,
        }
    }

    pub(crate) fn write(&self, key: &str, session: Value) -> SessionWrite {
        self.writer.write(key, session)
    }

    pub(crate) fn write_at(&self, key: &str, session: Value, now: DateTime<Utc>) -> SessionWrite {
        self.writer.write_at(key, session, now)
    }

    pub(crate) fn encode(&self, session: Value) -> String {
        self.writer.encode(session)
    }

    pub(crate) fn decode(&self, record: &SessionRecord) -> SessionMap {
        self.writer.decode(record)
    }

    pub(crate) fn path(&self, key: &str) -> PathBuf {
        self.dir.path().join(format!("sessionid{key}"))
    }

    /// Puts `contents` in the session file of `key` directly (as Django, or a crash, would).
    pub(crate) fn plant(&self, key: &str, contents: &[u8]) -> PathBuf {
        let path = self.path(key);
        fs::write(&path, contents).expect("write file");
        path
    }

    pub(crate) fn age_file(&self, path: &std::path::Path, by: Duration) {
        let file = fs::File::options()
            .write(true)
            .open(path)
            .expect("open to age");
        file.set_modified(SystemTime::now() - by)
            .expect("set mtime");
    }

    pub(crate) fn set_mtime(&self, path: &std::path::Path, to: SystemTime) {
        let file = fs::File::options()
            .write(true)
            .open(path)
            .expect("open to set mtime");
        file.set_modified(to).expect("set mtime");
    }

    /// The directory's entries, sorted.
    pub(crate) fn entries(&self) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(self.dir.path())
            .expect("list dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }
}

/// A record write with explicit parts.
pub(crate) fn write_of(key: &str, data: &str, json: &str, expire_micros: i64) -> SessionWrite {
    SessionWrite::new(
        SessionRecord::new(
            key,
            data,
            sessionkit_sdk::Timestamp::from_micros(expire_micros),
        ),
        json,
    )
}

/// A valid 32-character key, distinct per `n`.
pub(crate) fn key(n: u64) -> String {
    format!("k{n:0>31}")
}

pub(crate) fn mtime(path: &std::path::Path) -> SystemTime {
    fs::metadata(path).expect("stat").modified().expect("mtime")
}

/// A file's modification time as the engine reads it (UTC, whole microseconds).
pub(crate) fn mtime_utc(path: &std::path::Path) -> DateTime<Utc> {
    sessionkit_codec::time::to_datetime(from_datetime(DateTime::<Utc>::from(mtime(path))))
}
