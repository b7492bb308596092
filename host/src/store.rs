//! [`Store`]: the storage contract of one opened engine, guarded.
//!
//! Every call into the plugin's store object goes through this file: keys are checked against
//! the engine's [`KeyFormat`] before a call, the key an engine returns is checked after it,
//! capabilities gate the optional methods, and every error leaves with the engine's name, the
//! operation and a key prefix.

use std::{fmt, sync::Arc};

use sessionkit_codec::key::is_valid_session_key;
use sessionkit_sdk::{
    CallAnswer, CallStep, Capabilities, ConditionalSave, KeyFormat, SessionRecord, SessionStore,
    SessionWrite, StoreCall, StoreError, StoreResult,
};

use crate::{
    Error,
    blocking::{Run, drive, inline, reactor_available, run_call_blocking},
    observe::{Observer, Operation},
    plugin::{Contract, PluginStore},
};

/// The longest signed payload (cookie value) a [`KeyFormat::SignedPayload`] engine may use as a
/// key: browsers drop cookies over 4096 bytes.
pub const MAX_SIGNED_PAYLOAD: usize = 4096;

/// The storage contract of one opened engine, with host types in and out: every key is checked
/// against the engine's [`KeyFormat`] before any call, and every error carries the engine's
/// name, the operation and a key prefix.
///
/// Reads with a key outside the format answer as for an unknown key (`Ok(None)`,
/// `Ok(false)`, `Ok(())`) without calling the engine; writes with one fail with
/// [`Error::InvalidKey`].
pub struct Store {
    engine: String,
    key_format: KeyFormat,
    capabilities: Capabilities,
    inner: Arc<PluginStore>,
    observer: Observer,
}

impl Store {
    /// Guards `inner`, the store `engine` opened, whose keys have `key_format` and which the
    /// engine declared `declared` capabilities for.
    pub(crate) fn new(
        engine: String,
        key_format: KeyFormat,
        declared: Capabilities,
        inner: PluginStore,
    ) -> Self {
        // What the opened store adds to what its engine declared (e.g. `non_blocking` for an
        // in-process cache): the host's view is the union.
        let capabilities = declared | inner.capabilities();
        Self {
            observer: Observer::new(&engine),
            engine,
            key_format,
            capabilities,
            inner: Arc::new(inner),
        }
    }

    /// What the engine can do: what it declared, with what the opened store adds.
    pub fn capabilities(&self) -> Capabilities {
        self.capabilities
    }

    /// The contract revision the store's engine was built against.
    pub fn contract(&self) -> Contract {
        self.inner.contract()
    }

    /// The engine's short name.
    pub fn engine_name(&self) -> &str {
        &self.engine
    }

    /// Which keys the engine accepts.
    pub fn key_format(&self) -> KeyFormat {
        self.key_format
    }

    /// Whether `key` fits the engine's key format: Django's 8 to 40 characters of `[a-z0-9]`,
    /// or for signed payloads 1 to 4096 bytes of `[A-Za-z0-9-_.:]`.
    pub fn is_valid_key(&self, key: &str) -> bool {
        is_valid_key(self.key_format, key)
    }

    /// Whether a record is stored under `key` (Django's `exists`).
    ///
    /// # Errors
    ///
    /// [`Error::Engine`] with the engine's failure.
    pub fn exists(&self, key: &str) -> Result<bool, Error> {
        inline(self.exists_in(Run::Inline, key))
    }

    /// [`Store::exists`], run where `run` says.
    pub(crate) async fn exists_in(&self, run: Run, key: &str) -> Result<bool, Error> {
        if !self.is_valid_key(key) {
            return Ok(false);
        }
        self.call(
            run,
            Operation::Exists,
            key,
            |store, key| store.exists(key),
            |key| StoreCall::Exists(key.into()),
            |answer| match answer {
                CallAnswer::Exists(found) => Some(found),
                _ => None,
            },
        )
        .await
        .map_err(|e| self.error("exists", Some(key), e))
    }

    /// The live record under `key`, if any.
    ///
    /// # Errors
    ///
    /// [`Error::Engine`] with the engine's failure.
    pub fn load(&self, key: &str) -> Result<Option<SessionRecord>, Error> {
        if !self.is_valid_key(key) {
            return Ok(None);
        }
        inline(self.load_valid_key_in(Run::Inline, key))
    }

