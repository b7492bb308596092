//! How the suite gets a fresh engine for each case.

use std::{fmt, sync::Arc, sync::OnceLock};

use chrono::{SubsecRound, Utc};
use sessionkit::{Capabilities, Engine, KeyFormat, ManualClock, Settings};

use crate::Failure;

/// Opens a fresh engine; each call is independent.
type Factory = Box<dyn Fn() -> Result<Engine, sessionkit::Error> + Send + Sync>;

/// Makes the settings of a fresh engine; each call is independent.
type SettingsFactory = Box<dyn Fn() -> Settings + Send + Sync>;

/// Opens an engine with the given settings.
type Opener = Box<dyn Fn(&Settings) -> Result<Engine, sessionkit::Error> + Send + Sync>;

/// What a case may branch on, read once from the engine of a target.
#[derive(Debug, Clone)]
pub struct Profile {
    /// The engine's name.
    pub name: String,
    /// What it can do.
    pub capabilities: Capabilities,
    /// Which keys it accepts.
    pub key_format: KeyFormat,
}

/// The engine under test: how to open a fresh [`Engine`] for each case.
pub struct Target {
    label: String,
    source: Source,
    profile: OnceLock<Result<Profile, String>>,
}

enum Source {
    /// An opaque factory; settings tweaks reopen the same library with edited settings.
    Factory(Factory),
    /// A settings factory and an opener; tweaks edit fresh settings before opening.
    Configurable {
        settings: SettingsFactory,
        open: Opener,
    },
}

impl Target {
    /// A target whose engines come from `factory` (called once per case).
    pub fn new(factory: Factory) -> Self {
        Self::from_source(Source::Factory(factory))
    }

    /// A target that opens `spec` (a short name, Django dotted name or library path) with the
    /// settings `settings` makes, once per case; cases that need other settings edit a fresh copy.
    pub fn from_settings(
        spec: impl Into<String>,
        settings: impl Fn() -> Settings + Send + Sync + 'static,
    ) -> Self {
        let spec = spec.into();
        Self::configurable(settings, move |settings| Engine::load(&spec, settings))
    }

    /// A target that opens engines with `open`, given the settings `settings` makes (edited
    /// first for cases that need other settings); for engines built in-process.
    pub fn configurable(
        settings: impl Fn() -> Settings + Send + Sync + 'static,
        open: impl Fn(&Settings) -> Result<Engine, sessionkit::Error> + Send + Sync + 'static,
    ) -> Self {
        Self::from_source(Source::Configurable {
            settings: Box::new(settings),
            open: Box::new(open),
        })
    }

    fn from_source(source: Source) -> Self {
        Self {
            label: String::from("engine"),
            source,
            profile: OnceLock::new(),
        }
    }

    /// Names the target in listings (`cache`, `db-postgres`, ...).
    pub fn labelled(mut self, label: impl Into<String>) -> Self {
        self.label = label.into();
        self
    }

    /// The target's label.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// The engine's name, capabilities and key format, from an engine opened once.
    ///
    /// # Errors
    ///
    /// The engine's opening error, as text, when it cannot be opened.
    pub fn profile(&self) -> Result<&Profile, &str> {
        self.profile
            .get_or_init(|| {
                let engine = self.open().map_err(|error| error.to_string())?;
                let description = engine.description();
                Ok(Profile {
                    name: description.name.clone(),
                    capabilities: description.capabilities,
                    key_format: description.key_format,
                })
            })
            .as_ref()
            .map_err(String::as_str)
    }

    /// A fresh engine for one case.
    ///
    /// # Errors
    ///
    /// A [`Failure`] naming the opening error.
    pub fn engine(&self) -> Result<Engine, Failure> {
        self.open()
            .map_err(|error| Failure::new(format!("the engine did not open: {error}")))
    }

    /// A fresh engine opened with settings edited by `tweak` (same library, same store
    /// location unless the tweak changes it).
    ///
    /// # Errors
    ///
    /// A [`Failure`] naming the opening error.
    pub fn engine_with(&self, tweak: impl FnOnce(&mut Settings)) -> Result<Engine, Failure> {
        let opened = match &self.source {
            Source::Configurable { settings, open } => {
                let mut settings = settings();
                tweak(&mut settings);
                open(&settings)
            }
            Source::Factory(factory) => factory().and_then(|engine| {
                let mut settings = engine.settings().clone();
                tweak(&mut settings);
                let path = engine.description().path.to_string_lossy().into_owned();
                Engine::load(&path, &settings)
            }),
        };
        opened.map_err(|error| {
            Failure::new(format!(
                "the engine did not open with edited settings: {error}"
            ))
        })
    }

    /// A fresh engine whose host-side clock is a [`ManualClock`] the case controls, starting at
    /// the current whole second (the engine itself still judges expiry by real time).
    ///
    /// # Errors
    ///
    /// A [`Failure`] naming the opening error.
    pub fn engine_with_clock(&self) -> Result<(Engine, ManualClock), Failure> {
        let clock = ManualClock::new(Utc::now().trunc_subsecs(0));
        let engine = self.engine()?.with_clock(Arc::new(clock.clone()));
        Ok((engine, clock))
    }

    fn open(&self) -> Result<Engine, sessionkit::Error> {
        match &self.source {
            Source::Factory(factory) => factory(),
            Source::Configurable { settings, open } => open(&settings()),
        }
    }
}

impl fmt::Debug for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Target")
            .field("label", &self.label)
            .finish_non_exhaustive()
    }
}
