//! The file store: the contract and the expiry judgement, over the primitives of `core.rs`.
//!
//! One file per session, named `SESSION_COOKIE_NAME + key`, holding exactly the signed
//! `session_data` string, so Django and sessionkit read each other's files. See the crate README
//! for the decisions (expiry judgement, integer expiries, write errors, concurrency).

use std::{
    collections::HashMap,
    io,
    path::{Path, PathBuf},
    sync::{
        Arc, Mutex, MutexGuard, PoisonError,
        atomic::{AtomicU64, Ordering},
    },
    thread,
    time::{Duration, SystemTime},
};

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::Value;
use sessionkit_codec::{
    SESSION_STORE_SALT, SessionMap,
    expiry::{self, Clock, EXPIRY_KEY, SystemClock},
    key::is_valid_session_key,
    signing::SessionCodec,
    time::{from_datetime, parse_isoformat, to_datetime},
};
use sessionkit_sdk::{
    ConditionalSave, ErrorKind, SessionRecord, SessionStore, SessionWrite, StoreError,
};
use tempfile::TempPath;

use crate::{
    config::{ConfigError, FileConfig},
    core::{
        self, Contents, Identity, LEGACY_PROBE_PREFIX, Locked, MAX_FILE_BYTES, Placed, SessionDir,
        Snapshot, TEMP_MARKER,
    },
};

/// How long the store keeps a session file's lock for the retry of a writer whose conditional
/// save lost (the hand-off described in the crate README). The host's reload-and-replay takes well under a millisecond; a retry that
/// never comes (a cancelled request) delays other writers of that one session by this much.
pub const HANDOFF_GRACE: Duration = Duration::from_millis(50);

/// Why a key cannot name a session file. A key that fails the check never becomes a path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid session key for the file engine: {reason}")]
pub struct InvalidKey {
    reason: &'static str,
}

/// The `file` engine's store: one file per session in `SESSION_FILE_PATH`.
///
/// Cheap to share between threads (`&self` everywhere); several processes may open the same
/// directory.
pub struct FileStore {
    config: FileConfig,
    codec: SessionCodec,
    clock: Arc<dyn Clock>,
    dir: SessionDir,
    /// Session files whose lock is kept for the retry of a writer that just saw a conflict.
    reservations: Arc<Mutex<HashMap<PathBuf, Reservation>>>,
    next_reservation: AtomicU64,
}

/// A session file's lock, kept after a conditional save found other data, for the retry of
/// the writer that lost: the retry expecting exactly `data` takes it over and cannot lose
/// again. Without it, N requests racing on one session each lose to every save that lands
/// while they reload and replay (the last one N − 1 times, past the host's bounded retries);
/// with it, writers take turns and each needs at most two calls after its turn comes. Other
/// writers wait for the lock as usual; a thread releases it after [`HANDOFF_GRACE`] if the
/// retry never comes.
struct Reservation {
    id: u64,
    data: String,
    locked: core::LockedFile,
}

/// What a session file is worth at a given time.
enum Judged {
    /// A live session: the record `load` gives.
    Live(SessionRecord),
    /// A session (or placeholder, or unreadable file) whose time is up; the version read, so
    /// it is only removed if nobody replaced it since.
    Expired(Identity),
    /// A file that holds no session and has not aged out yet (an empty placeholder, an
    /// unreadable file).
    NoSession,
}

/// Every failure inside the store; [`to_store_error`] is the one place it becomes a
/// [`StoreError`].
#[derive(Debug, thiserror::Error)]
enum FileError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    InvalidKey(#[from] InvalidKey),
    #[error("session {session} already exists")]
    AlreadyExists { session: String },
    #[error("session {session} is no longer stored (deleted or expired)")]
    NotFound { session: String },
    #[error(
        "session data of {len} bytes is over the file engine's limit of {MAX_FILE_BYTES} bytes"
    )]
    TooLarge { len: usize },
    #[error("session data is not ASCII; it could not be read back")]
    NotAscii,
    #[error("{operation} of session {session} in {}: {source}", dir.display())]
    Io {
        operation: &'static str,
        session: String,
        dir: PathBuf,
        source: io::Error,
    },
    #[error(
        "clear_expired removed {removed} session(s), but {failures} file(s) could not be checked; \
         first: {first}"
    )]
    Sweep {
        removed: u64,
        failures: u64,
        first: Box<FileError>,
    },
}

