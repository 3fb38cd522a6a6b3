//! Postmark `POST /email` (`X-Postmark-Server-Token`): From, To, ReplyTo, Subject, TextBody,
//! HtmlBody, our headers in `Headers`, the job id in `Metadata`. Postmark answers
//! `{"MessageID": …, "ErrorCode": 0}`; its refusals are 422 `{"ErrorCode": n, "Message": …}`.
//! The envelope sender is Postmark's own (its bounce handling).

use std::time::Duration;

use super::{http, mime};
use crate::delivery::message::{Channel, Message};
use crate::delivery::provider::{Provider, SendError, Sent};

pub const PATH: &str = "/email";

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct PostmarkConfig {
    pub server_token: String,
    /// `outbound` (transactional) unless set; broadcasts go to a broadcast stream.
    #[serde(default)]
    pub message_stream: Option<String>,
    /// `https://api.postmarkapp.com` unless set (tests point it at a fake).
    #[serde(default)]
    pub base_url: Option<String>,
    #[serde(default = "default_timeout_secs")]
    pub timeout_secs: u64,
}

fn default_timeout_secs() -> u64 {
    30
}

pub struct Postmark {
    config: PostmarkConfig,
    url: reqwest::Url,
    client: reqwest::Client,
}

impl Postmark {
    pub fn new(config: PostmarkConfig) -> Result<Self, super::BuildError> {
        let base = config
            .base_url
            .clone()
            .unwrap_or_else(|| "https://api.postmarkapp.com".to_owned());
        let url = reqwest::Url::parse(&base)
            .and_then(|b| b.join(PATH))
            .map_err(|e| super::BuildError::Config(format!("postmark base_url {base:?}: {e}")))?;
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
    #[serde(rename = "MessageID")]
    message_id: String,
}

#[async_trait::async_trait]
impl Provider for Postmark {
    fn kind(&self) -> &'static str {
        "postmark"
    }

    fn channel(&self) -> Channel {
        Channel::Email
    }

    /// Postmark's `/email` takes no idempotency key.
    fn deduplicates(&self) -> bool {
        false
    }

    #[tracing::instrument(skip_all, fields(job_id = %message.job_id()), err)]
    async fn send(&self, message: &Message) -> Result<Sent, SendError> {
        let Message::Email(email) = message else {
            return Err(http::wrong_channel("postmark", Channel::Email, message));
        };
        mime::validate(email).map_err(|e| http::unbuildable("postmark", e))?;
        let headers: Vec<serde_json::Value> = mime::extra_headers(email)
            .into_iter()
            .map(|(n, v)| serde_json::json!({"Name": n, "Value": v}))
            .collect();
        let mut body = serde_json::json!({
            "From": mime::display(&email.from),
            "To": mime::display(&email.to),
            "Subject": email.subject,
            "TextBody": email.text,
            "HtmlBody": email.html,
            "Headers": headers,
            "Metadata": {"job_id": email.job_id.to_string()},
            "MessageStream": self.config.message_stream.as_deref().unwrap_or("outbound"),
        });
        if let Some(reply_to) = &email.reply_to {
            body["ReplyTo"] = mime::display(reply_to).into();
        }
        let request = self
            .client
            .post(self.url.clone())
            .header("X-Postmark-Server-Token", &self.config.server_token)
            .header(reqwest::header::ACCEPT, "application/json")
            .json(&body);
        let response = http::send("postmark", request, error_message).await?;
        let provider_message_id = match response.json::<Accepted>().await {
            Ok(accepted) => accepted.message_id,
            Err(e) => {
                tracing::warn!(error = %e, "postmark took the message but its answer has no MessageID");
                email.message_id.clone()
            }
        };
        Ok(Sent {
            provider_message_id,
        })
    }
}

/// Postmark errors are `{"ErrorCode": n, "Message": "…"}`.
fn error_message(body: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(body).ok()?;
    let message = v.get("Message")?.as_str()?;
    Some(match v.get("ErrorCode").and_then(|c| c.as_i64()) {
        Some(code) => format!("{message} (ErrorCode {code})"),
        None => message.to_owned(),
    })
}
