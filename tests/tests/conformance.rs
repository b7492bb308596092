//! The conformance suite against every bundled engine, each loaded through its real shared
//! library (built before this test by the dev-dependencies in Cargo.toml).
//!
//! Trials are named `<target>::<case>` (`cache::load_of_unknown_key_creates_nothing`); a case
//! that does not apply to an engine is reported as ignored with its reason. Adding an engine
//! configuration is one line in [`TARGETS`].

use std::{path::Path, process::ExitCode, sync::Arc};

use libtest_mimic::Arguments;
use serde_json::json;
use sessionkit::Settings;
use sessionkit_conformance::{Tally, Target, libtest_trials_tallied};
use sessionkit_testkit::redis_servers::{redis_cluster_url, redis_sentinel_url};
use sessionkit_testkit::{
    drop_mysql_database, drop_postgres_database, engine_library, fresh_mysql_database,
    fresh_postgres_database, mysql_url, postgres_url,
};
use sessionkit_testkit::{redis_url, unique_prefix};

/// One engine configuration the suite runs against.
struct EngineTarget {
    /// The prefix of its trial names.
    label: &'static str,
    /// The engine's short name: its library is `libsessionkit_engine_<engine>.so`.
    engine: &'static str,
    /// Edits the default settings for this target, or says why the target is skipped on this
    /// machine.
    configure: fn(&mut Settings, &mut Setup<'_>) -> Result<(), String>,
}

/// What a target's configuration gets: a directory of its own for its store, and a place for
/// what to undo after the run.
struct Setup<'a> {
    /// An empty directory, removed after the run.
    dir: &'a Path,
    /// Run after all trials, in order.
    cleanups: &'a mut Vec<Box<dyn FnOnce()>>,
}

/// Every bundled engine configuration.
const TARGETS: &[EngineTarget] = &[
    EngineTarget {
        label: "cache",
        engine: "cache",
        configure: in_process_cache,
    },
    EngineTarget {
        label: "signed_cookies",
        engine: "signed_cookies",
        configure: defaults,
    },
    EngineTarget {
        label: "template",
        engine: "template",
        configure: defaults,
    },
    EngineTarget {
        label: "file",
        engine: "file",
        configure: files_in_temp_dir,
    },
    EngineTarget {
        label: "db",
        engine: "db",
        configure: sqlite_in_temp_dir,
    },
    EngineTarget {
        label: "db-postgres",
        engine: "db",
        configure: fresh_postgres,
    },
    EngineTarget {
        label: "cache-redis",
        engine: "cache",
        configure: redis_cache,
    },
    EngineTarget {
        label: "cache-redis-cluster",
        engine: "cache",
        configure: redis_cluster_cache,
    },
    EngineTarget {
        label: "cache-redis-sentinel",
        engine: "cache",
        configure: redis_sentinel_cache,
    },
    EngineTarget {
        label: "cache-memcached",
        engine: "cache",
        configure: memcached_cache,
    },
    EngineTarget {
        label: "cached_db",
        engine: "cached_db",
        configure: cached_db_locmem_sqlite,
    },
    EngineTarget {
        label: "cached_db-redis-postgres",
        engine: "cached_db",
        configure: cached_db_redis_postgres,
    },
    EngineTarget {
        label: "account_db",
        engine: "account_db",
        configure: sqlite_in_temp_dir,
    },
    EngineTarget {
        label: "account_db-postgres",
        engine: "account_db",
        configure: fresh_postgres,
    },
    EngineTarget {
        label: "db-mysql",
        engine: "db",
        configure: fresh_mysql,
    },
    EngineTarget {
        label: "cached_db-redis-mysql",
        engine: "cached_db",
        configure: cached_db_redis_mysql,
    },
    EngineTarget {
        label: "account_db-mysql",
        engine: "account_db",
        configure: fresh_mysql,
    },
];

/// The secret every target signs with.
const SECRET_KEY: &str = "sessionkit-conformance-suite-secret-key-not-for-production";

/// No edits: the engine's defaults.
fn defaults(_: &mut Settings, _: &mut Setup<'_>) -> Result<(), String> {
    Ok(())
}

/// The in-process (locmem) cache, with room for every session the suite makes at once: with
/// Django's default of 300 entries the cache would cull live sessions mid-case.
fn in_process_cache(settings: &mut Settings, _: &mut Setup<'_>) -> Result<(), String> {
    settings.caches = json!({
        "default": {"LOCATION": "locmem://", "OPTIONS": {"MAX_ENTRIES": 1_000_000}}
    });
    Ok(())
}

/// Session files in this run's temporary directory.
fn files_in_temp_dir(settings: &mut Settings, setup: &mut Setup<'_>) -> Result<(), String> {
    settings.session_file_path = Some(setup.dir.to_path_buf());
    Ok(())
}

/// A SQLite database in this run's temporary directory.
fn sqlite_in_temp_dir(settings: &mut Settings, setup: &mut Setup<'_>) -> Result<(), String> {
    let path = setup.dir.join("sessions.sqlite3");
    settings.session_db_url = Some(format!("sqlite://{}", path.display()));
    Ok(())
}

