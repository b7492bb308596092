//! Session expiry: Django's `get_expiry_age` / `get_expiry_date` /
//! `get_expire_at_browser_close` over the stored `_session_expiry` value.
//!
//! `_session_expiry` is stored inside the session as JSON and may be absent, a number of
//! seconds of inactivity (0 = until the browser closes), or an absolute time as
//! `datetime.isoformat()` text. The functions take the stored value as-is so they can judge
//! data written by Django.

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::time::{from_datetime, parse_isoformat, to_datetime};

pub use crate::clock::{Clock, HostClock, ManualClock, SystemClock};

/// The session key under which Django stores a custom expiry.
pub const EXPIRY_KEY: &str = "_session_expiry";

/// How a stored `_session_expiry` value is read (Django's rules, with unusable values mapped to
/// "absent" instead of an exception).
enum Expiry {
    /// Absent, or a falsy value (`null`, `0`, `0.0`, `false`, `""`, `[]`, `{}`), or a value
    /// Django could not use (an unparsable string, a non-empty array/object): use the cookie
    /// age.
    Default,
    /// A number of seconds (sliding: counted from the last modification).
    Seconds(f64),
    /// An absolute point in time (ISO text).
    At(DateTime<Utc>),
}

fn classify(expiry: Option<&Value>) -> Expiry {
    match expiry {
        None | Some(Value::Null | Value::Bool(false)) => Expiry::Default,
        // Python's True == 1.
        Some(Value::Bool(true)) => Expiry::Seconds(1.0),
        Some(Value::Number(n)) => match (n.as_i64(), n.as_f64()) {
            (Some(0), _) => Expiry::Default,
            (_, Some(f)) if f == 0.0 || !f.is_finite() => Expiry::Default,
            (Some(i), _) => Expiry::Seconds(i as f64),
            (None, Some(f)) => Expiry::Seconds(f),
            (None, None) => Expiry::Default,
        },
        Some(Value::String(s)) => parse_isoformat(s).map_or(Expiry::Default, Expiry::At),
        Some(Value::Array(_) | Value::Object(_)) => Expiry::Default,
    }
}

/// Django's `get_expiry_age(modification=…, expiry=…)`: seconds from `modification` until the
/// session expires.
///
/// - absent, `null`, `0`, `false` (any falsy value) → `cookie_age` (SESSION_COOKIE_AGE);
/// - an integer → itself (it may be negative); a float → floored; `true` → 1;
/// - ISO-8601 text → the whole seconds from `modification` to it, floored
///   (`delta.days * 86400 + delta.seconds`; microseconds are dropped, so -0.5 s gives -1);
/// - text that does not parse, or an array/object → `cookie_age`. Django would raise (a 500);
///   treating it as absent keeps the session usable and is documented here on purpose.
///
/// Never panics; results saturate at `i64` bounds.
pub fn expiry_age(modification: DateTime<Utc>, expiry: Option<&Value>, cookie_age: i64) -> i64 {
    match (classify(expiry), expiry) {
        (Expiry::Default, _) => cookie_age,
        (Expiry::Seconds(_), Some(Value::Number(n))) if n.as_i64().is_some() => {
            n.as_i64().unwrap_or(cookie_age)
        }
        (Expiry::Seconds(_), Some(Value::Number(n))) if n.as_u64().is_some() => i64::MAX,
        // A float saturates in the cast (`as` on f64 → i64 clamps).
        (Expiry::Seconds(f), _) => f.floor() as i64,
        (Expiry::At(at), _) => {
            let diff = i128::from(from_datetime(at).micros)
                - i128::from(from_datetime(modification).micros);
            let secs = diff.div_euclid(1_000_000);
            i64::try_from(secs).unwrap_or(if secs < 0 { i64::MIN } else { i64::MAX })
        }
    }
}

/// Django's `get_expiry_date(modification=…, expiry=…)`: when the session expires.
///
/// ISO text → that time; otherwise `modification` plus the number of seconds (or `cookie_age`
/// when absent/falsy/unusable, as in [`expiry_age`]). Float seconds keep their microseconds.
/// Saturates at chrono's range instead of panicking.
pub fn expiry_date(
    modification: DateTime<Utc>,
    expiry: Option<&Value>,
    cookie_age: i64,
) -> DateTime<Utc> {
    let micros = match (classify(expiry), expiry) {
        (Expiry::At(at), _) => return at,
        (Expiry::Default, _) => i128::from(cookie_age) * 1_000_000,
        (Expiry::Seconds(_), Some(Value::Number(n))) if n.as_i64().is_some() => {
            i128::from(n.as_i64().unwrap_or(cookie_age)) * 1_000_000
        }
        (Expiry::Seconds(_), Some(Value::Number(n))) if n.as_u64().is_some() => {
            i128::from(n.as_u64().unwrap_or(0)) * 1_000_000
        }
        // timedelta(seconds=float) rounds to the nearest microsecond (ties to even).
        (Expiry::Seconds(f), _) => (f * 1e6).round_ties_even() as i128,
    };
    let total = i128::from(from_datetime(modification).micros).saturating_add(micros);
    let clamped = i64::try_from(total).unwrap_or(if total < 0 { i64::MIN } else { i64::MAX });
    to_datetime(sessionkit_sdk::Timestamp::from_micros(clamped))
}

