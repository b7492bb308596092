//! Time conversions between the ABI's [`Timestamp`], chrono, and the text forms Django uses.
//!
//! Django stores `_session_expiry` as `datetime.isoformat()` text and reads it back with
//! `datetime.fromisoformat()` (Python 3.11+ grammar); cookies carry `expires` as an HTTP date.
//! Every function here saturates at the ends of the representable range and never panics:
//! stored data is untrusted, and year 9999 or `i64::MAX` must yield "expired" or "far future",
//! not a crash.

use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, NaiveTime, Timelike, Utc};
use sessionkit_sdk::Timestamp;

/// The datetime for a [`Timestamp`], clamped to chrono's range (about ±262,000 years), so
/// `i64::MIN`/`i64::MAX` microseconds give the earliest/latest representable instant.
pub fn to_datetime(ts: Timestamp) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(ts.micros).unwrap_or(if ts.micros < 0 {
        DateTime::<Utc>::MIN_UTC
    } else {
        DateTime::<Utc>::MAX_UTC
    })
}

/// The [`Timestamp`] of a datetime (sub-microsecond precision is dropped; chrono's whole range
/// fits in `i64` microseconds).
pub fn from_datetime(dt: DateTime<Utc>) -> Timestamp {
    Timestamp::from_micros(dt.timestamp_micros())
}

/// Python's `datetime.isoformat()` of an aware UTC datetime, as Django stores `_session_expiry`:
/// `2025-06-16T15:06:40+00:00`, with `.ffffff` only when the microseconds are not zero.
///
/// The offset is written `+00:00`, never `Z`: Python 3.10, which Django 5.2 supports, cannot
/// parse `Z`. Datetimes outside Python's range (years 1–9999) are clamped to its ends so the
/// text always parses in Python.
pub fn isoformat(dt: DateTime<Utc>) -> String {
    let dt = clamp_to_python(dt);
    let micros = dt.timestamp_subsec_micros();
    if micros == 0 {
        format!("{}+00:00", dt.format("%Y-%m-%dT%H:%M:%S"))
    } else {
        format!("{}.{micros:06}+00:00", dt.format("%Y-%m-%dT%H:%M:%S"))
    }
}

/// Parses the text Python 3.11's `datetime.fromisoformat` accepts and returns it in UTC.
///
/// Accepted forms (a port of CPython 3.11's `_datetimemodule.c`): dates `YYYY-MM-DD`,
/// `YYYYMMDD`, `YYYY-Www[-D]`, `YYYYWww[D]`; then optionally any single ASCII separator and a
/// time `HH[:MM[:SS[.f…]]]` or `HH[MM[SS[.f…]]]` (`.` or `,`; digits past six are dropped);
/// then optionally `Z` or `±HH[:MM[:SS[.ffffff]]]`. A naive time is taken as UTC (Django runs
/// with `USE_TZ=True` and stores aware UTC text). Returns `None` for anything else, including
/// out-of-range fields and offsets of 24 hours or more; never panics.
pub fn parse_isoformat(s: &str) -> Option<DateTime<Utc>> {
    iso::parse(s)
}

/// An HTTP date (RFC 7231 IMF-fixdate), as Django writes a cookie's `expires`:
/// `Sun, 29 Jun 2025 15:06:40 GMT`. Clamped to years 1–9999 like [`isoformat`].
pub fn http_date(dt: DateTime<Utc>) -> String {
    // Written by hand: chrono's formatter parses the format string on every call, which cost
    // a few thousand instructions per Set-Cookie (BENCHMARKS.md, "Issue 11").
    const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let dt = clamp_to_python(dt);
    let mut out = String::with_capacity(29);
    out.push_str(DAYS[dt.weekday().num_days_from_monday() as usize]);
    out.push_str(", ");
    push_digits(&mut out, dt.day(), 2);
    out.push(' ');
    out.push_str(MONTHS[dt.month0() as usize]);
    out.push(' ');
    // Years 1-9999 after the clamp, written with 4 digits like chrono's `%Y`.
    push_digits(&mut out, dt.year().unsigned_abs(), 4);
    out.push(' ');
    push_digits(&mut out, dt.hour(), 2);
    out.push(':');
    push_digits(&mut out, dt.minute(), 2);
    out.push(':');
    push_digits(&mut out, dt.second(), 2);
    out.push_str(" GMT");
    out
}

