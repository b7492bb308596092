//! `SESSION_SERIALIZER`: how a session dictionary becomes text, and back.
//!
//! Django 5 has exactly one session serializer, JSON (pickle was removed in 5.0), and its
//! output is part of the wire format every engine shares with Django. The signing codec
//! (`sessionkit-codec`) writes that JSON itself, so this trait is the seam a second format
//! would plug into, and the place `SESSION_SERIALIZER` is resolved; today it resolves only to
//! [`JsonSerializer`].

use std::{fmt, sync::Arc};

use serde_json::Value;
use sessionkit_codec::{
    SessionMap,
    json::{JsonError, parse_python_json, to_python_json},
};

use crate::settings::{JSON_SERIALIZER_NAMES, SettingsError};

/// Turns a session dictionary into text and back (Django's `SESSION_SERIALIZER` class).
pub trait Serializer: Send + Sync + fmt::Debug {
    /// The canonical name `SESSION_SERIALIZER` gives it.
    fn name(&self) -> &'static str;

    /// The session as text (Django's `serializer().dumps`).
    ///
    /// # Errors
    ///
    /// When the session holds something the format cannot carry.
    fn dumps(&self, session: &SessionMap) -> Result<String, JsonError>;

    /// The session read back from text; `None` when the text is not a session.
    fn loads(&self, data: &[u8]) -> Option<SessionMap>;
}

/// Django's `JSONSerializer`: compact, ASCII-only JSON, as `json.dumps(separators=(",", ":"))`.
#[derive(Debug, Clone, Copy, Default)]
pub struct JsonSerializer;

impl Serializer for JsonSerializer {
    fn name(&self) -> &'static str {
        JSON_SERIALIZER_NAMES[0]
    }

    fn dumps(&self, session: &SessionMap) -> Result<String, JsonError> {
        to_python_json(&Value::Object(session.clone()))
    }

    fn loads(&self, data: &[u8]) -> Option<SessionMap> {
        match parse_python_json(data) {
            Ok(Value::Object(map)) => Some(map),
            _ => None,
        }
    }
}

/// The serializer `SESSION_SERIALIZER` names.
///
/// # Errors
///
/// [`SettingsError::UnsupportedSerializer`] for anything but the JSON serializer's names.
pub fn serializer_for(name: &str) -> Result<Arc<dyn Serializer>, SettingsError> {
    if JSON_SERIALIZER_NAMES.contains(&name) {
        Ok(Arc::new(JsonSerializer))
    } else {
        Err(SettingsError::UnsupportedSerializer {
            name: name.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn every_json_name_resolves_to_the_json_serializer() {
        for name in JSON_SERIALIZER_NAMES {
            assert_eq!(
                serializer_for(name).unwrap().name(),
                JSON_SERIALIZER_NAMES[0]
            );
        }
        assert!(serializer_for("pickle").is_err());
    }

    #[test]
    fn json_serializer_writes_djangos_compact_ascii_json_and_reads_it_back() {
        let mut session = SessionMap::new();
        session.insert("b".to_owned(), json!("é"));
        session.insert("a".to_owned(), json!([1, 2]));
        let text = JsonSerializer.dumps(&session).unwrap();
        assert_eq!(text, r#"{"b":"\u00e9","a":[1,2]}"#);
        assert_eq!(JsonSerializer.loads(text.as_bytes()), Some(session));
        assert_eq!(JsonSerializer.loads(b"[1]"), None);
    }
}
