//! The metadata recorded with every event a request causes.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use event_store::EventMetadata;
use http_kit::auth::session::Session;
use http_kit::{Actor, Authenticated, ClientInfo, Problem};
use uuid::Uuid;

/// Who asked, and how to trace the request: built from the caller and request headers
/// (`X-Request-Id`, `X-Correlation-Id`, `X-Causation-Id`) and the client's address and agent.
pub struct RequestContext {
    pub tenant_id: Uuid,
    pub actor: Actor,
    pub role: domain::identity::Role,
    pub metadata: EventMetadata,
}

/// The metadata of a request by `actor` (or nobody yet, e.g. a sign-up) in `tenant`.
pub fn metadata_of(
    parts: &Parts,
    tenant: Option<Uuid>,
    actor: Option<String>,
) -> Result<EventMetadata, Problem> {
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
    let client = parts
        .extensions
        .get::<ClientInfo>()
        .cloned()
        .unwrap_or_default();
    Ok(EventMetadata {
        tenant_id: tenant,
        actor,
        correlation_id: Some(uuid_header("x-correlation-id")?.unwrap_or_else(Uuid::now_v7)),
        causation_id: uuid_header("x-causation-id")?,
        request_id: header("x-request-id"),
        ip: client.ip.map(|ip| ip.to_string()),
        user_agent: client.user_agent,
    })
}

impl RequestContext {
    /// The caller's organization.
    pub fn tenant(&self) -> domain::TenantId {
        domain::TenantId(self.tenant_id)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for RequestContext {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Authenticated(caller) = Authenticated::from_request_parts(parts, state).await?;
        Ok(Self {
            tenant_id: caller.tenant_id,
            actor: caller.actor,
            role: caller.role,
            metadata: metadata_of(parts, Some(caller.tenant_id), Some(caller.actor()))?,
        })
    }
}

/// A request on a public or signed-in-user route: the client, the session if any, and
/// metadata without a tenant (handlers set it per command).
pub struct UserContext {
    pub session: Option<Session>,
    pub client: ClientInfo,
    pub metadata: EventMetadata,
}

impl UserContext {
    /// The metadata for a command on `tenant`'s streams.
    pub fn in_tenant(&self, tenant: Uuid) -> EventMetadata {
        EventMetadata {
            tenant_id: Some(tenant),
            ..self.metadata.clone()
        }
    }

    /// The signed-in user (routes whose rule is `Access::User` always have one).
    pub fn user_id(&self) -> Result<Uuid, Problem> {
        self.session
            .as_ref()
            .map(|s| s.user_id)
            .ok_or_else(Problem::internal)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for UserContext {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let session = parts.extensions.get::<Session>().cloned();
        let actor = session
            .as_ref()
            .map(|s| Actor::User(s.user_id).as_metadata());
        Ok(Self {
            client: parts
                .extensions
                .get::<ClientInfo>()
                .cloned()
                .unwrap_or_default(),
            metadata: metadata_of(parts, None, actor)?,
            session,
        })
    }
}
