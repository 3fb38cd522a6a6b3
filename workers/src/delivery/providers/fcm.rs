//! Firebase Cloud Messaging HTTP v1 `POST /v1/projects/{project_id}/messages:send` with
//! `{"message": {"token", "notification": {"title", "body"}, "data"}}`; FCM answers `{"name":
//! "projects/…/messages/…"}`. Authorised by an OAuth 2 access token obtained with the service
//! account's key (RFC 7523): an RS256 JWT (`iss` the client email, `scope` firebase.messaging,
//! `aud` the token URI, one hour) exchanged at `token_uri`. The token is kept until a minute
//! before it expires; one exchange at a time (the others wait for its token).
//!
//! Errors are `{"error": {"code", "message", "status", "details": [{"errorCode"}]}}` and their
//! HTTP status says what they are: `UNREGISTERED` (404), `INVALID_ARGUMENT` (400),
//! `SENDER_ID_MISMATCH` (403) permanent; `QUOTA_EXCEEDED` (429, `Retry-After`), `UNAVAILABLE`
//! (503), `INTERNAL` (500) transient. A 401 means our access token was refused: it is dropped
//! and the send is transient (the next attempt exchanges the key again, and a key that no
//! longer works fails that exchange permanently). An exchange that fails sent nothing.

use std::time::{Duration, Instant};

use super::http;
use crate::delivery::message::{Channel, Message};
use crate::delivery::provider::{Provider, SendError, Sent};

/// The OAuth scope of FCM's send API.
pub const SCOPE: &str = "https://www.googleapis.com/auth/firebase.messaging";
/// How long an assertion is valid (Google's maximum).
const ASSERTION_LIFETIME_SECS: i64 = 3600;
/// A token is replaced this long before it expires.
const REFRESH_MARGIN: Duration = Duration::from_secs(60);

/// The fields of a Google service-account key file (the JSON as downloaded; other fields are
/// ignored).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ServiceAccount {
    pub client_email: String,
    /// PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`).
    pub private_key: String,
    #[serde(default)]
    pub private_key_id: Option<String>,
    #[serde(default = "default_token_uri")]
    pub token_uri: String,
    #[serde(default)]
    pub project_id: Option<String>,
}

fn default_token_uri() -> String {
    "https://oauth2.googleapis.com/token".to_owned()
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct FcmConfig {
    pub service_account: ServiceAccount,
    /// The Firebase project; the service account's `project_id` unless set.
    #[serde(default)]
    pub project_id: Option<String>,
    /// `https://fcm.googleapis.com` unless set (tests point it at a fake).
    #[serde(default)]
    pub base_url: Option<String>,
    #[serde(default = "default_timeout_secs")]
    pub timeout_secs: u64,
}

fn default_timeout_secs() -> u64 {
    30
}

/// An access token and when to replace it.
struct AccessToken {
    value: String,
    refresh_at: Instant,
}

pub struct Fcm {
    account: ServiceAccount,
    key: jsonwebtoken::EncodingKey,
    url: reqwest::Url,
    client: reqwest::Client,
    token: tokio::sync::Mutex<Option<AccessToken>>,
}

#[derive(serde::Serialize)]
struct Claims<'a> {
    iss: &'a str,
    scope: &'a str,
    aud: &'a str,
    iat: i64,
    exp: i64,
}

#[derive(serde::Deserialize)]
struct TokenAnswer {
    access_token: String,
    expires_in: u64,
}

#[derive(serde::Deserialize)]
struct Accepted {
    name: String,
}

impl Fcm {
    pub fn new(config: FcmConfig) -> Result<Self, super::BuildError> {
        let project_id = config
            .project_id
            .clone()
            .or_else(|| config.service_account.project_id.clone())
            .ok_or_else(|| super::BuildError::Config("fcm: no project_id".to_owned()))?;
        let key =
            jsonwebtoken::EncodingKey::from_rsa_pem(config.service_account.private_key.as_bytes())
                .map_err(|e| {
                    super::BuildError::Config(format!("fcm service account private_key: {e}"))
                })?;
        let base = config
            .base_url
            .as_deref()
            .unwrap_or("https://fcm.googleapis.com");
        let url = http::endpoint(
            "fcm",
            base,
            &format!("/v1/projects/{project_id}/messages:send"),
        )?;
        reqwest::Url::parse(&config.service_account.token_uri).map_err(|e| {
            super::BuildError::Config(format!(
                "fcm token_uri {:?}: {e}",
                config.service_account.token_uri
            ))
        })?;
        let client = http::client(Duration::from_secs(config.timeout_secs))?;
        Ok(Self {
            account: config.service_account,
            key,
            url,
            client,
            token: tokio::sync::Mutex::new(None),
        })
    }

