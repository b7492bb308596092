//! One module per subcommand.

pub mod clearsessions;
pub mod codec;
pub mod conformance;
pub mod demo;
pub mod engines;
pub mod new_engine;
pub mod session;

use std::io::Read;

use crate::failure::Failure;

/// All of standard input as a string.
pub fn read_stdin() -> Result<String, Failure> {
    let mut input = String::new();
    std::io::stdin()
        .read_to_string(&mut input)
        .map_err(|source| Failure::Io {
            context: "reading standard input",
            source,
        })?;
    Ok(input)
}

/// The settings every engine command uses.
pub fn settings() -> Result<sessionkit::Settings, Failure> {
    Ok(sessionkit::Settings::load()?)
}
