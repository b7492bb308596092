//! Python-compatible JSON: what Django's `JSONSerializer` writes and reads.
//!
//! Django stores a session as `json.dumps(session, separators=(",", ":"))` with Python's default
//! `ensure_ascii=True`, then reads it back by decoding the bytes as **latin-1** before parsing.
//! A Rust writer must therefore produce exactly Python's ASCII-only text (raw UTF-8 would come
//! back from Django as mojibake), and must print floats the way Python's `repr` does so that the
//! signed bytes are identical.
//!
//! # Rules
//!
//! - Compact: no spaces after `,` or `:`; objects keep their insertion order.
//! - Strings: `"` and `\` are escaped as `\"` and `\\`; `\n \t \r \b \f` get short escapes;
//!   every other character outside 0x20–0x7E (control characters, DEL, U+2028, every non-ASCII
//!   character) becomes `\uXXXX` in lowercase hex, astral characters as a UTF-16 surrogate
//!   pair. `/` and `<` are not escaped.
//! - Integers are written in full; floats use Python's `repr`: the shortest digits that round
//!   trip, in exponent form (`1e-07`, `1.5e+16`) when the decimal exponent is below -4 or at
//!   least 16, otherwise positional with at least one fractional digit (`100.0`, `-0.0`).
//! - Depth: at most [`MAX_DEPTH`] nested arrays/objects, the most `serde_json` parses back.

use std::fmt::{self, Write as _};

use serde::Serialize;
use serde_json::{Map, Number, Value};

/// The deepest nesting of arrays/objects that is stored: `serde_json` refuses to parse deeper
/// documents (its recursion limit), so anything deeper could be saved but never loaded again.
pub const MAX_DEPTH: usize = 127;

/// Why a value cannot be stored as a session (it would not survive a save/load round trip).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JsonError {
    /// Arrays/objects are nested deeper than [`MAX_DEPTH`]; `depth` is the level at which
    /// writing stopped (the value may be deeper still).
    #[error("value is nested {depth} levels deep; at most {max} levels can be stored")]
    TooDeep {
        /// The nesting level reached when the limit was hit.
        depth: usize,
        /// The limit ([`MAX_DEPTH`]).
        max: usize,
    },
    /// A float is NaN or infinite; JSON cannot carry it and `serde_json` would turn it into
    /// `null` silently.
    #[error("value contains a non-finite number (NaN or infinity), which JSON cannot store")]
    NonFiniteNumber,
}

