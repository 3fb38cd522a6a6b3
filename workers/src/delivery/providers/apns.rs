//! Apple Push Notification service, token-based: HTTP/2 `POST /3/device/{device token}` with
//! `authorization: bearer <ES256 JWT>` (header `kid` = the key id, claims `iss` = the team id
//! and `iat`; signed with the `.p8` key and reused for 50 minutes: Apple refuses tokens older
//! than an hour and too frequent new ones), `apns-topic` (the app's bundle id),
//! `apns-push-type: alert`, `apns-priority: 10`, `apns-id` = the job id, and the payload
//! `{"aps": {"alert": {"title", "body"}}, <data keys>}`. APNs answers 200 with `apns-id`; its
//! errors are `{"reason": "…"}`: 400 `BadDeviceToken`, 410 `Unregistered` (and 403 for our
//! token) permanent, 429 `TooManyRequests` and 5xx (503 `ServiceUnavailable`) transient.
//!
//! APNs speaks HTTP/2 only: over `https://` it is negotiated (ALPN); over `http://` (a local
//! fake) it is spoken from the first byte (h2c with prior knowledge).

use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::http;
use crate::delivery::message::{Channel, Message};
use crate::delivery::provider::{Provider, SendError, Sent};

/// How long a provider token is reused (Apple: between 20 and 60 minutes).
pub const TOKEN_REUSE: Duration = Duration::from_secs(50 * 60);

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ApnsConfig {
    /// The signing key's id (10 characters, from the developer account).
    pub key_id: String,
    pub team_id: String,
    /// The `.p8` key as downloaded (PKCS#8 PEM, P-256).
    pub private_key: String,
    /// The app's bundle id (`apns-topic`).
    pub topic: String,
    /// Apple's development environment (`api.sandbox.push.apple.com`).
    #[serde(default)]
    pub sandbox: bool,
    /// `https://api.push.apple.com` (or the sandbox) unless set (tests point it at a fake).
    #[serde(default)]
    pub base_url: Option<String>,
    #[serde(default = "default_timeout_secs")]
    pub timeout_secs: u64,
}

fn default_timeout_secs() -> u64 {
    30
}

pub struct Apns {
    config: ApnsConfig,
    key: jsonwebtoken::EncodingKey,
    base: reqwest::Url,
    client: reqwest::Client,
    /// The provider token and when it was signed.
    token: Mutex<Option<(String, Instant)>>,
}

#[derive(serde::Serialize)]
struct Claims<'a> {
    iss: &'a str,
    iat: i64,
}

impl Apns {
    pub fn new(config: ApnsConfig) -> Result<Self, super::BuildError> {
        let key = jsonwebtoken::EncodingKey::from_ec_pem(config.private_key.as_bytes())
            .map_err(|e| super::BuildError::Config(format!("apns private_key: {e}")))?;
        let default = if config.sandbox {
            "https://api.sandbox.push.apple.com"
        } else {
            "https://api.push.apple.com"
        };
        let base_url = config.base_url.as_deref().unwrap_or(default);
        let base = http::endpoint("apns", base_url, "/3/device/")?;
        let builder = http::builder(Duration::from_secs(config.timeout_secs));
        let client = if base.scheme() == "http" {
            builder.http2_prior_knowledge().build()?
        } else {
            builder.build()?
        };
        Ok(Self {
            config,
            key,
            base,
            client,
            token: Mutex::new(None),
        })
    }

    /// The provider token: the one signed less than [`TOKEN_REUSE`] ago, or a new one.
    fn provider_token(&self) -> Result<String, SendError> {
        let mut cached = self.token.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((token, _)) = cached.as_ref().filter(|(_, at)| at.elapsed() < TOKEN_REUSE) {
            return Ok(token.clone());
        }
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
        header.kid = Some(self.config.key_id.clone());
        let claims = Claims {
            iss: &self.config.team_id,
            iat: chrono::Utc::now().timestamp(),
        };
        let token = jsonwebtoken::encode(&header, &claims, &self.key)
            .map_err(|e| http::unbuildable("apns", e))?;
        *cached = Some((token.clone(), Instant::now()));
        Ok(token)
    }

    fn forget_token(&self) {
        *self.token.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }
}

#[async_trait::async_trait]
impl Provider for Apns {
    fn kind(&self) -> &'static str {
        "apns"
    }

    fn channel(&self) -> Channel {
        Channel::Push
    }

    /// APNs documents no deduplication by `apns-id` (it only echoes it).
    fn deduplicates(&self) -> bool {
        false
    }

    #[tracing::instrument(skip_all, fields(job_id = %message.job_id()), err)]
    async fn send(&self, message: &Message) -> Result<Sent, SendError> {
        let Message::Push(push) = message else {
            return Err(http::wrong_channel("apns", Channel::Push, message));
        };
        if push.token.is_empty() || !push.token.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(http::unbuildable(
                "apns",
                format!("device token {:?} is not hexadecimal", push.token),
            ));
        }
        let url = self
            .base
            .join(&push.token)
            .map_err(|e| http::unbuildable("apns", e))?;
        let mut payload = serde_json::Map::new();
        for (key, value) in push.data.iter().filter(|(k, _)| k.as_str() != "aps") {
            payload.insert(key.clone(), value.clone().into());
        }
        payload.insert(
            "aps".to_owned(),
            serde_json::json!({"alert": {"title": push.title, "body": push.body}}),
        );
        let apns_id = push.job_id.to_string();
        let request = self
            .client
            .post(url)
            .header(
                reqwest::header::AUTHORIZATION,
                format!("bearer {}", self.provider_token()?),
            )
            .header("apns-topic", &self.config.topic)
            .header("apns-push-type", "alert")
            .header("apns-priority", "10")
            .header("apns-id", &apns_id)
            .json(&payload);
        let response = request
            .send()
            .await
            .map_err(|e| http::transport("apns", &e))?;
        if response.status() == reqwest::StatusCode::FORBIDDEN {
            // Our token (expired, or not valid for this key): the next send signs a new one.
            self.forget_token();
        }
        // 410 Unregistered: the device token is no longer active for the topic.
        let gone = response.status() == reqwest::StatusCode::GONE;
        let response = http::checked("apns", response, error_message)
            .await
            .map_err(|e| http::unreachable_when(e, gone))?;
        let provider_message_id = response
            .headers()
            .get("apns-id")
            .and_then(|v| v.to_str().ok())
            .map_or(apns_id, str::to_owned);
        Ok(Sent {
            provider_message_id,
        })
    }
}

/// APNs errors are `{"reason": "…"}` (410 adds `timestamp`).
fn error_message(body: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(body).ok()?;
    v.get("reason")?.as_str().map(str::to_owned)
}
