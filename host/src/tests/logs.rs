//! Captures `tracing` events on the current thread, so tests can pin what is logged.

use std::{
    fmt,
    sync::{Arc, Mutex},
};

use tracing::{
    Event, Level, Metadata, Subscriber,
    field::{Field, Visit},
    span,
};

/// One captured event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Logged {
    pub target: String,
    pub level: Level,
    pub message: String,
}

/// Runs `f` with a subscriber that records every event, and returns them with `f`'s result.
pub(super) fn capture<T>(f: impl FnOnce() -> T) -> (T, Vec<Logged>) {
    let events = Arc::new(Mutex::new(Vec::new()));
    let subscriber = Capture {
        events: Arc::clone(&events),
    };
    let result = tracing::subscriber::with_default(subscriber, f);
    let logged = events.lock().unwrap().clone();
    (result, logged)
}

/// The security warnings among `logged`.
pub(super) fn corrupted_warnings(logged: &[Logged]) -> usize {
    logged
        .iter()
        .filter(|e| {
            e.target == "sessionkit::security"
                && e.level == Level::WARN
                && e.message.starts_with("Session data corrupted")
        })
        .count()
}

struct Capture {
    events: Arc<Mutex<Vec<Logged>>>,
}

struct MessageVisitor(String);

impl Visit for MessageVisitor {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            self.0 = format!("{value:?}");
        }
    }
}

impl Subscriber for Capture {
    fn enabled(&self, _metadata: &Metadata<'_>) -> bool {
        true
    }

    fn new_span(&self, _span: &span::Attributes<'_>) -> span::Id {
        span::Id::from_u64(1)
    }

    fn record(&self, _span: &span::Id, _values: &span::Record<'_>) {}

    fn record_follows_from(&self, _span: &span::Id, _follows: &span::Id) {}

    fn event(&self, event: &Event<'_>) {
        let mut visitor = MessageVisitor(String::new());
        event.record(&mut visitor);
        self.events.lock().unwrap().push(Logged {
            target: event.metadata().target().to_owned(),
            level: *event.metadata().level(),
            message: visitor.0,
        });
    }

    fn enter(&self, _span: &span::Id) {}

    fn exit(&self, _span: &span::Id) {}
}
