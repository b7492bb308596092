//! The session cookie on the wire: finding it in a request, and rendering `Set-Cookie` exactly as
//! Django does.
//!
//! Reading uses the `cookie` crate's unencoded parser (never percent-decoding: Django does not
//! decode, and decoding turns `..%2F` into `../`). Writing builds a [`cookie::Cookie`] with the
//! crate's builder and renders it in the attribute order and spelling of Python's
//! `http.cookies.Morsel`, which Django uses: `name=value; Domain=…; expires=…; HttpOnly;
//! Max-Age=…; Path=…; SameSite=…; Secure`. The crate's own `Display` differs (order, `Expires`,
//! and a `Secure` it adds by itself to `SameSite=None`), so it is not used for output.

use std::borrow::Cow;

use chrono::{DateTime, TimeDelta, Utc};
use cookie::{Cookie, CookieBuilder};
use http::HeaderMap;
use http::header::COOKIE;

use crate::config::CookieSettings;

/// The `expires` value of a deletion cookie, as Django's `delete_cookie` writes it.
pub const DELETION_EXPIRES: &str = "Thu, 01 Jan 1970 00:00:00 GMT";

/// The latest `Expires` we write: a `Max-Age` that reaches past year 9999 is clamped to it
/// (Django answers such an age with an `OverflowError`, i.e. a 500).
const LATEST_EXPIRES: &str = "Fri, 31 Dec 9999 23:59:59 GMT";

/// What the `Cookie` headers of a request say about the session cookie.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestCookie {
    /// No cookie of that name: Django's `SESSION_COOKIE_NAME not in request.COOKIES`.
    Absent,
    /// The value of the first cookie of that name, unquoted like Python's `http.cookies`
    /// (surrounding double quotes and backslash escapes), never percent-decoded. It may be empty
    /// or malformed: the engine decides whether it is a key.
    Present(String),
}

impl RequestCookie {
    /// Whether the request carried the cookie at all (even empty or malformed).
    pub fn is_present(&self) -> bool {
        matches!(self, Self::Present(_))
    }

    /// The cookie's value, if the request carried it.
    pub fn value(&self) -> Option<&str> {
        match self {
            Self::Absent => None,
            Self::Present(value) => Some(value),
        }
    }
}

/// Finds the cookie called `name` in every `Cookie` header of a request, in order.
///
/// # Behavior
///
/// - **The first cookie of that name wins** (Django keeps the last; see the crate README for why
///   we differ). Several `Cookie` header fields (HTTP/2 sends one per cookie) are read in order
///   as one list.
/// - Names and values are trimmed of whitespace; the value is unquoted as Python does
///   (`"abc"` → `abc`, `\"` → `"`, `\141` → `a`) and never percent-decoded.
/// - A malformed neighbour (`=x`, `junk`) is skipped and the search goes on (CVE-2016-7401).
/// - A header field that is not UTF-8 is read pair by pair: a pair that is not UTF-8 is
///   skipped, the others are still found. Nothing here panics on any byte string.
pub fn find_request_cookie(headers: &HeaderMap, name: &str) -> RequestCookie {
    for header in headers.get_all(COOKIE) {
        let bytes = header.as_bytes();
        let found = match std::str::from_utf8(bytes) {
            Ok(text) => find_in_str(text, name),
            Err(_) => bytes
                .split(|&byte| byte == b';')
                .filter_map(|pair| std::str::from_utf8(pair).ok())
                .find_map(|pair| find_in_str(pair, name)),
        };
        if let Some(value) = found {
            return RequestCookie::Present(value);
        }
    }
    RequestCookie::Absent
}

/// The first pair called `name` in one `;`-separated cookie string.
fn find_in_str(text: &str, name: &str) -> Option<String> {
    Cookie::split_parse(text)
        .filter_map(Result::ok)
        .find(|cookie| cookie.name() == name)
        .map(|cookie| python_unquote(cookie.value()).into_owned())
}

