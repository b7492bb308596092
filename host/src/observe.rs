//! What every engine call reports: a `metrics` counter and latency histogram per operation and a
//! `tracing` span, so the numbers are visible in production without forcing an exporter on the
//! library (the application installs whichever `metrics` recorder it uses).
//!
//! | metric | kind | labels |
//! | --- | --- | --- |
//! | `sessionkit_engine_operations_total` | counter | `engine`, `operation`, `outcome` (`ok` or the error kind) |
//! | `sessionkit_engine_operation_seconds` | histogram | `engine`, `operation` |
//!
//! The handles of the successful path are registered once, when the engine is opened: install
//! the recorder before opening engines (as for any library that registers its metrics up front).
//! Failures register their counter when they happen (they are rare, and their kind is a label).
//! Spans are `debug` level (`engine_call`, with `engine` and `operation`), so a service logging
//! at `info` pays only the check that they are off.

use std::{sync::Arc, time::Instant};

use metrics::{Counter, Histogram};
use sessionkit_sdk::{ErrorKind, StoreResult};
use tracing::Instrument;

/// Counter of engine calls by engine, operation and outcome.
pub const OPERATIONS_TOTAL: &str = "sessionkit_engine_operations_total";
/// Histogram of engine call latency in seconds by engine and operation.
pub const OPERATION_SECONDS: &str = "sessionkit_engine_operation_seconds";

/// The engine operations that are counted and timed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Operation {
    /// `exists`.
    Exists,
    /// `load`.
    Load,
    /// `create`.
    Create,
    /// `save`.
    Save,
    /// `save_if_unchanged`.
    SaveIfUnchanged,
    /// `delete`.
    Delete,
    /// `clear_expired`.
    ClearExpired,
    /// `sessions_of_account`.
    SessionsOfAccount,
    /// `delete_sessions_of_account`.
    DeleteSessionsOfAccount,
}

impl Operation {
    const ALL: [Self; 9] = [
        Self::Exists,
        Self::Load,
        Self::Create,
        Self::Save,
        Self::SaveIfUnchanged,
        Self::Delete,
        Self::ClearExpired,
        Self::SessionsOfAccount,
        Self::DeleteSessionsOfAccount,
    ];

    /// The contract's name of the operation (the `operation` label).
    pub(crate) const fn name(self) -> &'static str {
        match self {
            Self::Exists => "exists",
            Self::Load => "load",
            Self::Create => "create",
            Self::Save => "save",
            Self::SaveIfUnchanged => "save_if_unchanged",
            Self::Delete => "delete",
            Self::ClearExpired => "clear_expired",
            Self::SessionsOfAccount => "sessions_of_account",
            Self::DeleteSessionsOfAccount => "delete_sessions_of_account",
        }
    }
}

/// The handles of one operation's successful path.
struct Handles {
    ok: Counter,
    seconds: Histogram,
}

/// The metrics and spans of one opened engine.
pub(crate) struct Observer {
    engine: Arc<str>,
    handles: Vec<Handles>,
}

impl Observer {
    /// Registers the handles of every operation of `engine` with the installed recorder.
    pub(crate) fn new(engine: &str) -> Self {
        let engine: Arc<str> = Arc::from(engine);
        let handles = Operation::ALL
            .iter()
            .map(|operation| Handles {
                ok: metrics::counter!(
                    OPERATIONS_TOTAL,
                    "engine" => engine.to_string(),
                    "operation" => operation.name(),
                    "outcome" => "ok"
                ),
                seconds: metrics::histogram!(
                    OPERATION_SECONDS,
                    "engine" => engine.to_string(),
                    "operation" => operation.name()
                ),
            })
            .collect();
        Self { engine, handles }
    }

    /// Runs `call` (one engine call) inside its span, then counts and times it.
    pub(crate) fn observe<T>(
        &self,
        operation: Operation,
        call: impl FnOnce() -> StoreResult<T>,
    ) -> StoreResult<T> {
        let span = self.span(operation);
        let _entered = span.enter();
        let started = Instant::now();
        let result = call();
        self.record(operation, started, &result);
        result
    }

    /// [`observe`](Self::observe) for a call awaited on the event loop: the span is entered
    /// at each poll, and the time counts from the start to the answer.
    pub(crate) async fn observe_async<T>(
        &self,
        operation: Operation,
        call: impl Future<Output = StoreResult<T>>,
    ) -> StoreResult<T> {
        let started = Instant::now();
        let result = call.instrument(self.span(operation)).await;
        self.record(operation, started, &result);
        result
    }

    fn span(&self, operation: Operation) -> tracing::Span {
        tracing::debug_span!(
            "engine_call",
            engine = &*self.engine,
            operation = operation.name()
        )
    }

    fn record<T>(&self, operation: Operation, started: Instant, result: &StoreResult<T>) {
        let handles = &self.handles[operation as usize];
        handles.seconds.record(started.elapsed().as_secs_f64());
        match result {
            Ok(_) => handles.ok.increment(1),
            Err(error) => metrics::counter!(
                OPERATIONS_TOTAL,
                "engine" => self.engine.to_string(),
                "operation" => operation.name(),
                "outcome" => outcome(error.kind)
            )
            .increment(1),
        }
    }
}

/// The `outcome` label of a failure: the error kind in snake case.
fn outcome(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::AlreadyExists => "already_exists",
        ErrorKind::NotFound => "not_found",
        ErrorKind::Unavailable => "unavailable",
        ErrorKind::Corrupted => "corrupted",
        ErrorKind::Config => "config",
        ErrorKind::Unsupported => "unsupported",
        ErrorKind::Panicked => "panicked",
        ErrorKind::Other => "other",
    }
}
