//! The pickle reader and writer against real `pickle.dumps` output: the fixtures in
//! tests/pickles/ (made by scripts/make_pickle_fixtures.py with Python 3.11), and, when
//! `SESSIONKIT_DJANGO_VENV` names the test venv, Python reading what we write.

// Test code: clippy's allow-unwrap-in-tests covers #[test] functions, not the helpers beside them.
#![allow(clippy::unwrap_used)]

use std::{
    io::Write,
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

use serde_json::{Map, Value, json};
use sessionkit_cache::pickle::{PickleError, dumps_dict, loads_dict};

fn fixtures(kind: &str) -> Vec<(String, PathBuf)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/pickles")
        .join(kind);
    let mut files: Vec<(String, PathBuf)> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "pickle"))
        .map(|path| {
            let name = path.file_stem().unwrap().to_string_lossy().into_owned();
            (name, path)
        })
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no fixtures in {}", dir.display());
    files
}

fn hostile(name: &str) -> Vec<u8> {
    std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/pickles/hostile")
            .join(format!("{name}.pickle")),
    )
    .unwrap()
}

#[test]
fn every_python_pickle_of_a_session_dict_reads_as_its_json() {
    let mut count = 0;
    for (name, path) in fixtures("good") {
        let bytes = std::fs::read(&path).unwrap();
        let expected: Value =
            serde_json::from_slice(&std::fs::read(path.with_extension("json")).unwrap()).unwrap();
        let read = loads_dict(&bytes).unwrap_or_else(|error| panic!("{name}: {error}"));
        assert_eq!(Value::Object(read.clone()), expected, "{name}");
        // Dict order is Python's insertion order.
        let keys: Vec<&String> = read.keys().collect();
        let expected_keys: Vec<&String> = expected.as_object().unwrap().keys().collect();
        assert_eq!(keys, expected_keys, "{name}");
        count += 1;
    }
    assert!(count >= 15, "{count}");
}

#[test]
fn what_we_write_is_byte_for_byte_what_python_writes_for_plain_dicts() {
    // Python memoizes and frames exactly so for dicts without shared objects below 64 KiB.
    for name in ["empty-p5", "django_login-p5", "ints-p5", "many_items-p5"] {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/pickles/good");
        let python = std::fs::read(dir.join(format!("{name}.pickle"))).unwrap();
        let session: Map<String, Value> =
            serde_json::from_slice(&std::fs::read(dir.join(format!("{name}.json"))).unwrap())
                .unwrap();
        assert_eq!(dumps_dict(&session), python, "{name}");
    }
}

#[test]
fn what_we_write_reads_back_equal() {
    for (name, path) in fixtures("good") {
        let session = loads_dict(&std::fs::read(&path).unwrap()).unwrap();
        let written = dumps_dict(&session);
        assert_eq!(loads_dict(&written).unwrap(), session, "{name}");
    }
}

#[test]
fn hostile_pickles_are_refused_with_the_reason() {
    let refused = |name: &str| loads_dict(&hostile(name)).unwrap_err();
    for name in [
        "os_system_reduce",
        "os_system_reduce_p2",
        "datetime",
        "set",
        "frozenset",
        "bytes",
        "bytearray",
        "protocol_0",
    ] {
        assert!(
            matches!(refused(name), PickleError::Refused { .. }),
            "{name}: {:?}",
            refused(name)
        );
    }
    for name in [
        "huge_binunicode8",
        "huge_binunicode",
        "huge_frame",
        "huge_long1",
    ] {
        assert!(
            matches!(refused(name), PickleError::LengthTooLarge { .. }),
            "{name}: {:?}",
            refused(name)
        );
    }
    for name in ["int_2_64", "int_2_100", "int_negative_2_70"] {
        assert!(
            matches!(refused(name), PickleError::IntTooLarge { .. }),
            "{name}"
        );
    }
    for name in ["nan", "infinity"] {
        assert!(
            matches!(refused(name), PickleError::NonFiniteFloat { .. }),
            "{name}"
        );
    }
    for name in [
        "deep_10000",
        "nested_lists_200",
        "recursive_list",
        "recursive_dict",
    ] {
        assert_eq!(refused(name), PickleError::TooDeep, "{name}");
    }
    assert!(matches!(refused("memo_bomb"), PickleError::TooLarge { .. }));
    assert!(matches!(refused("surrogate"), PickleError::BadUtf8 { .. }));
    assert_eq!(
        refused("not_a_dict"),
        PickleError::NotADict { kind: "list" }
    );
    for name in [
        "int_key",
        "huge_memo_index",
        "get_unset_memo",
        "append_to_dict",
    ] {
        assert!(
            matches!(refused(name), PickleError::Malformed { .. }),
            "{name}: {:?}",
            refused(name)
        );
    }
    // The frame header of a truncated pickle already claims more than remains.
    for name in ["truncated", "no_stop"] {
        assert!(
            matches!(
                refused(name),
                PickleError::Truncated { .. } | PickleError::LengthTooLarge { .. }
            ),
            "{name}: {:?}",
            refused(name)
        );
    }
}

