//! Session rules (Django's `SessionBase`) and the `Store` guard, against in-process test engines.

mod async_session;
mod decoded;
mod logs;
mod memo;
mod memory;
mod merge;
mod observe;
mod readiness;
mod session;
mod signed;
mod store;
