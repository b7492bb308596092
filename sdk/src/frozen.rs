//! The earlier forms of the contract, frozen, so a newer host keeps loading older engines.
//!
//! abi_stable checks a library's root module against the layout the host expects, and accepts
//! a library whose prefix types have *more* fields than the host's, never fewer: an engine
//! built against contract 0.1 has no `open_with_host` and no `save_if_unchanged`, so the
//! current [`EngineModule`](crate::EngineModule) refuses it. The host therefore tries the
//! current layout first and then each frozen one here, newest first, and adapts what it gets
//! (a missing method becomes "unsupported", and the host says so once when it opens the store).
//!
//! Nothing in this module may ever change: each type is a copy, to the field and the method,
//! of the release that introduced it (names included — abi_stable compares type, field and
//! method names). The fixture engine built against the released 0.1 SDK
//! (`tests/fixtures/contract-0.1`) proves the copy still matches.

/// Contract 0.3, as released in `sessionkit-sdk` 0.1.2: the store of 0.2 (its `FfiStore`
/// did not change in 0.3) opened with the host's services of 0.3, which are still the current
/// [`FfiHost`](crate::FfiHost): when `FfiHost` grows, its 0.3 form must be copied here first, as
/// [`v0_2::FfiHost`] was.
pub mod v0_3 {
    use abi_stable::{
        StableAbi, declare_root_module_statics,
        library::RootModule,
        package_version_strings,
        sabi_types::VersionStrings,
        std_types::{RResult, RStr},
    };

    use crate::{EngineInfo, HostBox, StoreError};

    /// A store opened by a contract-0.3 engine (the 0.2 form: 0.4 appended the calls that do
    /// not block).
    pub type StoreBox = super::v0_2::StoreBox;

    /// The root module of contract 0.3.
    #[repr(C)]
    #[derive(StableAbi)]
    #[sabi(kind(Prefix(prefix_ref = EngineModuleRef)))]
    #[sabi(missing_field(panic))]
    pub struct EngineModule {
        /// The engine's name, version, salt, capabilities and key format.
        pub info: extern "C" fn() -> EngineInfo,
        /// Opens a store from the engine settings JSON.
        #[sabi(last_prefix_field)]
        pub open: extern "C" fn(settings_json: RStr<'_>) -> RResult<StoreBox, StoreError>,
        /// Opens a store lending it the host's clock, log and progress display.
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
}

/// Contract 0.2, as released in `sessionkit-sdk` 0.1.1: the host's services without the
/// progress display that 0.3 appended. A host lends an engine of 0.2 this form of its services,
/// because abi_stable refuses a library whose `FfiHost` has fewer methods than the host's.
pub mod v0_2 {
    use abi_stable::{
        StableAbi, declare_root_module_statics,
        library::RootModule,
        package_version_strings, sabi_trait,
        sabi_types::VersionStrings,
        std_types::{RArc, RBox, ROption, RResult, RStr, RString, RVec},
    };

    use crate::{
        Capabilities, EngineInfo, LogLevel, SessionRecord, SessionWrite, StoreError, Timestamp,
    };

    /// The host's services of contract 0.2: clock and log.
    #[sabi_trait]
    pub trait FfiHost: Send + Sync + Clone {
        /// See [`FfiHost::now`](crate::FfiHost::now).
        fn now(&self) -> Timestamp;

        /// See [`FfiHost::max_level`](crate::FfiHost::max_level).
        fn max_level(&self) -> LogLevel;

        /// See [`FfiHost::log`](crate::FfiHost::log).
        #[sabi(last_prefix_field)]
        fn log(&self, level: LogLevel, target: RStr<'_>, message: RStr<'_>);
    }

    /// The host's services as a contract-0.2 engine receives them.
    pub type HostBox = FfiHost_TO<'static, RArc<()>>;

