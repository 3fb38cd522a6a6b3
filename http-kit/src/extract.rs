//! Path and query extractors whose every rejection is a problem+json response (axum's own
//! answer in `text/plain`): a parameter that does not parse is 400, as everywhere else.

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::Problem;

/// Like `axum::extract::Path`: a segment that does not parse into `T` is a 400.
pub struct ApiPath<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiPath<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Problem> {
        match <axum::extract::Path<T> as FromRequestParts<S>>::from_request_parts(parts, state)
            .await
        {
            Ok(axum::extract::Path(v)) => Ok(Self(v)),
            Err(r) => Err(path_rejection(r)),
        }
    }
}

/// Like `axum::extract::Query`: a query string that does not parse into `T` is a 400.
pub struct ApiQuery<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Problem> {
        match <axum::extract::Query<T> as FromRequestParts<S>>::from_request_parts(parts, state)
            .await
        {
            Ok(axum::extract::Query(v)) => Ok(Self(v)),
            Err(r) => Err(query_rejection(r)),
        }
    }
}

/// An optional query: no query string at all is `None`.
impl<S, T> OptionalFromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Option<Self>, Problem> {
        if parts.uri.query().is_none_or(str::is_empty) {
            return Ok(None);
        }
        <Self as FromRequestParts<S>>::from_request_parts(parts, state)
            .await
            .map(Some)
    }
}

/// The 400 of a query string that does not parse (also for handlers that take
/// `Result<Query<T>, QueryRejection>` to answer some shapes themselves).
pub fn query_rejection(r: QueryRejection) -> Problem {
    let text = r.body_text();
    // axum names the parameter: "Failed to deserialize query string: limit: invalid digit".
    let reason = text
        .strip_prefix("Failed to deserialize query string: ")
        .unwrap_or(&text);
    match reason.split_once(": ") {
        Some((field, why)) if !field.is_empty() && !field.contains(' ') => {
            Problem::bad_parameter(field, why)
        }
        _ => Problem::bad_request(text),
    }
}

fn path_rejection(r: PathRejection) -> Problem {
    use axum::extract::path::ErrorKind;
    match r {
        // The route and the handler disagree: our bug, not the caller's.
        PathRejection::MissingPathParams(e) => Problem::from_internal(&e),
        PathRejection::FailedToDeserializePathParams(e) => match e.kind() {
            ErrorKind::ParseErrorAtKey {
                key, expected_type, ..
            } => Problem::bad_parameter(key, format!("not a valid {expected_type}")),
            ErrorKind::DeserializeError { key, message, .. } => {
                Problem::bad_parameter(key, message)
            }
            ErrorKind::InvalidUtf8InPathParam { key } => {
                Problem::bad_parameter(key, "not valid UTF-8")
            }
            _ => Problem::bad_request(e.body_text()),
        },
        r => Problem::bad_request(r.body_text()),
    }
}

/// One path parameter of [`PathIds`]: an entity's id (a malformed one cannot name any
/// entity, so it answers 404 like an unknown one) or plain text.
pub trait PathParam: Sized {
    fn from_param(name: &str, raw: &str) -> Result<Self, Problem>;
}

impl PathParam for String {
    fn from_param(_: &str, raw: &str) -> Result<Self, Problem> {
        Ok(raw.to_owned())
    }
}

macro_rules! entity_params {
    ($($id:ty),*) => {$(
        impl PathParam for $id {
            fn from_param(_: &str, raw: &str) -> Result<Self, Problem> {
                use domain::EntityId;
                uuid::Uuid::parse_str(raw)
                    .map(<$id>::from_uuid)
                    .map_err(|_| Problem::not_found(<$id>::ENTITY))
            }
        }
    )*};
}

entity_params!(
    domain::TenantId,
    domain::ContactId,
    domain::UserId,
    domain::CompanyId,
    domain::SegmentId,
    domain::TemplateId,
    domain::CampaignId,
    domain::JourneyId,
    domain::ProviderId,
    domain::ImportId,
    domain::SuppressionId,
    domain::NoteId,
    domain::DeliveryId,
    domain::ExecutionId,
    domain::MemberId,
    domain::InviteId,
    domain::ApiKeyId
);

/// The route's path parameters, in order, typed: `PathIds(id): PathIds<ContactId>`,
/// `PathIds((id, tag)): PathIds<(ContactId, String)>`. A malformed id is a 404 naming the
/// entity (problem+json), as an unknown one is.
pub struct PathIds<T>(pub T);

/// What [`PathIds`] can extract: one parameter or a tuple of them.
pub trait PathParams: Sized {
    fn from_params(params: &[(&str, &str)]) -> Result<Self, Problem>;
}

fn param<T: PathParam>(params: &[(&str, &str)], i: usize) -> Result<T, Problem> {
    match params.get(i) {
        Some((name, raw)) => T::from_param(name, raw),
        // The route and the handler disagree: our bug, not the caller's.
        None => {
            tracing::error!(
                wanted = i + 1,
                got = params.len(),
                "a route has too few path parameters for its handler"
            );
            Err(Problem::internal())
        }
    }
}

impl<A: PathParam> PathParams for A {
    fn from_params(p: &[(&str, &str)]) -> Result<Self, Problem> {
        param(p, 0)
    }
}

impl<A: PathParam, B: PathParam> PathParams for (A, B) {
    fn from_params(p: &[(&str, &str)]) -> Result<Self, Problem> {
        Ok((param(p, 0)?, param(p, 1)?))
    }
}

impl<A: PathParam, B: PathParam, C: PathParam> PathParams for (A, B, C) {
    fn from_params(p: &[(&str, &str)]) -> Result<Self, Problem> {
        Ok((param(p, 0)?, param(p, 1)?, param(p, 2)?))
    }
}

impl<S, T> FromRequestParts<S> for PathIds<T>
where
    T: PathParams + Send,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Problem> {
        let raw = axum::extract::RawPathParams::from_request_parts(parts, state)
            .await
            .map_err(|r| match r {
                axum::extract::rejection::RawPathParamsRejection::InvalidUtf8InPathParam(e) => {
                    Problem::bad_request(e.body_text())
                }
                other => Problem::from_internal(&other),
            })?;
        let params: Vec<(&str, &str)> = raw.iter().collect();
        T::from_params(&params).map(Self)
    }
}
