//! `sessionkit new-engine NAME`: a new engine crate, made from sessionkit's plugin template.
//!
//! The template's files are compiled into this binary (`include_str!` of `plugin-template/`), so
//! an installed `sessionkit` works anywhere. Making the crate:
//!
//! 1. drops the blocks between `new-engine: omit-start` and `new-engine: omit-end` marker lines
//!    (what only works inside sessionkit's repository: the in-repo conformance test's wiring);
//! 2. renames the engine: `template` → NAME, `Template` → the CamelCase name (type names),
//!    `TEMPLATE` → the upper-case name (setting names); the template's files use the word for
//!    nothing else, which a test checks;
//! 3. turns `Cargo.toml` into a standalone manifest: plain `version`/`edition`/`rust-version`
//!    for the workspace-inherited keys, the `sessionkit-sdk` dependency this command was asked
//!    for, and an empty `[workspace]` table so no parent workspace claims the crate.
//!
//! The files are written into a fresh sibling directory and renamed into place at the end, so a
//! failure never leaves half a crate behind.

use std::{
    fs, io,
    path::{Component, Path, PathBuf},
    process::ExitCode,
};

use crate::failure::Failure;

/// Arguments of `sessionkit new-engine`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The engine's name, `[a-z][a-z0-9_]*`: the crate becomes `sessionkit-engine-NAME`, its
    /// library `libsessionkit_engine_NAME.so`, and `SESSION_ENGINE=NAME` selects it.
    pub name: String,
    /// Where to create the crate (default `./NAME`); refused if it exists and is not empty.
    #[arg(long, value_name = "DIR")]
    pub path: Option<PathBuf>,
    /// The sessionkit-sdk crate to depend on by path (default: the `sdk/` of the checkout this
    /// binary was built from).
    #[arg(long, value_name = "DIR", conflicts_with = "sdk_version")]
    pub sdk_path: Option<PathBuf>,
    /// Depend on the published sessionkit-sdk at this version requirement instead of a path.
    #[arg(long, value_name = "VERSION")]
    pub sdk_version: Option<String>,
}

/// Writes the new crate and prints what to run next.
pub(crate) fn run(args: &Args) -> Result<ExitCode, Failure> {
    let name = EngineName::parse(&args.name).map_err(Failure::Input)?;
    let dir = absolute(
        args.path
            .clone()
            .unwrap_or_else(|| PathBuf::from(&args.name)),
    )?;
    check_target(&dir)?;
    let sdk = match (&args.sdk_version, &args.sdk_path) {
        (Some(version), _) => SdkSource::Version(parse_sdk_version(version)?),
        (None, Some(path)) => SdkSource::Path(sdk_dir(path, false)?),
        (None, None) => SdkSource::Path(sdk_dir(&built_from_sdk(), true)?),
    };
    if let Some(bundled) = BUNDLED_ENGINES.iter().find(|n| **n == name.as_str()) {
        eprintln!(
            "sessionkit: note: '{bundled}' is also a bundled engine's name; SESSION_ENGINE={bundled} \
             picks whichever library comes first in the search path ($SESSIONKIT_ENGINE_PATH first)"
        );
    }
    let files = render(&name, &sdk).map_err(template_failure)?;
    write_crate(&dir, &files)?;
    let library = dir
        .join("target/release")
        .join(format!("libsessionkit_engine_{}.so", name.as_str()));
    println!(
        "created engine '{name}' in {dir}: package sessionkit-engine-{name}, sessionkit-sdk {sdk}",
        name = name.as_str(),
        dir = dir.display(),
        sdk = sdk.describe(),
    );
    println!("next:");
    println!("  cd {}", shell_word(&dir.to_string_lossy()));
    println!("  cargo build --release");
    println!(
        "  sessionkit conformance {}",
        shell_word(&library.to_string_lossy())
    );
    Ok(ExitCode::SUCCESS)
}

/// The engines sessionkit ships; a new engine of the same name would compete with them in the
/// search path.
const BUNDLED_ENGINES: [&str; 7] = [
    "account_db",
    "cache",
    "cached_db",
    "db",
    "file",
    "signed_cookies",
    "template",
];

