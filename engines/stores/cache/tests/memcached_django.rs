//! sessionkit's memcached backend and Django's `PyMemcacheCache` (pymemcache's `HashClient`)
//! on the same servers: the key → server mapping is pymemcache's (checked against the venv's
//! pymemcache for thousands of keys), Django's sessions are found where Django put them, values
//! sessionkit writes are unpickled by Django, and a logout on either side logs the other out.
//!
//! Needs the Django venv with pymemcache (`SESSIONKIT_DJANGO_VENV`, `.ci/run` installs it) and,
//! for the tests on servers, `SESSIONKIT_TEST_MEMCACHED_URL`; each test prints "skipped: …"
//! and passes without what it needs.

// Test code: clippy's allow-unwrap-in-tests covers #[test] functions, not the helpers beside them.
#![allow(clippy::unwrap_used)]

mod memcached_common;

use std::{process::Command, time::Duration};

use serde_json::{Value, json};
use sessionkit_cache::{
    CacheBackend, MemcachedServer,
    config::MEMCACHED_BACKEND,
    memcached::{FLAG_PICKLE, pymemcache_node},
};
use sessionkit_sdk::{Capabilities, SessionRecord, SessionStore, SessionWrite, Timestamp};

use memcached_common::Shared;

/// Whether the Django venv imports pymemcache; prints why the test skips when not.
fn pymemcache_available() -> bool {
    let python = sessionkit_testkit::django_python();
    let ok = Command::new(&python)
        .args(["-c", "import pymemcache"])
        .status()
        .is_ok_and(|status| status.success());
    if !ok {
        println!(
            "skipped: {} cannot import pymemcache (pip install 'pymemcache>=4,<5')",
            python.display()
        );
    }
    ok
}

/// Django settings: the `cache` session backend on `PyMemcacheCache` over `servers`, under
/// `prefix`, with the servers given as Django users write them (a `;`-separated string).
fn django_env(servers: &[MemcachedServer], prefix: &str) -> Vec<(&'static str, String)> {
    let location: Vec<String> = servers.iter().map(ToString::to_string).collect();
    vec![
        (
            "CACHES",
            json!({"default": {
                "BACKEND": MEMCACHED_BACKEND,
                "LOCATION": location.join(";"),
                "KEY_PREFIX": prefix,
            }})
            .to_string(),
        ),
        (
            "SESSION_ENGINE",
            "django.contrib.sessions.backends.cache".to_owned(),
        ),
    ]
}

