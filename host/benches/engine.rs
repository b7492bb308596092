//! The `cache` engine through the plugin boundary, next to its baselines, in one run.
//!
//! Every figure uses the reference payload (5 keys, 213 bytes of compact JSON) and a store
//! that already holds 1,000 other sessions:
//!
//! - `plugin`: the engine loaded from `libsessionkit_engine_cache.so` (what applications run);
//! - `static`: the same `CacheStore`, linked into this binary and wrapped in the SDK's
//!   `FfiAdapter` (same trait object, no dynamic library): plugin / static is the cost of the
//!   plugin boundary;
//! - `direct`: the store called as plain Rust (`SessionStore::load` + the codec), no `Engine`,
//!   no `Session`, no trait object;
//! - `tower`: tower-sessions 0.15's `MemoryStore` (decoded records in a map; no signing), called
//!   through its store trait on a tokio current-thread runtime;
//! - `codec/*`: the raw codec and zlib steps (the floor of any Django-compatible save).
//!
//! `memo_on` / `memo_off`: the host's decode memo (and the re-sign shortcut that rides on it)
//! on, as by default, or off.
//!
//! Operations: `load_read` (`engine.session(Some(key))` + `get("theme")`), `save_modified`
//! (change one value of a loaded session, save), `save_unchanged` (save a loaded, unchanged
//! session: `SESSION_SAVE_EVERY_REQUEST`), `load_modify_save` (a request that changes its
//! session), `create` (a new session with the payload, saved under a fresh key).
//!
//! After the criterion groups, an interleaved pass measures the plugin / static ratios again
//! round-robin (both sides under the same load); set `SESSIONKIT_BENCH_NO_INTERLEAVED` to skip
//! it.
//!
//! Run: `cargo bench -p sessionkit --bench engine` (a few minutes; `-- load_read` for one
//! group). Results: BENCHMARKS.md, "Core: cache engine through the plugin".

use std::{
    collections::HashMap,
    hint::black_box,
    time::{Duration, Instant},
};

use criterion::{
    BenchmarkGroup, Criterion, criterion_group, criterion_main, measurement::WallTime,
};
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress};
use serde_json::{Value, json};
use sessionkit::{Engine, SessionMap, Settings};
use sessionkit_codec::{
    SESSION_STORE_SALT,
    expiry::expiry_date,
    key::new_session_key,
    signing::{SessionCodec, payload_segment},
    time::from_datetime,
};
use sessionkit_engine_cache::{CacheEngine, CacheStore};
use sessionkit_sdk::{
    Engine as _, SessionRecord, SessionStore, SessionWrite, abi_stable::std_types::RString,
    store::FfiAdapter,
};
use tokio::runtime::Runtime;
use tower_sessions_core::{
    SessionStore as _,
    session::{Id, Record},
};
use tower_sessions_memory_store::MemoryStore;

const SECRET: &str = "bench-secret-key-bench-secret-key-bench-secret-key";
/// Other sessions already in each store, so that no store is measured empty.
const WORKING_SET: usize = 1_000;
/// Creates are timed in chunks of this many, then deleted untimed, so stores do not grow.
const CREATE_CHUNK: u64 = 500;

/// The reference payload: 5 keys, 213 bytes of compact JSON.
fn payload() -> SessionMap {
    json!({
        "_auth_user_id": "1234567",
        "_auth_user_backend": "django.contrib.auth.backends.ModelBackend",
        "_auth_user_hash": "705d8f9675f5d141680c20ceb39e05ad026064c3af07dc302135783e64af102a",
        "cart": [101, 202, 303],
        "theme": "dark",
    })
    .as_object()
    .cloned()
    .expect("the payload literal is an object")
}

/// Settings for one engine: its own in-process cache, large enough never to cull.
fn settings(location: &str) -> Settings {
    let mut settings = Settings::new(SECRET);
    settings.session_engine = "cache".to_owned();
    settings.caches = json!({"default": {
        "LOCATION": format!("locmem://{location}"),
        "OPTIONS": {"MAX_ENTRIES": 10_000_000},
    }});
    settings
}

/// The cache engine loaded from its plugin library, next to this benchmark's executable.
fn plugin_engine() -> Engine {
    let library = sessionkit_testkit::engine_library("cache");
    let path = library.to_str().expect("the plugin path is UTF-8");
    Engine::load(path, &settings("bench-plugin")).unwrap_or_else(|error| {
        panic!("cannot load {path} (build it with this bench: it is a dev-dependency): {error}")
    })
}

