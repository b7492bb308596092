//! Calls that do not block (contract 0.4): a store call as data, started now and finished when
//! the store's socket is ready, so an async host waits for the network on its own event loop
//! instead of parking a thread of a blocking pool for every call.
//!
//! The protocol, for a store with [`Capabilities::READINESS_CALLS`](crate::Capabilities):
//!
//! 1. The host calls [`SessionStore::start_call`](crate::SessionStore::start_call) with a
//!    [`StoreCall`]. The store sends what it can without blocking and answers a [`CallStep`]:
//!    - [`CallStep::Done`]: finished (answer or error);
//!    - [`CallStep::Wait`]: call [`resume_call`](crate::SessionStore::resume_call) with the
//!      ticket once the descriptor is ready for the interest, or with `timed_out` when the
//!      timeout passed first;
//!    - [`CallStep::Blocking`]: the store cannot run this call without blocking right now (no
//!      idle connection, a topology it does not drive this way): the host runs it through the
//!      blocking method on a thread that may block, as for a store without the capability.
//! 2. Readiness may be spurious: `resume_call` may answer `Wait` again.
//! 3. For each `Wait` the host calls `resume_call` or
//!    [`cancel_call`](crate::SessionStore::cancel_call) exactly once (cancel: the request went
//!    away; the store drops what it held for the call). The descriptor stays open until then.
//!
//! The descriptor is the store's: the host only waits on it, never reads, writes or closes it.

use abi_stable::{
    StableAbi,
    std_types::{ROption, RResult, RString},
};

use crate::{ConditionalSave, SessionRecord, SessionWrite, StoreError, StoreResult};

/// One call of the store contract, as data: what [`CallStep::Blocking`] gives back and the
/// host then runs through the matching blocking method.
#[repr(u8)]
#[derive(StableAbi, Debug, Clone, PartialEq, Eq)]
pub enum StoreCall {
    /// [`SessionStore::exists`](crate::SessionStore::exists) of the key.
    Exists(RString),
    /// [`SessionStore::load`](crate::SessionStore::load) of the key.
    Load(RString),
    /// [`SessionStore::create`](crate::SessionStore::create).
    Create(SessionWrite),
    /// [`SessionStore::save`](crate::SessionStore::save).
    Save(SessionWrite),
    /// [`SessionStore::delete`](crate::SessionStore::delete) of the key.
    Delete(RString),
    /// [`SessionStore::save_if_unchanged`](crate::SessionStore::save_if_unchanged).
    SaveIfUnchanged {
        /// The record to store.
        write: SessionWrite,
        /// The `session_data` the caller loaded.
        expected_data: RString,
    },
}

impl StoreCall {
    /// The contract's name of the call (`load`, `save_if_unchanged`, ...), for errors and logs.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Exists(_) => "exists",
            Self::Load(_) => "load",
            Self::Create(_) => "create",
            Self::Save(_) => "save",
            Self::Delete(_) => "delete",
            Self::SaveIfUnchanged { .. } => "save_if_unchanged",
        }
    }
}

/// What a finished call answers: the variant named like the [`StoreCall`], holding what the
/// blocking method returns.
#[repr(u8)]
#[derive(StableAbi, Debug, Clone, PartialEq, Eq)]
pub enum CallAnswer {
    /// Whether the key is stored.
    Exists(bool),
    /// The live record, if any.
    Load(ROption<SessionRecord>),
    /// The key the new record is stored under.
    Create(RString),
    /// The key the record is stored under.
    Save(RString),
    /// The record is gone.
    Delete,
    /// `ROk(key)` when saved, `RErr(current)` on a conflict (see [`ConditionalSave`]).
    SaveIfUnchanged(RResult<RString, SessionRecord>),
}

impl CallAnswer {
    /// The answer to a conditional save, in its plain form.
    pub fn conditional(outcome: ConditionalSave) -> Self {
        Self::SaveIfUnchanged(match outcome {
            ConditionalSave::Saved(key) => RResult::ROk(key.into()),
            ConditionalSave::Conflict(current) => RResult::RErr(current),
        })
    }
}

/// What readiness of a descriptor a [`CallWait`] waits for.
#[repr(u8)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Interest {
    /// Data (or end of stream, or an error) to read: a reply.
    Readable,
    /// Room to write: a connect that finished, or a send buffer with space again.
    Writable,
}

/// Where a started call waits: the store's descriptor, what to wait for, for how long, and the
/// ticket to resume (or cancel) it with.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallWait {
    /// The store's socket (a Unix file descriptor), open until the ticket is resumed or
    /// cancelled.
    pub fd: i32,
    /// What to wait for.
    pub interest: Interest,
    /// How long to wait at most, in milliseconds, before resuming with `timed_out` (the
    /// store's own command timeout); 0 waits without limit.
    pub timeout_ms: u64,
    /// The store's name for the call, unique among its calls in flight.
    pub ticket: u64,
}

/// Where a started call stands (see the [module](self) documentation).
#[repr(u8)]
#[derive(StableAbi, Debug, Clone, PartialEq, Eq)]
pub enum CallStep {
    /// Finished.
    Done(RResult<CallAnswer, StoreError>),
    /// Waiting for the store's descriptor.
    Wait(CallWait),
    /// Not runnable without blocking now: run it through the blocking method.
    Blocking(StoreCall),
}

impl CallStep {
    /// A finished call from the plain result.
    pub fn done(result: StoreResult<CallAnswer>) -> Self {
        Self::Done(result.into())
    }
}
