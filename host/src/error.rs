//! The host's one error type: every failure of `Engine`, `Store` and `Session`, with context.

use sessionkit_codec::{json::JsonError, signing::EncodeError};
use sessionkit_sdk::{ErrorKind, StoreError};

use crate::{loader::LoadError, settings::SettingsError};

/// Why a host operation failed. `Display` is one line naming the engine, the operation and (for
/// keyed operations) the first characters of the key, never the whole key.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The engine reported a failure.
    #[error("engine '{engine}' failed to {operation}{}: {source}", key_context(.key_prefix))]
    Engine {
        /// The engine's short name.
        engine: String,
        /// The contract operation (`load`, `save`, ...).
        operation: &'static str,
        /// The first six characters of the key followed by `…`, when the operation had a key.
        key_prefix: Option<String>,
        /// What the engine said.
        source: StoreError,
    },
    /// A save found its session gone: it was deleted (a logout in another request) or expired
    /// meanwhile. Django's `SessionInterrupted`; an HTTP layer answers 400.
    #[error(
        "The request's session was deleted before the request completed. The user may have \
         logged out in a concurrent request, for example."
    )]
    SessionInterrupted,
    /// Other requests of the same session kept saving first: a save that merges concurrent
    /// writes reloaded and replayed its changes this many times, and every time another save
    /// had come in between. Nothing of this request's changes was stored; retrying may work.
    #[error(
        "engine '{engine}': the session kept changing under this request; its changes were not \
         saved after {attempts} merge attempts"
    )]
    WriteConflict {
        /// The engine's short name.
        engine: String,
        /// How many conditional saves were tried.
        attempts: u32,
    },
    /// An engine library could not be found, loaded or opened.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// The settings are missing or wrong.
    #[error(transparent)]
    Settings(#[from] SettingsError),
    /// A value cannot be stored in a session because it could not be loaded back (too deeply
    /// nested, or a non-finite float).
    #[error("value cannot be stored in a session: {0}")]
    Unstorable(#[source] JsonError),
    /// The session could not be encoded.
    #[error("session could not be encoded: {0}")]
    Encode(#[source] EncodeError),
    /// The engine does not offer this operation (see its capabilities).
    #[error("engine '{engine}' does not support {operation} (see its capabilities)")]
    Unsupported {
        /// The engine's short name.
        engine: String,
        /// The operation asked for.
        operation: &'static str,
    },
    /// `create` found every freshly minted key taken; the store is probably misbehaving.
    #[error(
        "engine '{engine}' reported every new session key as taken ({attempts} attempts); the \
         store is likely unavailable or broken"
    )]
    CreateExhausted {
        /// The engine's short name.
        engine: String,
        /// How many keys were tried.
        attempts: u32,
    },
    /// A stored value did not deserialize into the requested type.
    #[error("session value has another type than requested: {0}")]
    Type(#[source] serde_json::Error),
    /// A blocking task running an engine call failed (it panicked or was cancelled).
    #[error("blocking engine task failed: {0}")]
    Join(String),
    /// The session is larger than it may be; nothing was written (a session that is saved must
    /// load back, and the codec caps what it reads).
    #[error(
        "session of engine '{engine}' is {size} bytes of {what}, over the limit of {max} bytes; \
         nothing was saved"
    )]
    TooLarge {
        /// The engine's short name.
        engine: String,
        /// What was measured: `JSON` or `signed cookie`.
        what: &'static str,
        /// The measured size in bytes.
        size: usize,
        /// The limit in bytes.
        max: usize,
    },
    /// A key outside the engine's key format was passed to a write (reads treat such keys as
    /// absent; a write cannot).
    #[error(
        "engine '{engine}' refused to {operation}: the session key does not fit its key format"
    )]
    InvalidKey {
        /// The engine's short name.
        engine: String,
        /// The operation asked for.
        operation: &'static str,
    },
}

impl Error {
    /// The portable kind of this failure where one applies, so callers can branch (retry on
    /// `Unavailable`, answer 400 on `NotFound`, ...) without matching every variant.
    pub fn kind(&self) -> Option<ErrorKind> {
        match self {
            Self::Engine { source, .. } => Some(source.kind),
            Self::SessionInterrupted => Some(ErrorKind::NotFound),
            Self::Load(LoadError::Open { error, .. }) => Some(error.kind),
            Self::Load(_) | Self::Settings(_) => Some(ErrorKind::Config),
            Self::Unsupported { .. } => Some(ErrorKind::Unsupported),
            Self::CreateExhausted { .. } | Self::WriteConflict { .. } => {
                Some(ErrorKind::Unavailable)
            }
            Self::Unstorable(_)
            | Self::Encode(_)
            | Self::Type(_)
            | Self::Join(_)
            | Self::TooLarge { .. }
            | Self::InvalidKey { .. } => None,
        }
    }

    /// Wraps an engine's error with the context of the call that failed.
    pub(crate) fn engine(
        engine: &str,
        operation: &'static str,
        key: Option<&str>,
        source: StoreError,
    ) -> Self {
        Self::Engine {
            engine: engine.to_owned(),
            operation,
            key_prefix: key.map(key_prefix),
            source,
        }
    }
}

/// The first six characters of `key` followed by `…`: enough to correlate log lines, never
/// enough to hijack the session.
pub fn key_prefix(key: &str) -> String {
    let mut prefix: String = key.chars().take(6).collect();
    prefix.push('…');
    prefix
}

fn key_context(key_prefix: &Option<String>) -> String {
    match key_prefix {
        Some(prefix) => format!(" session {prefix}"),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_error_names_engine_operation_and_only_a_key_prefix() {
        let key = "abcdefghijklmnopqrstuvwxyz012345";
        let error = Error::engine(
            "db",
            "save",
            Some(key),
            StoreError::unavailable("connection refused"),
        );
        let text = error.to_string();
        assert_eq!(
            text,
            "engine 'db' failed to save session abcdef…: unavailable: connection refused"
        );
        assert!(!text.contains(key));
        assert_eq!(error.kind(), Some(ErrorKind::Unavailable));
    }

    #[test]
    fn key_prefix_of_a_short_key_keeps_what_there_is() {
        assert_eq!(key_prefix("ab"), "ab…");
        assert_eq!(key_prefix(""), "…");
    }

    #[test]
    fn session_interrupted_reads_like_django_and_maps_to_not_found() {
        let error = Error::SessionInterrupted;
        assert!(
            error
                .to_string()
                .starts_with("The request's session was deleted before the request completed.")
        );
        assert_eq!(error.kind(), Some(ErrorKind::NotFound));
    }
}
