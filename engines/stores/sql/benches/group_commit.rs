//! Group commit on SQLite (issue 11): saves per second through `SqlStore` on a WAL file with
//! `synchronous=FULL` (the default: an fsync per commit), with 1, 16 and 64 concurrent writer
//! threads, each with group commit (the default) and with `?group_commit=off` — one commit per
//! write, the store as it was before — as the baseline measured in the same run.
//!
//! Each writer thread saves its own session (a 264-byte payload, the size of an authenticated
//! Django session), changing its bytes every time. One criterion iteration is one save by every
//! writer, so the reported throughput is saves per second. After the criterion groups, a
//! summary prints saves/s over every timed run (warm-up included), the ratio group/baseline for
//! each writer count, writes per commit, failed saves (the baseline's writers can outwait
//! SQLite's 5 s `busy_timeout`), and the load average before and after.
//!
//! Run: `cargo bench -p sessionkit-sql --bench group_commit` (add `-- --quick` for a short run).

use std::{
    cell::RefCell,
    fmt::Write as _,
    sync::{
        Arc, Barrier,
        atomic::{AtomicU64, Ordering},
    },
    thread,
    time::{Duration, Instant},
};

use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use sessionkit_sdk::{SessionRecord, SessionStore, SessionWrite, Timestamp};
use sessionkit_sql::{DatabaseUrl, SqlStore, SqlStoreOptions};

/// The concurrent writer counts the issue asks for.
const WRITER_COUNTS: [usize; 3] = [1, 16, 64];

/// The two write paths: the baseline first.
const MODES: [(&str, &str); 2] = [
    ("per_write_commit", "?group_commit=off"),
    ("group_commit", ""),
];

/// A 264-character stored session whose bytes differ with `n` (SQLite skips unchanged pages).
fn payload(n: u64) -> String {
    let mut data = "x".repeat(248);
    let _ = write!(data, "{n:016x}");
    data
}

fn key(writer: usize) -> String {
    format!("groupcommitbench{writer:016}")
}

fn write(writer: usize, n: u64) -> SessionWrite {
    SessionWrite::new(
        SessionRecord::new(
            key(writer),
            payload(n),
            Timestamp::from_micros(Timestamp::now().micros + 3_600_000_000 + n as i64),
        ),
        "{}",
    )
}

/// What one configuration did over all its timed runs.
#[derive(Default)]
struct Tally {
    saves: u64,
    failed: u64,
    elapsed: Duration,
    commits: Option<u64>,
}

impl Tally {
    fn per_second(&self) -> f64 {
        self.saves as f64 / self.elapsed.as_secs_f64().max(f64::MIN_POSITIVE)
    }
}

/// `writers` threads each save their own session `iters` times, started together; returns the
/// wall time from the start to the last save, and how many saves failed.
fn run(store: &Arc<SqlStore>, writers: usize, iters: u64, next: &AtomicU64) -> (Duration, u64) {
    let start = Barrier::new(writers + 1);
    let failed = AtomicU64::new(0);
    // The scope joins every writer before it returns, so `began.elapsed()` after it is the
    // time to the last save.
    let began = thread::scope(|scope| {
        for writer in 0..writers {
            let (store, start, failed) = (Arc::clone(store), &start, &failed);
            scope.spawn(move || {
                start.wait();
                for _ in 0..iters {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    if store.save(write(writer, n)).is_err() {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            });
        }
        start.wait();
        Instant::now()
    });
    (began.elapsed(), failed.into_inner())
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".to_owned())
}

fn group_commit(c: &mut Criterion) {
    let load_before = load_average();
    let dir = tempfile::tempdir().expect("temp dir");
    let next = AtomicU64::new(0);
    let mut summary: Vec<(usize, &str, Tally)> = Vec::new();
    for writers in WRITER_COUNTS {
        let mut group =
            c.benchmark_group(format!("sqlite_save_synchronous_full/{writers}_writers"));
        group.throughput(Throughput::Elements(writers as u64));
        group.sampling_mode(SamplingMode::Flat);
        group.sample_size(10);
        for (mode, query) in MODES {
            let path = dir.path().join(format!("{mode}-{writers}.sqlite3"));
            let url =
                DatabaseUrl::parse(&format!("sqlite://{}{query}", path.display())).expect("url");
            let store = Arc::new(SqlStore::open(&url, SqlStoreOptions::default()).expect("open"));
            for writer in 0..writers {
                store
                    .create(write(writer, next.fetch_add(1, Ordering::Relaxed)))
                    .expect("create");
            }
            let batches_before = store.group_commit_counts().map(|c| c.batches);
            let tally = RefCell::new(Tally::default());
            group.bench_function(mode, |b| {
                b.iter_custom(|iters| {
                    let (elapsed, failed) = run(&store, writers, iters, &next);
                    let mut tally = tally.borrow_mut();
                    tally.saves += iters * writers as u64 - failed;
                    tally.failed += failed;
                    tally.elapsed += elapsed;
                    elapsed
                })
            });
            let mut tally = tally.into_inner();
            tally.commits = store
                .group_commit_counts()
                .zip(batches_before)
                .map(|(now, before)| now.batches - before);
            summary.push((writers, mode, tally));
        }
        group.finish();
    }

    println!();
    println!(
        "group commit, SQLite WAL synchronous=FULL, saves through SqlStore (load before: {load_before}, after: {})",
        load_average()
    );
    println!(
        "{:>7}  {:>18}  {:>12}  {:>12}  {:>8}  {:>10}  {:>6}",
        "writers", "mode", "saves", "saves/s", "vs base", "per commit", "failed"
    );
    for (writers, mode, tally) in &summary {
        // A filtered run may lack the baseline or the configuration itself.
        if tally.elapsed.is_zero() {
            continue;
        }
        let ratio = summary
            .iter()
            .find(|(w, m, t)| w == writers && *m == MODES[0].0 && !t.elapsed.is_zero())
            .map_or("-".to_owned(), |(_, _, baseline)| {
                format!("{:.2}x", tally.per_second() / baseline.per_second())
            });
        let per_commit = match tally.commits {
            Some(commits) if commits > 0 => {
                format!(
                    "{:.1}",
                    (tally.saves + tally.failed) as f64 / commits as f64
                )
            }
            _ => "1".to_owned(),
        };
        println!(
            "{writers:>7}  {mode:>18}  {:>12}  {:>12.0}  {ratio:>8}  {per_commit:>10}  {:>6}",
            tally.saves,
            tally.per_second(),
            tally.failed,
        );
    }
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
}

criterion_group! {
    name = benches;
    config = config();
    targets = group_commit
}
criterion_main!(benches);
