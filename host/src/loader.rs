//! Finding and loading engine libraries: the registry behind `SESSION_ENGINE`.
//!
//! A short name `db` resolves to `libsessionkit_engine_db.so` in the directories of
//! `$SESSIONKIT_ENGINE_PATH`, then beside the executable; Django's dotted names
//! (`django.contrib.sessions.backends.db`) resolve to their short name; anything containing `/`
//! or ending in `.so` is a path to a library.
//!
//! Loading a file runs its code (`dlopen` runs library initialisers before any check), so the
//! loader only opens absolute paths whose file and every ancestor directory belong to root or
//! this process's user and are not writable by group or others (sticky directories such as
//! `/tmp` excepted). Libraries are opened with `lib_header_from_path` + `init_root_module`, never
//! abi_stable's `RootModule::load_from_*`, which caches one module per process and would hand
//! every engine the first one loaded. Loaded libraries are kept per canonical path for the
//! life of the process (abi_stable never unloads them).

use std::{
    collections::{HashMap, HashSet},
    fmt,
    os::unix::fs::{MetadataExt, PermissionsExt},
    path::{Path, PathBuf},
    sync::{Mutex, OnceLock},
};

use std::sync::Arc;

use abi_stable::{
    library::{LibHeader, LibraryError, lib_header_from_path},
    std_types::RStr,
};
use sessionkit_sdk::{
    Capabilities, EngineInfo, EngineModuleRef, KeyFormat, StoreError,
    frozen::{v0_1, v0_2, v0_3},
};

use crate::plugin::{Contract, HostServices, PluginStore, SharedClock, SharedProgress};

/// The environment variable listing engine directories, `:`-separated, searched first.
pub const ENGINE_PATH_VAR: &str = "SESSIONKIT_ENGINE_PATH";

/// What every engine library's file name starts with.
pub const LIBRARY_PREFIX: &str = "libsessionkit_engine_";

/// What every engine library's file name ends with.
pub const LIBRARY_SUFFIX: &str = ".so";

/// Django's dotted `SESSION_ENGINE` values and the short names they stand for.
pub const DJANGO_ENGINES: [(&str, &str); 5] = [
    ("django.contrib.sessions.backends.db", "db"),
    ("django.contrib.sessions.backends.cache", "cache"),
    ("django.contrib.sessions.backends.cached_db", "cached_db"),
    ("django.contrib.sessions.backends.file", "file"),
    (
        "django.contrib.sessions.backends.signed_cookies",
        "signed_cookies",
    ),
];

/// A loaded engine library: what it says about itself, and the module that opens its store.
#[derive(Clone)]
pub struct EngineLibrary {
    /// The library's canonical path.
    pub path: PathBuf,
    /// The engine's name, version, salt, capabilities and key format.
    pub info: EngineDescription,
    /// The contract revision the library was built against.
    pub contract: Contract,
    module: RootModule,
}

/// The root module of a library, in the layout it matched.
#[derive(Clone, Copy)]
enum RootModule {
    Current(EngineModuleRef),
    V0_3(v0_3::EngineModuleRef),
    V0_2(v0_2::EngineModuleRef),
    V0_1(v0_1::EngineModuleRef),
}

/// An engine's description in host types, as listed by `sessionkit engines`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineDescription {
    /// The short name `SESSION_ENGINE` uses.
    pub name: String,
    /// The engine's own version.
    pub version: String,
    /// The salt the host signs this engine's `session_data` with.
    pub salt: String,
    /// What the engine can do.
    pub capabilities: Capabilities,
    /// Which session keys it accepts.
    pub key_format: KeyFormat,
    /// The library it came from (empty for an in-process test engine).
    pub path: PathBuf,
}

