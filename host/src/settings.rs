//! Django's session settings, read from a TOML file and the environment.
//!
//! Names and defaults are Django's (`SESSION_COOKIE_AGE` 1209600, `SESSION_COOKIE_NAME`
//! "sessionid", ...). The TOML file uses the upper-case names as keys; environment variables of
//! the same names override it. Settings the host does not know are kept in
//! [`Settings::extra`] and handed to engines, which read their own.

use std::{
    fmt,
    path::{Path, PathBuf},
};

use serde_json::{Map, Value};
use sessionkit_codec::redact_url;

/// The `SESSION_SERIALIZER` values sessionkit accepts: Django's JSON serializer under its two
/// dotted names, and the short `json`. Pickle was removed from Django in 5.0 and never exists
/// here.
pub const JSON_SERIALIZER_NAMES: [&str; 3] = [
    "django.contrib.sessions.serializers.JSONSerializer",
    "django.core.signing.JSONSerializer",
    "json",
];

/// Every setting name the host reads itself; any other name ends up in [`Settings::extra`].
pub const KNOWN_SETTINGS: [&str; 19] = [
    "SECRET_KEY",
    "SECRET_KEY_FALLBACKS",
    "SESSION_ENGINE",
    "SESSION_COOKIE_NAME",
    "SESSION_COOKIE_AGE",
    "SESSION_COOKIE_DOMAIN",
    "SESSION_COOKIE_PATH",
    "SESSION_COOKIE_SECURE",
    "SESSION_COOKIE_HTTPONLY",
    "SESSION_COOKIE_SAMESITE",
    "SESSION_SAVE_EVERY_REQUEST",
    "SESSION_EXPIRE_AT_BROWSER_CLOSE",
    "SESSION_CACHE_ALIAS",
    "SESSION_FILE_PATH",
    "SESSION_SERIALIZER",
    "SESSION_CONCURRENT_WRITES",
    "SESSION_DB_URL",
    "DATABASE_URL",
    "CACHES",
];

/// The environment variable naming the settings file (else `./sessionkit.toml` if present).
pub const SETTINGS_PATH_VAR: &str = "SESSIONKIT_SETTINGS";

/// The settings file read when [`SETTINGS_PATH_VAR`] is unset, if it exists.
pub const DEFAULT_SETTINGS_FILE: &str = "sessionkit.toml";

/// Django's `SESSION_COOKIE_SAMESITE`: which `SameSite` attribute the session cookie carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SameSite {
    /// `SameSite=Strict`.
    Strict,
    /// `SameSite=Lax` (Django's default).
    Lax,
    /// `SameSite=None` (browsers then require `Secure`).
    None,
    /// No `SameSite` attribute (Django's `False`).
    Disabled,
}

impl SameSite {
    /// The attribute value, or `None` when the attribute is omitted.
    pub const fn as_str(self) -> Option<&'static str> {
        match self {
            Self::Strict => Some("Strict"),
            Self::Lax => Some("Lax"),
            Self::None => Some("None"),
            Self::Disabled => Option::None,
        }
    }

    fn to_json(self) -> Value {
        match self.as_str() {
            Some(text) => Value::String(text.to_owned()),
            Option::None => Value::Bool(false),
        }
    }

    fn from_json(value: &Value) -> Result<Self, String> {
        match value {
            Value::Bool(false) | Value::Null => Ok(Self::Disabled),
            Value::String(text) => match text.to_ascii_lowercase().as_str() {
                "strict" => Ok(Self::Strict),
                "lax" => Ok(Self::Lax),
                "none" => Ok(Self::None),
                "false" => Ok(Self::Disabled),
                _ => Err(format!(
                    "expected \"Strict\", \"Lax\", \"None\" or false, got {value}"
                )),
            },
            other => Err(format!(
                "expected \"Strict\", \"Lax\", \"None\" or false, got {other}"
            )),
        }
    }
}

/// `SESSION_CONCURRENT_WRITES`: what a save does when another request of the same visitor saved
/// the session since this one loaded it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ConcurrentWrites {
    /// `"merge"` (the default where the engine has a conditional save): the save reloads the
    /// newer record, replays this request's changes onto it and saves again, so keys this
    /// request did not touch keep what the other request wrote. Without the capability the
    /// engine cannot do it and the save overwrites, as Django's.
    #[default]
    Merge,
    /// `"overwrite"`: Django's behaviour, the last writer wins (the whole record is replaced).
    Overwrite,
}

impl ConcurrentWrites {
    fn from_json(value: &Value) -> Result<Self, String> {
        match value.as_str() {
            Some("merge") => Ok(Self::Merge),
            Some("overwrite") => Ok(Self::Overwrite),
            _ => Err(format!("expected \"merge\" or \"overwrite\", got {value}")),
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Self::Merge => "merge",
            Self::Overwrite => "overwrite",
        }
    }
}

