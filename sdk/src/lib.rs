#![doc = include_str!("../README.md")]
// `#[sabi_trait]` expands to impls that rustc reports as `non_local_definitions`; the expansion
// comes from abi_stable_derive 0.11 and cannot be changed here.
#![allow(non_local_definitions)]

pub mod call;
pub mod capability;
pub mod error;
pub mod forward;
// `#[sabi_trait]` and `#[derive(StableAbi)]` on prefix types expand to `unsafe impl`s and
// `unsafe` blocks spanned on our items, as sibling items that an attribute on the trait or struct
// cannot reach. These four modules hold those expansions and no hand-written `unsafe`.
#[allow(unsafe_code)]
pub mod frozen;
#[allow(unsafe_code)]
pub mod host;
#[allow(unsafe_code)]
pub mod module;
pub mod record;
#[allow(unsafe_code)]
pub mod store;

pub use abi_stable;

pub use call::{CallAnswer, CallStep, CallWait, Interest, StoreCall};
pub use capability::{Capabilities, EngineInfo, KeyFormat};
pub use error::{ErrorKind, StoreError, StoreResult};
pub use host::{FfiHost, Host, HostBox, LogLevel, Progress};
pub use module::{Engine, EngineModule, EngineModuleRef};
pub use record::{SessionRecord, SessionWrite, Timestamp};
pub use store::{ConditionalSave, FfiStore, SessionStore, StoreBox};

/// This crate's version, which abi_stable checks when a plugin is loaded (see the README's
/// versioning rule: the contract grows within `0.1.x`).
pub const SDK_VERSION: &str = env!("CARGO_PKG_VERSION");

/// The revision of the contract this SDK speaks. 0.1 was the first release; 0.2 added
/// [`SessionStore::save_if_unchanged`], [`Capabilities::CONDITIONAL_SAVE`] and the host's log
/// and clock ([`host`]); 0.3 the host's progress display ([`Progress`]); 0.4 calls that do not
/// block ([`call`], [`Capabilities::READINESS_CALLS`]).
pub const CONTRACT_VERSION: &str = "0.4";
