//! Read-your-writes without giving up CQRS: a query may name the cursor a command answered
//! with, and waits until the read model has passed it.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::StatusCode;
use event_store::Cursor;
use http_kit::Problem;

use crate::QueryState;

/// The cursor a query must not answer before, from `?consistent_after=` or `X-Mauntic-After`.
pub struct ConsistentAfter(pub Option<Cursor>);

impl<S: Send + Sync> FromRequestParts<S> for ConsistentAfter {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let from_query = parts.uri.query().and_then(|q| {
            q.split('&')
                .filter_map(|kv| kv.split_once('='))
                .find(|(k, _)| *k == "consistent_after")
                .map(|(_, v)| v.to_owned())
        });
        let from_header = parts
            .headers
            .get("x-mauntic-after")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        match from_query.or(from_header) {
            None => Ok(Self(None)),
            Some(raw) => raw
                .parse()
                .map(|c| Self(Some(c)))
                .map_err(|e| Problem::bad_parameter("consistent_after", e.to_string())),
        }
    }
}

impl ConsistentAfter {
    /// The last committed event: waiting for it is waiting for everything committed so far.
    pub async fn head(state: &QueryState) -> Result<Self, Problem> {
        event_store::reader::committed_head(&state.pool)
            .await
            .map(|c| Self(Some(c)))
            .map_err(|e| Problem::from_internal(&e))
    }

    /// Waits until `projection` has passed the cursor, or answers 503.
    pub async fn wait(&self, state: &QueryState, projection: &str) -> Result<(), Problem> {
        let Some(cursor) = self.0 else {
            return Ok(());
        };
        let reached = projections::status::wait_for(
            &state.pool,
            projection,
            cursor,
            state.consistency_timeout,
        )
        .await
        .map_err(|e| Problem::from_internal(&e))?;
        if reached {
            Ok(())
        } else {
            Err(Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "not-yet-consistent",
                "Read model not caught up",
            )
            .detail(format!(
                "the {projection} read model has not reached cursor {cursor} yet; retry shortly"
            ))
            .retry_after(1))
        }
    }
}