/// The same store linked statically, behind the same FFI trait object.
fn static_engine() -> Engine {
    let settings = settings("bench-static");
    let store = CacheEngine::open(&settings.engine_settings_json()).expect("open the cache store");
    let boxed = FfiAdapter::new("cache", store).into_box();
    Engine::from_store(CacheEngine::info(), boxed, &settings).expect("valid settings")
}

/// Saves the payload as a new session; returns its key.
fn seed(engine: &Engine) -> String {
    let mut session = engine.session(None);
    session.update(payload()).expect("update");
    session.save().expect("save");
    session.session_key().expect("saved").to_owned()
}

/// A store seeded with the working set plus the session the benchmark uses.
fn seeded(engine: &Engine) -> String {
    for _ in 0..WORKING_SET {
        seed(engine);
    }
    seed(engine)
}

/// Each engine with its decode memo on (the default) and off, plugin and static next to each
/// other so that their ratio is taken as close together in time as possible.
fn variants<K: Copy>(engines: [(&'static str, &Engine, K); 2]) -> Vec<(String, Engine, K)> {
    let mut out = Vec::new();
    for (memo, on) in [("memo_on", true), ("memo_off", false)] {
        for (label, engine, key) in engines {
            let engine = engine.clone().with_decode_memo(on);
            out.push((format!("{label}/{memo}"), engine, key));
        }
    }
    out
}

/// The `theme` a modifying save sets: new bytes on every save (never back to a state seen in
/// the last 10,000 saves), as long as "dark", so the JSON stays 213 bytes.
fn theme(n: usize) -> String {
    format!("{:04}", n % 10_000)
}

struct Direct {
    store: CacheStore,
    codec: SessionCodec,
    key: String,
}

impl Direct {
    fn new() -> Self {
        let settings = settings("bench-direct");
        let store = CacheEngine::open(&settings.engine_settings_json()).expect("open");
        let codec = SessionCodec::new(SESSION_STORE_SALT, SECRET.as_bytes(), &[]);
        let mut direct = Self {
            store,
            codec,
            key: String::new(),
        };
        for _ in 0..=WORKING_SET {
            let key = new_session_key();
            direct
                .store
                .create(direct.write(&key, &payload()))
                .expect("create");
            direct.key = key;
        }
        direct
    }

    /// What the host would write for `data` under `key` now.
    fn write(&self, key: &str, data: &SessionMap) -> SessionWrite {
        let now = chrono::Utc::now();
        let encoded = self.codec.encode(data, now.timestamp()).expect("encode");
        let expire = expiry_date(now, None, 1_209_600);
        SessionWrite {
            record: SessionRecord {
                session_key: RString::from(key),
                session_data: RString::from(encoded.session_data),
                expire_date: from_datetime(expire),
            },
            session_json: RString::from(encoded.session_json),
        }
    }

    fn load(&self) -> SessionMap {
        let record = self.store.load(&self.key).expect("load").expect("live");
        self.codec
            .decode(record.session_data.as_str(), None, 0)
            .expect("decode")
    }
}

struct Tower {
    runtime: Runtime,
    store: MemoryStore,
    id: Id,
}

impl Tower {
    fn new() -> Self {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a current-thread runtime");
        let store = MemoryStore::default();
        let mut id = Id::default();
        for _ in 0..=WORKING_SET {
            let mut record = tower_record();
            runtime.block_on(store.create(&mut record)).expect("create");
            id = record.id;
        }
        Self { runtime, store, id }
    }
}

fn tower_payload() -> HashMap<String, Value> {
    payload().into_iter().collect()
}

fn tower_record() -> Record {
    Record {
        id: Id::default(),
        data: tower_payload(),
        expiry_date: tower_expiry(),
    }
}

/// A fresh expiry, refreshed on every save as a real save does.
fn tower_expiry() -> time::OffsetDateTime {
    time::OffsetDateTime::now_utc() + time::Duration::weeks(2)
}

fn load_read(c: &mut Criterion, plugin: &Engine, plugin_key: &str, stat: &Engine, stat_key: &str) {
    let mut group = c.benchmark_group("cache_engine/load_read");
    for (name, engine, key) in
        variants([("plugin", plugin, plugin_key), ("static", stat, stat_key)])
    {
        group.bench_function(name, |b| {
            b.iter(|| {
                let mut session = engine.session(Some(black_box(key)));
                black_box(session.get::<String>("theme").expect("get"))
            })
        });
    }
    let direct = Direct::new();
    group.bench_function("direct/store_load_only", |b| {
        b.iter(|| black_box(direct.store.load(black_box(&direct.key)).expect("load")))
    });
    group.bench_function("direct/store_load_and_decode", |b| {
        b.iter(|| black_box(direct.load().get("theme").cloned()))
    });
    let tower = Tower::new();
    group.bench_function("tower/memory_store", |b| {
        b.iter(|| {
            let record = tower
                .runtime
                .block_on(tower.store.load(black_box(&tower.id)))
                .expect("load")
                .expect("live");
            black_box(record.data.get("theme").cloned())
        })
    });
    group.finish();
}

fn save_modified(
    c: &mut Criterion,
    plugin: &Engine,
    plugin_key: &str,
    stat: &Engine,
    stat_key: &str,
) {
    let mut group = c.benchmark_group("cache_engine/save_modified");
    for (name, engine, key) in
        variants([("plugin", plugin, plugin_key), ("static", stat, stat_key)])
    {
        let mut session = engine.session(Some(key));
        session.get::<String>("theme").expect("loaded");
        let mut n = 0_usize;
        group.bench_function(name, |b| {
            b.iter(|| {
                n += 1;
                session.insert("theme", theme(n)).expect("insert");
                session.save().expect("save");
            })
        });
    }
    let direct = Direct::new();
    let mut data = direct.load();
    let mut n = 0_usize;
    group.bench_function("direct/encode_and_store_save", |b| {
        b.iter(|| {
            n += 1;
            data.insert("theme".into(), Value::from(theme(n)));
            black_box(direct.store.save(direct.write(&direct.key, &data)))
        })
    });
    let tower = Tower::new();
    let mut record = tower
        .runtime
        .block_on(tower.store.load(&tower.id))
        .expect("load")
        .expect("live");
    group.bench_function("tower/memory_store", |b| {
        b.iter(|| {
            n += 1;
            record.data.insert("theme".into(), Value::from(theme(n)));
            record.expiry_date = tower_expiry();
            tower
                .runtime
                .block_on(tower.store.save(black_box(&record)))
                .expect("save")
        })
    });
    group.finish();
}

fn save_unchanged(
    c: &mut Criterion,
    plugin: &Engine,
    plugin_key: &str,
    stat: &Engine,
    stat_key: &str,
) {
    let mut group = c.benchmark_group("cache_engine/save_unchanged");
    for (name, engine, key) in
        variants([("plugin", plugin, plugin_key), ("static", stat, stat_key)])
    {
        let mut session = engine.session(Some(key));
        session.get::<String>("theme").expect("loaded");
        group.bench_function(name, |b| b.iter(|| session.save().expect("save")));
    }
    group.finish();
}

fn load_modify_save(
    c: &mut Criterion,
    plugin: &Engine,
    plugin_key: &str,
    stat: &Engine,
    stat_key: &str,
) {
    let mut group = c.benchmark_group("cache_engine/load_modify_save");
    let mut n = 0_usize;
    for (name, engine, key) in
        variants([("plugin", plugin, plugin_key), ("static", stat, stat_key)])
    {
        group.bench_function(name, |b| {
            b.iter(|| {
                n += 1;
                let mut session = engine.session(Some(black_box(key)));
                session.insert("theme", theme(n)).expect("insert");
                session.save().expect("save");
            })
        });
    }
    let tower = Tower::new();
    group.bench_function("tower/memory_store", |b| {
        b.iter(|| {
            n += 1;
            let mut record = tower
                .runtime
                .block_on(tower.store.load(black_box(&tower.id)))
                .expect("load")
                .expect("live");
            record.data.insert("theme".into(), Value::from(theme(n)));
            record.expiry_date = tower_expiry();
            tower
                .runtime
                .block_on(tower.store.save(&record))
                .expect("save")
        })
    });
    group.finish();
}

/// Times `create` in chunks and removes what each chunk made with `delete`, untimed.
fn bench_creates<K>(
    group: &mut BenchmarkGroup<'_, WallTime>,
    name: &str,
    mut create: impl FnMut() -> K,
    mut delete: impl FnMut(K),
) {
    group.bench_function(name, |b| {
        b.iter_custom(|iters| {
            let mut timed = Duration::ZERO;
            let mut made = Vec::with_capacity(CREATE_CHUNK as usize);
            let mut left = iters;
            while left > 0 {
                let chunk = left.min(CREATE_CHUNK);
                let start = Instant::now();
                for _ in 0..chunk {
                    made.push(create());
                }
                timed += start.elapsed();
                made.drain(..).for_each(&mut delete);
                left -= chunk;
            }
            timed
        })
    });
}

fn create(c: &mut Criterion, plugin: &Engine, stat: &Engine) {
    let mut group = c.benchmark_group("cache_engine/create");
    // The application's data exists before the request stores it (Django's bench: `DATA`).
    let data = payload();
    for (name, engine, ()) in variants([("plugin", plugin, ()), ("static", stat, ())]) {
        bench_creates(
            &mut group,
            &name,
            || {
                let mut session = engine.session(None);
                session.update(data.clone()).expect("update");
                session.save().expect("save");
                session.session_key().expect("saved").to_owned()
            },
            |key| engine.store().delete(&key).expect("delete"),
        );
    }
    let direct = Direct::new();
    bench_creates(
        &mut group,
        "direct/key_encode_and_store_create",
        || {
            let key = new_session_key();
            direct
                .store
                .create(direct.write(&key, &data))
                .expect("create")
        },
        |key| direct.store.delete(&key).expect("delete"),
    );
    let tower = Tower::new();
    let tower_data = tower_payload();
    bench_creates(
        &mut group,
        "tower/memory_store",
        || {
            let mut record = Record {
                id: Id::default(),
                data: tower_data.clone(),
                expiry_date: tower_expiry(),
            };
            tower
                .runtime
                .block_on(tower.store.create(&mut record))
                .expect("create");
            record.id
        },
        |id| {
            tower
                .runtime
                .block_on(tower.store.delete(&id))
                .expect("delete")
        },
    );
    group.finish();
}

/// The codec's steps on the same payload: the floor under every figure above.
fn codec_floor(c: &mut Criterion) {
    let mut group = c.benchmark_group("cache_engine/codec");
    let codec = SessionCodec::new(SESSION_STORE_SALT, SECRET.as_bytes(), &[]);
    let data = payload();
    let now = 1_750_000_000;
    let encoded = codec.encode(&data, now).expect("encode");
    assert_eq!(encoded.session_json.len(), 213, "the reference payload");
    assert!(encoded.session_data.starts_with('.'), "it compresses");
    group.bench_function("encode", |b| b.iter(|| codec.encode(black_box(&data), now)));
    group.bench_function("decode", |b| {
        b.iter(|| codec.decode(black_box(&encoded.session_data), None, now))
    });
    let payload = payload_segment(&encoded.session_data).expect("signed data");
    group.bench_function("sign_payload (re-sign shortcut)", |b| {
        b.iter(|| codec.sign_payload(black_box(payload), now))
    });
    let json = encoded.session_json.as_bytes();
    let mut deflate = Compress::new(Compression::new(6), true);
    let mut out = Vec::with_capacity(512);
    group.bench_function("zlib_deflate_level6 (reused state)", |b| {
        b.iter(|| {
            deflate.reset();
            out.clear();
            deflate
                .compress_vec(black_box(json), &mut out, FlushCompress::Finish)
                .expect("deflate");
            black_box(out.len())
        })
    });
    let compressed = out.clone();
    let mut inflate = Decompress::new(true);
    let mut back = Vec::with_capacity(512);
    group.bench_function("zlib_inflate (reused state)", |b| {
        b.iter(|| {
            inflate.reset(true);
            back.clear();
            inflate
                .decompress_vec(black_box(&compressed), &mut back, FlushDecompress::Finish)
                .expect("inflate");
            black_box(back.len())
        })
    });
    group.finish();
}

/// The plugin / static ratio measured round-robin: each round times a block of operations on
/// every variant back to back, so both sides of a ratio see the same machine load (criterion's
/// groups run one after another, and the shared machine's load drifts between them). Prints,
/// per operation and memo setting, the median ns/op of each side and the median of the
/// per-round ratios.
fn interleaved(plugin: &Engine, plugin_key: &str, stat: &Engine, stat_key: &str) {
    const ROUNDS: usize = 31;
    /// Makes one side's operation (with whatever state it keeps between calls).
    type Make = for<'a> fn(&'a Engine, &'a str) -> Box<dyn FnMut() + 'a>;
    let ops: [(&str, usize, Make); 5] = [
        ("load_read", 2_000, |engine, key| {
            Box::new(move || {
                let mut session = engine.session(Some(key));
                black_box(session.get::<String>("theme").expect("get"));
            })
        }),
        ("save_unchanged (kept loaded)", 2_000, |engine, key| {
            let mut session = engine.session(Some(key));
            session.get::<String>("theme").expect("loaded");
            Box::new(move || session.save().expect("save"))
        }),
        ("save_modified (kept loaded)", 300, |engine, key| {
            let mut session = engine.session(Some(key));
            session.get::<String>("theme").expect("loaded");
            let mut n = 0_usize;
            Box::new(move || {
                n += 1;
                session.insert("theme", theme(n)).expect("insert");
                session.save().expect("save");
            })
        }),
        ("load_save_unchanged", 1_000, |engine, key| {
            Box::new(move || {
                let mut session = engine.session(Some(key));
                session.save().expect("save");
            })
        }),
        ("load_modify_save", 300, |engine, key| {
            let mut n = 0_usize;
            Box::new(move || {
                n += 1;
                let mut session = engine.session(Some(key));
                session.insert("theme", theme(n)).expect("insert");
                session.save().expect("save");
            })
        }),
    ];
    println!(
        "\ninterleaved plugin/static ({ROUNDS} rounds; median ns/op; median of per-round ratios)"
    );
    for (op_name, per_round, make) in ops {
        for (memo, on) in [("memo_on", true), ("memo_off", false)] {
            let engines = [
                plugin.clone().with_decode_memo(on),
                stat.clone().with_decode_memo(on),
            ];
            let mut sides = [make(&engines[0], plugin_key), make(&engines[1], stat_key)];
            let mut times = [Vec::new(), Vec::new()];
            for round in 0..=ROUNDS {
                // Alternate which side goes first, so neither always runs on a warmer cache.
                let order = if round % 2 == 0 { [0, 1] } else { [1, 0] };
                for side in order {
                    let op = &mut sides[side];
                    let start = Instant::now();
                    for _ in 0..per_round {
                        op();
                    }
                    let ns = start.elapsed().as_nanos() as f64 / per_round as f64;
                    if round > 0 {
                        // Round 0 warms up (and fills the memo).
                        times[side].push(ns);
                    }
                }
            }
            let mut ratios: Vec<f64> = times[0].iter().zip(&times[1]).map(|(p, s)| p / s).collect();
            println!(
                "interleaved {op_name}/{memo}: plugin {:.0} ns, static {:.0} ns, plugin/static {:.3}",
                median(&mut times[0]),
                median(&mut times[1]),
                median(&mut ratios)
            );
        }
    }
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn engine_benches(c: &mut Criterion) {
    let plugin = plugin_engine();
    let stat = static_engine();
    let plugin_key = seeded(&plugin);
    let stat_key = seeded(&stat);
    // Both engines must behave the same before their figures are compared.
    for (engine, key) in [(&plugin, &plugin_key), (&stat, &stat_key)] {
        let mut session = engine.session(Some(key));
        assert_eq!(
            session.get::<String>("theme").expect("get").as_deref(),
            Some("dark")
        );
        assert_eq!(session.items().expect("items").len(), 5);
    }
    load_read(c, &plugin, &plugin_key, &stat, &stat_key);
    save_modified(c, &plugin, &plugin_key, &stat, &stat_key);
    save_unchanged(c, &plugin, &plugin_key, &stat, &stat_key);
    load_modify_save(c, &plugin, &plugin_key, &stat, &stat_key);
    create(c, &plugin, &stat);
    codec_floor(c);
    let profiling = std::env::args().any(|arg| arg == "--profile-time");
    if !profiling && std::env::var_os("SESSIONKIT_BENCH_NO_INTERLEAVED").is_none() {
        interleaved(&plugin, &plugin_key, &stat, &stat_key);
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(50);
    targets = engine_benches
}
criterion_main!(benches);