/// Every session setting, with Django's defaults; what engines and sessions are built from.
///
/// `Debug` redacts `SECRET_KEY`, the fallbacks and passwords inside URLs.
#[derive(Clone, PartialEq)]
pub struct Settings {
    /// `SECRET_KEY`: signs every session. Required, never defaulted.
    pub secret_key: String,
    /// `SECRET_KEY_FALLBACKS`: older keys still accepted when reading (key rotation).
    pub secret_key_fallbacks: Vec<String>,
    /// `SESSION_ENGINE`: a short name (`db`), a Django dotted name or a library path.
    pub session_engine: String,
    /// `SESSION_COOKIE_NAME` ("sessionid"); also the file engine's file-name prefix.
    pub session_cookie_name: String,
    /// `SESSION_COOKIE_AGE` in seconds (1209600, two weeks).
    pub session_cookie_age: i64,
    /// `SESSION_COOKIE_DOMAIN` (none: host-only cookie).
    pub session_cookie_domain: Option<String>,
    /// `SESSION_COOKIE_PATH` ("/").
    pub session_cookie_path: String,
    /// `SESSION_COOKIE_SECURE` (false).
    pub session_cookie_secure: bool,
    /// `SESSION_COOKIE_HTTPONLY` (true).
    pub session_cookie_httponly: bool,
    /// `SESSION_COOKIE_SAMESITE` ("Lax").
    pub session_cookie_samesite: SameSite,
    /// `SESSION_SAVE_EVERY_REQUEST` (false).
    pub session_save_every_request: bool,
    /// `SESSION_EXPIRE_AT_BROWSER_CLOSE` (false).
    pub session_expire_at_browser_close: bool,
    /// `SESSION_CACHE_ALIAS` ("default"): which `CACHES` entry the cache engines use.
    pub session_cache_alias: String,
    /// `SESSION_FILE_PATH` (none: the system temporary directory).
    pub session_file_path: Option<PathBuf>,
    /// `SESSION_SERIALIZER`: one of [`JSON_SERIALIZER_NAMES`].
    pub session_serializer: String,
    /// `SESSION_CONCURRENT_WRITES` (`merge`): see [`ConcurrentWrites`].
    pub session_concurrent_writes: ConcurrentWrites,
    /// `SESSION_DB_URL`: the database of the db engines (they fall back to `DATABASE_URL`).
    pub session_db_url: Option<String>,
    /// `DATABASE_URL`: the application's database, the db engines' fallback.
    pub database_url: Option<String>,
    /// `CACHES`: alias → cache configuration (`LOCATION`, `KEY_PREFIX`, `VERSION`, ...).
    pub caches: Value,
    /// Settings the host does not know, passed through to engines (third-party engines' own).
    pub extra: Map<String, Value>,
}

/// Why settings could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// `SECRET_KEY` is unset or empty. sessionkit never signs with a default key.
    #[error(
        "SECRET_KEY is not set (or empty): set it in sessionkit.toml or the environment; \
         sessionkit never signs with a default key"
    )]
    MissingSecretKey,
    /// The settings file could not be read.
    #[error("cannot read settings file {}: {source}", .path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The settings file is not valid TOML.
    #[error("settings file{} is not valid TOML: {message}", path_context(.path))]
    Toml {
        /// The file, when it was read from one.
        path: Option<PathBuf>,
        /// The parser's message, with the line.
        message: String,
    },
    /// A setting has a value of the wrong type or shape.
    #[error("invalid {name} (from {origin}): {reason}")]
    Invalid {
        /// The setting's Django name.
        name: String,
        /// Where the value came from: the settings file, the environment or code.
        origin: &'static str,
        /// What is wrong (never echoes a secret).
        reason: String,
    },
    /// `SESSION_SERIALIZER` names something other than Django's JSON serializer.
    #[error(
        "unsupported SESSION_SERIALIZER '{name}': only the JSON serializer is supported \
         (\"django.contrib.sessions.serializers.JSONSerializer\", \
         \"django.core.signing.JSONSerializer\" or \"json\")"
    )]
    UnsupportedSerializer {
        /// The configured name.
        name: String,
    },
    /// A known setting was written in lower case, where it would be silently ignored.
    #[error(
        "unknown setting '{name}' (from {origin}): setting names are upper case; did you mean {suggestion}?"
    )]
    LowerCaseName {
        /// The name as written.
        name: String,
        /// Where it came from.
        origin: &'static str,
        /// The upper-case setting it resembles.
        suggestion: String,
    },
}

const ORIGIN_CODE: &str = "code";
const ORIGIN_FILE: &str = "the settings file";
const ORIGIN_ENV: &str = "the environment";

impl Settings {
    /// Settings with every Django default and the given `SECRET_KEY`.
    pub fn new(secret_key: impl Into<String>) -> Self {
        Self {
            secret_key: secret_key.into(),
            secret_key_fallbacks: Vec::new(),
            session_engine: "db".to_owned(),
            session_cookie_name: "sessionid".to_owned(),
            session_cookie_age: 1_209_600,
            session_cookie_domain: None,
            session_cookie_path: "/".to_owned(),
            session_cookie_secure: false,
            session_cookie_httponly: true,
            session_cookie_samesite: SameSite::Lax,
            session_save_every_request: false,
            session_expire_at_browser_close: false,
            session_cache_alias: "default".to_owned(),
            session_file_path: None,
            session_serializer: JSON_SERIALIZER_NAMES[0].to_owned(),
            session_concurrent_writes: ConcurrentWrites::Merge,
            session_db_url: None,
            database_url: None,
            caches: default_caches(),
            extra: Map::new(),
        }
    }

    /// Reads the settings of this process: the TOML file named by `$SESSIONKIT_SETTINGS` (or
    /// `./sessionkit.toml` if it exists), then the environment, which wins.
    ///
    /// Only environment variables whose name is a known setting or starts with `SESSION_` are
    /// read; the rest of the environment never reaches an engine.
    ///
    /// # Errors
    ///
    /// [`SettingsError::MissingSecretKey`] without a `SECRET_KEY`; the other variants for an
    /// unreadable file or a bad value.
    pub fn load() -> Result<Self, SettingsError> {
        let file = match std::env::var_os(SETTINGS_PATH_VAR) {
            Some(path) => Some(PathBuf::from(path)),
            None => Some(PathBuf::from(DEFAULT_SETTINGS_FILE)).filter(|path| path.is_file()),
        };
        let text = match &file {
            Some(path) => {
                Some(
                    std::fs::read_to_string(path).map_err(|source| SettingsError::Read {
                        path: path.clone(),
                        source,
                    })?,
                )
            }
            None => None,
        };
        let mut env = Vec::new();
        for (name, value) in std::env::vars_os() {
            let Ok(name) = name.into_string() else {
                continue;
            };
            if !is_env_setting(&name) {
                continue;
            }
            match value.into_string() {
                Ok(value) => env.push((name, value)),
                Err(_) => {
                    return Err(SettingsError::Invalid {
                        name,
                        origin: ORIGIN_ENV,
                        reason: "the value is not valid UTF-8".to_owned(),
                    });
                }
            }
        }
        let toml = text.as_deref().map(|text| (text, file.as_deref()));
        Self::from_sources_at(toml, env)
    }

