//! The registry of cases, one file per area.

/// A case whose name is the function's name.
macro_rules! case {
    ($group:expr, $function:ident) => {
        $crate::Case::new(stringify!($function), $group, $function)
    };
}

mod account_index;
mod async_api;
mod bad_input;
mod conditional;
mod contract;
mod expiry;
mod keys;
mod lifecycle;
mod mapping;
mod readiness;
mod wire;

use crate::Case;

/// Every case of the suite, grouped by area, in a stable order.
pub fn cases() -> Vec<Case> {
    [
        contract::cases(),
        conditional::cases(),
        readiness::cases(),
        mapping::cases(),
        keys::cases(),
        lifecycle::cases(),
        expiry::cases(),
        async_api::cases(),
        bad_input::cases(),
        wire::cases(),
        account_index::cases(),
    ]
    .concat()
}

/// The written reasons a case gives when it does not apply.
pub(crate) mod reason {
    /// For rules about the signed `session_data` a store keeps, on an engine that keeps the
    /// unsigned dict instead.
    pub(crate) const UNSIGNED_STORE: &str = "the engine keeps the session dict unsigned, as \
         Django's cache backends do (DECODED_DATA): what loads is the dict each write handed \
         over, never a hand-made session_data, so there is no signature to tamper with or check";
    /// For rules that move the host's clock past a stored session's expiry, on a store that
    /// expires it by a TTL on its own server's clock.
    pub(crate) const TTL_ON_THE_SERVER: &str = "the store keeps Django's dict under a TTL that \
         runs on the cache server's clock (Django's cache keeps no expire_date), so moving the \
         host's clock cannot expire it; the TTL set from the expiry is checked where the record \
         is loaded back";
    /// For rules about revoking a session on the server.
    pub(crate) const REVOCATION: &str =
        "the client holds the data; a copied cookie cannot be revoked";
    /// For rules about stored sessions looked up by a Django session key.
    pub(crate) const DJANGO_KEYS: &str = "the key is the signed session itself, not a Django \
         session key naming a stored record";
    /// For rules about the store filling up or being looked up (Django skips them for cookies).
    pub(crate) const NO_STORE: &str =
        "no external store: the signed cookie is the session (Django skips this for cookies)";
    /// For `exists` after `save` (Django overrides `test_save` as a no-op for cookies).
    pub(crate) const EXISTS_MEANINGLESS: &str =
        "exists() is meaningless when the cookie is the session";
    /// For rules about the `expire_date` of the record a save leaves on the server.
    pub(crate) const NO_RECORD: &str = "the server keeps no record of a signed cookie, so there \
         is no stored expire_date to check";
    /// For `delete()` without a key, which Django's cookie engine answers by emptying the session.
    pub(crate) const COOKIE_DELETE_EMPTIES: &str = "Django's signed_cookies delete() empties the \
         session even without a key (the cookie is the session), so there is nothing to keep";
    /// For rules about a custom expiry enforced by the server.
    pub(crate) const EXPIRY_19201: &str = "a signed cookie's custom expiry is enforced only by the \
         browser (Django #19201); the server checks only SESSION_COOKIE_AGE";
    /// For rules about `clear_expired` removing records.
    pub(crate) const CLEAR_EXPIRED: &str =
        "the store drops expired sessions by itself, so clear_expired has nothing to remove";
    /// For the rule about engines that expire records by themselves.
    pub(crate) const KEEPS_EXPIRED: &str = "the engine keeps expired sessions until clear_expired \
         removes them; this rule is for engines that expire them by themselves";
    /// For the rules of conditional saves.
    pub(crate) const CONDITIONAL_SAVE: &str = "the engine has no conditional save: concurrent \
         requests to one session overwrite each other (last writer wins)";
    /// For the rules of calls that do not block.
    pub(crate) const READINESS_CALLS: &str = "the engine runs every call the blocking way (no \
         READINESS_CALLS): an async host runs its calls on a blocking pool";
    /// For the rule of stores without calls that do not block.
    pub(crate) const HAS_READINESS_CALLS: &str =
        "the engine starts calls without blocking; this rule is for engines that cannot";
    /// For the rule about engines without a conditional save.
    pub(crate) const HAS_CONDITIONAL_SAVE: &str =
        "the engine has a conditional save; this rule is for engines without one";
    /// For rules about the account index.
    pub(crate) const ACCOUNT_INDEX: &str = "the engine keeps no index of sessions by account";
    /// For the rules about engines without an account index.
    pub(crate) const HAS_ACCOUNT_INDEX: &str =
        "the engine has an account index; this rule is for engines without one";
}
