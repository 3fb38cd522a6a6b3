//! What both HTTP APIs share: problem+json errors, the JSON body extractor, and
//! authentication and authorization (API keys, sessions, the route access table).
//! Knows HTTP, the identity domain and the log; knows nothing of commands or read models.

pub mod auth;
pub mod extract;
pub mod json;
pub mod openapi;
pub mod problem;
pub mod secret;

pub use auth::{authenticate, Actor, AuthState, Authenticated, Caller, ClientInfo, SignedIn};
pub use extract::{ApiPath, ApiQuery, PathIds};
pub use json::ApiJson;
pub use problem::Problem;
