//! The file-system primitives the file store is made of: opening the session directory safely,
//! reading a session file without following links, writing a temporary file durably, placing
//! it (without replacing, or swapping it in), the per-file writer lock, and sweeping leftovers.
//!
//! Nothing here knows about session data or expiry: that is `store.rs`, which maps these
//! `io::Error`s into its own error with the session's (redacted) name.

use std::{
    fs::{self, File},
    io::{self, Read, Seek, SeekFrom, Write},
    path::{Path, PathBuf},
    sync::atomic::{AtomicBool, AtomicU64, Ordering},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use chrono::{DateTime, TimeDelta, Utc};
use sessionkit_codec::time::{from_datetime, to_datetime};
use sessionkit_group_commit::{BatchPanicked, SyncBarrier, SyncFailed};
use sessionkit_sdk::Timestamp;
use tempfile::TempPath;

use crate::config::{ConfigError, Durability};

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
pub(crate) const TEMP_MARKER: &str = "_out_";

/// The name prefix of the writability probe that earlier engine versions created (and a
/// crash during `open` could leave behind). The engine no longer writes one; `clear_expired`
/// sweeps old leftovers like stale temporaries.
pub(crate) const LEGACY_PROBE_PREFIX: &str = ".sessionkit-probe";

/// The name of the private directory the engine uses when `SESSION_FILE_PATH` is not set:
/// `<system temp dir>/sessionkit-sessions-<uid>`, mode 0700.
pub(crate) const DEFAULT_DIRECTORY_PREFIX: &str = "sessionkit-sessions-";

/// How many times a writer re-opens a session file that was replaced while it waited for the
/// file's lock. Each retry means another writer finished, so this only bounds a livelock.
const MAX_LOCK_ATTEMPTS: usize = 1000;

/// What the file holds, as far as a session is concerned.
pub(crate) enum Contents {
    /// Django's placeholder (an empty file): no session yet.
    Empty,
    /// ASCII contents: the session data string (decodable or not).
    Data(String),
    /// A regular file that cannot be a session: bigger than [`MAX_FILE_BYTES`] or not ASCII.
    Unreadable,
}

/// One read of a session file.
pub(crate) struct Snapshot {
    pub(crate) contents: Contents,
    pub(crate) mtime: DateTime<Utc>,
    pub(crate) identity: Identity,
}

/// What identifies the version of a file that was read, so an expired file is only deleted if a
/// concurrent save has not replaced it meanwhile.
#[derive(PartialEq, Eq)]
pub(crate) struct Identity {
    #[cfg(unix)]
    dev_ino: (u64, u64),
    modified: Option<SystemTime>,
    len: u64,
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

/// Whether two stats are of the same file (inode), whatever its times.
fn same_file(a: &fs::Metadata, b: &fs::Metadata) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        (a.dev(), a.ino()) == (b.dev(), b.ino())
    }
    #[cfg(not(unix))]
    {
        Identity::of(a) == Identity::of(b)
    }
}

/// What a writer found at a session file's path once it held the file's lock.
pub(crate) enum Locked {
    /// A regular file, locked, and still the file at the path.
    File(LockedFile),
    /// Nothing is at the path (deleted).
    Missing,
    /// Something that is not a regular file (a symlink, a directory, a FIFO): never a session.
    NotRegular,
}

/// A session file under its exclusive writer lock (`flock`), verified to be the file at its
/// path. Every writer that replaces or removes a session file holds this lock on the file it
/// replaces or removes, so "check, then replace" is atomic against every other writer of this
/// engine, in this process or another. Dropping it releases the lock.
pub(crate) struct LockedFile {
    file: File,
    meta: fs::Metadata,
}

impl LockedFile {
    /// Reads the locked file's contents (from the start, however often it is read).
    pub(crate) fn read(&mut self) -> io::Result<Snapshot> {
        self.file.seek(SeekFrom::Start(0))?;
        read_open(&mut self.file, &self.meta)
    }