/// Why an engine library could not be found, loaded or opened. Each `Display` is one line
/// naming the file, the engine and the cause.
#[derive(Debug, Clone, thiserror::Error)]
pub enum LoadError {
    /// No library for this engine name in any searched directory.
    #[error(
        "unknown engine '{name}': no {file} in {dirs}; available engines: {list}",
        file = library_file_name(name),
        dirs = display_dirs(searched),
        list = display_names(available)
    )]
    UnknownEngine {
        /// The name asked for.
        name: String,
        /// The directories searched, in order.
        searched: Vec<PathBuf>,
        /// The engine names that would have worked.
        available: Vec<String>,
    },
    /// The library file does not exist.
    #[error("engine library {} ({}) does not exist", .path.display(), engine_label(.path))]
    Missing {
        /// The file.
        path: PathBuf,
    },
    /// The file could not be opened as a shared library.
    #[error("cannot load engine library {} ({}): not a loadable library: {reason}", .path.display(), engine_label(.path))]
    NotALibrary {
        /// The file.
        path: PathBuf,
        /// Why `dlopen` refused it.
        reason: String,
    },
    /// The file is a library but not a sessionkit engine (no root module, or its root module
    /// failed to initialise).
    #[error("cannot load engine library {} ({}): not a sessionkit engine: {reason}", .path.display(), engine_label(.path))]
    NotAnEngine {
        /// The file.
        path: PathBuf,
        /// What is missing or failed.
        reason: String,
    },
    /// The engine was built against an incompatible `sessionkit-sdk` (abi_stable's version or
    /// layout check failed).
    #[error(
        "cannot load engine library {} ({}): built against an incompatible sessionkit-sdk \
         (sdk {sdk}): {summary}",
        .path.display(),
        engine_label(.path),
        sdk = sessionkit_sdk::SDK_VERSION
    )]
    AbiMismatch {
        /// The file.
        path: PathBuf,
        /// The first line and the last meaningful lines of abi_stable's report.
        summary: String,
    },
    /// The library exports another engine than its name says.
    #[error("engine library {} exports engine '{found}', expected '{expected}'", .path.display())]
    NameMismatch {
        /// The file.
        path: PathBuf,
        /// The name asked for (from `SESSION_ENGINE` or the file name).
        expected: String,
        /// The name the engine reports.
        found: String,
    },
    /// The engine loaded but could not open its store (bad settings, store unreachable, or a
    /// panic in its constructor).
    #[error("engine '{engine}' ({}) failed to open its store: {error}", .path.display())]
    Open {
        /// The engine's name.
        engine: String,
        /// The library.
        path: PathBuf,
        /// What the engine reported.
        error: StoreError,
    },
    /// The loader refused the file before opening it: a relative path, or a file or directory
    /// that someone else could replace (a world-writable directory would let anyone swap the
    /// code the host runs).
    #[error("refusing to load engine library {} ({}): {reason}", .path.display(), engine_label(.path))]
    Insecure {
        /// The file.
        path: PathBuf,
        /// What is unsafe about it.
        reason: String,
    },
}

impl EngineLibrary {
    /// Opens a store of this engine with the settings JSON
    /// ([`Settings::engine_settings_json`](crate::Settings::engine_settings_json)), lending it
    /// the host's `clock` and log, and a progress display nobody watches (see
    /// [`EngineLibrary::open_watched`]).
    ///
    /// # Errors
    ///
    /// As [`EngineLibrary::open_watched`].
    pub fn open(
        &self,
        settings_json: &str,
        clock: Arc<SharedClock>,
    ) -> Result<PluginStore, LoadError> {
        self.open_watched(settings_json, clock, Arc::default())
    }

    /// Opens a store of this engine with the settings JSON
    /// ([`Settings::engine_settings_json`](crate::Settings::engine_settings_json)), lending it
    /// the host's `clock`, log and `progress` display. An engine built against contract 0.1
    /// cannot take them; that is said once, here, in one warning. One of contract 0.2 takes
    /// the clock and log only.
    ///
    /// # Errors
    ///
    /// [`LoadError::Open`] with the engine's error (`Config` for bad settings, `Panicked` for a
    /// panic in its constructor).
    pub fn open_watched(
        &self,
        settings_json: &str,
        clock: Arc<SharedClock>,
        progress: Arc<SharedProgress>,
    ) -> Result<PluginStore, LoadError> {
        let settings_json = RStr::from(settings_json);
        let services = HostServices::new(&self.info.name, clock, progress);
        let opened = match self.module {
            RootModule::Current(module) => match module.open_with_host() {
                Some(open) => open(settings_json, services.into_box()).into_result(),
                None => module.open()(settings_json).into_result(),
            }
            .map(PluginStore::current),
            RootModule::V0_3(module) => match module.open_with_host() {
                Some(open) => open(settings_json, services.into_box()).into_result(),
                None => module.open()(settings_json).into_result(),
            }
            .map(PluginStore::v0_3),
            RootModule::V0_2(module) => match module.open_with_host() {
                Some(open) => open(settings_json, services.into_v0_2_box()).into_result(),
                None => module.open()(settings_json).into_result(),
            }
            .map(PluginStore::v0_2),
            RootModule::V0_1(module) => {
                tracing::warn!(
                    target: "sessionkit::loader",
                    engine = %self.info.name,
                    "engine '{}' ({}) was built against sessionkit contract 0.1: concurrent \
                     writes to one session fall back to last-writer-wins (no conditional save), \
                     and it keeps its own clock and log; rebuild it against sessionkit-sdk 0.1.1 \
                     or later for them",
                    self.info.name,
                    self.path.display()
                );
                module.open()(settings_json)
                    .into_result()
                    .map(PluginStore::v0_1)
            }
        };
        opened.map_err(|error| LoadError::Open {
            engine: self.info.name.clone(),
            path: self.path.clone(),
            error,
        })
    }
}

