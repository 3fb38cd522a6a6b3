//! Plivo `POST /v1/Account/{auth_id}/Message/`: basic auth `auth_id:auth_token` (401
//! otherwise), the fake's account in the path (404), a JSON body with `src`, `dst` and `text`
//! (400 otherwise); success is 202 `{"api_id", "message": "message(s) queued", "message_uuid":
//! ["…"]}`; errors are `{"api_id", "error"}`.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::Response;
use base64::Engine as _;
use serde_json::json;

use super::server::{json as answer, retry_after_header, Failure, Received, Running, Shared};

pub const AUTH_ID: &str = "MAFAKEPLIVO0000000000";
pub const AUTH_TOKEN: &str = "fake-plivo-auth-token";

pub struct FakePlivo {
    server: Running,
}

impl FakePlivo {
    pub async fn start() -> FakePlivo {
        let shared = Arc::new(Shared::default());
        let router = axum::Router::new()
            .route(
                "/v1/Account/{auth_id}/Message/",
                axum::routing::post(message),
            )
            .with_state(shared.clone());
        FakePlivo {
            server: Running::start(shared, router).await,
        }
    }

    /// The provider configuration (for `providers::build("plivo", …)`) pointing here.
    pub fn config(&self) -> serde_json::Value {
        json!({
            "auth_id": AUTH_ID,
            "auth_token": AUTH_TOKEN,
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

async fn message(
    State(shared): State<Arc<Shared>>,
    Path(auth_id): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (status, response) = decide(&shared, &auth_id, &headers, &body).await;
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

async fn decide(
    shared: &Shared,
    auth_id: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> (StatusCode, Response) {
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{AUTH_ID}:{AUTH_TOKEN}"))
    );
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(expected.as_str()) {
        return error(
            StatusCode::UNAUTHORIZED,
            "Authentication credentials invalid",
            &[],
        );
    }
    if auth_id != AUTH_ID {
        return error(StatusCode::NOT_FOUND, "not found", &[]);
    }
    match shared.take_failure() {
        Some(Failure::Throttle { retry_after }) => {
            return error(
                StatusCode::TOO_MANY_REQUESTS,
                "too many requests",
                &retry_after_header(retry_after),
            )
        }
        Some(Failure::ServerError) => {
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal server error",
                &[],
            )
        }
        Some(Failure::Rejected { message }) => {
            return error(StatusCode::BAD_REQUEST, &message, &[])
        }
        Some(Failure::Hang(d)) => tokio::time::sleep(d).await,
        None => {}
    }
    let Ok(request) = serde_json::from_slice::<serde_json::Value>(body) else {
        return error(StatusCode::BAD_REQUEST, "invalid json data", &[]);
    };
    for name in ["src", "dst", "text"] {
        if request.get(name).and_then(|v| v.as_str()).is_none() {
            return error(
                StatusCode::BAD_REQUEST,
                &format!("{name} parameter not found"),
                &[],
            );
        }
    }
    let uuid = format!("00000000-fake-plivo-0000-{:012x}", shared.next_id());
    let accepted = json!({
        "api_id": uuid::Uuid::new_v4(),
        "message": "message(s) queued",
        "message_uuid": [uuid],
    });
    (
        StatusCode::ACCEPTED,
        answer(StatusCode::ACCEPTED, &[], accepted),
    )
}

fn error(status: StatusCode, message: &str, headers: &[(&str, String)]) -> (StatusCode, Response) {
    let body = json!({"api_id": uuid::Uuid::new_v4(), "error": message});
    (status, answer(status, headers, body))
}