#[test]
fn every_hostile_fixture_is_covered_by_the_test_above() {
    let covered = 30;
    assert_eq!(fixtures("hostile").len(), covered);
}

#[test]
fn the_reduce_error_names_the_opcode_not_the_command() {
    let error = loads_dict(&hostile("os_system_reduce")).unwrap_err();
    let message = error.to_string();
    assert!(message.contains("STACK_GLOBAL"), "{message}");
    assert!(
        !message.contains("pwned") && !message.contains("system"),
        "{message}"
    );
}

#[test]
fn every_prefix_of_a_pickle_is_refused_without_a_panic() {
    let bytes = dumps_dict(
        json!({"a": [1, 2.5, "x", null, true, {"b": -70000}], "c": "d".repeat(300)})
            .as_object()
            .unwrap(),
    );
    for end in 0..bytes.len() {
        assert!(loads_dict(&bytes[..end]).is_err(), "{end}");
    }
    assert!(loads_dict(&bytes).is_ok());
}

#[test]
fn large_ints_round_trip_through_the_smallest_opcode() {
    for n in [
        json!(0),
        json!(255),
        json!(256),
        json!(65535),
        json!(65536),
        json!(-1),
        json!(i64::from(i32::MAX) + 1),
        json!(i64::MIN),
        json!(i64::MAX),
        json!(u64::MAX),
    ] {
        let session = json!({ "n": n });
        let session = session.as_object().unwrap();
        assert_eq!(&loads_dict(&dumps_dict(session)).unwrap(), session, "{n}");
    }
}

/// The test venv's Python, or `None` (the test prints that it skipped).
fn python() -> Option<PathBuf> {
    match std::env::var_os("SESSIONKIT_DJANGO_VENV") {
        Some(venv) => Some(PathBuf::from(venv).join("bin/python")),
        None => {
            println!("skipped: SESSIONKIT_DJANGO_VENV is not set");
            None
        }
    }
}

#[test]
fn python_reads_what_we_write_as_the_same_dict() {
    let Some(python) = python() else {
        return;
    };
    let sessions = [
        json!({}),
        json!({"_auth_user_id": "42", "_session_expiry": 3600, "cart": [{"sku": "A", "qty": 2, "price": 9.99}]}),
        json!({"unicode": "h\u{e9}llo \u{2603} \u{1f600}", "big": u64::MAX, "neg": i64::MIN, "f": -1.5e-300, "n": null, "t": true}),
        json!({"long": "x".repeat(70_000), "many": (0..2500).collect::<Vec<i32>>()}),
    ];
    for session in sessions {
        let pickled = dumps_dict(session.as_object().unwrap());
        // Python unpickles our bytes and prints the dict as JSON (keys in order).
        let mut child = Command::new(&python)
            .args([
                "-c",
                "import sys, pickle, json; \
                 sys.stdout.write(json.dumps(pickle.loads(sys.stdin.buffer.read())))",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(&pickled).unwrap();
        let output = child.wait_with_output().unwrap();
        assert!(output.status.success());
        let read: Value = serde_json::from_slice(&output.stdout).unwrap();
        assert_eq!(read, session);
        assert_eq!(
            serde_json::to_string(&read).unwrap(),
            serde_json::to_string(&session).unwrap(),
            "key order"
        );
    }
}
