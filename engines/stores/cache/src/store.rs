//! [`CacheStore`]: Django's cache session backend rules over any [`CacheBackend`].

use std::{borrow::Cow, collections::HashMap, io::Write as _, sync::Arc, time::Duration};

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use sessionkit_sdk::{
    CallAnswer, CallStep, CallWait, Capabilities, ConditionalSave, Interest, SessionRecord,
    SessionStore, SessionWrite, StoreCall, StoreError, StoreResult, Timestamp,
    abi_stable::std_types::{RNone, RResult, RString},
};

use crate::{
    backend::{
        CacheBackend, CacheError, CacheOp, CacheReply, CacheStep, CacheWait, CompareAndSet,
        ValueWithTtl,
    },
    clock::Clock,
    key::KeyFunction,
    pickle,
};

/// The `tracing` target of entries the store refuses to read (a hostile or foreign pickle).
pub const LOG_TARGET: &str = "sessionkit::cache";

/// The expire date given to a Django entry stored without a TTL (Django's `timeout=None`): a
/// century on, since the cache keeps it until evicted.
const NO_TTL: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// How many times a conditional save re-reads an entry that changed between its read and its
/// compare-and-set while still holding the expected session (a concurrent identical write).
const CAS_ATTEMPTS: usize = 8;

/// The key prefix of Django's `cache` session backend (`django.contrib.sessions.backends.cache`).
pub const CACHE_SESSION_PREFIX: &str = "django.contrib.sessions.cache";
/// The key prefix of Django's `cached_db` session backend.
pub const CACHED_DB_SESSION_PREFIX: &str = "django.contrib.sessions.cached_db";

/// A session store in a cache, with Django's cache-backend rules.
///
/// - A session is stored under `{KEY_PREFIX}:{VERSION}:{session prefix}{session key}` (the
///   session prefix keeps sessions apart from other cache users: CVE-2011-4136).
/// - The value is the whole [`SessionRecord`] (key, data, expire date) as JSON, with a TTL of
///   the time left until its `expire_date`; a record already expired is not stored, and a save
///   of one removes the entry.
/// - `create` is an add-if-absent, `save` a set-if-present: a save never brings back a session
///   deleted or expired meanwhile.
/// - `save_if_unchanged` is the backend's atomic compare-and-set
///   ([`CacheBackend::replace_if_prefixed`]) with the encoded record up to and including its
///   `session_data` as the prefix, so the comparison is on `session_data` and the stored value
///   keeps its format. Like `save`, it judges "live" by the backend's TTL, which ends at the
///   record's `expire_date` (rounded up to the backend's resolution).
/// - `load` never returns an expired record, whatever the backend's TTL rounding.
/// - `clear_expired` has nothing to do: the cache expires entries by itself.
///
/// `cached_db` reuses it with [`CACHED_DB_SESSION_PREFIX`] and [`CacheStore::put`].
///
/// # Calls that do not block
///
/// Every call is a plan of backend operations ([`CacheOp`]) and one interpreter of their
/// replies, run by the blocking methods on their thread and by `start_call`/`resume_call`
/// through [`CacheBackend::start`]/[`resume`](CacheBackend::resume) on a backend that offers
/// them ([`CacheBackend::readiness_calls`]: one Redis server), so both ways answer the same.
/// `exists`, `load`, `create`, `save`, `delete` are one operation; `save_if_unchanged` one in
/// the common case, more when the entry holds the session in other bytes. An operation the
/// backend hands back (`Blocking`: no idle connection) hands the whole call back; every step
/// before a call's last only reads, so running it again the blocking way is the same call.
///
/// # Django's values on shared backends
///
/// On a backend Django shares ([`CacheBackend::stores_django_values`]: Redis, memcached) the
/// value is what Django's cache session backends store instead: the session dict pickled
/// ([`pickle::dumps_dict`] of `SessionWrite::session_json`), with the TTL as above, so Django
/// and sessionkit read, write and delete each other's sessions under the same keys.
///
/// - `load` reads the pickle safely ([`pickle::loads_dict`]) and hands back the dict as compact
///   JSON in `session_data` (the store declares `DECODED_DATA`), with `expire_date` = now + the
///   entry's remaining TTL. An entry that is not a safe pickle of a dict (a hostile or foreign
///   value) loads as no session, with a warning on [`LOG_TARGET`]; never an error.
/// - An entry still in the JSON record format (written before this format) loads as before,
///   and is replaced by a pickle on its next save.
/// - `save_if_unchanged` first compare-and-sets on the pickle of `expected_data` (one round
///   trip when the entry holds it in our bytes); otherwise it reads the entry, compares its dict
///   with `expected_data` (parsed, so the comparison is on values, not bytes) and then
///   compare-and-sets on the entry's exact bytes.
pub struct CacheStore<B> {
    backend: B,
    session_prefix: String,
    /// `make_key(session_prefix)`: every physical key is this followed by the session key
    /// (computed once; Django's key function only prepends).
    key_start: String,
    clock: Arc<dyn Clock>,
    /// The backend stores Django's values (pickled dicts), not JSON records.
    django: bool,
    /// Calls started without blocking that wait on the backend, by the backend's ticket.
    in_flight: Mutex<HashMap<u64, Plan>>,
}

/// A live entry as read: its record, and its dict when it is a Django pickle.
struct Found {
    record: SessionRecord,
    dict: Option<serde_json::Map<String, serde_json::Value>>,
}

impl<B: CacheBackend> CacheStore<B> {
    /// A store over `backend`, laying keys out with `key_function` and `session_prefix`
    /// ([`CACHE_SESSION_PREFIX`] for the `cache` engine), judging expiry by `clock` (the
    /// system clock in production; tests move time with a `ManualClock`).
    pub fn new(
        backend: B,
        key_function: KeyFunction,
        session_prefix: impl Into<String>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let django = backend.stores_django_values();
        let session_prefix = session_prefix.into();
        Self {
            backend,
            key_start: key_function.make_key(&session_prefix),
            session_prefix,
            clock,
            django,
            in_flight: Mutex::new(HashMap::new()),
        }
    }

    /// Whether this store keeps Django's pickled dicts (see [`CacheStore`]).
    pub fn stores_django_values(&self) -> bool {
        self.django
    }

    /// The physical cache key of `session_key`, as Django's cache framework writes it.
    pub fn cache_key(&self, session_key: &str) -> String {
        let mut key = String::with_capacity(self.key_start.len() + session_key.len());
        key.push_str(&self.key_start);
        key.push_str(session_key);
        key
    }

    /// The backend, for callers that need its own operations (clearing a LocMem cache).
    pub fn backend(&self) -> &B {
        &self.backend
    }

    /// The session prefix keys are stored under.
    pub fn session_prefix(&self) -> &str {
        &self.session_prefix
    }

    /// Stores `write` whether or not its key is cached: `cached_db`'s write-through after a
    /// database save and its fill after a cache miss (Django's `cache.set`).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Unavailable`](sessionkit_sdk::ErrorKind) or `Other` when the backend fails;
    /// `Other` for a `session_json` that is not a JSON object on a backend storing Django's
    /// values.
    pub fn put(&self, write: &SessionWrite) -> StoreResult<()> {
        let record = &write.record;
        let key = self.cache_key(record.session_key.as_str());
        self.backend
            .set(&key, &self.value_of(write)?, self.ttl(record.expire_date))
            .map_err(|error| map_error("set", error))
    }

    /// The value stored for `write`: the JSON record, or on a backend storing Django's values
    /// the pickled session dict.
    fn value_of(&self, write: &SessionWrite) -> StoreResult<Vec<u8>> {
        if !self.django {
            return Ok(encode_record(&write.record));
        }
        let session: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(write.session_json.as_str()).map_err(|error| {
                StoreError::other(format!(
                    "the session to cache is not a JSON object (session_json): {error}"
                ))
            })?;
        Ok(pickle::dumps_dict(&session))
    }

