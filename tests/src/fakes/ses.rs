//! Amazon SES API v2 `SendEmail` (`POST /v2/email/outbound-emails`), REST-JSON: every request
//! must carry a valid SigV4 signature (recomputed here from the request as received, for the
//! fake's own key, region and service `ses`, and a date within AWS's 15 minutes); errors are
//! `{"message"}` with their type in `x-amzn-ErrorType`; success is `{"MessageId"}`.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::Response;
use base64::Engine as _;
use serde_json::json;
use workers::delivery::providers::sigv4;

use super::server::{json as answer, retry_after_header, Failure, Received, Running, Shared};

pub const ACCESS_KEY_ID: &str = "AKIDFAKESES";
pub const SECRET_ACCESS_KEY: &str = "fake/ses/secret+key";
pub const REGION: &str = "eu-west-1";

pub struct FakeSes {
    server: Running,
}

impl FakeSes {
    pub async fn start() -> FakeSes {
        let shared = Arc::new(Shared::default());
        let router = axum::Router::new()
            .route(
                workers::delivery::providers::ses::PATH,
                axum::routing::post(send_email),
            )
            .with_state(shared.clone());
        FakeSes {
            server: Running::start(shared, router).await,
        }
    }

    pub fn base_url(&self) -> &str {
        &self.server.base_url
    }

    /// The provider configuration (for `providers::build("ses", …)`) pointing here.
    pub fn config(&self) -> serde_json::Value {
        json!({
            "region": REGION,
            "access_key_id": ACCESS_KEY_ID,
            "secret_access_key": SECRET_ACCESS_KEY,
            "base_url": self.server.base_url,
            "timeout_secs": 5,
        })
    }

    /// Every request, answered or not, oldest first.
    pub fn received(&self) -> Vec<Received> {
        self.server.shared.received()
    }

    /// The raw MIME messages of the requests it accepted.
    pub fn messages(&self) -> Vec<Vec<u8>> {
        self.received()
            .iter()
            .filter(|r| r.status == 200)
            .filter_map(|r| raw_data(&r.json()))
            .collect()
    }

    /// Answers the next `n` (authenticated) requests with `failure`.
    pub fn fail_next(&self, n: usize, failure: Failure) {
        self.server.shared.fail_next(n, failure);
    }
}

async fn send_email(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (status, response) = decide(&shared, &method, &uri, &headers, &body).await;
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
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> (StatusCode, Response) {
    if let Err((kind, message)) = verify_signature(method, uri, headers, body) {
        return error(StatusCode::FORBIDDEN, kind, &message, &[]);
    }
    match shared.take_failure() {
        Some(Failure::Throttle { retry_after }) => {
            return error(
                StatusCode::TOO_MANY_REQUESTS,
                "TooManyRequestsException",
                "Maximum sending rate exceeded.",
                &retry_after_header(retry_after),
            )
        }
        Some(Failure::ServerError) => {
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalFailure",
                "The request processing has failed because of an unknown error.",
                &[],
            )
        }
        Some(Failure::Rejected { message }) => {
            return error(StatusCode::BAD_REQUEST, "MessageRejected", &message, &[])
        }
        Some(Failure::Hang(d)) => tokio::time::sleep(d).await,
        None => {}
    }
    let Ok(request) = serde_json::from_slice::<serde_json::Value>(body) else {
        return error(
            StatusCode::BAD_REQUEST,
            "BadRequestException",
            "The body is not JSON.",
            &[],
        );
    };
    if raw_data(&request).is_none() {
        return error(
            StatusCode::BAD_REQUEST,
            "BadRequestException",
            "Content.Raw.Data must be base64 MIME.",
            &[],
        );
    }
    let id = format!("0102018c-fake-ses-{:08}", shared.next_id());
    (
        StatusCode::OK,
        answer(StatusCode::OK, &[], json!({ "MessageId": id })),
    )
}

fn error(
    status: StatusCode,
    kind: &str,
    message: &str,
    headers: &[(&str, String)],
) -> (StatusCode, Response) {
    let mut headers = headers.to_vec();
    headers.push(("x-amzn-errortype", kind.to_owned()));
    (
        status,
        answer(status, &headers, json!({ "message": message })),
    )
}

fn raw_data(request: &serde_json::Value) -> Option<Vec<u8>> {
    let data = request.pointer("/Content/Raw/Data")?.as_str()?;
    base64::engine::general_purpose::STANDARD.decode(data).ok()
}

/// Recomputes the SigV4 signature of the request as received; the AWS error on mismatch.
fn verify_signature(
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(), (&'static str, String)> {
    let incomplete = |what: &str| ("IncompleteSignatureException", what.to_owned());
    let authorization = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| {
            (
                "MissingAuthenticationTokenException",
                "Missing Authentication Token".into(),
            )
        })?;
    let rest = authorization
        .strip_prefix("AWS4-HMAC-SHA256 ")
        .ok_or_else(|| incomplete("Unsupported algorithm"))?;
    let mut credential = None;
    let mut signed_headers = None;
    let mut signature = None;
    for part in rest.split(',') {
        match part.trim().split_once('=') {
            Some(("Credential", v)) => credential = Some(v),
            Some(("SignedHeaders", v)) => signed_headers = Some(v),
            Some(("Signature", v)) => signature = Some(v),
            _ => {}
        }
    }
    let (Some(credential), Some(signed_headers), Some(signature)) =
        (credential, signed_headers, signature)
    else {
        return Err(incomplete(
            "Authorization header requires Credential, SignedHeaders, Signature",
        ));
    };
    let parts: Vec<&str> = credential.split('/').collect();
    let [key, date, region, service, "aws4_request"] = parts[..] else {
        return Err(incomplete("Malformed Credential"));
    };
    if key != ACCESS_KEY_ID {
        return Err((
            "UnrecognizedClientException",
            "The security token included in the request is invalid.".into(),
        ));
    }
    if region != REGION || service != "ses" {
        return Err(("SignatureDoesNotMatch", format!("Credential should be scoped to a valid region ({REGION}) and service (ses), not {region}/{service}")));
    }
    let amz_date = headers
        .get("x-amz-date")
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| incomplete("X-Amz-Date is required"))?;
    let at = chrono::NaiveDateTime::parse_from_str(amz_date, "%Y%m%dT%H%M%SZ")
        .map_err(|_| incomplete("X-Amz-Date is malformed"))?
        .and_utc();
    if !amz_date.starts_with(date) || (chrono::Utc::now() - at).num_minutes().abs() > 15 {
        return Err((
            "InvalidSignatureException",
            "Signature expired or dated wrongly".into(),
        ));
    }
    let signed: Vec<&str> = signed_headers.split(';').collect();
    if !signed.contains(&"host") || !signed.contains(&"x-amz-date") {
        return Err(incomplete("host and x-amz-date must be signed"));
    }
    let mut signed_values = Vec::new();
    for name in &signed {
        let value = headers
            .get(*name)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| incomplete("a signed header is missing"))?;
        signed_values.push(((*name).to_owned(), value.to_owned()));
    }
    let request = sigv4::Request {
        method: method.as_str(),
        path: uri.path(),
        query: uri.query().unwrap_or(""),
        headers: signed_values,
        payload: body,
    };
    let scope = sigv4::Scope {
        date,
        region,
        service,
    };
    let expected = sigv4::signature(SECRET_ACCESS_KEY, amz_date, &scope, &request);
    if expected != signature {
        return Err((
            "SignatureDoesNotMatch",
            "The request signature we calculated does not match the signature you provided.".into(),
        ));
    }
    Ok(())
}
