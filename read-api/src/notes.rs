//! The notes on a contact.

use axum::extract::State;
use axum::Json;
use http_kit::PathIds;
use http_kit::{Authenticated, Problem};
use projections::notes::{self, NoteRow};

use crate::consistency::ConsistentAfter;
use crate::QueryState;

/// The notes on a contact, newest first (a merged contact's notes are its survivor's).
#[utoipa::path(get, path = "/api/v1/contacts/{id}/notes", tag = "contacts",
    params(("id" = Uuid, Path, description = "Contact id"),
           ("consistent_after" = Option<String>, Query, description = "Wait until the read models have passed this cursor")),
    responses(
        (status = 200, description = "Notes", body = [NoteRow]),
        (status = 404, description = "No such contact", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []), ("session" = [])))]
pub async fn list(
    State(s): State<QueryState>,
    Authenticated(caller): Authenticated,
    consistency: ConsistentAfter,
    PathIds(id): PathIds<domain::ContactId>,
) -> Result<Json<Vec<NoteRow>>, Problem> {
    let id = crate::resolve::contact(&s, caller.tenant_id, &consistency, id).await?;
    consistency.wait(&s, "contacts").await?;
    consistency.wait(&s, "contact_notes").await?;
    let internal = |e: sqlx::Error| Problem::from_internal(&e);
    if projections::contacts::get(&s.pool, caller.tenant_id, id)
        .await
        .map_err(internal)?
        .is_none()
    {
        return Err(Problem::not_found("contact"));
    }
    notes::of(&s.pool, caller.tenant_id, id)
        .await
        .map(Json)
        .map_err(internal)
}