/// Runs a Django script with `env`, returning its one emitted JSON line.
fn django(script: &str, env: &[(&'static str, String)]) -> Value {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let out = sessionkit_testkit::run_django(script, &env);
    serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("{e}: {out}"))
}

#[test]
fn rendezvous_hash_matches_pymemcache_for_many_keys() {
    if !pymemcache_available() {
        return;
    }
    let node_lists: Vec<Vec<String>> = vec![
        vec!["127.0.0.1:11311".into(), "127.0.0.1:11312".into()],
        vec!["a:11211".into(), "b:11211".into(), "c:11211".into()],
        vec![
            "cache-1.internal:11211".into(),
            "10.0.0.2:11211".into(),
            "::1:11211".into(),
            "/run/memcached.sock".into(),
            "cache-5:1".into(),
        ],
    ];
    let mut keys: Vec<String> = Vec::new();
    for i in 0..1500u32 {
        keys.push(format!(
            ":1:django.contrib.sessions.cache{:032x}",
            u128::from(i).wrapping_mul(0x9E37_79B9_7F4A_7C15_F39C_C060_5CED_C835)
        ));
        keys.push(format!("site:{}:k{i}", i % 7));
    }
    keys.extend(
        [
            "",
            "a",
            "ab",
            "abc",
            "abcd",
            "é",
            "Grüße 東京 😀",
            "\u{1e9}x",
        ]
        .map(String::from),
    );
    let input = json!({"nodes": node_lists, "keys": keys}).to_string();
    let script = r#"
import json, sys
from pymemcache.client.rendezvous import RendezvousHash
request = json.load(sys.stdin)
result = []
for nodes in request["nodes"]:
    ring = RendezvousHash()
    for node in nodes:
        ring.add_node(node)
    result.append([nodes.index(ring.get_node(key)) for key in request["keys"]])
emit(result)
"#;
    let out = sessionkit_testkit::run_django_with_input(script, &[], &input);
    let expected: Vec<Vec<usize>> = serde_json::from_str(out.trim()).unwrap();
    for (nodes, expected) in node_lists.iter().zip(expected) {
        let ours: Vec<usize> = keys
            .iter()
            .map(|key| pymemcache_node(key, nodes).unwrap())
            .collect();
        let differing: Vec<&String> = keys
            .iter()
            .zip(ours.iter().zip(&expected))
            .filter(|(_, (a, b))| a != b)
            .map(|(key, _)| key)
            .collect();
        assert!(differing.is_empty(), "{nodes:?}: differ for {differing:?}");
        // Every node gets keys: the comparison covered each branch of the ring.
        for index in 0..nodes.len() {
            assert!(expected.contains(&index), "{nodes:?}: node {index} unused");
        }
    }
}

#[test]
fn django_sessions_are_found_by_sessionkit_and_logouts_cross_both_ways() {
    let Some(shared) = Shared::new() else {
        return;
    };
    if !pymemcache_available() {
        return;
    }
    let env = django_env(&shared.servers, &shared.prefix);
    let store = shared.store();

    // Django creates sessions; its cache keys and ours are the same, on the same server.
    let created = django(
        r#"
from django.contrib.sessions.backends.cache import SessionStore
keys = []
for n in range(24):
    s = SessionStore()
    s.update({"n": n, "greeting": "Grüße 😀", "cart": [1, 2.5, None, True]})
    s.save()
    keys.append(s.session_key)
emit(keys)
"#,
        &env,
    );
    let keys: Vec<String> = serde_json::from_value(created).unwrap();
    let mut homes = Vec::new();
    for key in &keys {
        let physical = store.cache_key(key);
        shared.forget_later(&physical);
        let (value, ttl) = shared
            .backend
            .get_with_ttl(&physical)
            .unwrap()
            .unwrap_or_else(|| panic!("Django's session is not where sessionkit looks"));
        assert_eq!(value.first(), Some(&0x80), "a pickle");
        // Django's default SESSION_COOKIE_AGE, two weeks, in whole seconds.
        let ttl = ttl.unwrap().as_secs();
        assert!((1_209_590..=1_209_600).contains(&ttl), "TTL {ttl}");
        homes.push(shared.backend.server_for(&physical).clone());
    }
    for server in &shared.servers {
        assert!(homes.contains(server), "no session on {server}");
    }

    // A value sessionkit writes under another session key is found and unpickled by Django.
    let copied = "sessionkitwrotethis0000000000001";
    let physical = store.cache_key(copied);
    shared.forget_later(&physical);
    let pickle = shared
        .backend
        .get(&store.cache_key(&keys[0]))
        .unwrap()
        .unwrap();
    shared
        .backend
        .set(&physical, &pickle, Duration::from_secs(600))
        .unwrap();
    let (_, flags) = {
        let result =
            memcache::exp::MetaClient::connect(shared.backend.server_for(&physical).to_string())
                .unwrap()
                .get(&physical)
                .send()
                .unwrap();
        (result.value, result.client_flags.unwrap_or(0))
    };
    assert_eq!(flags, FLAG_PICKLE);
    let loaded = django(
        &format!(
            "from django.contrib.sessions.backends.cache import SessionStore\n\
             emit(dict(SessionStore({copied:?}).load()))\n"
        ),
        &env,
    );
    assert_eq!(
        loaded,
        json!({"n": 0, "greeting": "Grüße 😀", "cart": [1, 2.5, null, true]})
    );

    // Django's logout (flush) removes the entry sessionkit reads.
    django(
        &format!(
            "from django.contrib.sessions.backends.cache import SessionStore\n\
             s = SessionStore({:?})\ns.load()\ns.flush()\nemit(True)\n",
            keys[1]
        ),
        &env,
    );
    assert!(!shared.backend.contains(&store.cache_key(&keys[1])).unwrap());
    assert_eq!(store.load(&keys[1]).unwrap(), None);

    // sessionkit's logout (delete) logs Django out.
    store.delete(&keys[2]).unwrap();
    let after = django(
        &format!(
            "from django.contrib.sessions.backends.cache import SessionStore\n\
             s = SessionStore({:?})\nemit([dict(s.load()), s.exists({:?})])\n",
            keys[2], keys[2]
        ),
        &env,
    );
    assert_eq!(after, json!([{}, false]));
}

#[test]
fn each_side_reads_the_others_session_data() {
    let Some(shared) = Shared::new() else {
        return;
    };
    if !pymemcache_available() {
        return;
    }
    let store = shared.store();
    if !store.capabilities().contains(Capabilities::DECODED_DATA) {
        // The store still writes its own JSON record here; Django's pickled dict arrives with
        // the pickle format (issue 10, part 1), and with it this test runs.
        println!(
            "skipped: the cache store does not keep Django's pickled session dict on memcached yet"
        );
        return;
    }
    let env = django_env(&shared.servers, &shared.prefix);
    let data = json!({"_auth_user_id": "7", "greeting": "Grüße 😀", "n": [1, 2.5, null]});

    // Django → sessionkit.
    let created = django(
        &format!(
            "import json\nfrom django.contrib.sessions.backends.cache import SessionStore\n\
             s = SessionStore()\ns.update(json.loads({:?}))\ns.save()\nemit(s.session_key)\n",
            data.to_string()
        ),
        &env,
    );
    let django_key = created.as_str().unwrap().to_owned();
    shared.forget_later(&store.cache_key(&django_key));
    let loaded = store.load(&django_key).unwrap().expect("Django's session");
    let decoded: Value = serde_json::from_str(loaded.session_data.as_str()).unwrap();
    assert_eq!(decoded, data);

    // sessionkit → Django.
    let ours = "sessionkitsessionfordjango000001";
    shared.forget_later(&store.cache_key(ours));
    let expire = Timestamp::from_micros(Timestamp::now().micros + 600 * 1_000_000);
    store
        .create(SessionWrite::new(
            SessionRecord::new(ours, "signed-form-unused-by-the-cache", expire),
            data.to_string(),
        ))
        .unwrap();
    let seen = django(
        &format!(
            "from django.contrib.sessions.backends.cache import SessionStore\n\
             emit(dict(SessionStore({ours:?}).load()))\n"
        ),
        &env,
    );
    assert_eq!(seen, data);

    // And the logouts, through the stores on both sides.
    store.delete(ours).unwrap();
    let gone = django(
        &format!(
            "from django.contrib.sessions.backends.cache import SessionStore\n\
             emit(SessionStore().exists({ours:?}))\n"
        ),
        &env,
    );
    assert_eq!(gone, json!(false));
    django(
        &format!(
            "from django.contrib.sessions.backends.cache import SessionStore\n\
             s = SessionStore({django_key:?})\ns.load()\ns.flush()\nemit(True)\n"
        ),
        &env,
    );
    assert_eq!(store.load(&django_key).unwrap(), None);
}