/// Why a Rust value could not be turned into a storable session value.
#[derive(Debug, thiserror::Error)]
pub enum ToValueError {
    /// The value serialised, but cannot be stored (too deep or non-finite).
    #[error(transparent)]
    Unstorable(#[from] JsonError),
    /// The value's `Serialize` implementation failed (e.g. a map with non-string keys).
    #[error("value cannot be serialised to JSON: {0}")]
    Serialize(#[from] serde_json::Error),
}

/// Writes `value` as Python's `json.dumps(value, separators=(",", ":"))` would (ASCII-only).
///
/// This is the exact byte sequence Django signs, so encoding a session with it gives the same
/// `session_data` as Django.
///
/// # Errors
///
/// [`JsonError::TooDeep`] past [`MAX_DEPTH`] levels, [`JsonError::NonFiniteNumber`] for NaN or
/// infinity. Nothing deeper than the limit is visited, so a pathologically deep value cannot
/// overflow the stack here.
///
/// # Examples
///
/// ```
/// use sessionkit_codec::json::to_python_json;
/// let v = serde_json::json!({"name": "Zoë", "n": 1e-7, "big": 1e16, "ok": [true, null]});
/// assert_eq!(
///     to_python_json(&v).unwrap(),
///     r#"{"name":"Zo\u00eb","n":1e-07,"big":1e+16,"ok":[true,null]}"#
/// );
/// ```
pub fn to_python_json(value: &Value) -> Result<String, JsonError> {
    let mut out = String::with_capacity(128);
    write_value(&mut out, value, 0)?;
    Ok(out)
}

/// Like [`to_python_json`] for a map, without wrapping it in a [`Value`] first.
pub(crate) fn map_to_python_json(map: &Map<String, Value>) -> Result<String, JsonError> {
    let mut out = String::with_capacity(128);
    write_object(&mut out, map, 1)?;
    Ok(out)
}

/// Checks that `value` survives a save/load round trip: nesting of at most [`MAX_DEPTH`]
/// levels and only finite numbers.
///
/// Call it when the application inserts data, so a bad value is refused at the call that
/// added it rather than at save time.
///
/// # Errors
///
/// The same as [`to_python_json`].
pub fn check_storable(value: &Value) -> Result<(), JsonError> {
    check_value(value, 0)
}

/// Serialises a Rust value into a storable [`Value`], refusing NaN, infinities and nesting
/// deeper than [`MAX_DEPTH`].
///
/// `serde_json::to_value(f64::NAN)` silently gives `null`, and `to_value` of a very deep value
/// overflows the stack; this first walks the value (bounded by the depth limit), then converts it
/// and applies [`check_storable`].
///
/// # Errors
///
/// [`ToValueError::Unstorable`] for non-finite floats or too deep nesting,
/// [`ToValueError::Serialize`] when the type's `Serialize` implementation fails.
pub fn to_storable_value<T: Serialize + ?Sized>(value: &T) -> Result<Value, ToValueError> {
    match value.serialize(crate::storable::Walker { depth: 0 }) {
        // A failing `Serialize` impl fails `to_value` too, which reports it.
        Ok(()) | Err(crate::storable::WalkError::Custom) => {}
        Err(crate::storable::WalkError::Json(error)) => {
            return Err(ToValueError::Unstorable(error));
        }
    }
    let v = serde_json::to_value(value)?;
    check_storable(&v)?;
    Ok(v)
}

/// Parses stored session JSON the way Django does: the bytes are decoded as latin-1, then
/// parsed as JSON.
///
/// ASCII input (everything Django or [`to_python_json`] writes) parses as-is. Raw bytes
/// 0x80–0xFF each become the character with that code point, exactly like Django (so raw UTF-8
/// comes back as mojibake, as it does in Django). Python's bare `NaN`, `Infinity` and
/// `-Infinity` tokens (which Django writes for non-finite floats) are read as `null`, since a
/// [`Value`] cannot hold them; the rest of the session is kept. Whitespace and duplicate keys
/// (the last wins) are accepted. Nesting deeper than [`MAX_DEPTH`] and numbers out of `f64`
/// range (`1e400`) are errors.
///
/// # Errors
///
/// The `serde_json` error when the text is not JSON.
pub fn parse_python_json(bytes: &[u8]) -> Result<Value, serde_json::Error> {
    let text: std::borrow::Cow<'_, str> = if bytes.is_ascii() {
        // ASCII is valid UTF-8 and latin-1 decoding is the identity on it.
        std::borrow::Cow::Borrowed(std::str::from_utf8(bytes).unwrap_or_default())
    } else {
        std::borrow::Cow::Owned(bytes.iter().map(|&b| char::from(b)).collect())
    };
    parse_python_json_text(&text)
}

/// [`parse_python_json`] of text that is already characters (a session dict an engine kept
/// unsigned, as UTF-8): no latin-1 step, the same JSON rules.
///
/// # Errors
///
/// The `serde_json` error when the text is not JSON.
pub fn parse_python_json_text(text: &str) -> Result<Value, serde_json::Error> {
    match serde_json::from_str(text) {
        Ok(v) => Ok(v),
        Err(first) => match replace_python_non_finite(text) {
            Some(rewritten) => serde_json::from_str(&rewritten).map_err(|_| first),
            None => Err(first),
        },
    }
}

/// Rewrites Python's bare `NaN`, `Infinity` and `-Infinity` tokens (outside strings) to
/// `null`; `None` when there are none.
fn replace_python_non_finite(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut changed = false;
    let mut in_string = false;
    let mut i = 0;
    let mut copied = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if in_string {
            match b {
                b'\\' => i += 2,
                b'"' => {
                    in_string = false;
                    i += 1;
                }
                _ => i += 1,
            }
            continue;
        }
        let token = if b == b'"' {
            in_string = true;
            None
        } else if bytes[i..].starts_with(b"NaN") {
            Some(3)
        } else if bytes[i..].starts_with(b"Infinity") {
            Some(8)
        } else if bytes[i..].starts_with(b"-Infinity") {
            Some(9)
        } else {
            None
        };
        match token {
            Some(len) => {
                out.push_str(&text[copied..i]);
                out.push_str("null");
                i += len;
                copied = i;
                changed = true;
            }
            None => i += 1,
        }
    }
    if !changed {
        return None;
    }
    out.push_str(&text[copied.min(text.len())..]);
    Some(out)
}

