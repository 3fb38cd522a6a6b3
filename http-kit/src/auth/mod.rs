//! Authentication and authorization of every `/api/v1` request, in one place.
//!
//! - [`routes`]: the access rule of every route (public, signed-in user, or an organization
//!   action) — the table the middleware applies; a route without a rule is refused.
//! - [`middleware`]: resolves the principal (API key or session cookie), checks CSRF on
//!   cookie writes, the organization's state and the role × action table.
//! - [`keys`]: API key format, digests and their resolution to a key of an organization.
//! - [`orgs`]: organizations as authentication sees them, folded from the log and kept
//!   current by a per-request version check (a revoked key fails on its next request).
//! - [`session`]: server-side web sessions and their cookie.
//! - [`throttle`]: brute-force protection buckets.
//! - [`client`]: the client's address and user agent.

pub mod client;
pub mod keys;
pub mod middleware;
pub mod orgs;
pub mod routes;
pub mod session;
pub mod throttle;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use domain::identity::Role;
use uuid::Uuid;

pub use client::ClientInfo;
pub use keys::KeyResolver;
pub use middleware::{authenticate, AuthState};
pub use orgs::OrgCache;
pub use routes::{access_of, Access, ROUTES};
pub use session::{SessionConfig, SessionStore, SignedIn};
pub use throttle::Throttle;

use crate::Problem;

/// Who acts: an API key or a signed-in user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Actor {
    ApiKey(Uuid),
    User(Uuid),
}

impl Actor {
    /// The actor recorded in event metadata: `apikey:<id>` or `user:<id>`.
    pub fn as_metadata(&self) -> String {
        match self {
            Actor::ApiKey(id) => format!("apikey:{id}"),
            Actor::User(id) => format!("user:{id}"),
        }
    }
}

/// The caller of an organization route: the organization every read and write is scoped
/// to, who acts, and with which role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caller {
    pub tenant_id: Uuid,
    pub actor: Actor,
    pub role: Role,
}

impl Caller {
    /// The actor recorded in event metadata.
    pub fn actor(&self) -> String {
        self.actor.as_metadata()
    }
}

/// The authenticated caller of an organization route.
pub struct Authenticated(pub Caller);

impl<S: Send + Sync> FromRequestParts<S> for Authenticated {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Caller>()
            .copied()
            .map(Self)
            .ok_or_else(Problem::internal)
    }
}
