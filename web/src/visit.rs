//! Who is asking: a visitor (maybe with a session), a signed-in person, or a member of the
//! organization they work in, with their role. And the CSRF token every form posts.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, OriginalUri, Request};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use axum_extra::extract::cookie::CookieJar;
use domain::identity::organization::Organization;
use domain::identity::{allows, Action, Role};
use domain::TenantId;
use event_store::EventMetadata;
use http_kit::auth::session::{Session, Stage, COOKIE};
use http_kit::{secret, ClientInfo};
use serde::de::DeserializeOwned;
use uuid::Uuid;

use crate::page::{self, PageError};
use crate::WebState;

/// Anyone: the browser's session cookie (if any), where they are, what to record.
pub struct Visitor {
    /// The session cookie's value, as presented.
    pub cookie: Option<String>,
    /// The live session of that cookie, if any (a pending second factor included).
    pub session: Option<Session>,
    pub client: ClientInfo,
    pub meta: EventMetadata,
    pub jar: CookieJar,
}

impl FromRequestParts<WebState> for Visitor {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, s: &WebState) -> Result<Self, Response> {
        let jar = CookieJar::from_headers(&parts.headers);
        let cookie = jar.get(COOKIE).map(|c| c.value().to_owned());
        let session = match &cookie {
            Some(value) => s
                .commands
                .identity
                .accounts
                .session(value)
                .await
                .map_err(|e| PageError::from(e).into_response())?,
            None => None,
        };
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0);
        let client = ClientInfo::from_parts(&parts.headers, peer, s.commands.auth.trust_proxy);
        let request_id = parts
            .headers
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let meta = EventMetadata {
            tenant_id: None,
            actor: session
                .as_ref()
                .filter(|s| s.stage == Stage::Active)
                .map(|s| format!("user:{}", s.user_id)),
            correlation_id: Some(Uuid::now_v7()),
            causation_id: None,
            request_id,
            ip: client.ip.map(|ip| ip.to_string()),
            user_agent: client.user_agent.clone(),
        };
        Ok(Self {
            cookie,
            session,
            client,
            meta,
            jar,
        })
    }
}

/// Someone signed in (organization or not). Anyone else is sent to the sign-in page.
pub struct SignedIn {
    pub session: Session,
    pub email: String,
    pub visitor: Visitor,
}

impl FromRequestParts<WebState> for SignedIn {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, s: &WebState) -> Result<Self, Response> {
        let visitor = Visitor::from_request_parts(parts, s).await?;
        let Some(session) = visitor.session.clone().filter(|s| s.stage == Stage::Active) else {
            let here = parts
                .extensions
                .get::<OriginalUri>()
                .map(|u| u.0.to_string())
                .unwrap_or_else(|| parts.uri.to_string());
            return Err(to_sign_in(&here));
        };
        let user = s
            .commands
            .identity
            .accounts
            .user(domain::UserId(session.user_id))
            .await
            .map_err(|e| PageError::from(e).into_response())?;
        parts.extensions.insert(Csrf(session.csrf_token.clone()));
        Ok(Self {
            email: user.email,
            session,
            visitor,
        })
    }
}

/// A member of the organization the session works in. Someone without one is sent to
/// found one; a blocked organization shows why.
pub struct Member {
    pub tenant: TenantId,
    /// The user's organizations, by name (for the switcher).
    pub memberships: Vec<(Uuid, String)>,
    pub org: Arc<Organization>,
    pub role: Role,
    pub user: SignedIn,
    /// `meta` in the organization's tenant.
    pub meta: EventMetadata,
}

