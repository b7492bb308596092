//! sessionkit's conformance suite against this engine's own built library, loaded by path the
//! way an application loads it: `cargo test -p sessionkit-engine-template`.
//!
//! cargo builds the crate's `cdylib` before this test (an integration test links the library
//! target, and building the library target builds all its crate types) into the directory of
//! this test's executable, `target/<profile>/deps`, where [`sessionkit_testkit::plugin_dir`]
//! finds it. One trial per case, named `<engine>::<case>`; a case the engine's capabilities
//! rule out is reported as ignored, with its reason.

use std::{path::PathBuf, process::ExitCode, sync::Arc};

use libtest_mimic::Arguments;
use sessionkit::Settings;
use sessionkit_conformance::{Tally, Target, libtest_trials_tallied};
use sessionkit_testkit::plugin_dir;

/// The secret the suite signs its throwaway sessions with.
const SECRET_KEY: &str = "sessionkit-engine-conformance-secret-not-for-production";

/// This package's library file: package `sessionkit-engine-<name>` builds
/// `libsessionkit_engine_<name>.so`.
fn library() -> PathBuf {
    let stem = env!("CARGO_PKG_NAME").replace('-', "_");
    plugin_dir().join(format!(
        "{}{stem}{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    ))
}

fn main() -> ExitCode {
    let args = Arguments::from_args();
    let library = library();
    if !library.is_file() {
        eprintln!(
            "{} was not built: run this test through `cargo test -p {}`",
            library.display(),
            env!("CARGO_PKG_NAME")
        );
        return ExitCode::FAILURE;
    }
    let label = env!("CARGO_PKG_NAME")
        .strip_prefix("sessionkit-engine-")
        .unwrap_or(env!("CARGO_PKG_NAME"));
    let target = Target::from_settings(library.to_string_lossy(), || Settings::new(SECRET_KEY))
        .labelled(label);
    let tally = Tally::new();
    let trials = libtest_trials_tallied(Arc::new(target), label, &tally);
    let conclusion = libtest_mimic::run(&args, trials);
    for (label, report) in tally.reports() {
        println!("{label}: {}", report.summary());
    }
    conclusion.exit_code()
}
