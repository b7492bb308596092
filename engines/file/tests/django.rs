//! Interoperability with Django 5.2's own file backend: files each side writes, the other reads,
//! with the same expiry judgement. Django runs from the testkit's virtualenv.

mod common;

use chrono::{TimeDelta, Utc};
use serde_json::{Value, json};
use sessionkit_codec::time::{from_datetime, parse_isoformat};
use sessionkit_engine_file::{FileConfig, FileStore};
use sessionkit_sdk::SessionStore;

use common::{Fixture, SECRET, key, mtime_utc};

const IMPORTS: &str = r#"
import datetime, json
from django.contrib.sessions.backends.file import SessionStore
from django.utils import timezone
"#;

/// Runs `script` in Django configured for the file backend in `dir`; returns its JSON output.
fn run_django(dir: &std::path::Path, script: &str) -> Value {
    let dir = dir.to_str().expect("a UTF-8 temp dir");
    let settings = [("SECRET_KEY", SECRET), ("SESSION_FILE_PATH", dir)];
    let output = sessionkit_testkit::run_django(&format!("{IMPORTS}\n{script}"), &settings);
    serde_json::from_str(&output).expect("the script prints JSON")
}

#[test]
fn files_django_writes_load_here_with_the_same_data_and_expiry() {
    let fixture = Fixture::new();
    let keys = run_django(
        fixture.dir.path(),
        r#"
out = {}
def make(name, data, expiry=None):
    s = SessionStore()
    s.update(data)
    if expiry is not None:
        s.set_expiry(expiry)
    s.save()
    out[name] = s.session_key
make("plain", {"user": 1, "name": "åsa"})
make("int", {"user": 2}, 3600)
make("iso", {"user": 3}, timezone.now() + datetime.timedelta(days=3))
make("iso_past", {"user": 4}, timezone.now() - datetime.timedelta(seconds=5))
make("browser", {"user": 5}, 0)
print(json.dumps(out))
"#,
    );
    let key_of = |name: &str| keys[name].as_str().unwrap().to_owned();
    let mtime_of = |name: &str| mtime_utc(&fixture.path(&key_of(name)));
    let age = TimeDelta::seconds(fixture.cookie_age);

    let plain = fixture
        .store
        .load(&key_of("plain"))
        .unwrap()
        .expect("plain loads");
    assert_eq!(
        Value::Object(fixture.decode(&plain)),
        json!({"user": 1, "name": "åsa"})
    );
    assert_eq!(plain.expire_date, from_datetime(mtime_of("plain") + age));

    let int = fixture
        .store
        .load(&key_of("int"))
        .unwrap()
        .expect("int loads");
    assert_eq!(
        int.expire_date,
        from_datetime(mtime_of("int") + TimeDelta::seconds(3600))
    );

    let iso = fixture
        .store
        .load(&key_of("iso"))
        .unwrap()
        .expect("iso loads");
    let stored = fixture.decode(&iso)["_session_expiry"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        iso.expire_date,
        from_datetime(parse_isoformat(&stored).unwrap())
    );

    assert_eq!(fixture.store.load(&key_of("iso_past")).unwrap(), None);
    assert!(
        !fixture.path(&key_of("iso_past")).exists(),
        "expired file removed"
    );

    let browser = fixture
        .store
        .load(&key_of("browser"))
        .unwrap()
        .expect("browser-session loads");
    assert_eq!(
        browser.expire_date,
        from_datetime(mtime_of("browser") + age)
    );
}

#[test]
fn files_written_here_load_in_django_and_expire_there_too() {
    let fixture = Fixture::new();
    let live = [
        (key(1), json!({"user": 7, "_session_expiry": 600})),
        (key(2), json!({"plain": true, "list": [1, 2, "three"]})),
    ];
    for (k, session) in &live {
        fixture
            .store
            .create(fixture.write(k, session.clone()))
            .unwrap();
    }
    // Saved fifteen days ago by the host's clock: the mtime says so, and Django agrees.
    let old = fixture.write_at(
        &key(3),
        json!({"stale": true}),
        Utc::now() - TimeDelta::days(15),
    );
    fixture.store.create(old).unwrap();
    // Updated after creation: Django reads the replaced content.
    fixture
        .store
        .save(fixture.write(&key(2), json!({"plain": false})))
        .unwrap();

    let loaded = run_django(
        fixture.dir.path(),
        &format!(
            r#"
out = {{}}
for k in {keys:?}:
    s = SessionStore(k)
    out[k] = s.load()
print(json.dumps(out))
"#,
            keys = [key(1), key(2), key(3)]
        ),
    );
    assert_eq!(loaded[key(1)], json!({"user": 7, "_session_expiry": 600}));
    assert_eq!(loaded[key(2)], json!({"plain": false}));
    assert_eq!(
        loaded[key(3)],
        json!({}),
        "Django judged it expired from the mtime"
    );

    // Reopening here sees the same files.
    let again = FileStore::open(&FileConfig::new(fixture.dir.path(), SECRET)).unwrap();
    assert!(again.load(&key(1)).unwrap().is_some());
}