/// Appends the last `width` decimal digits of `n`, zero-padded.
fn push_digits(out: &mut String, n: u32, width: u32) {
    for place in (0..width).rev() {
        let digit = (n / 10u32.pow(place)) % 10;
        out.push(char::from(b'0' + digit as u8));
    }
}

/// Clamps to Python's `datetime.min`/`datetime.max` (0001-01-01 to 9999-12-31T23:59:59.999999).
fn clamp_to_python(dt: DateTime<Utc>) -> DateTime<Utc> {
    let (min, max) = python_range();
    dt.clamp(min, max)
}

fn python_range() -> (DateTime<Utc>, DateTime<Utc>) {
    let min = NaiveDate::from_ymd_opt(1, 1, 1)
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|n| n.and_utc())
        .unwrap_or(DateTime::<Utc>::MIN_UTC);
    let max = NaiveDate::from_ymd_opt(9999, 12, 31)
        .and_then(|d| d.and_hms_micro_opt(23, 59, 59, 999_999))
        .map(|n| n.and_utc())
        .unwrap_or(DateTime::<Utc>::MAX_UTC);
    (min, max)
}

/// Whether a datetime lies in Python's range (years 1–9999).
pub(crate) fn in_python_range(dt: DateTime<Utc>) -> bool {
    (1..=9999).contains(&dt.year())
}

/// The port of CPython 3.11's `datetime.fromisoformat` (C implementation).
///
/// The C code reads past the end of a component into the NUL terminator; [`Cursor::at`]
/// returns 0 past the end to reproduce that exactly.
mod iso {
    use super::*;