impl FileStore {
    /// Opens the store described by `config`: checks the directory (creating the private
    /// default one if `SESSION_FILE_PATH` is not set), that it is safe to keep sessions in, and
    /// that this process can write there. Creates no file in it.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Config`] naming `SESSION_FILE_PATH` (or the setting at fault).
    pub fn open(config: &FileConfig) -> Result<Self, StoreError> {
        Self::open_inner(config.clone()).map_err(to_store_error)
    }

    fn open_inner(config: FileConfig) -> Result<Self, FileError> {
        config.validate()?;
        let config = config.with_absolute_directory()?;
        let dir = SessionDir::open(
            config.directory().to_path_buf(),
            config.uses_private_default(),
            config.durability(),
        )?;
        let fallbacks: Vec<Vec<u8>> = config
            .secret_key_fallbacks()
            .iter()
            .map(|k| k.as_bytes().to_vec())
            .collect();
        let codec = SessionCodec::new(
            SESSION_STORE_SALT,
            config.secret_key().as_bytes(),
            &fallbacks,
        );
        Ok(Self {
            config,
            codec,
            clock: Arc::new(SystemClock),
            dir,
            reservations: Arc::default(),
            next_reservation: AtomicU64::new(0),
        })
    }

    /// The same store judging expiry with `clock` instead of the system clock (the host's
    /// clock when the host lends it, tests).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// How many directory fsyncs this store has run: with group commit, fewer than the writes
    /// (creates, saves, deletes) when writers overlap; the tests' and benches' view of batching.
    pub fn directory_syncs(&self) -> u64 {
        self.dir.syncs()
    }

    /// The settings the store was opened with (directory made absolute).
    pub fn config(&self) -> &FileConfig {
        &self.config
    }

    /// The path of the file for `key`: `SESSION_FILE_PATH/SESSION_COOKIE_NAME + key`.
    ///
    /// # Errors
    ///
    /// [`InvalidKey`] unless the key is 8 to 40 characters of `[a-z0-9]`: such a key never
    /// becomes a path (no `..`, separators, NUL or upper case can reach the file system).
    pub fn key_to_path(&self, key: &str) -> Result<PathBuf, InvalidKey> {
        if !is_valid_session_key(key) {
            let reason = if !(8..=40).contains(&key.len()) {
                "length outside 8..=40"
            } else {
                "characters outside [a-z0-9]"
            };
            return Err(InvalidKey { reason });
        }
        let mut name = String::with_capacity(self.config.cookie_name().len() + key.len());
        name.push_str(self.config.cookie_name());
        name.push_str(key);
        Ok(self.dir.path().join(name))
    }

    // ---------------------------------------------------------------------------------------
    // Contract operations, in native errors.

    fn load_inner(&self, key: &str) -> Result<Option<SessionRecord>, FileError> {
        let Ok(path) = self.key_to_path(key) else {
            return Ok(None);
        };
        let Some(snapshot) = core::read(&path).map_err(|e| self.io("load", key, e))? else {
            return Ok(None);
        };
        match self.judge(key, snapshot, self.clock.now_utc()) {
            Judged::Live(record) => Ok(Some(record)),
            Judged::NoSession => Ok(None),
            Judged::Expired(identity) => {
                // Django deletes an expired file on load. (It then creates a new session; a
                // load here never creates anything.)
                self.remove_if_unchanged(&path, key, &identity)?;
                Ok(None)
            }
        }
    }

    fn exists_inner(&self, key: &str) -> Result<bool, FileError> {
        let Ok(path) = self.key_to_path(key) else {
            return Ok(false);
        };
        match std::fs::symlink_metadata(&path) {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(self.io("exists", key, e)),
        }
    }

