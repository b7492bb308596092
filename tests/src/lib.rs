//! The sessionkit conformance suite: named cases that any engine library is run against.
//!
//! Each case is a small documented function that pins one rule: a line of a `# Behavior` list of
//! the store contract (`sessionkit_sdk::SessionStore`), a test of Django's own session suite
//! (`tests/sessions_tests/tests.py`, ported in sync and async form), a CVE's regression test, a
//! row of the bad-input catalogue, or a Django quirk that sessionkit keeps
//! (`django_compatible_…`) or fixes (`fixed_…`). A case is registered with the capabilities and
//! the key format it needs; on an engine without them it is *skipped with its written reason*,
//! never dropped.
//!
//! A [`Target`] says how to open a fresh [`sessionkit::Engine`] for each case; [`run`] runs every
//! case and prints one line per case, and [`libtest_trials`] turns the cases into libtest-mimic
//! trials for a `harness = false` test.
//!
//! ```no_run
//! use sessionkit::{Engine, Settings};
//! use sessionkit_conformance::{Target, run};
//!
//! let settings = Settings::new("a secret key");
//! let target = Target::new(Box::new(move || Engine::load("db", &settings)));
//! let report = run(&target, None, &mut std::io::stdout());
//! assert_eq!(report.failed, 0);
//! ```

/// Fails the running case with a formatted message unless the condition holds.
macro_rules! ensure {
    ($cond:expr, $($message:tt)+) => {
        if !$cond {
            return Err($crate::Failure::new(format!($($message)+)));
        }
    };
}

/// Fails the running case unless both values are equal, showing both.
macro_rules! ensure_eq {
    ($got:expr, $expected:expr, $($message:tt)+) => {
        match (&$got, &$expected) {
            (got, expected) => {
                if got != expected {
                    return Err($crate::Failure::new(format!(
                        "{}: got {:?}, expected {:?}",
                        format_args!($($message)+),
                        got,
                        expected
                    )));
                }
            }
        }
    };
}

mod case;
mod cases;
mod runner;
mod support;
mod target;

pub use case::{Case, Failure, Group, Outcome};
pub use cases::cases;
pub use runner::{Report, Tally, libtest_trials, libtest_trials_tallied, run};
pub use target::{Profile, Target};