    /// Reads settings from TOML text alone (no environment).
    ///
    /// # Errors
    ///
    /// As [`Settings::load`].
    pub fn from_toml_str(s: &str) -> Result<Self, SettingsError> {
        Self::from_sources(Some(s), std::iter::empty())
    }

    /// Reads settings from optional TOML text, then the given environment pairs, which win.
    ///
    /// Environment pairs whose name is neither a known setting nor starts with `SESSION_` are
    /// ignored. Environment values are text: booleans accept `true/false/1/0/True/False`,
    /// `SECRET_KEY_FALLBACKS` and `CACHES` take JSON, and unknown `SESSION_*` names are passed to
    /// engines as strings.
    ///
    /// # Errors
    ///
    /// As [`Settings::load`].
    pub fn from_sources(
        toml: Option<&str>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, SettingsError> {
        Self::from_sources_at(toml.map(|text| (text, None)), env)
    }

    /// Sets one setting by its Django name; unknown names go to [`Settings::extra`].
    ///
    /// Strings are accepted for every typed setting and parsed as the environment would be.
    ///
    /// # Errors
    ///
    /// [`SettingsError::Invalid`] (or `UnsupportedSerializer`, `LowerCaseName`) for a value of
    /// the wrong type or shape; the setting is then unchanged.
    pub fn set(&mut self, name: &str, value: Value) -> Result<(), SettingsError> {
        self.apply(name, value, ORIGIN_CODE)
    }

    /// Checks every field, for settings built or changed in code.
    ///
    /// # Errors
    ///
    /// The first problem found: a missing `SECRET_KEY`, a cookie name, path or domain with
    /// characters that would break the `Set-Cookie` header, an unsupported serializer, or
    /// `CACHES` that is not an object of objects.
    pub fn validate(&self) -> Result<(), SettingsError> {
        if self.secret_key.is_empty() {
            return Err(SettingsError::MissingSecretKey);
        }
        let invalid = |name: &str, reason: String| SettingsError::Invalid {
            name: name.to_owned(),
            origin: ORIGIN_CODE,
            reason,
        };
        check_cookie_name(&self.session_cookie_name)
            .map_err(|reason| invalid("SESSION_COOKIE_NAME", reason))?;
        check_cookie_attribute(&self.session_cookie_path)
            .map_err(|reason| invalid("SESSION_COOKIE_PATH", reason))?;
        if let Some(domain) = &self.session_cookie_domain {
            check_cookie_domain(domain)
                .map_err(|reason| invalid("SESSION_COOKIE_DOMAIN", reason))?;
        }
        check_serializer(&self.session_serializer)?;
        check_caches(&self.caches).map_err(|reason| invalid("CACHES", reason))?;
        Ok(())
    }

    /// The JSON object every engine's `open()` receives: every setting under its Django name,
    /// defaults filled (including each `CACHES` entry's `KEY_PREFIX`, `VERSION`, `TIMEOUT` and
    /// `OPTIONS`), then the extra settings.
    pub fn engine_settings_json(&self) -> String {
        let mut map = Map::new();
        let mut put = |name: &str, value: Value| {
            map.insert(name.to_owned(), value);
        };
        put("SECRET_KEY", Value::String(self.secret_key.clone()));
        put(
            "SECRET_KEY_FALLBACKS",
            Value::Array(
                self.secret_key_fallbacks
                    .iter()
                    .cloned()
                    .map(Value::String)
                    .collect(),
            ),
        );
        put("SESSION_ENGINE", Value::String(self.session_engine.clone()));
        put(
            "SESSION_COOKIE_NAME",
            Value::String(self.session_cookie_name.clone()),
        );
        put("SESSION_COOKIE_AGE", Value::from(self.session_cookie_age));
        put(
            "SESSION_COOKIE_DOMAIN",
            optional_string(self.session_cookie_domain.as_deref()),
        );
        put(
            "SESSION_COOKIE_PATH",
            Value::String(self.session_cookie_path.clone()),
        );
        put(
            "SESSION_COOKIE_SECURE",
            Value::Bool(self.session_cookie_secure),
        );
        put(
            "SESSION_COOKIE_HTTPONLY",
            Value::Bool(self.session_cookie_httponly),
        );
        put(
            "SESSION_COOKIE_SAMESITE",
            self.session_cookie_samesite.to_json(),
        );
        put(
            "SESSION_SAVE_EVERY_REQUEST",
            Value::Bool(self.session_save_every_request),
        );
        put(
            "SESSION_EXPIRE_AT_BROWSER_CLOSE",
            Value::Bool(self.session_expire_at_browser_close),
        );
        put(
            "SESSION_CACHE_ALIAS",
            Value::String(self.session_cache_alias.clone()),
        );
        put(
            "SESSION_FILE_PATH",
            match &self.session_file_path {
                Some(path) => Value::String(path.to_string_lossy().into_owned()),
                None => Value::Null,
            },
        );
        put(
            "SESSION_SERIALIZER",
            Value::String(self.session_serializer.clone()),
        );
        put(
            "SESSION_CONCURRENT_WRITES",
            Value::String(self.session_concurrent_writes.as_str().to_owned()),
        );
        put(
            "SESSION_DB_URL",
            optional_string(self.session_db_url.as_deref()),
        );
        put(
            "DATABASE_URL",
            optional_string(self.database_url.as_deref()),
        );
        // Passed through untouched: `sessionkit-cache` alone owns Django's per-alias defaults.
        put("CACHES", self.caches.clone());
        for (name, value) in &self.extra {
            map.entry(name.clone()).or_insert_with(|| value.clone());
        }
        Value::Object(map).to_string()
    }

    fn from_sources_at(
        toml: Option<(&str, Option<&Path>)>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, SettingsError> {
        let mut settings = Self::new(String::new());
        if let Some((text, path)) = toml {
            let table = parse_toml(text, path)?;
            for (name, value) in table {
                settings.apply(&name, toml_to_json(value), ORIGIN_FILE)?;
            }
        }
        for (name, value) in env {
            if is_env_setting(&name) {
                settings.apply(&name, Value::String(value), ORIGIN_ENV)?;
            }
        }
        settings.validate()?;
        Ok(settings)
    }

    fn apply(
        &mut self,
        name: &str,
        value: Value,
        origin: &'static str,
    ) -> Result<(), SettingsError> {
        let invalid = |reason: String| SettingsError::Invalid {
            name: name.to_owned(),
            origin,
            reason,
        };
        match name {
            "SECRET_KEY" => self.secret_key = secret_string(&value).map_err(invalid)?,
            "SECRET_KEY_FALLBACKS" => {
                self.secret_key_fallbacks = secret_list(&value).map_err(invalid)?
            }
            "SESSION_ENGINE" => self.session_engine = plain_string(&value).map_err(invalid)?,
            "SESSION_COOKIE_NAME" => {
                let cookie_name = plain_string(&value).map_err(invalid)?;
                check_cookie_name(&cookie_name).map_err(invalid)?;
                self.session_cookie_name = cookie_name;
            }
            "SESSION_COOKIE_AGE" => self.session_cookie_age = integer(&value).map_err(invalid)?,
            "SESSION_COOKIE_DOMAIN" => {
                let domain = optional(&value).map_err(invalid)?;
                if let Some(domain) = &domain {
                    check_cookie_domain(domain).map_err(invalid)?;
                }
                self.session_cookie_domain = domain;
            }
            "SESSION_COOKIE_PATH" => {
                let path = plain_string(&value).map_err(invalid)?;
                check_cookie_attribute(&path).map_err(invalid)?;
                self.session_cookie_path = path;
            }
            "SESSION_COOKIE_SECURE" => {
                self.session_cookie_secure = boolean(&value).map_err(invalid)?
            }
            "SESSION_COOKIE_HTTPONLY" => {
                self.session_cookie_httponly = boolean(&value).map_err(invalid)?;
            }
            "SESSION_COOKIE_SAMESITE" => {
                self.session_cookie_samesite = SameSite::from_json(&value).map_err(invalid)?;
            }
            "SESSION_SAVE_EVERY_REQUEST" => {
                self.session_save_every_request = boolean(&value).map_err(invalid)?;
            }
            "SESSION_EXPIRE_AT_BROWSER_CLOSE" => {
                self.session_expire_at_browser_close = boolean(&value).map_err(invalid)?;
            }
            "SESSION_CACHE_ALIAS" => {
                self.session_cache_alias = plain_string(&value).map_err(invalid)?
            }
            "SESSION_FILE_PATH" => {
                self.session_file_path = optional(&value).map_err(invalid)?.map(PathBuf::from);
            }
            "SESSION_SERIALIZER" => {
                let serializer = plain_string(&value).map_err(invalid)?;
                check_serializer(&serializer)?;
                self.session_serializer = serializer;
            }
            "SESSION_CONCURRENT_WRITES" => {
                self.session_concurrent_writes =
                    ConcurrentWrites::from_json(&value).map_err(invalid)?;
            }
            "SESSION_DB_URL" => self.session_db_url = optional(&value).map_err(invalid)?,
            "DATABASE_URL" => self.database_url = optional(&value).map_err(invalid)?,
            "CACHES" => {
                let caches = json_object(&value).map_err(invalid)?;
                check_caches(&caches).map_err(invalid)?;
                self.caches = caches;
            }
            _ => {
                let upper = name.to_ascii_uppercase();
                if upper != name && KNOWN_SETTINGS.contains(&upper.as_str()) {
                    return Err(SettingsError::LowerCaseName {
                        name: name.to_owned(),
                        origin,
                        suggestion: upper,
                    });
                }
                self.extra.insert(name.to_owned(), value);
            }
        }
        Ok(())
    }
}

impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secret = if self.secret_key.is_empty() {
            "<empty>"
        } else {
            "<redacted>"
        };
        let fallbacks = format!("<{} redacted>", self.secret_key_fallbacks.len());
        f.debug_struct("Settings")
            .field("secret_key", &format_args!("{secret}"))
            .field("secret_key_fallbacks", &format_args!("{fallbacks}"))
            .field("session_engine", &self.session_engine)
            .field("session_cookie_name", &self.session_cookie_name)
            .field("session_cookie_age", &self.session_cookie_age)
            .field("session_cookie_domain", &self.session_cookie_domain)
            .field("session_cookie_path", &self.session_cookie_path)
            .field("session_cookie_secure", &self.session_cookie_secure)
            .field("session_cookie_httponly", &self.session_cookie_httponly)
            .field("session_cookie_samesite", &self.session_cookie_samesite)
            .field(
                "session_save_every_request",
                &self.session_save_every_request,
            )
            .field(
                "session_expire_at_browser_close",
                &self.session_expire_at_browser_close,
            )
            .field("session_cache_alias", &self.session_cache_alias)
            .field("session_file_path", &self.session_file_path)
            .field("session_serializer", &self.session_serializer)
            .field(
                "session_db_url",
                &self.session_db_url.as_deref().map(redact_url),
            )
            .field(
                "database_url",
                &self.database_url.as_deref().map(redact_url),
            )
            .field("caches", &redact_value(None, &self.caches))
            .field(
                "extra",
                &redact_value(None, &Value::Object(self.extra.clone())),
            )
            .finish()
    }
}

