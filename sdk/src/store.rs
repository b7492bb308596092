//! The store contract: what every engine implements, and its FFI-safe form.
//!
//! Engine authors implement the plain Rust trait [`SessionStore`]. The export macro wraps it in
//! [`FfiAdapter`], which implements the ABI-stable [`FfiStore`] and catches every panic on the
//! plugin side. The host only ever sees a [`StoreBox`].

use std::{
    any::Any,
    panic::{AssertUnwindSafe, catch_unwind},
};

use abi_stable::{
    sabi_trait,
    std_types::{RBox, ROption, RResult, RStr, RString, RVec},
};

use crate::{
    Capabilities, ErrorKind, HostBox, SessionRecord, SessionWrite, StoreError, StoreResult,
    call::{CallStep, StoreCall},
};

/// The storage contract of a session engine, in plain Rust.
///
/// Every rule below is a case of the conformance suite (`sessionkit conformance <engine>`),
/// named after it. Keys reaching an engine always fit its declared
/// [`KeyFormat`](crate::KeyFormat): the host rejects the rest. The methods are synchronous; the
/// host calls them from a blocking pool when the application is async.
///
/// # Examples
///
/// A complete in-memory engine:
///
/// ```
/// use std::collections::HashMap;
/// use std::sync::Mutex;
/// use sessionkit_sdk::{SessionRecord, SessionStore, SessionWrite, StoreError, StoreResult, Timestamp};
///
/// #[derive(Default)]
/// struct Memory(Mutex<HashMap<String, SessionRecord>>);
///
/// impl SessionStore for Memory {
///     fn exists(&self, key: &str) -> StoreResult<bool> {
///         Ok(self.0.lock().unwrap().contains_key(key))
///     }
///     fn load(&self, key: &str) -> StoreResult<Option<SessionRecord>> {
///         let now = Timestamp::now();
///         Ok(self.0.lock().unwrap().get(key).filter(|r| r.expire_date > now).cloned())
///     }
///     fn create(&self, write: SessionWrite) -> StoreResult<String> {
///         let key = write.record.session_key.to_string();
///         match self.0.lock().unwrap().entry(key.clone()) {
///             std::collections::hash_map::Entry::Occupied(_) => {
///                 Err(StoreError::already_exists("key taken"))
///             }
///             std::collections::hash_map::Entry::Vacant(slot) => {
///                 slot.insert(write.record);
///                 Ok(key)
///             }
///         }
///     }
///     fn save(&self, write: SessionWrite) -> StoreResult<String> {
///         let key = write.record.session_key.to_string();
///         match self.0.lock().unwrap().get_mut(&key) {
///             Some(slot) => { *slot = write.record; Ok(key) }
///             None => Err(StoreError::not_found("session vanished")),
///         }
///     }
///     fn delete(&self, key: &str) -> StoreResult<()> {
///         self.0.lock().unwrap().remove(key);
///         Ok(())
///     }
///     fn clear_expired(&self) -> StoreResult<u64> {
///         let now = Timestamp::now();
///         let mut map = self.0.lock().unwrap();
///         let before = map.len();
///         map.retain(|_, r| r.expire_date > now);
///         Ok((before - map.len()) as u64)
///     }
/// }
/// ```
pub trait SessionStore: Send + Sync + 'static {
    /// Whether a record with `key` is stored.
    ///
    /// # Behavior
    ///
    /// - An unknown key gives `false`.
    /// - A key that `create` stored gives `true`; after `delete` it gives `false`.
    /// - Expiry may be ignored (Django's db engine counts an expired, uncleared row): `exists`
    ///   answers "is this key taken?" for key generation.
    fn exists(&self, key: &str) -> StoreResult<bool>;

    /// The live record stored under `key`, if any.
    ///
    /// # Behavior
    ///
    /// - An unknown key gives `None` and stores nothing (CVE-2015-5143).
    /// - A record whose `expire_date` is at or before now gives `None`.
    /// - A stored record comes back with the same `session_key`, `session_data` and
    ///   `expire_date` (to the microsecond where the store keeps microseconds, else the second).
    ///   A [`KeyFormat::SignedPayload`](crate::KeyFormat) engine stores no expire_date: it returns
    ///   the payload's signing time plus `SESSION_COOKIE_AGE`. A
    ///   [`DECODED_DATA`](crate::Capabilities::DECODED_DATA) engine keeps Django's unsigned dict
    ///   and a TTL: it may give back the write's `session_json` as `session_data`, and
    ///   `expire_date` to within a second.
    fn load(&self, key: &str) -> StoreResult<Option<SessionRecord>>;

    /// Stores a new record; Django's `save(must_create=True)`.
    ///
    /// # Behavior
    ///
    /// - Returns the key the record is stored under (the record's own key for server-side
    ///   engines; the signed payload for signed-payload engines).
    /// - A key already taken fails with [`ErrorKind::AlreadyExists`] and leaves the existing
    ///   record untouched; the host retries with a new key.
    /// - After it returns, `load` of the key gives the record.
    fn create(&self, write: SessionWrite) -> StoreResult<String>;

    /// Replaces an existing record; Django's `save(must_create=False)`.
    ///
    /// # Behavior
    ///
    /// - Returns the key the record is stored under.
    /// - A key that is no longer stored (deleted, or removed after expiry) fails with
    ///   [`ErrorKind::NotFound`] and stores nothing: an update never resurrects a session that
    ///   was logged out in another request.
    /// - After it returns, `load` of the key gives the new record.
    fn save(&self, write: SessionWrite) -> StoreResult<String>;

    /// Removes the record stored under `key`.
    ///
    /// # Behavior
    ///
    /// - Deleting an unknown key succeeds.
    /// - After it returns, `load` and `exists` of the key see nothing.
    fn delete(&self, key: &str) -> StoreResult<()>;

    /// Removes every expired record and returns how many it removed.
    ///
    /// # Behavior
    ///
    /// - Live records stay loadable.
    /// - Expired records are gone afterwards, and the count says how many went.
    /// - An engine that expires records by itself (no `CLEAR_EXPIRED` capability) returns 0.
    /// - It may take long (millions of rows): it should never hold a lock for long, and may
    ///   report how far it got through [`Progress::of`](crate::host::Progress::of)`("clear_expired")`.
    fn clear_expired(&self) -> StoreResult<u64>;

    /// Capabilities this opened store has beyond those its engine declares in
    /// [`EngineInfo`](crate::EngineInfo), because they depend on its settings (a cache on Redis
    /// is shared between processes; an in-process one is [`NON_BLOCKING`]).
    ///
    /// # Behavior
    ///
    /// - Answers the same for the whole life of the store.
    /// - The host's view of the store is the union of both sets; a store cannot take away a
    ///   declared capability.
    ///
    /// [`NON_BLOCKING`]: crate::Capabilities::NON_BLOCKING
    fn capabilities(&self) -> Capabilities {
        Capabilities::NONE
    }

    /// The live sessions whose `_auth_user_id` is `account_id` (the `ACCOUNT_INDEX`
    /// capability).
    ///
    /// # Behavior
    ///
    /// - Without the capability, fails with [`ErrorKind::Unsupported`].
    /// - Lists each live session saved with that account exactly once; never an expired one,
    ///   a deleted one, or one whose `_auth_user_id` was removed or changed by a later save.
    fn sessions_of_account(&self, account_id: i64) -> StoreResult<Vec<SessionRecord>> {
        let _ = account_id;
        Err(StoreError::unsupported("this engine has no account index"))
    }

    /// Deletes every session of `account_id` except the one under `keep`, and returns how many
    /// it deleted ("log out everywhere", "log out my other devices").
    ///
    /// # Behavior
    ///
    /// - Without the capability, fails with [`ErrorKind::Unsupported`].
    /// - Afterwards `sessions_of_account` lists only `keep` (if it belongs to the account).
    /// - Sessions of other accounts are untouched.
    fn delete_sessions_of_account(&self, account_id: i64, keep: Option<&str>) -> StoreResult<u64> {
        let _ = (account_id, keep);
        Err(StoreError::unsupported("this engine has no account index"))
    }

    /// Replaces an existing record only if it still holds what the caller loaded (the
    /// [`CONDITIONAL_SAVE`] capability, contract 0.2): the primitive that lets the host merge
    /// concurrent requests to one session instead of letting the last writer win.
    ///
    /// `expected_data` is the `session_data` the caller loaded; an engine compares it with
    /// what it stores now (or compares a version it keeps beside the record).
    ///
    /// # Behavior
    ///
    /// - Without the capability, fails with [`ErrorKind::Unsupported`] and stores nothing.
    /// - When the live record under the key holds `expected_data`, stores the write as `save`
    ///   does and returns [`ConditionalSave::Saved`] with the key; `load` then gives the new
    ///   record.
    /// - When the live record holds other data, stores nothing and returns
    ///   [`ConditionalSave::Conflict`] with the record as it is stored now.
    /// - A key that is no longer stored (deleted, or expired) fails with
    ///   [`ErrorKind::NotFound`] and stores nothing, as `save` does.
    /// - Of concurrent conditional saves expecting the same data, exactly one is saved; the
    ///   others see a conflict (or `NotFound`), never a lost update.
    ///
    /// [`CONDITIONAL_SAVE`]: crate::Capabilities::CONDITIONAL_SAVE
    fn save_if_unchanged(
        &self,
        write: SessionWrite,
        expected_data: &str,
    ) -> StoreResult<ConditionalSave> {
        let _ = (write, expected_data);
        Err(StoreError::unsupported(
            "this engine has no conditional save",
        ))
    }

    /// Starts `call` without blocking (the [`READINESS_CALLS`] capability, contract 0.4; see
    /// [`crate::call`]): answers it, or names the descriptor to wait on and a ticket for
    /// [`resume_call`](Self::resume_call), or gives it back to be run the blocking way.
    ///
    /// # Behavior
    ///
    /// - Never blocks: no connect, read or write that could wait, no lock held for long.
    /// - A finished call answers what the blocking method would, in the variant of the same
    ///   name; `Blocking` hands the call back unchanged and has done nothing with it.
    /// - The default (a store without the capability) gives every call back as `Blocking`.
    ///
    /// [`READINESS_CALLS`]: crate::Capabilities::READINESS_CALLS
    fn start_call(&self, call: StoreCall) -> CallStep {
        CallStep::Blocking(call)
    }

    /// Goes on with the call `ticket` names, after its descriptor became ready (or, with
    /// `timed_out`, after its timeout passed first).
    ///
    /// # Behavior
    ///
    /// - Never blocks; may answer `Wait` again (readiness can be spurious, or the reply is
    ///   still incomplete).
    /// - `timed_out` ends the call with an [`ErrorKind::Unavailable`] error and drops what it
    ///   held (its connection may hold a late reply).
    /// - An unknown ticket fails with [`ErrorKind::Other`].
    fn resume_call(&self, ticket: u64, timed_out: bool) -> CallStep {
        let _ = (ticket, timed_out);
        CallStep::done(Err(StoreError::new(
            ErrorKind::Other,
            "resume_call of a store that started no call",
        )))
    }

    /// Forgets the call `ticket` names: the host stopped waiting for it (the request went
    /// away). The store drops what the call held; an answer in flight is lost with it.
    fn cancel_call(&self, ticket: u64) {
        let _ = ticket;
    }
}

