//! `Vary: Cookie` and `Cache-Control: private`: keeping shared caches away from session pages.

use http::header::{CACHE_CONTROL, VARY};
use http::{HeaderMap, HeaderValue};

/// Django's `patch_vary_headers(response, ("Cookie",))`.
///
/// # Behavior
///
/// - Every existing `Vary` field is split on commas; entries are trimmed and empty ones dropped
///   (Django keeps whitespace-padded entries; trimming is what caches do, CVE-2026-113593).
/// - `Cookie` is appended unless an entry already names it, case-insensitively.
/// - If any entry is `*`, the result is exactly `Vary: *`.
/// - The result is one field, entries joined with `", "`.
pub fn patch_vary_cookie(headers: &mut HeaderMap) {
    // The usual case, without building a list: no `Vary` yet.
    if !headers.contains_key(VARY) {
        headers.insert(VARY, HeaderValue::from_static("Cookie"));
        return;
    }
    let mut entries: Vec<String> = headers
        .get_all(VARY)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .filter(|entry| !entry.is_empty())
        .map(str::to_owned)
        .collect();
    if !entries
        .iter()
        .any(|entry| entry.eq_ignore_ascii_case("cookie"))
    {
        entries.push("Cookie".to_owned());
    }
    let joined = if entries.iter().any(|entry| entry == "*") {
        "*".to_owned()
    } else {
        entries.join(", ")
    };
    headers.remove(VARY);
    // Built only from visible ASCII parts of valid header values joined by ", ".
    if let Ok(value) = HeaderValue::from_str(&joined) {
        headers.insert(VARY, value);
    }
}

/// Marks a response that carries the session cookie as `Cache-Control: private` (not Django: a
/// shared cache must never hand one user's session cookie to another), as Django's
/// `patch_cache_control(response, private=True)` would.
///
/// # Behavior
///
/// - No `Cache-Control` → `Cache-Control: private`.
/// - Existing directives are kept, except `public`, which contradicts `private`, and
///   `private="field"`, which would leave the rest of the response cacheable; both are removed.
/// - `private` is appended unless present.
pub fn patch_cache_control_private(headers: &mut HeaderMap) {
    // The usual case, without building a list: no `Cache-Control` yet.
    if !headers.contains_key(CACHE_CONTROL) {
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("private"));
        return;
    }
    let mut directives: Vec<String> = headers
        .get_all(CACHE_CONTROL)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .filter(|directive| !directive.is_empty())
        .filter(|directive| {
            let name = directive.split('=').next().unwrap_or_default().trim();
            let field_private = name.eq_ignore_ascii_case("private") && directive.contains('=');
            !directive.eq_ignore_ascii_case("public") && !field_private
        })
        .map(str::to_owned)
        .collect();
    if !directives
        .iter()
        .any(|directive| directive.eq_ignore_ascii_case("private"))
    {
        directives.push("private".to_owned());
    }
    headers.remove(CACHE_CONTROL);
    // Built only from visible ASCII parts of valid header values joined by ", ".
    if let Ok(value) = HeaderValue::from_str(&directives.join(", ")) {
        headers.insert(CACHE_CONTROL, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vary_after(existing: &[&str]) -> String {
        let mut headers = HeaderMap::new();
        for value in existing {
            headers.append(VARY, HeaderValue::from_str(value).expect("test value"));
        }
        patch_vary_cookie(&mut headers);
        let all: Vec<_> = headers.get_all(VARY).iter().collect();
        assert_eq!(all.len(), 1, "one Vary field");
        all[0].to_str().expect("ascii").to_owned()
    }

    #[test]
    fn vary_cookie_is_added_or_appended_once() {
        assert_eq!(vary_after(&[]), "Cookie");
        assert_eq!(vary_after(&["Accept-Encoding"]), "Accept-Encoding, Cookie");
        assert_eq!(
            vary_after(&["Accept-Encoding", "Accept-Language"]),
            "Accept-Encoding, Accept-Language, Cookie"
        );
        assert_eq!(
            vary_after(&["accept-encoding,COOKIE"]),
            "accept-encoding, COOKIE"
        );
        assert_eq!(
            vary_after(&["  Accept ,  , Origin "]),
            "Accept, Origin, Cookie"
        );
    }

    #[test]
    fn vary_star_collapses_everything() {
        assert_eq!(vary_after(&["*"]), "*");
        assert_eq!(vary_after(&["Accept, *"]), "*");
    }

    fn cache_control_after(existing: Option<&str>) -> String {
        let mut headers = HeaderMap::new();
        if let Some(value) = existing {
            headers.insert(
                CACHE_CONTROL,
                HeaderValue::from_str(value).expect("test value"),
            );
        }
        patch_cache_control_private(&mut headers);
        headers[CACHE_CONTROL].to_str().expect("ascii").to_owned()
    }

    #[test]
    fn cache_control_private_is_added_and_public_dropped() {
        assert_eq!(cache_control_after(None), "private");
        assert_eq!(
            cache_control_after(Some("max-age=60")),
            "max-age=60, private"
        );
        assert_eq!(
            cache_control_after(Some("public, max-age=60")),
            "max-age=60, private"
        );
        assert_eq!(
            cache_control_after(Some("no-store, private")),
            "no-store, private"
        );
        assert_eq!(
            cache_control_after(Some("private=\"Set-Cookie\"")),
            "private"
        );
    }
}