    /// Which version of the file is locked.
    pub(crate) fn identity(&self) -> Identity {
        Identity::of(&self.meta)
    }
}

/// Takes the writer lock of the session file at `path` (waiting while another writer holds
/// it), and makes sure the locked file is still the one at the path: a file replaced while this
/// writer waited is let go and the new one locked instead.
pub(crate) fn lock(path: &Path) -> io::Result<Locked> {
    for _ in 0..MAX_LOCK_ATTEMPTS {
        let file = match open_no_follow(path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Locked::Missing),
            Err(e) if is_symlink_loop(&e) => return Ok(Locked::NotRegular),
            Err(e) => return Err(e),
        };
        if !file.metadata()?.is_file() {
            return Ok(Locked::NotRegular);
        }
        // Held only for a compare and a rename (no fsync inside), and released by the kernel
        // if its holder dies.
        file.lock()?;
        let meta = file.metadata()?;
        match fs::symlink_metadata(path) {
            Ok(now) if same_file(&now, &meta) => {
                return Ok(Locked::File(LockedFile { file, meta }));
            }
            // Replaced while we waited: the lock we hold is on a file nobody reads any more.
            Ok(_) => continue,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Locked::Missing),
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::new(
        io::ErrorKind::ResourceBusy,
        format!("the file was replaced {MAX_LOCK_ATTEMPTS} times while waiting for its lock"),
    ))
}

/// Where a temporary file went.
pub(crate) enum Placed {
    /// It is the session file now.
    Done,
    /// `place_new`: the name is taken. Nothing changed.
    Taken,
    /// `replace`: there is no session file to replace (deleted). Nothing changed.
    Missing,
}

/// The session directory: its path (absolute), and a handle kept open to fsync it.
pub(crate) struct SessionDir {
    path: PathBuf,
    handle: File,
    /// Set once `RENAME_EXCHANGE` turned out unsupported here (kernel or file system).
    exchange_unsupported: AtomicBool,
    /// Whether concurrent writers share directory fsyncs.
    durability: Durability,
    /// Where concurrent writers wait for the directory fsync that covers their rename.
    barrier: SyncBarrier<io::Error>,
    /// Directory fsyncs run so far (what group commit saves is writes minus these).
    syncs: AtomicU64,
}