fn check_value(value: &Value, depth: usize) -> Result<(), JsonError> {
    match value {
        Value::Number(n) => check_number(n),
        Value::Array(items) => {
            let depth = enter(depth)?;
            items.iter().try_for_each(|v| check_value(v, depth))
        }
        Value::Object(map) => {
            let depth = enter(depth)?;
            map.values().try_for_each(|v| check_value(v, depth))
        }
        Value::Null | Value::Bool(_) | Value::String(_) => Ok(()),
    }
}

fn check_number(n: &Number) -> Result<(), JsonError> {
    match n.as_f64() {
        Some(f) if !n.is_f64() || f.is_finite() => Ok(()),
        _ => Err(JsonError::NonFiniteNumber),
    }
}

/// One level deeper; an error past [`MAX_DEPTH`].
fn enter(depth: usize) -> Result<usize, JsonError> {
    let depth = depth + 1;
    if depth > MAX_DEPTH {
        return Err(JsonError::TooDeep {
            depth,
            max: MAX_DEPTH,
        });
    }
    Ok(depth)
}

fn write_value(out: &mut String, value: &Value, depth: usize) -> Result<(), JsonError> {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(true) => out.push_str("true"),
        Value::Bool(false) => out.push_str("false"),
        Value::Number(n) => write_number(out, n)?,
        Value::String(s) => write_string(out, s),
        Value::Array(items) => {
            let depth = enter(depth)?;
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_value(out, item, depth)?;
            }
            out.push(']');
        }
        Value::Object(map) => write_object(out, map, enter(depth)?)?,
    }
    Ok(())
}

/// Writes an object whose own level is `depth` (already counted).
fn write_object(out: &mut String, map: &Map<String, Value>, depth: usize) -> Result<(), JsonError> {
    out.push('{');
    for (i, (k, v)) in map.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_string(out, k);
        out.push(':');
        write_value(out, v, depth)?;
    }
    out.push('}');
    Ok(())
}

fn write_number(out: &mut String, n: &Number) -> Result<(), JsonError> {
    if let Some(i) = n.as_i64() {
        // Writing into a String cannot fail.
        let _ = write!(out, "{i}");
    } else if let Some(u) = n.as_u64() {
        let _ = write!(out, "{u}");
    } else {
        let f = n.as_f64().ok_or(JsonError::NonFiniteNumber)?;
        write_python_float(out, f)?;
    }
    Ok(())
}

