#![doc = include_str!("../README.md")]
// `#[sabi_trait]` expands to impls that rustc reports as `non_local_definitions`; the expansion
// comes from abi_stable_derive 0.11 and cannot be changed here (see abi-notes.md §1).
#![allow(non_local_definitions)]

pub mod capability;
pub mod error;
pub mod module;
pub mod record;
pub mod store;

pub use abi_stable;

pub use capability::{Capabilities, EngineInfo, KeyFormat};
pub use error::{ErrorKind, StoreError, StoreResult};
pub use module::{Engine, EngineModule, EngineModuleRef};
pub use record::{SessionRecord, SessionWrite, Timestamp};
pub use store::{FfiStore, SessionStore, StoreBox};

/// The contract's version, checked by abi_stable when a plugin is loaded: a host accepts
/// plugins built against this version or a later compatible one.
pub const SDK_VERSION: &str = env!("CARGO_PKG_VERSION");
