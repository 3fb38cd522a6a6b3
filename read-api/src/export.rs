//! GDPR export: everything the platform holds about one contact, as one JSON document.

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use event_store::reader::Until;
use http_kit::PathIds;
use http_kit::{Authenticated, Problem};
use projections::audit_log::{self, AuditFilter, AuditRow};
use projections::contacts::{self, ContactRow};
use replay::inspect::{self, HistoryEvent};
use serde::Serialize;
use uuid::Uuid;

use crate::consistency::ConsistentAfter;
use crate::QueryState;

/// What the platform holds about a contact.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ContactExport {
    pub exported_at: DateTime<Utc>,
    /// The contact as it is now.
    pub contact: ContactRow,
    /// Every event of the contact's history, with who caused it and from where.
    pub history: Vec<HistoryEvent>,
    /// The audit entries of the contact (who changed what, when, from where).
    pub audit: Vec<AuditRow>,
    /// The contacts merged into this one, each with its own history up to the merge.
    pub merged: Vec<MergedContact>,
}

/// A contact merged into the exported one.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MergedContact {
    pub id: Uuid,
    pub history: Vec<HistoryEvent>,
}

/// Export everything held about a contact (GDPR article 15 / 20), including the histories
/// of contacts merged into it. A merged contact's id exports its survivor.
#[utoipa::path(get, path = "/api/v1/contacts/{id}/export", tag = "contacts",
    params(("id" = Uuid, Path, description = "Contact id"),
           ("consistent_after" = Option<String>, Query, description = "Wait until the read models have passed this cursor")),
    responses(
        (status = 200, description = "The export, as a JSON attachment", body = ContactExport),
        (status = 404, description = "No such contact", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []), ("session" = [])))]
pub async fn export(
    State(s): State<QueryState>,
    Authenticated(caller): Authenticated,
    consistency: ConsistentAfter,
    PathIds(id): PathIds<domain::ContactId>,
) -> Result<Response, Problem> {
    let id = crate::resolve::contact(&s, caller.tenant_id, &consistency, id).await?;
    consistency.wait(&s, "contacts").await?;
    consistency.wait(&s, "audit_log").await?;
    let internal = |e: &dyn std::error::Error| Problem::from_internal(e);
    let contact = contacts::get(&s.pool, caller.tenant_id, id)
        .await
        .map_err(|e| internal(&e))?
        .ok_or_else(|| Problem::not_found("contact"))?;
    let history = inspect::inspect(&s.pool, caller.tenant_id, "contact", id, Until::End)
        .await
        .map_err(|e| internal(&e))?
        .map(|i| i.events)
        .unwrap_or_default();
    let filter = AuditFilter {
        aggregate_type: Some("contact".into()),
        aggregate_id: Some(id),
        ..AuditFilter::default()
    };
    let audit = audit_log::list(&s.pool, caller.tenant_id, &filter, None, 10_000)
        .await
        .map_err(|e| internal(&e))?;
    let mut merged = Vec::new();
    for m in projections::merges::merged_into(&s.pool, caller.tenant_id, id)
        .await
        .map_err(|e| internal(&e))?
    {
        let history = inspect::inspect(&s.pool, caller.tenant_id, "contact", m, Until::End)
            .await
            .map_err(|e| internal(&e))?
            .map(|i| i.events)
            .unwrap_or_default();
        merged.push(MergedContact { id: m, history });
    }
    let body = ContactExport {
        exported_at: Utc::now(),
        contact,
        history,
        audit,
        merged,
    };
    let disposition = format!("attachment; filename=\"contact-{id}.json\"");
    Ok(([(header::CONTENT_DISPOSITION, disposition)], Json(body)).into_response())
}
