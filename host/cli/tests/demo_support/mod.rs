//! Shared by the demo tests: start `sessionkit demo` on a free port for an engine, a tiny HTTP/1.1
//! client (the demo and chromedriver only ever talk over loopback), and a cookie jar.

#![allow(dead_code)] // each test binary uses a different part

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// The bundled engines the demo is run on, with the settings each needs beyond the defaults
/// (relative paths are inside the demo's fresh working directory). Adding an engine is one
/// line; an engine whose library is not built is skipped with a printed reason.
pub(crate) const ENGINES: &[(&str, &[(&str, &str)])] = &[
    // The default: `db` on the embedded SQLite file `sessionkit.sqlite3` in the working dir.
    ("db", &[]),
    ("cache", &[]),
    ("file", &[("SESSION_FILE_PATH", "sessions")]),
    ("cached_db", &[]),
    ("signed_cookies", &[]),
    ("account_db", &[]),
];

/// How long to wait for the demo or chromedriver to start before giving up (a hang guard,
/// not a measurement).
pub(crate) const START_TIMEOUT: Duration = Duration::from_secs(60);

/// The secret the demo runs with in tests.
pub(crate) const SECRET: &str = "demo-test-secret-key-not-for-production";

/// A running `sessionkit demo`, killed when dropped.
pub(crate) struct Demo {
    child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its working directory (holds the SQLite file or session files).
    pub dir: tempfile::TempDir,
    /// The engine it runs on.
    pub engine: String,
}

impl Drop for Demo {
    fn drop(&mut self) {
        // Our own child, by its handle; it may have exited already.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The settings of `engine` from [`ENGINES`].
pub(crate) fn engine_settings(engine: &str) -> &'static [(&'static str, &'static str)] {
    ENGINES
        .iter()
        .find(|(name, _)| *name == engine)
        .map(|(_, settings)| *settings)
        .unwrap_or(&[])
}

/// Why an engine cannot be run here, if it cannot: its plugin library is not built.
pub(crate) fn missing_engine(engine: &str) -> Option<String> {
    let library = sessionkit_testkit::engine_library(engine);
    (!library.exists()).then(|| {
        format!(
            "the {engine} engine library {} is not built",
            library.display()
        )
    })
}

impl Demo {
    /// Starts the demo on `127.0.0.1:0` with `SESSION_ENGINE=engine` in a fresh directory, and
    /// waits for its `listening on` line.
    ///
    /// # Panics
    ///
    /// If the binary cannot start or does not say where it listens.
    pub(crate) fn start(engine: &str) -> Demo {
        Demo::start_with(engine, &[])
    }

    /// [`Demo::start`] with more settings as environment variables (they win over the engine's).
    ///
    /// # Panics
    ///
    /// As [`Demo::start`].
    pub(crate) fn start_with(engine: &str, extra: &[(&str, &str)]) -> Demo {
        Demo::start_with_args(engine, extra, &[])
    }