/// One file of the template, as compiled into this binary.
struct TemplateFile {
    /// Its path inside the crate.
    path: &'static str,
    /// Its text.
    text: &'static str,
}

/// Every file of `plugin-template/` that a new crate gets (`tests/` stays behind: it runs the
/// conformance suite through this repository's crates).
const TEMPLATE_FILES: &[TemplateFile] = &[
    TemplateFile {
        path: "Cargo.toml",
        text: include_str!("../../../../plugin-template/Cargo.toml"),
    },
    TemplateFile {
        path: "README.md",
        text: include_str!("../../../../plugin-template/README.md"),
    },
    TemplateFile {
        path: "src/lib.rs",
        text: include_str!("../../../../plugin-template/src/lib.rs"),
    },
    TemplateFile {
        path: "src/config.rs",
        text: include_str!("../../../../plugin-template/src/config.rs"),
    },
    TemplateFile {
        path: "src/store.rs",
        text: include_str!("../../../../plugin-template/src/store.rs"),
    },
];

/// The marker line that starts a block a new crate leaves out.
const OMIT_START: &str = "new-engine: omit-start";
/// The marker line that ends it.
const OMIT_END: &str = "new-engine: omit-end";

/// The version a new crate starts at.
const NEW_CRATE_VERSION: &str = "0.1.0";
/// The edition of the template (the workspace's; a unit test keeps them equal).
const EDITION: &str = "2024";

/// The types the template's code names besides its own: an engine whose
/// `<Camel>Engine`/`<Camel>Store`/`<Camel>Config` equals one would not compile.
const TEMPLATE_IDENTIFIERS: &[&str] = &[
    "Capabilities",
    "Engine",
    "EngineInfo",
    "ErrorKind",
    "KeyFormat",
    "MemoryError",
    "SessionRecord",
    "SessionStore",
    "SessionWrite",
    "StoreError",
    "StoreResult",
    "Timestamp",
];

/// A valid engine name and the spellings the template needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EngineName {
    name: String,
}

impl EngineName {
    /// Checks `name` against `[a-z][a-z0-9_]*`.
    ///
    /// # Errors
    ///
    /// A one-line message saying what is wrong and what a name may be.
    pub(crate) fn parse(name: &str) -> Result<Self, String> {
        let mut bytes = name.bytes();
        let valid = bytes.next().is_some_and(|b| b.is_ascii_lowercase())
            && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if !valid {
            return Err(format!(
                "invalid engine name {name:?}: a name is a lower-case ASCII letter followed by \
                 lower-case letters, digits and '_' ([a-z][a-z0-9_]*), as in `redis2` or \
                 `my_store`"
            ));
        }
        let engine = Self {
            name: name.to_owned(),
        };
        let camel = engine.camel();
        if let Some(clash) = ["Engine", "Store", "Config"]
            .iter()
            .map(|suffix| format!("{camel}{suffix}"))
            .find(|type_name| TEMPLATE_IDENTIFIERS.contains(&type_name.as_str()))
        {
            return Err(format!(
                "invalid engine name {name:?}: the engine's type {clash} would clash with the \
                 SDK's {clash} that the engine's code uses; choose another name"
            ));
        }
        Ok(engine)
    }

    /// The name itself (`my_store`): the engine name and the package/library suffix.
    pub(crate) fn as_str(&self) -> &str {
        &self.name
    }

    /// The CamelCase spelling for type names (`MyStore`).
    pub(crate) fn camel(&self) -> String {
        self.name
            .split('_')
            .flat_map(|part| {
                let mut chars = part.chars();
                chars
                    .next()
                    .map(|first| first.to_ascii_uppercase())
                    .into_iter()
                    .chain(chars)
            })
            .collect()
    }

    /// The upper-case spelling for setting names (`MY_STORE`).
    pub(crate) fn upper(&self) -> String {
        self.name.to_ascii_uppercase()
    }
}

/// Where the new crate gets `sessionkit-sdk` from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SdkSource {
    /// A path to the SDK crate's directory (absolute).
    Path(PathBuf),
    /// A version requirement on the published crate.
    Version(String),
}

