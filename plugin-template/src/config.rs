//! The template engine's settings, parsed from the settings JSON the host passes to `open`.
//!
//! The JSON object holds every setting under Django's name (`SESSION_COOKIE_AGE`, `CACHES`,
//! ...) plus every key the host does not know, so an engine can have settings of its own. Read
//! only what you use, and answer a bad value with a `Config` error naming the setting.
//!
//! Name your own settings `SESSION_<ENGINE>_...`: the host passes on unknown keys from
//! `sessionkit.toml` whatever their name, but from the environment only those starting with
//! `SESSION_`, and there every value is a string, so accept `"5000"` where you expect `5000`.

use serde_json::{Map, Value};
use sessionkit_sdk::StoreError;

/// The name of the setting that bounds the store, [`TemplateConfig::max_sessions`].
pub const MAX_SESSIONS_SETTING: &str = "SESSION_TEMPLATE_MAX_SESSIONS";

/// The default of [`MAX_SESSIONS_SETTING`].
pub const DEFAULT_MAX_SESSIONS: usize = 100_000;

/// The template engine's typed settings.
///
/// `Debug` is derived because nothing here is secret. An engine whose settings hold a password
/// or a URL with credentials implements `Debug` by hand and prints `***` instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateConfig {
    /// `SESSION_TEMPLATE_MAX_SESSIONS`: how many sessions the in-memory store holds before
    /// `create` fails with `Unavailable` (an unbounded in-memory map is a memory leak).
    pub max_sessions: usize,
}

impl Default for TemplateConfig {
    fn default() -> Self {
        Self {
            max_sessions: DEFAULT_MAX_SESSIONS,
        }
    }
}

impl TemplateConfig {
    /// Reads the engine's settings from the settings JSON; other keys are ignored.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Config`](sessionkit_sdk::ErrorKind::Config) when the JSON is not an object
    /// or a setting has a bad value; the message names the setting.
    pub fn from_settings_json(settings_json: &str) -> Result<Self, StoreError> {
        let settings: Map<String, Value> =
            serde_json::from_str(settings_json).map_err(|error| {
                StoreError::config(format!(
                    "the engine settings are not a JSON object: {error}"
                ))
            })?;
        let max_sessions = match settings.get(MAX_SESSIONS_SETTING) {
            None | Some(Value::Null) => DEFAULT_MAX_SESSIONS,
            Some(value) => positive_integer(value).ok_or_else(|| {
                StoreError::config(format!(
                    "{MAX_SESSIONS_SETTING} must be a positive integer, not {value}"
                ))
            })?,
        };
        Ok(Self { max_sessions })
    }
}

/// A positive integer given as a JSON number (`sessionkit.toml`) or as a string of digits (the
/// environment).
fn positive_integer(value: &Value) -> Option<usize> {
    let number = match value {
        Value::Number(number) => number.as_u64()?,
        Value::String(text) => text.trim().parse::<u64>().ok()?,
        _ => return None,
    };
    usize::try_from(number).ok().filter(|n| *n > 0)
}

#[cfg(test)]
mod tests {
    use sessionkit_sdk::ErrorKind;

    use super::*;

    #[test]
    fn settings_without_the_engine_key_give_the_default() {
        let config =
            TemplateConfig::from_settings_json(r#"{"SECRET_KEY": "s", "SESSION_COOKIE_AGE": 10}"#)
                .unwrap();
        assert_eq!(config, TemplateConfig::default());
    }

    #[test]
    fn max_sessions_is_read_from_a_number() {
        let config =
            TemplateConfig::from_settings_json(r#"{"SESSION_TEMPLATE_MAX_SESSIONS": 5}"#).unwrap();
        assert_eq!(config.max_sessions, 5);
    }

    #[test]
    fn max_sessions_is_read_from_a_string_as_the_environment_gives_it() {
        let config =
            TemplateConfig::from_settings_json(r#"{"SESSION_TEMPLATE_MAX_SESSIONS": "7"}"#)
                .unwrap();
        assert_eq!(config.max_sessions, 7);
    }

    #[test]
    fn bad_max_sessions_is_a_config_error_naming_the_setting() {
        for bad in [r#""many""#, "0", r#""0""#, "-1", "1.5", "true", "[]"] {
            let json = format!(r#"{{"SESSION_TEMPLATE_MAX_SESSIONS": {bad}}}"#);
            let error = TemplateConfig::from_settings_json(&json).unwrap_err();
            assert_eq!(error.kind, ErrorKind::Config);
            assert!(
                error.message.contains("SESSION_TEMPLATE_MAX_SESSIONS"),
                "{error}"
            );
        }
    }

    #[test]
    fn settings_that_are_not_an_object_are_a_config_error() {
        let error = TemplateConfig::from_settings_json("[]").unwrap_err();
        assert_eq!(error.kind, ErrorKind::Config);
    }
}
