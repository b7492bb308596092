//! The demo under hostile clients and forged logins (issue 9, defect 8): half-sent requests are
//! closed after the configured timeouts, connections beyond the limit wait, and a session that
//! names alice without her current `_auth_user_hash` shows nobody logged in and is flushed.

mod demo_support;

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::Duration;

use demo_support::{Demo, SECRET, Visitor, element_text, http};

/// How many half-sent requests of each kind the slowloris test holds open.
const HALF_SENT: usize = 40;

/// How long a test waits for the server to close a connection it should close after about a
/// second: a hang guard, far above the configured timeouts, not a measurement.
const CLOSE_GUARD: Duration = Duration::from_secs(30);

/// Reads until the server closes the connection (or resets it); `Err` if it is still open
/// after `guard`.
fn wait_for_close(stream: &mut TcpStream, guard: Duration) -> Result<Vec<u8>, String> {
    stream.set_read_timeout(Some(guard)).expect("read timeout");
    let mut received = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        match stream.read(&mut buffer) {
            Ok(0) => return Ok(received),
            Ok(n) => received.extend_from_slice(&buffer[..n]),
            Err(error) if error.kind() == ErrorKind::ConnectionReset => return Ok(received),
            Err(error) => {
                return Err(format!(
                    "still open after {guard:?} ({error}); received {:?}",
                    String::from_utf8_lossy(&received)
                ));
            }
        }
    }
}

fn connect_and_send(demo: &Demo, bytes: &[u8]) -> TcpStream {
    let mut stream = TcpStream::connect(demo.addr).expect("connect to the demo");
    stream.write_all(bytes).expect("send the partial request");
    stream
}

#[test]
fn half_sent_headers_and_bodies_are_closed_after_the_configured_timeouts() {
    let demo = Demo::start_with_args(
        "cache",
        &[],
        &["--header-timeout", "1", "--body-timeout", "1"],
    );
    let mut held = Vec::new();
    for _ in 0..HALF_SENT {
        // Headers never finished (no blank line).
        held.push(connect_and_send(
            &demo,
            b"GET / HTTP/1.1\r\nHost: demo\r\nX-Slow: 1\r\n",
        ));
        // Headers done, body promised but only a tenth sent.
        held.push(connect_and_send(
            &demo,
            b"POST /comment HTTP/1.1\r\nHost: demo\r\n\
              Content-Type: application/x-www-form-urlencoded\r\n\
              Content-Length: 100\r\n\r\ncomment=ab",
        ));
    }
    let still_open: Vec<String> = held
        .iter_mut()
        .filter_map(|stream| wait_for_close(stream, CLOSE_GUARD).err())
        .collect();
    assert!(
        still_open.is_empty(),
        "{} of {} half-sent requests were not closed: {:?}",
        still_open.len(),
        held.len(),
        still_open.first()
    );
    // The server is still fine for a well-behaved client.
    let response = http(demo.addr, "GET", "/", &[], None);
    assert_eq!(response.status, 200);
}

#[test]
fn connections_beyond_the_limit_wait_until_one_closes() {
    let demo = Demo::start_with_args(
        "cache",
        &[],
        &["--max-connections", "4", "--header-timeout", "120"],
    );
    let holders: Vec<TcpStream> = (0..4)
        .map(|_| connect_and_send(&demo, b"GET / HTTP/1.1\r\nHost: demo\r\n"))
        .collect();
    // Let the server accept the four and take every permit.
    std::thread::sleep(Duration::from_millis(500));
    let mut fifth = connect_and_send(
        &demo,
        b"GET / HTTP/1.1\r\nHost: demo\r\nConnection: close\r\n\r\n",
    );
    fifth
        .set_read_timeout(Some(Duration::from_secs(2)))
        .expect("read timeout");
    let mut byte = [0u8; 1];
    match fifth.read(&mut byte) {
        Err(error) if matches!(error.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
        other => panic!("the fifth connection was served while four were held: {other:?}"),
    }
    drop(holders);
    let response = wait_for_close(&mut fifth, CLOSE_GUARD).expect("served, then closed");
    let text = String::from_utf8_lossy(&response);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
}

/// `sessionkit session <args>` on the demo's own store (the `db` engine's SQLite file in its
/// working directory).
fn session_cli(demo: &Demo, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_sessionkit"))
        .arg("session")
        .args(args)
        .current_dir(demo.path())
        .env_remove("SESSIONKIT_SETTINGS")
        .env("SESSIONKIT_ENGINE_PATH", sessionkit_testkit::plugin_dir())
        .env("SECRET_KEY", SECRET)
        .env("SESSION_ENGINE", "db")
        .stdin(Stdio::null())
        .output()
        .expect("the sessionkit binary runs")
}

/// A session in the demo's store holding `data`; its key.
fn stored_session(demo: &Demo, data: &serde_json::Value) -> String {
    let output = session_cli(demo, &["create", "--data", &data.to_string()]);
    assert!(output.status.success(), "{output:?}");
    String::from_utf8(output.stdout)
        .expect("the command prints UTF-8")
        .trim()
        .to_owned()
}

fn who(demo: &Demo, key: &str) -> Option<String> {
    let cookie = format!("sessionid={key}");
    let page = http(demo.addr, "GET", "/", &[("Cookie", &cookie)], None);
    assert_eq!(page.status, 200, "{page:?}");
    element_text(&page.body, "who")
}

#[test]
fn alice_is_logged_in_only_with_her_current_session_auth_hash() {
    let demo = Demo::start("db");
    // The real login stores the right hash: alice is shown.
    let mut visitor = Visitor::new(&demo);
    visitor.get("/login");
    visitor.post(
        "/login",
        &[("username", "alice"), ("password", "wonderland")],
    );
    let key = visitor.session_key().expect("logged in");
    assert_eq!(who(&demo, &key).as_deref(), Some("Logged in as alice."));

    let good_hash = session_cli(&demo, &["show", &key]);
    let shown: serde_json::Value = serde_json::from_slice(&good_hash.stdout).unwrap();
    let hash = shown["data"]["_auth_user_hash"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut wrong = hash.clone();
    wrong.replace_range(..1, if hash.starts_with('0') { "1" } else { "0" });

    for (case, data) in [
        (
            "a wrong hash",
            serde_json::json!({"_auth_user_id": "1", "_auth_user_hash": wrong}),
        ),
        ("no hash", serde_json::json!({"_auth_user_id": "1"})),
        (
            "a non-string hash",
            serde_json::json!({"_auth_user_id": "1", "_auth_user_hash": 7}),
        ),
    ] {
        let forged = stored_session(&demo, &data);
        let shown = who(&demo, &forged);
        assert!(
            shown.as_deref().is_none_or(|text| !text.contains("alice")),
            "{case}: {shown:?}"
        );
        // Flushed, as Django's get_user does: the forged session no longer exists.
        let after = session_cli(&demo, &["show", &forged]);
        assert_eq!(after.status.code(), Some(1), "{case}: {after:?}");
    }
    // The same data with the right hash, stored the same way, is alice: the check, not the way
    // the session was made, decides.
    let genuine = stored_session(
        &demo,
        &serde_json::json!({"_auth_user_id": "1", "_auth_user_hash": hash}),
    );
    assert_eq!(who(&demo, &genuine).as_deref(), Some("Logged in as alice."));
}
