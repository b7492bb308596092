//! The file store: Django's file backend layout with crash-safe, exclusive writes.
//!
//! One file per session, named `SESSION_COOKIE_NAME + key`, holding exactly the signed
//! `session_data` string, so Django and sessionkit read each other's files. See the crate README
//! for the decisions (expiry judgement, integer expiries, write errors, concurrency).

use std::{
    collections::hash_map::RandomState,
    fs::{self, File},
    hash::BuildHasher,
    io::{self, Read, Write},
    path::{Path, PathBuf},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use chrono::{DateTime, TimeDelta, Utc};
use parking_lot::{Mutex, MutexGuard};
use serde_json::Value;
use sessionkit_codec::{
    SESSION_STORE_SALT, SessionMap,
    expiry::{self, Clock, EXPIRY_KEY, SystemClock},
    key::is_valid_session_key,
    signing::SessionCodec,
    time::{from_datetime, parse_isoformat, to_datetime},
};
use sessionkit_sdk::{ErrorKind, SessionRecord, SessionStore, SessionWrite, StoreError, Timestamp};
use tempfile::TempPath;

use crate::config::{ConfigError, FileConfig};

/// The largest session file the engine reads (4 MiB): a bigger file is not a session
/// (`load` gives `None` without reading it), and `create`/`save` refuse bigger data, so anything
/// stored can be read back.
pub const MAX_FILE_BYTES: u64 = 4 * 1024 * 1024;

/// How old a leftover temporary file must be before `clear_expired` removes it. A write holds
/// its temporary file for milliseconds; an hour-old one was left by a crash.
pub const STALE_TEMP_AGE: Duration = Duration::from_secs(60 * 60);

/// Marks a temporary file name, after the session file name it will replace (Django's `mkstemp`
/// prefix is `<file name>_out_`). `_` is outside the key alphabet, so a temporary name is never
/// a session file name.
const TEMP_MARKER: &str = "_out_";

/// Process-local lock stripes serialising renames and unlinks of the same key.
const LOCK_STRIPES: usize = 64;

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
    /// The directory, kept open to fsync it after renames and unlinks.
    dir: File,
    locks: Box<[Mutex<()>]>,
    hasher: RandomState,
    /// Set once `RENAME_EXCHANGE` turned out unsupported here (kernel or file system).
    #[cfg_attr(not(any(target_os = "linux", target_os = "android")), allow(dead_code))]
    exchange_unsupported: AtomicBool,
}

/// What the file holds, as far as a session is concerned.
enum Contents {
    /// Django's placeholder (an empty file): no session yet.
    Empty,
    /// ASCII contents: the session data string (decodable or not).
    Data(String),
    /// A regular file that cannot be a session: bigger than [`MAX_FILE_BYTES`] or not ASCII.
    Unreadable,
}

/// One read of a session file.
struct Snapshot {
    contents: Contents,
    mtime: DateTime<Utc>,
    identity: Identity,
}