    fn create_inner(&self, write: &SessionWrite) -> Result<String, FileError> {
        let key = write.record.session_key.as_str();
        let path = self.key_to_path(key)?;
        let temp = self.write_temp(key, write)?;
        // No empty placeholder is ever visible, and a taken name is left alone.
        match self
            .dir
            .place_new(temp, &path)
            .map_err(|e| self.io("create", key, e))?
        {
            Placed::Done => {}
            Placed::Taken | Placed::Missing => {
                return Err(FileError::AlreadyExists {
                    session: self.redact(key),
                });
            }
        }
        self.sync_dir("create", key)?;
        Ok(key.to_owned())
    }

    fn save_inner(&self, write: &SessionWrite) -> Result<String, FileError> {
        let key = write.record.session_key.as_str();
        let path = self.key_to_path(key)?;
        let temp = self.write_temp(key, write)?;
        self.replace_locked(&path, key, temp)?;
        Ok(key.to_owned())
    }

    fn save_if_unchanged_inner(
        &self,
        write: &SessionWrite,
        expected_data: &str,
    ) -> Result<ConditionalSave, FileError> {
        let key = write.record.session_key.as_str();
        let path = self.key_to_path(key)?;
        let io = |e| self.io("save", key, e);
        let mut locked = match self.take_reservation(&path, expected_data) {
            Some(locked) => locked,
            None => match core::lock(&path).map_err(io)? {
                Locked::File(locked) => locked,
                Locked::Missing | Locked::NotRegular => {
                    return Err(FileError::NotFound {
                        session: self.redact(key),
                    });
                }
            },
        };
        // Compare under the lock: nobody else replaces the file until it is released.
        let snapshot = locked.read().map_err(io)?;
        if let Some(conflict) = self.compare(key, Some(snapshot), expected_data)? {
            if let ConditionalSave::Conflict(current) = &conflict {
                self.reserve(path, current.session_data.to_string(), locked);
            }
            return Ok(conflict);
        }
        let temp = self.write_temp(key, write)?;
        let placed = self.dir.replace(&locked, temp, &path).map_err(io)?;
        drop(locked);
        match placed {
            Placed::Done => {}
            Placed::Missing | Placed::Taken => {
                return Err(FileError::NotFound {
                    session: self.redact(key),
                });
            }
        }
        self.sync_dir("save", key)?;
        Ok(ConditionalSave::Saved(key.to_owned()))
    }

    /// The reserved lock of `path`, if the writer it was kept for (the one expecting `data`)
    /// is back.
    fn take_reservation(&self, path: &Path, data: &str) -> Option<core::LockedFile> {
        let mut reservations = lock_ignoring_poison(&self.reservations);
        match reservations.get(path) {
            Some(reservation) if reservation.data == data => {
                reservations.remove(path).map(|r| r.locked)
            }
            _ => None,
        }
    }

    /// Keeps `locked` for the retry of a writer that will expect `data`, for at most
    /// [`HANDOFF_GRACE`]. If no thread can be started to end it, the lock is released now.
    fn reserve(&self, path: PathBuf, data: String, locked: core::LockedFile) {
        let id = self.next_reservation.fetch_add(1, Ordering::Relaxed);
        let reservations = Arc::downgrade(&self.reservations);
        let watched = path.clone();
        let expiry = thread::Builder::new()
            .name("sessionkit-file-handoff".into())
            .spawn(move || {
                thread::sleep(HANDOFF_GRACE);
                if let Some(reservations) = reservations.upgrade() {
                    let mut reservations = lock_ignoring_poison(&reservations);
                    if reservations.get(&watched).is_some_and(|r| r.id == id) {
                        reservations.remove(&watched);
                    }
                }
            });
        if expiry.is_ok() {
            let reservation = Reservation { id, data, locked };
            lock_ignoring_poison(&self.reservations).insert(path, reservation);
        }
    }

