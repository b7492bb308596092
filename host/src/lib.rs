#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

mod blocking;
mod changes;
pub mod engine;
pub mod error;
pub mod library_file;
pub mod loader;
mod memo;
mod mode;
pub mod observe;
pub mod plugin;
mod save_turns;
pub mod session;
pub mod settings;
mod storable;
pub mod store;
pub mod testing;

pub use sessionkit_codec::{
    SessionMap,
    expiry::{Clock, ManualClock, SystemClock},
    signing::Encoded,
};
pub use sessionkit_sdk::{
    Capabilities, ConditionalSave, ErrorKind, KeyFormat, SessionRecord, SessionWrite, StoreError,
    Timestamp,
};

pub use engine::Engine;
pub use error::Error;
pub use loader::{EngineDescription, EngineLibrary, LoadError};
pub use session::{Expiry, Session, TEST_COOKIE_NAME, TEST_COOKIE_VALUE};
pub use settings::{ConcurrentWrites, SameSite, Settings, SettingsError};
pub use store::Store;

#[cfg(test)]
mod tests;