/// Whether an environment variable is read as a setting: a known name or a `SESSION_*` name.
pub fn is_env_setting(name: &str) -> bool {
    KNOWN_SETTINGS.contains(&name) || name.starts_with("SESSION_")
}

fn redact_value(name: Option<&str>, value: &Value) -> Value {
    let secret_name = name.is_some_and(|name| {
        let upper = name.to_ascii_uppercase();
        ["SECRET", "PASSWORD", "TOKEN", "CREDENTIAL"]
            .iter()
            .any(|word| upper.contains(word))
    });
    match value {
        _ if secret_name && !value.is_null() => Value::String("<redacted>".to_owned()),
        Value::String(text) => Value::String(redact_url(text)),
        Value::Array(items) => {
            Value::Array(items.iter().map(|item| redact_value(None, item)).collect())
        }
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(key, item)| (key.clone(), redact_value(Some(key), item)))
                .collect(),
        ),
        other => other.clone(),
    }
}

fn default_caches() -> Value {
    serde_json::json!({"default": {"LOCATION": "locmem://"}})
}

fn optional_string(value: Option<&str>) -> Value {
    value.map_or(Value::Null, |text| Value::String(text.to_owned()))
}

fn path_context(path: &Option<PathBuf>) -> String {
    path.as_ref()
        .map_or_else(String::new, |path| format!(" {}", path.display()))
}

