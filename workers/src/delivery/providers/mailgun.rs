//! Mailgun `POST /v3/{domain}/messages` (multipart form, basic auth `api:<key>`): from, to,
//! subject, text, html, our headers as `h:<Name>` (Mailgun keeps a given `Message-Id`), the
//! job id as the user variable `v:job_id`. Mailgun answers `{"id": "<…>", "message": …}`;
//! the id is kept without its angle brackets, as its events name it.

use std::time::Duration;

use reqwest::multipart::Form;

use super::{http, mime};
use crate::delivery::message::{Channel, Message};
use crate::delivery::provider::{Provider, SendError, Sent};

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct MailgunConfig {
    /// The sending domain (`mg.acme.com`).
    pub domain: String,
    pub api_key: String,
    /// `https://api.mailgun.net` unless set (`https://api.eu.mailgun.net`, or a fake).
    #[serde(default)]
    pub base_url: Option<String>,
    #[serde(default = "default_timeout_secs")]
    pub timeout_secs: u64,
}

fn default_timeout_secs() -> u64 {
    30
}

pub struct Mailgun {
    config: MailgunConfig,
    url: reqwest::Url,
    client: reqwest::Client,
}

impl Mailgun {
    pub fn new(config: MailgunConfig) -> Result<Self, super::BuildError> {
        let base = config
            .base_url
            .clone()
            .unwrap_or_else(|| "https://api.mailgun.net".to_owned());
        let path = format!("/v3/{}/messages", config.domain);
        let url = reqwest::Url::parse(&base)
            .and_then(|b| b.join(&path))
            .map_err(|e| super::BuildError::Config(format!("mailgun base_url {base:?}: {e}")))?;
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
    id: String,
}

#[async_trait::async_trait]
impl Provider for Mailgun {
    fn kind(&self) -> &'static str {
        "mailgun"
    }

    fn channel(&self) -> Channel {
        Channel::Email
    }

    /// Mailgun's messages API takes no idempotency key.
    fn deduplicates(&self) -> bool {
        false
    }

    #[tracing::instrument(skip_all, fields(job_id = %message.job_id()), err)]
    async fn send(&self, message: &Message) -> Result<Sent, SendError> {
        let Message::Email(email) = message else {
            return Err(http::wrong_channel("mailgun", Channel::Email, message));
        };
        mime::validate(email).map_err(|e| http::unbuildable("mailgun", e))?;
        let mut form = Form::new()
            .text("from", mime::display(&email.from))
            .text("to", mime::display(&email.to))
            .text("subject", email.subject.clone())
            .text("text", email.text.clone())
            .text("html", email.html.clone())
            .text("v:job_id", email.job_id.to_string());
        if let Some(reply_to) = &email.reply_to {
            form = form.text("h:Reply-To", mime::display(reply_to));
        }
        for (name, value) in mime::extra_headers(email) {
            form = form.text(format!("h:{name}"), value);
        }
        let request = self
            .client
            .post(self.url.clone())
            .basic_auth("api", Some(&self.config.api_key))
            .multipart(form);
        let response = http::send("mailgun", request, error_message).await?;
        let provider_message_id = match response.json::<Accepted>().await {
            Ok(accepted) => accepted
                .id
                .trim()
                .trim_start_matches('<')
                .trim_end_matches('>')
                .to_owned(),
            Err(e) => {
                tracing::warn!(error = %e, "mailgun took the message but its answer has no id");
                email.message_id.clone()
            }
        };
        Ok(Sent {
            provider_message_id,
        })
    }
}

/// Mailgun errors are `{"message": "…"}` (401 is the plain text `Forbidden`).
fn error_message(body: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(body).ok()?;
    v.get("message")?.as_str().map(str::to_owned)
}