    fn delete_inner(&self, key: &str) -> Result<(), FileError> {
        let Ok(path) = self.key_to_path(key) else {
            // No file can have this name, so there is nothing to delete.
            return Ok(());
        };
        let io = |e| self.io("delete", key, e);
        // Under the file's lock, so a save holding it never swaps its data back in after the
        // delete (nor onto a file created anew under the same key).
        let removed = match core::lock(&path).map_err(io)? {
            Locked::Missing => false,
            Locked::NotRegular => core::remove(&path).map_err(io)?,
            Locked::File(locked) => {
                let removed = core::remove(&path).map_err(io)?;
                drop(locked);
                removed
            }
        };
        if removed {
            // A logout must survive a crash: make the unlink durable.
            self.sync_dir("delete", key)?;
        }
        Ok(())
    }

    fn clear_expired_inner(&self) -> Result<u64, FileError> {
        let now = self.clock.now_utc();
        let entries =
            std::fs::read_dir(self.dir.path()).map_err(|e| self.io("clear_expired", "", e))?;
        let (mut removed, mut failures) = (0_u64, 0_u64);
        let mut first_failure = None;
        let mut fail = |error: FileError| {
            failures += 1;
            first_failure.get_or_insert(error);
        };
        for entry in entries {
            let entry = match entry {
                Ok(entry) => entry,
                Err(e) => {
                    fail(self.io("clear_expired", "", e));
                    continue;
                }
            };
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if let Some(key) = self.session_key_of(name) {
                match self.sweep_session(key, now) {
                    Ok(true) => removed += 1,
                    Ok(false) => {}
                    Err(e) => fail(e),
                }
            } else if self.is_leftover_name(name)
                && let Err(e) = core::sweep_if_stale(&entry.path(), now)
            {
                fail(self.io("clear_expired (temporary file)", "", e));
            }
        }
        // No directory fsync: a removal undone by a crash brings back a file that is still
        // expired (or a stale temporary), which the next load or sweep removes again.
        match first_failure {
            None => Ok(removed),
            Some(first) => Err(FileError::Sweep {
                removed,
                failures,
                first: Box::new(first),
            }),
        }
    }

    // ---------------------------------------------------------------------------------------
    // Writing under the lock.

    /// Replaces the session file at `path` with `temp` under the file's writer lock. A file
    /// that is gone (or is not a session file) fails with `NotFound`, so an update never
    /// resurrects a session.
    fn replace_locked(&self, path: &Path, key: &str, temp: TempPath) -> Result<(), FileError> {
        let not_found = || FileError::NotFound {
            session: self.redact(key),
        };
        let locked = match core::lock(path).map_err(|e| self.io("save", key, e))? {
            Locked::File(locked) => locked,
            Locked::Missing | Locked::NotRegular => return Err(not_found()),
        };
        let placed = self
            .dir
            .replace(&locked, temp, path)
            .map_err(|e| self.io("save", key, e))?;
        drop(locked);
        match placed {
            Placed::Done => {}
            Placed::Missing | Placed::Taken => return Err(not_found()),
        }
        self.sync_dir("save", key)?;
        Ok(())
    }

    /// What a conditional save must answer without storing, judging the locked file: `None`
    /// if it holds `expected_data` (go ahead), a conflict with the stored record if it holds
    /// other data, `NotFound` if no live session is there.
    fn compare(
        &self,
        key: &str,
        snapshot: Option<Snapshot>,
        expected_data: &str,
    ) -> Result<Option<ConditionalSave>, FileError> {
        let judged = snapshot.map(|snapshot| self.judge(key, snapshot, self.clock.now_utc()));
        match judged {
            Some(Judged::Live(record)) if record.session_data.as_str() == expected_data => Ok(None),
            Some(Judged::Live(record)) => Ok(Some(ConditionalSave::Conflict(record))),
            Some(Judged::Expired(_) | Judged::NoSession) | None => Err(FileError::NotFound {
                session: self.redact(key),
            }),
        }
    }

    // ---------------------------------------------------------------------------------------
    // Expiry.