/// Python's `http.cookies._unquote`: strips one pair of surrounding double quotes and resolves
/// `\ooo` (octal) and `\c` escapes inside them; anything else is returned as it is.
pub fn python_unquote(value: &str) -> Cow<'_, str> {
    let Some(inner) = value
        .strip_prefix('"')
        .and_then(|rest| rest.strip_suffix('"'))
        .filter(|_| value.len() >= 2)
    else {
        return Cow::Borrowed(value);
    };
    if !inner.contains('\\') {
        return Cow::Borrowed(inner);
    }
    let chars: Vec<char> = inner.chars().collect();
    let mut out = String::with_capacity(inner.len());
    let mut i = 0;
    while i < chars.len() {
        if chars[i] != '\\' || i + 1 >= chars.len() {
            out.push(chars[i]);
            i += 1;
            continue;
        }
        // Python: `\\(?:([0-3][0-7][0-7])|(.))`.
        let octal = chars.get(i + 1..i + 4).filter(|digits| {
            ('0'..='3').contains(&digits[0])
                && ('0'..='7').contains(&digits[1])
                && ('0'..='7').contains(&digits[2])
        });
        match octal {
            Some(digits) => {
                let code = digits
                    .iter()
                    .fold(0u32, |acc, d| acc * 8 + (*d as u32 - '0' as u32));
                // Three octal digits with a leading 0-3 are at most 0o377: always a char.
                out.extend(char::from_u32(code));
                i += 4;
            }
            None => {
                out.push(chars[i + 1]);
                i += 2;
            }
        }
    }
    Cow::Owned(out)
}

/// The characters Python's `http.cookies` leaves unquoted in a cookie value (`_LegalChars`).
fn is_legal_cookie_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~:".contains(c)
}

/// Python's `http.cookies._quote`: a value made only of legal characters is written as it is;
/// anything else is double-quoted with `"` and `\` escaped and other non-printables as `\ooo`.
pub fn python_quote(value: &str) -> Cow<'_, str> {
    if !value.is_empty() && value.chars().all(is_legal_cookie_char) {
        return Cow::Borrowed(value);
    }
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if is_legal_cookie_char(c) || " ()/<=>?@[]{}".contains(c) => out.push(c),
            c if (c as u32) < 256 => out.push_str(&format!("\\{:03o}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    Cow::Owned(out)
}

/// Django's `http_date(epoch)`: `Wdy, DD Mon YYYY HH:MM:SS GMT`, seconds truncated.
pub fn http_date(at: DateTime<Utc>) -> String {
    sessionkit_codec::time::http_date(at)
}

/// The `Expires` text for a cookie that lives `max_age` seconds from `now`
/// (Django: `http_date(time.time() + max_age)`), clamped to year 9999.
pub fn expires_after(now: DateTime<Utc>, max_age: i64) -> String {
    TimeDelta::try_seconds(max_age)
        .and_then(|age| now.checked_add_signed(age))
        .filter(|at| at.timestamp() <= 253_402_300_799)
        .map_or_else(|| LATEST_EXPIRES.to_owned(), http_date)
}

/// The lifetime attributes of a session cookie.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CookieLifetime {
    /// A browser-session cookie: no `expires`, no `Max-Age` (expire at browser close).
    BrowserSession,
    /// `Max-Age` seconds and the matching `expires` date.
    MaxAge {
        /// Seconds the cookie lives (`int(get_expiry_age())`; may be 0 or negative).
        seconds: i64,
        /// `expires`, already in Django's date format.
        expires: String,
    },
}

/// The session cookie Django's middleware sets after a save, built with the `cookie` crate.
///
/// `expires` is kept as text beside the cookie (Django's format), because the crate stores a
/// `time` date and prints it its own way; so is the domain, whose leading dot the crate's
/// getters drop while Django writes it as configured.
#[derive(Debug, Clone)]
pub struct SetCookie {
    cookie: Cookie<'static>,
    expires: Option<String>,
    domain: Option<String>,
}

