//! The audit log: who did what, when and from where, per organization.

use axum::extract::State;
use axum::Json;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Utc};
use http_kit::ApiQuery;
use http_kit::{Authenticated, Problem};
use projections::audit_log::{self, AuditFilter, AuditRow};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::consistency::ConsistentAfter;
use crate::QueryState;

const DEFAULT_LIMIT: i64 = 50;
const MAX_LIMIT: i64 = 500;

/// Filters and paging of `GET /api/v1/audit`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditParams {
    /// Only this actor: `user:<id>`, `apikey:<id>` or `system:<component>`.
    pub actor: Option<String>,
    /// Only this aggregate type, e.g. `contact`, `organization`.
    pub aggregate_type: Option<String>,
    /// Only this aggregate.
    pub aggregate_id: Option<Uuid>,
    /// From this instant (RFC 3339), inclusive.
    pub from: Option<DateTime<Utc>>,
    /// Until this instant (RFC 3339), exclusive.
    pub to: Option<DateTime<Utc>>,
    /// Page size, 1 to 500 (default 50).
    pub limit: Option<i64>,
    /// The `next` token of the previous page.
    pub after: Option<String>,
    /// Wait until the read model has passed this cursor (from a command's answer).
    pub consistent_after: Option<String>,
}

/// A page of the audit log, newest first.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AuditPage {
    pub items: Vec<AuditRow>,
    /// Pass as `after` for the next (older) page; null on the last page.
    pub next: Option<String>,
}

/// The organization's audit log, newest first, filtered, in keyset pages.
#[utoipa::path(get, path = "/api/v1/audit", tag = "audit", params(AuditParams),
    responses(
        (status = 200, description = "A page", body = AuditPage),
        (status = 400, description = "Bad parameters", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Read model not caught up with consistent_after", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []), ("session" = [])))]
pub async fn list(
    State(s): State<QueryState>,
    Authenticated(caller): Authenticated,
    consistency: ConsistentAfter,
    ApiQuery(p): ApiQuery<AuditParams>,
) -> Result<Json<AuditPage>, Problem> {
    let limit = p.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(Problem::bad_parameter(
            "limit",
            format!("an integer from 1 to {MAX_LIMIT}"),
        ));
    }
    if let (Some(from), Some(to)) = (p.from, p.to) {
        if from > to {
            return Err(Problem::bad_request("from must not be after to"));
        }
    }
    let after = match p.after.as_deref() {
        None => None,
        Some(t) => Some(
            decode_token(t)
                .ok_or_else(|| Problem::bad_parameter("after", "not a page token from this API"))?,
        ),
    };
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

/// The page token of the row at `(tx_id, global_position)`: 16 bytes, URL-safe base64.
pub(crate) fn encode_token(tx: i64, pos: i64) -> String {
    let mut b = tx.to_be_bytes().to_vec();
    b.extend(pos.to_be_bytes());
    URL_SAFE_NO_PAD.encode(b)
}

/// The `(tx_id, global_position)` of a page token.
pub(crate) fn decode_token(t: &str) -> Option<(i64, i64)> {
    let b: [u8; 16] = URL_SAFE_NO_PAD.decode(t).ok()?.try_into().ok()?;
    let n = |s: &[u8]| s.try_into().ok().map(i64::from_be_bytes);
    Some((n(&b[..8])?, n(&b[8..])?))
}

#[cfg(test)]
mod tests {
    use super::{decode_token, encode_token};

    #[test]
    fn a_page_token_round_trips_and_anything_else_is_refused() {
        let t = encode_token(123_456, -7);
        assert_eq!(decode_token(&t), Some((123_456, -7)));
        for bad in ["", "!!", "AAAA", &format!("{t}AA")] {
            assert_eq!(decode_token(bad), None, "{bad}");
        }
    }
}
