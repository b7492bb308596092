//! The file engine's settings, read from the engine settings JSON the host hands to `open`.

use std::{
    fmt,
    path::{Path, PathBuf},
};

use serde_json::{Map, Value};

/// Django's default `SESSION_COOKIE_NAME`, also the prefix of every session file name.
pub const DEFAULT_COOKIE_NAME: &str = "sessionid";

/// Django's default `SESSION_COOKIE_AGE` (two weeks, in seconds).
pub const DEFAULT_COOKIE_AGE: i64 = 1_209_600;

/// The longest `SESSION_COOKIE_NAME` the engine accepts, so that the name of a session file (and
/// of its temporary twin) stays under the 255-byte limit of common file systems.
pub const MAX_COOKIE_NAME_LEN: usize = 192;

/// Typed settings of the file engine.
///
/// `Debug` never shows `SECRET_KEY` or `SECRET_KEY_FALLBACKS`.
#[derive(Clone)]
pub struct FileConfig {
    directory: PathBuf,
    /// `SESSION_FILE_PATH` was not set: `directory` is the engine's private default, created at
    /// open.
    private_default: bool,
    cookie_name: String,
    cookie_age: i64,
    secret_key: String,
    secret_key_fallbacks: Vec<String>,
    durability: Durability,
}

/// How a write is made durable before it is acknowledged. Both are crash-safe: a write is
/// acknowledged only once its data and its rename are on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// Concurrent writes share the directory fsync that makes their renames durable (one
    /// directory fsync for many renames; see the crate README). A lone writer pays what
    /// [`PerWrite`](Self::PerWrite) pays.
    #[default]
    GroupCommit,
    /// Every write fsyncs its own temporary file and then the directory, whatever else runs
    /// (the engine before group commit): the baseline benchmarks compare against.
    PerWrite,
}