    /// [`Store::load`] of a key already known to fit the key format, run where `run` says.
    pub(crate) async fn load_valid_key_in(
        &self,
        run: Run,
        key: &str,
    ) -> Result<Option<SessionRecord>, Error> {
        self.call(
            run,
            Operation::Load,
            key,
            |store, key| store.load(key),
            |key| StoreCall::Load(key.into()),
            |answer| match answer {
                CallAnswer::Load(record) => Some(record.into_option()),
                _ => None,
            },
        )
        .await
        .map_err(|e| self.error("load", Some(key), e))
    }

    /// Stores a new record (`save(must_create=True)`); returns the key it is stored under.
    ///
    /// # Errors
    ///
    /// [`Error::Engine`] of kind `AlreadyExists` when the key is taken; [`Error::InvalidKey`]
    /// for a key outside the format (signed-payload engines take any key here: theirs is
    /// minted by the engine).
    pub fn create(&self, write: SessionWrite) -> Result<String, Error> {
        inline(self.create_in(Run::Inline, write))
    }

    /// [`Store::create`], run where `run` says.
    pub(crate) async fn create_in(&self, run: Run, write: SessionWrite) -> Result<String, Error> {
        self.write(run, Operation::Create, write).await
    }

    /// Replaces an existing record (`save(must_create=False)`); returns the key it is stored
    /// under.
    ///
    /// # Errors
    ///
    /// [`Error::Engine`] of kind `NotFound` when the record is gone; [`Error::InvalidKey`] as
    /// for [`Store::create`].
    pub fn save(&self, write: SessionWrite) -> Result<String, Error> {
        inline(self.save_in(Run::Inline, write))
    }

    /// [`Store::save`], run where `run` says.
    pub(crate) async fn save_in(&self, run: Run, write: SessionWrite) -> Result<String, Error> {
        self.write(run, Operation::Save, write).await
    }

    /// Replaces the record under the write's key only if it still holds `expected_data` (what
    /// the caller loaded); [`ConditionalSave::Conflict`] with the record stored now otherwise.
    ///
    /// # Errors
    ///
    /// [`Error::Unsupported`] without the `CONDITIONAL_SAVE` capability (the engine is not
    /// called); [`Error::Engine`] of kind `NotFound` when the record is gone;
    /// [`Error::InvalidKey`] for a key outside the format.
    pub fn save_if_unchanged(
        &self,
        write: SessionWrite,
        expected_data: &str,
    ) -> Result<ConditionalSave, Error> {
        inline(self.save_if_unchanged_in(Run::Inline, write, expected_data))
    }

    /// [`Store::save_if_unchanged`], run where `run` says.
    pub(crate) async fn save_if_unchanged_in(
        &self,
        run: Run,
        write: SessionWrite,
        expected_data: &str,
    ) -> Result<ConditionalSave, Error> {
        const OPERATION: &str = "save_if_unchanged";
        self.require(Capabilities::CONDITIONAL_SAVE, OPERATION)?;
        let key = write.record.session_key.to_string();
        if !self.is_valid_key(&key) {
            return Err(Error::InvalidKey {
                engine: self.engine.clone(),
                operation: OPERATION,
            });
        }
        let outcome = self
            .call(
                run,
                Operation::SaveIfUnchanged,
                write,
                |store, write| store.save_if_unchanged(write, expected_data),
                |write| StoreCall::SaveIfUnchanged {
                    write,
                    expected_data: expected_data.into(),
                },
                |answer| match answer {
                    CallAnswer::SaveIfUnchanged(outcome) => {
                        Some(ConditionalSave::from_ffi(outcome))
                    }
                    _ => None,
                },
            )
            .await
            .map_err(|e| self.error(OPERATION, Some(&key), e))?;
        if let ConditionalSave::Saved(stored) = &outcome
            && *stored != key
        {
            return Err(self.error(
                OPERATION,
                Some(&key),
                StoreError::other("the engine saved under another key"),
            ));
        }
        Ok(outcome)
    }

    /// Removes the record under `key`; unknown keys succeed.
    ///
    /// # Errors
    ///
    /// [`Error::Engine`] with the engine's failure.
    pub fn delete(&self, key: &str) -> Result<(), Error> {
        inline(self.delete_in(Run::Inline, key))
    }

    /// [`Store::delete`], run where `run` says.
    pub(crate) async fn delete_in(&self, run: Run, key: &str) -> Result<(), Error> {
        if !self.is_valid_key(key) {
            return Ok(());
        }
        self.call(
            run,
            Operation::Delete,
            key,
            |store, key| store.delete(key),
            |key| StoreCall::Delete(key.into()),
            |answer| match answer {
                CallAnswer::Delete => Some(()),
                _ => None,
            },
        )
        .await
        .map_err(|e| self.error("delete", Some(key), e))
    }

