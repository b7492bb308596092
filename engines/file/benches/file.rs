//! The file engine next to the raw file operations it is made of, in the same run.
//!
//! - load: `FileStore::load` vs `std::fs::read` of the same file;
//! - create / update: the store vs a raw "write temp + fsync + rename (+ fsync dir)"; update
//!   also as a conditional save (`save_if_unchanged`), against plain `save` in the same run;
//! - clear_expired over 10,000 files of which 5,000 are expired, vs a raw
//!   readdir + read + unlink-by-mtime floor;
//! - concurrent saves (issue 11): 1, 16 and 64 writer threads each saving its own session,
//!   with group commit (the default) against the per-write fsyncs of before
//!   (`Durability::PerWrite`) in the same run. Criterion reports time per save (its
//!   throughput line is saves/s); then a paired run alternates the two modes in short
//!   windows, so both see the same load, and prints saves/s, their ratio and the directory
//!   fsyncs per save.
//!
//! The directory is under the system temp dir (override with `SESSIONKIT_BENCH_DIR`), holding
//! 1,000 other sessions, so lookups are not measured on an empty directory. Run briefly with
//! `cargo bench -p sessionkit-engine-file --bench file -- --warm-up-time 1 --measurement-time 3`
//! (only the concurrent saves: add `concurrent_saves` after `--`).

use std::{
    fs::{self, File},
    hint::black_box,
    io::Write,
    path::{Path, PathBuf},
    sync::{
        Barrier,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    thread,
    time::{Duration, Instant, SystemTime},
};

use chrono::{TimeDelta, Utc};
use criterion::{
    BatchSize, BenchmarkId, Criterion, SamplingMode, Throughput, criterion_group, criterion_main,
};
use serde_json::json;
use sessionkit_codec::{
    SESSION_STORE_SALT, SessionMap, expiry, signing::SessionCodec, time::from_datetime,
};
use sessionkit_engine_file::{Durability, FileConfig, FileStore};
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
    setup_with(extra_sessions, Durability::default())
}