    /// The live session in a stored `value` of `session_key` with `ttl` left, or `None` for an
    /// entry that has expired (by this store's clock) or, on a backend storing Django's values,
    /// that cannot be read safely (logged).
    fn read_entry(
        &self,
        session_key: &str,
        value: &[u8],
        ttl: Option<Duration>,
    ) -> StoreResult<Option<Found>> {
        let now = self.clock.now();
        if !self.django || value.first() == Some(&b'{') {
            let record = match decode_record(value).and_then(|r| same_session(r, session_key)) {
                Ok(record) => record,
                Err(error) if self.django => {
                    tracing::warn!(
                        target: LOG_TARGET,
                        %error,
                        "a cache entry in the JSON record format cannot be read; the session \
                         loads as empty"
                    );
                    return Ok(None);
                }
                Err(error) => return Err(error),
            };
            if record.expire_date <= now {
                return Ok(None);
            }
            return Ok(Some(Found { record, dict: None }));
        }
        let dict = match pickle::loads_dict(value) {
            Ok(dict) => dict,
            Err(error) => {
                tracing::warn!(
                    target: LOG_TARGET,
                    %error,
                    "a cache entry is not a pickled session dict of plain values; refused \
                     without unpickling it, the session loads as empty"
                );
                return Ok(None);
            }
        };
        let left = ttl.unwrap_or(NO_TTL);
        let expire_date = Timestamp::from_micros(
            now.micros
                .saturating_add(i64::try_from(left.as_micros()).unwrap_or(i64::MAX)),
        );
        // The compact JSON the host parses (DECODED_DATA); a map of JSON values always
        // serialises.
        let session_data = serde_json::to_string(&dict)
            .map_err(|error| StoreError::other(format!("session dict to JSON: {error}")))?;
        Ok(Some(Found {
            record: SessionRecord::new(session_key, session_data, expire_date),
            dict: Some(dict),
        }))
    }

    /// The live record a mismatching compare-and-set found, or `NotFound` if it has expired by
    /// this store's clock.
    fn live_current(&self, session_key: &str, current: &[u8]) -> StoreResult<SessionRecord> {
        let record = same_session(decode_record(current)?, session_key)?;
        if record.expire_date <= self.clock.now() {
            return Err(vanished("save_if_unchanged"));
        }
        Ok(record)
    }

    /// The first step of `call`: its answer when no backend operation is needed (an empty key,
    /// a session that cannot be encoded), or the operation to run; with the plan that
    /// interprets the replies ([`advance`](Self::advance)). Blocking methods and
    /// `start_call` both run calls through this pair, so they answer the same.
    fn begin(&self, call: StoreCall) -> (Plan, Next) {
        let mut stage = Stage::Single;
        let next = match &call {
            StoreCall::Exists(key) if key.is_empty() => Next::Answer(Ok(CallAnswer::Exists(false))),
            StoreCall::Exists(key) => Next::Op(CacheOp::Contains(self.cache_key(key))),
            StoreCall::Load(key) if key.is_empty() => Next::Answer(Ok(CallAnswer::Load(RNone))),
            StoreCall::Load(key) => Next::Op(self.load_op(key)),
            StoreCall::Delete(key) if key.is_empty() => Next::Answer(Ok(CallAnswer::Delete)),
            StoreCall::Delete(key) => Next::Op(CacheOp::Delete(self.cache_key(key))),
            StoreCall::Create(write) | StoreCall::Save(write) => match self.value_of(write) {
                Err(error) => Next::Answer(Err(error)),
                Ok(value) => {
                    let record = &write.record;
                    let key = self.cache_key(record.session_key.as_str());
                    let ttl = self.ttl(record.expire_date);
                    Next::Op(if matches!(call, StoreCall::Create(_)) {
                        CacheOp::Add(key, value, ttl)
                    } else {
                        CacheOp::SetIfPresent(key, value, ttl)
                    })
                }
            },
            StoreCall::SaveIfUnchanged {
                write,
                expected_data,
            } => match self.begin_conditional(write, expected_data.as_str()) {
                Err(error) => Next::Answer(Err(error)),
                Ok((conditional, op)) => {
                    stage = Stage::Conditional(conditional);
                    Next::Op(op)
                }
            },
        };
        (Plan { call, stage }, next)
    }

    /// The plan and first operation of `save_if_unchanged` (see [`CacheStore`]): on JSON
    /// records, a compare-and-set on the record's prefix up to `expected_data`; on Django's
    /// values, one on the pickle of the expected dict when `expected_data` is one, else a read.
    fn begin_conditional(
        &self,
        write: &SessionWrite,
        expected_data: &str,
    ) -> StoreResult<(Conditional, CacheOp)> {
        let record = &write.record;
        let session_key = record.session_key.as_str();
        let key = self.cache_key(session_key);
        let ttl = self.ttl(record.expire_date);
        if !self.django {
            let value = encode_record(record);
            let prefix = record_prefix(session_key, expected_data);
            let op = CacheOp::ReplaceIfPrefixed(key.clone(), prefix, value, ttl);
            let conditional = Conditional {
                key,
                value: None,
                ttl,
                expected_dict: None,
                at: At::RecordPrefix,
            };
            return Ok((conditional, op));
        }
        let value = self.value_of(write)?;
        // The dict a load handed out (DECODED_DATA), or signed data of a JSON-record entry.
        let expected_dict = expected_data
            .starts_with('{')
            .then(|| {
                serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(expected_data)
                    .ok()
            })
            .flatten();
        // The common case in one round trip: the entry holds the expected dict in the bytes
        // we write for it (ours, or Django's, which pickles plain dicts the same way).
        let (op, value, at) = match &expected_dict {
            Some(expected) => (
                CacheOp::ReplaceIfPrefixed(key.clone(), pickle::dumps_dict(expected), value, ttl),
                None,
                At::DjangoExact,
            ),
            None => (
                CacheOp::GetWithTtl(key.clone()),
                Some(value),
                At::DjangoRead(0),
            ),
        };
        Ok((
            Conditional {
                key,
                value,
                ttl,
                expected_dict,
                at,
            },
            op,
        ))
    }

    /// The next step of `plan` after its operation answered `reply`.
    fn advance(&self, plan: &mut Plan, reply: Result<CacheReply, CacheError>) -> Next {
        let operation = plan.call.name();
        let reply = match reply {
            Ok(reply) => reply,
            Err(error) => return Next::Answer(Err(map_error(operation, error))),
        };
        let answer = match (&mut plan.call, &mut plan.stage, reply) {
            (StoreCall::Exists(_), Stage::Single, CacheReply::Flag(found)) => {
                Ok(CallAnswer::Exists(found))
            }
            (StoreCall::Load(key), Stage::Single, CacheReply::Value(value)) => {
                self.loaded(key, value.map(|value| (value, None)))
            }
            (StoreCall::Load(key), Stage::Single, CacheReply::ValueWithTtl(entry)) => {
                self.loaded(key, entry)
            }
            (StoreCall::Create(write), Stage::Single, CacheReply::Flag(added)) => {
                if added {
                    // The call is over: its key moves into the answer.
                    Ok(CallAnswer::Create(std::mem::take(
                        &mut write.record.session_key,
                    )))
                } else {
                    Err(StoreError::already_exists(
                        "a session with this key is already cached",
                    ))
                }
            }
            (StoreCall::Save(write), Stage::Single, CacheReply::Flag(replaced)) => {
                if replaced {
                    Ok(CallAnswer::Save(std::mem::take(
                        &mut write.record.session_key,
                    )))
                } else {
                    Err(vanished("save"))
                }
            }
            (StoreCall::Delete(_), Stage::Single, CacheReply::Flag(_)) => Ok(CallAnswer::Delete),
            (
                StoreCall::SaveIfUnchanged {
                    write,
                    expected_data,
                },
                Stage::Conditional(conditional),
                reply,
            ) => {
                match self.advance_conditional(write, expected_data.as_str(), conditional, reply) {
                    Ok(Conditionally::Next(op)) => return Next::Op(op),
                    Ok(Conditionally::Saved) => Ok(CallAnswer::SaveIfUnchanged(RResult::ROk(
                        std::mem::take(&mut write.record.session_key),
                    ))),
                    Ok(Conditionally::Conflict(current)) => {
                        Ok(CallAnswer::SaveIfUnchanged(RResult::RErr(current)))
                    }
                    Err(error) => Err(error),
                }
            }
            (call, _, reply) => Err(StoreError::other(format!(
                "cache {}: the backend answered with an unexpected reply ({})",
                call.name(),
                reply.kind()
            ))),
        };
        Next::Answer(answer)
    }