impl fmt::Debug for EngineLibrary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EngineLibrary")
            .field("path", &self.path)
            .field("info", &self.info)
            .finish()
    }
}

/// The directories engine names resolve in: `$SESSIONKIT_ENGINE_PATH` (`:`-separated; relative
/// entries are skipped with a warning), then the executable's directory, then its `deps`
/// subdirectory (where `cargo test` puts plugin libraries).
pub fn engine_search_path() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Some(value) = std::env::var_os(ENGINE_PATH_VAR) {
        for dir in std::env::split_paths(&value) {
            if dir.as_os_str().is_empty() {
                continue;
            }
            if dir.is_relative() {
                tracing::warn!(
                    target: "sessionkit::loader",
                    "ignoring relative directory {} in {ENGINE_PATH_VAR}: engine directories must be absolute",
                    dir.display()
                );
                continue;
            }
            dirs.push(dir);
        }
    }
    if let Some(exe_dir) = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(Path::to_path_buf))
    {
        let deps = exe_dir.join("deps");
        dirs.push(exe_dir);
        dirs.push(deps);
    }
    let mut seen = HashSet::new();
    dirs.retain(|dir| seen.insert(dir.clone()));
    dirs
}

/// The short engine name `spec` stands for, if it is a name rather than a path: Django's
/// dotted names map to their short name; a name is `[a-z0-9_]+`.
pub fn engine_name_of_spec(spec: &str) -> Option<&str> {
    if is_path_spec(spec) {
        return None;
    }
    let name = DJANGO_ENGINES
        .iter()
        .find(|(dotted, _)| *dotted == spec)
        .map_or(spec, |(_, short)| short);
    Some(name)
}

/// Where `spec` (a short name, a Django dotted name, or a library path) points.
///
/// # Errors
///
/// [`LoadError::UnknownEngine`] (listing what is available and where it looked) for a name
/// found nowhere; [`LoadError::Insecure`] for a relative path; [`LoadError::Missing`] for a
/// path that does not exist.
pub fn resolve_engine(spec: &str, search: &[PathBuf]) -> Result<PathBuf, LoadError> {
    let Some(name) = engine_name_of_spec(spec) else {
        let path = PathBuf::from(spec);
        if path.is_relative() {
            return Err(LoadError::Insecure {
                path,
                reason:
                    "a relative path depends on the working directory; give an absolute path or an \
                         engine name"
                        .to_owned(),
            });
        }
        if !path.exists() {
            return Err(LoadError::Missing { path });
        }
        return Ok(path);
    };
    if is_valid_engine_name(name) {
        let file = library_file_name(name);
        if let Some(found) = search
            .iter()
            .map(|dir| dir.join(&file))
            .find(|path| path.is_file())
        {
            return Ok(found);
        }
    }
    Err(LoadError::UnknownEngine {
        name: name.to_owned(),
        searched: search.to_vec(),
        available: available_engines(search),
    })
}

