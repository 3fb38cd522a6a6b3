//! Postmark `POST /email`: `X-Postmark-Server-Token` (401 `ErrorCode` 10 otherwise), a JSON
//! body with From, To, Subject and a body (422 otherwise); success is
//! `{"To", "SubmittedAt", "MessageID", "ErrorCode": 0, "Message": "OK"}`; errors are
//! `{"ErrorCode", "Message"}`.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::Response;
use serde_json::json;

use super::server::{json as answer, retry_after_header, Failure, Received, Running, Shared};

pub const SERVER_TOKEN: &str = "fake-postmark-server-token";

pub struct FakePostmark {
    server: Running,
}

impl FakePostmark {
    pub async fn start() -> FakePostmark {
        let shared = Arc::new(Shared::default());
        let router = axum::Router::new()
            .route(
                workers::delivery::providers::postmark::PATH,
                axum::routing::post(email),
            )
            .with_state(shared.clone());
        FakePostmark {
            server: Running::start(shared, router).await,
        }
    }

    pub fn base_url(&self) -> &str {
        &self.server.base_url
    }

    /// The provider configuration (for `providers::build("postmark", …)`) pointing here.
    pub fn config(&self) -> serde_json::Value {
        json!({"server_token": SERVER_TOKEN, "base_url": self.server.base_url, "timeout_secs": 5})
    }

    pub fn received(&self) -> Vec<Received> {
        self.server.shared.received()
    }

    /// Answers the next `n` (authenticated) requests with `failure`.
    pub fn fail_next(&self, n: usize, failure: Failure) {
        self.server.shared.fail_next(n, failure);
    }
}

async fn email(
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
    let token = headers
        .get("x-postmark-server-token")
        .and_then(|v| v.to_str().ok());
    if token != Some(SERVER_TOKEN) {
        return error(
            StatusCode::UNAUTHORIZED,
            10,
            "The Server Token you provided in the X-Postmark-Server-Token request header was invalid.",
            &[],
        );
    }
    match shared.take_failure() {
        Some(Failure::Throttle { retry_after }) => {
            return error(
                StatusCode::TOO_MANY_REQUESTS,
                429,
                "Rate limit exceeded.",
                &retry_after_header(retry_after),
            )
        }
        Some(Failure::ServerError) => {
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                500,
                "Internal Server Error",
                &[],
            )
        }
        Some(Failure::Rejected { message }) => {
            return error(StatusCode::UNPROCESSABLE_ENTITY, 300, &message, &[])
        }
        Some(Failure::Hang(d)) => tokio::time::sleep(d).await,
        None => {}
    }
    let Ok(request) = serde_json::from_slice::<serde_json::Value>(body) else {
        return error(
            StatusCode::BAD_REQUEST,
            402,
            "Received invalid JSON input.",
            &[],
        );
    };
    let has = |k: &str| request.get(k).and_then(|v| v.as_str()).is_some();
    if !has("From") || !has("To") || !(has("TextBody") || has("HtmlBody")) {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            300,
            "Invalid email request: From, To and a body are required.",
            &[],
        );
    }
    let id = format!("b7bc2f4a-fake-postmark-{:08}", shared.next_id());
    let body = json!({
        "To": request["To"],
        "SubmittedAt": chrono::Utc::now().to_rfc3339(),
        "MessageID": id,
        "ErrorCode": 0,
        "Message": "OK",
    });
    (StatusCode::OK, answer(StatusCode::OK, &[], body))
}

fn error(
    status: StatusCode,
    code: i64,
    message: &str,
    headers: &[(&str, String)],
) -> (StatusCode, Response) {
    let body = json!({"ErrorCode": code, "Message": message});
    (status, answer(status, headers, body))
}
