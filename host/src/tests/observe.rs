//! Every engine call is counted and timed through the `metrics` facade, by engine, operation
//! and outcome.

use metrics_util::{
    CompositeKey, MetricKind,
    debugging::{DebugValue, DebuggingRecorder},
};

use sessionkit_sdk::{SessionRecord, SessionWrite, Timestamp};

use crate::{
    Settings,
    observe::{OPERATION_SECONDS, OPERATIONS_TOTAL},
    testing::MemoryStore,
};

/// The label value of `name` in `key`.
fn label<'a>(key: &'a CompositeKey, name: &str) -> Option<&'a str> {
    key.key()
        .labels()
        .find(|label| label.key() == name)
        .map(|label| label.value())
}

#[test]
fn engine_calls_are_counted_and_timed_by_operation_and_outcome() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    metrics::with_local_recorder(&recorder, || {
        let store = MemoryStore::new();
        let engine = store.engine(&Settings::new("observe-test-secret")).unwrap();
        let mut session = engine.session(None);
        session.insert("a", 1).unwrap();
        session.save().unwrap();
        let key = session.session_key().unwrap().to_owned();
        for _ in 0..3 {
            engine.session(Some(&key)).load().unwrap();
        }
        // A save of a key that is not stored fails with NotFound in the engine.
        let expire = Timestamp::from_micros(Timestamp::now().micros + 60_000_000);
        let unknown = SessionRecord::new("observeunknownkey000000000000001", "x", expire);
        let failed = engine.store().save(SessionWrite::new(unknown, "{}"));
        assert!(failed.is_err());
    });

    let mut loads = None;
    let mut load_timings = None;
    let mut creates = None;
    let mut failures = Vec::new();
    for (key, _, _, value) in snapshotter.snapshot().into_vec() {
        let name = key.key().name();
        let operation = label(&key, "operation");
        assert_eq!(label(&key, "engine"), Some("memory"), "{key:?}");
        match (key.kind(), name, value) {
            (MetricKind::Counter, OPERATIONS_TOTAL, DebugValue::Counter(n)) => {
                match (operation, label(&key, "outcome")) {
                    (Some("load"), Some("ok")) => loads = Some(n),
                    (Some("create"), Some("ok")) => creates = Some(n),
                    (Some(op), Some(outcome)) if outcome != "ok" && n > 0 => {
                        failures.push((op.to_owned(), outcome.to_owned()));
                    }
                    _ => {}
                }
            }
            (MetricKind::Histogram, OPERATION_SECONDS, DebugValue::Histogram(samples))
                if operation == Some("load") =>
            {
                load_timings = Some(samples.len());
            }
            _ => {}
        }
    }
    assert_eq!(creates, Some(1));
    assert_eq!(loads, Some(3));
    assert_eq!(load_timings, Some(3));
    assert!(
        failures
            .iter()
            .any(|(op, outcome)| op == "save" && outcome == "not_found"),
        "the failed save was not counted: {failures:?}"
    );
}