    /// What the file read for `key` is worth at `now`.
    fn judge(&self, key: &str, snapshot: Snapshot, now: DateTime<Utc>) -> Judged {
        let Snapshot {
            contents,
            mtime,
            identity,
        } = snapshot;
        match contents {
            Contents::Data(data) => match self.expiry_of(&data, mtime, now) {
                expire if expire > now => {
                    Judged::Live(SessionRecord::new(key, data, from_datetime(expire)))
                }
                _ => Judged::Expired(identity),
            },
            // Placeholders and unreadable files never load; they go once their modification
            // time is older than a session could live.
            Contents::Empty | Contents::Unreadable => {
                if expiry::expiry_date(mtime, None, self.config.cookie_age()) > now {
                    Judged::NoSession
                } else {
                    Judged::Expired(identity)
                }
            }
        }
    }

    /// When the session in `data`, last written at `mtime`, expires.
    ///
    /// Django's rule, `data["_session_expiry"] or (mtime + SESSION_COOKIE_AGE)`, through the
    /// codec's `get_expiry_date` (so host and engine agree), with one documented change: a
    /// numeric expiry counts seconds from `mtime` (Django's file backend treats it as an age
    /// that never runs out). Undecodable data (bad signature, garbage) is read by Django as
    /// `{}`, so it expires at `mtime + SESSION_COOKIE_AGE`.
    fn expiry_of(&self, data: &str, mtime: DateTime<Utc>, now: DateTime<Utc>) -> DateTime<Utc> {
        let cookie_age = self.config.cookie_age();
        match self.codec.decode(data, None, now.timestamp()) {
            Ok(session) => expiry::expiry_date(mtime, session.get(EXPIRY_KEY), cookie_age),
            Err(_) => expiry::expiry_date(mtime, None, cookie_age),
        }
    }

    /// The modification time to give a file written for `write`, so that the expiry judged
    /// from the file (`mtime + age`) is exactly the `expire_date` the host computed; `None`
    /// keeps the real time (an ISO expiry does not depend on the modification time).
    fn modification_for(&self, write: &SessionWrite) -> Option<SystemTime> {
        let stored = self.stored_expiry(write);
        if matches!(&stored, Some(Value::String(iso)) if parse_isoformat(iso).is_some()) {
            return None;
        }
        let cookie_age = self.config.cookie_age();
        let origin = DateTime::<Utc>::UNIX_EPOCH;
        let age: TimeDelta = expiry::expiry_date(origin, stored.as_ref(), cookie_age) - origin;
        // Saturate: an expire_date beyond the calendar must still read as far past/future (the
        // kernel clamps further, to what the file system can store).
        let modification = to_datetime(write.record.expire_date)
            .checked_sub_signed(age)
            .unwrap_or(if age > TimeDelta::zero() {
                DateTime::<Utc>::MIN_UTC
            } else {
                DateTime::<Utc>::MAX_UTC
            });
        core::system_time_of(modification)
    }

    /// The `_session_expiry` value of a session being written: from the plain JSON the host
    /// passes, else from the signed data.
    fn stored_expiry(&self, write: &SessionWrite) -> Option<Value> {
        let from_json = serde_json::from_str::<SessionMap>(&write.session_json);
        let session = match from_json {
            Ok(session) => session,
            Err(_) => {
                let now = self.clock.now_utc().timestamp();
                self.codec
                    .decode(&write.record.session_data, None, now)
                    .ok()?
            }
        };
        session.get(EXPIRY_KEY).cloned()
    }

    // ---------------------------------------------------------------------------------------
    // Files.

    /// Writes `write`'s data to a fresh temporary file next to the session file (mode 0600),
    /// with the modification time that carries its expiry, fsynced.
    fn write_temp(&self, key: &str, write: &SessionWrite) -> Result<TempPath, FileError> {
        let data = write.record.session_data.as_str();
        if data.len() as u64 > MAX_FILE_BYTES {
            return Err(FileError::TooLarge { len: data.len() });
        }
        if !data.is_ascii() {
            return Err(FileError::NotAscii);
        }
        let prefix = format!(".{}{key}{TEMP_MARKER}", self.config.cookie_name());
        self.dir
            .write_temp(&prefix, data.as_bytes(), self.modification_for(write))
            .map_err(|e| self.io("write", key, e))
    }

