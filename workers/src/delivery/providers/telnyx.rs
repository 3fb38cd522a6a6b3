//! Telnyx Messaging `POST /v2/messages` (`Authorization: Bearer <API key>`, JSON `from`, `to`,
//! `text`, and `messaging_profile_id` when configured). Telnyx answers `{"data": {"id": "…",
//! …}}`; its errors are `{"errors": [{"code": "…", "title": "…", "detail": "…"}]}`.

use std::time::Duration;

use super::http;
use crate::delivery::message::{Channel, Message};
use crate::delivery::provider::{Provider, SendError, Sent};

pub const PATH: &str = "/v2/messages";

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct TelnyxConfig {
    pub api_key: String,
    /// Needed to send from an alphanumeric sender id or a number pool.
    #[serde(default)]
    pub messaging_profile_id: Option<String>,
    /// `https://api.telnyx.com` unless set (tests point it at a fake).
    #[serde(default)]
    pub base_url: Option<String>,
    #[serde(default = "default_timeout_secs")]
    pub timeout_secs: u64,
}

fn default_timeout_secs() -> u64 {
    30
}

pub struct Telnyx {
    config: TelnyxConfig,
    url: reqwest::Url,
    client: reqwest::Client,
}

impl Telnyx {
    pub fn new(config: TelnyxConfig) -> Result<Self, super::BuildError> {
        let base = config
            .base_url
            .as_deref()
            .unwrap_or("https://api.telnyx.com");
        let url = http::endpoint("telnyx", base, PATH)?;
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
    data: AcceptedData,
}

#[derive(serde::Deserialize)]
struct AcceptedData {
    id: String,
}

#[async_trait::async_trait]
impl Provider for Telnyx {
    fn kind(&self) -> &'static str {
        "telnyx"
    }

    fn channel(&self) -> Channel {
        Channel::Sms
    }

    /// Telnyx's messages API takes no idempotency key.
    fn deduplicates(&self) -> bool {
        false
    }

    #[tracing::instrument(skip_all, fields(job_id = %message.job_id()), err)]
    async fn send(&self, message: &Message) -> Result<Sent, SendError> {
        let Message::Sms(sms) = message else {
            return Err(http::wrong_channel("telnyx", Channel::Sms, message));
        };
        let mut body = serde_json::json!({"from": sms.from, "to": sms.to, "text": sms.body});
        if let Some(profile) = &self.config.messaging_profile_id {
            body["messaging_profile_id"] = profile.clone().into();
        }
        let request = self
            .client
            .post(self.url.clone())
            .bearer_auth(&self.config.api_key)
            .json(&body);
        let response = http::send("telnyx", request, error_message).await?;
        // Taken (2xx): an unreadable answer must not make the worker send it again.
        let provider_message_id = match response.json::<Accepted>().await {
            Ok(accepted) => accepted.data.id,
            Err(e) => {
                tracing::warn!(error = %e, "telnyx took the message but its answer has no data.id");
                sms.job_id.to_string()
            }
        };
        Ok(Sent {
            provider_message_id,
        })
    }
}

/// Telnyx errors are `{"errors": [{"code": "…", "title": "…", "detail": "…"}]}`.
fn error_message(body: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(body).ok()?;
    let messages: Vec<String> = v
        .get("errors")?
        .as_array()?
        .iter()
        .filter_map(|e| {
            let text = e
                .get("detail")
                .or_else(|| e.get("title"))
                .and_then(|d| d.as_str())?;
            Some(match e.get("code").and_then(|c| c.as_str()) {
                Some(code) => format!("{text} (code {code})"),
                None => text.to_owned(),
            })
        })
        .collect();
    (!messages.is_empty()).then(|| messages.join("; "))
}