impl SessionDir {
    /// Opens the directory at `path` after checking it is safe to keep sessions in.
    ///
    /// `private_default`: the engine's own default directory, created here (mode 0700) if
    /// missing, and refused unless it is a real directory owned by this user with no access for
    /// anyone else. A configured directory must exist; one writable by every user without the
    /// sticky bit is refused, and one other users can list or write is a warning.
    ///
    /// Writability is checked with `access(2)`, never by creating a file, so a crash here leaves
    /// nothing behind.
    pub(crate) fn open(
        path: PathBuf,
        private_default: bool,
        durability: Durability,
    ) -> Result<Self, ConfigError> {
        let directory_error = |source| ConfigError::Directory {
            path: path.clone(),
            source,
        };
        if private_default {
            create_private(&path).map_err(directory_error)?;
        }
        let handle = match open_directory(&path, private_default) {
            Ok(handle) => handle,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(ConfigError::MissingDirectory { path });
            }
            Err(e) if e.kind() == io::ErrorKind::NotADirectory || is_symlink_loop(&e) => {
                return Err(ConfigError::NotADirectory { path });
            }
            Err(e) => return Err(directory_error(e)),
        };
        let meta = handle.metadata().map_err(directory_error)?;
        if !meta.is_dir() {
            return Err(ConfigError::NotADirectory { path });
        }
        if private_default {
            check_private(&path, &meta)?;
        } else {
            check_configured(&path, &meta)?;
        }
        check_writable(&handle).map_err(directory_error)?;
        Ok(Self {
            path,
            handle,
            exchange_unsupported: AtomicBool::new(false),
            durability,
            barrier: SyncBarrier::new(),
            syncs: AtomicU64::new(0),
        })
    }

    /// The directory's absolute path.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Makes the renames and unlinks this thread did so far durable: returns once a directory
    /// fsync that started after the call has finished. With group commit, a caller that finds
    /// an fsync running waits for the next one, which one of the waiting callers runs for all
    /// of them (so a lone writer runs its own at once, as [`Durability::PerWrite`] does).
    pub(crate) fn sync(&self) -> io::Result<()> {
        match self.durability {
            Durability::PerWrite => self.sync_now(),
            Durability::GroupCommit => self.barrier.wait(|| self.sync_now()).map_err(|e| match e {
                // The fsync's own error, kind and message, for every writer it covered.
                SyncFailed::Failed(shared) => io::Error::new(shared.kind(), shared),
                SyncFailed::Panicked => io::Error::other(BatchPanicked),
            }),
        }
    }

    /// Directory fsyncs run so far.
    pub(crate) fn syncs(&self) -> u64 {
        self.syncs.load(Ordering::Relaxed)
    }

    fn sync_now(&self) -> io::Result<()> {
        self.syncs.fetch_add(1, Ordering::Relaxed);
        self.handle.sync_all()
    }

    /// Writes `data` to a fresh temporary file named `prefix…` in the directory (mode 0600),
    /// sets its modification time and fsyncs it. The file is removed if dropped unplaced.
    pub(crate) fn write_temp(
        &self,
        prefix: &str,
        data: &[u8],
        modified: Option<SystemTime>,
    ) -> io::Result<TempPath> {
        let mut temp = tempfile::Builder::new()
            .prefix(prefix)
            .tempfile_in(&self.path)?;
        temp.write_all(data)?;
        if let Some(modified) = modified {
            temp.as_file().set_modified(modified)?;
        }
        // Each writer's own fsync, concurrently with the others': measured against one
        // `syncfs` for many temporaries (issue 11) it was no faster here, and `syncfs` writes
        // out every dirty file of the file system, not only sessions.
        temp.as_file().sync_all()?;
        Ok(temp.into_temp_path())
    }

    /// Renames `temp` to `path` only if nothing is there (`RENAME_NOREPLACE`, or link +
    /// unlink): the file appears with its whole content at once, and a taken name is left alone.
    pub(crate) fn place_new(&self, temp: TempPath, path: &Path) -> io::Result<Placed> {
        match temp.persist_noclobber(path) {
            Ok(()) => Ok(Placed::Done),
            Err(e) if e.error.kind() == io::ErrorKind::AlreadyExists => Ok(Placed::Taken),
            Err(e) => Err(e.error),
        }
    }

    /// Moves `temp` over the session file at `path`, which the caller holds `locked`; `Missing`
    /// (storing nothing) if the file is gone.
    ///
    /// On Linux the two names are swapped atomically (`RENAME_EXCHANGE`), which fails when the
    /// session file is gone even if a process that takes no lock (Django) deleted it a moment
    /// ago, so an update never resurrects. Elsewhere it is a plain rename over the file, which
    /// the lock makes safe against this engine's deletes only.
    pub(crate) fn replace(
        &self,
        locked: &LockedFile,
        temp: TempPath,
        path: &Path,
    ) -> io::Result<Placed> {
        let _ = locked;
        #[cfg(any(target_os = "linux", target_os = "android"))]
        if !self.exchange_unsupported.load(Ordering::Relaxed) {
            use rustix::{
                fs::{CWD, RenameFlags, renameat_with},
                io::Errno,
            };
            match renameat_with(CWD, &*temp, CWD, path, RenameFlags::EXCHANGE) {
                Ok(()) => {
                    // `temp` now names the old content; a failure to remove it leaves a
                    // temporary that clear_expired sweeps.
                    let _ = temp.close();
                    return Ok(Placed::Done);
                }
                Err(Errno::NOENT) => return Ok(Placed::Missing),
                Err(Errno::INVAL | Errno::NOSYS | Errno::OPNOTSUPP) => {
                    self.exchange_unsupported.store(true, Ordering::Relaxed);
                }
                Err(e) => return Err(e.into()),
            }
        }
        match fs::symlink_metadata(path) {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Placed::Missing),
            Err(e) => return Err(e),
        }
        temp.persist(path).map_err(|e| e.error)?;
        Ok(Placed::Done)
    }

    /// Makes this directory behave as on a file system without `RENAME_EXCHANGE`.
    #[cfg(test)]
    pub(crate) fn disable_exchange(&self) {
        self.exchange_unsupported.store(true, Ordering::Relaxed);
    }

    /// Whether `RENAME_EXCHANGE` was found unsupported here.
    #[cfg(test)]
    pub(crate) fn exchange_unsupported(&self) -> bool {
        self.exchange_unsupported.load(Ordering::Relaxed)
    }
}

