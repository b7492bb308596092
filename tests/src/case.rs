//! One conformance case, its verdict, and the reason it gives when it fails.

use std::{
    fmt,
    panic::{AssertUnwindSafe, catch_unwind},
    sync::RwLock,
};

use sessionkit::{Capabilities, KeyFormat};

use crate::{Target, target::Profile};

/// The area of behaviour a case belongs to (one source file of cases per area).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Group {
    /// One case per `# Behavior` line of the store contract, through `Engine::store()`.
    Contract,
    /// The dict-like operations of a session and their `accessed`/`modified` flags.
    Mapping,
    /// Session keys: minting, validation, invalid and hostile keys.
    Keys,
    /// save, create, delete, flush, cycle_key and load, as Django's `SessionBase` does them.
    Lifecycle,
    /// Expiry arithmetic, server-side expiry and `clear_expired`.
    Expiry,
    /// The `_async` twins of every session method that may touch the engine.
    Async,
    /// Hostile or broken input that reaches the session layer.
    BadInput,
    /// What is stored is Django's signed format.
    Wire,
    /// Listing and deleting the sessions of an account (the `ACCOUNT_INDEX` capability).
    AccountIndex,
}

impl Group {
    /// The group's short name, as printed in listings.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Contract => "contract",
            Self::Mapping => "mapping",
            Self::Keys => "keys",
            Self::Lifecycle => "lifecycle",
            Self::Expiry => "expiry",
            Self::Async => "async",
            Self::BadInput => "bad_input",
            Self::Wire => "wire",
            Self::AccountIndex => "account_index",
        }
    }
}

impl fmt::Display for Group {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a case failed, in one line a person can act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    message: String,
}

impl Failure {
    /// A failure with `message`.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
        }
    }

    /// What went wrong.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl From<sessionkit::Error> for Failure {
    fn from(error: sessionkit::Error) -> Self {
        match error.kind() {
            Some(kind) => Self::new(format!("unexpected error ({kind}): {error}")),
            None => Self::new(format!("unexpected error: {error}")),
        }
    }
}

impl From<serde_json::Error> for Failure {
    fn from(error: serde_json::Error) -> Self {
        Self::new(format!("unexpected JSON error: {error}"))
    }
}

impl From<std::io::Error> for Failure {
    fn from(error: std::io::Error) -> Self {
        Self::new(format!("unexpected I/O error: {error}"))
    }
}

/// The verdict on one case against one target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The rule holds.
    Passed,
    /// The rule does not hold (or the case panicked); the reason says how.
    Failed(String),
    /// The rule does not apply to this engine; the reason says why.
    Skipped(String),
}

/// One named rule, the capabilities it needs, and the function that checks it.
#[derive(Debug, Clone, Copy)]
pub struct Case {
    /// The rule, as a sentence in snake case (`load_of_unknown_key_creates_nothing`).
    pub name: &'static str,
    /// The area it belongs to.
    pub group: Group,
    /// Capabilities the engine must have for the rule to apply.
    pub requires: Capabilities,
    /// Capabilities the engine must *not* have (rules about engines that lack one).
    pub excludes: Capabilities,
    /// The key format the rule is written for, if it depends on one.
    pub key_format: Option<KeyFormat>,
    /// Why the rule does not apply to an engine lacking `requires`; shown on skip.
    pub skip_unless: Option<&'static str>,
    /// Why the rule does not apply to an engine having one of `excludes`; shown on skip.
    pub skip_if_excluded: Option<&'static str>,
    /// Why the rule does not apply to an engine of another key format; shown on skip.
    pub skip_unless_key_format: Option<&'static str>,
    /// Whether the case must run alone: it removes records other cases may rely on (every
    /// `clear_expired` case), so no other case of the process runs at the same time.
    pub exclusive: bool,
    /// Checks the rule against a target.
    pub run: fn(&Target) -> Result<(), Failure>,
}

/// Held for reading by every running case and for writing by an exclusive one, so a
/// `clear_expired` never removes the expired records another case is still looking at in a
/// shared store, and never races another case's count.
static RUNNING: RwLock<()> = RwLock::new(());

