//! Contact queries.

use axum::extract::State;
use axum::Json;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use http_kit::{ApiQuery, PathIds};
use http_kit::{Authenticated, Problem};
use projections::contacts::{self, ContactRow};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::consistency::ConsistentAfter;
use crate::QueryState;

const DEFAULT_LIMIT: i64 = 50;
const MAX_LIMIT: i64 = 500;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Page size, 1 to 500 (default 50).
    pub limit: Option<i64>,
    /// The `next` token of the previous page.
    pub after: Option<String>,
    /// Wait until the read model has passed this cursor (from a command's answer).
    pub consistent_after: Option<String>,
}

/// A page of contacts.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ContactPage {
    pub items: Vec<ContactRow>,
    /// Pass as `after` for the next page; null on the last page.
    pub next: Option<String>,
}

/// List contacts, oldest first, in keyset pages.
#[utoipa::path(get, path = "/api/v1/contacts", tag = "contacts", params(ListParams),
    responses(
        (status = 200, description = "A page", body = ContactPage),
        (status = 400, description = "Bad parameters", body = http_kit::Problem, content_type = "application/problem+json"),
        (status = 503, description = "Read model not caught up with consistent_after", body = http_kit::Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = [])))]
pub async fn list(
    State(s): State<QueryState>,
    Authenticated(caller): Authenticated,
    consistency: ConsistentAfter,
    ApiQuery(p): ApiQuery<ListParams>,
) -> Result<Json<ContactPage>, Problem> {
    let limit = p.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(Problem::bad_parameter(
            "limit",
            format!("an integer from 1 to {MAX_LIMIT}"),
        ));
    }
    let after = p.after.as_deref().map(decode_token).transpose()?;
    consistency.wait(&s, "contacts").await?;
    let mut items = contacts::list(&s.pool, caller.tenant_id, after, limit + 1)
        .await
        .map_err(|e| Problem::from_internal(&e))?;
    let next = if items.len() as i64 > limit {
        items.truncate(limit as usize);
        items
            .last()
            .map(|r| URL_SAFE_NO_PAD.encode(r.id.as_bytes()))
    } else {
        None
    };
    Ok(Json(ContactPage { items, next }))
}

/// One contact. A merged contact's id answers the contact it was merged into (with that
/// contact's own id).
#[utoipa::path(get, path = "/api/v1/contacts/{id}", tag = "contacts",
    params(("id" = Uuid, Path, description = "Contact id"),
           ("consistent_after" = Option<String>, Query, description = "Wait until the read model has passed this cursor")),
    responses(
        (status = 200, description = "The contact", body = ContactRow),
        (status = 404, description = "No such contact", body = http_kit::Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = [])))]
pub async fn get(
    State(s): State<QueryState>,
    Authenticated(caller): Authenticated,
    consistency: ConsistentAfter,
    PathIds(id): PathIds<domain::ContactId>,
) -> Result<Json<ContactRow>, Problem> {
    let id = crate::resolve::contact(&s, caller.tenant_id, &consistency, id).await?;
    consistency.wait(&s, "contacts").await?;
    contacts::get(&s.pool, caller.tenant_id, id)
        .await
        .map_err(|e| Problem::from_internal(&e))?
        .map(Json)
        .ok_or_else(|| Problem::not_found("contact"))
}

fn decode_token(t: &str) -> Result<Uuid, Problem> {
    URL_SAFE_NO_PAD
        .decode(t)
        .ok()
        .and_then(|b| Uuid::from_slice(&b).ok())
        .ok_or_else(|| Problem::bad_parameter("after", "not a page token from this API"))
}
