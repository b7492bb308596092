//! The error every contract method returns, and its portable kinds.

use std::fmt;

use abi_stable::{StableAbi, std_types::RString};

/// The result type of every contract method on the Rust side.
pub type StoreResult<T> = Result<T, StoreError>;

/// What kind of failure an engine reports, so the host can act without knowing the store.
///
/// Frozen with the contract: a new failure maps to [`ErrorKind::Other`] until a new SDK major
/// version.
#[repr(u8)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// `create` found the key already taken; the host retries with a new key.
    AlreadyExists,
    /// `save` found the session gone (deleted or expired meanwhile); Django's `UpdateError`.
    NotFound,
    /// The store is temporarily unreachable (connection lost, timeout, busy); retrying may work.
    Unavailable,
    /// The store holds data it cannot read back.
    Corrupted,
    /// The engine's configuration is wrong or incomplete.
    Config,
    /// The engine does not offer this operation (see its capabilities).
    Unsupported,
    /// The engine panicked; the panic was caught on the plugin side of the boundary.
    Panicked,
    /// Anything else.
    Other,
}

impl ErrorKind {
    /// A short lowercase name for messages and logs.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::AlreadyExists => "already exists",
            Self::NotFound => "not found",
            Self::Unavailable => "unavailable",
            Self::Corrupted => "corrupted",
            Self::Config => "configuration error",
            Self::Unsupported => "unsupported",
            Self::Panicked => "panicked",
            Self::Other => "error",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An engine's failure as it crosses the ABI: a kind the host branches on and a message for
/// people.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq, Eq)]
pub struct StoreError {
    /// What went wrong, portably.
    pub kind: ErrorKind,
    /// What went wrong, for a log line. Never contains a whole session key or secret.
    pub message: RString,
}

impl StoreError {
    /// An error of `kind` with `message`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: RString::from(message.into()),
        }
    }

    /// `create` found the key taken.
    pub fn already_exists(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::AlreadyExists, message)
    }

    /// `save` found the session gone.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotFound, message)
    }

    /// The store is temporarily unreachable.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unavailable, message)
    }

    /// The engine's configuration is wrong.
    pub fn config(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Config, message)
    }

    /// The engine does not offer this operation.
    pub fn unsupported(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unsupported, message)
    }

    /// Anything else.
    pub fn other(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Other, message)
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind, self.message)
    }
}

impl std::error::Error for StoreError {}
