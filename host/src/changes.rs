//! What one request changed in its session, kept so it can be replayed onto a newer record.
//!
//! Two requests of one visitor load the same record, each changes a few keys, each saves: with
//! whole-record writes the last one wins and the other's keys are lost (Django and every peer
//! behave so). With an engine that offers a conditional save, the host instead saves only if the
//! record is still the one it loaded; on a conflict it takes the record stored now, replays this
//! request's changes onto it — keys set and removed, a `clear()`, the atomic updates — and tries
//! again. Keys this request did not touch keep what the other request wrote.

use serde_json::Value;
use sessionkit_codec::SessionMap;

/// An atomic read-modify-write of one key, re-run on the newest value after a conflict.
pub(crate) type Update = Box<dyn FnMut(Option<&Value>) -> Value + Send>;

/// One change to the session's dictionary.
enum Change {
    /// `session[key] = value` (`set_expiry` too: it is the `_session_expiry` key).
    Set(String, Value),
    /// `del session[key]` / `pop`.
    Remove(String),
    /// `clear()`: every key this request did not set afterwards goes.
    Clear,
    /// An atomic update of `key`, re-run against the newest value (behind a lock only so the
    /// session stays `Sync`; nothing else ever holds it).
    Update(String, parking_lot::Mutex<Update>),
}

/// The changes a request made since the session was loaded or last saved, in order.
#[derive(Default)]
pub(crate) struct Changes {
    log: Vec<Change>,
}

impl Changes {
    /// Records `session[key] = value`.
    pub(crate) fn set(&mut self, key: &str, value: &Value) {
        self.log.push(Change::Set(key.to_owned(), value.clone()));
    }

    /// Records the removal of `key`.
    pub(crate) fn remove(&mut self, key: &str) {
        self.log.push(Change::Remove(key.to_owned()));
    }

    /// Records `clear()`: nothing before it matters any more.
    pub(crate) fn clear(&mut self) {
        self.log.clear();
        self.log.push(Change::Clear);
    }

    /// Records an atomic update of `key` (already applied to the request's own map).
    pub(crate) fn update(&mut self, key: &str, update: Update) {
        self.log.push(Change::Update(
            key.to_owned(),
            parking_lot::Mutex::new(update),
        ));
    }

    /// Forgets everything: the changes are stored (a save succeeded) or void (flush).
    pub(crate) fn reset(&mut self) {
        self.log.clear();
    }

    /// Replays the changes, in order, onto `newer`: the record another request stored since
    /// this one loaded. Keys this request never touched keep `newer`'s values.
    pub(crate) fn replay(&mut self, newer: &mut SessionMap) {
        for change in &mut self.log {
            match change {
                Change::Set(key, value) => {
                    newer.insert(key.clone(), value.clone());
                }
                Change::Remove(key) => {
                    newer.shift_remove(key.as_str());
                }
                Change::Clear => newer.clear(),
                Change::Update(key, update) => {
                    let value = (update.get_mut())(newer.get(key.as_str()));
                    newer.insert(key.clone(), value);
                }
            }
        }
    }
}

impl std::fmt::Debug for Changes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Changes")
            .field("count", &self.log.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn map(value: Value) -> SessionMap {
        match value {
            Value::Object(map) => map.into_iter().collect(),
            _ => unreachable!("a test map is a JSON object"),
        }
    }

    #[test]
    fn replay_keeps_keys_this_request_did_not_touch() {
        let mut changes = Changes::default();
        changes.set("mine", &json!(1));
        let mut newer = map(json!({"theirs": 2, "mine": 0}));
        changes.replay(&mut newer);
        assert_eq!(newer, map(json!({"theirs": 2, "mine": 1})));
    }

    #[test]
    fn replay_removes_what_this_request_removed_even_if_another_changed_it() {
        let mut changes = Changes::default();
        changes.remove("cart");
        let mut newer = map(json!({"cart": [1, 2], "other": true}));
        changes.replay(&mut newer);
        assert_eq!(newer, map(json!({"other": true})));
    }

    #[test]
    fn replay_of_clear_then_set_leaves_only_what_was_set_after() {
        let mut changes = Changes::default();
        changes.set("before", &json!(1));
        changes.clear();
        changes.set("after", &json!(2));
        let mut newer = map(json!({"theirs": 3, "before": 0}));
        changes.replay(&mut newer);
        assert_eq!(newer, map(json!({"after": 2})));
    }

    #[test]
    fn replay_reruns_an_atomic_update_on_the_newest_value() {
        let mut changes = Changes::default();
        changes.update(
            "counter",
            Box::new(|old| json!(old.and_then(Value::as_i64).unwrap_or(0) + 1)),
        );
        let mut newer = map(json!({"counter": 41}));
        changes.replay(&mut newer);
        assert_eq!(newer, map(json!({"counter": 42})));
    }
}