fn setup_with(extra_sessions: usize, durability: Durability) -> Setup {
    let base = std::env::var_os("SESSIONKIT_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let dir = tempfile::tempdir_in(base).expect("bench dir");
    let path = dir.path().to_path_buf();
    let config = FileConfig::new(&path, SECRET).with_durability(durability);
    let store = FileStore::open(&config).expect("open store");
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

/// `writers` threads each save their own session `iters / writers` times (rounded up); the
/// time from their common start to the last save, scaled to `iters` saves.
fn timed_saves(s: &Setup, writers: u64, iters: u64) -> Duration {
    let rounds = iters.div_ceil(writers);
    let start = Barrier::new(writers as usize + 1);
    let elapsed = thread::scope(|scope| {
        for writer in 1..=writers {
            let (store, start) = (&s.store, &start);
            let write = with_key(&s.write, &key(writer));
            scope.spawn(move || {
                start.wait();
                for _ in 0..rounds {
                    store.save(write.clone()).expect("save");
                }
            });
        }
        start.wait();
        // Leaving the scope joins every writer.
        Instant::now()
    })
    .elapsed();
    elapsed.mul_f64(iters as f64 / (rounds * writers) as f64)
}

/// Saves done by `writers` threads (each saving its own session) in about `window`, with the
/// time they took and the directory fsyncs the store ran for them.
fn saves_within(s: &Setup, writers: u64, window: Duration) -> (u64, Duration, u64) {
    let start = Barrier::new(writers as usize + 1);
    let stop = AtomicBool::new(false);
    let saves = AtomicU64::new(0);
    let syncs_before = s.store.directory_syncs();
    let elapsed = thread::scope(|scope| {
        for writer in 1..=writers {
            let (store, start, stop, saves) = (&s.store, &start, &stop, &saves);
            let write = with_key(&s.write, &key(writer));
            scope.spawn(move || {
                start.wait();
                while !stop.load(Ordering::Relaxed) {
                    store.save(write.clone()).expect("save");
                    saves.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
        start.wait();
        let began = Instant::now();
        thread::sleep(window);
        stop.store(true, Ordering::Relaxed);
        began
    })
    .elapsed();
    let syncs = s.store.directory_syncs() - syncs_before;
    (saves.into_inner(), elapsed, syncs)
}

/// Saves/s of 1, 16 and 64 writer threads, group commit against the per-write fsyncs of
/// before: criterion times each alone, then a paired run alternates the two in short windows
/// (so both see the same load on a shared machine) and prints saves/s and their ratio.
fn concurrent_saves(c: &mut Criterion) {
    let modes = [
        ("per_write_fsync", Durability::PerWrite),
        ("group_commit", Durability::GroupCommit),
    ];
    let writer_counts = [1_u64, 16, 64];
    // Sessions 1..=1000 exist: writer w saves session w.
    let setups: Vec<Vec<Setup>> = writer_counts
        .iter()
        .map(|_| modes.iter().map(|(_, d)| setup_with(1000, *d)).collect())
        .collect();
    let mut group = c.benchmark_group("file/concurrent_saves");
    group.throughput(Throughput::Elements(1));
    let mut timed = Vec::new();
    for (writers, setups) in writer_counts.iter().zip(&setups) {
        for ((name, _), s) in modes.iter().zip(setups) {
            let id = BenchmarkId::new(*name, writers);
            let ran = AtomicBool::new(false);
            group.bench_function(id, |b| {
                ran.store(true, Ordering::Relaxed);
                b.iter_custom(|iters| timed_saves(s, *writers, iters))
            });
            if ran.into_inner() {
                timed.push(*writers);
            }
        }
    }
    group.finish();
    paired_report(&writer_counts, &modes, &setups, &timed);
}

/// The paired run (see [`concurrent_saves`]) for the writer counts criterion did not filter
/// out. `SESSIONKIT_BENCH_PAIRED_ROUNDS` (default 6) windows of
/// `SESSIONKIT_BENCH_PAIRED_MS` (default 500) per mode and writer count.
fn paired_report(
    writer_counts: &[u64],
    modes: &[(&str, Durability)],
    setups: &[Vec<Setup>],
    timed: &[u64],
) {
    let env = |name: &str, default: u64| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let rounds = env("SESSIONKIT_BENCH_PAIRED_ROUNDS", 6);
    let window = Duration::from_millis(env("SESSIONKIT_BENCH_PAIRED_MS", 500));
    let mut lines = Vec::new();
    for (writers, setups) in writer_counts.iter().zip(setups) {
        if !timed.contains(writers) {
            continue;
        }
        let mut totals = vec![(0_u64, Duration::ZERO, 0_u64); modes.len()];
        for round in 0..rounds {
            // Alternate which mode goes first.
            for m in 0..modes.len() {
                let m = (m + round as usize) % modes.len();
                let (saves, elapsed, syncs) = saves_within(&setups[m], *writers, window);
                totals[m].0 += saves;
                totals[m].1 += elapsed;
                totals[m].2 += syncs;
            }
        }
        let rate = |(saves, elapsed, _): (u64, Duration, u64)| {
            saves as f64 / elapsed.as_secs_f64().max(f64::MIN_POSITIVE)
        };
        let baseline = rate(totals[0]);
        for ((name, _), total) in modes.iter().zip(&totals) {
            lines.push(format!(
                "{writers:>7}  {name:<16} {:>9.0}  {:>15.3}  {:>8.2}x",
                rate(*total),
                total.2 as f64 / total.0.max(1) as f64,
                rate(*total) / baseline
            ));
        }
    }
    if lines.is_empty() {
        return;
    }
    println!(
        "\nconcurrent saves, paired: {rounds} alternating windows of {} ms per mode",
        window.as_millis()
    );
    println!("writers  mode              saves/s  dir fsyncs/save  vs per_write_fsync");
    for line in lines {
        println!("{line}");
    }
}

criterion_group!(
    benches,
    load,
    create,
    update,
    clear_expired,
    concurrent_saves
);
criterion_main!(benches);
