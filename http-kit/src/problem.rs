//! RFC 9457 problem details. Every error the API returns is one of these, with a stable `type`.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// An error response body (`application/problem+json`).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Problem {
    /// A stable identifier of the kind of problem, e.g. `/problems/validation`.
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// For validation problems: which field, and why.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldProblem>,
    /// Seconds, sent as `Retry-After`.
    #[serde(skip)]
    pub retry_after: Option<u32>,
    /// Extension members (RFC 9457 §3.2), e.g. `existing_id` on a conflict (boxed: most
    /// problems have none, and a `Result` carrying a problem should stay small).
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub extensions: Box<serde_json::Map<String, serde_json::Value>>,
}

/// One invalid field.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct FieldProblem {
    pub field: String,
    pub reason: String,
}

impl Problem {
    pub fn new(status: StatusCode, slug: &str, title: &str) -> Self {
        Self {
            kind: format!("/problems/{slug}"),
            title: title.to_owned(),
            status: status.as_u16(),
            detail: None,
            errors: vec![],
            retry_after: None,
            extensions: Box::default(),
        }
    }

    /// Adds the extension member `key` (never one of the standard members, which it would
    /// shadow in the JSON: a debug build panics, a release build drops it).
    pub fn with(mut self, key: &str, value: impl Into<serde_json::Value>) -> Self {
        const STANDARD: [&str; 6] = ["type", "title", "status", "detail", "instance", "errors"];
        debug_assert!(!STANDARD.contains(&key), "{key} is a standard member");
        if !STANDARD.contains(&key) {
            self.extensions.insert(key.to_owned(), value.into());
        }
        self
    }

    pub fn detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    pub fn retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(u32::try_from(seconds).unwrap_or(u32::MAX));
        self
    }

    /// 422: the request was well formed but a value is invalid.
    pub fn validation(field: impl Into<String>, reason: impl Into<String>) -> Self {
        let (field, reason) = (field.into(), reason.into());
        let mut p = Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation",
            "Invalid input",
        )
        .detail(format!("{field}: {reason}"));
        p.errors.push(FieldProblem { field, reason });
        p
    }

    /// 422 naming every invalid field (`errors`), with all of them in `detail`.
    pub fn invalid_fields(errors: Vec<FieldProblem>) -> Self {
        let mut p = Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation",
            "Invalid input",
        );
        p.detail = Some(
            errors
                .iter()
                .map(|e| format!("{}: {}", e.field, e.reason))
                .collect::<Vec<_>>()
                .join("; "),
        );
        p.errors = errors;
        p
    }

    /// 404: no such resource for this tenant (also what another tenant's resource looks like).
    pub fn not_found(what: &str) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not-found", "Not found").detail(format!("no such {what}"))
    }

    /// 400: a path or query parameter is malformed.
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad-request", "Bad request").detail(detail)
    }

    /// 400: query or path parameters that are malformed or out of range, each named in
    /// `errors` (every bad parameter, not only the first).
    pub fn bad_parameters(errors: Vec<FieldProblem>) -> Self {
        let mut p = Self::invalid_fields(errors);
        p.kind = "/problems/bad-request".into();
        p.title = "Bad request".into();
        p.status = StatusCode::BAD_REQUEST.as_u16();
        p
    }

    /// 400: the query or path parameter `field` is malformed or out of range.
    pub fn bad_parameter(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::bad_parameters(vec![FieldProblem {
            field: field.into(),
            reason: reason.into(),
        }])
    }

    /// 405 with the `Allow` header naming the methods the route answers (empty: the router
    /// adds it, as axum's method fallback does).
    pub fn method_not_allowed(allowed: &[axum::http::Method]) -> Response {
        let problem = Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method-not-allowed",
            "Method not allowed",
        );
        let mut res = problem.into_response();
        let allow = allowed
            .iter()
            .map(axum::http::Method::as_str)
            .collect::<Vec<_>>()
            .join(", ");
        if let (false, Ok(v)) = (allow.is_empty(), HeaderValue::from_str(&allow)) {
            res.headers_mut().insert(header::ALLOW, v);
        }
        res
    }

    /// 500: the cause is logged, never shown.
    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "Internal error",
        )
        .detail("the error was logged; retrying may help")
    }

    /// Logs `error` and returns an opaque 500.
    pub fn from_internal(error: &dyn std::error::Error) -> Self {
        tracing::error!(error = %error, "internal error");
        Self::internal()
    }
}

/// A store failure is ours: logged, answered 500.
impl From<event_store::StoreError> for Problem {
    fn from(e: event_store::StoreError) -> Self {
        Self::from_internal(&e)
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_vec(&self).unwrap_or_default();
        let mut res = (status, body).into_response();
        res.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if let Some(s) = self.retry_after {
            res.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        res
    }
}