    /// Judges one session file for `clear_expired`; removes it if expired. `true` if removed.
    fn sweep_session(&self, key: &str, now: DateTime<Utc>) -> Result<bool, FileError> {
        let path = self.key_to_path(key)?;
        let Some(snapshot) = core::read(&path).map_err(|e| self.io("load", key, e))? else {
            return Ok(false);
        };
        match self.judge(key, snapshot, now) {
            Judged::Expired(identity) => self.remove_if_unchanged(&path, key, &identity),
            Judged::Live(_) | Judged::NoSession => Ok(false),
        }
    }

    /// Deletes the session file if it is still the version that was read (a save may have
    /// replaced it since), under the file's lock. `true` if removed.
    fn remove_if_unchanged(
        &self,
        path: &Path,
        key: &str,
        read: &Identity,
    ) -> Result<bool, FileError> {
        let io = |e| self.io("delete expired", key, e);
        match core::lock(path).map_err(io)? {
            Locked::File(locked) if locked.identity() == *read => {
                let removed = core::remove(path).map_err(io)?;
                drop(locked);
                Ok(removed)
            }
            Locked::File(_) | Locked::Missing | Locked::NotRegular => Ok(false),
        }
    }

    /// The key of a session file name (`SESSION_COOKIE_NAME` + a valid key), if it is one.
    fn session_key_of<'n>(&self, name: &'n str) -> Option<&'n str> {
        name.strip_prefix(self.config.cookie_name())
            .filter(|key| is_valid_session_key(key))
    }

    /// Whether `name` is something a write or an open left behind, swept once stale: a
    /// temporary file of a session write, ours (`.<file name>_out_…`) or Django's
    /// (`<file name>_out_…`), or the writability probe of earlier engine versions
    /// (`.sessionkit-probe…`).
    fn is_leftover_name(&self, name: &str) -> bool {
        if name.starts_with(LEGACY_PROBE_PREFIX) {
            return true;
        }
        let name = name.strip_prefix('.').unwrap_or(name);
        name.strip_prefix(self.config.cookie_name())
            .and_then(|rest| rest.split_once(TEMP_MARKER))
            .is_some_and(|(key, _)| is_valid_session_key(key))
    }

    fn sync_dir(&self, operation: &'static str, key: &str) -> Result<(), FileError> {
        self.dir.sync().map_err(|e| self.io(operation, key, e))
    }

    /// The file name of `key` cut short, for messages (never a whole key).
    fn redact(&self, key: &str) -> String {
        let shown: String = key.chars().take(6).collect();
        format!("{}{shown}…", self.config.cookie_name())
    }

    fn io(&self, operation: &'static str, key: &str, source: io::Error) -> FileError {
        let session = if key.is_empty() {
            "files".to_owned()
        } else {
            self.redact(key)
        };
        FileError::Io {
            operation,
            session,
            dir: self.dir.path().to_path_buf(),
            source,
        }
    }
}

impl SessionStore for FileStore {
    fn exists(&self, key: &str) -> Result<bool, StoreError> {
        self.exists_inner(key).map_err(to_store_error)
    }

    fn load(&self, key: &str) -> Result<Option<SessionRecord>, StoreError> {
        self.load_inner(key).map_err(to_store_error)
    }

    fn create(&self, write: SessionWrite) -> Result<String, StoreError> {
        self.create_inner(&write).map_err(to_store_error)
    }

    fn save(&self, write: SessionWrite) -> Result<String, StoreError> {
        self.save_inner(&write).map_err(to_store_error)
    }

    fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.delete_inner(key).map_err(to_store_error)
    }

    fn clear_expired(&self) -> Result<u64, StoreError> {
        self.clear_expired_inner().map_err(to_store_error)
    }

    fn save_if_unchanged(
        &self,
        write: SessionWrite,
        expected_data: &str,
    ) -> Result<ConditionalSave, StoreError> {
        self.save_if_unchanged_inner(&write, expected_data)
            .map_err(to_store_error)
    }
}

impl std::fmt::Debug for FileStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileStore")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// A settings error as the contract reports it: `Config`, naming the setting at fault.
impl From<ConfigError> for StoreError {
    fn from(error: ConfigError) -> Self {
        to_store_error(FileError::from(error))
    }
}

