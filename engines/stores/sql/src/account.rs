//! The `account_id` column of Django's documented custom-session example, filled from
//! `_auth_user_id` exactly as its `create_model_instance` does.
//!
//! Django: `account_id = int(data.get("_auth_user_id"))`, `None` on `ValueError`/`TypeError`.
//! auth stores the user id as a string (`"42"`), so the string case is the common one.

use serde_json::Value;

/// The session key auth stores the user's primary key under.
pub const AUTH_USER_ID_KEY: &str = "_auth_user_id";

/// The `account_id` to store for a session, from the session's plain JSON.
///
/// Python's `int()` of the `_auth_user_id` value: a string of ASCII digits (surrounding
/// whitespace, a sign and single `_` between digits allowed) or an integer gives that number;
/// `true`/`false` give 1/0 and a finite float is truncated, as `int()` does; anything else
/// (absent, null, text, list, object, NaN, ±inf), and any value outside the column's
/// `integer` range (Django's `IntegerField`, −2³¹..2³¹−1), gives `None` (SQL NULL). A
/// `session_json` that is not a JSON object also gives `None`.
pub fn account_id_of(session_json: &str) -> Option<i32> {
    let session: serde_json::Map<String, Value> = serde_json::from_str(session_json).ok()?;
    python_int(session.get(AUTH_USER_ID_KEY)?).and_then(|id| i32::try_from(id).ok())
}

/// Python's `int(value)` for a JSON value, `None` where Python raises.
fn python_int(value: &Value) -> Option<i64> {
    match value {
        Value::String(s) => parse_python_int(s),
        Value::Number(n) => n.as_i64().or_else(|| {
            let f = n.as_f64()?;
            // `as` saturates; a value that saturated is outside the column's range anyway.
            f.is_finite().then(|| f.trunc() as i64)
        }),
        Value::Bool(b) => Some(i64::from(*b)),
        Value::Null | Value::Array(_) | Value::Object(_) => None,
    }
}

/// `int(s)` for a base-10 string: optional whitespace, sign, digits with single underscores
/// between them.
fn parse_python_int(s: &str) -> Option<i64> {
    let s = s.trim();
    let (negative, digits) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    if digits.is_empty()
        || digits.starts_with('_')
        || digits.ends_with('_')
        || digits.contains("__")
    {
        return None;
    }
    let mut value: i64 = 0;
    for b in digits.bytes().filter(|&b| b != b'_') {
        if !b.is_ascii_digit() {
            return None;
        }
        value = value.checked_mul(10)?.checked_add(i64::from(b - b'0'))?;
    }
    Some(if negative { -value } else { value })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auth_user_id_string_becomes_the_account() {
        assert_eq!(account_id_of(r#"{"_auth_user_id":"42","x":1}"#), Some(42));
        assert_eq!(account_id_of(r#"{"_auth_user_id":" +1_000 "}"#), Some(1000));
        assert_eq!(account_id_of(r#"{"_auth_user_id":"-7"}"#), Some(-7));
        assert_eq!(account_id_of(r#"{"_auth_user_id":"007"}"#), Some(7));
    }

    #[test]
    fn auth_user_id_int_becomes_the_account() {
        assert_eq!(account_id_of(r#"{"_auth_user_id":42}"#), Some(42));
    }

    #[test]
    fn python_int_quirks_for_bool_and_float_are_kept() {
        assert_eq!(account_id_of(r#"{"_auth_user_id":true}"#), Some(1));
        assert_eq!(account_id_of(r#"{"_auth_user_id":42.9}"#), Some(42));
        assert_eq!(account_id_of(r#"{"_auth_user_id":-1.5}"#), Some(-1));
    }

    #[test]
    fn anything_else_is_null() {
        for json in [
            r#"{}"#,
            r#"{"_auth_user_id":null}"#,
            r#"{"_auth_user_id":"abc"}"#,
            r#"{"_auth_user_id":"4 2"}"#,
            r#"{"_auth_user_id":"4__2"}"#,
            r#"{"_auth_user_id":"_42"}"#,
            r#"{"_auth_user_id":"42.0"}"#,
            r#"{"_auth_user_id":""}"#,
            r#"{"_auth_user_id":[42]}"#,
            r#"{"_auth_user_id":{"id":42}}"#,
            r#"[1]"#,
            "not json",
        ] {
            assert_eq!(account_id_of(json), None, "{json}");
        }
    }

    #[test]
    fn ids_outside_the_integer_column_are_null() {
        assert_eq!(
            account_id_of(r#"{"_auth_user_id":"2147483647"}"#),
            Some(i32::MAX)
        );
        assert_eq!(account_id_of(r#"{"_auth_user_id":"2147483648"}"#), None);
        assert_eq!(account_id_of(r#"{"_auth_user_id":-2147483649}"#), None);
        assert_eq!(
            account_id_of(r#"{"_auth_user_id":"99999999999999999999999"}"#),
            None
        );
        assert_eq!(account_id_of(r#"{"_auth_user_id":1e300}"#), None);
    }
}