impl SdkSource {
    /// How the summary line describes it.
    fn describe(&self) -> String {
        match self {
            Self::Path(path) => format!("from {}", path.display()),
            Self::Version(version) => format!("{version} from crates.io"),
        }
    }

    /// The dependency line (with its comment) for `Cargo.toml`.
    fn dependency(&self) -> String {
        match self {
            Self::Path(path) => format!(
                "# The contract: sessionkit's SDK, by path to the checkout this crate was made from\n\
                 # (see README.md, \"How this crate finds the SDK\").\n\
                 sessionkit-sdk = {{ path = {} }}",
                toml_string(&path.to_string_lossy())
            ),
            Self::Version(version) => format!(
                "# The contract: sessionkit's SDK from crates.io (see README.md, \"How this crate\n\
                 # finds the SDK\").\n\
                 sessionkit-sdk = {}",
                toml_string(version)
            ),
        }
    }
}

/// Why the compiled-in template could not be turned into a crate (a bug in the template's
/// markers or manifest, which the unit tests catch before a release).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum TemplateError {
    /// An omit block never ends, or ends without starting.
    #[error("{file}: unbalanced `{OMIT_START}`/`{OMIT_END}` markers at line {line}")]
    UnbalancedMarkers {
        /// The template file.
        file: &'static str,
        /// The 1-based line of the offending marker.
        line: usize,
    },
    /// A line the manifest rewrite expects is missing or not unique.
    #[error("Cargo.toml: expected exactly one line {line:?}, found {found}")]
    ManifestLine {
        /// The line looked for.
        line: &'static str,
        /// How many were found.
        found: usize,
    },
}

/// The new crate's files: `(path inside the crate, text)`.
///
/// # Errors
///
/// A [`TemplateError`] if the compiled-in template is inconsistent.
pub(crate) fn render(
    name: &EngineName,
    sdk: &SdkSource,
) -> Result<Vec<(String, String)>, TemplateError> {
    let mut files = Vec::with_capacity(TEMPLATE_FILES.len() + 1);
    for file in TEMPLATE_FILES {
        let text = rename(&strip_omitted(file.path, file.text)?, name);
        let text = if file.path == "Cargo.toml" {
            standalone_manifest(&text, sdk)?
        } else {
            text
        };
        files.push((file.path.to_owned(), text));
    }
    files.push((".gitignore".to_owned(), "/target\n".to_owned()));
    Ok(files)
}

/// `text` without its omit blocks (marker lines included).
fn strip_omitted(file: &'static str, text: &str) -> Result<String, TemplateError> {
    let mut out = String::with_capacity(text.len());
    let mut omitting: Option<usize> = None;
    for (index, line) in text.split_inclusive('\n').enumerate() {
        let unbalanced = TemplateError::UnbalancedMarkers {
            file,
            line: index + 1,
        };
        if line.contains(OMIT_START) {
            if omitting.is_some() {
                return Err(unbalanced);
            }
            omitting = Some(index + 1);
        } else if line.contains(OMIT_END) {
            if omitting.take().is_none() {
                return Err(unbalanced);
            }
        } else if omitting.is_none() {
            out.push_str(line);
        }
    }
    match omitting {
        Some(line) => Err(TemplateError::UnbalancedMarkers { file, line }),
        None => Ok(out),
    }
}

/// The template's engine name replaced by `name`, in all three spellings.
fn rename(text: &str, name: &EngineName) -> String {
    text.replace("template", name.as_str())
        .replace("Template", &name.camel())
        .replace("TEMPLATE", &name.upper())
}