/// The guard of `mutex`, also after a thread panicked holding it (the map stays consistent:
/// every change to it is one insert or remove).
fn lock_ignoring_poison<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The one mapping from the store's failures to the contract's error.
fn to_store_error(error: FileError) -> StoreError {
    let kind = match &error {
        FileError::Config(_) => ErrorKind::Config,
        FileError::AlreadyExists { .. } => ErrorKind::AlreadyExists,
        FileError::NotFound { .. } => ErrorKind::NotFound,
        FileError::InvalidKey(_) | FileError::TooLarge { .. } | FileError::NotAscii => {
            ErrorKind::Other
        }
        FileError::Io { source, .. } => io_kind(source),
        FileError::Sweep { first, .. } => match first.as_ref() {
            FileError::Io { source, .. } => io_kind(source),
            _ => ErrorKind::Other,
        },
    };
    StoreError::new(kind, error.to_string())
}

fn io_kind(error: &io::Error) -> ErrorKind {
    use io::ErrorKind as Io;
    match error.kind() {
        Io::PermissionDenied | Io::ReadOnlyFilesystem | Io::NotADirectory => ErrorKind::Config,
        Io::StorageFull
        | Io::QuotaExceeded
        | Io::TimedOut
        | Io::Interrupted
        | Io::WouldBlock
        | Io::ResourceBusy
        | Io::StaleNetworkFileHandle => ErrorKind::Unavailable,
        _ => ErrorKind::Other,
    }
}

#[cfg(test)]
mod tests {
    use std::{fs, thread};

    use serde_json::json;

    use super::*;

    const SECRET: &str = "unit-test-secret";

    fn store() -> (tempfile::TempDir, FileStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::open(&FileConfig::new(dir.path(), SECRET)).unwrap();
        (dir, store)
    }

    /// The store as on a file system without `RENAME_EXCHANGE`.
    fn portable_store() -> (tempfile::TempDir, FileStore) {
        let (dir, store) = store();
        store.dir.disable_exchange();
        (dir, store)
    }

    fn write(store: &FileStore, key: &str, n: u64) -> SessionWrite {
        let map = json!({"n": n}).as_object().unwrap().clone();
        let now = Utc::now();
        let encoded = store.codec.encode(&map, now.timestamp()).unwrap();
        let expire = expiry::expiry_date(now, None, store.config.cookie_age());
        SessionWrite::new(
            SessionRecord::new(key, encoded.session_data, from_datetime(expire)),
            encoded.session_json,
        )
    }

    #[test]
    fn portable_update_fails_with_not_found_for_a_missing_file() {
        let (dir, store) = portable_store();
        let key = "abcdefgh12345678";
        let error = store.save_inner(&write(&store, key, 1)).unwrap_err();
        assert!(matches!(error, FileError::NotFound { .. }), "{error}");
        assert!(
            fs::read_dir(dir.path()).unwrap().next().is_none(),
            "nothing left behind"
        );
    }

    #[test]
    fn portable_update_replaces_the_content() {
        let (_dir, store) = portable_store();
        let key = "abcdefgh12345678";
        store.create_inner(&write(&store, key, 1)).unwrap();
        let second = write(&store, key, 2);
        store.save_inner(&second).unwrap();
        assert_eq!(store.load_inner(key).unwrap().unwrap(), second.record);
    }

    #[test]
    fn portable_update_racing_a_delete_in_one_process_never_resurrects() {
        let (dir, store) = portable_store();
        let store = Arc::new(store);
        for round in 0..100_u64 {
            let key = format!("race{round:0>28}");
            store.create_inner(&write(&store, &key, 0)).unwrap();
            let saver = {
                let (store, key) = (store.clone(), key.clone());
                let w = write(&store, &key, 1);
                thread::spawn(move || store.save_inner(&w))
            };
            store.delete_inner(&key).unwrap();
            if let Err(error) = saver.join().unwrap() {
                assert!(matches!(error, FileError::NotFound { .. }), "{error}");
            }
            assert!(
                !store.exists_inner(&key).unwrap(),
                "round {round}: resurrected"
            );
        }
        assert!(fs::read_dir(dir.path()).unwrap().next().is_none());
    }