/// What identifies the version of a file that was read, so an expired file is only deleted if a
/// concurrent save has not replaced it meanwhile.
#[derive(PartialEq, Eq)]
struct Identity {
    #[cfg(unix)]
    dev_ino: (u64, u64),
    modified: Option<SystemTime>,
    len: u64,
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
    /// Opens the store described by `config`: checks the directory exists, is a directory, is
    /// not writable by every user without the sticky bit, and can be written.
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
        let path = config.directory().to_path_buf();
        let directory_error = |source| ConfigError::Directory {
            path: path.clone(),
            source,
        };
        let meta = match fs::metadata(&path) {
            Ok(meta) => meta,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(ConfigError::MissingDirectory { path: path.clone() }.into());
            }
            Err(e) => return Err(directory_error(e).into()),
        };
        if !meta.is_dir() {
            return Err(ConfigError::NotADirectory { path: path.clone() }.into());
        }
        check_directory_mode(&path, &meta)?;
        // Probe writability now rather than at the first save.
        tempfile::Builder::new()
            .prefix(".sessionkit-probe")
            .tempfile_in(&path)
            .map_err(directory_error)?;
        let dir = File::open(&path).map_err(directory_error)?;

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
            locks: (0..LOCK_STRIPES).map(|_| Mutex::new(())).collect(),
            hasher: Default::default(),
            exchange_unsupported: AtomicBool::new(false),
        })
    }

    /// The same store judging expiry with `clock` instead of the system clock (tests, and
    /// hosts that inject one clock everywhere).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
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
        Ok(self.config.directory().join(name))
    }

    // ---------------------------------------------------------------------------------------
    // Contract operations, in native errors.

    fn load_inner(&self, key: &str) -> Result<Option<SessionRecord>, FileError> {
        let Ok(path) = self.key_to_path(key) else {
            return Ok(None);
        };
        let Some(snapshot) = self.read(&path, key)? else {
            return Ok(None);
        };
        let Contents::Data(data) = snapshot.contents else {
            // A placeholder or an unreadable file is no session; clear_expired ages it out.
            return Ok(None);
        };
        let now = self.clock.now_utc();
        match self.expiry_of(&data, snapshot.mtime, now) {
            expire if expire > now => {
                Ok(Some(SessionRecord::new(key, data, from_datetime(expire))))
            }
            _ => {
                // Expired: Django deletes the file on load. (It then creates a new session; a
                // load here never creates anything.)
                self.remove_if_unchanged(&path, key, &snapshot.identity)?;
                Ok(None)
            }
        }
    }

    fn exists_inner(&self, key: &str) -> Result<bool, FileError> {
        let Ok(path) = self.key_to_path(key) else {
            return Ok(false);
        };
        match fs::symlink_metadata(&path) {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(self.io("exists", key, e)),
        }
    }

    fn create_inner(&self, write: &SessionWrite) -> Result<String, FileError> {
        let key = write.record.session_key.as_str();
        let path = self.key_to_path(key)?;
        let temp = self.write_temp(key, write)?;
        // rename(RENAME_NOREPLACE), or link+unlink: fails if the name is taken, and the file
        // appears with its whole content at once (no empty placeholder is ever visible).
        if let Err(e) = temp.persist_noclobber(&path) {
            return Err(if e.error.kind() == io::ErrorKind::AlreadyExists {
                FileError::AlreadyExists {
                    session: self.redact(key),
                }
            } else {
                self.io("create", key, e.error)
            });
        }
        self.sync_dir("create", key)?;
        Ok(key.to_owned())
    }

    fn save_inner(&self, write: &SessionWrite) -> Result<String, FileError> {
        let key = write.record.session_key.as_str();
        let path = self.key_to_path(key)?;
        let temp = self.write_temp(key, write)?;
        {
            let _guard = self.lock(key);
            self.replace_existing(temp, &path, key)?;
        }
        self.sync_dir("save", key)?;
        Ok(key.to_owned())
    }

    fn delete_inner(&self, key: &str) -> Result<(), FileError> {
        let Ok(path) = self.key_to_path(key) else {
            // No file can have this name, so there is nothing to delete.
            return Ok(());
        };
        let removed = {
            let _guard = self.lock(key);
            match fs::remove_file(&path) {
                Ok(()) => true,
                Err(e) if e.kind() == io::ErrorKind::NotFound => false,
                Err(e) => return Err(self.io("delete", key, e)),
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
        let directory = self.config.directory();
        let entries = fs::read_dir(directory).map_err(|e| self.io("clear_expired", "", e))?;
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
            } else if self.is_temp_name(name)
                && let Err(e) = self.sweep_temp(&entry.path(), now)
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
    // Expiry.

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
        system_time_of(modification)
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

    /// Reads the session file at `path`; `None` if there is none (or it is not a regular file).
    fn read(&self, path: &Path, key: &str) -> Result<Option<Snapshot>, FileError> {
        let mut file = match open_no_follow(path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound || is_symlink_loop(&e) => {
                return Ok(None);
            }
            Err(e) => return Err(self.io("load", key, e)),
        };
        let meta = file.metadata().map_err(|e| self.io("load", key, e))?;
        if !meta.is_file() {
            return Ok(None);
        }
        let identity = Identity::of(&meta);
        let mtime = meta
            .modified()
            .map(datetime_of)
            .unwrap_or(DateTime::<Utc>::UNIX_EPOCH);
        if meta.len() > MAX_FILE_BYTES {
            return Ok(Some(Snapshot {
                contents: Contents::Unreadable,
                mtime,
                identity,
            }));
        }
        // `len` is only a hint (the inode cannot change under an open fd, but be strict anyway).
        let capacity = usize::try_from(meta.len()).unwrap_or(0);
        let mut bytes = Vec::with_capacity(capacity);
        (&mut file)
            .take(MAX_FILE_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| self.io("load", key, e))?;
        let contents = if bytes.is_empty() {
            Contents::Empty
        } else if bytes.len() as u64 > MAX_FILE_BYTES || !bytes.is_ascii() {
            Contents::Unreadable
        } else {
            match String::from_utf8(bytes) {
                Ok(data) => Contents::Data(data),
                // Unreachable: ASCII is UTF-8. Treated as unreadable rather than unwrapped.
                Err(_) => Contents::Unreadable,
            }
        };
        Ok(Some(Snapshot {
            contents,
            mtime,
            identity,
        }))
    }

    /// Writes `write`'s data to a fresh temporary file next to the session file (mode 0600),
    /// sets its modification time and fsyncs it.
    fn write_temp(&self, key: &str, write: &SessionWrite) -> Result<TempPath, FileError> {
        let data = write.record.session_data.as_str();
        if data.len() as u64 > MAX_FILE_BYTES {
            return Err(FileError::TooLarge { len: data.len() });
        }
        if !data.is_ascii() {
            return Err(FileError::NotAscii);
        }
        let modification = self.modification_for(write);
        let prefix = format!(".{}{key}{TEMP_MARKER}", self.config.cookie_name());
        let mut temp = tempfile::Builder::new()
            .prefix(&prefix)
            .tempfile_in(self.config.directory())
            .map_err(|e| self.io("write", key, e))?;
        let result = (|| {
            temp.write_all(data.as_bytes())?;
            if let Some(modification) = modification {
                temp.as_file().set_modified(modification)?;
            }
            temp.as_file().sync_all()
        })();
        result.map_err(|e| self.io("write", key, e))?;
        Ok(temp.into_temp_path())
    }

    /// Moves `temp` over the existing session file at `path`, failing with `NotFound` (and
    /// storing nothing) if there is no such file. Call with the key's lock held.
    fn replace_existing(&self, temp: TempPath, path: &Path, key: &str) -> Result<(), FileError> {
        #[cfg(any(target_os = "linux", target_os = "android"))]
        if !self.exchange_unsupported.load(Ordering::Relaxed) {
            use rustix::{
                fs::{CWD, RenameFlags, renameat_with},
                io::Errno,
            };
            // Swap the two names atomically: this fails when the session file is gone, even
            // if another process deleted it a moment ago, so an update never resurrects.
            match renameat_with(CWD, &*temp, CWD, path, RenameFlags::EXCHANGE) {
                Ok(()) => {
                    // `temp` now names the old content; removing it cannot fail in a way that
                    // matters (a leftover is swept by clear_expired).
                    let _ = temp.close();
                    return Ok(());
                }
                Err(Errno::NOENT) => {
                    return Err(FileError::NotFound {
                        session: self.redact(key),
                    });
                }
                Err(Errno::INVAL | Errno::NOSYS | Errno::OPNOTSUPP) => {
                    self.exchange_unsupported.store(true, Ordering::Relaxed);
                }
                Err(e) => return Err(self.io("save", key, e.into())),
            }
        }
        self.replace_existing_by_rename(temp, path, key)
    }

    /// The portable update: check the file exists, then rename over it. The key's lock makes
    /// the pair atomic against deletes in this process; across processes a delete between the
    /// check and the rename is lost (Django's promise: last rename wins).
    fn replace_existing_by_rename(
        &self,
        temp: TempPath,
        path: &Path,
        key: &str,
    ) -> Result<(), FileError> {
        match fs::symlink_metadata(path) {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(FileError::NotFound {
                    session: self.redact(key),
                });
            }
            Err(e) => return Err(self.io("save", key, e)),
        }
        temp.persist(path)
            .map_err(|e| self.io("save", key, e.error))
    }

    /// Judges one session file for `clear_expired`; removes it if expired. `true` if removed.
    fn sweep_session(&self, key: &str, now: DateTime<Utc>) -> Result<bool, FileError> {
        let path = self.key_to_path(key)?;
        let Some(snapshot) = self.read(&path, key)? else {
            return Ok(false);
        };
        let expire = match &snapshot.contents {
            Contents::Data(data) => self.expiry_of(data, snapshot.mtime, now),
            // Placeholders and unreadable files never load; they go once their modification
            // time is older than a session could live.
            Contents::Empty | Contents::Unreadable => {
                expiry::expiry_date(snapshot.mtime, None, self.config.cookie_age())
            }
        };
        if expire > now {
            return Ok(false);
        }
        self.remove_if_unchanged(&path, key, &snapshot.identity)
    }

    /// Removes a leftover temporary file older than [`STALE_TEMP_AGE`]. `true` if removed.
    fn sweep_temp(&self, path: &Path, now: DateTime<Utc>) -> io::Result<bool> {
        let meta = match fs::symlink_metadata(path) {
            Ok(meta) => meta,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(e),
        };
        let Ok(modified) = meta.modified() else {
            return Ok(false);
        };
        let stale = TimeDelta::from_std(STALE_TEMP_AGE).unwrap_or(TimeDelta::MAX);
        let stale_from = datetime_of(modified).checked_add_signed(stale);
        if !meta.is_file() || stale_from.is_none_or(|from| from > now) {
            return Ok(false);
        }
        match fs::remove_file(path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Deletes the session file if it is still the version that was read (a save may have
    /// replaced it since). `true` if removed.
    fn remove_if_unchanged(
        &self,
        path: &Path,
        key: &str,
        read: &Identity,
    ) -> Result<bool, FileError> {
        let removed = {
            let _guard = self.lock(key);
            match fs::symlink_metadata(path) {
                Ok(meta) if Identity::of(&meta) == *read => {}
                Ok(_) => return Ok(false),
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
                Err(e) => return Err(self.io("delete expired", key, e)),
            }
            match fs::remove_file(path) {
                Ok(()) => true,
                Err(e) if e.kind() == io::ErrorKind::NotFound => false,
                Err(e) => return Err(self.io("delete expired", key, e)),
            }
        };
        Ok(removed)
    }

    /// The key of a session file name (`SESSION_COOKIE_NAME` + a valid key), if it is one.
    fn session_key_of<'n>(&self, name: &'n str) -> Option<&'n str> {
        name.strip_prefix(self.config.cookie_name())
            .filter(|key| is_valid_session_key(key))
    }

    /// Whether `name` is a temporary file of a session write: ours (`.<file name>_out_…`) or
    /// Django's (`<file name>_out_…`).
    fn is_temp_name(&self, name: &str) -> bool {
        let name = name.strip_prefix('.').unwrap_or(name);
        name.strip_prefix(self.config.cookie_name())
            .and_then(|rest| rest.split_once(TEMP_MARKER))
            .is_some_and(|(key, _)| is_valid_session_key(key))
    }

    fn sync_dir(&self, operation: &'static str, key: &str) -> Result<(), FileError> {
        self.dir.sync_all().map_err(|e| self.io(operation, key, e))
    }

    fn lock(&self, key: &str) -> MutexGuard<'_, ()> {
        // The modulo keeps the index below the stripe count, so it always fits a usize.
        let stripe = (self.hasher.hash_one(key) % self.locks.len() as u64) as usize;
        self.locks[stripe].lock()
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
            dir: self.config.directory().to_path_buf(),
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
}

impl std::fmt::Debug for FileStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileStore")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// The one mapping from the store's failures to the contract's error.
/// A settings error as the contract reports it: `Config`, naming the setting at fault.
impl From<ConfigError> for StoreError {
    fn from(error: ConfigError) -> Self {
        to_store_error(FileError::from(error))
    }
}

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

impl Identity {
    fn of(meta: &fs::Metadata) -> Self {
        #[cfg(unix)]
        use std::os::unix::fs::MetadataExt;
        Self {
            #[cfg(unix)]
            dev_ino: (meta.dev(), meta.ino()),
            modified: meta.modified().ok(),
            len: meta.len(),
        }
    }
}

/// Refuses a directory that every user may write without the sticky bit (anyone could replace
/// or remove session files) and warns about one other users may list (file names are session
/// keys, as in Django's default of the system temp dir).
fn check_directory_mode(path: &Path, meta: &fs::Metadata) -> Result<(), ConfigError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode();
        if mode & 0o002 != 0 && mode & 0o1000 == 0 {
            return Err(ConfigError::UnsafeDirectory {
                path: path.to_path_buf(),
                reason: "is writable by every user and has no sticky bit: anyone could replace \
                         or remove session files (use a private directory, mode 0700)",
            });
        }
        if mode & 0o044 != 0 {
            tracing::warn!(
                target: "sessionkit::security",
                directory = %path.display(),
                "session directory can be listed by other users, and session file names are \
                 session keys; set SESSION_FILE_PATH to a private directory (mode 0700)"
            );
        }
    }
    #[cfg(not(unix))]
    let _ = (path, meta);
    Ok(())
}