/// The template's manifest (already renamed) as a standalone crate's.
fn standalone_manifest(text: &str, sdk: &SdkSource) -> Result<String, TemplateError> {
    let version = format!("version = {}", toml_string(NEW_CRATE_VERSION));
    let edition = format!("edition = {}", toml_string(EDITION));
    let rust_version = format!(
        "rust-version = {}",
        toml_string(env!("CARGO_PKG_RUST_VERSION"))
    );
    let mut text = text.to_owned();
    text = replace_line(&text, "version.workspace = true", Some(&version))?;
    text = replace_line(&text, "edition.workspace = true", Some(&edition))?;
    text = replace_line(&text, "rust-version.workspace = true", Some(&rust_version))?;
    // The license is the new crate's author's to choose.
    text = replace_line(&text, "license.workspace = true", None)?;
    text = replace_line_starting(&text, "sessionkit-sdk = ", &sdk.dependency())?;
    if !text.ends_with('\n') {
        text.push('\n');
    }
    text.push_str(
        "\n# A workspace of its own: a Cargo workspace in a parent directory does not claim this \
         crate.\n[workspace]\n",
    );
    Ok(text)
}

/// `text` with its one line equal to `line` replaced by `with` (or removed).
fn replace_line(
    text: &str,
    line: &'static str,
    with: Option<&str>,
) -> Result<String, TemplateError> {
    replace_matching(text, line, |l| l == line, with)
}

/// `text` with its one line starting with `prefix` replaced by `with`.
fn replace_line_starting(
    text: &str,
    prefix: &'static str,
    with: &str,
) -> Result<String, TemplateError> {
    replace_matching(text, prefix, |l| l.starts_with(prefix), Some(with))
}

fn replace_matching(
    text: &str,
    label: &'static str,
    matches: impl Fn(&str) -> bool,
    with: Option<&str>,
) -> Result<String, TemplateError> {
    let found = text.lines().filter(|l| matches(l)).count();
    if found != 1 {
        return Err(TemplateError::ManifestLine { line: label, found });
    }
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        if matches(line.trim_end_matches('\n')) {
            if let Some(with) = with {
                out.push_str(with);
                out.push('\n');
            }
        } else {
            out.push_str(line);
        }
    }
    Ok(out)
}