    /// [`Demo::start_with`] with more command-line arguments for `sessionkit demo`.
    ///
    /// # Panics
    ///
    /// As [`Demo::start`].
    pub(crate) fn start_with_args(engine: &str, extra: &[(&str, &str)], args: &[&str]) -> Demo {
        let dir = tempfile::tempdir().expect("a working directory for the demo");
        let mut command = Command::new(env!("CARGO_BIN_EXE_sessionkit"));
        command
            .args(["demo", "--addr", "127.0.0.1:0"])
            .args(args)
            .current_dir(dir.path())
            .env_remove("SESSIONKIT_SETTINGS")
            .env("SESSIONKIT_ENGINE_PATH", sessionkit_testkit::plugin_dir())
            .env("SECRET_KEY", SECRET)
            .env("SESSION_ENGINE", engine)
            .env("SESSIONKIT_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        for (name, value) in engine_settings(engine) {
            let value = if *name == "SESSION_FILE_PATH" {
                let path = dir.path().join(value);
                std::fs::create_dir_all(&path).expect("session directory");
                path.display().to_string()
            } else {
                (*value).to_owned()
            };
            command.env(name, value);
        }
        for (name, value) in extra {
            command.env(name, value);
        }
        let mut child = command.spawn().expect("the sessionkit binary starts");
        let stdout = child.stdout.take().expect("stdout is piped");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            let first = lines.next();
            let _ = tx.send(first);
            // Keep draining so the demo never blocks on a full pipe.
            for _ in lines {}
        });
        let line = match rx.recv_timeout(START_TIMEOUT) {
            Ok(Some(Ok(line))) => line,
            other => {
                let _ = child.kill();
                let status = child.wait();
                panic!("sessionkit demo ({engine}) did not start: {other:?}, exit {status:?}");
            }
        };
        let addr = line
            .strip_prefix("listening on http://")
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|addr| addr.parse().ok())
            .unwrap_or_else(|| panic!("unexpected first line from the demo: {line:?}"));
        Demo {
            child,
            addr,
            dir,
            engine: engine.to_owned(),
        }
    }

    /// `http://<addr><path>`.
    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The demo's working directory.
    pub(crate) fn path(&self) -> &Path {
        self.dir.path()
    }
}

/// An HTTP response, read whole.
#[derive(Debug, Clone)]
pub(crate) struct HttpResponse {
    /// Status code.
    pub status: u16,
    /// Headers in order, names lower-cased.
    pub headers: Vec<(String, String)>,
    /// The body as text.
    pub body: String,
}

impl HttpResponse {
    /// Every value of header `name` (lower-case).
    pub(crate) fn header_all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The first value of header `name` (lower-case).
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.header_all(name).first().copied()
    }
}

/// One HTTP/1.1 request over a fresh loopback connection (`Connection: close`).
///
/// # Panics
///
/// On any I/O error or a malformed response: the server is ours, so that is a test failure.
pub(crate) fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<(&str, &[u8])>,
) -> HttpResponse {
    let mut stream = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    stream
        .set_read_timeout(Some(Duration::from_secs(120)))
        .expect("timeout");
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    let body_bytes = body.map(|(content_type, bytes)| {
        request.push_str(&format!("Content-Type: {content_type}\r\n"));
        bytes
    });
    request.push_str(&format!(
        "Content-Length: {}\r\n\r\n",
        body_bytes.map_or(0, <[u8]>::len)
    ));
    stream.write_all(request.as_bytes()).expect("send request");
    if let Some(bytes) = body_bytes {
        stream.write_all(bytes).expect("send body");
    }
    parse_response(&read_response(&mut stream))
}

/// Reads one response: the head, then `Content-Length` bytes, or chunks up to the last one,
/// or (neither) until the server closes. Some servers (chromedriver) keep the connection open
/// despite `Connection: close`, so reading to the end alone would hang.
fn read_response(stream: &mut TcpStream) -> Vec<u8> {
    let mut raw = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        if let Some(head_end) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&raw[..head_end]).to_ascii_lowercase();
            let length = head.lines().find_map(|line| {
                line.strip_prefix("content-length:")
                    .and_then(|v| v.trim().parse::<usize>().ok())
            });
            let body = &raw[head_end + 4..];
            let complete = match length {
                Some(length) => body.len() >= length,
                None if head.contains("transfer-encoding: chunked") => {
                    body.windows(5).any(|w| w == b"0\r\n\r\n")
                }
                None => false,
            };
            if complete {
                return raw;
            }
        }
        let read = stream.read(&mut buf).expect("read response");
        if read == 0 {
            return raw;
        }
        raw.extend_from_slice(&buf[..read]);
    }
}

fn parse_response(raw: &[u8]) -> HttpResponse {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no header end in {:?}", String::from_utf8_lossy(raw)));
    let head = String::from_utf8_lossy(&raw[..split]);
    let mut lines = head.split("\r\n");
    let status_line = lines.next().expect("status line");
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    let chunked = headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"));
    if chunked {
        body = dechunk(&body);
    }
    HttpResponse {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(end) = data.windows(2).position(|w| w == b"\r\n") {
        let size_text = String::from_utf8_lossy(&data[..end]);
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("0").trim(), 16)
            .unwrap_or(0);
        data = &data[end + 2..];
        if size == 0 || data.len() < size {
            break;
        }
        out.extend_from_slice(&data[..size]);
        data = data.get(size + 2..).unwrap_or_default();
    }
    out
}