    /// The store trait object of contracts 0.2 and 0.3 (0.4 appended the calls that do not
    /// block).
    #[sabi_trait]
    pub trait FfiStore: Send + Sync {
        /// See [`SessionStore::exists`](crate::SessionStore::exists).
        fn exists(&self, key: RStr<'_>) -> RResult<bool, StoreError>;
        /// See [`SessionStore::load`](crate::SessionStore::load).
        fn load(&self, key: RStr<'_>) -> RResult<ROption<SessionRecord>, StoreError>;
        /// See [`SessionStore::create`](crate::SessionStore::create).
        fn create(&self, write: SessionWrite) -> RResult<RString, StoreError>;
        /// See [`SessionStore::save`](crate::SessionStore::save).
        fn save(&self, write: SessionWrite) -> RResult<RString, StoreError>;
        /// See [`SessionStore::delete`](crate::SessionStore::delete).
        fn delete(&self, key: RStr<'_>) -> RResult<(), StoreError>;
        /// See [`SessionStore::clear_expired`](crate::SessionStore::clear_expired).
        fn clear_expired(&self) -> RResult<u64, StoreError>;
        /// See [`SessionStore::capabilities`](crate::SessionStore::capabilities).
        fn capabilities(&self) -> Capabilities;
        /// See [`SessionStore::sessions_of_account`](crate::SessionStore::sessions_of_account).
        fn sessions_of_account(&self, account_id: i64) -> RResult<RVec<SessionRecord>, StoreError>;
        /// See
        /// [`SessionStore::delete_sessions_of_account`](crate::SessionStore::delete_sessions_of_account).
        #[sabi(last_prefix_field)]
        fn delete_sessions_of_account(
            &self,
            account_id: i64,
            keep: ROption<RStr<'_>>,
        ) -> RResult<u64, StoreError>;
        /// See [`SessionStore::save_if_unchanged`](crate::SessionStore::save_if_unchanged).
        fn save_if_unchanged(
            &self,
            write: SessionWrite,
            expected_data: RStr<'_>,
        ) -> RResult<RResult<RString, SessionRecord>, StoreError>;
    }

    /// A store opened by a contract-0.2 engine.
    pub type StoreBox = FfiStore_TO<'static, RBox<()>>;

    /// The root module of contract 0.2.
    #[repr(C)]
    #[derive(StableAbi)]
    #[sabi(kind(Prefix(prefix_ref = EngineModuleRef)))]
    #[sabi(missing_field(panic))]
    pub struct EngineModule {
        /// The engine's name, version, salt, capabilities and key format.
        pub info: extern "C" fn() -> EngineInfo,
        /// Opens a store from the engine settings JSON.
        #[sabi(last_prefix_field)]
        pub open: extern "C" fn(settings_json: RStr<'_>) -> RResult<StoreBox, StoreError>,
        /// Opens a store lending it the host's clock and log.
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
}

/// Contract 0.1, as released in `sessionkit-sdk` 0.1.0.
pub mod v0_1 {
    use abi_stable::{
        StableAbi, declare_root_module_statics,
        library::RootModule,
        package_version_strings, sabi_trait,
        sabi_types::VersionStrings,
        std_types::{RBox, ROption, RResult, RStr, RString, RVec},
    };

    use crate::{Capabilities, EngineInfo, SessionRecord, SessionWrite, StoreError};

    /// The store trait object of contract 0.1 (the current one without the methods appended
    /// since).
    #[sabi_trait]
    pub trait FfiStore: Send + Sync {
        /// See [`SessionStore::exists`](crate::SessionStore::exists).
        fn exists(&self, key: RStr<'_>) -> RResult<bool, StoreError>;
        /// See [`SessionStore::load`](crate::SessionStore::load).
        fn load(&self, key: RStr<'_>) -> RResult<ROption<SessionRecord>, StoreError>;
        /// See [`SessionStore::create`](crate::SessionStore::create).
        fn create(&self, write: SessionWrite) -> RResult<RString, StoreError>;
        /// See [`SessionStore::save`](crate::SessionStore::save).
        fn save(&self, write: SessionWrite) -> RResult<RString, StoreError>;
        /// See [`SessionStore::delete`](crate::SessionStore::delete).
        fn delete(&self, key: RStr<'_>) -> RResult<(), StoreError>;
        /// See [`SessionStore::clear_expired`](crate::SessionStore::clear_expired).
        fn clear_expired(&self) -> RResult<u64, StoreError>;
        /// See [`SessionStore::capabilities`](crate::SessionStore::capabilities).
        fn capabilities(&self) -> Capabilities;
        /// See [`SessionStore::sessions_of_account`](crate::SessionStore::sessions_of_account).
        fn sessions_of_account(&self, account_id: i64) -> RResult<RVec<SessionRecord>, StoreError>;
        /// See
        /// [`SessionStore::delete_sessions_of_account`](crate::SessionStore::delete_sessions_of_account).
        #[sabi(last_prefix_field)]
        fn delete_sessions_of_account(
            &self,
            account_id: i64,
            keep: ROption<RStr<'_>>,
        ) -> RResult<u64, StoreError>;
    }

    /// A store opened by a contract-0.1 engine.
    pub type StoreBox = FfiStore_TO<'static, RBox<()>>;

    /// The root module of contract 0.1.
    #[repr(C)]
    #[derive(StableAbi)]
    #[sabi(kind(Prefix(prefix_ref = EngineModuleRef)))]
    #[sabi(missing_field(panic))]
    pub struct EngineModule {
        /// The engine's name, version, salt, capabilities and key format.
        pub info: extern "C" fn() -> EngineInfo,
        /// Opens a store from the engine settings JSON.
        #[sabi(last_prefix_field)]
        pub open: extern "C" fn(settings_json: RStr<'_>) -> RResult<StoreBox, StoreError>,
    }

    impl RootModule for EngineModuleRef {
        declare_root_module_statics! {EngineModuleRef}
        const BASE_NAME: &'static str = "sessionkit_engine";
        const NAME: &'static str = "sessionkit_engine";
        const VERSION_STRINGS: VersionStrings = package_version_strings!();
    }
}
