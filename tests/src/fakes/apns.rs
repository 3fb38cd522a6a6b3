//! Apple Push Notification service, token-based, over HTTP/2 only (h2c with prior knowledge
//! here; a request in HTTP/1.x is refused with 505): `POST /3/device/{device token}` with
//! `authorization: bearer <JWT>` (ES256 over the `.p8` key, checked against its public half,
//! `kid` the key id, `iss` the team id, `iat` less than an hour old; 403
//! `MissingProviderToken` / `InvalidProviderToken` / `ExpiredProviderToken` otherwise),
//! `apns-topic` the app's bundle id (400 `MissingTopic` / `TopicDisallowed`), `apns-push-type`
//! (400 `InvalidPushType`), an optional `apns-id` in canonical lowercase UUID form (400
//! `BadMessageId`), a 64-hex-digit token (400 `BadDeviceToken`), and a JSON payload with `aps`
//! of at most 4 KB (400 `PayloadEmpty`, 413 `PayloadTooLarge`). Success is 200 with `apns-id`
//! (the one sent, or a new one); errors are `{"reason"}` (410 adds `timestamp`): throttling 429
//! `TooManyRequests`, a server error 503 `ServiceUnavailable`, a refusal 400 with the reason.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, Version};
use axum::response::Response;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use serde_json::json;

use super::server::{json as answer, retry_after_header, Failure, Received, Running, Shared};

pub const KEY_ID: &str = "FAKEKEY123";
pub const TEAM_ID: &str = "FAKETEAM45";
pub const TOPIC: &str = "com.acme.fake-app";

struct Apns {
    shared: Arc<Shared>,
    /// The `.p8` key (PKCS#8 PEM) and its public point.
    private_pem: String,
    public: Vec<u8>,
    unregistered: Mutex<HashSet<String>>,
    tokens_seen: Mutex<Vec<String>>,
}

pub struct FakeApns {
    server: Running,
    apns: Arc<Apns>,
}

impl FakeApns {
    pub async fn start() -> FakeApns {
        let rng = ring::rand::SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
            .unwrap();
        let private_pem = format!(
            "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
            STANDARD.encode(pkcs8.as_ref())
        );
        let shared = Arc::new(Shared::default());
        let apns = Arc::new(Apns {
            shared: shared.clone(),
            private_pem,
            public: pair.public_key().as_ref().to_vec(),
            unregistered: Mutex::new(HashSet::new()),
            tokens_seen: Mutex::new(Vec::new()),
        });
        let router = axum::Router::new()
            .route("/3/device/{token}", axum::routing::post(push))
            .with_state(apns.clone());
        FakeApns {
            server: Running::start(shared, router).await,
            apns,
        }
    }

    /// The provider configuration (for `providers::build("apns", …)`) pointing here.
    pub fn config(&self) -> serde_json::Value {
        json!({
            "key_id": KEY_ID,
            "team_id": TEAM_ID,
            "private_key": self.apns.private_pem,
            "topic": TOPIC,
            "base_url": self.server.base_url,
            "timeout_secs": 5,
        })
    }

    pub fn received(&self) -> Vec<Received> {
        self.server.shared.received()
    }

    /// Every provider token that passed the checks, in order of the requests.
    pub fn provider_tokens(&self) -> Vec<String> {
        self.apns.tokens_seen.lock().unwrap().clone()
    }

    /// Answers the next `n` (authorised) requests with `failure`.
    pub fn fail_next(&self, n: usize, failure: Failure) {
        self.server.shared.fail_next(n, failure);
    }

    /// From now on `device` is no longer registered for the topic (410 `Unregistered`).
    pub fn unregister(&self, device: &str) {
        self.apns
            .unregistered
            .lock()
            .unwrap()
            .insert(device.to_owned());
    }
}

async fn push(
    State(apns): State<Arc<Apns>>,
    Path(device): Path<String>,
    method: Method,
    uri: Uri,
    version: Version,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (status, response) = decide(&apns, version, &device, &headers, &body).await;
    apns.shared.record(Received {
        method: method.to_string(),
        // HTTP/2 requests carry the absolute URI (`:scheme`, `:authority`, `:path`).
        uri: uri
            .path_and_query()
            .map_or_else(String::new, ToString::to_string),
        headers,
        body: body.to_vec(),
        form: Vec::new(),
        status: status.as_u16(),
    });
    response
}