fn parse_toml(text: &str, path: Option<&Path>) -> Result<toml::Table, SettingsError> {
    text.parse::<toml::Table>().map_err(|error| {
        let line = error
            .span()
            .map(|span| text[..span.start.min(text.len())].matches('\n').count() + 1);
        let message = match line {
            Some(line) => format!("line {line}: {}", error.message().trim()),
            None => error.message().trim().to_owned(),
        };
        SettingsError::Toml {
            path: path.map(Path::to_path_buf),
            message,
        }
    })
}

fn toml_to_json(value: toml::Value) -> Value {
    match value {
        toml::Value::String(text) => Value::String(text),
        toml::Value::Integer(number) => Value::from(number),
        toml::Value::Float(number) => {
            serde_json::Number::from_f64(number).map_or(Value::Null, Value::Number)
        }
        toml::Value::Boolean(flag) => Value::Bool(flag),
        toml::Value::Datetime(datetime) => Value::String(datetime.to_string()),
        toml::Value::Array(items) => Value::Array(items.into_iter().map(toml_to_json).collect()),
        toml::Value::Table(table) => Value::Object(
            table
                .into_iter()
                .map(|(key, item)| (key, toml_to_json(item)))
                .collect(),
        ),
    }
}

fn secret_string(value: &Value) -> Result<String, String> {
    match value {
        Value::String(text) => Ok(text.clone()),
        _ => Err("expected a string".to_owned()),
    }
}

fn secret_list(value: &Value) -> Result<Vec<String>, String> {
    const SHAPE: &str = "expected a list of strings (a JSON array in the environment)";
    let parsed;
    let value = match value {
        Value::String(text) => {
            parsed = serde_json::from_str::<Value>(text).map_err(|_| SHAPE.to_owned())?;
            &parsed
        }
        other => other,
    };
    match value {
        Value::Array(items) => items
            .iter()
            .map(|item| {
                item.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| SHAPE.to_owned())
            })
            .collect(),
        _ => Err(SHAPE.to_owned()),
    }
}

fn plain_string(value: &Value) -> Result<String, String> {
    match value {
        Value::String(text) => Ok(text.clone()),
        other => Err(format!("expected a string, got {other}")),
    }
}

fn optional(value: &Value) -> Result<Option<String>, String> {
    match value {
        Value::Null => Ok(None),
        Value::String(text) if text.is_empty() => Ok(None),
        Value::String(text) => Ok(Some(text.clone())),
        other => Err(format!("expected a string or null, got {other}")),
    }
}

fn integer(value: &Value) -> Result<i64, String> {
    match value {
        Value::Number(number) => number
            .as_i64()
            .ok_or_else(|| format!("expected a whole number of seconds, got {number}")),
        Value::String(text) => text
            .trim()
            .parse::<i64>()
            .map_err(|_| format!("expected a whole number of seconds, got {text:?}")),
        other => Err(format!("expected a whole number of seconds, got {other}")),
    }
}

fn boolean(value: &Value) -> Result<bool, String> {
    match value {
        Value::Bool(flag) => Ok(*flag),
        Value::Number(number) if number.as_i64() == Some(1) => Ok(true),
        Value::Number(number) if number.as_i64() == Some(0) => Ok(false),
        Value::String(text) => match text.trim() {
            "true" | "True" | "1" => Ok(true),
            "false" | "False" | "0" => Ok(false),
            _ => Err(format!("expected true/false/1/0/True/False, got {text:?}")),
        },
        other => Err(format!("expected true/false/1/0/True/False, got {other}")),
    }
}