/// The default private directory: `<system temp dir>/sessionkit-sessions-<uid>`.
pub(crate) fn default_directory() -> PathBuf {
    #[cfg(unix)]
    let name = format!(
        "{DEFAULT_DIRECTORY_PREFIX}{}",
        rustix::process::geteuid().as_raw()
    );
    #[cfg(not(unix))]
    let name = DEFAULT_DIRECTORY_PREFIX.trim_end_matches('-').to_owned();
    std::env::temp_dir().join(name)
}

/// Reads the session file at `path`; `None` if there is none (or it is not a regular file).
pub(crate) fn read(path: &Path) -> io::Result<Option<Snapshot>> {
    let mut file = match open_no_follow(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound || is_symlink_loop(&e) => return Ok(None),
        Err(e) => return Err(e),
    };
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Ok(None);
    }
    read_open(&mut file, &meta).map(Some)
}

/// Reads an open regular file whose stat is `meta`, at most [`MAX_FILE_BYTES`] of it.
fn read_open(file: &mut File, meta: &fs::Metadata) -> io::Result<Snapshot> {
    let identity = Identity::of(meta);
    let mtime = meta
        .modified()
        .map(datetime_of)
        .unwrap_or(DateTime::<Utc>::UNIX_EPOCH);
    if meta.len() > MAX_FILE_BYTES {
        return Ok(Snapshot {
            contents: Contents::Unreadable,
            mtime,
            identity,
        });
    }
    // `len` is only a hint (the inode cannot change under an open fd, but be strict anyway).
    let capacity = usize::try_from(meta.len()).unwrap_or(0);
    let mut bytes = Vec::with_capacity(capacity);
    file.take(MAX_FILE_BYTES + 1).read_to_end(&mut bytes)?;
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
    Ok(Snapshot {
        contents,
        mtime,
        identity,
    })
}

/// Removes the file at `path`; `false` if it was already gone.
pub(crate) fn remove(path: &Path) -> io::Result<bool> {
    match fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

/// Removes a leftover temporary (or legacy probe) file older than [`STALE_TEMP_AGE`] at `now`.
/// `true` if removed.
pub(crate) fn sweep_if_stale(path: &Path, now: DateTime<Utc>) -> io::Result<bool> {
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
    remove(path)
}

/// Creates the default directory with mode 0700 if it does not exist (the mode is exact
/// whatever the umask, which can only take bits away).
fn create_private(path: &Path) -> io::Result<()> {
    let mut builder = fs::DirBuilder::new();
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    match builder.create(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

/// Opens a directory to check and fsync it; `no_follow` refuses a symlink in its place (the
/// default directory lives in the shared temp dir, where anyone may plant one).
fn open_directory(path: &Path, no_follow: bool) -> io::Result<File> {
    let mut options = fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        let mut flags = rustix::fs::OFlags::DIRECTORY;
        if no_follow {
            flags |= rustix::fs::OFlags::NOFOLLOW;
        }
        // The flag bits are small positive constants, so they fit an i32.
        options.custom_flags(flags.bits() as i32);
    }
    #[cfg(not(unix))]
    let _ = no_follow;
    options.open(path)
}

/// The default directory must be ours and closed to everyone else: anything else at that
/// well-known name in the shared temp dir was put there by someone else (or loosened by hand).
fn check_private(path: &Path, meta: &fs::Metadata) -> Result<(), ConfigError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let me = rustix::process::geteuid().as_raw();
        let mode = meta.mode() & 0o7777;
        let reason = if meta.uid() != me {
            format!("is owned by uid {}, not this user (uid {me})", meta.uid())
        } else if mode & 0o077 != 0 {
            format!("has mode {mode:04o}; it must be 0700")
        } else {
            return Ok(());
        };
        Err(ConfigError::UnsafeDefaultDirectory {
            path: path.to_path_buf(),
            reason,
        })
    }
    #[cfg(not(unix))]
    {
        let _ = (path, meta);
        Ok(())
    }
}