impl Case {
    /// A case that applies to every engine.
    pub const fn new(
        name: &'static str,
        group: Group,
        run: fn(&Target) -> Result<(), Failure>,
    ) -> Self {
        Self {
            name,
            group,
            requires: Capabilities::NONE,
            excludes: Capabilities::NONE,
            key_format: None,
            skip_unless: None,
            skip_if_excluded: None,
            skip_unless_key_format: None,
            exclusive: false,
            run,
        }
    }

    /// Runs alone (see [`Case::exclusive`]).
    pub const fn exclusive(mut self) -> Self {
        self.exclusive = true;
        self
    }

    /// Also requires `capabilities`; `reason` is shown when the engine lacks them.
    pub const fn requires(mut self, capabilities: Capabilities, reason: &'static str) -> Self {
        self.requires = self.requires.union(capabilities);
        self.skip_unless = Some(reason);
        self
    }

    /// Applies only to engines *without* `capabilities`; `reason` is shown otherwise.
    pub const fn excludes(mut self, capabilities: Capabilities, reason: &'static str) -> Self {
        self.excludes = self.excludes.union(capabilities);
        self.skip_if_excluded = Some(reason);
        self
    }

    /// Applies only to engines whose keys have `format`; `reason` is shown otherwise.
    pub const fn key_format(mut self, format: KeyFormat, reason: &'static str) -> Self {
        self.key_format = Some(format);
        self.skip_unless_key_format = Some(reason);
        self
    }

    /// Why this case does not apply to an engine with `profile`, or `None` if it does: the
    /// written reason of each gate the engine fails, with what the engine lacks or has.
    pub fn skip_reason(&self, profile: &Profile) -> Option<String> {
        let missing = Capabilities::from_bits(self.requires.bits & !profile.capabilities.bits);
        let present = Capabilities::from_bits(self.excludes.bits & profile.capabilities.bits);
        let mut reasons = Vec::new();
        if missing != Capabilities::NONE {
            let why = self
                .skip_unless
                .unwrap_or("the engine lacks a capability this rule needs");
            reasons.push(format!(
                "{why} (engine '{}' lacks {})",
                profile.name,
                names(missing)
            ));
        }
        if present != Capabilities::NONE {
            let why = self
                .skip_if_excluded
                .unwrap_or("the rule is for engines without it");
            reasons.push(format!(
                "{why} (engine '{}' has {})",
                profile.name,
                names(present)
            ));
        }
        if let Some(format) = self
            .key_format
            .filter(|format| *format != profile.key_format)
        {
            let why = self
                .skip_unless_key_format
                .unwrap_or("the rule is for another key format");
            reasons.push(format!(
                "{why} (engine '{}' keys are {:?}, the rule needs {format:?})",
                profile.name, profile.key_format
            ));
        }
        (!reasons.is_empty()).then(|| reasons.join("; "))
    }

    /// Runs the case against `target` (or skips it), turning a panic into a failure.
    pub fn evaluate(&self, target: &Target) -> Outcome {
        let profile = match target.profile() {
            Ok(profile) => profile,
            Err(error) => return Outcome::Failed(format!("the engine did not open: {error}")),
        };
        if let Some(reason) = self.skip_reason(profile) {
            return Outcome::Skipped(reason);
        }
        // A case that panicked while holding the lock leaves it poisoned; the lock guards no
        // data, so the next case may go on.
        let (_shared, _alone) = if self.exclusive {
            (
                None,
                Some(
                    RUNNING
                        .write()
                        .unwrap_or_else(|poisoned| poisoned.into_inner()),
                ),
            )
        } else {
            (
                Some(
                    RUNNING
                        .read()
                        .unwrap_or_else(|poisoned| poisoned.into_inner()),
                ),
                None,
            )
        };
        match catch_unwind(AssertUnwindSafe(|| (self.run)(target))) {
            Ok(Ok(())) => Outcome::Passed,
            Ok(Err(failure)) => Outcome::Failed(failure.message),
            Err(payload) => {
                let message = payload
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_owned())
                    .or_else(|| payload.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "a non-string panic payload".to_owned());
                Outcome::Failed(format!("panicked: {message}"))
            }
        }
    }
}

/// `CLEAR_EXPIRED, ACCOUNT_INDEX`: capability names as the SDK spells its constants.
fn names(capabilities: Capabilities) -> String {
    capabilities
        .names()
        .map(str::to_uppercase)
        .collect::<Vec<_>>()
        .join(", ")
}
