//! What both HTTP APIs share: problem+json errors, the JSON body extractor, API-key auth.
//! Knows HTTP and the tenancy table; knows nothing of commands or read models.

pub mod auth;
pub mod json;
pub mod problem;

pub use auth::{require_api_key, Authenticated, KeyResolver};
pub use json::ApiJson;
pub use problem::Problem;
