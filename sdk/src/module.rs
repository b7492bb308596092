//! The root module every engine library exports, and the macro that exports it.

use std::panic::{AssertUnwindSafe, catch_unwind};

use abi_stable::{
    StableAbi, declare_root_module_statics,
    library::RootModule,
    package_version_strings,
    prefix_type::PrefixTypeTrait,
    sabi_types::VersionStrings,
    std_types::{RResult, RStr},
};

use crate::{
    EngineInfo, SessionStore, StoreBox, StoreError, forward,
    host::{Host, HostBox},
    store::{FfiAdapter, panicked},
};

/// The root module of an engine library: what the host finds behind the library's one
/// exported symbol.
///
/// A prefix type that only grows: each contract revision appends fields after the last one, so
/// an engine built against a newer SDK still loads into an older host, and the host keeps the
/// older layouts frozen in [`crate::frozen`] to load older engines. Build it with
/// [`export_engine!`](crate::export_engine), never by hand.
#[repr(C)]
#[derive(StableAbi)]
#[sabi(kind(Prefix(prefix_ref = EngineModuleRef)))]
#[sabi(missing_field(panic))]
pub struct EngineModule {
    /// The engine's name, version, salt, capabilities and key format.
    pub info: extern "C" fn() -> EngineInfo,
    /// Opens a store from the engine settings, a JSON object of Django-named settings
    /// (`SESSION_COOKIE_AGE`, `SESSION_FILE_PATH`, `CACHES`, ...). Never panics: a panic in the
    /// engine's constructor comes back as an [`ErrorKind::Panicked`](crate::ErrorKind) error.
    #[sabi(last_prefix_field)]
    pub open: extern "C" fn(settings_json: RStr<'_>) -> RResult<StoreBox, StoreError>,
    /// Contract 0.2: opens a store like `open`, lending it the host's clock and log (see
    /// [`crate::host`]). A host of contract 0.2 calls this one.
    #[sabi(missing_field(option))]
    pub open_with_host:
        extern "C" fn(settings_json: RStr<'_>, host: HostBox) -> RResult<StoreBox, StoreError>,
}

impl RootModule for EngineModuleRef {
    declare_root_module_statics! {EngineModuleRef}
    const BASE_NAME: &'static str = "sessionkit_engine";
    const NAME: &'static str = "sessionkit_engine";
    const VERSION_STRINGS: VersionStrings = package_version_strings!();
}

/// An engine as its author writes it: a description and a constructor for its store.
///
/// Export it with [`export_engine!`](crate::export_engine).
pub trait Engine {
    /// The store this engine opens.
    type Store: SessionStore;

    /// The engine's name, version, salt, capabilities and key format.
    fn info() -> EngineInfo;

    /// Opens a store from the settings JSON (see [`EngineModule::open`]).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Config`](crate::ErrorKind::Config) for bad settings; any other kind for a
    /// store that cannot be reached.
    fn open(settings_json: &str) -> Result<Self::Store, StoreError>;

    /// Opens a store with the host's services: its clock (judge expiry by [`Host::now`]) and
    /// its log (the SDK already forwards this library's `tracing` events). The default ignores
    /// the host and calls [`Engine::open`], which is right for an engine without expiry logic
    /// of its own.
    ///
    /// # Errors
    ///
    /// As [`Engine::open`].
    fn open_with_host(settings_json: &str, host: &Host) -> Result<Self::Store, StoreError> {
        let _ = host;
        Self::open(settings_json)
    }
}

extern "C" fn info_of<E: Engine>() -> EngineInfo {
    E::info()
}

extern "C" fn open_of<E: Engine>(settings_json: RStr<'_>) -> RResult<StoreBox, StoreError> {
    guarded_open::<E>(None, || E::open(settings_json.as_str()))
}

extern "C" fn open_with_host_of<E: Engine>(
    settings_json: RStr<'_>,
    host: HostBox,
) -> RResult<StoreBox, StoreError> {
    forward::connect(&host);
    let services = host.clone();
    let host = Host::new(host);
    guarded_open::<E>(Some(services), || {
        E::open_with_host(settings_json.as_str(), &host)
    })
}

fn guarded_open<E: Engine>(
    host: Option<HostBox>,
    open: impl FnOnce() -> Result<E::Store, StoreError>,
) -> RResult<StoreBox, StoreError> {
    let name = E::info().name.as_str();
    match catch_unwind(AssertUnwindSafe(open)) {
        Ok(Ok(store)) => {
            let adapter = FfiAdapter::new(name, store);
            let adapter = match host {
                Some(host) => adapter.with_host(host),
                None => adapter,
            };
            RResult::ROk(adapter.into_box())
        }
        Ok(Err(error)) => RResult::RErr(error),
        Err(payload) => RResult::RErr(panicked(name, "open", payload.as_ref())),
    }
}

/// Builds the root module of engine `E`, and silences the library's panic output (panics come
/// back as errors). Called by [`export_engine!`](crate::export_engine) when the host loads the
/// library.
#[doc(hidden)]
pub fn module_of<E: Engine>() -> EngineModuleRef {
    forward::install_quiet_panic_hook();
    EngineModule {
        info: info_of::<E>,
        open: open_of::<E>,
        open_with_host: open_with_host_of::<E>,
    }
    .leak_into_prefix()
}

/// Exports an [`Engine`] as this library's root module.
///
/// Put it once in the engine's `lib.rs`; the crate must be a `cdylib` and depend on
/// `abi_stable` directly (its macros expand to `::abi_stable` paths).
///
/// ```ignore
/// sessionkit_sdk::export_engine!(MyEngine);
/// ```
#[macro_export]
macro_rules! export_engine {
    ($engine:ty) => {
        // Private, so the header static `export_root_module` generates with this function's
        // visibility is private too (an undocumented `pub static` would trip `missing_docs`);
        // `#[no_mangle]` exports it from the library all the same.
        #[::abi_stable::export_root_module]
        fn __sessionkit_engine_root_module() -> $crate::EngineModuleRef {
            $crate::module::module_of::<$engine>()
        }

        /// The root module of this engine library, as the host's loader finds it.
        pub fn sessionkit_engine_root_module() -> $crate::EngineModuleRef {
            __sessionkit_engine_root_module()
        }
    };
}