/// Python's `float.__repr__` for a finite float.
fn write_python_float(out: &mut String, f: f64) -> Result<(), JsonError> {
    if !f.is_finite() {
        return Err(JsonError::NonFiniteNumber);
    }
    if f == 0.0 {
        out.push_str(if f.is_sign_negative() { "-0.0" } else { "0.0" });
        return Ok(());
    }
    // `{:e}` gives the shortest round-trip digits, e.g. "-1.2345e-7" or "1e16".
    let mut buf = StackBuf::default();
    // StackBuf holds 32 bytes; the longest f64 `{:e}` output is 24.
    let _ = write!(buf, "{f:e}");
    let sci = buf.as_str();
    let (negative, sci) = match sci.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, sci),
    };
    let (mantissa, exp) = sci.split_once('e').unwrap_or((sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let mut digits = StackBuf::default();
    for c in mantissa.chars().filter(char::is_ascii_digit) {
        let _ = digits.write_char(c);
    }
    let digits = digits.as_str();
    if negative {
        out.push('-');
    }
    if !(-4..16).contains(&exp) {
        // Exponent form: d[.ddd]e±XX (at least two exponent digits).
        out.push_str(&digits[..1]);
        if digits.len() > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        let sign = if exp < 0 { '-' } else { '+' };
        let _ = write!(out, "e{sign}{:02}", exp.unsigned_abs());
    } else if exp < 0 {
        out.push_str("0.");
        for _ in 0..(-exp - 1) {
            out.push('0');
        }
        out.push_str(digits);
    } else {
        // 0 <= exp < 16, so the cast is exact.
        let int_len = exp as usize + 1;
        if digits.len() <= int_len {
            out.push_str(digits);
            for _ in digits.len()..int_len {
                out.push('0');
            }
            out.push_str(".0");
        } else {
            out.push_str(&digits[..int_len]);
            out.push('.');
            out.push_str(&digits[int_len..]);
        }
    }
    Ok(())
}

/// Python's `py_encode_basestring_ascii`.
fn write_string(out: &mut String, s: &str) {
    out.push('"');
    let bytes = s.as_bytes();
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\' {
            i += 1;
            continue;
        }
        out.push_str(&s[start..i]);
        if b < 0x80 {
            match b {
                b'"' => out.push_str("\\\""),
                b'\\' => out.push_str("\\\\"),
                b'\n' => out.push_str("\\n"),
                b'\r' => out.push_str("\\r"),
                b'\t' => out.push_str("\\t"),
                0x08 => out.push_str("\\b"),
                0x0c => out.push_str("\\f"),
                _ => push_u_escape(out, u16::from(b)),
            }
            i += 1;
        } else {
            // `i` is at the start of a multi-byte character because every byte before it was
            // consumed whole.
            let c = s[i..].chars().next().unwrap_or(char::REPLACEMENT_CHARACTER);
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                push_u_escape(out, *unit);
            }
            i += c.len_utf8();
        }
        start = i;
    }
    out.push_str(&s[start..]);
    out.push('"');
}

fn push_u_escape(out: &mut String, unit: u16) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push_str("\\u");
    for shift in [12, 8, 4, 0] {
        out.push(char::from(HEX[usize::from((unit >> shift) & 0xf)]));
    }
}

/// A small fixed buffer for formatting one float without allocating.
#[derive(Default)]
struct StackBuf {
    buf: [u8; 32],
    len: usize,
}

impl StackBuf {
    fn as_str(&self) -> &str {
        // Only whole `&str`s are ever copied in, so the prefix is valid UTF-8.
        std::str::from_utf8(&self.buf[..self.len]).unwrap_or_default()
    }
}

impl fmt::Write for StackBuf {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let end = self.len + s.len();
        if end > self.buf.len() {
            return Err(fmt::Error);
        }
        self.buf[self.len..end].copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn py(v: Value) -> String {
        to_python_json(&v).unwrap()
    }

    fn float(f: f64) -> String {
        py(Value::from(f))
    }

    #[test]
    fn output_is_compact_and_keeps_insertion_order() {
        let mut m = Map::new();
        m.insert("z".into(), json!(1));
        m.insert("a".into(), json!([1, 2, {"b": null}]));
        m.insert("m".into(), json!(true));
        assert_eq!(
            py(Value::Object(m)),
            r#"{"z":1,"a":[1,2,{"b":null}],"m":true}"#
        );
        assert_eq!(py(json!({})), "{}");
        assert_eq!(py(json!([])), "[]");
    }

    #[test]
    fn removing_a_key_with_shift_remove_keeps_the_order_of_the_rest() {
        let mut m = Map::new();
        for k in ["a", "b", "c", "d"] {
            m.insert(k.into(), json!(k));
        }
        m.shift_remove("b");
        assert_eq!(
            map_to_python_json(&m).unwrap(),
            r#"{"a":"a","c":"c","d":"d"}"#
        );
    }

