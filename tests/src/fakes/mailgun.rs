//! Mailgun `POST /v3/{domain}/messages`: basic auth `api:<key>` (401 `Forbidden` otherwise),
//! the fake's domain (404 otherwise), a multipart form with from, to, subject and text or html
//! (400 otherwise); success is `{"id": "<…@domain>", "message": "Queued. Thank you."}`;
//! errors are `{"message"}`.

use std::sync::Arc;

use axum::extract::{Multipart, Path, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde_json::json;

use super::server::{json as answer, retry_after_header, Failure, Received, Running, Shared};

pub const API_KEY: &str = "key-fake-mailgun";
pub const DOMAIN: &str = "mg.acme.test";

pub struct FakeMailgun {
    server: Running,
}

impl FakeMailgun {
    pub async fn start() -> FakeMailgun {
        let shared = Arc::new(Shared::default());
        let router = axum::Router::new()
            .route("/v3/{domain}/messages", axum::routing::post(messages))
            .with_state(shared.clone());
        FakeMailgun {
            server: Running::start(shared, router).await,
        }
    }

    pub fn base_url(&self) -> &str {
        &self.server.base_url
    }

    /// The provider configuration (for `providers::build("mailgun", …)`) pointing here.
    pub fn config(&self) -> serde_json::Value {
        json!({
            "domain": DOMAIN,
            "api_key": API_KEY,
            "base_url": self.server.base_url,
            "timeout_secs": 5,
        })
    }

    pub fn received(&self) -> Vec<Received> {
        self.server.shared.received()
    }

    /// Answers the next `n` (authenticated) requests with `failure`.
    pub fn fail_next(&self, n: usize, failure: Failure) {
        self.server.shared.fail_next(n, failure);
    }
}

async fn messages(
    State(shared): State<Arc<Shared>>,
    Path(domain): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    mut multipart: Multipart,
) -> Response {
    let mut form = Vec::new();
    let mut malformed = false;
    loop {
        match multipart.next_field().await {
            Ok(Some(field)) => {
                let name = field.name().unwrap_or_default().to_owned();
                match field.text().await {
                    Ok(value) => form.push((name, value)),
                    Err(_) => malformed = true,
                }
            }
            Ok(None) => break,
            Err(_) => {
                malformed = true;
                break;
            }
        }
    }
    let (status, response) = decide(&shared, &domain, &headers, &form, malformed).await;
    shared.record(Received {
        method: method.to_string(),
        uri: uri.to_string(),
        headers,
        body: Vec::new(),
        form,
        status: status.as_u16(),
    });
    response
}

async fn decide(
    shared: &Shared,
    domain: &str,
    headers: &HeaderMap,
    form: &[(String, String)],
    malformed: bool,
) -> (StatusCode, Response) {
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("api:{API_KEY}"))
    );
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(expected.as_str()) {
        return (
            StatusCode::UNAUTHORIZED,
            (StatusCode::UNAUTHORIZED, "Forbidden").into_response(),
        );
    }
    if domain != DOMAIN {
        return error(
            StatusCode::NOT_FOUND,
            &format!("Domain not found: {domain}"),
            &[],
        );
    }
    match shared.take_failure() {
        Some(Failure::Throttle { retry_after }) => {
            return error(
                StatusCode::TOO_MANY_REQUESTS,
                "Too many requests",
                &retry_after_header(retry_after),
            )
        }
        Some(Failure::ServerError) => {
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Internal server error",
                &[],
            )
        }
        Some(Failure::Rejected { message }) => {
            return error(StatusCode::BAD_REQUEST, &message, &[])
        }
        Some(Failure::Hang(d)) => tokio::time::sleep(d).await,
        None => {}
    }
    if malformed {
        return error(StatusCode::BAD_REQUEST, "Malformed multipart form", &[]);
    }
    let has = |name: &str| form.iter().any(|(n, v)| n == name && !v.is_empty());
    for name in ["from", "to", "subject"] {
        if !has(name) {
            return error(
                StatusCode::BAD_REQUEST,
                &format!("'{name}' parameter is missing"),
                &[],
            );
        }
    }
    if !has("text") && !has("html") {
        return error(
            StatusCode::BAD_REQUEST,
            "Need at least one of 'text' or 'html' parameters specified",
            &[],
        );
    }
    let id = format!("<20261129.fake.{:08}@{domain}>", shared.next_id());
    let body = json!({"id": id, "message": "Queued. Thank you."});
    (StatusCode::OK, answer(StatusCode::OK, &[], body))
}

fn error(status: StatusCode, message: &str, headers: &[(&str, String)]) -> (StatusCode, Response) {
    (
        status,
        answer(status, headers, json!({ "message": message })),
    )
}