/// Why the settings cannot open a file store. Each message names the setting at fault.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The settings string is not JSON at all.
    #[error("the engine settings are not valid JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// The settings JSON is valid but not an object of setting names.
    #[error("the engine settings must be a JSON object of Django setting names")]
    NotAnObject,
    /// A setting has the wrong type or a value the engine cannot use.
    #[error("{setting}: {reason}")]
    Invalid {
        /// The Django name of the setting.
        setting: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// `SESSION_FILE_PATH` (or the temp dir it defaults to) does not exist; Django's
    /// `ImproperlyConfigured`.
    #[error(
        "SESSION_FILE_PATH: the session storage path {} doesn't exist; set SESSION_FILE_PATH to \
         an existing directory in which sessions can be stored",
        path.display()
    )]
    MissingDirectory {
        /// The path that was looked for.
        path: PathBuf,
    },
    /// `SESSION_FILE_PATH` names something that is not a directory.
    #[error("SESSION_FILE_PATH: {} is not a directory", path.display())]
    NotADirectory {
        /// The offending path.
        path: PathBuf,
    },
    /// The directory exists but is unsafe to keep sessions in.
    #[error("SESSION_FILE_PATH: {} {reason}", path.display())]
    UnsafeDirectory {
        /// The offending directory.
        path: PathBuf,
        /// Why it is unsafe.
        reason: &'static str,
    },
    /// The engine's default directory (used when `SESSION_FILE_PATH` is not set) exists but is
    /// not private to this user, so someone else made or loosened it.
    #[error(
        "SESSION_FILE_PATH is not set and the default session directory {} {reason}; remove it \
         or set SESSION_FILE_PATH to a private directory (mode 0700)",
        path.display()
    )]
    UnsafeDefaultDirectory {
        /// The default directory.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The directory could not be inspected or written.
    #[error("SESSION_FILE_PATH: cannot use {}: {source}", path.display())]
    Directory {
        /// The directory.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
}

impl FileConfig {
    /// Settings for a store in `directory` signed with `secret_key`, every other setting at
    /// Django's default (for tests, benches and embedding without a settings JSON).
    pub fn new(directory: impl Into<PathBuf>, secret_key: impl Into<String>) -> Self {
        Self {
            directory: directory.into(),
            private_default: false,
            cookie_name: DEFAULT_COOKIE_NAME.to_owned(),
            cookie_age: DEFAULT_COOKIE_AGE,
            secret_key: secret_key.into(),
            secret_key_fallbacks: Vec::new(),
            durability: Durability::default(),
        }
    }

    /// Reads the settings the engine uses from the host's settings JSON (Django names,
    /// defaults filled by the host; missing keys fall back to Django's defaults).
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] naming the setting for a wrong type or an unusable value.
    pub fn from_settings_json(json: &str) -> Result<Self, ConfigError> {
        let value: Value = serde_json::from_str(json)?;
        let settings = value.as_object().ok_or(ConfigError::NotAnObject)?;

        let secret_key = match settings.get("SECRET_KEY") {
            Some(Value::String(key)) if !key.is_empty() => key.clone(),
            Some(Value::String(_)) | None | Some(Value::Null) => {
                return Err(invalid("SECRET_KEY", "must be set to a non-empty string"));
            }
            Some(_) => return Err(invalid("SECRET_KEY", "must be a string")),
        };
        let secret_key_fallbacks = string_list(settings, "SECRET_KEY_FALLBACKS")?;
        let cookie_name = match settings.get("SESSION_COOKIE_NAME") {
            None | Some(Value::Null) => DEFAULT_COOKIE_NAME.to_owned(),
            Some(Value::String(name)) => name.clone(),
            Some(_) => return Err(invalid("SESSION_COOKIE_NAME", "must be a string")),
        };
        let cookie_age = match settings.get("SESSION_COOKIE_AGE") {
            None | Some(Value::Null) => DEFAULT_COOKIE_AGE,
            Some(Value::Number(n)) => n.as_i64().ok_or_else(|| {
                invalid("SESSION_COOKIE_AGE", "must be a whole number of seconds")
            })?,
            Some(_) => {
                return Err(invalid(
                    "SESSION_COOKIE_AGE",
                    "must be a whole number of seconds",
                ));
            }
        };
        // Django: `getattr(settings, "SESSION_FILE_PATH", None) or tempfile.gettempdir()`, so an
        // empty string also means "not set". Not set, the engine uses a private directory of its
        // own in the temp dir, never the world-listable temp dir itself: file names are keys.
        let (directory, private_default) = match settings.get("SESSION_FILE_PATH") {
            None | Some(Value::Null) => (crate::core::default_directory(), true),
            Some(Value::String(path)) if path.is_empty() => {
                (crate::core::default_directory(), true)
            }
            Some(Value::String(path)) => (PathBuf::from(path), false),
            Some(_) => return Err(invalid("SESSION_FILE_PATH", "must be a string or null")),
        };

        let config = Self {
            directory,
            private_default,
            cookie_name,
            cookie_age,
            secret_key,
            secret_key_fallbacks,
            durability: Durability::default(),
        };
        config.validate()?;
        Ok(config)
    }

    /// The same settings with another `SESSION_COOKIE_NAME` (the file name prefix).
    pub fn with_cookie_name(mut self, name: impl Into<String>) -> Self {
        self.cookie_name = name.into();
        self
    }

    /// The same settings with another `SESSION_COOKIE_AGE` in seconds.
    pub fn with_cookie_age(mut self, seconds: i64) -> Self {
        self.cookie_age = seconds;
        self
    }

    /// The same settings with `SECRET_KEY_FALLBACKS` (older keys that still verify).
    pub fn with_secret_key_fallbacks(mut self, fallbacks: Vec<String>) -> Self {
        self.secret_key_fallbacks = fallbacks;
        self
    }

    /// The same settings with another [`Durability`] (embedding only; the settings JSON has no
    /// key for it, so the engine the host loads always uses group commit).
    pub fn with_durability(mut self, durability: Durability) -> Self {
        self.durability = durability;
        self
    }

    /// How writes are made durable.
    pub fn durability(&self) -> Durability {
        self.durability
    }

    /// The directory that holds the session files: `SESSION_FILE_PATH`, or when it is not set
    /// the engine's private default `<system temp dir>/sessionkit-sessions-<uid>`.
    pub fn directory(&self) -> &Path {
        &self.directory
    }

    /// Whether [`directory`](Self::directory) is the engine's private default (created with
    /// mode 0700 at open, and refused unless this user owns it and nobody else can open it).
    pub fn uses_private_default(&self) -> bool {
        self.private_default
    }

    /// `SESSION_COOKIE_NAME`, the prefix of every session file name.
    pub fn cookie_name(&self) -> &str {
        &self.cookie_name
    }

    /// `SESSION_COOKIE_AGE` in seconds: the lifetime of a session without its own expiry,
    /// counted from the file's modification time.
    pub fn cookie_age(&self) -> i64 {
        self.cookie_age
    }

    /// `SECRET_KEY`, which the engine needs to read `_session_expiry` out of signed data.
    pub fn secret_key(&self) -> &str {
        &self.secret_key
    }

    /// `SECRET_KEY_FALLBACKS`.
    pub fn secret_key_fallbacks(&self) -> &[String] {
        &self.secret_key_fallbacks
    }

    /// Checks the values that do not need the file system: a usable secret key, and a cookie
    /// name that can only ever be a file name prefix (never a path).
    ///
    /// # Errors
    ///
    /// [`ConfigError::Invalid`] naming the setting.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.secret_key.is_empty() {
            return Err(invalid("SECRET_KEY", "must be set to a non-empty string"));
        }
        let name = &self.cookie_name;
        if name.is_empty() {
            return Err(invalid("SESSION_COOKIE_NAME", "must not be empty"));
        }
        if name.len() > MAX_COOKIE_NAME_LEN {
            return Err(invalid(
                "SESSION_COOKIE_NAME",
                format!(
                    "is {} bytes; the file engine allows at most {MAX_COOKIE_NAME_LEN}",
                    name.len()
                ),
            ));
        }
        if name
            .chars()
            .any(|c| c == '/' || c == '\\' || c.is_control())
        {
            return Err(invalid(
                "SESSION_COOKIE_NAME",
                "must not contain '/', '\\' or control characters: it prefixes file names",
            ));
        }
        Ok(())
    }

    /// The same settings with `directory` made absolute (so a later `chdir` cannot move it).
    pub(crate) fn with_absolute_directory(mut self) -> Result<Self, ConfigError> {
        self.directory =
            std::path::absolute(&self.directory).map_err(|source| ConfigError::Directory {
                path: self.directory.clone(),
                source,
            })?;
        Ok(self)
    }
}