    #[test]
    fn portable_conditional_save_compares_and_never_resurrects() {
        let (dir, store) = portable_store();
        let store = Arc::new(store);
        for round in 0..50_u64 {
            let key = format!("cond{round:0>28}");
            let loaded = write(&store, &key, 0);
            store.create_inner(&loaded).unwrap();
            let expected = loaded.record.session_data.to_string();
            let savers: Vec<_> = (1..=2)
                .map(|n| {
                    let (store, key, expected) = (store.clone(), key.clone(), expected.clone());
                    let w = write(&store, &key, n);
                    thread::spawn(move || store.save_if_unchanged_inner(&w, &expected))
                })
                .collect();
            let outcomes: Vec<_> = savers.into_iter().map(|s| s.join().unwrap()).collect();
            let saved = outcomes
                .iter()
                .filter(|o| matches!(o, Ok(ConditionalSave::Saved(_))))
                .count();
            assert_eq!(saved, 1, "round {round}: {outcomes:?}");
            store.delete_inner(&key).unwrap();
            let late = store.save_if_unchanged_inner(&write(&store, &key, 3), &expected);
            assert!(matches!(late, Err(FileError::NotFound { .. })), "{late:?}");
            assert!(
                !store.exists_inner(&key).unwrap(),
                "round {round}: resurrected"
            );
        }
        assert!(fs::read_dir(dir.path()).unwrap().next().is_none());
    }

    #[test]
    fn exchange_is_used_where_the_file_system_has_it() {
        // On Linux tmpfs/ext4/xfs/btrfs it is; elsewhere the portable path took over.
        let (_dir, store) = store();
        let key = "abcdefgh12345678";
        store.create_inner(&write(&store, key, 1)).unwrap();
        store.save_inner(&write(&store, key, 2)).unwrap();
        let used = !store.dir.exchange_unsupported();
        println!("RENAME_EXCHANGE available here: {used}");
        assert_eq!(
            store
                .codec
                .decode(
                    &store.load_inner(key).unwrap().unwrap().session_data,
                    None,
                    0
                )
                .unwrap()["n"],
            2
        );
    }

    #[test]
    fn leftover_names_are_recognised_and_never_session_names() {
        let (_dir, store) = store();
        let key = "abcdefgh12345678";
        for name in [
            format!(".sessionid{key}_out_x1y2z3"),
            format!("sessionid{key}_out_abc"),
        ] {
            assert!(store.is_leftover_name(&name), "{name}");
            assert_eq!(store.session_key_of(&name), None, "{name}");
        }
        // The writability probe of earlier engine versions is a leftover too.
        assert!(store.is_leftover_name(".sessionkit-probeAb12Cd"));
        for name in [
            "sessionid",
            ".sessionid_out_",
            "other_out_",
            "sessionkit-probe123",
            "sessionidAB_out_x",
        ] {
            assert!(!store.is_leftover_name(name), "{name}");
        }
        assert_eq!(store.session_key_of(&format!("sessionid{key}")), Some(key));
    }

    #[test]
    fn every_failure_maps_to_its_kind() {
        let io = |kind| FileError::Io {
            operation: "save",
            session: "sessionidabc…".into(),
            dir: PathBuf::from("/x"),
            source: io::Error::from(kind),
        };
        let cases = [
            (
                FileError::AlreadyExists {
                    session: "s".into(),
                },
                ErrorKind::AlreadyExists,
            ),
            (
                FileError::NotFound {
                    session: "s".into(),
                },
                ErrorKind::NotFound,
            ),
            (
                FileError::Config(ConfigError::NotAnObject),
                ErrorKind::Config,
            ),
            (FileError::TooLarge { len: 1 }, ErrorKind::Other),
            (io(io::ErrorKind::StorageFull), ErrorKind::Unavailable),
            (io(io::ErrorKind::PermissionDenied), ErrorKind::Config),
            (io(io::ErrorKind::NotFound), ErrorKind::Other),
        ];
        for (error, kind) in cases {
            assert_eq!(to_store_error(error).kind, kind);
        }
    }
}