fn json_object(value: &Value) -> Result<Value, String> {
    match value {
        Value::Object(_) => Ok(value.clone()),
        Value::String(text) => match serde_json::from_str::<Value>(text) {
            Ok(parsed @ Value::Object(_)) => Ok(parsed),
            Ok(_) => Err("expected a JSON object".to_owned()),
            Err(error) => Err(format!("expected a JSON object: {error}")),
        },
        other => Err(format!(
            "expected a table (a JSON object in the environment), got {other}"
        )),
    }
}

fn check_caches(caches: &Value) -> Result<(), String> {
    let Value::Object(aliases) = caches else {
        return Err("expected an object of cache aliases".to_owned());
    };
    for (alias, config) in aliases {
        if !config.is_object() {
            return Err(format!("cache alias '{alias}' must be a table of settings"));
        }
    }
    Ok(())
}

fn check_serializer(name: &str) -> Result<(), SettingsError> {
    if JSON_SERIALIZER_NAMES.contains(&name) {
        Ok(())
    } else {
        Err(SettingsError::UnsupportedSerializer {
            name: name.to_owned(),
        })
    }
}

/// Characters that would split or inject into a `Set-Cookie` header (header injection, CWE-113).
fn forbidden_in_cookie(c: char) -> bool {
    c == ';' || c == ',' || c.is_control()
}

fn check_cookie_attribute(value: &str) -> Result<(), String> {
    match value.chars().find(|&c| forbidden_in_cookie(c)) {
        Some(c) => Err(format!("{c:?} is not allowed in a cookie attribute")),
        None => Ok(()),
    }
}

fn check_cookie_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("the cookie name must not be empty".to_owned());
    }
    match name
        .chars()
        .find(|&c| forbidden_in_cookie(c) || c == '=' || c.is_whitespace() || !c.is_ascii())
    {
        Some(c) => Err(format!("{c:?} is not allowed in a cookie name")),
        None => Ok(()),
    }
}

