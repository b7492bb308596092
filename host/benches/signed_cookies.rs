//! The signed-cookie engine through its plugin: load+read and save of the 5-key reference
//! payload, next to the codec doing the same verify/sign work in the same run.
//!
//! `cargo bench -p sessionkit --bench signed_cookies`

use std::{hint::black_box, time::Duration};

use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::json;
use sessionkit::{Engine, SessionMap, Settings};
use sessionkit_codec::{SIGNED_COOKIES_SALT, signing::SessionCodec};

const SECRET: &str = "bench-secret-key-bench-secret-key-bench-secret-key";

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

/// The signed_cookies engine loaded from its plugin library beside this executable.
fn plugin_engine() -> Engine {
    let library = sessionkit_testkit::engine_library("signed_cookies");
    let path = library.to_str().expect("the plugin path is UTF-8");
    Engine::load(path, &Settings::new(SECRET)).unwrap_or_else(|error| {
        panic!("cannot load {path} (build it with this bench: it is a dev-dependency): {error}")
    })
}

fn signed_cookies(c: &mut Criterion) {
    let engine = plugin_engine();
    let mut session = engine.session(None);
    session.update(payload()).expect("update");
    session.save().expect("save");
    let cookie = session.session_key().expect("saved").to_owned();
    let codec = SessionCodec::new(SIGNED_COOKIES_SALT, SECRET.as_bytes(), &[]);
    let now = chrono::Utc::now().timestamp();

    let mut group = c.benchmark_group("signed_cookies");
    group.bench_function("load_read/plugin", |b| {
        b.iter(|| {
            let mut session = engine.session(Some(black_box(&cookie)));
            black_box(session.get::<String>("theme").expect("live cookie"))
        })
    });
    group.bench_function("load_read/codec_decode_floor", |b| {
        b.iter(|| {
            black_box(
                codec
                    .decode(black_box(&cookie), Some(1_209_600), now)
                    .expect("valid"),
            )
        })
    });
    let mut toggle = false;
    group.bench_function("save_modified/plugin", |b| {
        b.iter(|| {
            toggle = !toggle;
            session
                .insert("theme", if toggle { "light" } else { "dark" })
                .expect("insert");
            session.save().expect("save");
            black_box(session.session_key().map(str::len))
        })
    });
    let map = payload();
    group.bench_function("save_modified/codec_encode_floor", |b| {
        b.iter(|| black_box(codec.encode(black_box(&map), now).expect("encodes")))
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    targets = signed_cookies
}
criterion_main!(benches);
