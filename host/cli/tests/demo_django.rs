//! The demo and a Django app share one SQLite file and `SECRET_KEY`: a member logged in through
//! the demo is logged in for a Django view reading the same cookie (Django's
//! `AuthenticationMiddleware` checks `_auth_user_id`, `_auth_user_backend` and the password-bound
//! `_auth_user_hash`), and a member logged in by Django's `login()` is logged in on the demo.

mod demo_support;

use demo_support::{Demo, SECRET, Visitor, element_text, http};
use sessionkit_testkit::run_django;

/// The demo member's stored password hash (host/cli/src/demo/members.rs): Django's `auth_user`
/// row for alice must hold the same string, since the session auth hash is derived from it.
const ALICE_PASSWORD_HASH: &str =
    "pbkdf2_sha256$100000$Wx0vQfJ3mC8kT2nRzL5pYa$5Q6UH1Yq7N47ZZfFEkbVjP4OJyrDRSwEUw4K1jSHGiQ=";

/// Django's side: `migrate`, alice as user 1 with the demo's hash, then the requested action.
const DJANGO: &str = r#"
import os
from django.core.management import call_command
from django.contrib.auth.models import User
from django.contrib.auth import login
from django.contrib.auth.middleware import AuthenticationMiddleware
from django.contrib.sessions.middleware import SessionMiddleware
from django.test import RequestFactory

action = os.environ["ACTION"]
if action == "setup":
    call_command("migrate", verbosity=0)
    User.objects.update_or_create(id=1, defaults={"username": "alice", "password": os.environ["ALICE_HASH"]})
    emit({"users": User.objects.count()})
elif action == "whoami":
    request = RequestFactory().get("/")
    request.COOKIES["sessionid"] = os.environ["COOKIE"]
    SessionMiddleware(lambda r: None).process_request(request)
    AuthenticationMiddleware(lambda r: None).process_request(request)
    emit({"authenticated": request.user.is_authenticated, "username": request.user.get_username()})
elif action == "login":
    request = RequestFactory().post("/")
    SessionMiddleware(lambda r: None).process_request(request)
    login(request, User.objects.get(id=1), backend="django.contrib.auth.backends.ModelBackend")
    request.session.save()
    emit({"cookie": request.session.session_key})
"#;

/// Runs one Django action against the shared database; returns its JSON line.
fn django(db: &std::path::Path, action: &str, cookie: &str) -> serde_json::Value {
    let databases = serde_json::json!({"default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": db.display().to_string(),
    }})
    .to_string();
    let apps =
        r#"["django.contrib.auth", "django.contrib.contenttypes", "django.contrib.sessions"]"#;
    let out = run_django(
        DJANGO,
        &[
            ("SECRET_KEY", SECRET),
            ("DATABASES", &databases),
            ("INSTALLED_APPS", apps),
            ("ACTION", action),
            ("COOKIE", cookie),
            ("ALICE_HASH", ALICE_PASSWORD_HASH),
        ],
    );
    serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("Django printed {out:?}: {e}"))
}

#[test]
fn demo_and_django_share_logins_through_one_sqlite_file() {
    let shared = tempfile::tempdir().unwrap();
    let db = shared.path().join("shared.sqlite3");
    // Django makes the tables first (its migrate refuses a django_session it did not create);
    // the demo's db engine then uses Django's table as it is.
    assert_eq!(django(&db, "setup", "")["users"], 1);
    let url = format!("sqlite://{}", db.display());
    let demo = Demo::start_with("db", &[("SESSION_DB_URL", &url)]);

    // Logged in through the demo → logged in for Django.
    let mut visitor = Visitor::new(&demo);
    visitor.get("/login");
    let answer = visitor.post(
        "/login",
        &[("username", "alice"), ("password", "wonderland")],
    );
    assert_eq!(
        element_text(&answer.body, "message").as_deref(),
        Some("You're logged in.")
    );
    let cookie = visitor
        .session_key()
        .expect("the demo set a session cookie");
    let seen = django(&db, "whoami", &cookie);
    assert_eq!(seen["authenticated"], true, "{seen}");
    assert_eq!(seen["username"], "alice", "{seen}");

    // Logged out through the demo → anonymous for Django.
    visitor.post("/logout", &[]);
    let seen = django(&db, "whoami", &cookie);
    assert_eq!(seen["authenticated"], false, "{seen}");

    // Logged in by Django's login() → logged in on the demo.
    let django_cookie = django(&db, "login", "")["cookie"]
        .as_str()
        .expect("Django saved a session")
        .to_owned();
    let page = http(
        demo.addr,
        "GET",
        "/",
        &[("Cookie", &format!("sessionid={django_cookie}"))],
        None,
    );
    assert_eq!(
        element_text(&page.body, "who").as_deref(),
        Some("Logged in as alice."),
        "{}",
        page.body
    );
}
