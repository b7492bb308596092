//! `expire_date` as each backend stores it, exactly as Django does.
//!
//! Django (USE_TZ=True) keeps aware UTC datetimes. Its SQLite backend stores them as text
//! `YYYY-MM-DD HH:MM:SS` plus `.ffffff` only when the microseconds are not zero, with no offset
//! (`str()` of the naive UTC datetime), and compares them as text; PostgreSQL stores
//! `timestamp with time zone`. Python's `datetime` spans the years 1 to 9999, so timestamps are
//! clamped into that range before they are stored: both sides can always read the row back.

use std::fmt::Write as _;

use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, NaiveTime, Timelike, Utc};
use sessionkit_sdk::Timestamp;

/// 0001-01-01T00:00:00Z, Python's `datetime.min`, in microseconds since the epoch.
pub(crate) const MIN_MICROS: i64 = -62_135_596_800_000_000;
/// 9999-12-31T23:59:59.999999Z, Python's `datetime.max`, in microseconds since the epoch.
pub(crate) const MAX_MICROS: i64 = 253_402_300_799_999_999;

/// `ts` moved into the range Django can represent.
pub(crate) fn clamp(ts: Timestamp) -> Timestamp {
    Timestamp::from_micros(ts.micros.clamp(MIN_MICROS, MAX_MICROS))
}

/// `ts` as a chrono UTC datetime (clamped; never fails).
pub(crate) fn to_chrono(ts: Timestamp) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(clamp(ts).micros).unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// A chrono UTC datetime as a timestamp (chrono's whole range fits in i64 microseconds).
pub(crate) fn from_chrono(dt: DateTime<Utc>) -> Timestamp {
    Timestamp::from_micros(dt.timestamp_micros())
}

/// The text Django's SQLite backend stores for `ts`: `2030-01-02 03:04:05` or
/// `2030-01-02 03:04:05.000123`.
pub(crate) fn to_sqlite_text(ts: Timestamp) -> String {
    let dt = to_chrono(ts);
    let mut out = String::with_capacity(26);
    // Writing into a String cannot fail.
    let _ = write!(
        out,
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
        dt.year(),
        dt.month(),
        dt.day(),
        dt.hour(),
        dt.minute(),
        dt.second()
    );
    let micros = dt.timestamp_subsec_micros();
    if micros != 0 {
        let _ = write!(out, ".{micros:06}");
    }
    out
}

/// Parses a stored SQLite `expire_date` the way Django's `parse_datetime` does: `YYYY-MM-DD`,
/// then `T` or a space, `H:M` with optional `:S` and `.`/`,` fraction (digits past the sixth
/// ignored), then optional whitespace and `Z` or `±HH[[:]MM]`; a bare date means midnight.
/// Text without an offset is UTC (Django's SQLite connection time zone with USE_TZ).
pub(crate) fn parse_sqlite_text(text: &str) -> Option<Timestamp> {
    let mut p = Parser {
        bytes: text.as_bytes(),
        pos: 0,
    };
    let year = p.digits(4, 4)?;
    p.byte(b'-')?;
    let month = p.digits(1, 2)?;
    p.byte(b'-')?;
    let day = p.digits(1, 2)?;
    let date = NaiveDate::from_ymd_opt(i32::try_from(year).ok()?, month, day)?;
    if p.done() {
        return Some(from_chrono(date.and_time(NaiveTime::MIN).and_utc()));
    }
    if !matches!(p.next()?, b'T' | b' ') {
        return None;
    }
    let hour = p.digits(1, 2)?;
    p.byte(b':')?;
    let minute = p.digits(1, 2)?;
    let (mut second, mut micros) = (0, 0);
    if p.peek() == Some(b':') {
        p.pos += 1;
        second = p.digits(1, 2)?;
        if matches!(p.peek(), Some(b'.' | b',')) {
            p.pos += 1;
            let start = p.pos;
            let fraction = p.digits(1, 6)?;
            let scale = 10u32.pow(u32::try_from(6 - (p.pos - start)).ok()?);
            micros = fraction * scale;
            let _ = p.digits(0, 6);
        }
    }
    while p.peek().is_some_and(|b| b.is_ascii_whitespace()) {
        p.pos += 1;
    }
    let mut offset_secs: i64 = 0;
    match p.next() {
        None => {}
        Some(b'Z') => {}
        Some(sign @ (b'+' | b'-')) => {
            let hours = i64::from(p.digits(2, 2)?);
            let minutes = if p.peek() == Some(b':') {
                p.pos += 1;
                i64::from(p.digits(2, 2)?)
            } else if p.done() {
                0
            } else {
                i64::from(p.digits(2, 2)?)
            };
            offset_secs = (hours * 3600 + minutes * 60) * if sign == b'-' { -1 } else { 1 };
        }
        Some(_) => return None,
    }
    if !p.done() {
        return None;
    }
    let time = NaiveTime::from_hms_micro_opt(hour, minute, second, micros)?;
    let local = NaiveDateTime::new(date, time).and_utc();
    let micros = local
        .timestamp_micros()
        .checked_sub(offset_secs.checked_mul(1_000_000)?)?;
    Some(Timestamp::from_micros(micros))
}

