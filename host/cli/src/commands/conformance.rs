//! `sessionkit conformance <engine>`: the conformance suite against any engine library.

use std::{io::Write, process::ExitCode, sync::Arc};

use sessionkit::{Engine, Settings, SettingsError, plugin::Contract};
use sessionkit_conformance::Target;

use crate::failure::Failure;

/// Arguments of `sessionkit conformance`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The engine: a short name (`cache`), a Django dotted name, or a library path.
    pub engine: String,
    /// Run only the cases whose name contains this text.
    #[arg(long)]
    pub filter: Option<String>,
}

/// Runs the suite, prints one line per case and the closing `N passed, N failed` line; exits
/// non-zero if any case failed.
pub(crate) fn run(args: &Args) -> Result<ExitCode, Failure> {
    let settings = Arc::new(settings_for_conformance()?);
    // Load once up front so a library that cannot load fails with its one-line reason.
    let engine = Engine::load(&args.engine, &settings)?;
    if engine.contract() < Contract::V0_2 {
        // The loader's warning is below this command's log level: say it here, once.
        eprintln!(
            "sessionkit: engine '{}' was built against contract {}: the cases of later \
             capabilities are skipped",
            engine.description().name,
            engine.contract().as_str()
        );
    }
    let spec = args.engine.clone();
    let target = Target::new(Box::new(move || Engine::load(&spec, &settings)));
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let report = sessionkit_conformance::run(&target, args.filter.as_deref(), &mut out);
    out.flush().map_err(|source| Failure::Io {
        context: "writing standard output",
        source,
    })?;
    Ok(if report.failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// The configured settings; without a `SECRET_KEY` the suite signs its own throwaway sessions
/// with a random one (they are never read by anything else).
fn settings_for_conformance() -> Result<Settings, Failure> {
    match Settings::load() {
        Ok(settings) => Ok(settings),
        Err(SettingsError::MissingSecretKey) => {
            let secret = format!("conformance-{}", sessionkit_codec::key::new_session_key());
            eprintln!("sessionkit: no SECRET_KEY configured; the suite signs with a random one");
            let toml = settings_file_text()?;
            let env = std::env::vars().chain([("SECRET_KEY".to_owned(), secret)]);
            Ok(Settings::from_sources(toml.as_deref(), env)?)
        }
        Err(other) => Err(other.into()),
    }
}

/// The settings file's text, found as `Settings::load` finds it.
fn settings_file_text() -> Result<Option<String>, Failure> {
    let path = match std::env::var_os("SESSIONKIT_SETTINGS") {
        Some(path) => std::path::PathBuf::from(path),
        None => std::path::PathBuf::from("sessionkit.toml"),
    };
    match std::fs::read_to_string(&path) {
        Ok(text) => Ok(Some(text)),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(Failure::Io {
            context: "reading the settings file",
            source,
        }),
    }
}