/// What a conditional save did ([`SessionStore::save_if_unchanged`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConditionalSave {
    /// The record held what the caller expected and now holds the write; the key it is
    /// stored under.
    Saved(String),
    /// Another writer changed the record first; nothing was stored. The record as it is
    /// stored now, so the caller can merge without loading it again.
    Conflict(SessionRecord),
}

impl ConditionalSave {
    fn into_ffi(self) -> RResult<RString, SessionRecord> {
        match self {
            Self::Saved(key) => RResult::ROk(key.into()),
            Self::Conflict(current) => RResult::RErr(current),
        }
    }

    /// The plain form of what [`FfiStore::save_if_unchanged`] returns across the ABI.
    pub fn from_ffi(outcome: RResult<RString, SessionRecord>) -> Self {
        match outcome {
            RResult::ROk(key) => Self::Saved(key.into_string()),
            RResult::RErr(current) => Self::Conflict(current),
        }
    }
}

/// The FFI-safe form of [`SessionStore`], as it crosses the plugin boundary.
///
/// Do not implement it by hand: [`export_engine!`](crate::export_engine) derives it from a
/// [`SessionStore`] and adds the panic guard. It only grows: new methods are appended at the
/// end (below `last_prefix_field`, which stays on the last method of contract 0.1), and the
/// 0.1 form is kept frozen in [`crate::frozen`] so a newer host still loads older engines
/// (see the SDK README's versioning rule).
#[sabi_trait]
pub trait FfiStore: Send + Sync {
    /// See [`SessionStore::exists`].
    fn exists(&self, key: RStr<'_>) -> RResult<bool, StoreError>;
    /// See [`SessionStore::load`].
    fn load(&self, key: RStr<'_>) -> RResult<ROption<SessionRecord>, StoreError>;
    /// See [`SessionStore::create`].
    fn create(&self, write: SessionWrite) -> RResult<RString, StoreError>;
    /// See [`SessionStore::save`].
    fn save(&self, write: SessionWrite) -> RResult<RString, StoreError>;
    /// See [`SessionStore::delete`].
    fn delete(&self, key: RStr<'_>) -> RResult<(), StoreError>;
    /// See [`SessionStore::clear_expired`].
    fn clear_expired(&self) -> RResult<u64, StoreError>;
    /// See [`SessionStore::capabilities`].
    fn capabilities(&self) -> Capabilities;
    /// See [`SessionStore::sessions_of_account`].
    fn sessions_of_account(&self, account_id: i64) -> RResult<RVec<SessionRecord>, StoreError>;
    /// See [`SessionStore::delete_sessions_of_account`].
    #[sabi(last_prefix_field)]
    fn delete_sessions_of_account(
        &self,
        account_id: i64,
        keep: ROption<RStr<'_>>,
    ) -> RResult<u64, StoreError>;

    // Contract 0.2 (sessionkit-sdk 0.1.1). Methods appended below `last_prefix_field` may be
    // absent from a store built against an older SDK; the host only calls them on stores whose
    // root module matched the 0.2 layout (see `crate::frozen`).

    /// See [`SessionStore::save_if_unchanged`]: `ROk(key)` when saved, `RErr(current)` on a
    /// conflict.
    fn save_if_unchanged(
        &self,
        write: SessionWrite,
        expected_data: RStr<'_>,
    ) -> RResult<RResult<RString, SessionRecord>, StoreError>;

    // Contract 0.4 (sessionkit-sdk 0.1.3): calls that do not block (see `crate::call`). A host
    // of 0.4 calls them only on stores whose library matched the 0.4 layout.

    /// See [`SessionStore::start_call`].
    fn start_call(&self, call: StoreCall) -> CallStep;
    /// See [`SessionStore::resume_call`].
    fn resume_call(&self, ticket: u64, timed_out: bool) -> CallStep;
    /// See [`SessionStore::cancel_call`].
    fn cancel_call(&self, ticket: u64);
}

/// An opened engine store as the host holds it: an owned, thread-safe FFI trait object.
pub type StoreBox = FfiStore_TO<'static, RBox<()>>;

/// Wraps a [`SessionStore`] as an [`FfiStore`], turning panics into [`ErrorKind::Panicked`].
pub struct FfiAdapter<S> {
    store: S,
    engine: &'static str,
    /// The services of the host that opened the store, for the calls that report progress.
    host: Option<HostBox>,
}

impl<S: SessionStore> FfiAdapter<S> {
    /// Wraps `store` of the engine called `engine` (the name goes into panic messages).
    pub fn new(engine: &'static str, store: S) -> Self {
        Self {
            store,
            engine,
            host: None,
        }
    }

    /// The same adapter, reporting the progress of long calls to `host` (the host that opened
    /// the store; see [`Progress`](crate::host::Progress)).
    pub fn with_host(mut self, host: HostBox) -> Self {
        self.host = Some(host);
        self
    }

    /// Boxes the adapter into the trait object the host receives.
    pub fn into_box(self) -> StoreBox {
        FfiStore_TO::from_value(self, abi_stable::sabi_trait::TD_Opaque)
    }

    fn guard<T>(
        &self,
        operation: &str,
        call: impl FnOnce(&S) -> StoreResult<T>,
    ) -> RResult<T, StoreError> {
        match catch_unwind(AssertUnwindSafe(|| call(&self.store))) {
            Ok(Ok(value)) => RResult::ROk(value),
            Ok(Err(error)) => RResult::RErr(error),
            Err(payload) => RResult::RErr(panicked(self.engine, operation, payload.as_ref())),
        }
    }
}

impl<S: SessionStore> FfiAdapter<S> {
    /// [`guard`](Self::guard) for the calls that answer a [`CallStep`]: a panic finishes the
    /// call with its error.
    fn guard_step(&self, operation: &str, call: impl FnOnce(&S) -> CallStep) -> CallStep {
        catch_unwind(AssertUnwindSafe(|| call(&self.store))).unwrap_or_else(|payload| {
            CallStep::done(Err(panicked(self.engine, operation, payload.as_ref())))
        })
    }
}

/// The error for a panic caught in `operation` of `engine`: the panic's message and, when the
/// SDK's panic hook saw it, where it happened. Nothing is printed (see [`crate::forward`]).
pub(crate) fn panicked(engine: &str, operation: &str, payload: &(dyn Any + Send)) -> StoreError {
    let reason = crate::forward::panic_message(payload);
    let place = crate::forward::take_panic_place()
        .map(|place| format!(" at {place}"))
        .unwrap_or_default();
    StoreError::new(
        ErrorKind::Panicked,
        format!("engine '{engine}' panicked in {operation}{place}: {reason}"),
    )
}

impl<S: SessionStore> FfiStore for FfiAdapter<S> {
    fn exists(&self, key: RStr<'_>) -> RResult<bool, StoreError> {
        self.guard("exists", |s| s.exists(key.as_str()))
    }

    fn load(&self, key: RStr<'_>) -> RResult<ROption<SessionRecord>, StoreError> {
        self.guard("load", |s| s.load(key.as_str()).map(ROption::from))
    }

    fn create(&self, write: SessionWrite) -> RResult<RString, StoreError> {
        self.guard("create", |s| s.create(write).map(RString::from))
    }

    fn save(&self, write: SessionWrite) -> RResult<RString, StoreError> {
        self.guard("save", |s| s.save(write).map(RString::from))
    }

    fn delete(&self, key: RStr<'_>) -> RResult<(), StoreError> {
        self.guard("delete", |s| s.delete(key.as_str()))
    }

    fn clear_expired(&self) -> RResult<u64, StoreError> {
        crate::host::with_caller(self.host.as_ref(), || {
            self.guard("clear_expired", |s| s.clear_expired())
        })
    }

    fn capabilities(&self) -> Capabilities {
        // A panic here has no error to carry: report no extra capability.
        catch_unwind(AssertUnwindSafe(|| self.store.capabilities())).unwrap_or(Capabilities::NONE)
    }

    fn sessions_of_account(&self, account_id: i64) -> RResult<RVec<SessionRecord>, StoreError> {
        self.guard("sessions_of_account", |s| {
            s.sessions_of_account(account_id).map(RVec::from)
        })
    }

    fn delete_sessions_of_account(
        &self,
        account_id: i64,
        keep: ROption<RStr<'_>>,
    ) -> RResult<u64, StoreError> {
        self.guard("delete_sessions_of_account", |s| {
            s.delete_sessions_of_account(account_id, keep.into_option().map(|k| k.as_str()))
        })
    }

    fn save_if_unchanged(
        &self,
        write: SessionWrite,
        expected_data: RStr<'_>,
    ) -> RResult<RResult<RString, SessionRecord>, StoreError> {
        self.guard("save_if_unchanged", |s| {
            s.save_if_unchanged(write, expected_data.as_str())
                .map(ConditionalSave::into_ffi)
        })
    }

    fn start_call(&self, call: StoreCall) -> CallStep {
        let operation = call.name();
        self.guard_step(operation, |s| s.start_call(call))
    }

    fn resume_call(&self, ticket: u64, timed_out: bool) -> CallStep {
        self.guard_step("resume_call", |s| s.resume_call(ticket, timed_out))
    }

    fn cancel_call(&self, ticket: u64) {
        // A panic here has no one to tell: the call is forgotten either way.
        let _ = catch_unwind(AssertUnwindSafe(|| self.store.cancel_call(ticket)));
    }
}
