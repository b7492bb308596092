//! The one error type of the command line: a one-line reason and an exit status.

use std::process::ExitCode;

/// Why a command failed, printed as one line on stderr.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Failure {
    /// Settings could not be read or are incomplete (exit 2).
    #[error("{0}")]
    Settings(#[from] sessionkit::SettingsError),
    /// The host or an engine failed (exit 1).
    #[error("{0}")]
    Host(#[from] sessionkit::Error),
    /// Standard input or output failed (exit 1).
    #[error("{context}: {source}")]
    Io {
        /// What was being read or written.
        context: &'static str,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The input is not what the command takes (exit 2).
    #[error("{0}")]
    Input(String),
    /// `session_data` did not verify or decode (exit 1).
    #[error("{0}")]
    Decode(#[from] sessionkit_codec::DecodeError),
}

impl Failure {
    /// The process exit status for this failure.
    pub(crate) fn exit_code(&self) -> ExitCode {
        match self {
            Self::Settings(_) | Self::Input(_) => ExitCode::from(2),
            Self::Host(_) | Self::Io { .. } | Self::Decode(_) => ExitCode::from(1),
        }
    }
}
