//! Plivo `POST /v1/Account/{auth_id}/Message/` (basic auth `auth_id:auth_token`, JSON `src`,
//! `dst`, `text`). Plivo answers 202 `{"message": "message(s) queued", "message_uuid":
//! ["…"], "api_id": "…"}` (one uuid per part of a long message; the first names it); its
//! errors are `{"api_id": "…", "error": "…"}`.

use std::time::Duration;

use super::http;
use crate::delivery::message::{Channel, Message};
use crate::delivery::provider::{Provider, SendError, Sent};

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct PlivoConfig {
    pub auth_id: String,
    pub auth_token: String,
    /// `https://api.plivo.com` unless set (tests point it at a fake).
    #[serde(default)]
    pub base_url: Option<String>,
    #[serde(default = "default_timeout_secs")]
    pub timeout_secs: u64,
}

fn default_timeout_secs() -> u64 {
    30
}

/// The Message resource of `auth_id`.
pub fn path(auth_id: &str) -> String {
    format!("/v1/Account/{auth_id}/Message/")
}

pub struct Plivo {
    config: PlivoConfig,
    url: reqwest::Url,
    client: reqwest::Client,
}

impl Plivo {
    pub fn new(config: PlivoConfig) -> Result<Self, super::BuildError> {
        let base = config
            .base_url
            .as_deref()
            .unwrap_or("https://api.plivo.com");
        let url = http::endpoint("plivo", base, &path(&config.auth_id))?;
        let client = http::client(Duration::from_secs(config.timeout_secs))?;
        Ok(Self {
            config,
            url,
            client,
        })
    }
}

#[derive(serde::Deserialize)]
struct Accepted {
    message_uuid: Vec<String>,
}

#[async_trait::async_trait]
impl Provider for Plivo {
    fn kind(&self) -> &'static str {
        "plivo"
    }

    fn channel(&self) -> Channel {
        Channel::Sms
    }

    /// Plivo's Message API takes no idempotency key.
    fn deduplicates(&self) -> bool {
        false
    }

    #[tracing::instrument(skip_all, fields(job_id = %message.job_id()), err)]
    async fn send(&self, message: &Message) -> Result<Sent, SendError> {
        let Message::Sms(sms) = message else {
            return Err(http::wrong_channel("plivo", Channel::Sms, message));
        };
        let body = serde_json::json!({"src": sms.from, "dst": sms.to, "text": sms.body});
        let request = self
            .client
            .post(self.url.clone())
            .basic_auth(&self.config.auth_id, Some(&self.config.auth_token))
            .json(&body);
        let response = http::send("plivo", request, error_message).await?;
        // Taken (2xx): an unreadable answer must not make the worker send it again.
        let first = match response.json::<Accepted>().await {
            Ok(accepted) => accepted.message_uuid.into_iter().next(),
            Err(e) => {
                tracing::warn!(error = %e, "plivo took the message but its answer is unreadable");
                None
            }
        };
        Ok(Sent {
            provider_message_id: first.unwrap_or_else(|| sms.job_id.to_string()),
        })
    }
}

/// Plivo errors are `{"api_id": "…", "error": "…"}` (`error` is sometimes an object of
/// field → complaint).
fn error_message(body: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(body).ok()?;
    match v.get("error")? {
        serde_json::Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}
