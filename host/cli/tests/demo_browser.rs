//! `sessionkit demo` in a real browser: headless Chromium driven through chromedriver's
//! WebDriver HTTP API, for each engine of [`BROWSER_ENGINES`]: comment, login, logout, and the
//! test-cookie flow with cookies disabled.
//!
//! Needs Debian's `chromium` and `chromium-driver`. Without them the test prints why it skipped,
//! so `cargo test --workspace` passes on a fresh machine; under CI (`CI` set, as `.ci/run`
//! runs, which installs both) their absence fails the test instead.

mod demo_support;

use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use demo_support::{Demo, START_TIMEOUT, http, missing_engine};
use serde_json::{Value, json};

/// The engines the browser test runs the demo on (one line each; a missing library skips).
const BROWSER_ENGINES: &[&str] = &["db", "signed_cookies"];

/// Chromium's flags: headless, no sandbox (root in a container), and nothing that talks to the
/// network on its own.
const CHROMIUM_FLAGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
];

/// Where Debian installs the two programs.
fn find_program(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([
            PathBuf::from("/usr/bin"),
            PathBuf::from("/usr/lib/chromium"),
        ])
        .flat_map(|dir| names.iter().map(move |name| dir.join(name)))
        .find(|candidate| candidate.is_file())
}

/// A running chromedriver, killed when dropped.
struct Driver {
    child: Child,
    addr: SocketAddr,
}

impl Drop for Driver {
    fn drop(&mut self) {
        // Our own child, by its handle.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Driver {
    fn start(chromedriver: &PathBuf) -> Driver {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        let child = Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let driver = Driver {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
        };
        let started = Instant::now();
        loop {
            let ready = std::net::TcpStream::connect(driver.addr).is_ok()
                && driver.call("GET", "/status", None)["value"]["ready"] == json!(true);
            if ready {
                return driver;
            }
            assert!(
                started.elapsed() < START_TIMEOUT,
                "chromedriver did not become ready"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// One WebDriver command; returns the JSON answer (errors are in `value.error`).
    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let body = body.map(|b| b.to_string().into_bytes());
        let response = http(
            self.addr,
            method,
            path,
            &[],
            body.as_deref()
                .map(|b| ("application/json; charset=utf-8", b)),
        );
        serde_json::from_str(&response.body).unwrap_or_else(|e| {
            panic!(
                "chromedriver answered {}: {e}: {}",
                response.status, response.body
            )
        })
    }

    /// A new browser with a fresh profile; `block_cookies` refuses every cookie.
    fn browser(&self, chromium: &PathBuf, block_cookies: bool) -> Browser<'_> {
        let profile = tempfile::tempdir().expect("a fresh user-data-dir");
        let mut args: Vec<String> = CHROMIUM_FLAGS.iter().map(|f| (*f).to_owned()).collect();
        args.push(format!("--user-data-dir={}", profile.path().display()));
        let mut options = json!({"binary": chromium, "args": args});
        if block_cookies {
            options["prefs"] = json!({"profile.default_content_setting_values.cookies": 2});
        }
        let answer = self.call(
            "POST",
            "/session",
            Some(json!({"capabilities": {"alwaysMatch": {
                "browserName": "chrome",
                "goog:chromeOptions": options,
            }}})),
        );
        let id = answer["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no WebDriver session: {answer}"))
            .to_owned();
        Browser {
            driver: self,
            id,
            _profile: profile,
        }
    }
}

/// One WebDriver session (one browser), closed when dropped.
struct Browser<'a> {
    driver: &'a Driver,
    id: String,
    _profile: tempfile::TempDir,
}

impl Drop for Browser<'_> {
    fn drop(&mut self) {
        self.driver
            .call("DELETE", &format!("/session/{}", self.id), None);
    }
}

