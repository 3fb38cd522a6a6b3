//! The console for marketers: server-rendered pages (askama, auto-escaped) with HTMX for
//! partial updates, served by `mauntic serve` at `/` (role `web`).
//!
//! A page is a typed template plus a handler that calls the same services as the API
//! (`commands::CommandState`) and the same read-model queries (`projections`); it never
//! builds JSON for itself and never runs SQL (STYLE 26). Sessions and their CSRF tokens are
//! the identity context's (`Accounts`); every page checks the member's role with the same
//! table as the API (`domain::identity::role::allows`).
//!
//! - [`assets`]: the embedded CSS and JS, with content-hashed names.
//! - [`visit`]: who is asking (the session, the member, their role) and form CSRF.
//! - [`security`]: the headers every answer carries; the same-origin check of writes.
//! - [`page`]: rendering, errors as pages, form errors next to their fields.
//! - [`pages`]: the screens.

#![deny(clippy::unwrap_used)]

pub mod assets;
pub mod page;
pub mod pages;
pub mod security;
pub mod visit;

use axum::routing::{get, post};
use axum::Router;
use sqlx::PgPool;

/// What the console's handlers share.
#[derive(Clone)]
pub struct WebState {
    /// The command services (the same ones the API calls).
    pub commands: commands::CommandState,
    /// The read models.
    pub pool: PgPool,
    /// How long a page waits for a read model to show the user's own write.
    pub consistency_timeout: std::time::Duration,
}

/// The console's routes (everything under `/` that is not the API's).
pub fn router(state: WebState) -> Router {
    // An upload may be as large as an import may be (and its form around it).
    let upload_limit = usize::try_from(state.commands.imports.config.max_bytes)
        .unwrap_or(usize::MAX)
        .saturating_add(64 * 1024);
    Router::new()
        .route("/", get(pages::home::show))
        .route(
            "/login",
            get(pages::auth::login_form).post(pages::auth::login),
        )
        .route(
            "/login/second-factor",
            get(pages::auth::second_factor_form).post(pages::auth::second_factor),
        )
        .route(
            "/signup",
            get(pages::auth::signup_form).post(pages::auth::signup),
        )
        .route("/logout", post(pages::auth::logout))
        .route(
            "/verify-email",
            get(pages::tokens::verify_form).post(pages::tokens::verify),
        )
        .route(
            "/forgot-password",
            get(pages::tokens::forgot_form).post(pages::tokens::forgot),
        )
        .route(
            "/reset-password",
            get(pages::tokens::reset_form).post(pages::tokens::reset),
        )
        .route(
            "/accept-invite",
            get(pages::tokens::accept_form).post(pages::tokens::accept),
        )
        .route(
            "/organizations/new",
            get(pages::organizations::new_form).post(pages::organizations::create),
        )
        .route("/organization/switch", post(pages::organizations::switch))
        .route("/contacts", get(pages::contacts::list))
        .route(
            "/contacts/new",
            get(pages::contacts::new_form).post(pages::contacts::create),
        )
        .route("/contacts/{id}", get(pages::contacts::show))
        .route("/contacts/{id}/tags", post(pages::contacts::add_tags))
        .route("/contacts/{id}/consent", post(pages::contacts::set_consent))
        .route("/contacts/{id}/stage", post(pages::contacts::set_stage))
        .route(
            "/contacts/{id}/points",
            post(pages::contacts::change_points),
        )
        .route("/contacts/{id}/notes", post(pages::contacts::add_note))
        .route(
            "/contacts/{id}/notes/{note}/remove",
            post(pages::contacts::remove_note),
        )
        .route(
            "/contacts/{id}/do-not-contact",
            post(pages::contacts::do_not_contact),
        )
        .route(
            "/contacts/{id}/tags/remove",
            post(pages::contacts::remove_tag),
        )
        .route(
            "/contacts/{id}/erase",
            get(pages::contacts::erase_form).post(pages::contacts::erase),
        )
        .route(
            "/contacts/{id}/edit",
            get(pages::contacts::edit_form).post(pages::contacts::update),
        )
        .route(
            "/imports",
            get(pages::imports::list)
                .post(pages::imports::upload)
                .layer(axum::extract::DefaultBodyLimit::max(upload_limit)),
        )
        .route("/imports/{id}", get(pages::imports::show))
        .route("/imports/{id}/map", get(pages::imports::map_form))
        .route("/imports/{id}/start", post(pages::imports::start))
        .route("/imports/{id}/progress", get(pages::imports::progress_part))
        .route("/segments", get(pages::segments::list))
        .route(
            "/segments/new",
            get(pages::segments::new_form).post(pages::segments::create),
        )
        .route("/segments/preview", post(pages::segments::live_preview))
        .route("/segments/{id}", get(pages::segments::show))
        .route(
            "/suppressions",
            get(pages::suppressions::list).post(pages::suppressions::add),
        )
        .route(
            "/suppressions/{id}/remove",
            post(pages::suppressions::remove),
        )
        .route("/deliveries", get(pages::deliveries::list))
        .route("/deliveries/{id}", get(pages::deliveries::show))
        .route("/companies", get(pages::companies::list))
        .route(
            "/companies/new",
            get(pages::companies::new_form).post(pages::companies::create),
        )
        .route("/companies/{id}", get(pages::companies::show))
        .route(
            "/fields",
            get(pages::fields::list).post(pages::fields::define),
        )
        .route("/fields/{key}/remove", post(pages::fields::remove))
        .route("/audit", get(pages::audit::list))
        .route("/settings", get(pages::settings::show))
        .route("/settings/invites", post(pages::settings::invite))
        .route(
            "/settings/invites/{id}/revoke",
            post(pages::settings::revoke_invite),
        )
        .route(
            "/settings/members/{id}/role",
            post(pages::settings::change_role),
        )
        .route(
            "/settings/members/{id}/remove",
            post(pages::settings::remove_member),
        )
        .route("/settings/keys", post(pages::settings::create_key))
        .route(
            "/settings/keys/{id}/revoke",
            post(pages::settings::revoke_key),
        )
        .route("/assets/{name}", get(assets::serve))
        .layer(axum::middleware::from_fn(security::same_origin_writes))
        .layer(axum::middleware::from_fn(security::headers))
        .with_state(state)
}