    /// `load`'s answer for the entry read under `session_key`.
    fn loaded(&self, session_key: &str, entry: Option<ValueWithTtl>) -> StoreResult<CallAnswer> {
        Ok(CallAnswer::Load(self.record_of(session_key, entry)?.into()))
    }

    /// The backend operation that loads `session_key` (not empty): the value, and on Django's
    /// values its TTL too (the entry's expire date).
    fn load_op(&self, session_key: &str) -> CacheOp {
        let key = self.cache_key(session_key);
        if self.django {
            CacheOp::GetWithTtl(key)
        } else {
            CacheOp::Get(key)
        }
    }

    /// The live record a load's `entry` holds for `session_key`.
    fn record_of(
        &self,
        session_key: &str,
        entry: Option<ValueWithTtl>,
    ) -> StoreResult<Option<SessionRecord>> {
        let Some((value, ttl)) = entry else {
            return Ok(None);
        };
        Ok(self
            .read_entry(session_key, &value, ttl)?
            .map(|found| found.record))
    }

    /// The next step of a conditional save after `reply` (see [`CacheStore`]).
    fn advance_conditional(
        &self,
        write: &SessionWrite,
        expected_data: &str,
        conditional: &mut Conditional,
        reply: CacheReply,
    ) -> StoreResult<Conditionally> {
        let session_key = write.record.session_key.as_str();
        let conflict = Conditionally::Conflict;
        match (conditional.at, reply) {
            (_, CacheReply::CompareAndSet(CompareAndSet::Replaced)) => Ok(Conditionally::Saved),
            (
                At::RecordPrefix | At::RecordExact | At::DjangoExact | At::DjangoCompareAndSet(_),
                CacheReply::CompareAndSet(CompareAndSet::Missing),
            ) => Err(vanished("save_if_unchanged")),
            (At::RecordPrefix, CacheReply::CompareAndSet(CompareAndSet::Mismatch(current))) => {
                let found = self.live_current(session_key, &current)?;
                if found.session_data.as_str() != expected_data {
                    return Ok(conflict(found));
                }
                // The entry holds the expected data in an encoding other than ours: compare on
                // its exact bytes instead.
                conditional.at = At::RecordExact;
                let value = conditional
                    .value
                    .take()
                    .unwrap_or_else(|| encode_record(&write.record));
                Ok(Conditionally::Next(
                    conditional.compare_and_set(current, value),
                ))
            }
            (At::RecordExact, CacheReply::CompareAndSet(CompareAndSet::Mismatch(newer))) => {
                Ok(conflict(self.live_current(session_key, &newer)?))
            }
            (At::DjangoExact, CacheReply::CompareAndSet(CompareAndSet::Mismatch(_))) => {
                conditional.at = At::DjangoRead(0);
                Ok(Conditionally::Next(CacheOp::GetWithTtl(
                    conditional.key.clone(),
                )))
            }
            (At::DjangoRead(attempt), CacheReply::ValueWithTtl(entry)) => {
                let Some((current, current_ttl)) = entry else {
                    return Err(vanished("save_if_unchanged"));
                };
                let Some(found) = self.read_entry(session_key, &current, current_ttl)? else {
                    // Expired, or unreadable (logged): no session the caller could have loaded.
                    return Err(vanished("save_if_unchanged"));
                };
                let unchanged = match (&found.dict, &conditional.expected_dict) {
                    (Some(found), Some(expected)) => found == expected,
                    (None, _) => found.record.session_data.as_str() == expected_data,
                    (Some(_), None) => false,
                };
                if !unchanged {
                    return Ok(conflict(found.record));
                }
                conditional.at = At::DjangoCompareAndSet(attempt);
                let value = match conditional.value.take() {
                    Some(value) => value,
                    None => self.value_of(write)?,
                };
                Ok(Conditionally::Next(
                    conditional.compare_and_set(current, value),
                ))
            }
            (
                At::DjangoCompareAndSet(attempt),
                CacheReply::CompareAndSet(CompareAndSet::Mismatch(_)),
            ) => {
                // Rewritten since the read: read again and compare the session anew.
                let attempt = attempt + 1;
                if attempt >= CAS_ATTEMPTS {
                    return Err(StoreError::unavailable(format!(
                        "the cache entry kept changing under {CAS_ATTEMPTS} conditional saves in \
                         a row; save_if_unchanged stored nothing"
                    )));
                }
                conditional.at = At::DjangoRead(attempt);
                Ok(Conditionally::Next(CacheOp::GetWithTtl(
                    conditional.key.clone(),
                )))
            }
            (_, reply) => Err(StoreError::other(format!(
                "cache save_if_unchanged: the backend answered with an unexpected reply ({})",
                reply.kind()
            ))),
        }
    }

    /// Runs `call` the blocking way: its operations one after the other on this thread.
    fn run_blocking(&self, call: StoreCall) -> StoreResult<CallAnswer> {
        let (mut plan, mut next) = self.begin(call);
        loop {
            match next {
                Next::Answer(answer) => return answer,
                Next::Op(op) => {
                    let reply = self.backend.execute(op);
                    next = self.advance(&mut plan, reply);
                }
            }
        }
    }

    /// Runs `plan` from `next` without blocking, until it is answered, waits on the backend
    /// (the plan is kept under the backend's ticket) or must run the blocking way.
    fn drive(&self, mut plan: Plan, mut next: Next) -> CallStep {
        loop {
            let op = match next {
                Next::Answer(answer) => return CallStep::done(answer),
                Next::Op(op) => op,
            };
            match self.backend.start(op) {
                CacheStep::Done(reply) => next = self.advance(&mut plan, reply),
                CacheStep::Wait(wait) => return self.park(plan, wait),
                // Every step before a call's last one only reads (or compare-and-sets without
                // writing), so running the whole call again the blocking way is the same call.
                CacheStep::Blocking => return CallStep::Blocking(plan.call),
            }
        }
    }

    /// Keeps `plan` until the backend's `wait` is resumed or cancelled.
    fn park(&self, plan: Plan, wait: CacheWait) -> CallStep {
        self.in_flight.lock().insert(wait.ticket, plan);
        CallStep::Wait(CallWait {
            fd: wait.fd,
            interest: if wait.readable {
                Interest::Readable
            } else {
                Interest::Writable
            },
            timeout_ms: wait.timeout_ms,
            ticket: wait.ticket,
        })
    }

    /// The time `expire_date` is away from now; zero if it has passed.
    fn ttl(&self, expire_date: Timestamp) -> Duration {
        let left = expire_date.micros.saturating_sub(self.clock.now().micros);
        u64::try_from(left)
            .map(Duration::from_micros)
            .unwrap_or(Duration::ZERO)
    }
}

/// A store call under way: the call itself (handed back whole if it must run the blocking
/// way) and where its backend operations stand.
struct Plan {
    call: StoreCall,
    stage: Stage,
}

/// Where a [`Plan`] stands.
enum Stage {
    /// One operation, whose reply answers the call.
    Single,
    /// A conditional save, which may take several.
    Conditional(Conditional),
}

/// A conditional save under way.
struct Conditional {
    /// The physical key.
    key: String,
    /// The value to store, until an operation took it (a later compare-and-set encodes the
    /// write again: the common case sends it once, without a copy).
    value: Option<Vec<u8>>,
    ttl: Duration,
    /// `expected_data` parsed as a session dict, on Django's values.
    expected_dict: Option<serde_json::Map<String, serde_json::Value>>,
    at: At,
}