/// Loads the engine library at `path` (or returns the one already loaded from the same
/// canonical path) after checking who could have written it.
///
/// If the file is named `libsessionkit_engine_<name>.so`, the engine inside must call itself
/// `<name>`.
///
/// # Errors
///
/// One [`LoadError`] per way loading fails: `Insecure`, `Missing`, `NotALibrary`,
/// `NotAnEngine`, `AbiMismatch`, `NameMismatch`.
pub fn load_library(path: &Path) -> Result<EngineLibrary, LoadError> {
    if path.is_relative() {
        return Err(LoadError::Insecure {
            path: path.to_path_buf(),
            reason: "a relative path depends on the working directory; give an absolute path"
                .to_owned(),
        });
    }
    let canonical = std::fs::canonicalize(path).map_err(|error| match error.kind() {
        std::io::ErrorKind::NotFound => LoadError::Missing {
            path: path.to_path_buf(),
        },
        _ => LoadError::NotALibrary {
            path: path.to_path_buf(),
            reason: error.to_string(),
        },
    })?;
    let expected = engine_name_of_file(path);
    let library = {
        // A poisoned lock only means another thread panicked mid-load; the map itself is
        // always consistent (entries are inserted whole), so keep using it.
        let mut loaded = loaded_libraries()
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        match loaded.get(&canonical) {
            Some(library) => library.clone(),
            None => {
                check_not_replaceable(&canonical)?;
                // Checked as ELF and mapped from a sealed private copy: a truncated file is an
                // error line and a later rewrite of the file cannot SIGBUS this process.
                let library = crate::library_file::load_from_snapshot(&canonical, open_library)?;
                loaded.insert(canonical.clone(), library.clone());
                library
            }
        }
    };
    if let Some(expected) = expected
        && expected != library.info.name
    {
        return Err(LoadError::NameMismatch {
            path: canonical,
            expected,
            found: library.info.name.clone(),
        });
    }
    Ok(library)
}

/// Loads every `libsessionkit_engine_*.so` in the search directories; for a name found in
/// several directories, only the first counts (as resolution would pick it).
pub fn discover_engines(search: &[PathBuf]) -> Vec<Result<EngineLibrary, LoadError>> {
    engine_files(search)
        .into_iter()
        .map(|(_, path)| load_library(&path))
        .collect()
}

/// The engine names found in the search directories (from file names, without loading
/// anything), sorted; what an unknown name's error lists.
pub fn available_engines(search: &[PathBuf]) -> Vec<String> {
    let mut names: Vec<String> = engine_files(search)
        .into_iter()
        .map(|(name, _)| name)
        .collect();
    names.sort();
    names
}

/// The file name of engine `name`'s library: `libsessionkit_engine_<name>.so`.
pub fn library_file_name(name: &str) -> String {
    format!("{LIBRARY_PREFIX}{name}{LIBRARY_SUFFIX}")
}

/// The engine name a library's file name promises (`libsessionkit_engine_<name>.so`), if it
/// follows the pattern.
pub fn engine_name_of_file(path: &Path) -> Option<String> {
    let file = path.file_name()?.to_str()?;
    let name = file
        .strip_prefix(LIBRARY_PREFIX)?
        .strip_suffix(LIBRARY_SUFFIX)?;
    is_valid_engine_name(name).then(|| name.to_owned())
}

fn is_path_spec(spec: &str) -> bool {
    spec.contains('/') || spec.ends_with(LIBRARY_SUFFIX)
}

fn is_valid_engine_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// `(name, path)` of every engine library file in the search directories, first occurrence of
/// a name only, in search order (files within a directory by name).
fn engine_files(search: &[PathBuf]) -> Vec<(String, PathBuf)> {
    let mut seen = HashSet::new();
    let mut found = Vec::new();
    for dir in search {
        let Ok(entries) = std::fs::read_dir(dir) else {
            continue;
        };
        let mut files: Vec<(String, PathBuf)> = entries
            .filter_map(Result::ok)
            .map(|entry| entry.path())
            .filter(|path| path.is_file())
            .filter_map(|path| engine_name_of_file(&path).map(|name| (name, path)))
            .collect();
        files.sort();
        for (name, path) in files {
            if seen.insert(name.clone()) {
                found.push((name, path));
            }
        }
    }
    found
}

fn loaded_libraries() -> &'static Mutex<HashMap<PathBuf, EngineLibrary>> {
    static LOADED: OnceLock<Mutex<HashMap<PathBuf, EngineLibrary>>> = OnceLock::new();
    LOADED.get_or_init(|| Mutex::new(HashMap::new()))
}

fn open_library(canonical: &Path) -> Result<EngineLibrary, LoadError> {
    let header =
        lib_header_from_path(canonical).map_err(|error| library_error(canonical, &error))?;
    let (module, contract, info) =
        root_module(header).map_err(|error| library_error(canonical, &error))?;
    let description = EngineDescription {
        name: info.name.as_str().to_owned(),
        version: info.version.as_str().to_owned(),
        salt: info.salt.as_str().to_owned(),
        capabilities: Capabilities::from_bits(
            info.capabilities.bits & contract.possible_capabilities().bits,
        ),
        key_format: info.key_format,
        path: canonical.to_path_buf(),
    };
    if !is_valid_engine_name(&description.name) {
        return Err(LoadError::NotAnEngine {
            path: canonical.to_path_buf(),
            reason: format!("its engine name {:?} is not [a-z0-9_]+", description.name),
        });
    }
    Ok(EngineLibrary {
        path: canonical.to_path_buf(),
        info: description,
        contract,
        module,
    })
}

