//! Channel providers of an organization (SMTP, SES, SendGrid, … per channel, one default
//! per channel), their credentials encrypted beside the log, and resolution for delivery.
//!
//! - [`body`]: request bodies, checked into typed input (every bad field at once).
//! - [`write`]: the service ([`Providers`]): every provider command in one transaction with
//!   its write-side rows and sealed secrets.
//! - [`secrets`]: the `provider_secrets` table (AES-256-GCM under the master key, key id,
//!   AAD) and the master-key rotation.
//! - [`resolve`]: the provider a message of a channel goes out with, secrets decrypted.
//! - [`http`]: the routes.

pub mod body;
pub mod http;
pub mod resolve;
pub mod secrets;
pub mod write;

use axum::routing::post;
use axum::Router;

pub use resolve::{resolve, ResolvedProvider};
pub use secrets::{rotate, Rotation, SecretsError};
pub use write::{Providers, ProvidersError};

use crate::CommandState;

pub fn routes() -> Router<CommandState> {
    Router::new()
        .route("/api/v1/providers", post(http::create))
        .route(
            "/api/v1/providers/{id}",
            axum::routing::patch(http::update).delete(http::remove),
        )
        .route("/api/v1/providers/{id}/default", post(http::make_default))
}