impl Conditional {
    /// The compare-and-set replacing exactly `current` with `value`.
    fn compare_and_set(&self, current: Vec<u8>, value: Vec<u8>) -> CacheOp {
        CacheOp::ReplaceIfPrefixed(self.key.clone(), current, value, self.ttl)
    }
}

/// Which operation of a conditional save is in flight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum At {
    /// JSON records: the compare-and-set on the record's prefix up to `expected_data`.
    RecordPrefix,
    /// JSON records: the one on the exact bytes of an entry holding the data differently.
    RecordExact,
    /// Django's values: the one on the pickle of the expected dict.
    DjangoExact,
    /// Django's values: read number n (from 0) of the entry.
    DjangoRead(usize),
    /// Django's values: the compare-and-set on the exact bytes read n.
    DjangoCompareAndSet(usize),
}

/// What a conditional save's reply leads to.
enum Conditionally {
    /// Run this operation next.
    Next(CacheOp),
    /// Stored.
    Saved,
    /// Not stored: the live record differs from what the caller loaded.
    Conflict(SessionRecord),
}

/// What a plan does next.
enum Next {
    /// Run this operation and [`advance`](CacheStore::advance) with its reply.
    Op(CacheOp),
    /// The call's answer.
    Answer(StoreResult<CallAnswer>),
}

/// The error for an answer of the wrong variant (a store bug, reported instead of panicking).
fn unexpected(operation: &str, answer: &CallAnswer) -> StoreError {
    StoreError::other(format!(
        "cache {operation}: internal error, answered as {answer:?}"
    ))
}

impl<B: CacheBackend + 'static> SessionStore for CacheStore<B> {
    fn exists(&self, key: &str) -> StoreResult<bool> {
        match self.run_blocking(StoreCall::Exists(key.into()))? {
            CallAnswer::Exists(found) => Ok(found),
            other => Err(unexpected("exists", &other)),
        }
    }

    /// The hottest call of an in-process store, so straight to the backend without a plan
    /// (its one step is the plan's: `load_op`, then `record_of`).
    fn load(&self, key: &str) -> StoreResult<Option<SessionRecord>> {
        if key.is_empty() {
            return Ok(None);
        }
        let entry = match self.backend.execute(self.load_op(key)) {
            Ok(CacheReply::Value(value)) => value.map(|value| (value, None)),
            Ok(CacheReply::ValueWithTtl(entry)) => entry,
            Ok(other) => {
                return Err(StoreError::other(format!(
                    "cache load: internal error, the backend answered a {}",
                    other.kind()
                )));
            }
            Err(error) => return Err(map_error("load", error)),
        };
        self.record_of(key, entry)
    }

    fn create(&self, write: SessionWrite) -> StoreResult<String> {
        match self.run_blocking(StoreCall::Create(write))? {
            CallAnswer::Create(key) => Ok(key.into_string()),
            other => Err(unexpected("create", &other)),
        }
    }

    fn save(&self, write: SessionWrite) -> StoreResult<String> {
        match self.run_blocking(StoreCall::Save(write))? {
            CallAnswer::Save(key) => Ok(key.into_string()),
            other => Err(unexpected("save", &other)),
        }
    }

    /// One atomic compare-and-set on the backend in the common case (see [`CacheStore`]).
    fn save_if_unchanged(
        &self,
        write: SessionWrite,
        expected_data: &str,
    ) -> StoreResult<ConditionalSave> {
        let call = StoreCall::SaveIfUnchanged {
            write,
            expected_data: expected_data.into(),
        };
        match self.run_blocking(call)? {
            CallAnswer::SaveIfUnchanged(RResult::ROk(key)) => {
                Ok(ConditionalSave::Saved(key.into_string()))
            }
            CallAnswer::SaveIfUnchanged(RResult::RErr(current)) => {
                Ok(ConditionalSave::Conflict(current))
            }
            other => Err(unexpected("save_if_unchanged", &other)),
        }
    }

    fn delete(&self, key: &str) -> StoreResult<()> {
        match self.run_blocking(StoreCall::Delete(key.into()))? {
            CallAnswer::Delete => Ok(()),
            other => Err(unexpected("delete", &other)),
        }
    }

    fn clear_expired(&self) -> StoreResult<u64> {
        Ok(0)
    }

    /// The backend's: `NON_BLOCKING` in process, `SHARED_BETWEEN_PROCESSES` on Redis; plus
    /// `DECODED_DATA` where the store keeps Django's pickled dicts (its loads hand back the
    /// dict), and `READINESS_CALLS` where the backend runs operations without blocking (one
    /// Redis server over TCP or a Unix socket).
    fn capabilities(&self) -> Capabilities {
        let mut capabilities = self.backend.capabilities();
        if self.django {
            capabilities = capabilities | Capabilities::DECODED_DATA;
        }
        if self.backend.readiness_calls() {
            capabilities = capabilities | Capabilities::READINESS_CALLS;
        }
        capabilities
    }

    /// Runs the call's backend operations on the backend's non-blocking connections; hands it
    /// back as `Blocking` when the backend has none idle (the blocking path then opens one).
    fn start_call(&self, call: StoreCall) -> CallStep {
        if !self.backend.readiness_calls() {
            return CallStep::Blocking(call);
        }
        let (plan, next) = self.begin(call);
        self.drive(plan, next)
    }

    fn resume_call(&self, ticket: u64, timed_out: bool) -> CallStep {
        let Some(mut plan) = self.in_flight.lock().remove(&ticket) else {
            return CallStep::done(Err(StoreError::other(format!(
                "resume_call of an unknown ticket {ticket} (finished or cancelled)"
            ))));
        };
        match self.backend.resume(ticket, timed_out) {
            CacheStep::Done(reply) => {
                let next = self.advance(&mut plan, reply);
                self.drive(plan, next)
            }
            CacheStep::Wait(wait) => self.park(plan, wait),
            // The connection was closed before any reply (a server restart): the blocking
            // path retries on a new connection, as a blocking call would.
            CacheStep::Blocking => CallStep::Blocking(plan.call),
        }
    }

    fn cancel_call(&self, ticket: u64) {
        if self.in_flight.lock().remove(&ticket).is_some() {
            self.backend.cancel(ticket);
        }
    }
}

/// The one place a backend's failure becomes the contract's error.
fn map_error(operation: &str, error: CacheError) -> StoreError {
    match error {
        CacheError::Unavailable(_) => {
            StoreError::unavailable(format!("cache {operation} failed: {error}"))
        }
        CacheError::Backend(_) => StoreError::other(format!("cache {operation} failed: {error}")),
        CacheError::Unsupported(_) => {
            StoreError::unsupported(format!("cache {operation} failed: {error}"))
        }
    }
}

/// The error for a write whose session is no longer cached.
fn vanished(operation: &str) -> StoreError {
    StoreError::not_found(format!(
        "the session is no longer cached (deleted or expired); {operation} stored nothing"
    ))
}

/// `record`, if it is the record of `session_key` (an entry holding another session's record
/// is corrupt, and never handed out).
fn same_session(record: SessionRecord, session_key: &str) -> StoreResult<SessionRecord> {
    if record.session_key.as_str() != session_key {
        return Err(StoreError::new(
            sessionkit_sdk::ErrorKind::Corrupted,
            "the cache entry holds a different session's record",
        ));
    }
    Ok(record)
}

/// A [`SessionRecord`] as a cache value: `{"session_key": …, "session_data": …,
/// "expire_date": <UTC microseconds>}`.
#[derive(Serialize, Deserialize)]
struct CachedRecord<'a> {
    #[serde(borrow)]
    session_key: Cow<'a, str>,
    #[serde(borrow)]
    session_data: Cow<'a, str>,
    expire_date: i64,
}

