//! The metadata recorded with every event a request causes.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use event_store::EventMetadata;
use http_kit::{Authenticated, Problem};
use uuid::Uuid;

/// Who asked, and how to trace the request: built from the caller and request headers
/// (`X-Request-Id`, `X-Correlation-Id`, `X-Causation-Id`).
pub struct RequestContext {
    pub tenant_id: Uuid,
    pub metadata: EventMetadata,
}

impl<S: Send + Sync> FromRequestParts<S> for RequestContext {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Authenticated(caller) = Authenticated::from_request_parts(parts, state).await?;
        let header = |name: &str| {
            parts
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let uuid_header = |name: &str| -> Result<Option<Uuid>, Problem> {
            header(name)
                .map(|v| {
                    Uuid::parse_str(&v)
                        .map_err(|_| Problem::bad_request(format!("{name} must be a UUID")))
                })
                .transpose()
        };
        let request_id = header("x-request-id");
        let correlation_id = uuid_header("x-correlation-id")?.unwrap_or_else(Uuid::now_v7);
        Ok(Self {
            tenant_id: caller.tenant_id,
            metadata: EventMetadata {
                tenant_id: Some(caller.tenant_id),
                actor: Some(caller.actor()),
                correlation_id: Some(correlation_id),
                causation_id: uuid_header("x-causation-id")?,
                request_id,
            },
        })
    }
}
