//! Twilio `POST /2010-04-01/Accounts/{AccountSid}/Messages.json`: basic auth `sid:token`
//! (401, code 20003, otherwise), the fake's account in the path (404, code 20404), a
//! urlencoded form with `To` (E.164, code 21211 otherwise), `From` and `Body` (code 21602);
//! success is 201 with the message resource (`sid` `SM…`, `status: queued`); errors are
//! `{"code", "message", "more_info", "status"}` (429 code 20429 when throttled).

use std::sync::Arc;

use axum::extract::rejection::FormRejection;
use axum::extract::{Form, Path, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::Response;
use base64::Engine as _;
use serde_json::json;

use super::server::{json as answer, retry_after_header, Failure, Received, Running, Shared};

pub const ACCOUNT_SID: &str = "AC00000000000000000000000000fake";
pub const AUTH_TOKEN: &str = "fake-twilio-auth-token";

pub struct FakeTwilio {
    server: Running,
}

impl FakeTwilio {
    pub async fn start() -> FakeTwilio {
        let shared = Arc::new(Shared::default());
        let router = axum::Router::new()
            .route(
                "/2010-04-01/Accounts/{sid}/Messages.json",
                axum::routing::post(messages),
            )
            .with_state(shared.clone());
        FakeTwilio {
            server: Running::start(shared, router).await,
        }
    }

    /// The provider configuration (for `providers::build("twilio", …)`) pointing here.
    pub fn config(&self) -> serde_json::Value {
        json!({
            "account_sid": ACCOUNT_SID,
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

async fn messages(
    State(shared): State<Arc<Shared>>,
    Path(sid): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    form: Result<Form<Vec<(String, String)>>, FormRejection>,
) -> Response {
    let form = form.map(|Form(f)| f).unwrap_or_default();
    let (status, response) = decide(&shared, &sid, &headers, &form).await;
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
    sid: &str,
    headers: &HeaderMap,
    form: &[(String, String)],
) -> (StatusCode, Response) {
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{ACCOUNT_SID}:{AUTH_TOKEN}"))
    );
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(expected.as_str()) {
        return error(StatusCode::UNAUTHORIZED, 20003, "Authenticate", &[]);
    }
    if sid != ACCOUNT_SID {
        return error(
            StatusCode::NOT_FOUND,
            20404,
            &format!(
                "The requested resource /2010-04-01/Accounts/{sid}/Messages.json was not found"
            ),
            &[],
        );
    }
    match shared.take_failure() {
        Some(Failure::Throttle { retry_after }) => {
            return error(
                StatusCode::TOO_MANY_REQUESTS,
                20429,
                "Too Many Requests",
                &retry_after_header(retry_after),
            )
        }
        Some(Failure::ServerError) => {
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                20500,
                "An internal server error has occurred",
                &[],
            )
        }
        Some(Failure::Rejected { message }) => {
            return error(StatusCode::BAD_REQUEST, 21610, &message, &[])
        }
        Some(Failure::Hang(d)) => tokio::time::sleep(d).await,
        None => {}
    }
    let field = |name: &str| {
        form.iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    };
    let Some(to) = field("To") else {
        return error(
            StatusCode::BAD_REQUEST,
            21604,
            "A 'To' phone number is required.",
            &[],
        );
    };
    if !is_e164(to) {
        return error(
            StatusCode::BAD_REQUEST,
            21211,
            &format!("Invalid 'To' Phone Number: {to}"),
            &[],
        );
    }
    let Some(from) = field("From") else {
        return error(
            StatusCode::BAD_REQUEST,
            21603,
            "A 'From' phone number is required.",
            &[],
        );
    };
    let Some(body) = field("Body") else {
        return error(
            StatusCode::BAD_REQUEST,
            21602,
            "Message body is required.",
            &[],
        );
    };
    let sid = format!("SM{:032x}", shared.next_id());
    let resource = json!({
        "sid": sid,
        "account_sid": ACCOUNT_SID,
        "to": to,
        "from": from,
        "body": body,
        "status": "queued",
        "num_segments": "1",
        "direction": "outbound-api",
        "api_version": "2010-04-01",
        "uri": format!("/2010-04-01/Accounts/{ACCOUNT_SID}/Messages/{sid}.json"),
    });
    (
        StatusCode::CREATED,
        answer(StatusCode::CREATED, &[], resource),
    )
}

/// `+` and 8 to 15 digits.
pub fn is_e164(number: &str) -> bool {
    number.strip_prefix('+').is_some_and(|digits| {
        (8..=15).contains(&digits.len()) && digits.chars().all(|c| c.is_ascii_digit())
    })
}

fn error(
    status: StatusCode,
    code: u32,
    message: &str,
    headers: &[(&str, String)],
) -> (StatusCode, Response) {
    let body = json!({
        "code": code,
        "message": message,
        "more_info": format!("https://www.twilio.com/docs/errors/{code}"),
        "status": status.as_u16(),
    });
    (status, answer(status, headers, body))
}
