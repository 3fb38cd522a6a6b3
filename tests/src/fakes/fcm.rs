//! Firebase Cloud Messaging HTTP v1 and Google's OAuth 2 token endpoint.
//!
//! `POST /token` (RFC 7523): `grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer` and an
//! `assertion` that must be an RS256 JWT signed by the service account's key (checked against
//! its public half), with `iss` the client email, `aud` this token URI, `scope`
//! firebase.messaging, `kid` the key id, and at most an hour between `iat` and `exp`;
//! answers `{"access_token", "expires_in", "token_type": "Bearer"}`, or 400 `{"error":
//! "invalid_grant", "error_description"}`.
//!
//! `POST /v1/projects/{project}/messages:send`: a Bearer access token this fake issued (401
//! `UNAUTHENTICATED` otherwise), the fake's project (403), `{"message": {"token",
//! "notification": {"title", "body"}, "data": {string: string}}}` (400 `INVALID_ARGUMENT`
//! otherwise); answers `{"name": "projects/…/messages/…"}`; errors are `{"error": {"code",
//! "message", "status", "details": [{"@type": "…FcmError", "errorCode"}]}}`: unregistered
//! tokens 404 `UNREGISTERED`, throttling 429 `QUOTA_EXCEEDED`, a server error 503
//! `UNAVAILABLE`, a refusal 400 `INVALID_ARGUMENT`.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, OnceLock};

use axum::body::Bytes;
use axum::extract::rejection::FormRejection;
use axum::extract::{Form, Path, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::Response;
use serde_json::json;

use super::server::{json as answer, retry_after_header, Failure, Received, Running, Shared};

pub const PROJECT_ID: &str = "acme-fake-app";
pub const CLIENT_EMAIL: &str = "mauntic-sender@acme-fake-app.iam.gserviceaccount.com";
pub const PRIVATE_KEY_ID: &str = "fake0key0id0fcm";

/// The service account's key pair as PKCS#8 PEM (private) and SPKI PEM (public), made once
/// per test run (an RSA key takes a moment to generate).
pub fn service_account_key() -> &'static (String, String) {
    static KEY: OnceLock<(String, String)> = OnceLock::new();
    KEY.get_or_init(|| {
        use rsa::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};
        let key = rsa::RsaPrivateKey::new(&mut rand::thread_rng(), 2048).unwrap();
        let private = key.to_pkcs8_pem(LineEnding::LF).unwrap().to_string();
        let public = key
            .to_public_key()
            .to_public_key_pem(LineEnding::LF)
            .unwrap();
        (private, public)
    })
}

struct Fcm {
    sends: Arc<Shared>,
    token_requests: Shared,
    token_uri: OnceLock<String>,
    issued: Mutex<HashSet<String>>,
    unregistered: Mutex<HashSet<String>>,
}

pub struct FakeFcm {
    server: Running,
    fcm: Arc<Fcm>,
}

impl FakeFcm {
    pub async fn start() -> FakeFcm {
        let shared = Arc::new(Shared::default());
        let fcm = Arc::new(Fcm {
            sends: shared.clone(),
            token_requests: Shared::default(),
            token_uri: OnceLock::new(),
            issued: Mutex::new(HashSet::new()),
            unregistered: Mutex::new(HashSet::new()),
        });
        let router = axum::Router::new()
            .route("/token", axum::routing::post(token))
            .route(
                "/v1/projects/{project}/messages:send",
                axum::routing::post(send),
            )
            .with_state(fcm.clone());
        let server = Running::start(shared, router).await;
        let _ = fcm.token_uri.set(format!("{}/token", server.base_url));
        FakeFcm { server, fcm }
    }

    /// The provider configuration (for `providers::build("fcm", …)`) pointing here: the
    /// service-account JSON as Google issues it, its `token_uri` this fake's.
    pub fn config(&self) -> serde_json::Value {
        json!({
            "service_account": {
                "type": "service_account",
                "project_id": PROJECT_ID,
                "private_key_id": PRIVATE_KEY_ID,
                "private_key": service_account_key().0,
                "client_email": CLIENT_EMAIL,
                "client_id": "100000000000000000001",
                "auth_uri": "https://accounts.google.com/o/oauth2/auth",
                "token_uri": self.fcm.token_uri.get().unwrap(),
            },
            "base_url": self.server.base_url,
            "timeout_secs": 5,
        })
    }

