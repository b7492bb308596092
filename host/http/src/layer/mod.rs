//! The tower middleware: [`SessionLayer`] builds [`SessionService`], which runs
//! [`SessionMiddleware`](crate::SessionMiddleware) around an inner service.
//!
//! Laid out like tower's own middleware (`tower/src/timeout/`): the layer (configuration), the
//! service, its response future, and its error.

mod error;
mod future;
#[allow(clippy::module_inception)]
mod layer;
mod service;

pub use self::error::{MissingSessionLayer, SessionError};
pub use self::future::ResponseFuture;
pub use self::layer::SessionLayer;
pub use self::service::SessionService;