fn check_cookie_domain(domain: &str) -> Result<(), String> {
    match domain
        .chars()
        .find(|&c| forbidden_in_cookie(c) || c.is_whitespace())
    {
        Some(c) => Err(format!("{c:?} is not allowed in a cookie domain")),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn new_has_every_django_default() {
        let s = Settings::new("k");
        assert_eq!(s.session_engine, "db");
        assert_eq!(s.session_cookie_name, "sessionid");
        assert_eq!(s.session_cookie_age, 1_209_600);
        assert_eq!(s.session_cookie_domain, None);
        assert_eq!(s.session_cookie_path, "/");
        assert!(!s.session_cookie_secure);
        assert!(s.session_cookie_httponly);
        assert_eq!(s.session_cookie_samesite, SameSite::Lax);
        assert!(!s.session_save_every_request);
        assert!(!s.session_expire_at_browser_close);
        assert_eq!(s.session_cache_alias, "default");
        assert_eq!(s.session_file_path, None);
        assert_eq!(
            s.session_serializer,
            "django.contrib.sessions.serializers.JSONSerializer"
        );
        assert_eq!(s.caches, json!({"default": {"LOCATION": "locmem://"}}));
        assert!(s.secret_key_fallbacks.is_empty());
    }

    #[test]
    fn missing_secret_key_is_an_error_not_a_default() {
        let error = Settings::from_sources(Some("SESSION_COOKIE_AGE = 5"), env(&[])).unwrap_err();
        assert!(
            matches!(error, SettingsError::MissingSecretKey),
            "{error:?}"
        );
        let error = Settings::from_sources(None, env(&[("SECRET_KEY", "")])).unwrap_err();
        assert!(
            matches!(error, SettingsError::MissingSecretKey),
            "{error:?}"
        );
    }

    #[test]
    fn toml_uses_django_names() {
        let s = Settings::from_toml_str(
            r#"
            SECRET_KEY = "s3cret"
            SECRET_KEY_FALLBACKS = ["old1", "old2"]
            SESSION_ENGINE = "django.contrib.sessions.backends.cache"
            SESSION_COOKIE_AGE = 3600
            SESSION_COOKIE_SECURE = true
            SESSION_COOKIE_SAMESITE = false
            SESSION_FILE_PATH = "/var/lib/sessions"
            SESSION_DB_URL = "sqlite://x.sqlite3"
            SESSION_DB_TABLE = "my_sessions"
            [CACHES.default]
            LOCATION = "redis://127.0.0.1:6379"
            KEY_PREFIX = "app"
            "#,
        )
        .unwrap();
        assert_eq!(s.secret_key, "s3cret");
        assert_eq!(s.secret_key_fallbacks, ["old1", "old2"]);
        assert_eq!(s.session_engine, "django.contrib.sessions.backends.cache");
        assert_eq!(s.session_cookie_age, 3600);
        assert!(s.session_cookie_secure);
        assert_eq!(s.session_cookie_samesite, SameSite::Disabled);
        assert_eq!(
            s.session_file_path,
            Some(PathBuf::from("/var/lib/sessions"))
        );
        assert_eq!(s.session_db_url.as_deref(), Some("sqlite://x.sqlite3"));
        assert_eq!(s.extra.get("SESSION_DB_TABLE"), Some(&json!("my_sessions")));
        assert_eq!(
            s.caches["default"]["LOCATION"],
            json!("redis://127.0.0.1:6379")
        );
    }

    #[test]
    fn environment_wins_over_the_file() {
        let s = Settings::from_sources(
            Some("SECRET_KEY = \"file\"\nSESSION_COOKIE_AGE = 10\nSESSION_COOKIE_NAME = \"fromfile\""),
            env(&[("SECRET_KEY", "env"), ("SESSION_COOKIE_AGE", "20")]),
        )
        .unwrap();
        assert_eq!(s.secret_key, "env");
        assert_eq!(s.session_cookie_age, 20);
        assert_eq!(s.session_cookie_name, "fromfile");
    }

    #[test]
    fn environment_takes_json_for_lists_and_tables() {
        let s = Settings::from_sources(
            None,
            env(&[
                ("SECRET_KEY", "k"),
                ("SECRET_KEY_FALLBACKS", r#"["a","b"]"#),
                (
                    "CACHES",
                    r#"{"default":{"LOCATION":"redis://h:1/0"},"other":{}}"#,
                ),
            ]),
        )
        .unwrap();
        assert_eq!(s.secret_key_fallbacks, ["a", "b"]);
        assert_eq!(s.caches["default"]["LOCATION"], json!("redis://h:1/0"));
        assert!(s.caches["other"].is_object());
    }

    #[test]
    fn bad_json_in_the_environment_names_the_setting_without_echoing_secrets() {
        let error = Settings::from_sources(
            None,
            env(&[
                ("SECRET_KEY", "k"),
                ("SECRET_KEY_FALLBACKS", "oldsecretvalue"),
            ]),
        )
        .unwrap_err();
        let text = error.to_string();
        assert!(text.contains("SECRET_KEY_FALLBACKS"), "{text}");
        assert!(text.contains("environment"), "{text}");
        assert!(!text.contains("oldsecretvalue"), "{text}");
    }

    #[test]
    fn booleans_accept_python_and_numeric_spellings() {
        for (text, expected) in [
            ("true", true),
            ("True", true),
            ("1", true),
            ("false", false),
            ("False", false),
            ("0", false),
        ] {
            let s = Settings::from_sources(
                None,
                env(&[
                    ("SECRET_KEY", "k"),
                    ("SESSION_EXPIRE_AT_BROWSER_CLOSE", text),
                ]),
            )
            .unwrap();
            assert_eq!(s.session_expire_at_browser_close, expected, "{text}");
        }
        let error = Settings::from_sources(
            None,
            env(&[("SECRET_KEY", "k"), ("SESSION_COOKIE_SECURE", "yes")]),
        )
        .unwrap_err();
        assert!(
            error.to_string().contains("SESSION_COOKIE_SECURE"),
            "{error}"
        );
    }

    #[test]
    fn samesite_accepts_djangos_values() {
        for (text, expected) in [
            ("Strict", SameSite::Strict),
            ("Lax", SameSite::Lax),
            ("None", SameSite::None),
            ("false", SameSite::Disabled),
        ] {
            let s = Settings::from_sources(
                None,
                env(&[("SECRET_KEY", "k"), ("SESSION_COOKIE_SAMESITE", text)]),
            )
            .unwrap();
            assert_eq!(s.session_cookie_samesite, expected, "{text}");
        }
        let s =
            Settings::from_toml_str("SECRET_KEY = \"k\"\nSESSION_COOKIE_SAMESITE = false").unwrap();
        assert_eq!(s.session_cookie_samesite, SameSite::Disabled);
        assert!(
            Settings::from_sources(
                None,
                env(&[("SECRET_KEY", "k"), ("SESSION_COOKIE_SAMESITE", "Loose")])
            )
            .is_err()
        );
    }

    #[test]
    fn only_json_serializers_are_accepted() {
        for name in JSON_SERIALIZER_NAMES {
            let s = Settings::from_sources(
                None,
                env(&[("SECRET_KEY", "k"), ("SESSION_SERIALIZER", name)]),
            )
            .unwrap();
            assert_eq!(s.session_serializer, name);
        }
        let error = Settings::from_sources(
            None,
            env(&[
                ("SECRET_KEY", "k"),
                (
                    "SESSION_SERIALIZER",
                    "django.contrib.sessions.serializers.PickleSerializer",
                ),
            ]),
        )
        .unwrap_err();
        assert!(
            matches!(error, SettingsError::UnsupportedSerializer { .. }),
            "{error:?}"
        );
        assert!(error.to_string().contains("PickleSerializer"));
    }

    #[test]
    fn only_known_and_session_prefixed_environment_variables_are_read() {
        let s = Settings::from_sources(
            None,
            env(&[
                ("SECRET_KEY", "k"),
                ("PATH", "/usr/bin"),
                ("AWS_SECRET_ACCESS_KEY", "nope"),
                ("SESSIONKIT_ENGINE_PATH", "/x"),
                ("SESSION_REDIS_POOL", "8"),
            ]),
        )
        .unwrap();
        assert_eq!(s.extra.len(), 1, "{:?}", s.extra);
        assert_eq!(s.extra.get("SESSION_REDIS_POOL"), Some(&json!("8")));
        let json: Value = serde_json::from_str(&s.engine_settings_json()).unwrap();
        assert!(json.get("PATH").is_none());
        assert!(json.get("AWS_SECRET_ACCESS_KEY").is_none());
    }

    #[test]
    fn cookie_name_path_and_domain_reject_header_breaking_characters() {
        for (name, value) in [
            ("SESSION_COOKIE_NAME", "a;b"),
            ("SESSION_COOKIE_NAME", "a,b"),
            ("SESSION_COOKIE_NAME", "a\r\nSet-Cookie: x"),
            ("SESSION_COOKIE_NAME", "a=b"),
            ("SESSION_COOKIE_NAME", "a b"),
            ("SESSION_COOKIE_NAME", ""),
            ("SESSION_COOKIE_PATH", "/;x"),
            ("SESSION_COOKIE_PATH", "/\n"),
            ("SESSION_COOKIE_PATH", "/\u{7}"),
            ("SESSION_COOKIE_DOMAIN", "example.com;x"),
            ("SESSION_COOKIE_DOMAIN", "a,b"),
            ("SESSION_COOKIE_DOMAIN", "a\rb"),
        ] {
            let result = Settings::from_sources(None, env(&[("SECRET_KEY", "k"), (name, value)]));
            assert!(result.is_err(), "{name}={value:?} was accepted");
        }
        let mut s = Settings::new("k");
        s.session_cookie_path = "/x;y".to_owned();
        assert!(s.validate().is_err());
    }

    #[test]
    fn lower_case_setting_names_are_an_error_not_silently_ignored() {
        let error =
            Settings::from_toml_str("SECRET_KEY = \"k\"\nsession_cookie_age = 5").unwrap_err();
        assert!(
            matches!(error, SettingsError::LowerCaseName { .. }),
            "{error:?}"
        );
        assert!(error.to_string().contains("SESSION_COOKIE_AGE"));
    }

    #[test]
    fn wrong_types_are_errors_naming_the_setting() {
        let error =
            Settings::from_toml_str("SECRET_KEY = \"k\"\nSESSION_COOKIE_AGE = \"two weeks\"")
                .unwrap_err();
        assert!(error.to_string().contains("SESSION_COOKIE_AGE"), "{error}");
        assert!(error.to_string().contains("settings file"), "{error}");
        let error = Settings::from_toml_str("SECRET_KEY = 5").unwrap_err();
        assert!(error.to_string().contains("SECRET_KEY"), "{error}");
        let error =
            Settings::from_toml_str("SECRET_KEY = \"k\"\nCACHES = { default = 5 }").unwrap_err();
        assert!(error.to_string().contains("CACHES"), "{error}");
    }

    #[test]
    fn invalid_toml_is_reported_with_its_line() {
        let error =
            Settings::from_toml_str("SECRET_KEY = \"k\"\nSESSION_COOKIE_AGE = = 3").unwrap_err();
        assert!(matches!(error, SettingsError::Toml { .. }), "{error:?}");
        assert!(error.to_string().contains("line 2"), "{error}");
    }

    #[test]
    fn set_by_django_name_parses_and_routes_unknown_names_to_extra() {
        let mut s = Settings::new("k");
        s.set("SESSION_COOKIE_AGE", json!(60)).unwrap();
        s.set("SESSION_COOKIE_HTTPONLY", json!("False")).unwrap();
        s.set("SESSION_DB_TABLE", json!("t")).unwrap();
        s.set("SESSION_COOKIE_DOMAIN", json!(null)).unwrap();
        assert_eq!(s.session_cookie_age, 60);
        assert!(!s.session_cookie_httponly);
        assert_eq!(s.extra["SESSION_DB_TABLE"], json!("t"));
        assert!(s.set("SESSION_COOKIE_AGE", json!(1.5)).is_err());
        assert_eq!(
            s.session_cookie_age, 60,
            "a rejected value leaves the setting unchanged"
        );
    }

    #[test]
    fn engine_settings_json_has_every_setting_and_passes_caches_through() {
        let mut s = Settings::new("k");
        s.set("SESSION_DB_TABLE", json!("t")).unwrap();
        let json: Value = serde_json::from_str(&s.engine_settings_json()).unwrap();
        for name in KNOWN_SETTINGS {
            assert!(json.get(name).is_some(), "{name} missing");
        }
        assert_eq!(json["SECRET_KEY"], json!("k"));
        assert_eq!(json["SESSION_COOKIE_AGE"], json!(1_209_600));
        assert_eq!(json["SESSION_FILE_PATH"], Value::Null);
        assert_eq!(json["SESSION_COOKIE_SAMESITE"], json!("Lax"));
        assert_eq!(json["SESSION_DB_TABLE"], json!("t"));
        assert_eq!(
            json["CACHES"],
            json!({"default": {"LOCATION": "locmem://"}})
        );
        s.session_cookie_samesite = SameSite::Disabled;
        let json: Value = serde_json::from_str(&s.engine_settings_json()).unwrap();
        assert_eq!(json["SESSION_COOKIE_SAMESITE"], json!(false));
    }

    #[test]
    fn caches_reach_engines_exactly_as_configured() {
        // The cache crate fills Django's defaults; the host adds none of its own.
        let configured = json!({"default": {"LOCATION": "redis://h", "TIMEOUT": null, "OPTIONS": {"MAX_ENTRIES": 5}}});
        let mut s = Settings::new("k");
        s.set("CACHES", configured.clone()).unwrap();
        let json: Value = serde_json::from_str(&s.engine_settings_json()).unwrap();
        assert_eq!(json["CACHES"], configured);
    }

    #[test]
    fn debug_redacts_secrets_and_url_passwords() {
        let mut s = Settings::new("topsecretkey");
        s.secret_key_fallbacks = vec!["oldsecretkey".to_owned()];
        s.session_db_url = Some("postgres://user:hunter2@db/app".to_owned());
        s.set(
            "CACHES",
            json!({"default": {"LOCATION": "redis://:cachepw@h:6379/0"}}),
        )
        .unwrap();
        s.set("SESSION_REDIS_PASSWORD", json!("redispw")).unwrap();
        let text = format!("{s:?}");
        for secret in [
            "topsecretkey",
            "oldsecretkey",
            "hunter2",
            "cachepw",
            "redispw",
        ] {
            assert!(!text.contains(secret), "{secret} leaked in {text}");
        }
        assert!(text.contains("postgres://user:***@db/app"), "{text}");
    }
}
