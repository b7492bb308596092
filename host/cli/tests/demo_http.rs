//! `sessionkit demo` over plain HTTP: the pages, the comment rule, the test-cookie login flow,
//! logout, escaping, and every bundled engine chosen by `SESSION_ENGINE` alone.

mod demo_support;

use demo_support::{Demo, ENGINES, Visitor, element_text, http, missing_engine};

/// The key of a deletion `Set-Cookie` for `sessionid`.
const DELETION: &str =
    "sessionid=\"\"; expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0; Path=/; SameSite=Lax";

/// Runs `check` on a demo started for `engine`, or prints why it is skipped.
fn on_engine(engine: &str, check: impl FnOnce(&Demo)) {
    if let Some(reason) = missing_engine(engine) {
        println!("skipped {engine}: {reason}");
        return;
    }
    let demo = Demo::start(engine);
    check(&demo);
}

/// The comment flow on one demo: one comment per session, shown (escaped) on the start page.
fn comment_flow(demo: &Demo) {
    let mut visitor = Visitor::new(demo);
    let page = visitor.get("/");
    assert_eq!(page.status, 200);
    assert_eq!(
        element_text(&page.body, "session-key").as_deref(),
        Some("none")
    );
    assert_eq!(
        element_text(&page.body, "engine").as_deref(),
        Some(demo.engine.as_str())
    );
    assert!(
        page.header_all("set-cookie").is_empty(),
        "a visit alone stores nothing"
    );

    let comment = "Hello <b>world</b> & \"friends\"";
    let answer = visitor.post("/comment", &[("comment", comment)]);
    assert_eq!(answer.status, 200);
    assert_eq!(
        element_text(&answer.body, "message").as_deref(),
        Some("Thanks for your comment!")
    );
    let key = visitor
        .session_key()
        .expect("the comment started a session");
    assert_eq!(answer.header("vary"), Some("Cookie"));
    assert_eq!(answer.header("cache-control"), Some("private"));

    let page = visitor.get("/");
    assert_eq!(element_text(&page.body, "session-key"), Some(key.clone()));
    assert!(
        page.body
            .contains("Hello &lt;b&gt;world&lt;/b&gt; &amp; \\&quot;friends\\&quot;")
    );
    assert!(!page.body.contains("<b>world"), "the comment is escaped");
    let contents = element_text(&page.body, "contents").expect("contents");
    let decoded: serde_json::Value = serde_json::from_str(&contents).expect("contents are JSON");
    assert_eq!(decoded["has_commented"], serde_json::json!(true));
    assert_eq!(decoded["comment"], serde_json::json!(comment));
    assert!(element_text(&page.body, "expiry").is_some_and(|e| e.ends_with(" seconds)")));

    let again = visitor.post("/comment", &[("comment", "second")]);
    assert_eq!(
        element_text(&again.body, "message").as_deref(),
        Some("You've already commented.")
    );
}

/// The login flow: test cookie, wrong password, right password (new key), logout.
fn login_flow(demo: &Demo) {
    let mut visitor = Visitor::new(demo);
    let form = visitor.get("/login");
    assert_eq!(form.status, 200);
    assert!(form.body.contains("name=\"username\"") && form.body.contains("name=\"password\""));
    let test_cookie_key = visitor
        .session_key()
        .expect("the login form sets the test cookie");

    let wrong = visitor.post(
        "/login",
        &[("username", "alice"), ("password", "looking-glass")],
    );
    assert_eq!(
        element_text(&wrong.body, "message").as_deref(),
        Some("Your username and password didn't match.")
    );
    let right = visitor.post(
        "/login",
        &[("username", "alice"), ("password", "wonderland")],
    );
    assert_eq!(
        element_text(&right.body, "message").as_deref(),
        Some("You're logged in.")
    );
    let logged_in_key = visitor.session_key().expect("still a session");
    assert_ne!(logged_in_key, test_cookie_key, "login cycles the key");

    let page = visitor.get("/");
    assert_eq!(
        element_text(&page.body, "who").as_deref(),
        Some("Logged in as alice.")
    );
    let contents = element_text(&page.body, "contents").expect("contents");
    let decoded: serde_json::Value = serde_json::from_str(&contents).expect("JSON");
    assert_eq!(
        decoded["_auth_user_id"],
        serde_json::json!("1"),
        "stored as a string, like Django"
    );
    assert!(
        decoded.get("testcookie").is_none(),
        "the test cookie was removed"
    );

    let out = visitor.post("/logout", &[]);
    assert_eq!(
        element_text(&out.body, "message").as_deref(),
        Some("You're logged out.")
    );
    assert_eq!(out.header_all("set-cookie"), [DELETION]);
    assert_eq!(visitor.session_key(), None);

    // The logged-out key is dead where the engine can revoke it (a signed cookie cannot be).
    if demo.engine != "signed_cookies" {
        let cookie = format!("sessionid={logged_in_key}");
        let replay = http(demo.addr, "GET", "/", &[("Cookie", &cookie)], None);
        assert_eq!(
            element_text(&replay.body, "session-key").as_deref(),
            Some("none")
        );
        assert_eq!(
            replay.header_all("set-cookie"),
            [DELETION],
            "the stale cookie is deleted"
        );
    }
}

#[test]
fn every_bundled_engine_runs_the_demo_by_setting_alone() {
    for (engine, _) in ENGINES {
        on_engine(engine, |demo| {
            comment_flow(demo);
            login_flow(demo);
        });
    }
}

#[test]
fn default_db_engine_keeps_sessions_in_an_sqlite_file() {
    on_engine("db", |demo| {
        let mut visitor = Visitor::new(demo);
        visitor.post("/comment", &[("comment", "stored")]);
        let file = demo.path().join("sessionkit.sqlite3");
        assert!(file.is_file(), "{} exists", file.display());
    });
}

#[test]
fn login_without_the_test_cookie_asks_to_enable_cookies() {
    on_engine("db", |demo| {
        // A browser that refuses cookies: never sends back what the form page set.
        let form = http(demo.addr, "GET", "/login", &[], None);
        assert_eq!(
            form.header_all("set-cookie").len(),
            1,
            "the form sets the test cookie"
        );
        let body = demo_support::form(&[("username", "alice"), ("password", "wonderland")]);
        let answer = http(
            demo.addr,
            "POST",
            "/login",
            &[],
            Some(("application/x-www-form-urlencoded", &body)),
        );
        assert_eq!(
            element_text(&answer.body, "message").as_deref(),
            Some("Please enable cookies and try again.")
        );
    });
}

#[test]
fn overlong_comment_is_refused_and_nothing_is_stored() {
    on_engine("db", |demo| {
        let mut visitor = Visitor::new(demo);
        let long = "x".repeat(501);
        let answer = visitor.post("/comment", &[("comment", &long)]);
        assert_eq!(answer.status, 400);
        assert!(answer.body.contains("limited to 500 characters"));
        assert_eq!(visitor.session_key(), None);
    });
}

#[test]
fn missing_secret_key_is_a_clear_startup_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_sessionkit"))
        .args(["demo", "--addr", "127.0.0.1:0"])
        .current_dir(dir.path())
        .env_remove("SECRET_KEY")
        .env_remove("SESSIONKIT_SETTINGS")
        .output()
        .expect("runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("SECRET_KEY"), "{stderr}");
}