/// The library's root module in the newest layout it matches: the current contract first,
/// then each frozen earlier one (see `sessionkit_sdk::frozen`). When none matches, the error
/// is the current layout's, which says what the library lacks against the newest contract.
fn root_module(
    header: &'static LibHeader,
) -> Result<(RootModule, Contract, EngineInfo), LibraryError> {
    let current = match header.init_root_module::<EngineModuleRef>() {
        Ok(module) => return Ok((RootModule::Current(module), Contract::V0_4, module.info()())),
        Err(current) => current,
    };
    if let Ok(module) = header.init_root_module::<v0_3::EngineModuleRef>() {
        return Ok((RootModule::V0_3(module), Contract::V0_3, module.info()()));
    }
    if let Ok(module) = header.init_root_module::<v0_2::EngineModuleRef>() {
        return Ok((RootModule::V0_2(module), Contract::V0_2, module.info()()));
    }
    match header.init_root_module::<v0_1::EngineModuleRef>() {
        Ok(module) => Ok((RootModule::V0_1(module), Contract::V0_1, module.info()())),
        Err(_) => Err(current),
    }
}

/// Refuses a file that someone other than root or this user could have written or replaced:
/// the file and every ancestor directory must be owned by one of them and not writable by
/// group or others (a sticky directory such as `/tmp` may be world-writable).
fn check_not_replaceable(canonical: &Path) -> Result<(), LoadError> {
    let euid = rustix::process::geteuid().as_raw();
    let insecure = |reason: String| LoadError::Insecure {
        path: canonical.to_path_buf(),
        reason,
    };
    let metadata = std::fs::metadata(canonical).map_err(|error| insecure(error.to_string()))?;
    if !metadata.is_file() {
        return Err(LoadError::NotALibrary {
            path: canonical.to_path_buf(),
            reason: "not a regular file".to_owned(),
        });
    }
    let owner_ok = |uid: u32| uid == 0 || uid == euid;
    if !owner_ok(metadata.uid()) {
        return Err(insecure(format!(
            "the file is owned by uid {}, neither root nor this user",
            metadata.uid()
        )));
    }
    if metadata.permissions().mode() & 0o022 != 0 {
        return Err(insecure(
            "the file is writable by group or others".to_owned(),
        ));
    }
    for dir in canonical.ancestors().skip(1) {
        let metadata = std::fs::metadata(dir)
            .map_err(|error| insecure(format!("{}: {error}", dir.display())))?;
        if !owner_ok(metadata.uid()) {
            return Err(insecure(format!(
                "directory {} is owned by uid {}, neither root nor this user",
                dir.display(),
                metadata.uid()
            )));
        }
        let mode = metadata.permissions().mode();
        let sticky = mode & 0o1000 != 0;
        if mode & 0o022 != 0 && !sticky {
            return Err(insecure(format!(
                "directory {} is writable by group or others",
                dir.display()
            )));
        }
    }
    Ok(())
}

fn library_error(path: &Path, error: &LibraryError) -> LoadError {
    let path = path.to_path_buf();
    match error {
        LibraryError::OpenError { err, .. } => {
            if path.exists() {
                LoadError::NotALibrary {
                    path,
                    reason: one_line(&err.to_string()),
                }
            } else {
                LoadError::Missing { path }
            }
        }
        LibraryError::GetSymbolError { symbol, .. } => LoadError::NotAnEngine {
            path,
            reason: format!(
                "it exports no abi_stable root module (symbol {} not found)",
                String::from_utf8_lossy(symbol).trim_end_matches('\0')
            ),
        },
        LibraryError::RootModule { .. } => LoadError::NotAnEngine {
            path,
            reason: format!(
                "its root module failed to initialise: {}",
                summarize(&error.to_string())
            ),
        },
        LibraryError::Many(errors) => match errors.first() {
            Some(first) if errors.len() == 1 => library_error(&path, first),
            _ => LoadError::AbiMismatch {
                path,
                summary: summarize(&error.to_string()),
            },
        },
        LibraryError::AbiInstability(_) => LoadError::AbiMismatch {
            path,
            summary: summarize_layout_report(&error.to_string()),
        },
        LibraryError::ParseVersionError(_)
        | LibraryError::IncompatibleVersionNumber { .. }
        | LibraryError::InvalidAbiHeader(_)
        | LibraryError::InvalidCAbi { .. } => LoadError::AbiMismatch {
            path,
            summary: summarize(&error.to_string()),
        },
    }
}