    /// Runs one contract call as an async session runs it: started and awaited on tokio's
    /// reactor for a store with `READINESS_CALLS` (contract 0.4), else through the blocking
    /// method on tokio's blocking pool. Keys are not checked: this is the raw contract, for the
    /// conformance suite and tools.
    ///
    /// # Errors
    ///
    /// [`Error::Engine`] with the engine's failure; [`Error::Join`] when the blocking pool
    /// lost the call.
    pub async fn run_call(&self, call: StoreCall) -> Result<CallAnswer, Error> {
        let operation = call.name();
        let answered = if self.awaits_readiness() && reactor_available() {
            drive(&self.inner, call).await
        } else {
            run_call_blocking(&self.inner, call).await?
        };
        answered.map_err(|e| self.error(operation, None, e))
    }

    /// The store's raw `start_call` (contract 0.4), for the conformance suite: a `Wait`
    /// must be resumed or cancelled through this store.
    pub fn start_call(&self, call: StoreCall) -> CallStep {
        self.inner.start_call(call)
    }

    /// The store's raw `resume_call` (contract 0.4).
    pub fn resume_call(&self, ticket: u64, timed_out: bool) -> CallStep {
        self.inner.resume_call(ticket, timed_out)
    }

    /// The store's raw `cancel_call` (contract 0.4).
    pub fn cancel_call(&self, ticket: u64) {
        self.inner.cancel_call(ticket);
    }

    /// Removes every expired record; returns how many went.
    ///
    /// # Errors
    ///
    /// [`Error::Engine`] with the engine's failure.
    pub fn clear_expired(&self) -> Result<u64, Error> {
        self.observer
            .observe(Operation::ClearExpired, || self.inner.clear_expired())
            .map_err(|e| self.error("clear_expired", None, e))
    }

    /// The live sessions of `account_id`.
    ///
    /// # Errors
    ///
    /// [`Error::Unsupported`] without the `ACCOUNT_INDEX` capability (the engine is not
    /// called); [`Error::Engine`] otherwise.
    pub fn sessions_of_account(&self, account_id: i64) -> Result<Vec<SessionRecord>, Error> {
        self.require(Capabilities::ACCOUNT_INDEX, "sessions_of_account")?;
        self.observer
            .observe(Operation::SessionsOfAccount, || {
                self.inner.sessions_of_account(account_id)
            })
            .map_err(|e| self.error("list sessions of account", None, e))
    }

    /// Deletes every session of `account_id` except `keep`; returns how many went. A `keep`
    /// outside the key format cannot be a session of the account and is ignored.
    ///
    /// # Errors
    ///
    /// As [`Store::sessions_of_account`].
    pub fn delete_sessions_of_account(
        &self,
        account_id: i64,
        keep: Option<&str>,
    ) -> Result<u64, Error> {
        self.require(Capabilities::ACCOUNT_INDEX, "delete_sessions_of_account")?;
        let keep = keep.filter(|key| self.is_valid_key(key));
        self.observer
            .observe(Operation::DeleteSessionsOfAccount, || {
                self.inner.delete_sessions_of_account(account_id, keep)
            })
            .map_err(|e| self.error("delete sessions of account", keep, e))
    }

    /// Whether an async caller awaits this store's calls on the event loop (contract 0.4's
    /// `READINESS_CALLS`) instead of running them on the blocking pool.
    pub(crate) fn awaits_readiness(&self) -> bool {
        self.capabilities.contains(Capabilities::READINESS_CALLS)
    }

    /// One engine call with `argument`, observed: in place with `blocking` ([`Run::Inline`]),
    /// or started as the call `ready` makes and awaited on the event loop ([`Run::Offload`], a
    /// store that [awaits readiness](Self::awaits_readiness)), its answer unpacked by `answer`.
    async fn call<A, T>(
        &self,
        run: Run,
        operation: Operation,
        argument: A,
        blocking: impl FnOnce(&PluginStore, A) -> StoreResult<T>,
        ready: impl FnOnce(A) -> StoreCall,
        answer: impl FnOnce(CallAnswer) -> Option<T>,
    ) -> StoreResult<T> {
        if run == Run::Inline || !self.awaits_readiness() {
            return self
                .observer
                .observe(operation, || blocking(&self.inner, argument));
        }
        let call = ready(argument);
        // Boxed: the wait (reactor registration, timer) is large, and in place it would grow
        // every operation's future, the inline ones too, which then cost more to move.
        Box::pin(self.observer.observe_async(operation, async {
            let answered = drive(&self.inner, call).await?;
            answer(answered).ok_or_else(|| {
                StoreError::other(format!(
                    "the engine answered {} with the answer to another call",
                    operation.name()
                ))
            })
        }))
        .await
    }

