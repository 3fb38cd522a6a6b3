//! SendGrid v3 `POST /v3/mail/send` (Bearer API key): personalizations, from, reply_to,
//! subject, content (text/plain first, then text/html), our headers in `headers`, the job id
//! in `custom_args` (echoed in its event webhook). SendGrid answers 202 with `X-Message-Id`.
//! The envelope sender is SendGrid's own (its bounce handling), not the job's return path.

use std::time::Duration;

use super::{http, mime};
use crate::delivery::message::{Channel, Mailbox, Message};
use crate::delivery::provider::{Provider, SendError, Sent};

pub const PATH: &str = "/v3/mail/send";

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct SendGridConfig {
    pub api_key: String,
    /// `https://api.sendgrid.com` unless set (the EU subuser host, or a fake in tests).
    #[serde(default)]
    pub base_url: Option<String>,
    #[serde(default = "default_timeout_secs")]
    pub timeout_secs: u64,
}

fn default_timeout_secs() -> u64 {
    30
}

pub struct SendGrid {
    config: SendGridConfig,
    url: reqwest::Url,
    client: reqwest::Client,
}

impl SendGrid {
    pub fn new(config: SendGridConfig) -> Result<Self, super::BuildError> {
        let base = config
            .base_url
            .clone()
            .unwrap_or_else(|| "https://api.sendgrid.com".to_owned());
        let url = reqwest::Url::parse(&base)
            .and_then(|b| b.join(PATH))
            .map_err(|e| super::BuildError::Config(format!("sendgrid base_url {base:?}: {e}")))?;
        let client = http::client(Duration::from_secs(config.timeout_secs))?;
        Ok(Self {
            config,
            url,
            client,
        })
    }
}

fn address(m: &Mailbox) -> serde_json::Value {
    match &m.name {
        Some(name) => serde_json::json!({"email": m.address, "name": name}),
        None => serde_json::json!({"email": m.address}),
    }
}

#[async_trait::async_trait]
impl Provider for SendGrid {
    fn kind(&self) -> &'static str {
        "sendgrid"
    }

    fn channel(&self) -> Channel {
        Channel::Email
    }

    /// SendGrid's mail send takes no idempotency key.
    fn deduplicates(&self) -> bool {
        false
    }

    #[tracing::instrument(skip_all, fields(job_id = %message.job_id()), err)]
    async fn send(&self, message: &Message) -> Result<Sent, SendError> {
        let Message::Email(email) = message else {
            return Err(http::wrong_channel("sendgrid", Channel::Email, message));
        };
        mime::validate(email).map_err(|e| http::unbuildable("sendgrid", e))?;
        let headers: serde_json::Map<String, serde_json::Value> = mime::extra_headers(email)
            .into_iter()
            .map(|(n, v)| (n.to_owned(), v.into()))
            .collect();
        let mut body = serde_json::json!({
            "personalizations": [{"to": [address(&email.to)]}],
            "from": address(&email.from),
            "subject": email.subject,
            "content": [
                {"type": "text/plain", "value": email.text},
                {"type": "text/html", "value": email.html},
            ],
            "headers": headers,
            "custom_args": {"job_id": email.job_id.to_string()},
        });
        if let Some(reply_to) = &email.reply_to {
            body["reply_to"] = address(reply_to);
        }
        let request = self
            .client
            .post(self.url.clone())
            .bearer_auth(&self.config.api_key)
            .json(&body);
        let response = http::send("sendgrid", request, error_message).await?;
        let provider_message_id = response
            .headers()
            .get("x-message-id")
            .and_then(|v| v.to_str().ok())
            .map_or_else(|| email.message_id.clone(), str::to_owned);
        Ok(Sent {
            provider_message_id,
        })
    }
}

/// SendGrid errors are `{"errors": [{"message": "…", "field": "…"}]}`.
fn error_message(body: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(body).ok()?;
    let messages: Vec<String> = v
        .get("errors")?
        .as_array()?
        .iter()
        .filter_map(|e| {
            let message = e.get("message")?.as_str()?;
            Some(match e.get("field").and_then(|f| f.as_str()) {
                Some(field) => format!("{message} ({field})"),
                None => message.to_owned(),
            })
        })
        .collect();
    (!messages.is_empty()).then(|| messages.join("; "))
}