    /// The sends received.
    pub fn received(&self) -> Vec<Received> {
        self.server.shared.received()
    }

    /// The token requests received.
    pub fn token_requests(&self) -> Vec<Received> {
        self.fcm.token_requests.received()
    }

    /// Answers the next `n` (authorised) sends with `failure`.
    pub fn fail_next(&self, n: usize, failure: Failure) {
        self.server.shared.fail_next(n, failure);
    }

    /// Answers the next `n` token requests with `failure`.
    pub fn fail_next_token(&self, n: usize, failure: Failure) {
        self.fcm.token_requests.fail_next(n, failure);
    }

    /// From now on `token` is an app instance that no longer exists (404 `UNREGISTERED`).
    pub fn unregister(&self, token: &str) {
        self.fcm
            .unregistered
            .lock()
            .unwrap()
            .insert(token.to_owned());
    }

    /// Forgets every access token issued so far (as when Google revokes them).
    pub fn revoke_tokens(&self) {
        self.fcm.issued.lock().unwrap().clear();
    }
}

async fn token(
    State(fcm): State<Arc<Fcm>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    form: Result<Form<Vec<(String, String)>>, FormRejection>,
) -> Response {
    let form = form.map(|Form(f)| f).unwrap_or_default();
    let (status, response) = exchange(&fcm, &form).await;
    fcm.token_requests.record(Received {
        method: method.to_string(),
        uri: uri.to_string(),
        headers,
        body: Vec::new(),
        form,
        status: status.as_u16(),
    });
    response
}

async fn exchange(fcm: &Fcm, form: &[(String, String)]) -> (StatusCode, Response) {
    let field = |name: &str| {
        form.iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    };
    if field("grant_type") != Some("urn:ietf:params:oauth:grant-type:jwt-bearer") {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "Invalid grant_type",
        );
    }
    if let Err(why) = check_assertion(fcm, field("assertion").unwrap_or_default()) {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", &why);
    }
    match fcm.token_requests.take_failure() {
        Some(Failure::Throttle { retry_after }) => {
            let mut response = oauth_error(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limit_exceeded",
                "Rate limit exceeded",
            );
            for (name, value) in retry_after_header(retry_after) {
                response
                    .1
                    .headers_mut()
                    .insert(name, value.parse().unwrap());
            }
            return response;
        }
        Some(Failure::ServerError) => {
            return oauth_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal_failure",
                "Backend Error",
            )
        }
        Some(Failure::Rejected { message }) => {
            return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", &message)
        }
        Some(Failure::Hang(d)) => tokio::time::sleep(d).await,
        None => {}
    }
    let access_token = format!("ya29.fake-{:08}", fcm.token_requests.next_id());
    fcm.issued.lock().unwrap().insert(access_token.clone());
    let body = json!({"access_token": access_token, "expires_in": 3599, "token_type": "Bearer"});
    (StatusCode::OK, answer(StatusCode::OK, &[], body))
}

/// The assertion's signature against the service account's public key, and its claims.
fn check_assertion(fcm: &Fcm, assertion: &str) -> Result<(), String> {
    use jsonwebtoken::{Algorithm, DecodingKey, Validation};
    let key = DecodingKey::from_rsa_pem(service_account_key().1.as_bytes()).unwrap();
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_audience(&[fcm.token_uri.get().unwrap()]);
    validation.set_issuer(&[CLIENT_EMAIL]);
    validation.set_required_spec_claims(&["exp", "iat", "aud", "iss"]);
    let data = jsonwebtoken::decode::<serde_json::Value>(assertion, &key, &validation)
        .map_err(|e| format!("Invalid JWT: {e}"))?;
    if data.header.kid.as_deref() != Some(PRIVATE_KEY_ID) {
        return Err("Invalid JWT: unknown kid".into());
    }
    let claims = data.claims;
    if claims["scope"] != workers::delivery::providers::fcm::SCOPE {
        return Err(format!("Invalid OAuth scope: {}", claims["scope"]));
    }
    let lifetime = claims["exp"].as_i64().unwrap_or(0) - claims["iat"].as_i64().unwrap_or(0);
    if !(1..=3600).contains(&lifetime) {
        return Err("Invalid JWT: expiry more than an hour after issue".into());
    }
    Ok(())
}