    async fn write(
        &self,
        run: Run,
        observed: Operation,
        write: SessionWrite,
    ) -> Result<String, Error> {
        let operation = observed.name();
        let key = write.record.session_key.to_string();
        if self.key_format == KeyFormat::DjangoSessionKey && !self.is_valid_key(&key) {
            return Err(Error::InvalidKey {
                engine: self.engine.clone(),
                operation,
            });
        }
        let key_context = (!key.is_empty()).then_some(key.as_str());
        let creates = observed == Operation::Create;
        let stored = self
            .call(
                run,
                observed,
                write,
                |store, write| {
                    if creates {
                        store.create(write)
                    } else {
                        store.save(write)
                    }
                },
                |write| {
                    if creates {
                        StoreCall::Create(write)
                    } else {
                        StoreCall::Save(write)
                    }
                },
                |answer| match answer {
                    CallAnswer::Create(stored) if creates => Some(stored.into_string()),
                    CallAnswer::Save(stored) if !creates => Some(stored.into_string()),
                    _ => None,
                },
            )
            .await
            .map_err(|e| self.error(operation, key_context, e))?;
        if self.key_format == KeyFormat::DjangoSessionKey && stored == key {
            return Ok(key);
        }
        if !self.is_valid_key(&stored) {
            return Err(self.error(
                operation,
                key_context,
                StoreError::other("the engine returned a key outside its key format"),
            ));
        }
        Ok(stored)
    }

    fn require(&self, capability: Capabilities, operation: &'static str) -> Result<(), Error> {
        if self.capabilities.contains(capability) {
            Ok(())
        } else {
            Err(Error::Unsupported {
                engine: self.engine.clone(),
                operation,
            })
        }
    }

    fn error(&self, operation: &'static str, key: Option<&str>, source: StoreError) -> Error {
        Error::engine(&self.engine, operation, key, source)
    }
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("engine", &self.engine)
            .field("key_format", &self.key_format)
            .field("capabilities", &self.capabilities)
            .finish_non_exhaustive()
    }
}

/// Whether `key` fits `format` (see [`Store::is_valid_key`]).
pub fn is_valid_key(format: KeyFormat, key: &str) -> bool {
    match format {
        KeyFormat::DjangoSessionKey => is_valid_session_key(key),
        KeyFormat::SignedPayload => {
            (1..=MAX_SIGNED_PAYLOAD).contains(&key.len())
                && key
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn django_keys_are_8_to_40_lowercase_alphanumerics() {
        let format = KeyFormat::DjangoSessionKey;
        assert!(is_valid_key(format, "abcdefgh"));
        assert!(is_valid_key(format, &"a1".repeat(16)));
        assert!(is_valid_key(format, &"z".repeat(40)));
        for bad in [
            "",
            "abcdefg",
            &"a".repeat(41),
            "ABCDEFGHIJ",
            "abcdefgh\0",
            "../../etc/passwd",
            "abcd/efgh",
            "abcd efgh",
            "abcdefgh\n",
            "abcdéfghij",
            "abcd;efgh",
        ] {
            assert!(!is_valid_key(format, bad), "{bad:?} accepted");
        }
    }

    #[test]
    fn signed_payload_keys_are_cookie_safe_ascii_up_to_4096_bytes() {
        let format = KeyFormat::SignedPayload;
        assert!(is_valid_key(format, "e30:1uQ2nF:abcDEF-_"));
        assert!(is_valid_key(
            format,
            ".eJxTKkktLlGyUlAqS8wpTVUCADHLBTk:1uQ2nF:x"
        ));
        assert!(is_valid_key(format, &"a".repeat(4096)));
        for bad in [
            "",
            &"a".repeat(4097),
            "a b",
            "a;b",
            "a\0b",
            "a/b",
            "a=b",
            "a\"b",
            "é",
        ] {
            assert!(!is_valid_key(format, bad), "{bad:?} accepted");
        }
    }
}
