//! Real Django 5.2 and this engine on one SQLite file: Django's documented `CustomSession`
//! model (`AbstractBaseSession` + `account_id`, its `SessionStore` filling the column from
//! `_auth_user_id`) with `db_table` pointing at the engine's table.
//!
//! Both directions: Django writes and sessionkit lists by account (and logs the account out
//! everywhere, which Django then sees), and sessionkit writes and Django's
//! `CustomSession.objects.filter(account_id=42)` finds the rows and decodes them. The table made
//! by each side is checked to be exactly what the other would have made.

// A test crate: its helpers unwrap like its tests do (a panic is the failure report), which
// clippy's allow-unwrap-in-tests cannot see outside `#[test]` functions.
#![allow(clippy::unwrap_used)]

use std::{collections::BTreeMap, path::Path};

use serde_json::{Value, json};
use sessionkit_codec::{
    SessionMap,
    signing::SessionCodec,
    time::{from_datetime, isoformat, parse_isoformat, to_datetime},
};
use sessionkit_engine_account_db::{AccountDbEngine, AccountDbStore, INFO};
use sessionkit_sdk::{Engine, SessionRecord, SessionStore, SessionWrite, Timestamp};
use sessionkit_testkit::run_django;

const SECRET_KEY: &str = "account-db-django-interop-secret";
const TABLE: &str = "acct_sessions";

/// Django's documented custom session model and store (docs "Extending database-backed
/// session engines"), in an app labelled `acct`, on the table named by `sk_table`.
const CUSTOM_SESSION: &str = r#"
import os
from django.contrib.sessions.backends.db import SessionStore as DBStore
from django.contrib.sessions.base_session import AbstractBaseSession
from django.db import connection, models


class CustomSession(AbstractBaseSession):
    account_id = models.IntegerField(null=True, db_index=True)

    @classmethod
    def get_session_store_class(cls):
        return SessionStore

    class Meta:
        app_label = "acct"
        db_table = os.environ["sk_table"]


class SessionStore(DBStore):
    @classmethod
    def get_model_class(cls):
        return CustomSession

    def create_model_instance(self, data):
        obj = super().create_model_instance(data)
        try:
            account_id = int(data.get("_auth_user_id"))
        except (ValueError, TypeError):
            account_id = None
        obj.account_id = account_id
        return obj


def django_ddl():
    """What `migrate` runs for the model, without running it."""
    with connection.schema_editor(collect_sql=True) as editor:
        editor.create_model(CustomSession)
    return [statement.rstrip(";") for statement in editor.collected_sql]