impl fmt::Debug for FileConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileConfig")
            .field("directory", &self.directory)
            .field("private_default", &self.private_default)
            .field("cookie_name", &self.cookie_name)
            .field("cookie_age", &self.cookie_age)
            .field("secret_key", &"<redacted>")
            .field(
                "secret_key_fallbacks",
                &format_args!("<{} redacted>", self.secret_key_fallbacks.len()),
            )
            .field("durability", &self.durability)
            .finish()
    }
}

fn invalid(setting: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        setting,
        reason: reason.into(),
    }
}

fn string_list(
    settings: &Map<String, Value>,
    setting: &'static str,
) -> Result<Vec<String>, ConfigError> {
    match settings.get(setting) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| match item {
                Value::String(s) => Ok(s.clone()),
                _ => Err(invalid(setting, "must be a list of strings")),
            })
            .collect(),
        Some(_) => Err(invalid(setting, "must be a list of strings")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_json_fills_django_defaults() {
        let config = FileConfig::from_settings_json(r#"{"SECRET_KEY":"s3cret"}"#).unwrap();
        assert_eq!(config.cookie_name(), "sessionid");
        assert_eq!(config.cookie_age(), 1_209_600);
        assert_eq!(config.directory(), crate::core::default_directory());
        assert!(config.uses_private_default());
        assert!(config.secret_key_fallbacks().is_empty());
    }

    #[test]
    fn settings_json_reads_every_setting() {
        let json = r#"{"SECRET_KEY":"k","SECRET_KEY_FALLBACKS":["old1","old2"],
            "SESSION_COOKIE_NAME":"sid","SESSION_COOKIE_AGE":60,"SESSION_FILE_PATH":"/srv/s",
            "CACHES":{"default":{}},"SOMETHING_ELSE":1}"#;
        let config = FileConfig::from_settings_json(json).unwrap();
        assert_eq!(config.secret_key(), "k");
        assert_eq!(config.secret_key_fallbacks(), ["old1", "old2"]);
        assert_eq!(config.cookie_name(), "sid");
        assert_eq!(config.cookie_age(), 60);
        assert_eq!(config.directory(), Path::new("/srv/s"));
        assert!(!config.uses_private_default());
    }

    #[test]
    fn empty_file_path_means_not_set_like_django() {
        let json = r#"{"SECRET_KEY":"k","SESSION_FILE_PATH":""}"#;
        let config = FileConfig::from_settings_json(json).unwrap();
        assert_eq!(config.directory(), crate::core::default_directory());
        assert!(config.uses_private_default());
    }

    #[test]
    fn the_default_directory_is_a_per_user_directory_in_the_temp_dir() {
        let default = crate::core::default_directory();
        assert_eq!(default.parent(), Some(std::env::temp_dir().as_path()));
        let name = default.file_name().unwrap().to_str().unwrap();
        let uid = name.strip_prefix("sessionkit-sessions-").unwrap();
        #[cfg(unix)]
        assert_eq!(uid, rustix::process::geteuid().as_raw().to_string());
        #[cfg(not(unix))]
        let _ = uid;
    }

    #[test]
    fn bad_values_name_the_setting() {
        let cases = [
            (r#"{"SECRET_KEY":""}"#, "SECRET_KEY"),
            (r#"{}"#, "SECRET_KEY"),
            (
                r#"{"SECRET_KEY":"k","SECRET_KEY_FALLBACKS":"old"}"#,
                "SECRET_KEY_FALLBACKS",
            ),
            (
                r#"{"SECRET_KEY":"k","SESSION_COOKIE_AGE":"60"}"#,
                "SESSION_COOKIE_AGE",
            ),
            (
                r#"{"SECRET_KEY":"k","SESSION_COOKIE_AGE":1.5}"#,
                "SESSION_COOKIE_AGE",
            ),
            (
                r#"{"SECRET_KEY":"k","SESSION_FILE_PATH":5}"#,
                "SESSION_FILE_PATH",
            ),
            (
                r#"{"SECRET_KEY":"k","SESSION_COOKIE_NAME":"../x"}"#,
                "SESSION_COOKIE_NAME",
            ),
            (
                r#"{"SECRET_KEY":"k","SESSION_COOKIE_NAME":"a\\b"}"#,
                "SESSION_COOKIE_NAME",
            ),
            (
                r#"{"SECRET_KEY":"k","SESSION_COOKIE_NAME":"a\u0000"}"#,
                "SESSION_COOKIE_NAME",
            ),
            (
                r#"{"SECRET_KEY":"k","SESSION_COOKIE_NAME":""}"#,
                "SESSION_COOKIE_NAME",
            ),
        ];
        for (json, setting) in cases {
            let error = FileConfig::from_settings_json(json)
                .unwrap_err()
                .to_string();
            assert!(error.starts_with(setting), "{json}: {error}");
        }
        assert!(matches!(
            FileConfig::from_settings_json("[]"),
            Err(ConfigError::NotAnObject)
        ));
        assert!(matches!(
            FileConfig::from_settings_json("{"),
            Err(ConfigError::Json(_))
        ));
    }

    #[test]
    fn debug_redacts_secrets() {
        let config = FileConfig::new("/tmp", "topsecret-key")
            .with_secret_key_fallbacks(vec!["older-secret".to_owned()]);
        let shown = format!("{config:?}");
        assert!(!shown.contains("topsecret"), "{shown}");
        assert!(!shown.contains("older-secret"), "{shown}");
        assert!(shown.contains("<redacted>"), "{shown}");
    }
}