/// `application/x-www-form-urlencoded` of the pairs.
pub(crate) fn form(pairs: &[(&str, &str)]) -> Vec<u8> {
    fn encode(text: &str) -> String {
        text.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    (b as char).to_string()
                }
                b' ' => "+".to_owned(),
                b => format!("%{b:02X}"),
            })
            .collect()
    }
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect::<Vec<_>>()
        .join("&")
        .into_bytes()
}

/// A browser's cookie jar for one site, reduced to what the demo uses.
#[derive(Debug, Default, Clone)]
pub(crate) struct Jar {
    cookies: BTreeMap<String, String>,
}

impl Jar {
    /// Applies every `Set-Cookie` of a response (a `Max-Age=0` cookie is removed).
    pub(crate) fn update(&mut self, response: &HttpResponse) {
        for header in response.header_all("set-cookie") {
            let cookie = cookie::Cookie::parse(header.to_owned()).expect("a valid Set-Cookie");
            let expired = cookie.max_age().is_some_and(|age| age.whole_seconds() <= 0);
            if expired {
                self.cookies.remove(cookie.name());
            } else {
                self.cookies
                    .insert(cookie.name().to_owned(), cookie.value().to_owned());
            }
        }
    }

    /// The value of cookie `name`.
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.cookies.get(name).map(String::as_str)
    }

    /// The `Cookie` header to send, if any cookie is held.
    pub(crate) fn header(&self) -> Option<String> {
        (!self.cookies.is_empty()).then(|| {
            self.cookies
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("; ")
        })
    }
}

/// A visitor of the demo: a jar and the requests a browser with cookies on would make.
pub(crate) struct Visitor<'a> {
    /// The demo visited.
    pub demo: &'a Demo,
    /// The visitor's cookies.
    pub jar: Jar,
}

impl<'a> Visitor<'a> {
    /// A visitor with no cookies.
    pub(crate) fn new(demo: &'a Demo) -> Self {
        Self {
            demo,
            jar: Jar::default(),
        }
    }

    /// GET `path` with the jar's cookies; the jar takes the response's cookies.
    pub(crate) fn get(&mut self, path: &str) -> HttpResponse {
        self.send("GET", path, None)
    }

    /// POST a form to `path`.
    pub(crate) fn post(&mut self, path: &str, pairs: &[(&str, &str)]) -> HttpResponse {
        let body = form(pairs);
        self.send("POST", path, Some(&body))
    }

    fn send(&mut self, method: &str, path: &str, body: Option<&[u8]>) -> HttpResponse {
        let cookie = self.jar.header();
        let mut headers = Vec::new();
        if let Some(cookie) = cookie.as_deref() {
            headers.push(("Cookie", cookie));
        }
        let body = body.map(|b| ("application/x-www-form-urlencoded", b));
        let response = http(self.demo.addr, method, path, &headers, body);
        self.jar.update(&response);
        response
    }

    /// The session cookie the visitor holds.
    pub(crate) fn session_key(&self) -> Option<String> {
        self.jar.get("sessionid").map(str::to_owned)
    }
}

/// The text of the element with `id` in an HTML page (the demo writes each such element on
/// one line), unescaped.
pub(crate) fn element_text(html: &str, id: &str) -> Option<String> {
    let marker = format!("id=\"{id}\">");
    let start = html.find(&marker)? + marker.len();
    let end = html[start..].find("</")? + start;
    Some(unescape(&html[start..end]))
}

fn unescape(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#x27;", "'")
        .replace("&amp;", "&")
}

/// A path made absolute against the working directory of the demo.
pub(crate) fn in_dir(demo: &Demo, relative: &str) -> PathBuf {
    demo.path().join(relative)
}
