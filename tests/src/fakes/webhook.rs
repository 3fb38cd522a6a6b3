//! A webhook receiver: any method on any path, every request recorded. Given a secret it
//! checks `X-Mauntic-Signature: t=<unix>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>` the way
//! a receiver should (recomputed here with ring, apart from the sender's code; `t` within five
//! minutes) and answers 401 when it does not hold. Success is 200; told to fail it answers 429
//! (with `Retry-After`), 500, or 400 with the refusal as its text body, or hangs.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::server::{retry_after_header, Failure, Received, Running, Shared};

/// How old a signature's `t` may be.
const TOLERANCE_SECS: i64 = 300;

struct Receiver {
    shared: Arc<Shared>,
    secret: Option<String>,
}

pub struct FakeWebhook {
    server: Running,
    receiver: Arc<Receiver>,
}

impl FakeWebhook {
    /// A receiver that checks signatures made with `secret`, or none.
    pub async fn start(secret: Option<&str>) -> FakeWebhook {
        let shared = Arc::new(Shared::default());
        let receiver = Arc::new(Receiver {
            shared: shared.clone(),
            secret: secret.map(str::to_owned),
        });
        let router = axum::Router::new()
            .fallback(receive)
            .with_state(receiver.clone());
        FakeWebhook {
            server: Running::start(shared, router).await,
            receiver,
        }
    }

    /// `path` on this receiver (`http://127.0.0.1:…/path`).
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.server.base_url)
    }

    /// The provider configuration (for `providers::build("webhook", …)`): this receiver's
    /// secret, plain HTTP allowed (it is local).
    pub fn config(&self) -> serde_json::Value {
        json!({"secret": self.receiver.secret, "allow_http": true, "timeout_ms": 5000})
    }

    pub fn received(&self) -> Vec<Received> {
        self.server.shared.received()
    }

    /// Answers the next `n` (correctly signed) requests with `failure`.
    pub fn fail_next(&self, n: usize, failure: Failure) {
        self.server.shared.fail_next(n, failure);
    }

    /// Whether `received` carries a valid signature under this receiver's secret.
    pub fn verify(&self, received: &Received) -> Result<(), String> {
        let secret = self.receiver.secret.as_deref().ok_or("no secret")?;
        verify(secret, &received.headers, &received.body)
    }
}

async fn receive(
    State(receiver): State<Arc<Receiver>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (status, response) = decide(&receiver, &headers, &body).await;
    receiver.shared.record(Received {
        method: method.to_string(),
        uri: uri.to_string(),
        headers,
        body: body.to_vec(),
        form: Vec::new(),
        status: status.as_u16(),
    });
    response
}

async fn decide(receiver: &Receiver, headers: &HeaderMap, body: &[u8]) -> (StatusCode, Response) {
    if let Some(secret) = &receiver.secret {
        if let Err(why) = verify(secret, headers, body) {
            let status = StatusCode::UNAUTHORIZED;
            return (
                status,
                (status, format!("invalid signature: {why}")).into_response(),
            );
        }
    }
    match receiver.shared.take_failure() {
        Some(Failure::Throttle { retry_after }) => {
            let status = StatusCode::TOO_MANY_REQUESTS;
            let mut response = (status, "slow down").into_response();
            for (name, value) in retry_after_header(retry_after) {
                response.headers_mut().insert(name, value.parse().unwrap());
            }
            return (status, response);
        }
        Some(Failure::ServerError) => {
            let status = StatusCode::INTERNAL_SERVER_ERROR;
            return (status, (status, "internal error").into_response());
        }
        Some(Failure::Rejected { message }) => {
            let status = StatusCode::BAD_REQUEST;
            return (status, (status, message).into_response());
        }
        Some(Failure::Hang(d)) => tokio::time::sleep(d).await,
        None => {}
    }
    (StatusCode::OK, (StatusCode::OK, "ok").into_response())
}

fn verify(secret: &str, headers: &HeaderMap, body: &[u8]) -> Result<(), String> {
    let header = headers
        .get("x-mauntic-signature")
        .and_then(|v| v.to_str().ok())
        .ok_or("no X-Mauntic-Signature")?;
    let mut t = None;
    let mut v1 = None;
    for part in header.split(',') {
        match part.split_once('=') {
            Some(("t", value)) => t = value.parse::<i64>().ok(),
            Some(("v1", value)) => v1 = hex_decode(value),
            _ => {}
        }
    }
    let (t, v1) = (t.ok_or("no t")?, v1.ok_or("no v1")?);
    if (chrono::Utc::now().timestamp() - t).abs() > TOLERANCE_SECS {
        return Err(format!("t={t} is too far from now"));
    }
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
    let mut signed = format!("{t}.").into_bytes();
    signed.extend_from_slice(body);
    ring::hmac::verify(&key, &signed, &v1).map_err(|_| "signature mismatch".to_owned())
}

fn hex_decode(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}