impl Browser<'_> {
    fn command(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let answer = self
            .driver
            .call(method, &format!("/session/{}{path}", self.id), body);
        assert!(
            answer["value"]["error"].is_null(),
            "WebDriver {method} {path}: {answer}"
        );
        answer["value"].clone()
    }

    fn open(&self, url: &str) {
        self.command("POST", "/url", Some(json!({"url": url})));
    }

    /// The element matching `css`, waiting for it while a page (after a form post) loads.
    fn element(&self, css: &str) -> String {
        let started = Instant::now();
        loop {
            let answer = self.driver.call(
                "POST",
                &format!("/session/{}/element", self.id),
                Some(json!({"using": "css selector", "value": css})),
            );
            let value = &answer["value"];
            let found = value
                .as_object()
                .and_then(|o| o.values().next())
                .and_then(Value::as_str);
            if let Some(id) = found.filter(|_| value["error"].is_null()) {
                return id.to_owned();
            }
            if started.elapsed() > START_TIMEOUT {
                let source = self.command("GET", "/source", None);
                panic!(
                    "no element {css}: {answer}\npage:\n{}",
                    source.as_str().unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn text(&self, css: &str) -> String {
        let id = self.element(css);
        self.command("GET", &format!("/element/{id}/text"), None)
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    fn type_into(&self, css: &str, text: &str) {
        let id = self.element(css);
        self.command(
            "POST",
            &format!("/element/{id}/value"),
            Some(json!({"text": text})),
        );
    }

    fn click(&self, css: &str) {
        let id = self.element(css);
        self.command("POST", &format!("/element/{id}/click"), Some(json!({})));
    }

    /// The value of cookie `name` as the browser holds it.
    fn cookie(&self, name: &str) -> Option<String> {
        let cookies = self.command("GET", "/cookie", None);
        cookies.as_array().and_then(|all| {
            all.iter()
                .find(|c| c["name"] == json!(name))
                .and_then(|c| c["value"].as_str())
                .map(str::to_owned)
        })
    }

    fn cookie_count(&self) -> usize {
        self.command("GET", "/cookie", None)
            .as_array()
            .map_or(0, Vec::len)
    }

    /// Submits the login form with these credentials and returns the answer's message.
    fn log_in(&self, demo: &Demo, username: &str, password: &str) -> String {
        self.open(&demo.url("/login"));
        self.type_into("#username", username);
        self.type_into("#password", password);
        self.click("#login");
        self.text("#message")
    }
}

/// Comment, login (wrong then right password), start page, logout, on one engine.
fn drive_demo(driver: &Driver, chromium: &PathBuf, demo: &Demo) {
    let browser = driver.browser(chromium, false);
    browser.open(&demo.url("/"));
    assert_eq!(browser.text("#session-key"), "none");
    assert_eq!(browser.text("#engine"), demo.engine);

    browser.type_into("#comment", "Hello <b>browser</b>");
    browser.click("#post-comment");
    assert_eq!(browser.text("#message"), "Thanks for your comment!");
    let first_key = browser
        .cookie("sessionid")
        .expect("the comment set the session cookie");

    browser.open(&demo.url("/"));
    assert_eq!(browser.text("#session-key"), first_key);
    // Shown as text, not markup: the escaped comment reads back literally.
    assert!(browser.text("#contents").contains("Hello <b>browser</b>"));

    browser.type_into("#comment", "again");
    browser.click("#post-comment");
    assert_eq!(browser.text("#message"), "You've already commented.");

    let wrong = browser.log_in(demo, "alice", "cheshire");
    assert_eq!(wrong, "Your username and password didn't match.");
    let right = browser.log_in(demo, "alice", "wonderland");
    assert_eq!(right, "You're logged in.");
    let logged_in_key = browser
        .cookie("sessionid")
        .expect("logged-in session cookie");
    assert_ne!(logged_in_key, first_key, "login cycles the session key");

    browser.open(&demo.url("/"));
    assert_eq!(browser.text("#who"), "Logged in as alice.");
    assert!(
        browser
            .text("#contents")
            .contains("\"_auth_user_id\": \"1\"")
    );

    browser.click("#logout");
    assert_eq!(browser.text("#message"), "You're logged out.");
    assert_eq!(
        browser.cookie("sessionid"),
        None,
        "logout deleted the cookie"
    );
    browser.open(&demo.url("/"));
    assert_eq!(browser.text("#session-key"), "none");
    assert_eq!(browser.text("#who"), "Nobody is logged in.");
}

/// With cookies blocked, the test cookie never comes back, so login asks to enable cookies.
fn drive_without_cookies(driver: &Driver, chromium: &PathBuf, demo: &Demo) {
    let browser = driver.browser(chromium, true);
    let answer = browser.log_in(demo, "alice", "wonderland");
    assert_eq!(answer, "Please enable cookies and try again.");
    assert_eq!(browser.cookie_count(), 0, "the browser kept no cookie");
}

#[test]
fn demo_works_in_headless_chromium() {
    let chromium = find_program(&["chromium", "chromium-browser"]);
    let chromedriver = find_program(&["chromedriver"]);
    let (Some(chromium), Some(chromedriver)) = (chromium, chromedriver) else {
        let reason = "the browser test needs Chromium and chromedriver: install them with \
                      `apt-get update && apt-get install -y chromium chromium-driver`";
        if std::env::var_os("CI").is_some_and(|value| !value.is_empty()) {
            panic!("{reason} (CI is set, so the browser test must run; .ci/run installs them)");
        }
        println!("skipped: {reason}");
        return;
    };
    let driver = Driver::start(&chromedriver);
    for engine in BROWSER_ENGINES {
        if let Some(reason) = missing_engine(engine) {
            println!("skipped {engine}: {reason}");
            continue;
        }
        let demo = Demo::start(engine);
        drive_demo(&driver, &chromium, &demo);
        drive_without_cookies(&driver, &chromium, &demo);
        println!("ok {engine}: comment, login, logout and the cookie-less login in Chromium");
    }
}
