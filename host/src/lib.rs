#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

pub mod engine;
pub mod error;
pub mod loader;
mod changes;
mod memo;
pub mod plugin;
pub mod serializer;
pub mod session;
pub mod settings;
mod storable;

pub use sessionkit_codec::{
    SessionMap,
    expiry::{Clock, ManualClock, SystemClock},
    signing::Encoded,
};
pub use sessionkit_sdk::{
    Capabilities, ConditionalSave, ErrorKind, KeyFormat, SessionRecord, SessionWrite, StoreError,
    Timestamp,
};

pub use engine::{Engine, Store};
pub use error::Error;
pub use loader::{EngineDescription, EngineLibrary, LoadError};
pub use serializer::{JsonSerializer, Serializer};
pub use session::{Expiry, Session, TEST_COOKIE_NAME, TEST_COOKIE_VALUE};
pub use settings::{SameSite, Settings, SettingsError};

#[cfg(test)]
mod tests;