/// Refuses a configured directory that every user may write without the sticky bit (anyone
/// could remove session files, or rename one session's file onto another key: a hijack, since
/// the data is not bound to its key), and warns about one other users may list (file names are
/// session keys) or write, or that another user owns.
fn check_configured(path: &Path, meta: &fs::Metadata) -> Result<(), ConfigError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let mode = meta.mode() & 0o7777;
        let sticky = mode & 0o1000 != 0;
        if mode & 0o002 != 0 && !sticky {
            return Err(ConfigError::UnsafeDirectory {
                path: path.to_path_buf(),
                reason: "is writable by every user and has no sticky bit: anyone could replace \
                         or remove session files (use a private directory, mode 0700)",
            });
        }
        let me = rustix::process::geteuid().as_raw();
        let mut risks = Vec::new();
        if mode & 0o044 != 0 {
            risks.push("other users can list it, and session file names are session keys");
        }
        if mode & 0o022 != 0 {
            risks.push(
                "other users can add files to it (and, without the sticky bit, replace ours)",
            );
        }
        if meta.uid() != me && meta.uid() != 0 {
            risks.push("it is owned by another user, who can change its mode at any time");
        }
        if !risks.is_empty() {
            tracing::warn!(
                target: "sessionkit::security",
                directory = %path.display(),
                mode = format_args!("{mode:04o}"),
                "SESSION_FILE_PATH is not private: {}; use a directory only this user can \
                 open (chmod 0700)",
                risks.join("; ")
            );
        }
    }
    #[cfg(not(unix))]
    let _ = (path, meta);
    Ok(())
}

/// Whether this process may create and remove files in the opened directory, asked of the
/// kernel (`faccessat(AT_EACCESS)`, which also reports a read-only file system) instead of by
/// creating a probe file.
fn check_writable(dir: &File) -> io::Result<()> {
    #[cfg(unix)]
    {
        use rustix::fs::{Access, AtFlags, accessat};
        accessat(
            dir,
            ".",
            Access::WRITE_OK | Access::EXEC_OK,
            AtFlags::EACCESS,
        )?;
    }
    #[cfg(not(unix))]
    {
        if dir.metadata()?.permissions().readonly() {
            return Err(io::Error::from(io::ErrorKind::PermissionDenied));
        }
    }
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
pub(crate) fn datetime_of(time: SystemTime) -> DateTime<Utc> {
    let micros = match time.duration_since(UNIX_EPOCH) {
        Ok(after) => i64::try_from(after.as_micros()).unwrap_or(i64::MAX),
        Err(before) => i64::try_from(before.duration().as_micros()).map_or(i64::MIN, |m| -m),
    };
    to_datetime(Timestamp::from_micros(micros))
}

/// A UTC datetime as a file time, if the platform can represent it.
pub(crate) fn system_time_of(time: DateTime<Utc>) -> Option<SystemTime> {
    let micros = from_datetime(time).micros;
    let offset = Duration::from_micros(micros.unsigned_abs());
    if micros >= 0 {
        UNIX_EPOCH.checked_add(offset)
    } else {
        UNIX_EPOCH.checked_sub(offset)
    }
}
