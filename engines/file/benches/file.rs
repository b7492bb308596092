//! The file engine next to the raw file operations it is made of, in the same run.
//!
//! - load: `FileStore::load` vs `std::fs::read` of the same file;
//! - create / update: the store vs a raw "write temp + fsync + rename (+ fsync dir)"; update
//!   also as a conditional save (`save_if_unchanged`), against plain `save` in the same run;
//! - clear_expired over 10,000 files of which 5,000 are expired, vs a raw
//!   readdir + read + unlink-by-mtime floor.
//!
//! The directory is under the system temp dir (override with `SESSIONKIT_BENCH_DIR`), holding
//! 1,000 other sessions, so lookups are not measured on an empty directory. Run briefly with
//! `cargo bench -p sessionkit-engine-file --bench file -- --warm-up-time 1 --measurement-time 3`.

use std::{
    fs::{self, File},
    hint::black_box,
    io::Write,
    path::{Path, PathBuf},
    time::{Duration, SystemTime},
};

use chrono::{TimeDelta, Utc};
use criterion::{BatchSize, Criterion, SamplingMode, criterion_group, criterion_main};
use serde_json::json;
use sessionkit_codec::{
    SESSION_STORE_SALT, SessionMap, expiry, signing::SessionCodec, time::from_datetime,
};
use sessionkit_engine_file::{FileConfig, FileStore};
use sessionkit_sdk::{ConditionalSave, SessionRecord, SessionStore, SessionWrite};
use tempfile::TempDir;

const SECRET: &str = "bench-secret-key-bench-secret-key-bench-secret-key";
const COOKIE_AGE: i64 = 1_209_600;

fn session() -> SessionMap {
    // An authenticated Django session (~260 bytes signed).
    json!({
        "_auth_user_id": "1",
        "_auth_user_backend": "django.contrib.auth.backends.ModelBackend",
        "_auth_user_hash": "9b1c2f8e0d5a7c3e4f6a8b0c2d4e6f8091a3b5c7d9e1f3a5b7c9d1e3f5a7b9c1",
        "cart": [17, 23, 42],
    })
    .as_object()
    .cloned()
    .unwrap_or_default()
}

struct Setup {
    _dir: TempDir,
    path: PathBuf,
    store: FileStore,
    write: SessionWrite,
}