/// How many trailing lines of abi_stable's (often 1000+ line) report a summary keeps.
const SUMMARY_TAIL_LINES: usize = 4;

/// The longest summary kept, in bytes.
const SUMMARY_MAX: usize = 400;

/// One line out of a long multi-line report: its first meaningful line, then its last few
/// (where abi_stable puts the actual mismatch, such as "Expected: i64 Found: u64").
pub(crate) fn summarize(report: &str) -> String {
    let lines: Vec<&str> = report
        .lines()
        .map(str::trim)
        .filter(|line| line.chars().any(char::is_alphanumeric))
        .collect();
    let summary = if lines.len() <= SUMMARY_TAIL_LINES + 1 {
        lines.join(" ")
    } else {
        format!(
            "{} … {}",
            lines[0],
            lines[lines.len() - SUMMARY_TAIL_LINES..].join(" ")
        )
    };
    truncate(one_line(&summary))
}

/// How many layout errors a summary names before "(+N more)".
const SUMMARY_ERRORS: usize = 3;

/// One line out of abi_stable's layout report: for each `Error:` block, where it is (the field
/// path from the `error(s)inside:` section) and what differs, e.g. `info.__returns: incompatible
/// type size (expected 64, found 56)`. Falls back to [`summarize`] for a report without blocks.
pub(crate) fn summarize_layout_report(report: &str) -> String {
    let lines: Vec<&str> = report
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .collect();
    let mut path: Vec<&str> = Vec::new();
    let mut collecting_path = false;
    let mut errors = Vec::new();
    let mut index = 0;
    while index < lines.len() {
        let line = lines[index];
        if line.ends_with("error(s)inside:") {
            path.clear();
            collecting_path = true;
        } else if line.starts_with("Layout of") {
            collecting_path = false;
        } else if let Some(kind) = line.strip_prefix("Error:") {
            collecting_path = false;
            let after = |label: &str| {
                lines[index..]
                    .iter()
                    .position(|l| *l == label)
                    .and_then(|at| lines.get(index + at + 1))
                    .map(|value| value.trim_start_matches("field_name:"))
                    .unwrap_or("?")
            };
            let at = if path.is_empty() {
                String::new()
            } else {
                format!("{}: ", path.join("."))
            };
            errors.push(format!(
                "{at}{kind} (expected {}, found {})",
                after("Expected:"),
                after("Found:")
            ));
        } else if collecting_path
            && let Some(field) = line.strip_prefix("field_name:")
            && field != "0"
        {
            path.push(field);
        }
        index += 1;
    }
    if errors.is_empty() {
        return summarize(report);
    }
    let more = errors.len().saturating_sub(SUMMARY_ERRORS);
    let mut summary = errors
        .into_iter()
        .take(SUMMARY_ERRORS)
        .collect::<Vec<_>>()
        .join("; ");
    if more > 0 {
        summary.push_str(&format!(" (+{more} more)"));
    }
    truncate(one_line(&summary))
}

