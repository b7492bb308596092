//! One rule for hiding passwords in connection strings before they reach a log, an error message
//! or a `Debug` output, shared by the host, the SQL and cache stores and the test kit.
//!
//! The rule:
//!
//! - In a URL's user-info (`scheme://user:password@host`), the password becomes [`MASK`]; the user
//!   name, host, path and query stay, so the message still says *where* it connected.
//! - A user-info without a colon (`scheme://name@host`) is a user name and stays as written.
//! - Every `password=` parameter (any case) becomes `password=***`, whether in a URL query
//!   (`?password=pw&x=1`) or in a libpq key/value string (`host=db password=pw user=u`). The value
//!   ends at `&`, `;`, `#`, a space or the end; a libpq value in single quotes ends at the closing
//!   quote.
//! - Anything else (no scheme, no password) is returned unchanged.

/// What a password is replaced with.
pub const MASK: &str = "***";

/// `url` with every password replaced by [`MASK`] (see the [module rule](self)).
pub fn redact_url(url: &str) -> String {
    let mut out = url.to_owned();
    if let Some(scheme_end) = out.find("://") {
        let start = scheme_end + 3;
        let end = out[start..]
            .find(['/', '?', '#'])
            .map_or(out.len(), |at| start + at);
        if let Some(at) = out[start..end].rfind('@')
            && let Some(colon) = out[start..start + at].find(':')
        {
            out.replace_range(start + colon + 1..start + at, MASK);
        }
    }
    redact_password_parameters(&out)
}

/// `text` with the value of each `password=` parameter replaced by [`MASK`].
fn redact_password_parameters(text: &str) -> String {
    const NAME: &str = "password=";
    let lower = text.to_ascii_lowercase();
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    let mut search = 0;
    while let Some(found) = lower[search..].find(NAME) {
        let name_start = search + found;
        let value_start = name_start + NAME.len();
        search = value_start;
        // `xpassword=` is another parameter: the name must start the text or follow a separator.
        let starts_parameter = text[..name_start]
            .chars()
            .next_back()
            .is_none_or(|before| matches!(before, '?' | '&' | ';' | ' ' | '\t'));
        if !starts_parameter {
            continue;
        }
        let value_end = if text[value_start..].starts_with('\'') {
            text[value_start + 1..]
                .find('\'')
                .map_or(text.len(), |close| value_start + 1 + close + 1)
        } else {
            text[value_start..]
                .find(['&', ';', '#', ' ', '\t'])
                .map_or(text.len(), |end| value_start + end)
        };
        out.push_str(&text[copied..value_start]);
        out.push_str(MASK);
        copied = value_end;
        search = value_end;
    }
    out.push_str(&text[copied..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redact_url_follows_the_documented_rule() {
        let cases = [
            // No password anywhere: unchanged.
            ("plain", "plain"),
            ("sqlite://x.sqlite3", "sqlite://x.sqlite3"),
            ("redis://h:6379/0", "redis://h:6379/0"),
            ("postgres://bob@h/db", "postgres://bob@h/db"),
            (
                "postgres://h/db?sslmode=disable",
                "postgres://h/db?sslmode=disable",
            ),
            // User-info password: masked, user kept.
            ("postgres://u:secret@h/db", "postgres://u:***@h/db"),
            ("redis://:pw@host:1/0", "redis://:***@host:1/0"),
            ("redis://user:p@ss@host/0", "redis://user:***@host/0"),
            ("rediss://u:pw@h:6380#frag", "rediss://u:***@h:6380#frag"),
            // An `@` after the authority is not user-info.
            ("redis://host/0?x=a@b", "redis://host/0?x=a@b"),
            ("redis://host/0?x=a:b@c", "redis://host/0?x=a:b@c"),
            // Query parameters, any case, every occurrence.
            (
                "postgres://h/db?password=pw",
                "postgres://h/db?password=***",
            ),
            (
                "postgres://h/db?user=u&PASSWORD=pw&sslmode=require",
                "postgres://h/db?user=u&PASSWORD=***&sslmode=require",
            ),
            (
                "postgres://u:a@h/db?password=b",
                "postgres://u:***@h/db?password=***",
            ),
            (
                "x://h?password=a&password=b",
                "x://h?password=***&password=***",
            ),
            // Other parameters that end in "password" are not the password.
            ("x://h?oldpassword=a", "x://h?oldpassword=a"),
            // libpq key/value strings, plain and quoted.
            ("host=db password=pw user=u", "host=db password=*** user=u"),
            ("password=pw", "password=***"),
            (
                "host=db password='p w' user=u",
                "host=db password=*** user=u",
            ),
            ("host=db password='unterminated", "host=db password=***"),
            // An empty password is still a password.
            ("host=db password= user=u", "host=db password=*** user=u"),
        ];
        for (input, expected) in cases {
            assert_eq!(redact_url(input), expected, "input: {input}");
        }
    }

    #[test]
    fn redact_url_never_keeps_the_secret() {
        for url in [
            "postgres://u:hunter2@h/db",
            "redis://:hunter2@h",
            "host=h password=hunter2",
            "x://h?a=1&Password=hunter2",
            "host=h password='hunter2 with space'",
        ] {
            assert!(!redact_url(url).contains("hunter2"), "{url}");
        }
    }
}