fn oauth_error(status: StatusCode, error: &str, description: &str) -> (StatusCode, Response) {
    let body = json!({"error": error, "error_description": description});
    (status, answer(status, &[], body))
}

async fn send(
    State(fcm): State<Arc<Fcm>>,
    Path(project): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (status, response) = decide(&fcm, &project, &headers, &body).await;
    fcm.sends.record(Received {
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
    fcm: &Fcm,
    project: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> (StatusCode, Response) {
    let bearer = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    if !fcm.issued.lock().unwrap().contains(bearer) {
        return error(
            StatusCode::UNAUTHORIZED,
            "UNAUTHENTICATED",
            None,
            "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential.",
            &[],
        );
    }
    if project != PROJECT_ID {
        return error(
            StatusCode::FORBIDDEN,
            "PERMISSION_DENIED",
            None,
            &format!("Permission 'cloudmessaging.messages.create' denied on resource '//cloudresourcemanager.googleapis.com/projects/{project}'"),
            &[],
        );
    }
    match fcm.sends.take_failure() {
        Some(Failure::Throttle { retry_after }) => {
            return error(
                StatusCode::TOO_MANY_REQUESTS,
                "RESOURCE_EXHAUSTED",
                Some("QUOTA_EXCEEDED"),
                "Quota exceeded for quota metric 'Send requests'.",
                &retry_after_header(retry_after),
            )
        }
        Some(Failure::ServerError) => {
            return error(
                StatusCode::SERVICE_UNAVAILABLE,
                "UNAVAILABLE",
                Some("UNAVAILABLE"),
                "The service is currently unavailable.",
                &[],
            )
        }
        Some(Failure::Rejected { message }) => {
            return error(
                StatusCode::BAD_REQUEST,
                "INVALID_ARGUMENT",
                Some("INVALID_ARGUMENT"),
                &message,
                &[],
            )
        }
        Some(Failure::Hang(d)) => tokio::time::sleep(d).await,
        None => {}
    }
    let invalid = |what: &str| {
        error(
            StatusCode::BAD_REQUEST,
            "INVALID_ARGUMENT",
            Some("INVALID_ARGUMENT"),
            what,
            &[],
        )
    };
    let Ok(request) = serde_json::from_slice::<serde_json::Value>(body) else {
        return invalid("Invalid JSON payload received.");
    };
    let message = &request["message"];
    let Some(token) = message["token"].as_str().filter(|t| !t.is_empty()) else {
        return invalid("Recipient of the message is not set.");
    };
    for part in ["title", "body"] {
        let value = &message["notification"][part];
        if !(value.is_null() || value.is_string()) {
            return invalid(&format!("Invalid value at 'message.notification.{part}'"));
        }
    }
    if let Some(data) = message.get("data") {
        let all_strings = data
            .as_object()
            .is_some_and(|d| d.values().all(serde_json::Value::is_string));
        if !all_strings {
            return invalid("Invalid value at 'message.data' (TYPE_STRING)");
        }
    }
    if fcm.unregistered.lock().unwrap().contains(token) {
        return error(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            Some("UNREGISTERED"),
            "Requested entity was not found.",
            &[],
        );
    }
    let name = format!(
        "projects/{PROJECT_ID}/messages/0:{:016}%fakefcm",
        fcm.sends.next_id()
    );
    (
        StatusCode::OK,
        answer(StatusCode::OK, &[], json!({"name": name})),
    )
}

fn error(
    status: StatusCode,
    grpc_status: &str,
    fcm_code: Option<&str>,
    message: &str,
    headers: &[(&str, String)],
) -> (StatusCode, Response) {
    let mut error = json!({"code": status.as_u16(), "message": message, "status": grpc_status});
    if let Some(code) = fcm_code {
        error["details"] = json!([{
            "@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError",
            "errorCode": code,
        }]);
    }
    (status, answer(status, headers, json!({"error": error})))
}
