//! Identity commands over HTTP: sign-up, login (password, TOTP, OpenID Connect), sessions,
//! passwords, organizations, members, invites and API keys; and the admin operations the
//! CLI runs.
//!
//! - [`config`]: token lifetimes, password cost, mail and OpenID settings.
//! - [`body`]: request bodies and their validation.
//! - [`accounts`]: the service of a person's own account (sign-up, sign-in, sessions,
//!   passwords, TOTP, their organizations); [`organizations`]: the service of organizations.
//! - [`support`]: the mapping of account failures to problem+json, the sign-in answer.
//! - [`auth_http`], [`account_http`], [`org_http`], [`keys_http`]: the handlers.
//! - [`password`], [`totp`], [`mail`], [`oidc`]: the mechanisms.
//! - [`credentials`]: password hashes and TOTP secrets, kept beside the log.
//! - [`admin`]: organizations, users and keys made from the CLI.

pub mod account_http;
pub mod accounts;
pub mod admin;
pub mod auth_http;
pub mod body;
pub mod config;
pub mod credentials;
pub mod keys_http;
pub mod mail;
pub mod oidc;
pub mod org_http;
pub mod organizations;
pub mod password;
pub mod support;
pub mod totp;

use axum::routing::{delete, get, patch, post};
use axum::Router;

pub use config::{IdentityConfig, OidcConfig};

use std::sync::Arc;

use domain::identity::user::User;

use crate::executor::Executor;
use crate::CommandState;

/// Identity's part of the command side: organizations and users, the settings, the system
/// mail, and the OpenID Connect client (when configured).
#[derive(Clone)]
pub struct Identity {
    /// Organizations: settings, members, invites, API keys.
    pub organizations: organizations::Organizations,
    /// Accounts: sign-up, sign-in and sessions, passwords, TOTP, joining organizations.
    pub accounts: accounts::Accounts,
    pub users: Arc<Executor<User>>,
    pub config: Arc<IdentityConfig>,
    pub mailer: mail::SystemMailer,
    pub oidc: Option<Arc<oidc::OidcClient>>,
}

pub fn routes() -> Router<CommandState> {
    Router::new()
        .route("/api/v1/auth/signup", post(auth_http::signup))
        .route("/api/v1/auth/verify-email", post(auth_http::verify_email))
        .route("/api/v1/auth/login", post(auth_http::login))
        .route(
            "/api/v1/auth/login/second-factor",
            post(auth_http::second_factor),
        )
        .route("/api/v1/auth/logout", post(auth_http::logout))
        .route(
            "/api/v1/auth/password/forgot",
            post(auth_http::forgot_password),
        )
        .route(
            "/api/v1/auth/password/reset",
            post(auth_http::reset_password),
        )
        .route("/api/v1/auth/oidc/start", get(oidc::start))
        .route("/api/v1/auth/oidc/callback", get(oidc::callback))
        .route("/api/v1/me/password", post(account_http::change_password))
        .route(
            "/api/v1/me/verification",
            post(account_http::resend_verification),
        )
        .route(
            "/api/v1/me/totp",
            post(account_http::start_totp).delete(account_http::disable_totp),
        )
        .route("/api/v1/me/totp/confirm", post(account_http::confirm_totp))
        .route(
            "/api/v1/me/organization",
            post(account_http::switch_organization),
        )
        .route(
            "/api/v1/organizations",
            post(account_http::create_organization),
        )
        .route("/api/v1/invites/accept", post(account_http::accept_invite))
        .route("/api/v1/organization", patch(org_http::update))
        .route("/api/v1/organization/leave", post(org_http::leave))
        .route(
            "/api/v1/organization/transfer-ownership",
            post(org_http::transfer_ownership),
        )
        .route(
            "/api/v1/organization/members/{user_id}",
            patch(org_http::change_role).delete(org_http::remove_member),
        )
        .route("/api/v1/organization/invites", post(org_http::invite))
        .route(
            "/api/v1/organization/invites/{id}",
            delete(org_http::revoke_invite),
        )
        .route(
            "/api/v1/organization/invites/{id}/resend",
            post(org_http::resend_invite),
        )
        .route("/api/v1/api-keys", post(keys_http::create))
        .route("/api/v1/api-keys/{id}", delete(keys_http::revoke))
}
