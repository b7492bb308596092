#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

pub mod auth;
pub mod config;
pub mod cookies;
#[cfg(feature = "axum")]
mod extract;
mod handle;
pub mod layer;
mod middleware;
pub mod vary;

pub use auth::{Login, login, login_with, logout};
pub use config::{ConfigError, CookieSettings};
pub use handle::SessionHandle;
pub use layer::{MissingSessionLayer, ResponseFuture, SessionError, SessionLayer, SessionService};
pub use middleware::{CookieAction, RequestSession, SessionMiddleware};
