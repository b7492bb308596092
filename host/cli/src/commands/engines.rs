//! `sessionkit engines`: what `SESSION_ENGINE` can name on this machine.

use std::process::ExitCode;

use sessionkit::loader::{discover_engines, engine_search_path};

use crate::failure::Failure;

/// Prints one line per engine library found in the search path, and one per library that
/// failed to load (with why).
pub(crate) fn run() -> Result<ExitCode, Failure> {
    let search = engine_search_path();
    let found = discover_engines(&search);
    if found.is_empty() {
        let dirs: Vec<String> = search.iter().map(|d| d.display().to_string()).collect();
        println!("no engine libraries found in {}", dirs.join(", "));
        return Ok(ExitCode::SUCCESS);
    }
    for entry in found {
        match entry {
            Ok(library) => {
                let info = &library.info;
                let capabilities: Vec<&str> = info.capabilities.names().collect();
                println!(
                    "{name}\tversion {version}\tsalt {salt}\tcapabilities [{caps}]\tkeys {keys:?}\t{path}",
                    name = info.name,
                    version = info.version,
                    salt = info.salt,
                    caps = capabilities.join(", "),
                    keys = info.key_format,
                    path = library.path.display(),
                );
            }
            Err(error) => println!("(failed)\t{error}"),
        }
    }
    Ok(ExitCode::SUCCESS)
}
