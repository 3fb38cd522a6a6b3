//! SendGrid v3 `POST /v3/mail/send`: `Authorization: Bearer <key>` (401 otherwise), a JSON
//! body with personalizations, from, subject and content (400 otherwise); success is 202 with
//! an empty body and `X-Message-Id`; errors are `{"errors": [{"message", "field", "help"}]}`.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::server::{json as answer, retry_after_header, Failure, Received, Running, Shared};

pub const API_KEY: &str = "SG.fake-key.sendgrid";

pub struct FakeSendGrid {
    server: Running,
}

impl FakeSendGrid {
    pub async fn start() -> FakeSendGrid {
        let shared = Arc::new(Shared::default());
        let router = axum::Router::new()
            .route(
                workers::delivery::providers::sendgrid::PATH,
                axum::routing::post(mail_send),
            )
            .with_state(shared.clone());
        FakeSendGrid {
            server: Running::start(shared, router).await,
        }
    }

    pub fn base_url(&self) -> &str {
        &self.server.base_url
    }

    /// The provider configuration (for `providers::build("sendgrid", …)`) pointing here.
    pub fn config(&self) -> serde_json::Value {
        json!({"api_key": API_KEY, "base_url": self.server.base_url, "timeout_secs": 5})
    }

    pub fn received(&self) -> Vec<Received> {
        self.server.shared.received()
    }

    /// Answers the next `n` (authenticated) requests with `failure`.
    pub fn fail_next(&self, n: usize, failure: Failure) {
        self.server.shared.fail_next(n, failure);
    }
}

async fn mail_send(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (status, response) = decide(&shared, &headers, &body).await;
    shared.record(Received {
        method: method.to_string(),
        uri: uri.to_string(),
        headers,
        body: body.to_vec(),
        form: Vec::new(),
        status: status.as_u16(),
    });
    response
}

async fn decide(shared: &Shared, headers: &HeaderMap, body: &[u8]) -> (StatusCode, Response) {
    let bearer = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if bearer != Some(API_KEY) {
        return error(
            StatusCode::UNAUTHORIZED,
            "The provided authorization grant is invalid, expired, or revoked",
            None,
            &[],
        );
    }
    match shared.take_failure() {
        Some(Failure::Throttle { retry_after }) => {
            return error(
                StatusCode::TOO_MANY_REQUESTS,
                "too many requests",
                None,
                &retry_after_header(retry_after),
            )
        }
        Some(Failure::ServerError) => {
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal error",
                None,
                &[],
            )
        }
        Some(Failure::Rejected { message }) => {
            return error(StatusCode::BAD_REQUEST, &message, Some("from.email"), &[])
        }
        Some(Failure::Hang(d)) => tokio::time::sleep(d).await,
        None => {}
    }
    let Ok(request) = serde_json::from_slice::<serde_json::Value>(body) else {
        return error(StatusCode::BAD_REQUEST, "Bad Request", None, &[]);
    };
    for (pointer, field) in [
        ("/personalizations/0/to/0/email", "personalizations"),
        ("/from/email", "from.email"),
        ("/subject", "subject"),
        ("/content/0/value", "content"),
    ] {
        if request.pointer(pointer).and_then(|v| v.as_str()).is_none() {
            return error(
                StatusCode::BAD_REQUEST,
                "The field is required.",
                Some(field),
                &[],
            );
        }
    }
    let id = format!("fake-sendgrid-{:08}", shared.next_id());
    let mut response = StatusCode::ACCEPTED.into_response();
    response
        .headers_mut()
        .insert("x-message-id", id.parse().unwrap());
    (StatusCode::ACCEPTED, response)
}

fn error(
    status: StatusCode,
    message: &str,
    field: Option<&str>,
    headers: &[(&str, String)],
) -> (StatusCode, Response) {
    let body = json!({"errors": [{"message": message, "field": field, "help": null}]});
    (status, answer(status, headers, body))
}