fn encode_record(record: &SessionRecord) -> Vec<u8> {
    let (key, data) = (record.session_key.as_str(), record.session_data.as_str());
    // Django's session keys and signed data never need escaping: serde_json's exact output
    // written directly (the expire date is at most 20 characters).
    if !needs_json_escape(key) && !needs_json_escape(data) {
        let mut buffer = plain_prefix(key, data, 21);
        // Writing into memory cannot fail.
        let _ = write!(buffer, "{}}}", record.expire_date.micros);
        return buffer;
    }
    encode(&CachedRecord {
        session_key: Cow::Borrowed(record.session_key.as_str()),
        session_data: Cow::Borrowed(record.session_data.as_str()),
        expire_date: record.expire_date.micros,
    })
}

/// The start of [`encode_record`]'s output for a record of `session_key` holding
/// `session_data`, whatever its expire date: `{"session_key":…,"session_data":…,"expire_date":`.
/// It ends after the data's closing quote and the next field's name, so data that merely
/// begins with `session_data` does not match.
fn record_prefix(session_key: &str, session_data: &str) -> Vec<u8> {
    // Django's session keys and signed data never need escaping: copy them between the
    // punctuation serde_json writes, without running the serialiser.
    if !needs_json_escape(session_key) && !needs_json_escape(session_data) {
        return plain_prefix(session_key, session_data, 0);
    }
    let mut prefix = encode(&CachedRecord {
        session_key: Cow::Borrowed(session_key),
        session_data: Cow::Borrowed(session_data),
        expire_date: 0,
    });
    // The record ends with `"expire_date":0}`; drop the `0}`.
    prefix.truncate(prefix.len() - b"0}".len());
    prefix
}

