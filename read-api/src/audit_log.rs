//! The audit log: who did what, when and from where, per organization.

use axum::extract::{Query, State};
use axum::Json;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Utc};
use http_kit::{Authenticated, Problem};
use projections::audit_log::{self, AuditFilter, AuditRow};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::consistency::ConsistentAfter;
use crate::QueryState;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct AuditParams {
    /// `user:<id>`, `apikey:<id>` or `system:<component>`.
    pub actor: Option<String>,
    /// e.g. `contact`, `organization`.
    pub aggregate_type: Option<String>,
    pub aggregate_id: Option<Uuid>,
    /// From this instant (RFC 3339), inclusive.
    pub from: Option<DateTime<Utc>>,
    /// Until this instant (RFC 3339), exclusive.
    pub to: Option<DateTime<Utc>>,
    /// Page size, 1 to 500 (default 50).
    pub limit: Option<i64>,
    /// The `next` token of the previous page.
    pub after: Option<String>,
    pub consistent_after: Option<String>,
}

/// A page of the audit log, newest first.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AuditPage {
    pub items: Vec<AuditRow>,
    /// Pass as `after` for the next page; null on the last page.
    pub next: Option<String>,
}

/// The organization's audit log, newest first, filtered.
#[utoipa::path(get, path = "/api/v1/audit", tag = "audit", params(AuditParams),
    responses(
        (status = 200, description = "A page", body = AuditPage),
        (status = 400, description = "Bad parameters", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []), ("session" = [])))]
pub async fn list(
    State(s): State<QueryState>,
    Authenticated(caller): Authenticated,
    consistency: ConsistentAfter,
    Query(p): Query<AuditParams>,
) -> Result<Json<AuditPage>, Problem> {
    let limit = p.limit.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        return Err(Problem::bad_request("limit must be 1 to 500"));
    }
    let after = p.after.as_deref().map(decode_token).transpose()?;
    consistency.wait(&s, "audit_log").await?;
    let filter = AuditFilter {
        actor: p.actor,
        aggregate_type: p.aggregate_type,
        aggregate_id: p.aggregate_id,
        from: p.from,
        to: p.to,
    };
    let mut items = audit_log::list(&s.pool, caller.tenant_id, &filter, after, limit + 1)
        .await
        .map_err(|e| Problem::from_internal(&e))?;
    let next = if items.len() as i64 > limit {
        items.truncate(limit as usize);
        items
            .last()
            .map(|r| encode_token(r.tx_id, r.global_position))
    } else {
        None
    };
    Ok(Json(AuditPage { items, next }))
}

fn encode_token(tx: i64, pos: i64) -> String {
    let mut b = tx.to_be_bytes().to_vec();
    b.extend(pos.to_be_bytes());
    URL_SAFE_NO_PAD.encode(b)
}

fn decode_token(t: &str) -> Result<(i64, i64), Problem> {
    let bad = || Problem::bad_request("after: not a page token from this API");
    let b = URL_SAFE_NO_PAD.decode(t).map_err(|_| bad())?;
    let (tx, pos) = (b.get(..8).ok_or_else(bad)?, b.get(8..16).ok_or_else(bad)?);
    let n = |s: &[u8]| s.try_into().map(i64::from_be_bytes).map_err(|_| bad());
    Ok((n(tx)?, n(pos)?))
}