/// A fresh PostgreSQL database on the server of `SESSIONKIT_TEST_POSTGRES_URL`, dropped after
/// the run.
fn fresh_postgres(settings: &mut Settings, setup: &mut Setup<'_>) -> Result<(), String> {
    let base = postgres_url().ok_or("SESSIONKIT_TEST_POSTGRES_URL is not set")?;
    let database = fresh_postgres_database(&base);
    settings.session_db_url = Some(database.clone());
    setup
        .cleanups
        .push(Box::new(move || drop_postgres_database(&base, &database)));
    Ok(())
}

/// A fresh MySQL/MariaDB database on the server of `SESSIONKIT_TEST_MYSQL_URL`, dropped after
/// the run.
fn fresh_mysql(settings: &mut Settings, setup: &mut Setup<'_>) -> Result<(), String> {
    let base = mysql_url().ok_or("SESSIONKIT_TEST_MYSQL_URL is not set")?;
    let database = fresh_mysql_database(&base);
    settings.session_db_url = Some(database.clone());
    setup
        .cleanups
        .push(Box::new(move || drop_mysql_database(&base, &database)));
    Ok(())
}

/// The cache on the Redis server of `SESSIONKIT_TEST_REDIS_URL`, under a random `KEY_PREFIX`
/// whose keys are deleted after the run (never a FLUSHDB).
fn redis_cache(settings: &mut Settings, setup: &mut Setup<'_>) -> Result<(), String> {
    let url = redis_url().ok_or("SESSIONKIT_TEST_REDIS_URL is not set")?;
    let prefix = unique_prefix().trim_end_matches(':').to_owned();
    settings.caches = json!({"default": {"LOCATION": url, "KEY_PREFIX": prefix}});
    setup
        .cleanups
        .push(Box::new(move || delete_redis_prefix(&url, &prefix)));
    Ok(())
}

/// `cache` on the Redis Cluster `.ci/run` starts, under a random `KEY_PREFIX` removed afterwards
/// from every master.
fn redis_cluster_cache(settings: &mut Settings, setup: &mut Setup<'_>) -> Result<(), String> {
    let url = redis_cluster_url().ok_or("SESSIONKIT_TEST_REDIS_CLUSTER_URL is not set")?;
    let prefix = unique_prefix().trim_end_matches(':').to_owned();
    settings.caches = json!({"default": {"LOCATION": url, "KEY_PREFIX": prefix}});
    setup.cleanups.push(Box::new(move || {
        for master in cluster_master_urls(&url) {
            delete_redis_prefix(&master, &prefix);
        }
    }));
    Ok(())
}

/// `cache` on the master of the Sentinel set `.ci/run` starts, under a random `KEY_PREFIX`
/// removed afterwards.
fn redis_sentinel_cache(settings: &mut Settings, setup: &mut Setup<'_>) -> Result<(), String> {
    let url = redis_sentinel_url().ok_or("SESSIONKIT_TEST_REDIS_SENTINEL_URL is not set")?;
    let prefix = unique_prefix().trim_end_matches(':').to_owned();
    settings.caches = json!({"default": {"LOCATION": url, "KEY_PREFIX": prefix}});
    setup
        .cleanups
        .push(Box::new(move || match sentinel_master_url(&url) {
            Some(master) => delete_redis_prefix(&master, &prefix),
            None => {
                eprintln!("could not find the Sentinel master to remove the keys under {prefix}")
            }
        }));
    Ok(())
}

/// `redis://host:port` of every master of the cluster whose seeds `url` lists
/// (`redis+cluster://host:port,…`), from the first seed's `CLUSTER NODES`.
fn cluster_master_urls(url: &str) -> Vec<String> {
    let seeds = url.trim_start_matches("redis+cluster://");
    for seed in seeds.split('/').next().unwrap_or_default().split(',') {
        let nodes = redis::Client::open(format!("redis://{seed}"))
            .and_then(|client| {
                client.get_connection_with_timeout(std::time::Duration::from_secs(5))
            })
            .and_then(|mut con| redis::cmd("CLUSTER").arg("NODES").query::<String>(&mut con));
        if let Ok(nodes) = nodes {
            return nodes
                .lines()
                .filter(|line| {
                    line.split_whitespace()
                        .nth(2)
                        .is_some_and(|f| f.contains("master"))
                })
                .filter_map(|line| line.split_whitespace().nth(1))
                .map(|address| format!("redis://{}", address.split('@').next().unwrap_or_default()))
                .collect();
        }
    }
    Vec::new()
}