fn setup(extra_sessions: usize) -> Setup {
    let base = std::env::var_os("SESSIONKIT_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let dir = tempfile::tempdir_in(base).expect("bench dir");
    let path = dir.path().to_path_buf();
    let store = FileStore::open(&FileConfig::new(&path, SECRET)).expect("open store");
    let codec = SessionCodec::new(SESSION_STORE_SALT, SECRET.as_bytes(), &[]);
    let now = Utc::now();
    let encoded = codec.encode(&session(), now.timestamp()).expect("encode");
    let expire = expiry::expiry_date(now, None, COOKIE_AGE);
    let write = SessionWrite::new(
        SessionRecord::new(key(0), encoded.session_data, from_datetime(expire)),
        encoded.session_json,
    );
    for n in 1..=extra_sessions {
        fs::write(
            path.join(format!("sessionid{}", key(n as u64))),
            write.record.session_data.as_bytes(),
        )
        .expect("seed");
    }
    Setup {
        _dir: dir,
        path,
        store,
        write,
    }
}

fn key(n: u64) -> String {
    format!("b{n:0>31}")
}

fn with_key(write: &SessionWrite, key: &str) -> SessionWrite {
    let mut write = write.clone();
    write.record.session_key = key.into();
    write
}

fn raw_replace(dir: &Path, dir_handle: &File, target: &Path, bytes: &[u8], n: u64, sync_dir: bool) {
    let temp = dir.join(format!(".raw{n}_out_"));
    let mut file = File::create_new(&temp).expect("temp");
    file.write_all(bytes).expect("write");
    file.sync_all().expect("fsync");
    drop(file);
    fs::rename(&temp, target).expect("rename");
    if sync_dir {
        dir_handle.sync_all().expect("fsync dir");
    }
}

fn load(c: &mut Criterion) {
    let s = setup(1000);
    s.store.create(s.write.clone()).expect("create");
    let file = s.path.join(format!("sessionid{}", key(0)));
    let mut group = c.benchmark_group("file/load");
    group.bench_function("store", |b| {
        b.iter(|| black_box(s.store.load(&key(0)).expect("load")))
    });
    group.bench_function("raw_fs_read", |b| {
        b.iter(|| black_box(fs::read(&file).expect("read")))
    });
    // The floor of a Django-semantics load: read, then decode to find `_session_expiry`.
    let codec = SessionCodec::new(SESSION_STORE_SALT, SECRET.as_bytes(), &[]);
    group.bench_function("raw_fs_read_and_decode", |b| {
        b.iter(|| {
            let data = fs::read_to_string(&file).expect("read");
            black_box(codec.decode(&data, None, 0).expect("decode"))
        })
    });
    group.finish();
}

fn create(c: &mut Criterion) {
    let s = setup(1000);
    let bytes = s.write.record.session_data.as_bytes().to_vec();
    let dir_handle = File::open(&s.path).expect("dir");
    let mut group = c.benchmark_group("file/create");
    let mut n = 100_000_u64;
    group.bench_function("store", |b| {
        b.iter(|| {
            n += 1;
            black_box(s.store.create(with_key(&s.write, &key(n))).expect("create"))
        })
    });
    group.bench_function("raw_write_fsync_rename_fsyncdir", |b| {
        b.iter(|| {
            n += 1;
            let target = s.path.join(format!("sessionid{}", key(n)));
            raw_replace(&s.path, &dir_handle, &target, &bytes, n, true);
        })
    });
    group.finish();
}

fn update(c: &mut Criterion) {
    let s = setup(1000);
    s.store.create(s.write.clone()).expect("create");
    let bytes = s.write.record.session_data.as_bytes().to_vec();
    let dir_handle = File::open(&s.path).expect("dir");
    let raw_target = s.path.join(format!("sessionid{}", key(1)));
    let mut group = c.benchmark_group("file/update");
    group.bench_function("store", |b| {
        b.iter(|| black_box(s.store.save(s.write.clone()).expect("save")))
    });
    // The same update made conditional on the data loaded (what the host does to merge
    // concurrent requests): the stored data always matches, so every call saves.
    let expected = s.write.record.session_data.to_string();
    group.bench_function("store_conditional", |b| {
        b.iter(|| {
            let outcome = s
                .store
                .save_if_unchanged(s.write.clone(), &expected)
                .expect("conditional save");
            assert!(matches!(outcome, ConditionalSave::Saved(_)));
            black_box(outcome)
        })
    });
    let mut n = 0_u64;
    group.bench_function("raw_write_fsync_rename", |b| {
        b.iter(|| {
            n += 1;
            raw_replace(&s.path, &dir_handle, &raw_target, &bytes, n, false);
        })
    });
    group.bench_function("raw_write_fsync_rename_fsyncdir", |b| {
        b.iter(|| {
            n += 1;
            raw_replace(&s.path, &dir_handle, &raw_target, &bytes, n, true);
        })
    });
    group.finish();
}

/// 10,000 session files (no fsync while seeding), 5,000 of them older than SESSION_COOKIE_AGE.
fn seed_clear(total: u64) -> Setup {
    let s = setup(0);
    let old = SystemTime::now() - Duration::from_secs(COOKIE_AGE as u64 + 86_400);
    for n in 0..total {
        let path = s.path.join(format!("sessionid{}", key(n)));
        let mut file = File::create(&path).expect("seed");
        file.write_all(s.write.record.session_data.as_bytes())
            .expect("seed write");
        if n % 2 == 0 {
            file.set_modified(old).expect("age");
        }
    }
    s
}

fn clear_expired(c: &mut Criterion) {
    let total = std::env::var("SESSIONKIT_BENCH_CLEAR_TOTAL")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let mut group = c.benchmark_group("file/clear_expired_10k_5k");
    // One clear per sample (each needs a fresh 10k-file directory).
    group.sample_size(10).sampling_mode(SamplingMode::Flat);
    group.bench_function("store", |b| {
        b.iter_batched(
            || seed_clear(total),
            |s| {
                let removed = s.store.clear_expired().expect("clear");
                assert_eq!(removed, total / 2);
                s
            },
            BatchSize::PerIteration,
        )
    });
    group.bench_function("raw_readdir_read_unlink_by_mtime", |b| {
        b.iter_batched(
            || seed_clear(total),
            |s| {
                let cutoff = Utc::now() - TimeDelta::seconds(COOKIE_AGE);
                let mut removed = 0;
                for entry in fs::read_dir(&s.path).expect("readdir") {
                    let entry = entry.expect("entry");
                    let data = fs::read(entry.path()).expect("read");
                    black_box(&data);
                    let modified = entry.metadata().expect("stat").modified().expect("mtime");
                    if chrono::DateTime::<Utc>::from(modified) < cutoff {
                        fs::remove_file(entry.path()).expect("unlink");
                        removed += 1;
                    }
                }
                assert_eq!(removed, total / 2);
                s
            },
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

criterion_group!(benches, load, create, update, clear_expired);
criterion_main!(benches);