    /// The cached access token, or a new one when there is none or it is about to expire.
    async fn access_token(&self) -> Result<String, SendError> {
        let mut cached = self.token.lock().await;
        if let Some(token) = cached.as_ref().filter(|t| Instant::now() < t.refresh_at) {
            return Ok(token.value.clone());
        }
        let fresh = self.exchange().await.map_err(http::nothing_sent)?;
        let value = fresh.value.clone();
        *cached = Some(fresh);
        Ok(value)
    }

    /// Exchanges a freshly signed assertion for an access token.
    #[tracing::instrument(skip_all, fields(client_email = %self.account.client_email), err)]
    async fn exchange(&self) -> Result<AccessToken, SendError> {
        let iat = chrono::Utc::now().timestamp();
        let claims = Claims {
            iss: &self.account.client_email,
            scope: SCOPE,
            aud: &self.account.token_uri,
            iat,
            exp: iat + ASSERTION_LIFETIME_SECS,
        };
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
        header.kid.clone_from(&self.account.private_key_id);
        let assertion = jsonwebtoken::encode(&header, &claims, &self.key)
            .map_err(|e| http::unbuildable("fcm oauth", e))?;
        let form = [
            ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
            ("assertion", assertion.as_str()),
        ];
        let requested = Instant::now();
        let request = self.client.post(&self.account.token_uri).form(&form);
        let response = http::send("fcm oauth", request, oauth_error).await?;
        let answer: TokenAnswer = response.json().await.map_err(|e| SendError::Transient {
            reason: format!("fcm oauth answer unreadable: {e}"),
            retry_after: None,
        })?;
        let lifetime = Duration::from_secs(answer.expires_in);
        let margin = REFRESH_MARGIN.min(lifetime / 2);
        Ok(AccessToken {
            value: answer.access_token,
            refresh_at: requested + lifetime - margin,
        })
    }
}

#[async_trait::async_trait]
impl Provider for Fcm {
    fn kind(&self) -> &'static str {
        "fcm"
    }

    fn channel(&self) -> Channel {
        Channel::Push
    }

    /// FCM v1 `messages:send` takes no idempotency key.
    fn deduplicates(&self) -> bool {
        false
    }

    #[tracing::instrument(skip_all, fields(job_id = %message.job_id()), err)]
    async fn send(&self, message: &Message) -> Result<Sent, SendError> {
        let Message::Push(push) = message else {
            return Err(http::wrong_channel("fcm", Channel::Push, message));
        };
        let token = self.access_token().await?;
        let mut body = serde_json::json!({"message": {
            "token": push.token,
            "notification": {"title": push.title, "body": push.body},
        }});
        if !push.data.is_empty() {
            body["message"]["data"] = serde_json::json!(push.data);
        }
        let request = self
            .client
            .post(self.url.clone())
            .bearer_auth(token)
            .json(&body);
        let response = request
            .send()
            .await
            .map_err(|e| http::transport("fcm", &e))?;
        if response.status() == reqwest::StatusCode::UNAUTHORIZED {
            *self.token.lock().await = None;
            let refused = http::checked("fcm", response, error_message).await;
            return Err(match refused {
                Err(SendError::Permanent { reason }) => SendError::Transient {
                    reason,
                    retry_after: None,
                },
                Err(other) => other,
                Ok(_) => SendError::Transient {
                    reason: "fcm refused the access token".to_owned(),
                    retry_after: None,
                },
            });
        }
        // 404 UNREGISTERED: the app was uninstalled or the token expired.
        let not_found = response.status() == reqwest::StatusCode::NOT_FOUND;
        let response = http::checked("fcm", response, error_message)
            .await
            .map_err(|e| {
                let gone = not_found && e.to_string().contains("UNREGISTERED");
                http::unreachable_when(e, gone)
            })?;
        // Taken (2xx): an unreadable answer must not make the worker send it again.
        let provider_message_id = match response.json::<Accepted>().await {
            Ok(accepted) => accepted.name,
            Err(e) => {
                tracing::warn!(error = %e, "fcm took the message but its answer has no name");
                push.job_id.to_string()
            }
        };
        Ok(Sent {
            provider_message_id,
        })
    }
}

/// FCM errors: `{"error": {"message", "status", "details": [{"errorCode"}]}}` →
/// `UNREGISTERED: Requested entity was not found.`
fn error_message(body: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(body).ok()?;
    let error = v.get("error")?;
    let message = error.get("message").and_then(|m| m.as_str()).unwrap_or("");
    let code = error
        .get("details")
        .and_then(|d| d.as_array())
        .and_then(|d| d.iter().find_map(|x| x.get("errorCode")?.as_str()))
        .or_else(|| error.get("status").and_then(|s| s.as_str()));
    Some(match code {
        Some(code) => format!("{code}: {message}"),
        None => message.to_owned(),
    })
}

/// OAuth errors: `{"error": "invalid_grant", "error_description": "…"}`.
fn oauth_error(body: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(body).ok()?;
    let error = v.get("error")?.as_str()?;
    Some(match v.get("error_description").and_then(|d| d.as_str()) {
        Some(description) => format!("{error}: {description}"),
        None => error.to_owned(),
    })
}