impl FromRequestParts<WebState> for Member {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, s: &WebState) -> Result<Self, Response> {
        let user = SignedIn::from_request_parts(parts, s).await?;
        let org = match user.session.organization_id {
            Some(id) => s
                .commands
                .auth
                .orgs
                .current(id)
                .await
                .map_err(|e| PageError::internal(&e).into_response())?
                .map(|o| (id, o)),
            None => None,
        };
        let Some((id, org, role)) = org.and_then(|(id, o)| {
            let role = o.role_of(user.session.user_id)?;
            Some((id, o, role))
        }) else {
            return Err(Redirect::to("/organizations/new").into_response());
        };
        if org.blocked {
            return Err(PageError::Forbidden(
                "This organization is blocked; contact the platform's operator.".into(),
            )
            .into_response());
        }
        let tenant = TenantId(id);
        let memberships = projections::organizations::memberships_of(&s.pool, user.session.user_id)
            .await
            .map_err(|e| PageError::from(e).into_response())?
            .into_iter()
            .map(|m| (m.id, m.name))
            .collect();
        let meta = EventMetadata {
            tenant_id: Some(tenant.0),
            ..user.visitor.meta.clone()
        };
        Ok(Self {
            tenant,
            memberships,
            org,
            role,
            user,
            meta,
        })
    }
}

impl Member {
    /// Whether the member's role allows `action` (the API's table).
    pub fn may(&self, action: Action) -> bool {
        allows(self.role, action)
    }

    /// `Err` (a 403 page) unless the role allows `action`.
    pub fn require(&self, action: Action) -> Result<(), PageError> {
        if self.may(action) {
            Ok(())
        } else {
            Err(PageError::Forbidden(format!(
                "Your role ({}) may not do this.",
                role_name(self.role)
            )))
        }
    }

    /// What every page's frame shows of the member.
    pub fn frame(&self, title: impl Into<String>, section: &'static str) -> page::Frame {
        page::Frame {
            title: title.into(),
            section,
            email: Some(self.user.email.clone()),
            organization: Some(self.org.name.clone()),
            role: Some(role_name(self.role)),
            csrf: self.user.session.csrf_token.clone(),
            can_write: self.may(Action::Write),
            can_manage: self.may(Action::ManageMembers),
            organization_id: Some(self.tenant.0),
            organizations: self.memberships.clone(),
        }
    }
}

pub fn role_name(role: Role) -> &'static str {
    role.as_str()
}

/// The sign-in page, coming back to `here` afterwards.
pub fn to_sign_in(here: &str) -> Response {
    let next: String = url_encode(here);
    Redirect::to(&format!("/login?next={next}")).into_response()
}

/// `s` as a query-string value.
pub fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Where to go after signing in: a path of this site only (never another host).
pub fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && !n.contains('\\') => n.to_owned(),
        _ => "/".to_owned(),
    }
}

/// The session's CSRF token, left by [`SignedIn`] for [`CsrfForm`].
#[derive(Clone)]
struct Csrf(String);

/// A posted form whose `csrf` field must be the session's token (extract [`SignedIn`] or
/// [`Member`] before it). Its fields arrive as text; the page parses them.
pub struct CsrfForm<T>(pub T);

#[derive(serde::Deserialize)]
struct WithToken<T> {
    #[serde(default)]
    csrf: String,
    #[serde(flatten)]
    inner: T,
}

impl<T: DeserializeOwned + Send> FromRequest<WebState> for CsrfForm<T> {
    type Rejection = Response;

    async fn from_request(req: Request, s: &WebState) -> Result<Self, Response> {
        let expected = req.extensions().get::<Csrf>().cloned();
        let Form(form) = Form::<WithToken<T>>::from_request(req, s)
            .await
            .map_err(|e| (StatusCode::BAD_REQUEST, e.body_text()).into_response())?;
        let valid = expected.is_some_and(|Csrf(token)| {
            secret::constant_time_eq(token.as_bytes(), form.csrf.as_bytes())
        });
        if !valid {
            return Err(PageError::Forbidden(
                "The form's security token is missing or stale; reload the page and retry.".into(),
            )
            .into_response());
        }
        Ok(Self(form.inner))
    }
}

/// A form with nothing but its CSRF token (a button that does one thing).
#[derive(serde::Deserialize)]
pub struct NoFields {}
