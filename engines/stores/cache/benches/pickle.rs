//! The cost of Django's cache values: reading a pickled session dict safely
//! (`pickle::loads_dict`, then the compact JSON a load hands out) and writing one
//! (`pickle::dumps_dict`), for a logged-in Django session (fixture `django_login-p5`, written by
//! Python) and a 264-byte session. Run briefly with
//! `cargo bench -p sessionkit-cache --bench pickle`.

use std::{hint::black_box, path::Path, time::Duration};

use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::{Map, Value, json};
use sessionkit_cache::pickle::{dumps_dict, loads_dict};

fn benches(c: &mut Criterion) {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/pickles/good");
    let login = std::fs::read(fixture.join("django_login-p5.pickle")).expect("fixture");
    let medium: Map<String, Value> = json!({"v": "x".repeat(264), "n": 3, "cart": [1, 2.5]})
        .as_object()
        .cloned()
        .unwrap_or_default();
    let medium_pickle = dumps_dict(&medium);
    let mut group = c.benchmark_group("pickle");
    for (name, bytes) in [("django_login", &login), ("264-byte", &medium_pickle)] {
        group.bench_function(format!("load {name} (to JSON text)"), |b| {
            b.iter(|| {
                let dict = loads_dict(black_box(bytes)).expect("reads");
                black_box(serde_json::to_string(&dict).expect("serialises"))
            })
        });
        let dict = loads_dict(bytes).expect("reads");
        group.bench_function(format!("dump {name}"), |b| {
            b.iter(|| black_box(dumps_dict(black_box(&dict))))
        });
    }
    group.finish();
}

criterion_group! {
    name = pickle_benches;
    config = Criterion::default()
        .sample_size(30)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = benches
}
criterion_main!(pickle_benches);
