//! Contacts: the service ([`Contacts`], [`ContactsError`]) and its routes.

pub mod body;
mod erase;
pub mod events_http;
pub mod http;
mod merge;
pub mod merge_http;
pub mod reach_http;
mod service;
pub mod unique;

pub use service::{Contacts, ContactsError, CustomEvent};

use axum::routing::{delete, patch, post, put};
use axum::Router;

use crate::CommandState;

pub fn routes() -> Router<CommandState> {
    Router::new()
        .route("/api/v1/contacts", post(http::create))
        .route("/api/v1/contacts:upsert", post(http::upsert))
        .route(
            "/api/v1/contacts/{id}",
            patch(http::update).delete(http::erase),
        )
        .route("/api/v1/contacts/{id}/tags", post(http::add_tags))
        .route("/api/v1/contacts/{id}/tags/{tag}", delete(http::remove_tag))
        .route(
            "/api/v1/contacts/{id}/consent/{channel}",
            put(reach_http::set_consent),
        )
        .route(
            "/api/v1/contacts/{id}/do-not-contact/{channel}",
            put(reach_http::add_dnc).delete(reach_http::remove_dnc),
        )
        .route(
            "/api/v1/contacts/{id}/frequency/{channel}",
            put(reach_http::set_frequency).delete(reach_http::remove_frequency),
        )
        .route("/api/v1/contacts/{id}/stage", put(reach_http::set_stage))
        .route("/api/v1/contacts/{id}/owner", put(reach_http::set_owner))
        .route("/api/v1/contacts/{id}/notes", post(reach_http::add_note))
        .route(
            "/api/v1/contacts/{id}/notes/{note_id}",
            delete(reach_http::remove_note),
        )
        .route(
            "/api/v1/contacts/{id}/points",
            post(reach_http::change_points),
        )
        .route("/api/v1/contacts/{id}/merge", post(merge_http::merge))
        .route("/api/v1/contacts/{id}/events", post(events_http::record))
        .route("/api/v1/events", post(events_http::record_many))
}