def schema():
    """The table and its indexes as SQLite keeps them."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT sql FROM sqlite_master WHERE tbl_name = %s AND sql IS NOT NULL ORDER BY name",
            [os.environ["sk_table"]],
        )
        return [row[0] for row in cursor.fetchall()]
"#;

/// Runs `script` after the model definitions, with Django on the SQLite file `db`.
fn django(db: &Path, script: &str, input: &[(&str, &str)]) -> Value {
    let databases = json!({"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": db}});
    let databases = databases.to_string();
    let mut env = vec![
        ("SECRET_KEY", SECRET_KEY),
        ("DATABASES", databases.as_str()),
        ("sk_table", TABLE),
    ];
    env.extend_from_slice(input);
    let out = run_django(&format!("{CUSTOM_SESSION}\n{script}"), &env);
    let last = out.lines().last().unwrap_or_default();
    serde_json::from_str(last).unwrap_or_else(|e| panic!("Django printed {out:?}: {e}"))
}

fn open_store(db: &Path) -> AccountDbStore {
    AccountDbEngine::open(
        &json!({
            "SECRET_KEY": SECRET_KEY,
            "SESSION_DB_URL": format!("sqlite://{}", db.display()),
            "SESSION_DB_TABLE": TABLE,
        })
        .to_string(),
    )
    .expect("the engine opens the shared file")
}

/// The table's and indexes' SQL as SQLite keeps it, read directly.
fn sqlite_schema(db: &Path) -> Vec<String> {
    let conn = rusqlite::Connection::open(db).unwrap();
    let mut stmt = conn
        .prepare(
            "SELECT sql FROM sqlite_master WHERE tbl_name = ?1 AND sql IS NOT NULL ORDER BY name",
        )
        .unwrap();
    stmt.query_map([TABLE], |row| row.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

fn codec() -> SessionCodec {
    SessionCodec::new(INFO.salt.as_str(), SECRET_KEY.as_bytes(), &[])
}

/// `session_data` decoded as Django's `SessionStore` would.
fn decoded(record: &SessionRecord) -> Value {
    let now = Timestamp::now().as_secs();
    Value::Object(
        codec()
            .decode(record.session_data.as_str(), None, now)
            .expect("the row is signed with Django's salt and key"),
    )
}

fn keys(records: &[SessionRecord]) -> Vec<String> {
    let mut keys: Vec<String> = records.iter().map(|r| r.session_key.to_string()).collect();
    keys.sort();
    keys
}

fn sorted(value: &Value) -> Vec<String> {
    let mut keys: Vec<String> = value
        .as_array()
        .expect("a list of keys")
        .iter()
        .map(|k| k.as_str().expect("a key").to_owned())
        .collect();
    keys.sort();
    keys
}

/// Stores `data` as the host would: signed with Django's format, plus the plain JSON.
fn create(store: &AccountDbStore, key: &str, data: Value, expire: Timestamp) {
    let Value::Object(map) = data else {
        panic!("session data is an object")
    };
    let map: SessionMap = map;
    let encoded = codec()
        .encode(&map, Timestamp::now().as_secs())
        .expect("encodable");
    store
        .create(SessionWrite::new(
            SessionRecord::new(key, encoded.session_data, expire),
            encoded.session_json,
        ))
        .expect("created");
}

#[test]
fn sessions_django_writes_for_account_42_are_listed_by_sessionkit() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("shared.sqlite3");

    // Django makes the table (what `migrate` runs) and logs account 42 in on two devices.
    let made = django(
        &db,
        r#"
with connection.schema_editor() as editor:
    editor.create_model(CustomSession)

def login(user, **extra):
    s = SessionStore()
    s["_auth_user_id"] = user
    s["_auth_user_backend"] = "django.contrib.auth.backends.ModelBackend"
    s.update(extra)
    s.save()
    return s

phone = login("42", cart=[1, 2], name="Zo\u00eb")
laptop = login("42")
laptop.set_expiry(600)
laptop.save()
other = login("7")
anonymous = SessionStore()
anonymous["theme"] = "dark"
anonymous.save()
emit({
    "ddl": django_ddl(),
    "schema": schema(),
    "k42": [phone.session_key, laptop.session_key],
    "k7": other.session_key,
    "expire": {
        s.session_key: CustomSession.objects.get(pk=s.session_key).expire_date.isoformat()
        for s in (phone, laptop)
    },
    "account_of_anonymous": CustomSession.objects.get(pk=anonymous.session_key).account_id,
})
"#,
        &[],
    );
    let ddl: Vec<String> = serde_json::from_value(made["ddl"].clone()).unwrap();
    assert_eq!(made["account_of_anonymous"], Value::Null);

    // sessionkit opens Django's table as is: its CREATE … IF NOT EXISTS are all no-ops.
    let before = sqlite_schema(&db);
    let store = open_store(&db);
    assert_eq!(sqlite_schema(&db), before, "opening altered Django's table");
    let mut django_made = ddl.clone();
    django_made.sort_by_key(|sql| sql.split('"').nth(1).map(str::to_owned));
    assert_eq!(before, django_made, "the table is what migrate makes");

    let listed = store.sessions_of_account(42).unwrap();
    assert_eq!(keys(&listed), sorted(&made["k42"]));
    let by_key: BTreeMap<String, &SessionRecord> = listed
        .iter()
        .map(|r| (r.session_key.to_string(), r))
        .collect();
    let phone_key = made["k42"][0].as_str().unwrap();
    let laptop_key = made["k42"][1].as_str().unwrap();
    assert_eq!(
        decoded(by_key[phone_key]),
        json!({
            "_auth_user_id": "42",
            "_auth_user_backend": "django.contrib.auth.backends.ModelBackend",
            "cart": [1, 2],
            "name": "Zoë",
        })
    );
    assert_eq!(decoded(by_key[laptop_key])["_session_expiry"], json!(600));
    for key in [phone_key, laptop_key] {
        let django_expiry = made["expire"][key].as_str().unwrap();
        assert_eq!(
            isoformat(to_datetime(by_key[key].expire_date)),
            django_expiry,
            "expire_date of {key}"
        );
    }
    // Newest expiry first: the phone (two weeks) before the laptop (ten minutes).
    assert_eq!(keys(&listed[..1]), [phone_key.to_owned()]);
    assert_eq!(
        keys(&store.sessions_of_account(7).unwrap()),
        [made["k7"].as_str().unwrap().to_owned()]
    );

    // "Log out my other devices" from the phone, in sessionkit; Django sees the result.
    assert_eq!(
        store
            .delete_sessions_of_account(42, Some(phone_key))
            .unwrap(),
        1
    );
    let seen = django(
        &db,
        r#"
emit({
    "k42": list(CustomSession.objects.filter(account_id=42).values_list("session_key", flat=True)),
    "laptop": SessionStore(os.environ["sk_laptop"]).load(),
    "phone": SessionStore(os.environ["sk_phone"]).load(),
})
"#,
        &[("sk_laptop", laptop_key), ("sk_phone", phone_key)],
    );
    assert_eq!(seen["k42"], json!([phone_key]));
    assert_eq!(seen["laptop"], json!({}), "the logged-out device is empty");
    assert_eq!(seen["phone"]["_auth_user_id"], json!("42"));
}

#[test]
fn sessions_sessionkit_writes_for_account_42_are_found_and_decoded_by_django() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("shared.sqlite3");

    // sessionkit makes the table and logs account 42 in on two devices.
    let store = open_store(&db);
    let (phone, laptop, other, anonymous) = (
        "phone00000000000000000000000042a",
        "laptop0000000000000000000000042b",
        "other00000000000000000000000043c",
        "anonymous000000000000000000000dd",
    );
    let in_a_day = Timestamp::from_micros(Timestamp::now().micros + 86_400_000_000 + 123_456);
    let in_an_hour = Timestamp::from_secs(Timestamp::now().as_secs() + 3600);
    let phone_data = json!({
        "_auth_user_id": "42",
        "_auth_user_backend": "django.contrib.auth.backends.ModelBackend",
        "cart": {"items": [1, 2, 3]},
        "name": "Zoë",
    });
    create(&store, phone, phone_data.clone(), in_a_day);
    create(&store, laptop, json!({"_auth_user_id": "42"}), in_an_hour);
    create(&store, other, json!({"_auth_user_id": "43"}), in_an_hour);
    create(&store, anonymous, json!({"theme": "dark"}), in_an_hour);

    let seen = django(
        &db,
        r#"
rows = CustomSession.objects.filter(account_id=42).order_by("session_key")
emit({
    "ddl": sorted(django_ddl()),
    "schema": sorted(schema()),
    "rows": [
        {"key": r.session_key, "data": r.get_decoded(), "expire": r.expire_date.isoformat()}
        for r in rows
    ],
    "loaded": SessionStore(os.environ["sk_phone"]).load(),
    "account_43": list(CustomSession.objects.filter(account_id=43).values_list("session_key", flat=True)),
    "unindexed": list(CustomSession.objects.filter(account_id=None).values_list("session_key", flat=True)),
})

# Django's test_extra_session_field: pop _auth_user_id, save, the column is NULL.
s = SessionStore(os.environ["sk_laptop"])
s.pop("_auth_user_id")
s.save()
"#,
        &[("sk_phone", phone), ("sk_laptop", laptop)],
    );
    assert_eq!(
        seen["schema"], seen["ddl"],
        "the table sessionkit made is what migrate would make"
    );
    let rows = seen["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!(rows[0]["key"], json!(laptop));
    assert_eq!(rows[0]["data"], json!({"_auth_user_id": "42"}));
    assert_eq!(rows[1]["key"], json!(phone));
    assert_eq!(rows[1]["data"], phone_data);
    let expire = parse_isoformat(rows[1]["expire"].as_str().unwrap()).unwrap();
    assert_eq!(from_datetime(expire), in_a_day, "microseconds survive");
    assert_eq!(seen["loaded"], phone_data);
    assert_eq!(seen["account_43"], json!([other]));
    assert_eq!(seen["unindexed"], json!([anonymous]));

    // Django's save recomputed the column: the laptop left account 42's index.
    assert_eq!(
        keys(&store.sessions_of_account(42).unwrap()),
        [phone.to_owned()]
    );
    let laptop_now = store.load(laptop).unwrap().expect("still a live session");
    assert_eq!(decoded(&laptop_now), json!({}));
}