    #[test]
    fn quotes_and_backslashes_are_escaped_but_slash_and_angle_brackets_are_not() {
        assert_eq!(py(json!("a\"b\\c/d<e>&'")), r#""a\"b\\c/d<e>&'""#);
    }

    #[test]
    fn control_characters_get_short_or_lowercase_u_escapes() {
        assert_eq!(py(json!("\n\t\r\u{8}\u{c}")), r#""\n\t\r\b\f""#);
        assert_eq!(
            py(json!("\u{0}\u{1}\u{1f}\u{7f}")),
            r#""\u0000\u0001\u001f\u007f""#
        );
        assert_eq!(py(json!(" ~")), r#"" ~""#);
    }

    #[test]
    fn non_ascii_is_escaped_with_surrogate_pairs_for_astral_characters() {
        assert_eq!(py(json!("Zoë")), r#""Zo\u00eb""#);
        assert_eq!(
            py(json!("\u{2028}\u{2029}\u{feff}\u{ffff}")),
            r#""\u2028\u2029\ufeff\uffff""#
        );
        assert_eq!(py(json!("😀")), r#""\ud83d\ude00""#);
        assert_eq!(py(json!("\u{10ffff}")), r#""\udbff\udfff""#);
        assert_eq!(py(json!({"clé": "中文"})), r#"{"cl\u00e9":"\u4e2d\u6587"}"#);
    }

    #[test]
    fn output_is_always_ascii() {
        let s = py(json!({"x": "\u{0}é😀\u{2028}\u{7f}", "k\u{1}": ["\u{80}"]}));
        assert!(s.bytes().all(|b| (0x20..0x7f).contains(&b)), "{s}");
    }

    #[test]
    fn integers_are_written_in_full() {
        assert_eq!(py(json!(0)), "0");
        assert_eq!(py(json!(-1)), "-1");
        assert_eq!(py(json!(i64::MIN)), "-9223372036854775808");
        assert_eq!(py(json!(u64::MAX)), "18446744073709551615");
        assert_eq!(py(json!(9_007_199_254_740_993_i64)), "9007199254740993");
    }

    #[test]
    fn floats_follow_python_repr() {
        assert_eq!(float(1.5), "1.5");
        assert_eq!(float(100.0), "100.0");
        assert_eq!(float(0.0), "0.0");
        assert_eq!(float(-0.0), "-0.0");
        assert_eq!(float(0.1), "0.1");
        assert_eq!(float(1e-7), "1e-07");
        assert_eq!(float(1e16), "1e+16");
        assert_eq!(float(1.5e16), "1.5e+16");
        assert_eq!(float(1e15), "1000000000000000.0");
        assert_eq!(float(123_456_789_012_345.67), "123456789012345.67");
        assert_eq!(float(0.0001), "0.0001");
        assert_eq!(float(0.00001), "1e-05");
        assert_eq!(float(0.000_123_4), "0.0001234");
        assert_eq!(float(-2.5e-5), "-2.5e-05");
        assert_eq!(float(1e22), "1e+22");
        assert_eq!(float(1.7976931348623157e308), "1.7976931348623157e+308");
        assert_eq!(float(5e-324), "5e-324");
        assert_eq!(float(2.0f64.powi(60)), "1.152921504606847e+18");
        assert_eq!(float(1.0 / 3.0), "0.3333333333333333");
    }

    #[test]
    fn depth_up_to_127_is_storable_and_parses_back() {
        let mut v = json!(1);
        for _ in 0..MAX_DEPTH {
            v = Value::Array(vec![v]);
        }
        check_storable(&v).unwrap();
        let text = to_python_json(&v).unwrap();
        assert_eq!(serde_json::from_str::<Value>(&text).unwrap(), v);
        assert_eq!(parse_python_json(text.as_bytes()).unwrap(), v);
    }

    #[test]
    fn depth_128_is_refused_like_serde_json_refuses_to_parse_it() {
        let mut v = json!({});
        for _ in 0..MAX_DEPTH {
            v = Value::Object(Map::from_iter([("k".to_string(), v)]));
        }
        let err = JsonError::TooDeep {
            depth: 128,
            max: 127,
        };
        assert_eq!(check_storable(&v), Err(err.clone()));
        assert_eq!(to_python_json(&v), Err(err));
        let text = format!("{}{}", "[".repeat(128), "]".repeat(128));
        assert!(serde_json::from_str::<Value>(&text).is_err());
        assert!(parse_python_json(text.as_bytes()).is_err());
    }

    #[test]
    fn very_deep_values_are_refused_without_overflowing_the_stack() {
        let mut v = json!(null);
        for _ in 0..5_000 {
            v = Value::Array(vec![v]);
        }
        assert!(matches!(check_storable(&v), Err(JsonError::TooDeep { .. })));
        assert!(matches!(to_python_json(&v), Err(JsonError::TooDeep { .. })));
        // Dropping a deep Value recurses; unwind it iteratively so the test itself is safe.
        while let Value::Array(mut items) = v {
            v = items.pop().unwrap_or(Value::Null);
        }
    }

    #[test]
    fn non_finite_floats_are_refused_when_converting_rust_values() {
        assert!(matches!(
            to_storable_value(&f64::NAN),
            Err(ToValueError::Unstorable(JsonError::NonFiniteNumber))
        ));
        assert!(matches!(
            to_storable_value(&vec![1.0, f64::INFINITY]),
            Err(ToValueError::Unstorable(JsonError::NonFiniteNumber))
        ));
        let mut m = std::collections::BTreeMap::new();
        m.insert("x", (1, Some(f32::NEG_INFINITY)));
        assert!(to_storable_value(&m).is_err());
        assert_eq!(
            to_storable_value(&(1, "a", [0.5])).unwrap(),
            json!([1, "a", [0.5]])
        );
        assert!(matches!(
            to_storable_value(&std::collections::HashMap::from([((1, 2), 3)])),
            Err(ToValueError::Serialize(_))
        ));
    }

    #[test]
    fn parse_decodes_bytes_as_latin1_like_django() {
        assert_eq!(
            parse_python_json(br#"{"n":"Zo\u00eb"}"#).unwrap(),
            json!({"n": "Zoë"})
        );
        assert_eq!(
            parse_python_json("{\"n\":\"Zoë\"}".as_bytes()).unwrap(),
            json!({"n": "ZoÃ«"})
        );
        assert_eq!(
            parse_python_json(b"{\"n\":\"\xff\"}").unwrap(),
            json!({"n": "\u{ff}"})
        );
    }

    #[test]
    fn parse_accepts_whitespace_and_last_duplicate_wins() {
        assert_eq!(
            parse_python_json(b" { \"a\" : 1 ,\n\"a\":2 } ").unwrap(),
            json!({"a": 2})
        );
    }

    #[test]
    fn parse_reads_python_nan_and_infinity_as_null() {
        assert_eq!(
            parse_python_json(br#"{"a":NaN,"b":[Infinity,-Infinity],"NaN":"NaN Infinity"}"#)
                .unwrap(),
            json!({"a": null, "b": [null, null], "NaN": "NaN Infinity"})
        );
        assert_eq!(
            parse_python_json(br#"{"s":"a\"NaN","x":NaN}"#).unwrap(),
            json!({"s": "a\"NaN", "x": null})
        );
    }

    #[test]
    fn parse_rejects_lone_surrogates_huge_numbers_and_garbage() {
        for bad in [
            &br#"{"a":"\ud800"}"#[..],
            br#"{"a":1e400}"#,
            b"{",
            b"",
            b"NaN NaN",
            b"\xff",
        ] {
            assert!(
                parse_python_json(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn big_integers_parse_exactly_within_64_bits() {
        for text in [
            "9223372036854775807",
            "-9223372036854775808",
            "18446744073709551615",
        ] {
            let v = parse_python_json(text.as_bytes()).unwrap();
            assert_eq!(to_python_json(&v).unwrap(), text);
        }
    }

    #[test]
    fn written_json_parses_back_to_the_same_value() {
        let v = json!({
            "s": "\u{0}\t\"\\/é😀\u{2028}",
            "n": [0, -1, 1.5, -0.0, 1e-7, 1e300, u64::MAX, i64::MIN],
            "o": {"nested": [[[]], {}], "b": false, "z": null},
        });
        let text = to_python_json(&v).unwrap();
        assert_eq!(parse_python_json(text.as_bytes()).unwrap(), v);
    }
}