/// [`encode_record`]'s output for a key and data without escapes, read without the JSON parser;
/// `None` for anything else (which [`decode_record`] hands to serde_json).
fn decode_plain_record(value: &[u8]) -> Option<SessionRecord> {
    let text = std::str::from_utf8(value).ok()?;
    let rest = text.strip_prefix(r#"{"session_key":""#)?;
    let (key, rest) = rest.split_once('"')?;
    let rest = rest.strip_prefix(r#","session_data":""#)?;
    let (data, rest) = rest.split_once('"')?;
    let micros = rest.strip_prefix(r#","expire_date":"#)?.strip_suffix('}')?;
    // A backslash or control character means escapes: leave those to the parser.
    if needs_json_escape(key) || needs_json_escape(data) {
        return None;
    }
    // Only what serde_json writes for an i64: an optional minus, digits, no leading zero.
    let digits = micros.strip_prefix('-').unwrap_or(micros);
    if digits.is_empty()
        || !digits.bytes().all(|b| b.is_ascii_digit())
        || (digits.starts_with('0') && (digits.len() > 1 || digits.len() < micros.len()))
    {
        return None;
    }
    let micros: i64 = micros.parse().ok()?;
    Some(SessionRecord::new(
        RString::from(key),
        RString::from(data),
        Timestamp::from_micros(micros),
    ))
}

/// [`record_prefix`] of a key and data that need no escaping, with room for `extra` more bytes.
fn plain_prefix(session_key: &str, session_data: &str, extra: usize) -> Vec<u8> {
    const OPEN: &[u8] = br#"{"session_key":""#;
    const DATA: &[u8] = br#"","session_data":""#;
    const CLOSE: &[u8] = br#"","expire_date":"#;
    let mut prefix = Vec::with_capacity(
        OPEN.len() + session_key.len() + DATA.len() + session_data.len() + CLOSE.len() + extra,
    );
    for part in [
        OPEN,
        session_key.as_bytes(),
        DATA,
        session_data.as_bytes(),
        CLOSE,
    ] {
        prefix.extend_from_slice(part);
    }
    prefix
}

/// Whether serde_json writes `text` other than as it is: a quote, a backslash or a control
/// character.
fn needs_json_escape(text: &str) -> bool {
    // A fold without an early exit, so the compiler can check many bytes at once.
    text.bytes().fold(false, |found, b| {
        found | (b < 0x20) | (b == b'"') | (b == b'\\')
    })
}

/// `cached` as JSON, in a buffer sized for it at once (the fields plus JSON's punctuation).
fn encode(cached: &CachedRecord<'_>) -> Vec<u8> {
    let mut buffer = Vec::with_capacity(cached.session_key.len() + cached.session_data.len() + 72);
    // Serialising a struct of two strings and an integer into memory cannot fail.
    serde_json::to_writer(&mut buffer, cached).expect("a CachedRecord always serialises");
    buffer
}

fn decode_record(value: &[u8]) -> StoreResult<SessionRecord> {
    if let Some(record) = decode_plain_record(value) {
        return Ok(record);
    }
    let cached: CachedRecord<'_> = serde_json::from_slice(value).map_err(|error| {
        StoreError::new(
            sessionkit_sdk::ErrorKind::Corrupted,
            format!("the cache entry is not a session record: {error}"),
        )
    })?;
    Ok(SessionRecord::new(
        RString::from(cached.session_key.into_owned()),
        RString::from(cached.session_data.into_owned()),
        Timestamp::from_micros(cached.expire_date),
    ))
}

#[cfg(test)]
mod tests {
    use sessionkit_sdk::ErrorKind;

    use chrono::TimeDelta;
    use sessionkit_codec::time::to_datetime;

    use super::*;
    use crate::{
        clock::{ManualClock, SystemClock},
        locmem::{LocMemBackend, LocMemOptions},
    };

    const KEY: &str = "abcdefghijklmnopqrstuvwxyz012345";
    const OTHER_KEY: &str = "543210zyxwvutsrqponmlkjihgfedcba";
    const START: i64 = 1_750_000_000;

    struct Fixture {
        store: CacheStore<LocMemBackend>,
        clock: ManualClock,
    }

    fn fixture() -> Fixture {
        let clock = ManualClock::at(Timestamp::from_secs(START));
        let backend = LocMemBackend::private(LocMemOptions::default(), Arc::new(clock.clone()));
        let store = CacheStore::new(
            backend,
            KeyFunction::default(),
            CACHE_SESSION_PREFIX,
            Arc::new(clock.clone()),
        );
        Fixture { store, clock }
    }

    fn write(key: &str, data: &str, expire_date: Timestamp) -> SessionWrite {
        SessionWrite {
            record: SessionRecord {
                session_key: key.into(),
                session_data: data.into(),
                expire_date,
            },
            session_json: "{}".into(),
        }
    }

    /// Stores `OTHER_KEY`'s record (data `"data"`) under `KEY`'s cache key as well.
    fn plant_another_sessions_record(f: &Fixture) {
        f.store
            .create(write(OTHER_KEY, "data", in_secs(60)))
            .unwrap();
        let raw = f
            .store
            .backend()
            .get(&f.store.cache_key(OTHER_KEY))
            .unwrap()
            .unwrap();
        f.store
            .backend()
            .set(&f.store.cache_key(KEY), &raw, Duration::from_secs(60))
            .unwrap();
    }

    /// A record expiring `secs` seconds after the fixture's start.
    fn in_secs(secs: i64) -> Timestamp {
        Timestamp::from_secs(START + secs)
    }

    #[test]
    fn cache_key_is_djangos_physical_key() {
        let f = fixture();
        assert_eq!(
            f.store.cache_key(KEY),
            format!(":1:django.contrib.sessions.cache{KEY}")
        );
    }

    #[test]
    fn cache_key_applies_key_prefix_version_and_session_prefix() {
        let backend = LocMemBackend::private(LocMemOptions::default(), Arc::new(SystemClock));
        let store = CacheStore::new(
            backend,
            KeyFunction::new("site", 2),
            CACHED_DB_SESSION_PREFIX,
            Arc::new(SystemClock),
        );
        assert_eq!(
            store.cache_key("k"),
            "site:2:django.contrib.sessions.cached_dbk"
        );
        assert_eq!(store.session_prefix(), CACHED_DB_SESSION_PREFIX);
    }

    #[test]
    fn create_then_load_gives_the_same_record() {
        let f = fixture();
        let expire = Timestamp::from_micros(in_secs(60).micros + 123_456);
        assert_eq!(f.store.create(write(KEY, "data:1", expire)).unwrap(), KEY);
        let record = f.store.load(KEY).unwrap().expect("stored");
        assert_eq!(record.session_key.as_str(), KEY);
        assert_eq!(record.session_data.as_str(), "data:1");
        assert_eq!(record.expire_date, expire);
        assert!(f.store.exists(KEY).unwrap());
    }

    #[test]
    fn cache_value_is_the_whole_record_as_json() {
        let f = fixture();
        f.store.create(write(KEY, "data:1", in_secs(60))).unwrap();
        let raw = f
            .store
            .backend()
            .get(&f.store.cache_key(KEY))
            .unwrap()
            .unwrap();
        let value: serde_json::Value = serde_json::from_slice(&raw).unwrap();
        assert_eq!(
            value,
            serde_json::json!({
                "session_key": KEY, "session_data": "data:1", "expire_date": in_secs(60).micros
            })
        );
    }

    #[test]
    fn create_of_a_taken_key_fails_with_already_exists_and_keeps_the_original() {
        let f = fixture();
        f.store.create(write(KEY, "first", in_secs(60))).unwrap();
        let error = f
            .store
            .create(write(KEY, "second", in_secs(60)))
            .unwrap_err();
        assert_eq!(error.kind, ErrorKind::AlreadyExists);
        assert_eq!(
            f.store.load(KEY).unwrap().unwrap().session_data.as_str(),
            "first"
        );
    }

    #[test]
    fn create_of_a_key_whose_entry_expired_succeeds() {
        let f = fixture();
        f.store.create(write(KEY, "first", in_secs(10))).unwrap();
        f.clock.advance(TimeDelta::seconds(10));
        f.store.create(write(KEY, "second", in_secs(100))).unwrap();
        assert_eq!(
            f.store.load(KEY).unwrap().unwrap().session_data.as_str(),
            "second"
        );
    }

    #[test]
    fn save_replaces_a_stored_record() {
        let f = fixture();
        f.store.create(write(KEY, "first", in_secs(60))).unwrap();
        assert_eq!(
            f.store.save(write(KEY, "second", in_secs(120))).unwrap(),
            KEY
        );
        let record = f.store.load(KEY).unwrap().unwrap();
        assert_eq!(record.session_data.as_str(), "second");
        assert_eq!(record.expire_date, in_secs(120));
    }

    #[test]
    fn save_of_an_unknown_key_fails_with_not_found_and_stores_nothing() {
        let f = fixture();
        let error = f.store.save(write(KEY, "data", in_secs(60))).unwrap_err();
        assert_eq!(error.kind, ErrorKind::NotFound);
        assert!(!f.store.exists(KEY).unwrap());
        assert_eq!(f.store.load(KEY).unwrap(), None);
    }

    #[test]
    fn save_after_delete_does_not_resurrect_the_session() {
        let f = fixture();
        f.store.create(write(KEY, "data", in_secs(60))).unwrap();
        f.store.delete(KEY).unwrap();
        let error = f.store.save(write(KEY, "stale", in_secs(60))).unwrap_err();
        assert_eq!(error.kind, ErrorKind::NotFound);
        assert_eq!(f.store.load(KEY).unwrap(), None);
    }

    #[test]
    fn save_after_the_entry_expired_does_not_resurrect_the_session() {
        let f = fixture();
        f.store.create(write(KEY, "data", in_secs(10))).unwrap();
        f.clock.advance(TimeDelta::seconds(11));
        let error = f.store.save(write(KEY, "stale", in_secs(100))).unwrap_err();
        assert_eq!(error.kind, ErrorKind::NotFound);
        assert!(!f.store.exists(KEY).unwrap());
    }

    #[test]
    fn save_if_unchanged_of_an_unchanged_record_saves_it() {
        let f = fixture();
        f.store.create(write(KEY, "first", in_secs(60))).unwrap();
        let outcome = f
            .store
            .save_if_unchanged(write(KEY, "second", in_secs(120)), "first")
            .unwrap();
        assert_eq!(outcome, ConditionalSave::Saved(KEY.to_owned()));
        let record = f.store.load(KEY).unwrap().unwrap();
        assert_eq!(record.session_data.as_str(), "second");
        assert_eq!(record.expire_date, in_secs(120));
        // Same TTL rule as save: the entry lives until the new expire date.
        f.clock.advance(TimeDelta::seconds(119));
        assert!(f.store.exists(KEY).unwrap());
    }

    #[test]
    fn save_if_unchanged_of_a_changed_record_stores_nothing_and_returns_it() {
        let f = fixture();
        f.store.create(write(KEY, "first", in_secs(60))).unwrap();
        f.store.save(write(KEY, "other", in_secs(90))).unwrap();
        let outcome = f
            .store
            .save_if_unchanged(write(KEY, "lost", in_secs(120)), "first")
            .unwrap();
        let stored = write(KEY, "other", in_secs(90)).record;
        assert_eq!(outcome, ConditionalSave::Conflict(stored.clone()));
        assert_eq!(f.store.load(KEY).unwrap(), Some(stored));
    }

    #[test]
    fn save_if_unchanged_compares_the_whole_data_not_its_beginning() {
        let f = fixture();
        f.store.create(write(KEY, "ab", in_secs(60))).unwrap();
        for expected in ["a", "", "ab\"", "abc"] {
            let outcome = f
                .store
                .save_if_unchanged(write(KEY, "new", in_secs(60)), expected)
                .unwrap();
            assert!(
                matches!(&outcome, ConditionalSave::Conflict(r) if r.session_data.as_str() == "ab"),
                "expected {expected:?}: {outcome:?}"
            );
        }
    }

    #[test]
    fn save_if_unchanged_compares_data_with_json_escapes() {
        let f = fixture();
        let data = "quote \" backslash \\ unicode \u{e9} newline \n";
        f.store.create(write(KEY, data, in_secs(60))).unwrap();
        let outcome = f
            .store
            .save_if_unchanged(write(KEY, "new", in_secs(60)), data)
            .unwrap();
        assert_eq!(outcome, ConditionalSave::Saved(KEY.to_owned()));
    }

    #[test]
    fn encoded_records_are_serde_jsons_output() {
        for data in [
            "",
            "plain.base64:signed",
            "quote \" backslash \\ tab \t unicode \u{e9} \u{2028}",
        ] {
            for micros in [0, -1, 1_750_000_000_000_000, i64::MAX, i64::MIN] {
                let record = SessionRecord::new(KEY, data, Timestamp::from_micros(micros));
                let serde = encode(&CachedRecord {
                    session_key: Cow::Borrowed(KEY),
                    session_data: Cow::Borrowed(data),
                    expire_date: micros,
                });
                assert_eq!(encode_record(&record), serde, "{data:?} {micros}");
            }
        }
    }

    #[test]
    fn records_read_back_whatever_their_layout() {
        let parse = |value: &[u8]| {
            let cached: CachedRecord<'_> = serde_json::from_slice(value).unwrap();
            SessionRecord::new(
                RString::from(cached.session_key.into_owned()),
                RString::from(cached.session_data.into_owned()),
                Timestamp::from_micros(cached.expire_date),
            )
        };
        let mut values: Vec<Vec<u8>> = vec![];
        for data in [
            "",
            "plain.base64:signed",
            "quote \" backslash \\ tab \t \u{e9}",
        ] {
            for micros in [0, -1, 1_750_000_000_000_000, i64::MAX, i64::MIN] {
                let record = SessionRecord::new(KEY, data, Timestamp::from_micros(micros));
                values.push(encode_record(&record));
            }
        }
        for other in [
            r#"{"session_key":"k","session_data":"d","expire_date":5}"#,
            r#"{"session_key": "k", "session_data": "d", "expire_date": 5}"#,
            r#"{"session_data":"d","session_key":"k","expire_date":5}"#,
            r#"{"session_key":"k","session_data":"a\u0041","expire_date":5}"#,
        ] {
            values.push(other.as_bytes().to_vec());
        }
        for value in values {
            let text = String::from_utf8_lossy(&value).into_owned();
            assert_eq!(decode_record(&value).unwrap(), parse(&value), "{text}");
        }
        for bad in [
            &br#"{"session_key":"k","session_data":"d","expire_date":}"#[..],
            br#"{"session_key":"k","session_data":"d","expire_date":99999999999999999999}"#,
            br#"{"session_key":"k","session_data":"d"}"#,
            br#"{"session_key":"k","session_data":"d","expire_date":-0}"#,
            br#"{"session_key":"k","session_data":"d","expire_date":007}"#,
            b"not json",
        ] {
            assert!(
                decode_record(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn record_prefix_is_the_start_of_the_encoded_record() {
        for data in [
            "",
            "plain.base64:signed",
            "quote \" backslash \\ tab \t unicode \u{e9} \u{2028}",
        ] {
            let record = write(KEY, data, in_secs(60)).record;
            let encoded = encode_record(&record);
            let prefix = record_prefix(KEY, data);
            assert!(encoded.starts_with(&prefix), "{data:?}");
            assert_eq!(
                &encoded[prefix.len()..],
                format!("{}}}", in_secs(60).micros).as_bytes(),
                "{data:?}"
            );
        }
    }

    #[test]
    fn save_if_unchanged_of_a_vanished_key_fails_with_not_found_and_stores_nothing() {
        let f = fixture();
        let error = f
            .store
            .save_if_unchanged(write(KEY, "new", in_secs(60)), "old")
            .unwrap_err();
        assert_eq!(error.kind, ErrorKind::NotFound);
        f.store.create(write(KEY, "old", in_secs(60))).unwrap();
        f.store.delete(KEY).unwrap();
        let error = f
            .store
            .save_if_unchanged(write(KEY, "new", in_secs(60)), "old")
            .unwrap_err();
        assert_eq!(error.kind, ErrorKind::NotFound);
        assert_eq!(f.store.load(KEY).unwrap(), None);
        assert!(f.store.backend().is_empty());
    }

    #[test]
    fn save_if_unchanged_after_the_entry_expired_fails_with_not_found() {
        let f = fixture();
        f.store.create(write(KEY, "old", in_secs(10))).unwrap();
        f.clock.advance(TimeDelta::seconds(10));
        let error = f
            .store
            .save_if_unchanged(write(KEY, "new", in_secs(100)), "old")
            .unwrap_err();
        assert_eq!(error.kind, ErrorKind::NotFound);
        assert!(!f.store.exists(KEY).unwrap());
    }

    #[test]
    fn save_if_unchanged_never_returns_an_expired_record_as_a_conflict() {
        let f = fixture();
        f.store.create(write(KEY, "other", in_secs(10))).unwrap();
        // Only the wall clock moves: the cache still holds the entry, the record has expired.
        f.clock.set(to_datetime(in_secs(10)));
        let error = f
            .store
            .save_if_unchanged(write(KEY, "new", in_secs(100)), "mine")
            .unwrap_err();
        assert_eq!(error.kind, ErrorKind::NotFound);
    }

    #[test]
    fn save_if_unchanged_with_a_past_expire_date_removes_the_entry_as_save_does() {
        let f = fixture();
        f.store.create(write(KEY, "data", in_secs(60))).unwrap();
        let outcome = f
            .store
            .save_if_unchanged(write(KEY, "data", in_secs(0)), "data")
            .unwrap();
        assert_eq!(outcome, ConditionalSave::Saved(KEY.to_owned()));
        assert!(f.store.backend().is_empty());
    }

    #[test]
    fn save_if_unchanged_matches_the_expected_data_in_another_json_layout() {
        let f = fixture();
        let spaced = format!(
            r#"{{ "expire_date": {}, "session_data": "old", "session_key": "{KEY}" }}"#,
            in_secs(60).micros
        );
        f.store
            .backend()
            .set(
                &f.store.cache_key(KEY),
                spaced.as_bytes(),
                Duration::from_secs(60),
            )
            .unwrap();
        let outcome = f
            .store
            .save_if_unchanged(write(KEY, "new", in_secs(60)), "old")
            .unwrap();
        assert_eq!(outcome, ConditionalSave::Saved(KEY.to_owned()));
        assert_eq!(
            f.store.load(KEY).unwrap().unwrap().session_data.as_str(),
            "new"
        );
    }

    #[test]
    fn save_if_unchanged_of_an_entry_holding_another_session_is_corrupted() {
        let f = fixture();
        plant_another_sessions_record(&f);
        let error = f
            .store
            .save_if_unchanged(write(KEY, "new", in_secs(60)), "data")
            .unwrap_err();
        assert_eq!(error.kind, ErrorKind::Corrupted);
    }

    #[test]
    fn concurrent_save_if_unchanged_saves_exactly_one() {
        const WRITERS: usize = 16;
        let f = fixture();
        f.store.create(write(KEY, "start", in_secs(60))).unwrap();
        let start = std::sync::Barrier::new(WRITERS);
        let outcomes: Vec<(ConditionalSave, String)> = std::thread::scope(|scope| {
            let writers: Vec<_> = (0..WRITERS)
                .map(|writer| {
                    let (store, start) = (&f.store, &start);
                    scope.spawn(move || {
                        let data = format!("writer {writer}");
                        start.wait();
                        let outcome = store
                            .save_if_unchanged(write(KEY, &data, in_secs(60)), "start")
                            .unwrap();
                        (outcome, data)
                    })
                })
                .collect();
            writers.into_iter().map(|w| w.join().unwrap()).collect()
        });
        let winners: Vec<&String> = outcomes
            .iter()
            .filter(|(outcome, _)| matches!(outcome, ConditionalSave::Saved(_)))
            .map(|(_, data)| data)
            .collect();
        assert_eq!(winners.len(), 1, "{outcomes:?}");
        let stored = f.store.load(KEY).unwrap().unwrap();
        assert_eq!(&stored.session_data.to_string(), winners[0]);
        for (outcome, _) in &outcomes {
            if let ConditionalSave::Conflict(seen) = outcome {
                assert_eq!(seen, &stored, "a loser sees the winner's record");
            }
        }
    }

    #[test]
    fn load_of_an_unknown_key_gives_none_and_creates_nothing() {
        let f = fixture();
        assert_eq!(f.store.load(KEY).unwrap(), None);
        assert!(!f.store.exists(KEY).unwrap());
        assert!(f.store.backend().is_empty());
    }

    #[test]
    fn load_never_returns_an_expired_record_even_if_the_cache_still_holds_it() {
        let f = fixture();
        f.store.create(write(KEY, "data", in_secs(10))).unwrap();
        // Only the wall clock moves: the cache's own TTL has not run out, the record has.
        f.clock.set(to_datetime(in_secs(10)));
        assert_eq!(f.store.load(KEY).unwrap(), None);
    }

    #[test]
    fn entry_ttl_is_the_time_left_until_expire_date() {
        let f = fixture();
        f.store.create(write(KEY, "data", in_secs(100))).unwrap();
        f.clock.advance(TimeDelta::seconds(99));
        assert!(f.store.exists(KEY).unwrap());
        f.clock.advance(TimeDelta::seconds(1));
        assert!(!f.store.exists(KEY).unwrap());
        assert!(
            f.store
                .backend()
                .get(&f.store.cache_key(KEY))
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn create_of_an_already_expired_record_stores_nothing() {
        let f = fixture();
        assert_eq!(
            f.store.create(write(KEY, "data", in_secs(-1))).unwrap(),
            KEY
        );
        assert!(!f.store.exists(KEY).unwrap());
        assert_eq!(f.store.load(KEY).unwrap(), None);
        assert!(f.store.backend().is_empty());
    }

    #[test]
    fn create_of_an_expired_record_over_a_live_one_still_fails() {
        let f = fixture();
        f.store.create(write(KEY, "live", in_secs(60))).unwrap();
        let error = f.store.create(write(KEY, "dead", in_secs(-1))).unwrap_err();
        assert_eq!(error.kind, ErrorKind::AlreadyExists);
        assert!(f.store.exists(KEY).unwrap());
    }

    #[test]
    fn save_with_a_past_expire_date_removes_the_entry() {
        let f = fixture();
        f.store.create(write(KEY, "data", in_secs(60))).unwrap();
        f.store.save(write(KEY, "data", in_secs(0))).unwrap();
        assert!(!f.store.exists(KEY).unwrap());
        assert!(f.store.backend().is_empty());
    }

    #[test]
    fn delete_removes_the_session() {
        let f = fixture();
        f.store.create(write(KEY, "data", in_secs(60))).unwrap();
        f.store.delete(KEY).unwrap();
        assert!(!f.store.exists(KEY).unwrap());
        assert_eq!(f.store.load(KEY).unwrap(), None);
    }

    #[test]
    fn delete_of_an_unknown_key_succeeds() {
        let f = fixture();
        f.store.delete(KEY).unwrap();
        f.store.delete("").unwrap();
    }

    #[test]
    fn empty_key_is_never_stored() {
        let f = fixture();
        assert!(!f.store.exists("").unwrap());
        assert_eq!(f.store.load("").unwrap(), None);
    }

    #[test]
    fn clear_expired_returns_zero_and_keeps_live_sessions() {
        let f = fixture();
        f.store.create(write(KEY, "data", in_secs(60))).unwrap();
        assert_eq!(f.store.clear_expired().unwrap(), 0);
        assert!(f.store.load(KEY).unwrap().is_some());
    }

    #[test]
    fn account_index_is_unsupported() {
        let f = fixture();
        assert_eq!(
            f.store.sessions_of_account(1).unwrap_err().kind,
            ErrorKind::Unsupported
        );
        assert_eq!(
            f.store
                .delete_sessions_of_account(1, None)
                .unwrap_err()
                .kind,
            ErrorKind::Unsupported
        );
    }

    #[test]
    fn put_stores_whether_or_not_the_key_is_cached() {
        let f = fixture();
        f.store.put(&write(KEY, "filled", in_secs(60))).unwrap();
        assert_eq!(
            f.store.load(KEY).unwrap().unwrap().session_data.as_str(),
            "filled"
        );
        f.store.put(&write(KEY, "newer", in_secs(60))).unwrap();
        assert_eq!(
            f.store.load(KEY).unwrap().unwrap().session_data.as_str(),
            "newer"
        );
    }

    #[test]
    fn an_undecodable_entry_is_reported_as_corrupted() {
        let f = fixture();
        f.store
            .backend()
            .set(
                &f.store.cache_key(KEY),
                b"\x80not json",
                Duration::from_secs(60),
            )
            .unwrap();
        assert_eq!(f.store.load(KEY).unwrap_err().kind, ErrorKind::Corrupted);
    }

    #[test]
    fn an_entry_holding_another_sessions_record_is_reported_as_corrupted() {
        let f = fixture();
        plant_another_sessions_record(&f);
        let error = f.store.load(KEY).unwrap_err();
        assert_eq!(error.kind, ErrorKind::Corrupted);
        assert!(!error.message.contains(KEY) && !error.message.contains(OTHER_KEY));
    }

    #[test]
    fn data_with_json_escapes_round_trips() {
        let f = fixture();
        let data = "quote \" backslash \\ unicode \u{e9} newline \n";
        f.store.create(write(KEY, data, in_secs(60))).unwrap();
        assert_eq!(
            f.store.load(KEY).unwrap().unwrap().session_data.as_str(),
            data
        );
    }

    #[test]
    fn stores_with_different_prefixes_on_one_backend_are_separate() {
        let clock = ManualClock::at(Timestamp::from_secs(START));
        let backend = Arc::new(LocMemBackend::private(
            LocMemOptions::default(),
            Arc::new(clock.clone()),
        ));
        let cache = CacheStore::new(
            backend.clone(),
            KeyFunction::default(),
            CACHE_SESSION_PREFIX,
            Arc::new(clock.clone()),
        );
        let cached_db = CacheStore::new(
            backend.clone(),
            KeyFunction::default(),
            CACHED_DB_SESSION_PREFIX,
            Arc::new(clock.clone()),
        );
        let other_site = CacheStore::new(
            backend,
            KeyFunction::new("other", 1),
            CACHE_SESSION_PREFIX,
            Arc::new(clock),
        );
        cache.create(write(KEY, "data", in_secs(60))).unwrap();
        assert!(cache.exists(KEY).unwrap());
        assert!(!cached_db.exists(KEY).unwrap());
        assert!(!other_site.exists(KEY).unwrap());
    }

    /// A backend whose every call fails with the given error.
    struct Failing(fn() -> CacheError);

    impl CacheBackend for Failing {
        fn get(&self, _: &str) -> Result<Option<Vec<u8>>, CacheError> {
            Err((self.0)())
        }
        fn contains(&self, _: &str) -> Result<bool, CacheError> {
            Err((self.0)())
        }
        fn add(&self, _: &str, _: &[u8], _: Duration) -> Result<bool, CacheError> {
            Err((self.0)())
        }
        fn set_if_present(&self, _: &str, _: &[u8], _: Duration) -> Result<bool, CacheError> {
            Err((self.0)())
        }
        fn set(&self, _: &str, _: &[u8], _: Duration) -> Result<(), CacheError> {
            Err((self.0)())
        }
        fn delete(&self, _: &str) -> Result<bool, CacheError> {
            Err((self.0)())
        }
    }

    #[test]
    fn a_backend_without_compare_and_set_makes_conditional_save_unsupported() {
        let store = CacheStore::new(
            Failing(|| CacheError::Unavailable("unused".into())),
            KeyFunction::default(),
            CACHE_SESSION_PREFIX,
            Arc::new(SystemClock),
        );
        let error = store
            .save_if_unchanged(write(KEY, "d", in_secs(60)), "d")
            .unwrap_err();
        assert_eq!(error.kind, ErrorKind::Unsupported, "{error}");
    }

    #[test]
    fn backend_failures_map_to_unavailable_or_other_and_name_the_operation() {
        let down = CacheStore::new(
            Failing(|| CacheError::Unavailable("connection refused".into())),
            KeyFunction::default(),
            CACHE_SESSION_PREFIX,
            Arc::new(SystemClock),
        );
        let results = [
            ("exists", down.exists(KEY).map(|_| ())),
            ("load", down.load(KEY).map(|_| ())),
            (
                "create",
                down.create(write(KEY, "d", Timestamp::from_secs(i64::MAX / 2_000_000)))
                    .map(|_| ()),
            ),
            (
                "save",
                down.save(write(KEY, "d", Timestamp::from_secs(i64::MAX / 2_000_000)))
                    .map(|_| ()),
            ),
            ("delete", down.delete(KEY)),
        ];
        for (operation, result) in results {
            let error = result.unwrap_err();
            assert_eq!(error.kind, ErrorKind::Unavailable, "{operation}");
            assert!(error.message.contains(operation), "{operation}: {error}");
            assert!(error.message.contains("connection refused"), "{error}");
        }
        let broken = CacheStore::new(
            Failing(|| CacheError::Backend("OOM command not allowed".into())),
            KeyFunction::default(),
            CACHE_SESSION_PREFIX,
            Arc::new(SystemClock),
        );
        assert_eq!(broken.load(KEY).unwrap_err().kind, ErrorKind::Other);
        assert_eq!(
            broken
                .put(&write(KEY, "d", Timestamp::from_secs(1)))
                .unwrap_err()
                .kind,
            ErrorKind::Other
        );
    }
}
