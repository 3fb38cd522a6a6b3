//! An aggregate's history, tenant-scoped: its state as of a sequence or a time, and the
//! events that built it with who caused each.

use axum::extract::State;
use axum::Json;
use chrono::{DateTime, Utc};
use event_store::reader::Until;
use http_kit::{ApiPath, ApiQuery};
use http_kit::{Authenticated, Problem};
use replay::inspect::{self, Inspection};
use serde::Deserialize;
use uuid::Uuid;

use crate::QueryState;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AsOf {
    /// The state after this event sequence number.
    pub at_sequence: Option<i64>,
    /// The state at this instant (RFC 3339).
    pub at_time: Option<DateTime<Utc>>,
}

/// An aggregate as of a point in its history.
#[utoipa::path(get, path = "/api/v1/audit/{aggregate_type}/{id}", tag = "audit",
    params(("aggregate_type" = String, Path, description = "e.g. contact"),
           ("id" = Uuid, Path, description = "Aggregate id"), AsOf),
    responses(
        (status = 200, description = "State and history", body = Inspection),
        (status = 400, description = "Bad parameters", body = http_kit::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such aggregate at that point", body = http_kit::Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = [])))]
pub async fn get(
    State(s): State<QueryState>,
    Authenticated(caller): Authenticated,
    ApiPath((aggregate_type, id)): ApiPath<(String, String)>,
    ApiQuery(q): ApiQuery<AsOf>,
) -> Result<Json<Inspection>, Problem> {
    if !inspect::AGGREGATE_TYPES.contains(&aggregate_type.as_str()) {
        return Err(Problem::not_found("aggregate type"));
    }
    let id = Uuid::parse_str(&id).map_err(|_| Problem::not_found(&aggregate_type))?;
    let until = match (q.at_sequence, q.at_time) {
        (Some(_), Some(_)) => {
            return Err(Problem::bad_request(
                "give at_sequence or at_time, not both",
            ))
        }
        (Some(n), None) if n < 1 => return Err(Problem::bad_request("at_sequence starts at 1")),
        (Some(n), None) => Until::Sequence(n),
        (None, Some(t)) => Until::Time(t),
        (None, None) => Until::End,
    };
    inspect::inspect(&s.pool, caller.tenant_id, &aggregate_type, id, until)
        .await
        .map_err(|e| Problem::from_internal(&e))?
        .map(Json)
        .ok_or_else(|| Problem::not_found(&aggregate_type))
}
