//! Vonage SMS API `POST /sms/json`: a urlencoded form with `api_key`, `api_secret`, `from`,
//! `to`, `text`, optional `type` and `client-ref`. Vonage answers HTTP 200 whatever becomes of
//! the message, one entry per part in `messages`: `{"status": "0", "message-id", "to",
//! "client-ref", …}` when accepted, `{"status": "n", "error-text"}` when not (1 throttled,
//! 2 missing parameter, 3 invalid parameter, 4 bad credentials, 5 internal error). A text
//! longer than one SMS (160 GSM characters, 70 with `type=unicode`) goes out in parts of 153
//! (67).

use std::sync::Arc;

use axum::extract::rejection::FormRejection;
use axum::extract::{Form, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::Response;
use serde_json::json;

use super::server::{json as answer, Failure, Received, Running, Shared};

pub const API_KEY: &str = "fakekey1";
pub const API_SECRET: &str = "fake-vonage-secret";

pub struct FakeVonage {
    server: Running,
}

impl FakeVonage {
    pub async fn start() -> FakeVonage {
        let shared = Arc::new(Shared::default());
        let router = axum::Router::new()
            .route(
                workers::delivery::providers::vonage::PATH,
                axum::routing::post(sms),
            )
            .with_state(shared.clone());
        FakeVonage {
            server: Running::start(shared, router).await,
        }
    }

    /// The provider configuration (for `providers::build("vonage", …)`) pointing here.
    pub fn config(&self) -> serde_json::Value {
        json!({
            "api_key": API_KEY,
            "api_secret": API_SECRET,
            "base_url": self.server.base_url,
            "timeout_secs": 5,
        })
    }

    pub fn received(&self) -> Vec<Received> {
        self.server.shared.received()
    }

    /// Answers the next `n` (authenticated) requests with `failure`: a throttle is status 1
    /// (Vonage names no delay), a server error status 5, a refusal status 3 with `message`.
    pub fn fail_next(&self, n: usize, failure: Failure) {
        self.server.shared.fail_next(n, failure);
    }
}

async fn sms(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    form: Result<Form<Vec<(String, String)>>, FormRejection>,
) -> Response {
    let form = form.map(|Form(f)| f).unwrap_or_default();
    let body = decide(&shared, &form).await;
    shared.record(Received {
        method: method.to_string(),
        uri: uri.to_string(),
        headers,
        body: Vec::new(),
        form,
        status: 200,
    });
    answer(StatusCode::OK, &[], body)
}

async fn decide(shared: &Shared, form: &[(String, String)]) -> serde_json::Value {
    let field = |name: &str| {
        form.iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    };
    if field("api_key") != Some(API_KEY) || field("api_secret") != Some(API_SECRET) {
        return refused("4", "Bad Credentials");
    }
    match shared.take_failure() {
        Some(Failure::Throttle { .. }) => {
            return refused(
                "1",
                "Throughput Rate Exceeded - please wait [ 1000 ] and retry",
            )
        }
        Some(Failure::ServerError) => return refused("5", "Internal Error"),
        Some(Failure::Rejected { message }) => return refused("3", &message),
        Some(Failure::Hang(d)) => tokio::time::sleep(d).await,
        None => {}
    }
    for name in ["from", "to", "text"] {
        if field(name).is_none() {
            return refused("2", &format!("Missing {name} param"));
        }
    }
    let (to, text) = (
        field("to").unwrap_or_default(),
        field("text").unwrap_or_default(),
    );
    if to.starts_with('+') || !to.chars().all(|c| c.is_ascii_digit()) {
        return refused("3", &format!("Invalid to param: {to}"));
    }
    let unicode = field("type") == Some("unicode");
    let (single, part) = if unicode { (70, 67) } else { (160, 153) };
    let length = text.chars().count();
    let parts = if length <= single {
        1
    } else {
        length.div_ceil(part)
    };
    let messages: Vec<serde_json::Value> = (0..parts)
        .map(|_| {
            let mut m = json!({
                "to": to,
                "message-id": format!("FAKE{:013X}", shared.next_id()),
                "status": "0",
                "remaining-balance": "3.14159265",
                "message-price": "0.03330000",
                "network": "12345",
            });
            if let Some(client_ref) = field("client-ref") {
                m["client-ref"] = client_ref.into();
            }
            m
        })
        .collect();
    json!({"message-count": parts.to_string(), "messages": messages})
}

fn refused(status: &str, text: &str) -> serde_json::Value {
    json!({"message-count": "1", "messages": [{"status": status, "error-text": text}]})
}