struct Parser<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let b = self.peek()?;
        self.pos += 1;
        Some(b)
    }

    fn done(&self) -> bool {
        self.pos == self.bytes.len()
    }

    fn byte(&mut self, expected: u8) -> Option<()> {
        (self.next()? == expected).then_some(())
    }

    /// Between `min` and `max` ASCII digits as a number.
    fn digits(&mut self, min: usize, max: usize) -> Option<u32> {
        let start = self.pos;
        let mut value: u32 = 0;
        while self.pos - start < max {
            match self.peek() {
                Some(b @ b'0'..=b'9') => {
                    value = value * 10 + u32::from(b - b'0');
                    self.pos += 1;
                }
                _ => break,
            }
        }
        (self.pos - start >= min).then_some(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(text: &str) -> Timestamp {
        parse_sqlite_text(text).unwrap_or_else(|| panic!("{text} did not parse"))
    }

    /// 2030-01-02T03:04:05Z.
    const T: i64 = 1_893_553_445;

    #[test]
    fn whole_seconds_are_stored_without_a_fraction() {
        assert_eq!(
            to_sqlite_text(Timestamp::from_secs(T)),
            "2030-01-02 03:04:05"
        );
    }

    #[test]
    fn microseconds_are_stored_as_six_digits() {
        let t = Timestamp::from_micros(T * 1_000_000 + 123);
        assert_eq!(to_sqlite_text(t), "2030-01-02 03:04:05.000123");
        assert_eq!(ts("2030-01-02 03:04:05.000123"), t);
    }

    #[test]
    fn django_text_forms_parse() {
        let base = Timestamp::from_secs(T);
        assert_eq!(ts("2030-01-02 03:04:05"), base);
        assert_eq!(ts("2030-01-02T03:04:05"), base);
        assert_eq!(ts("2030-01-02 03:04:05Z"), base);
        assert_eq!(ts("2030-01-02 05:04:05+02:00"), base);
        assert_eq!(ts("2030-01-02 01:04:05 -0200"), base);
        assert_eq!(ts("2030-01-02 03:04:05.5").micros, T * 1_000_000 + 500_000);
        assert_eq!(
            ts("2030-01-02 03:04:05,1234567").micros,
            T * 1_000_000 + 123_456
        );
        assert_eq!(ts("2030-1-2 3:4:5"), base);
        assert_eq!(ts("2030-01-02 03:04").micros, (T - 5) * 1_000_000);
        assert_eq!(
            ts("2030-01-02").micros,
            (T - 3 * 3600 - 4 * 60 - 5) * 1_000_000
        );
    }

    #[test]
    fn garbage_does_not_parse() {
        for bad in [
            "",
            "tomorrow",
            "2030-13-01 00:00:00",
            "2030-01-02 03:04:05 junk",
            "1893553445",
        ] {
            assert_eq!(parse_sqlite_text(bad), None, "{bad}");
        }
    }

    #[test]
    fn text_order_is_time_order() {
        let a = to_sqlite_text(Timestamp::from_secs(T));
        let b = to_sqlite_text(Timestamp::from_micros(T * 1_000_000 + 1));
        let c = to_sqlite_text(Timestamp::from_secs(T + 1));
        assert!(a < b && b < c, "{a} {b} {c}");
    }

    #[test]
    fn out_of_range_timestamps_are_clamped_to_python_datetime() {
        assert_eq!(
            to_sqlite_text(Timestamp::from_micros(i64::MAX)),
            "9999-12-31 23:59:59.999999"
        );
        assert_eq!(
            to_sqlite_text(Timestamp::from_micros(i64::MIN)),
            "0001-01-01 00:00:00"
        );
        assert_eq!(
            from_chrono(to_chrono(Timestamp::from_micros(i64::MAX))).micros,
            MAX_MICROS
        );
        assert_eq!(ts("9999-12-31 23:59:59.999999").micros, MAX_MICROS);
        assert_eq!(ts("0001-01-01 00:00:00").micros, MIN_MICROS);
    }
}
