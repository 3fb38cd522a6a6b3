//! Operational reads.

use axum::extract::State;
use axum::Json;
use http_kit::Problem;
use projections::status::{self, Lag};

use crate::QueryState;

/// The relay's and each projection's checkpoint, the head cursor, and the lag.
#[utoipa::path(get, path = "/api/v1/projections", tag = "system",
    responses((status = 200, description = "Lag per reader of the log", body = [Lag])),
    security(("api_key" = [])))]
pub async fn projections(State(s): State<QueryState>) -> Result<Json<Vec<Lag>>, Problem> {
    status::all(&s.pool)
        .await
        .map(Json)
        .map_err(|e| Problem::from_internal(&e))
}