/// Django's `get_expire_at_browser_close()`: with no `_session_expiry` (absent or `null`) the
/// SESSION_EXPIRE_AT_BROWSER_CLOSE setting decides; otherwise only an expiry equal to 0
/// (`0`, `0.0`, `false`) means "until the browser closes".
pub fn expires_at_browser_close(
    expiry: Option<&Value>,
    expire_at_browser_close_setting: bool,
) -> bool {
    match expiry {
        None | Some(Value::Null) => expire_at_browser_close_setting,
        Some(Value::Bool(b)) => !b,
        Some(Value::Number(n)) => n.as_f64() == Some(0.0),
        Some(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use chrono::{TimeDelta, TimeZone};
    use serde_json::json;

    use super::*;

    const AGE: i64 = 1_209_600;

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 6, 16, 15, 6, 40).unwrap()
    }

    fn age(v: Value) -> i64 {
        expiry_age(t0(), Some(&v), AGE)
    }

    #[test]
    fn falsy_expiry_uses_the_cookie_age() {
        assert_eq!(expiry_age(t0(), None, AGE), AGE);
        for v in [
            json!(null),
            json!(0),
            json!(0.0),
            json!(false),
            json!(""),
            json!([]),
            json!({}),
        ] {
            assert_eq!(age(v.clone()), AGE, "{v}");
        }
    }

    #[test]
    fn integer_expiry_is_returned_as_is_even_when_negative() {
        assert_eq!(age(json!(300)), 300);
        assert_eq!(age(json!(-5)), -5);
        assert_eq!(age(json!(i64::MAX)), i64::MAX);
        assert_eq!(age(json!(u64::MAX)), i64::MAX);
        assert_eq!(age(json!(true)), 1);
    }

    #[test]
    fn float_expiry_is_floored() {
        assert_eq!(age(json!(1.9)), 1);
        assert_eq!(age(json!(-1.5)), -2);
        assert_eq!(age(json!(1e300)), i64::MAX);
    }

    #[test]
    fn iso_expiry_counts_floor_seconds_from_modification() {
        assert_eq!(age(json!("2025-06-16T15:07:40+00:00")), 60);
        assert_eq!(age(json!("2025-06-16T15:07:40.999999+00:00")), 60);
        // -0.5 s is timedelta(days=-1, seconds=86399, microseconds=500000) → -1.
        assert_eq!(age(json!("2025-06-16T15:06:39.500000+00:00")), -1);
        assert_eq!(age(json!("2025-06-17T15:06:40+00:00")), 86_400);
        assert_eq!(age(json!("2025-06-16T17:06:40+02:00")), 0);
    }

    #[test]
    fn unparsable_expiry_text_is_treated_as_absent() {
        assert_eq!(age(json!("next tuesday")), AGE);
        assert_eq!(
            expiry_date(t0(), Some(&json!("garbage")), AGE),
            t0() + TimeDelta::seconds(AGE)
        );
    }

    #[test]
    fn extreme_expiry_values_never_panic() {
        let end = Utc.with_ymd_and_hms(9999, 12, 31, 23, 59, 59).unwrap();
        assert_eq!(
            age(json!("9999-12-31T23:59:59.999999+00:00")),
            (end - t0()).num_seconds()
        );
        let start = Utc.with_ymd_and_hms(1, 1, 1, 0, 0, 0).unwrap();
        assert_eq!(
            age(json!("0001-01-01T00:00:00+00:00")),
            (start - t0()).num_seconds()
        );
        let far = expiry_date(t0(), Some(&json!(i64::MAX)), AGE);
        assert_eq!(far, DateTime::<Utc>::MAX_UTC);
        let past = expiry_date(t0(), Some(&json!(i64::MIN)), AGE);
        assert_eq!(past, DateTime::<Utc>::MIN_UTC);
        let huge = expiry_date(DateTime::<Utc>::MAX_UTC, Some(&json!(1e300)), AGE);
        assert_eq!(huge, DateTime::<Utc>::MAX_UTC);
    }

    #[test]
    fn expiry_date_adds_seconds_or_returns_the_stored_time() {
        assert_eq!(expiry_date(t0(), None, AGE), t0() + TimeDelta::seconds(AGE));
        assert_eq!(
            expiry_date(t0(), Some(&json!(60)), AGE),
            t0() + TimeDelta::seconds(60)
        );
        assert_eq!(
            expiry_date(t0(), Some(&json!(1.5)), AGE),
            t0() + TimeDelta::milliseconds(1500)
        );
        assert_eq!(
            expiry_date(t0(), Some(&json!(0)), AGE),
            t0() + TimeDelta::seconds(AGE)
        );
        let at = Utc.with_ymd_and_hms(2030, 1, 1, 0, 0, 0).unwrap();
        assert_eq!(
            expiry_date(t0(), Some(&json!("2030-01-01T00:00:00+00:00")), AGE),
            at
        );
    }

    #[test]
    fn browser_close_follows_the_setting_only_without_an_expiry() {
        assert!(expires_at_browser_close(None, true));
        assert!(!expires_at_browser_close(None, false));
        assert!(expires_at_browser_close(Some(&json!(null)), true));
        assert!(expires_at_browser_close(Some(&json!(0)), false));
        assert!(expires_at_browser_close(Some(&json!(0.0)), false));
        assert!(expires_at_browser_close(Some(&json!(false)), false));
        assert!(!expires_at_browser_close(Some(&json!(60)), true));
        assert!(!expires_at_browser_close(
            Some(&json!("2030-01-01T00:00:00+00:00")),
            true
        ));
    }
}