fn truncate(mut summary: String) -> String {
    if summary.len() > SUMMARY_MAX {
        let mut cut = SUMMARY_MAX;
        while !summary.is_char_boundary(cut) {
            cut -= 1;
        }
        summary.truncate(cut);
        summary.push('…');
    }
    summary
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn engine_label(path: &Path) -> String {
    match engine_name_of_file(path) {
        Some(name) => format!("engine '{name}'"),
        None => "no engine name in the file name".to_owned(),
    }
}

fn display_dirs(dirs: &[PathBuf]) -> String {
    if dirs.is_empty() {
        return "no directory (set SESSIONKIT_ENGINE_PATH)".to_owned();
    }
    dirs.iter()
        .map(|dir| dir.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

fn display_names(names: &[String]) -> String {
    if names.is_empty() {
        "none found".to_owned()
    } else {
        names.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn touch(dir: &Path, file: &str) -> PathBuf {
        let path = dir.join(file);
        std::fs::write(&path, b"not really a library").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        path
    }

    #[test]
    fn short_name_resolves_to_the_library_file_in_the_first_directory_that_has_it() {
        let first = tempfile::tempdir().unwrap();
        let second = tempfile::tempdir().unwrap();
        let in_second = touch(second.path(), "libsessionkit_engine_db.so");
        let search = vec![first.path().to_path_buf(), second.path().to_path_buf()];
        assert_eq!(resolve_engine("db", &search).unwrap(), in_second);
        let in_first = touch(first.path(), "libsessionkit_engine_db.so");
        assert_eq!(resolve_engine("db", &search).unwrap(), in_first);
    }

    #[test]
    fn django_dotted_names_resolve_to_their_short_names() {
        let dir = tempfile::tempdir().unwrap();
        let search = vec![dir.path().to_path_buf()];
        for (dotted, short) in DJANGO_ENGINES {
            let path = touch(dir.path(), &library_file_name(short));
            assert_eq!(resolve_engine(dotted, &search).unwrap(), path, "{dotted}");
            assert_eq!(engine_name_of_spec(dotted), Some(short));
        }
    }

    #[test]
    fn anything_with_a_slash_or_ending_in_so_is_a_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = touch(dir.path(), "custom.so");
        assert_eq!(resolve_engine(path.to_str().unwrap(), &[]).unwrap(), path);
        assert_eq!(engine_name_of_spec("custom.so"), None);
        assert_eq!(engine_name_of_spec("./x"), None);
        assert!(matches!(
            resolve_engine("/nonexistent/libsessionkit_engine_db.so", &[]),
            Err(LoadError::Missing { .. })
        ));
    }

    #[test]
    fn relative_paths_are_refused() {
        for spec in [
            "custom.so",
            "./libsessionkit_engine_db.so",
            "engines/libx.so",
        ] {
            let error = resolve_engine(spec, &[]).unwrap_err();
            assert!(
                matches!(error, LoadError::Insecure { .. }),
                "{spec}: {error:?}"
            );
        }
        let error = load_library(Path::new("libsessionkit_engine_db.so")).unwrap_err();
        assert!(matches!(error, LoadError::Insecure { .. }), "{error:?}");
    }

    #[test]
    fn unknown_name_lists_available_engines_and_searched_directories() {
        let first = tempfile::tempdir().unwrap();
        let second = tempfile::tempdir().unwrap();
        touch(first.path(), "libsessionkit_engine_db.so");
        touch(second.path(), "libsessionkit_engine_cache.so");
        touch(second.path(), "libsessionkit_engine_db.so");
        touch(second.path(), "libsessionkit_fixture_faulty.so");
        touch(second.path(), "libsomething_else.so");
        let search = vec![first.path().to_path_buf(), second.path().to_path_buf()];
        let error = resolve_engine("redis", &search).unwrap_err();
        match &error {
            LoadError::UnknownEngine {
                name,
                searched,
                available,
            } => {
                assert_eq!(name, "redis");
                assert_eq!(searched, &search);
                assert_eq!(available, &["cache", "db"]);
            }
            other => panic!("expected UnknownEngine, got {other:?}"),
        }
        let text = error.to_string();
        assert!(!text.contains('\n'), "{text}");
        assert!(text.contains("libsessionkit_engine_redis.so"), "{text}");
        assert!(text.contains("available engines: cache, db"), "{text}");
        assert!(text.contains(&first.path().display().to_string()), "{text}");
        assert!(
            text.contains(&second.path().display().to_string()),
            "{text}"
        );
    }

    #[test]
    fn unknown_dotted_and_malformed_names_are_unknown_engines() {
        let dir = tempfile::tempdir().unwrap();
        touch(dir.path(), "libsessionkit_engine_db.so");
        let search = vec![dir.path().to_path_buf()];
        for spec in ["myapp.sessions.backend", "DB", "", "db engine"] {
            let error = resolve_engine(spec, &search).unwrap_err();
            assert!(
                matches!(error, LoadError::UnknownEngine { .. }),
                "{spec:?}: {error:?}"
            );
        }
    }

    #[test]
    fn engine_name_comes_from_the_file_name_pattern_only() {
        assert_eq!(
            engine_name_of_file(Path::new("/x/libsessionkit_engine_cached_db.so")).as_deref(),
            Some("cached_db")
        );
        assert_eq!(
            engine_name_of_file(Path::new("/x/libsessionkit_engine_.so")),
            None
        );
        assert_eq!(
            engine_name_of_file(Path::new("/x/libsessionkit_engine_DB.so")),
            None
        );
        assert_eq!(engine_name_of_file(Path::new("/x/custom.so")), None);
    }

    #[test]
    fn a_file_that_is_not_a_library_fails_with_one_line_naming_file_and_engine() {
        let dir = tempfile::tempdir().unwrap();
        let path = touch(dir.path(), "libsessionkit_engine_bogus.so");
        let error = load_library(&path).unwrap_err();
        assert!(matches!(error, LoadError::NotALibrary { .. }), "{error:?}");
        let text = error.to_string();
        assert!(!text.contains('\n'), "{text}");
        assert!(text.contains("libsessionkit_engine_bogus.so"), "{text}");
        assert!(text.contains("engine 'bogus'"), "{text}");
    }

    #[test]
    fn a_group_writable_file_or_directory_is_refused_before_it_is_opened() {
        let dir = tempfile::tempdir().unwrap();
        let path = touch(dir.path(), "libsessionkit_engine_bogus.so");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o664)).unwrap();
        let error = load_library(&path).unwrap_err();
        assert!(matches!(error, LoadError::Insecure { .. }), "{error:?}");
        assert!(
            error.to_string().contains("writable by group or others"),
            "{error}"
        );

        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
        let error = load_library(&path).unwrap_err();
        assert!(matches!(error, LoadError::Insecure { .. }), "{error:?}");
        assert!(error.to_string().contains("directory"), "{error}");
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    }

    #[test]
    fn missing_library_is_missing() {
        let dir = tempfile::tempdir().unwrap();
        let error = load_library(&dir.path().join("libsessionkit_engine_gone.so")).unwrap_err();
        assert!(matches!(error, LoadError::Missing { .. }), "{error:?}");
        assert!(error.to_string().contains("engine 'gone'"), "{error}");
    }

    #[test]
    fn discovery_keeps_the_first_library_of_each_name() {
        let first = tempfile::tempdir().unwrap();
        let second = tempfile::tempdir().unwrap();
        touch(first.path(), "libsessionkit_engine_db.so");
        touch(second.path(), "libsessionkit_engine_db.so");
        touch(second.path(), "libsessionkit_engine_zeta.so");
        let search = vec![first.path().to_path_buf(), second.path().to_path_buf()];
        let found = discover_engines(&search);
        assert_eq!(found.len(), 2);
        let paths: Vec<String> = found
            .iter()
            .map(|result| match result {
                Err(LoadError::NotALibrary { path, .. }) => path.display().to_string(),
                other => panic!("unexpected {other:?}"),
            })
            .collect();
        assert!(
            paths[0].starts_with(&first.path().display().to_string()),
            "{paths:?}"
        );
        assert!(
            paths[1].ends_with("libsessionkit_engine_zeta.so"),
            "{paths:?}"
        );
    }

    #[test]
    fn summary_keeps_the_first_and_last_meaningful_lines_of_a_long_report() {
        let mut report = String::from("\nError while checking the layout of EngineModule\n");
        for i in 0..1500 {
            report.push_str(&format!("    field_{i}: some layout detail\n    }}\n"));
        }
        report.push_str("Error:mismatched type\nExpected:\n    i64\nFound:\n    u64\n\n");
        let summary = summarize(&report);
        assert!(!summary.contains('\n'));
        assert!(
            summary.starts_with("Error while checking the layout of EngineModule"),
            "{summary}"
        );
        assert!(summary.ends_with("Expected: i64 Found: u64"), "{summary}");
        assert!(summary.len() <= SUMMARY_MAX + '…'.len_utf8());
    }

    #[test]
    fn layout_report_summary_names_each_mismatch_with_its_field_path() {
        // abi_stable's real 500-line report for tests/fixtures/abi-mismatch.
        let report = include_str!("tests/abi_report.txt");
        assert!(report.lines().count() > 400);
        let summary = summarize_layout_report(report);
        assert!(!summary.contains('\n'));
        assert!(
            summary.starts_with("info.__returns: incompatible type size (expected 64, found 56)"),
            "{summary}"
        );
        assert!(
            summary.contains("unexpected field (expected key_format, found priority)"),
            "{summary}"
        );
        assert!(summary.ends_with("(+3 more)"), "{summary}");
        assert!(summary.len() <= SUMMARY_MAX + '…'.len_utf8());
    }

    #[test]
    fn search_path_ends_with_the_executable_directory_and_its_deps() {
        let dirs = engine_search_path();
        let exe_dir = std::env::current_exe()
            .unwrap()
            .parent()
            .unwrap()
            .to_path_buf();
        assert!(dirs.contains(&exe_dir), "{dirs:?}");
        assert!(dirs.contains(&exe_dir.join("deps")), "{dirs:?}");
        assert!(dirs.iter().all(|dir| dir.is_absolute()));
    }
}
