//! Telnyx `POST /v2/messages`: `Authorization: Bearer <key>` (401 otherwise), a JSON body with
//! `from`, `to` (E.164) and `text` (422 otherwise); success is 200 `{"data": {"record_type":
//! "message", "id", "from", "to": [{"phone_number", "status": "queued"}], "text", …}}`; errors
//! are `{"errors": [{"code", "title", "detail"}]}`.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::Response;
use serde_json::json;

use super::server::{json as answer, retry_after_header, Failure, Received, Running, Shared};
use super::twilio::is_e164;

pub const API_KEY: &str = "KEY0FAKETELNYX_abcdef";

pub struct FakeTelnyx {
    server: Running,
}

impl FakeTelnyx {
    pub async fn start() -> FakeTelnyx {
        let shared = Arc::new(Shared::default());
        let router = axum::Router::new()
            .route(
                workers::delivery::providers::telnyx::PATH,
                axum::routing::post(messages),
            )
            .with_state(shared.clone());
        FakeTelnyx {
            server: Running::start(shared, router).await,
        }
    }

    /// The provider configuration (for `providers::build("telnyx", …)`) pointing here.
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

async fn messages(
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
            "10009",
            "Authentication failed",
            "The API key looks malformed. Check that you copied it correctly.",
            &[],
        );
    }
    match shared.take_failure() {
        Some(Failure::Throttle { retry_after }) => {
            return error(
                StatusCode::TOO_MANY_REQUESTS,
                "10011",
                "Too many requests",
                "You have exceeded the rate limit.",
                &retry_after_header(retry_after),
            )
        }
        Some(Failure::ServerError) => {
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "10007",
                "Unexpected error",
                "An unexpected error occured.",
                &[],
            )
        }
        Some(Failure::Rejected { message }) => {
            return error(
                StatusCode::BAD_REQUEST,
                "40310",
                "Invalid 'to' address",
                &message,
                &[],
            )
        }
        Some(Failure::Hang(d)) => tokio::time::sleep(d).await,
        None => {}
    }
    let Ok(request) = serde_json::from_slice::<serde_json::Value>(body) else {
        return error(
            StatusCode::BAD_REQUEST,
            "10015",
            "Bad Request",
            "The request failed because it was not well-formed.",
            &[],
        );
    };
    let field = |name: &str| request.get(name).and_then(|v| v.as_str());
    for name in ["from", "to", "text"] {
        if field(name).is_none() {
            return error(
                StatusCode::UNPROCESSABLE_ENTITY,
                "10005",
                "Invalid parameter",
                &format!("The '{name}' parameter is required."),
                &[],
            );
        }
    }
    let to = field("to").unwrap_or_default();
    if !is_e164(to) {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "40310",
            "Invalid 'to' address",
            "The 'to' address should be in E.164 format.",
            &[],
        );
    }
    let id = format!("40317f00-fake-telnyx-0000-{:012x}", shared.next_id());
    let data = json!({"data": {
        "record_type": "message",
        "id": id,
        "direction": "outbound",
        "type": "SMS",
        "from": {"phone_number": field("from")},
        "to": [{"phone_number": to, "status": "queued"}],
        "text": field("text"),
    }});
    (StatusCode::OK, answer(StatusCode::OK, &[], data))
}

fn error(
    status: StatusCode,
    code: &str,
    title: &str,
    detail: &str,
    headers: &[(&str, String)],
) -> (StatusCode, Response) {
    let body = json!({"errors": [{"code": code, "title": title, "detail": detail}]});
    (status, answer(status, headers, body))
}