impl SetCookie {
    /// Django's `response.set_cookie(SESSION_COOKIE_NAME, session_key, max_age, expires, domain,
    /// path, secure=SECURE or None, httponly=HTTPONLY or None, samesite)`.
    pub fn session(settings: &CookieSettings, key: &str, lifetime: &CookieLifetime) -> Self {
        let mut builder = base_builder(settings, key.to_owned());
        if settings.secure {
            builder = builder.secure(true);
        }
        if settings.http_only {
            builder = builder.http_only(true);
        }
        let expires = match lifetime {
            CookieLifetime::BrowserSession => None,
            CookieLifetime::MaxAge { seconds, expires } => {
                builder = builder.max_age(cookie::time::Duration::seconds(*seconds));
                Some(expires.clone())
            }
        };
        Self {
            cookie: builder.build(),
            expires,
            domain: settings.domain.clone(),
        }
    }

    /// Django's `response.delete_cookie(name, path, domain, samesite)`: an empty value,
    /// `expires` in 1970, `Max-Age=0`; `Secure` only when SameSite is `None` or the name starts
    /// with `__Secure-` or `__Host-` (never from `SESSION_COOKIE_SECURE`); never `HttpOnly`.
    pub fn deletion(settings: &CookieSettings) -> Self {
        let mut builder =
            base_builder(settings, String::new()).max_age(cookie::time::Duration::ZERO);
        let secure = settings.name.starts_with("__Secure-")
            || settings.name.starts_with("__Host-")
            || settings.same_site == Some(cookie::SameSite::None);
        if secure {
            builder = builder.secure(true);
        }
        Self {
            cookie: builder.build(),
            expires: Some(DELETION_EXPIRES.to_owned()),
            domain: settings.domain.clone(),
        }
    }

    /// The cookie as the `cookie` crate models it (for callers that keep a jar).
    pub fn cookie(&self) -> &Cookie<'static> {
        &self.cookie
    }

    /// The `expires` attribute, in Django's date format, if any.
    pub fn expires(&self) -> Option<&str> {
        self.expires.as_deref()
    }

    /// The `Set-Cookie` header value, byte for byte what Django 5.2 sends.
    pub fn to_header_string(&self) -> String {
        let cookie = &self.cookie;
        let value = python_quote(cookie.value());
        let mut out = String::with_capacity(cookie.name().len() + value.len() + 128);
        out.push_str(cookie.name());
        out.push('=');
        out.push_str(&value);
        // Python's Morsel sorts its attributes by lower-case name and skips empty values.
        if let Some(domain) = self.domain.as_deref().filter(|d| !d.is_empty()) {
            out.push_str("; Domain=");
            out.push_str(domain);
        }
        if let Some(expires) = self.expires.as_deref() {
            out.push_str("; expires=");
            out.push_str(expires);
        }
        if cookie.http_only() == Some(true) {
            out.push_str("; HttpOnly");
        }
        if let Some(age) = cookie.max_age() {
            out.push_str("; Max-Age=");
            out.push_str(&age.whole_seconds().to_string());
        }
        if let Some(path) = cookie.path().filter(|p| !p.is_empty()) {
            out.push_str("; Path=");
            out.push_str(path);
        }
        if let Some(same_site) = cookie.same_site() {
            out.push_str(&format!("; SameSite={same_site}"));
        }
        if cookie.secure() == Some(true) {
            out.push_str("; Secure");
        }
        out
    }
}

