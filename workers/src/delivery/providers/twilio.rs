//! Twilio Programmable Messaging `POST /2010-04-01/Accounts/{AccountSid}/Messages.json`
//! (basic auth `AccountSid:AuthToken`, a urlencoded form `To`, `From`, `Body`). Twilio answers
//! 201 with the message resource, whose `sid` (`SM…`) names it in status callbacks; its
//! errors are `{"code": n, "message": "…", "more_info": "…", "status": n}` (429 with code
//! 20429 when throttled).

use std::time::Duration;

use super::http;
use crate::delivery::message::{Channel, Message};
use crate::delivery::provider::{Provider, SendError, Sent};

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct TwilioConfig {
    pub account_sid: String,
    pub auth_token: String,
    /// `https://api.twilio.com` unless set (tests point it at a fake).
    #[serde(default)]
    pub base_url: Option<String>,
    #[serde(default = "default_timeout_secs")]
    pub timeout_secs: u64,
}

fn default_timeout_secs() -> u64 {
    30
}

/// The Messages resource of `account_sid`.
pub fn path(account_sid: &str) -> String {
    format!("/2010-04-01/Accounts/{account_sid}/Messages.json")
}

pub struct Twilio {
    config: TwilioConfig,
    url: reqwest::Url,
    client: reqwest::Client,
}

impl Twilio {
    pub fn new(config: TwilioConfig) -> Result<Self, super::BuildError> {
        let base = config
            .base_url
            .as_deref()
            .unwrap_or("https://api.twilio.com");
        let url = http::endpoint("twilio", base, &path(&config.account_sid))?;
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
    sid: String,
}

#[async_trait::async_trait]
impl Provider for Twilio {
    fn kind(&self) -> &'static str {
        "twilio"
    }

    fn channel(&self) -> Channel {
        Channel::Sms
    }

    /// Twilio's Messages API takes no idempotency key.
    fn deduplicates(&self) -> bool {
        false
    }

    #[tracing::instrument(skip_all, fields(job_id = %message.job_id()), err)]
    async fn send(&self, message: &Message) -> Result<Sent, SendError> {
        let Message::Sms(sms) = message else {
            return Err(http::wrong_channel("twilio", Channel::Sms, message));
        };
        let form = [
            ("To", sms.to.as_str()),
            ("From", sms.from.as_str()),
            ("Body", sms.body.as_str()),
        ];
        let request = self
            .client
            .post(self.url.clone())
            .basic_auth(&self.config.account_sid, Some(&self.config.auth_token))
            .form(&form);
        let response = http::send("twilio", request, error_message).await?;
        // Taken (2xx): an unreadable answer must not make the worker send it again.
        let provider_message_id = match response.json::<Accepted>().await {
            Ok(accepted) => accepted.sid,
            Err(e) => {
                tracing::warn!(error = %e, "twilio took the message but its answer has no sid");
                sms.job_id.to_string()
            }
        };
        Ok(Sent {
            provider_message_id,
        })
    }
}

/// Twilio errors are `{"code": n, "message": "…", "more_info": "…", "status": n}`.
fn error_message(body: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(body).ok()?;
    let message = v.get("message")?.as_str()?;
    Some(match v.get("code").and_then(|c| c.as_i64()) {
        Some(code) => format!("{message} (code {code})"),
        None => message.to_owned(),
    })
}