/// Opens `path` for reading without following a symlink (and without blocking on a FIFO).
fn open_no_follow(path: &Path) -> io::Result<File> {
    let mut options = fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        let flags = rustix::fs::OFlags::NOFOLLOW | rustix::fs::OFlags::NONBLOCK;
        // The flag bits are small positive constants, so they fit an i32.
        options.custom_flags(flags.bits() as i32);
    }
    options.open(path)
}

fn is_symlink_loop(error: &io::Error) -> bool {
    #[cfg(unix)]
    {
        rustix::io::Errno::from_io_error(error) == Some(rustix::io::Errno::LOOP)
    }
    #[cfg(not(unix))]
    {
        let _ = error;
        false
    }
}

/// A file time as a UTC datetime (saturating; never panics on odd times).
fn datetime_of(time: SystemTime) -> DateTime<Utc> {
    let micros = match time.duration_since(UNIX_EPOCH) {
        Ok(after) => i64::try_from(after.as_micros()).unwrap_or(i64::MAX),
        Err(before) => i64::try_from(before.duration().as_micros()).map_or(i64::MIN, |m| -m),
    };
    to_datetime(Timestamp::from_micros(micros))
}

/// A UTC datetime as a file time, if the platform can represent it.
fn system_time_of(time: DateTime<Utc>) -> Option<SystemTime> {
    let micros = from_datetime(time).micros;
    let offset = Duration::from_micros(micros.unsigned_abs());
    if micros >= 0 {
        UNIX_EPOCH.checked_add(offset)
    } else {
        UNIX_EPOCH.checked_sub(offset)
    }
}

#[cfg(test)]
mod tests {
    use std::thread;

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
        store.exchange_unsupported.store(true, Ordering::Relaxed);
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
    fn exchange_is_used_where_the_file_system_has_it() {
        // On Linux tmpfs/ext4/xfs/btrfs it is; elsewhere the portable path took over.
        let (_dir, store) = store();
        let key = "abcdefgh12345678";
        store.create_inner(&write(&store, key, 1)).unwrap();
        store.save_inner(&write(&store, key, 2)).unwrap();
        let used = !store.exchange_unsupported.load(Ordering::Relaxed);
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
    fn temporary_names_are_recognised_and_never_session_names() {
        let (_dir, store) = store();
        let key = "abcdefgh12345678";
        for name in [
            format!(".sessionid{key}_out_x1y2z3"),
            format!("sessionid{key}_out_abc"),
        ] {
            assert!(store.is_temp_name(&name), "{name}");
            assert_eq!(store.session_key_of(&name), None, "{name}");
        }
        for name in [
            "sessionid",
            ".sessionid_out_",
            "other_out_",
            ".sessionkit-probe123",
            "sessionidAB_out_x",
        ] {
            assert!(!store.is_temp_name(name), "{name}");
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