/// Name, value, path, domain and SameSite: what set and delete share.
fn base_builder(settings: &CookieSettings, value: String) -> CookieBuilder<'static> {
    let mut builder = Cookie::build((settings.name.clone(), value)).path(settings.path.clone());
    if let Some(domain) = &settings.domain {
        builder = builder.domain(domain.clone());
    }
    if let Some(same_site) = settings.same_site {
        builder = builder.same_site(same_site);
    }
    builder
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    fn headers(values: &[&[u8]]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for value in values {
            map.append(COOKIE, HeaderValue::from_bytes(value).expect("test header"));
        }
        map
    }

    #[test]
    fn first_of_duplicate_cookies_wins() {
        let map = headers(&[b"sessionid=first; other=1; sessionid=second"]);
        assert_eq!(
            find_request_cookie(&map, "sessionid"),
            RequestCookie::Present("first".into())
        );
    }

    #[test]
    fn first_wins_across_several_cookie_headers() {
        let map = headers(&[b"a=1", b"sessionid=first", b"sessionid=second"]);
        assert_eq!(
            find_request_cookie(&map, "sessionid").value(),
            Some("first")
        );
    }

    #[test]
    fn value_is_never_percent_decoded() {
        let map = headers(&[b"sessionid=..%2F..%2Fetc%2Fpasswd"]);
        assert_eq!(
            find_request_cookie(&map, "sessionid").value(),
            Some("..%2F..%2Fetc%2Fpasswd")
        );
    }

    #[test]
    fn malformed_neighbours_are_skipped() {
        let map = headers(&[b"=x; junk; a=b]; sessionid = abcdefgh12345678 ; z"]);
        assert_eq!(
            find_request_cookie(&map, "sessionid").value(),
            Some("abcdefgh12345678")
        );
    }

    #[test]
    fn empty_value_counts_as_present() {
        let map = headers(&[b"sessionid="]);
        assert_eq!(
            find_request_cookie(&map, "sessionid"),
            RequestCookie::Present(String::new())
        );
    }

    #[test]
    fn missing_cookie_is_absent() {
        assert_eq!(
            find_request_cookie(&headers(&[b"a=1; b=2"]), "sessionid"),
            RequestCookie::Absent
        );
        assert_eq!(
            find_request_cookie(&HeaderMap::new(), "sessionid"),
            RequestCookie::Absent
        );
    }

    #[test]
    fn non_utf8_pairs_are_skipped_and_the_rest_still_found() {
        let map = headers(&[b"tracker=\xff\xfe; sessionid=abcdefgh12345678"]);
        assert_eq!(
            find_request_cookie(&map, "sessionid").value(),
            Some("abcdefgh12345678")
        );
    }

    #[test]
    fn quoted_values_are_unquoted_like_python() {
        assert_eq!(python_unquote("\"abcdefgh\""), "abcdefgh");
        assert_eq!(python_unquote("\"\\141bc\""), "abc");
        assert_eq!(python_unquote("\"a\\\"b\""), "a\"b");
        assert_eq!(python_unquote("\"unterminated"), "\"unterminated");
        assert_eq!(python_unquote("\""), "\"");
        assert_eq!(python_unquote("\"\\\""), "\\");
    }

    #[test]
    fn values_are_quoted_like_python() {
        assert_eq!(python_quote("abc123"), "abc123");
        assert_eq!(python_quote("a.b:c-d_e"), "a.b:c-d_e");
        assert_eq!(python_quote(""), "\"\"");
        assert_eq!(python_quote("a b;\"\\"), "\"a b\\073\\\"\\\\\"");
        assert_eq!(python_quote("a,b"), "\"a\\054b\"");
        assert_eq!(python_quote("\u{e9}"), "\"\\351\"");
    }

    #[test]
    fn expires_is_clamped_instead_of_overflowing() {
        let now = DateTime::from_timestamp(1_750_000_000, 0).expect("valid");
        assert_eq!(
            expires_after(now, 1_209_600),
            "Sun, 29 Jun 2025 15:06:40 GMT"
        );
        assert_eq!(expires_after(now, i64::MAX), LATEST_EXPIRES);
        assert_eq!(expires_after(now, -1_750_000_000), DELETION_EXPIRES);
    }
}
