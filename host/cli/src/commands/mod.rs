//! One module per subcommand.

pub(crate) mod clearsessions;
pub(crate) mod codec;
pub(crate) mod conformance;
pub(crate) mod demo;
pub(crate) mod engines;
pub(crate) mod new_engine;
pub(crate) mod session;

use std::io::Read;

use crate::failure::Failure;

/// All of standard input as a string.
pub(crate) fn read_stdin() -> Result<String, Failure> {
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
pub(crate) fn settings() -> Result<sessionkit::Settings, Failure> {
    Ok(sessionkit::Settings::load()?)
}