/// `value` as a TOML basic string.
fn toml_string(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The `sdk/` directory of the checkout this binary was built from.
fn built_from_sdk() -> PathBuf {
    normalize(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../../sdk"))
}

/// `path` with `.` and `..` resolved lexically.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// `path` made absolute against the working directory.
fn absolute(path: PathBuf) -> Result<PathBuf, Failure> {
    if path.is_absolute() {
        return Ok(normalize(&path));
    }
    let cwd = std::env::current_dir().map_err(|source| Failure::Io {
        context: "reading the working directory",
        source,
    })?;
    Ok(normalize(&cwd.join(path)))
}

/// Refuses a target that exists and is not an empty directory.
fn check_target(dir: &Path) -> Result<(), Failure> {
    match fs::symlink_metadata(dir) {
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(error) => Err(io_failure("inspecting the target directory", dir, &error)),
        Ok(meta) if !meta.is_dir() => Err(Failure::Input(format!(
            "{} exists and is not a directory; choose another --path",
            dir.display()
        ))),
        Ok(_) => {
            let mut entries = fs::read_dir(dir)
                .map_err(|error| io_failure("reading the target directory", dir, &error))?;
            if entries.next().is_some() {
                Err(Failure::Input(format!(
                    "{} exists and is not empty; choose another --path or empty it first",
                    dir.display()
                )))
            } else {
                Ok(())
            }
        }
    }
}

/// The SDK crate's directory, checked to hold `sessionkit-sdk`, made absolute.
fn sdk_dir(path: &Path, built_in: bool) -> Result<PathBuf, Failure> {
    let how = if built_in {
        "the sessionkit-sdk this binary was built from"
    } else {
        "--sdk-path"
    };
    let fix = "pass --sdk-path DIR (a sessionkit checkout's sdk/) or --sdk-version VERSION";
    let dir = fs::canonicalize(path).map_err(|error| {
        Failure::Input(format!(
            "{how} ({}) is unusable: {error}; {fix}",
            path.display()
        ))
    })?;
    let manifest = fs::read_to_string(dir.join("Cargo.toml")).map_err(|error| {
        Failure::Input(format!(
            "{how} ({}) has no readable Cargo.toml: {error}; {fix}",
            dir.display()
        ))
    })?;
    let package = manifest.parse::<toml::Table>().ok().and_then(|table| {
        table
            .get("package")?
            .get("name")?
            .as_str()
            .map(str::to_owned)
    });
    if package.as_deref() == Some("sessionkit-sdk") {
        Ok(dir)
    } else {
        Err(Failure::Input(format!(
            "{how} ({}) is not the sessionkit-sdk crate (its package is {}); {fix}",
            dir.display(),
            package.map_or_else(|| "unnamed".to_owned(), |name| format!("'{name}'"))
        )))
    }
}

/// Checks a `--sdk-version` requirement as far as a manifest needs it.
fn parse_sdk_version(version: &str) -> Result<String, Failure> {
    let version = version.trim();
    let valid = !version.is_empty()
        && version
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || " .,*^~=<>-+".contains(c));
    if valid {
        Ok(version.to_owned())
    } else {
        Err(Failure::Input(format!(
            "invalid --sdk-version {version:?}: give a Cargo version requirement such as 0.1"
        )))
    }
}

/// Writes `files` into a fresh sibling of `dir` and renames it into place.
fn write_crate(dir: &Path, files: &[(String, String)]) -> Result<(), Failure> {
    let parent = dir
        .parent()
        .ok_or_else(|| Failure::Input(format!("{} has no parent directory", dir.display())))?;
    fs::create_dir_all(parent)
        .map_err(|error| io_failure("creating the parent directory", parent, &error))?;
    let staging = staging_dir(dir, parent)?;
    let written = files.iter().try_for_each(|(path, text)| {
        let file = staging.join(path);
        if let Some(folder) = file.parent() {
            fs::create_dir_all(folder).map_err(|error| {
                io_failure("creating a folder of the new crate", folder, &error)
            })?;
        }
        fs::write(&file, text)
            .map_err(|error| io_failure("writing a file of the new crate", &file, &error))
    });
    let placed = written.and_then(|()| {
        fs::rename(&staging, dir).map_err(|error| match error.kind() {
            io::ErrorKind::DirectoryNotEmpty | io::ErrorKind::AlreadyExists => {
                Failure::Input(format!(
                    "{} exists and is not empty; choose another --path or empty it first",
                    dir.display()
                ))
            }
            _ => io_failure("moving the new crate into place", dir, &error),
        })
    });
    if placed.is_err() {
        // Only ever the staging directory this call created.
        let _ = fs::remove_dir_all(&staging);
    }
    placed
}

/// A new, empty directory next to `dir` to write the crate into.
fn staging_dir(dir: &Path, parent: &Path) -> Result<PathBuf, Failure> {
    let stem = dir
        .file_name()
        .map_or_else(|| "engine".into(), |name| name.to_string_lossy());
    let mut last_error = None;
    for attempt in 0..100 {
        let staging = parent.join(format!(
            ".{stem}.new-engine-{}-{attempt}",
            std::process::id()
        ));
        match fs::create_dir(&staging) {
            Ok(()) => return Ok(staging),
            Err(error) if error.kind() == io::ErrorKind::AlreadyExists => last_error = Some(error),
            Err(error) => {
                return Err(io_failure("creating a staging directory", &staging, &error));
            }
        }
    }
    let error = last_error.unwrap_or_else(|| io::Error::other("no free name"));
    Err(io_failure("creating a staging directory", parent, &error))
}

/// An I/O failure naming the file.
fn io_failure(context: &'static str, path: &Path, error: &io::Error) -> Failure {
    Failure::Io {
        context,
        source: io::Error::new(error.kind(), format!("{}: {error}", path.display())),
    }
}

/// A template inconsistency as a command failure.
fn template_failure(error: TemplateError) -> Failure {
    Failure::Io {
        context: "rendering the built-in engine template",
        source: io::Error::other(error.to_string()),
    }
}

/// `word` quoted for a POSIX shell when it needs quoting.
fn shell_word(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-+:@%,=".contains(c));
    if plain {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(text: &str) -> EngineName {
        EngineName::parse(text).unwrap()
    }

    fn rendered(engine: &str, sdk: &SdkSource) -> Vec<(String, String)> {
        render(&name(engine), sdk).unwrap()
    }

    fn file<'a>(files: &'a [(String, String)], path: &str) -> &'a str {
        &files.iter().find(|(p, _)| p == path).unwrap().1
    }

    fn sdk_path() -> SdkSource {
        SdkSource::Path(PathBuf::from("/checkout/sdk"))
    }

    #[test]
    fn names_follow_the_engine_name_rule() {
        for good in ["a", "redis2", "my_store", "x_1_", "abc123"] {
            assert!(EngineName::parse(good).is_ok(), "{good}");
        }
        for bad in [
            "", "Redis", "2redis", "_a", "my-store", "my.store", "a/b", "a b", "é", "db\n",
        ] {
            let error = EngineName::parse(bad).unwrap_err();
            assert!(error.contains("[a-z][a-z0-9_]*"), "{error}");
        }
    }

    #[test]
    fn names_whose_types_would_clash_with_the_sdks_are_refused() {
        let error = EngineName::parse("session").unwrap_err();
        assert!(error.contains("SessionStore"), "{error}");
        assert!(EngineName::parse("sessions").is_ok());
        assert!(EngineName::parse("memory").is_ok());
    }

    #[test]
    fn names_have_camel_and_upper_spellings() {
        assert_eq!(name("my_store2").camel(), "MyStore2");
        assert_eq!(name("redis").camel(), "Redis");
        assert_eq!(name("a__b_").camel(), "AB");
        assert_eq!(name("my_store2").upper(), "MY_STORE2");
    }

    #[test]
    fn every_template_file_is_compiled_in_except_the_in_repo_tests() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../plugin-template");
        let mut on_disk = Vec::new();
        let mut pending = vec![root.clone()];
        while let Some(dir) = pending.pop() {
            for entry in fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                let relative = path
                    .strip_prefix(&root)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                if relative == "tests" || relative == "target" {
                    continue;
                }
                if path.is_dir() {
                    pending.push(path);
                } else {
                    on_disk.push(relative);
                }
            }
        }
        on_disk.sort();
        let mut embedded: Vec<String> = TEMPLATE_FILES.iter().map(|f| f.path.to_owned()).collect();
        embedded.sort();
        assert_eq!(embedded, on_disk);
    }

    #[test]
    fn rendered_files_never_mention_the_template_name() {
        for sdk in [sdk_path(), SdkSource::Version("0.1".to_owned())] {
            for (path, text) in rendered("zq_store", &sdk) {
                assert!(
                    !text.to_ascii_lowercase().contains("template"),
                    "{path} still says 'template':\n{text}"
                );
                assert!(!text.contains("new-engine: omit"), "{path} kept a marker");
            }
        }
    }

    #[test]
    fn rendered_files_name_the_new_engine_everywhere() {
        let files = rendered("zq_store", &sdk_path());
        let manifest = file(&files, "Cargo.toml");
        assert!(
            manifest.contains("name = \"sessionkit-engine-zq_store\""),
            "{manifest}"
        );
        let lib = file(&files, "src/lib.rs");
        assert!(
            lib.contains("pub const ENGINE_NAME: &str = \"zq_store\";"),
            "{lib}"
        );
        assert!(lib.contains("pub struct ZqStoreEngine;"), "{lib}");
        assert!(lib.contains("export_engine!(ZqStoreEngine)"), "{lib}");
        let config = file(&files, "src/config.rs");
        assert!(
            config.contains("\"SESSION_ZQ_STORE_MAX_SESSIONS\""),
            "{config}"
        );
        let readme = file(&files, "README.md");
        assert!(
            readme.starts_with("# sessionkit-engine-zq_store\n"),
            "{readme}"
        );
        assert!(
            readme.contains("libsessionkit_engine_zq_store.so"),
            "{readme}"
        );
        assert!(
            !readme.contains("new-engine NAME"),
            "the in-repo section is left out"
        );
    }

    #[test]
    fn manifest_is_a_standalone_workspace_with_the_sdk_by_path() {
        let files = rendered("zq", &SdkSource::Path(PathBuf::from("/a \"b\"/sdk")));
        let manifest: toml::Table = file(&files, "Cargo.toml").parse().unwrap();
        assert!(manifest["workspace"].as_table().unwrap().is_empty());
        let package = manifest["package"].as_table().unwrap();
        assert_eq!(package["version"].as_str(), Some("0.1.0"));
        assert_eq!(package["edition"].as_str(), Some(EDITION));
        assert_eq!(
            package["rust-version"].as_str(),
            Some(env!("CARGO_PKG_RUST_VERSION"))
        );
        assert!(!package.contains_key("license"));
        let deps = manifest["dependencies"].as_table().unwrap();
        assert_eq!(
            deps["sessionkit-sdk"]["path"].as_str(),
            Some("/a \"b\"/sdk")
        );
        assert!(!manifest.contains_key("dev-dependencies"));
        assert!(!manifest.contains_key("test"));
        let lib = manifest["lib"].as_table().unwrap();
        assert_eq!(
            lib["crate-type"].as_array().unwrap().len(),
            2,
            "cdylib and rlib"
        );
    }

    #[test]
    fn manifest_can_depend_on_the_published_sdk() {
        let files = rendered("zq", &SdkSource::Version("0.1".to_owned()));
        let manifest: toml::Table = file(&files, "Cargo.toml").parse().unwrap();
        assert_eq!(
            manifest["dependencies"]["sessionkit-sdk"].as_str(),
            Some("0.1")
        );
    }

    #[test]
    fn manifest_pins_abi_stable_exactly_as_the_workspace_does() {
        let workspace: toml::Table = include_str!("../../../../Cargo.toml").parse().unwrap();
        let pinned = workspace["workspace"]["dependencies"]["abi_stable"]["version"]
            .as_str()
            .unwrap();
        assert!(
            pinned.starts_with('='),
            "the workspace pins abi_stable exactly"
        );
        let files = rendered("zq", &sdk_path());
        let manifest: toml::Table = file(&files, "Cargo.toml").parse().unwrap();
        assert_eq!(
            manifest["dependencies"]["abi_stable"]["version"].as_str(),
            Some(pinned)
        );
        assert_eq!(
            workspace["workspace"]["package"]["edition"].as_str(),
            Some(EDITION)
        );
    }

    #[test]
    fn unbalanced_markers_are_reported() {
        let open = format!("a\n# {OMIT_START}\nb\n");
        assert_eq!(
            strip_omitted("x", &open),
            Err(TemplateError::UnbalancedMarkers { file: "x", line: 2 })
        );
        let close = format!("a\n# {OMIT_END}\n");
        assert_eq!(
            strip_omitted("x", &close),
            Err(TemplateError::UnbalancedMarkers { file: "x", line: 2 })
        );
        let kept = format!("a\n# {OMIT_START}\nb\n# {OMIT_END}\nc\n");
        assert_eq!(strip_omitted("x", &kept).unwrap(), "a\nc\n");
    }

    #[test]
    fn the_built_in_sdk_path_is_this_checkouts_sdk() {
        let sdk = built_from_sdk();
        assert!(sdk.is_absolute());
        assert!(sdk.ends_with("sdk"));
        assert_eq!(
            sdk_dir(&sdk, true).unwrap(),
            fs::canonicalize(&sdk).unwrap()
        );
    }

    #[test]
    fn a_directory_that_is_not_the_sdk_is_refused() {
        let here = Path::new(env!("CARGO_MANIFEST_DIR"));
        let error = sdk_dir(here, false).unwrap_err().to_string();
        assert!(error.contains("not the sessionkit-sdk crate"), "{error}");
        assert!(error.contains("'sessionkit-cli'"), "{error}");
    }

    #[test]
    fn shell_words_are_quoted_only_when_needed() {
        assert_eq!(shell_word("/tmp/a_b/c.so"), "/tmp/a_b/c.so");
        assert_eq!(shell_word("/tmp/a b"), "'/tmp/a b'");
        assert_eq!(shell_word("it's"), r"'it'\''s'");
    }
}