async fn decide(
    apns: &Apns,
    version: Version,
    device: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> (StatusCode, Response) {
    if version != Version::HTTP_2 {
        return reason(StatusCode::HTTP_VERSION_NOT_SUPPORTED, "HTTP/2 only", &[]);
    }
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let Some(jwt) = header("authorization").and_then(|v| v.strip_prefix("bearer ")) else {
        return reason(StatusCode::FORBIDDEN, "MissingProviderToken", &[]);
    };
    if let Err(why) = check_provider_token(apns, jwt) {
        return reason(StatusCode::FORBIDDEN, why, &[]);
    }
    apns.tokens_seen.lock().unwrap().push(jwt.to_owned());
    match header("apns-topic") {
        None => return reason(StatusCode::BAD_REQUEST, "MissingTopic", &[]),
        Some(topic) if topic != TOPIC => {
            return reason(StatusCode::BAD_REQUEST, "TopicDisallowed", &[])
        }
        Some(_) => {}
    }
    let push_types = [
        "alert",
        "background",
        "voip",
        "complication",
        "fileprovider",
        "mdm",
    ];
    if !header("apns-push-type").is_some_and(|t| push_types.contains(&t)) {
        return reason(StatusCode::BAD_REQUEST, "InvalidPushType", &[]);
    }
    let apns_id = match header("apns-id") {
        Some(id) => match uuid::Uuid::parse_str(id) {
            Ok(uuid) if uuid.hyphenated().to_string() == id => id.to_owned(),
            _ => return reason(StatusCode::BAD_REQUEST, "BadMessageId", &[]),
        },
        None => uuid::Uuid::new_v4().to_string(),
    };
    match apns.shared.take_failure() {
        Some(Failure::Throttle { retry_after }) => {
            return reason(
                StatusCode::TOO_MANY_REQUESTS,
                "TooManyRequests",
                &retry_after_header(retry_after),
            )
        }
        Some(Failure::ServerError) => {
            return reason(StatusCode::SERVICE_UNAVAILABLE, "ServiceUnavailable", &[])
        }
        Some(Failure::Rejected { message }) => {
            return reason(StatusCode::BAD_REQUEST, &message, &[])
        }
        Some(Failure::Hang(d)) => tokio::time::sleep(d).await,
        None => {}
    }
    if device.len() != 64 || !device.chars().all(|c| c.is_ascii_hexdigit()) {
        return reason(StatusCode::BAD_REQUEST, "BadDeviceToken", &[]);
    }
    if body.is_empty() {
        return reason(StatusCode::BAD_REQUEST, "PayloadEmpty", &[]);
    }
    if body.len() > 4096 {
        return reason(StatusCode::PAYLOAD_TOO_LARGE, "PayloadTooLarge", &[]);
    }
    let payload_ok = serde_json::from_slice::<serde_json::Value>(body)
        .is_ok_and(|p| p.get("aps").is_some_and(serde_json::Value::is_object));
    if !payload_ok {
        return reason(StatusCode::BAD_REQUEST, "BadPayload", &[]);
    }
    if apns.unregistered.lock().unwrap().contains(device) {
        let body =
            json!({"reason": "Unregistered", "timestamp": chrono::Utc::now().timestamp_millis()});
        return (StatusCode::GONE, answer(StatusCode::GONE, &[], body));
    }
    let mut response = Response::new(axum::body::Body::empty());
    response
        .headers_mut()
        .insert("apns-id", apns_id.parse().unwrap());
    (StatusCode::OK, response)
}

/// The provider token's signature, `kid`, `iss` and age.
fn check_provider_token(apns: &Apns, jwt: &str) -> Result<(), &'static str> {
    use jsonwebtoken::{Algorithm, DecodingKey, Validation};
    // The uncompressed point: 0x04 || x || y.
    let (x, y) = (&apns.public[1..33], &apns.public[33..65]);
    let key =
        DecodingKey::from_ec_components(&URL_SAFE_NO_PAD.encode(x), &URL_SAFE_NO_PAD.encode(y))
            .unwrap();
    let mut validation = Validation::new(Algorithm::ES256);
    validation.validate_exp = false;
    validation.set_required_spec_claims(&["iss"]);
    validation.set_issuer(&[TEAM_ID]);
    let data = jsonwebtoken::decode::<serde_json::Value>(jwt, &key, &validation)
        .map_err(|_| "InvalidProviderToken")?;
    if data.header.kid.as_deref() != Some(KEY_ID) {
        return Err("InvalidProviderToken");
    }
    let age = chrono::Utc::now().timestamp() - data.claims["iat"].as_i64().unwrap_or(0);
    if !(-60..3600).contains(&age) {
        return Err("ExpiredProviderToken");
    }
    Ok(())
}

fn reason(status: StatusCode, reason: &str, headers: &[(&str, String)]) -> (StatusCode, Response) {
    (status, answer(status, headers, json!({"reason": reason})))
}