/// `redis://host:port/db` of the master the Sentinels of `url`
/// (`redis+sentinel://host:port,…/service/db`) name.
fn sentinel_master_url(url: &str) -> Option<String> {
    let rest = url.trim_start_matches("redis+sentinel://");
    let (sentinels, path) = rest.split_once('/')?;
    let (service, db) = path.split_once('/').unwrap_or((path, "0"));
    sentinels.split(',').find_map(|sentinel| {
        let (host, port): (String, u16) = redis::Client::open(format!("redis://{sentinel}"))
            .and_then(|client| {
                client.get_connection_with_timeout(std::time::Duration::from_secs(5))
            })
            .and_then(|mut con| {
                redis::cmd("SENTINEL")
                    .arg("GET-MASTER-ADDR-BY-NAME")
                    .arg(service)
                    .query(&mut con)
            })
            .ok()?;
        Some(format!("redis://{host}:{port}/{db}"))
    })
}

/// The cache on the memcached servers of `SESSIONKIT_TEST_MEMCACHED_URL` (`.ci/run` starts two
/// private ones), under a random `KEY_PREFIX`. memcached cannot list keys by prefix, so the
/// entries are left to expire by their own TTL on those private test servers.
fn memcached_cache(settings: &mut Settings, _: &mut Setup<'_>) -> Result<(), String> {
    let url = std::env::var("SESSIONKIT_TEST_MEMCACHED_URL")
        .ok()
        .filter(|url| !url.trim().is_empty())
        .ok_or("SESSIONKIT_TEST_MEMCACHED_URL is not set")?;
    let prefix = unique_prefix().trim_end_matches(':').to_owned();
    settings.caches = json!({"default": {"LOCATION": url, "KEY_PREFIX": prefix}});
    Ok(())
}

/// `cached_db` over the in-process cache and a SQLite database in this run's directory.
fn cached_db_locmem_sqlite(settings: &mut Settings, setup: &mut Setup<'_>) -> Result<(), String> {
    in_process_cache(settings, setup)?;
    sqlite_in_temp_dir(settings, setup)
}

/// `cached_db` over Redis and a fresh PostgreSQL database (both server variables needed).
fn cached_db_redis_postgres(settings: &mut Settings, setup: &mut Setup<'_>) -> Result<(), String> {
    postgres_url().ok_or("SESSIONKIT_TEST_POSTGRES_URL is not set")?;
    redis_cache(settings, setup)?;
    fresh_postgres(settings, setup)
}

/// `cached_db` over Redis and a fresh MySQL/MariaDB database (both server variables needed).
fn cached_db_redis_mysql(settings: &mut Settings, setup: &mut Setup<'_>) -> Result<(), String> {
    mysql_url().ok_or("SESSIONKIT_TEST_MYSQL_URL is not set")?;
    redis_cache(settings, setup)?;
    fresh_mysql(settings, setup)
}

/// Deletes every key under `prefix` on a shared Redis server (SCAN + DEL of our own keys).
fn delete_redis_prefix(url: &str, prefix: &str) {
    let pattern = format!("{prefix}:*");
    let result = redis::Client::open(url)
        .and_then(|client| client.get_connection_with_timeout(std::time::Duration::from_secs(5)))
        .and_then(|mut con| {
            let keys: Vec<String> = redis::cmd("SCAN")
                .cursor_arg(0)
                .arg("MATCH")
                .arg(&pattern)
                .clone()
                .iter(&mut con)?
                .collect::<Result<_, _>>()?;
            keys.iter()
                .try_for_each(|key| redis::cmd("DEL").arg(key).query::<i64>(&mut con).map(drop))
        });
    if let Err(error) = result {
        eprintln!("could not remove the conformance keys under {prefix}: {error}");
    }
}

fn main() -> ExitCode {
    let args = Arguments::from_args();
    let root = match tempfile::Builder::new()
        .prefix("sessionkit-conformance-")
        .tempdir()
    {
        Ok(root) => root,
        Err(error) => {
            eprintln!("cannot make a temporary directory: {error}");
            return ExitCode::FAILURE;
        }
    };
    let tally = Tally::new();
    let mut trials = Vec::new();
    let mut cleanups = Vec::new();
    for target in TARGETS {
        let dir = root.path().join(target.label);
        if let Err(error) = std::fs::create_dir_all(&dir) {
            eprintln!("cannot make {}: {error}", dir.display());
            return ExitCode::FAILURE;
        }
        let mut settings = Settings::new(SECRET_KEY);
        settings.session_engine = target.engine.to_owned();
        let mut setup = Setup {
            dir: &dir,
            cleanups: &mut cleanups,
        };
        if let Err(reason) = (target.configure)(&mut settings, &mut setup) {
            println!("skipped engine target {}: {reason}", target.label);
            continue;
        }
        let library = engine_library(target.engine).to_string_lossy().into_owned();
        let suite = Target::from_settings(library, move || settings.clone()).labelled(target.label);
        trials.extend(libtest_trials_tallied(
            Arc::new(suite),
            target.label,
            &tally,
        ));
    }
    let conclusion = libtest_mimic::run(&args, trials);
    for (label, report) in tally.reports() {
        println!("{label}: {}", report.summary());
    }
    for cleanup in cleanups {
        cleanup();
    }
    drop(root);
    conclusion.exit_code()
}
