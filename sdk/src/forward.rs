//! The plugin side of the host's log: engine `tracing` events and panics go to the host.
//!
//! A plugin library links its own copy of `tracing-core` and of `std`, so its events would go
//! to a subscriber nobody installed and its panics would print through its own default hook
//! straight to stderr. When the host opens a store with its services (contract 0.2), the SDK
//! installs, inside the plugin, a subscriber that hands every enabled event to the host
//! ([`FfiHost::log`](crate::host::FfiHost::log)); the host records it in its own subscriber with
//! the engine's name and the event's level. The panic hook installed at load prints nothing:
//! the panic's message and place travel in the returned
//! [`ErrorKind::Panicked`](crate::ErrorKind::Panicked) error, and the backtrace goes to the
//! host's log at debug level.

use std::{
    backtrace::Backtrace,
    cell::RefCell,
    fmt::{self, Write as _},
    sync::{Once, OnceLock},
};

use abi_stable::std_types::RStr;
use tracing_core::{
    Event, Interest, Level, LevelFilter, Metadata, Subscriber,
    field::{Field, Visit},
    span,
};

use crate::host::{HostBox, LogLevel};

/// The services of the first host that opened a store of this library: where events go.
static SINK: OnceLock<HostBox> = OnceLock::new();

thread_local! {
    /// Where the last panic on this thread happened, for the error the guard returns.
    static LAST_PANIC_PLACE: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Sends this library's `tracing` events to `host` from now on. The first host wins: one
/// process has one host, and every store of a library reports under the library's name.
pub(crate) fn connect(host: &HostBox) {
    if SINK.set(host.clone()).is_ok() {
        // Fails only if the engine installed a global subscriber of its own; then its events
        // stay where the engine chose to send them.
        let _ =
            tracing_core::dispatcher::set_global_default(tracing_core::Dispatch::new(Forwarder));
    }
}

/// Replaces the library's panic hook, once, by one that prints nothing and remembers where the
/// panic happened (see the module docs).
pub(crate) fn install_quiet_panic_hook() {
    static INSTALLED: Once = Once::new();
    INSTALLED.call_once(|| {
        std::panic::set_hook(Box::new(|info| {
            let place = info
                .location()
                .map(|l| format!("{}:{}:{}", l.file(), l.line(), l.column()));
            if let Some(sink) = SINK.get()
                && sink.max_level() <= LogLevel::Debug
            {
                let message = format!(
                    "engine panicked at {}: {}\n{}",
                    place.as_deref().unwrap_or("an unknown place"),
                    panic_message(info.payload()),
                    Backtrace::force_capture()
                );
                sink.log(
                    LogLevel::Debug,
                    RStr::from("sessionkit_sdk::panic"),
                    RStr::from(message.as_str()),
                );
            }
            LAST_PANIC_PLACE.with(|last| *last.borrow_mut() = place);
        }));
    });
}

/// Where the last panic caught on this thread happened (`file:line:column`), taken once.
pub(crate) fn take_panic_place() -> Option<String> {
    LAST_PANIC_PLACE.with(|last| last.borrow_mut().take())
}

/// The text of a panic payload (`panic!` with a literal or a formatted message).
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a non-string panic payload".to_owned())
}

/// The subscriber installed inside the plugin: enabled events go to the host, spans are not
/// kept (the host's own spans around engine calls already say which call it was).
struct Forwarder;

impl Forwarder {
    fn sink() -> Option<&'static HostBox> {
        SINK.get()
    }
}

impl Subscriber for Forwarder {
    fn register_callsite(&self, _: &'static Metadata<'static>) -> Interest {
        // Asked again at every event: the host's level may change after the callsite was first
        // seen (a subscriber installed later, a reloaded filter), and this library's copy of
        // tracing would never hear of it.
        Interest::sometimes()
    }

    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        Self::sink().is_some_and(|sink| level_of(*metadata.level()) >= sink.max_level())
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        // No static filter inside the plugin, for the same reason: `enabled` asks the host.
        None
    }

    fn new_span(&self, _: &span::Attributes<'_>) -> span::Id {
        span::Id::from_u64(1)
    }

    fn record(&self, _: &span::Id, _: &span::Record<'_>) {}

    fn record_follows_from(&self, _: &span::Id, _: &span::Id) {}

    fn event(&self, event: &Event<'_>) {
        let Some(sink) = Self::sink() else {
            return;
        };
        let mut text = MessageText::default();
        event.record(&mut text);
        let metadata = event.metadata();
        sink.log(
            level_of(*metadata.level()),
            RStr::from(metadata.target()),
            RStr::from(text.0.as_str()),
        );
    }

    fn enter(&self, _: &span::Id) {}

    fn exit(&self, _: &span::Id) {}
}

fn level_of(level: Level) -> LogLevel {
    match level {
        Level::TRACE => LogLevel::Trace,
        Level::DEBUG => LogLevel::Debug,
        Level::INFO => LogLevel::Info,
        Level::WARN => LogLevel::Warn,
        _ => LogLevel::Error,
    }
}

/// An event's message followed by its other fields as `name=value`.
#[derive(Default)]
struct MessageText(String);

impl Visit for MessageText {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.push(field, format_args!("{value}"));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.push(field, format_args!("{value:?}"));
    }
}

impl MessageText {
    fn push(&mut self, field: &Field, value: fmt::Arguments<'_>) {
        if field.name() == "message" {
            if self.0.is_empty() {
                let _ = self.0.write_fmt(value);
            } else {
                let fields = std::mem::take(&mut self.0);
                let _ = write!(self.0, "{value} {fields}");
            }
        } else {
            if !self.0.is_empty() {
                self.0.push(' ');
            }
            let _ = write!(self.0, "{}={value}", field.name());
        }
    }
}