    struct Cursor<'a> {
        s: &'a [u8],
    }

    impl Cursor<'_> {
        /// The byte at `i`, or NUL past the end (C string semantics).
        fn at(&self, i: usize) -> u8 {
            self.s.get(i).copied().unwrap_or(0)
        }

        /// Reads exactly `n` ASCII digits at `pos`; the value and the position after them.
        fn digits(&self, pos: usize, n: usize) -> Option<(u32, usize)> {
            let mut v: u32 = 0;
            for i in pos..pos + n {
                let b = self.at(i);
                if !b.is_ascii_digit() {
                    return None;
                }
                v = v * 10 + u32::from(b - b'0');
            }
            Some((v, pos + n))
        }
    }

    pub(super) fn parse(text: &str) -> Option<DateTime<Utc>> {
        if text.chars().count() < 7 {
            return None;
        }
        let c = Cursor { s: text.as_bytes() };
        let sep = separator_location(&c)?;
        let date = parse_date(&c, sep)?;
        let (time, offset_micros) = if text.len() > sep {
            // The separator is any one character (CPython sanitises a non-ASCII one to 'T').
            // Every byte before `sep` was checked to be an ASCII digit, '-' or 'W' by
            // parse_date, so `sep` is a character boundary.
            let sep_len = text
                .get(sep..)
                .and_then(|t| t.chars().next())
                .map_or(1, char::len_utf8);
            parse_time(&c, sep + sep_len)?
        } else {
            (NaiveTime::MIN, None)
        };
        let local = NaiveDateTime::new(date, time).and_utc();
        if !in_python_range(local) {
            return None;
        }
        match offset_micros {
            None => Some(local),
            Some(off) => local.checked_sub_signed(chrono::TimeDelta::microseconds(off)),
        }
    }

    /// `_find_isoformat_datetime_separator`.
    fn separator_location(c: &Cursor<'_>) -> Option<usize> {
        let len = c.s.len();
        if len == 7 {
            return Some(7);
        }
        if c.at(4) == b'-' {
            if c.at(5) == b'W' {
                if len > 8 && c.at(8) == b'-' {
                    if len == 9 {
                        return None;
                    }
                    if len > 10 && c.at(10).is_ascii_digit() {
                        return Some(8);
                    }
                    return Some(10);
                }
                return Some(8);
            }
            return Some(10);
        }
        if c.at(4) == b'W' {
            let mut idx = 7;
            while idx < len && c.at(idx).is_ascii_digit() {
                idx += 1;
            }
            if idx < 9 {
                return Some(idx);
            }
            return Some(if idx % 2 == 0 { 7 } else { 8 });
        }
        Some(8)
    }

    /// `parse_isoformat_date`: the date in the first `len` bytes.
    fn parse_date(c: &Cursor<'_>, len: usize) -> Option<NaiveDate> {
        let (year, mut p) = c.digits(0, 4)?;
        let uses_sep = c.at(p) == b'-';
        if uses_sep {
            p += 1;
        }
        if c.at(p) == b'W' {
            let (week, after) = c.digits(p + 1, 2)?;
            p = after;
            let day = if p < len {
                if uses_sep {
                    if c.at(p) != b'-' {
                        return None;
                    }
                    p += 1;
                }
                c.digits(p, 1)?.0
            } else {
                1
            };
            let weekday = match day {
                1 => chrono::Weekday::Mon,
                2 => chrono::Weekday::Tue,
                3 => chrono::Weekday::Wed,
                4 => chrono::Weekday::Thu,
                5 => chrono::Weekday::Fri,
                6 => chrono::Weekday::Sat,
                7 => chrono::Weekday::Sun,
                _ => return None,
            };
            let date = NaiveDate::from_isoywd_opt(i32::try_from(year).ok()?, week, weekday)?;
            return (1..=9999).contains(&date.year()).then_some(date);
        }
        let (month, mut p) = c.digits(p, 2)?;
        if uses_sep {
            if c.at(p) != b'-' {
                return None;
            }
            p += 1;
        }
        let (day, _) = c.digits(p, 2)?;
        if year == 0 {
            return None;
        }
        NaiveDate::from_ymd_opt(i32::try_from(year).ok()?, month, day)
    }

    /// `parse_isoformat_time` from `start`: the time and the UTC offset in microseconds.
    fn parse_time(c: &Cursor<'_>, start: usize) -> Option<(NaiveTime, Option<i64>)> {
        let end = c.s.len();
        // do { if Z/+/- break } while (++pos < end): the first position checked is `start`
        // even when it is the end.
        let mut tz = start;
        loop {
            if matches!(c.at(tz), b'Z' | b'+' | b'-') {
                break;
            }
            tz += 1;
            if tz >= end {
                break;
            }
        }
        let (hms, rv) = parse_hh_mm_ss_ff(c, start, tz)?;
        let time = NaiveTime::from_hms_micro_opt(hms[0], hms[1], hms[2], hms[3])?;
        if tz == end {
            // No time zone: anything left over is an error.
            return (!rv).then_some((time, None));
        }
        if tz > end {
            return None;
        }
        if c.at(tz) == b'Z' {
            return (c.at(tz + 1) == 0).then_some((time, Some(0)));
        }
        let sign: i64 = if c.at(tz) == b'-' { -1 } else { 1 };
        let (off, rv) = parse_hh_mm_ss_ff(c, tz + 1, end)?;
        if rv {
            return None;
        }
        let seconds = i64::from(off[0]) * 3600 + i64::from(off[1]) * 60 + i64::from(off[2]);
        let micros = seconds * 1_000_000 + i64::from(off[3]);
        // datetime.timezone requires -24h < offset < 24h.
        if micros >= 86_400 * 1_000_000 {
            return None;
        }
        Some((time, Some(sign * micros)))
    }

    /// `parse_hh_mm_ss_ff` over `[start, end)`: `[h, m, s, us]` and whether something other
    /// than the end of the string follows (the C function's return value 1).
    fn parse_hh_mm_ss_ff(c: &Cursor<'_>, start: usize, end: usize) -> Option<([u32; 4], bool)> {
        let mut vals = [0u32; 4];
        let mut p = start;
        let mut has_sep = true;
        for (i, val) in vals.iter_mut().take(3).enumerate() {
            let (v, after) = c.digits(p, 2)?;
            *val = v;
            let ch = c.at(after);
            p = after + 1;
            if i == 0 {
                has_sep = ch == b':';
            }
            if p >= end {
                return Some((vals, ch != 0));
            } else if has_sep && ch == b':' {
                continue;
            } else if ch == b'.' || ch == b',' {
                break;
            } else if !has_sep {
                p -= 1;
            } else {
                return None;
            }
        }
        // The fraction (also reached after three components, which is how CPython reads
        // `HHMMSS1` or `HH:MM:SS:5`).
        let to_parse = end.saturating_sub(p).min(6);
        if to_parse == 0 {
            return None;
        }
        let (mut micros, mut p) = c.digits(p, to_parse)?;
        // to_parse is 1..=6.
        micros *= 10u32.pow(6 - to_parse as u32);
        vals[3] = micros;
        while c.at(p).is_ascii_digit() {
            p += 1;
        }
        Some((vals, c.at(p) != 0))
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32, us: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, s).unwrap()
            + chrono::TimeDelta::microseconds(us.into())
    }

    #[test]
    fn timestamps_round_trip_through_chrono() {
        for micros in [0, 1, -1, 1_750_000_000_123_456, -62_135_596_800_000_000] {
            let ts = Timestamp::from_micros(micros);
            assert_eq!(from_datetime(to_datetime(ts)), ts);
        }
    }

    #[test]
    fn extreme_timestamps_saturate_instead_of_panicking() {
        assert_eq!(
            to_datetime(Timestamp::from_micros(i64::MAX)),
            DateTime::<Utc>::MAX_UTC
        );
        assert_eq!(
            to_datetime(Timestamp::from_micros(i64::MIN)),
            DateTime::<Utc>::MIN_UTC
        );
        // The whole chrono range fits back into a Timestamp.
        assert!(from_datetime(DateTime::<Utc>::MAX_UTC).micros > 0);
        assert!(from_datetime(DateTime::<Utc>::MIN_UTC).micros < 0);
    }

    #[test]
    fn isoformat_writes_plus_zero_offset_and_micros_only_when_nonzero() {
        assert_eq!(
            isoformat(utc(2025, 6, 16, 15, 6, 40, 0)),
            "2025-06-16T15:06:40+00:00"
        );
        assert_eq!(
            isoformat(utc(2025, 6, 16, 15, 6, 40, 123)),
            "2025-06-16T15:06:40.000123+00:00"
        );
        assert_eq!(
            isoformat(utc(33, 1, 2, 3, 4, 5, 0)),
            "0033-01-02T03:04:05+00:00"
        );
    }

    #[test]
    fn isoformat_clamps_to_pythons_year_range() {
        assert_eq!(
            isoformat(DateTime::<Utc>::MAX_UTC),
            "9999-12-31T23:59:59.999999+00:00"
        );
        assert_eq!(
            isoformat(DateTime::<Utc>::MIN_UTC),
            "0001-01-01T00:00:00+00:00"
        );
    }

    #[test]
    fn parse_isoformat_reads_what_isoformat_writes() {
        for dt in [
            utc(2025, 6, 16, 15, 6, 40, 0),
            utc(1999, 12, 31, 23, 59, 59, 999_999),
        ] {
            assert_eq!(parse_isoformat(&isoformat(dt)), Some(dt));
        }
    }

    #[test]
    fn parse_isoformat_accepts_python_311_forms() {
        let base = utc(2025, 6, 16, 10, 0, 0, 0);
        for s in [
            "2025-06-16T10:00:00",
            "2025-06-16 10:00:00",
            "2025-06-16x10:00:00",
            "2025-06-16é10:00:00",
            "2025-06-16T10:00:00Z",
            "2025-06-16T10:00:00+00:00",
            "2025-06-16T10:00:00-00:00",
            "2025-06-16T11:00:00+01:00",
            "2025-06-16T11:00:00+0100",
            "2025-06-16T11:00:00+01",
            "2025-06-16T09:30:00-00:30",
            "2025-06-16T10",
            "2025-06-16T10:00",
            "2025-06-16T1000",
            "20250616T100000",
            "2025-W25-1T10:00:00",
            "2025W251T10:00",
        ] {
            assert_eq!(parse_isoformat(s), Some(base), "{s}");
        }
        assert_eq!(
            parse_isoformat("2025-06-16"),
            Some(utc(2025, 6, 16, 0, 0, 0, 0))
        );
        assert_eq!(
            parse_isoformat("2025-W25"),
            Some(utc(2025, 6, 16, 0, 0, 0, 0))
        );
        assert_eq!(
            parse_isoformat("20250616T100000,5Z"),
            Some(utc(2025, 6, 16, 10, 0, 0, 500_000))
        );
        assert_eq!(
            parse_isoformat("2025-06-16T10:00:00.1234567"),
            Some(utc(2025, 6, 16, 10, 0, 0, 123_456))
        );
        assert_eq!(
            parse_isoformat("2025-06-16T10:00:00+01:00:30.5"),
            Some(utc(2025, 6, 16, 8, 59, 29, 500_000))
        );
    }

    #[test]
    fn parse_isoformat_rejects_garbage_without_panicking() {
        for s in [
            "",
            "2025",
            "2025-06",
            "garbage-text",
            "2025-13-01",
            "2025-02-30",
            "0000-01-01",
            "2025-06-16T24:00:00",
            "2025-06-16T10:60:00",
            "2025-06-16T10:00:60",
            "2025-06-16T",
            "2025-06-16T10:",
            "2025-06-16T10:00:00+24:00",
            "2025-06-16T10:00:00Zjunk",
            "2025-06-16T10:00:00+",
            "2025-06-16T10:00:00 extra",
            "2025-06-16T10:0000",
            "2025-W54-1",
            "2025-W01-8",
            "\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}",
        ] {
            assert_eq!(parse_isoformat(s), None, "{s:?}");
        }
    }

    #[test]
    fn http_date_is_imf_fixdate() {
        assert_eq!(
            http_date(utc(2025, 6, 29, 15, 6, 40, 999)),
            "Sun, 29 Jun 2025 15:06:40 GMT"
        );
        assert_eq!(
            http_date(DateTime::<Utc>::MAX_UTC),
            "Fri, 31 Dec 9999 23:59:59 GMT"
        );
        assert_eq!(
            http_date(DateTime::<Utc>::MIN_UTC),
            "Mon, 01 Jan 0001 00:00:00 GMT"
        );
    }

    #[test]
    fn http_date_matches_chronos_formatter_across_the_range() {
        // Steps of a little over 9 days and 1 s through years 1-9999 hit every weekday, month,
        // day, hour, minute and second.
        let mut t = python_range().0.timestamp();
        let end = python_range().1.timestamp();
        while t <= end {
            let dt = DateTime::from_timestamp(t, 0).unwrap();
            assert_eq!(
                http_date(dt),
                dt.format("%a, %d %b %Y %H:%M:%S GMT").to_string(),
                "{t}"
            );
            t += 9 * 86_400 + 3_601 + 61 + 1;
        }
    }
}
