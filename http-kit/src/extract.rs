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
