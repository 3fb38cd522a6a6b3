//! Amazon SES API v2 `SendEmail` (`POST /v2/email/outbound-emails`) with `Content.Raw`: the
//! MIME message of [`mime`] as it is, so every header reaches the recipient. Signed with
//! SigV4 (service `ses`). The job's return path is the `FeedbackForwardingEmailAddress`
//! (where SES forwards bounces and complaints); SES's answer is `{"MessageId": …}`.

use std::time::Duration;

use base64::Engine as _;

use super::{http, mime, sigv4};
use crate::delivery::message::{Channel, Message};
use crate::delivery::provider::{Provider, SendError, Sent};

pub const PATH: &str = "/v2/email/outbound-emails";

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct SesConfig {
    pub region: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    /// With temporary credentials (`X-Amz-Security-Token`).
    #[serde(default)]
    pub session_token: Option<String>,
    #[serde(default)]
    pub configuration_set: Option<String>,
    /// `https://email.<region>.amazonaws.com` unless set (tests point it at a fake).
    #[serde(default)]
    pub base_url: Option<String>,
    #[serde(default = "default_timeout_secs")]
    pub timeout_secs: u64,
}

fn default_timeout_secs() -> u64 {
    30
}

pub struct Ses {
    config: SesConfig,
    url: reqwest::Url,
    host: String,
    client: reqwest::Client,
}

impl Ses {
    pub fn new(config: SesConfig) -> Result<Self, super::BuildError> {
        let base = config
            .base_url
            .clone()
            .unwrap_or_else(|| format!("https://email.{}.amazonaws.com", config.region));
        let url = reqwest::Url::parse(&base)
            .and_then(|b| b.join(PATH))
            .map_err(|e| super::BuildError::Config(format!("ses base_url {base:?}: {e}")))?;
        let host = match (url.host_str(), url.port()) {
            (Some(h), Some(p)) => format!("{h}:{p}"),
            (Some(h), None) => h.to_owned(),
            (None, _) => {
                return Err(super::BuildError::Config(format!(
                    "ses url {url} has no host"
                )))
            }
        };
        let client = http::client(Duration::from_secs(config.timeout_secs))?;
        Ok(Self {
            config,
            url,
            host,
            client,
        })
    }
}

#[derive(serde::Deserialize)]
struct Accepted {
    #[serde(rename = "MessageId")]
    message_id: String,
}

#[async_trait::async_trait]
impl Provider for Ses {
    fn kind(&self) -> &'static str {
        "ses"
    }

    fn channel(&self) -> Channel {
        Channel::Email
    }

    /// SES v2 `SendEmail` takes no idempotency key (no `ClientToken`).
    fn deduplicates(&self) -> bool {
        false
    }

    #[tracing::instrument(skip_all, fields(job_id = %message.job_id()), err)]
    async fn send(&self, message: &Message) -> Result<Sent, SendError> {
        let Message::Email(email) = message else {
            return Err(http::wrong_channel("ses", Channel::Email, message));
        };
        let raw = mime::formatted(email).map_err(|e| http::unbuildable("ses", e))?;
        let mut body = serde_json::json!({
            "FromEmailAddress": mime::display(&email.from),
            "Destination": {"ToAddresses": [mime::display(&email.to)]},
            "FeedbackForwardingEmailAddress": email.return_path,
            "Content": {"Raw": {"Data": base64::engine::general_purpose::STANDARD.encode(raw)}},
        });
        if let Some(set) = &self.config.configuration_set {
            body["ConfigurationSetName"] = set.clone().into();
        }
        let payload = serde_json::to_vec(&body).map_err(|e| http::unbuildable("ses", e))?;

        let amz_date = chrono::Utc::now().format("%Y%m%dT%H%M%SZ").to_string();
        let mut headers = vec![
            ("content-type".to_owned(), "application/json".to_owned()),
            ("host".to_owned(), self.host.clone()),
            ("x-amz-date".to_owned(), amz_date.clone()),
        ];
        if let Some(token) = &self.config.session_token {
            headers.push(("x-amz-security-token".to_owned(), token.clone()));
        }
        let scope = sigv4::Scope {
            date: &amz_date[..8],
            region: &self.config.region,
            service: "ses",
        };
        let request = sigv4::Request {
            method: "POST",
            path: self.url.path(),
            query: "",
            headers: headers.clone(),
            payload: &payload,
        };
        let authorization = sigv4::authorization(
            &self.config.access_key_id,
            &self.config.secret_access_key,
            &amz_date,
            &scope,
            &request,
        );
        let mut builder = self
            .client
            .post(self.url.clone())
            .header(reqwest::header::AUTHORIZATION, authorization);
        for (name, value) in headers.into_iter().filter(|(n, _)| n != "host") {
            builder = builder.header(name, value);
        }
        let response = http::send("ses", builder.body(payload), error_message).await?;
        // Taken (2xx): an unreadable answer must not make the worker send it again.
        let provider_message_id = match response.json::<Accepted>().await {
            Ok(accepted) => accepted.message_id,
            Err(e) => {
                tracing::warn!(error = %e, "ses took the message but its answer has no MessageId");
                email.message_id.clone()
            }
        };
        Ok(Sent {
            provider_message_id,
        })
    }
}

/// SES errors are `{"message": "…"}` (the type in `x-amzn-ErrorType`).
fn error_message(body: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(body).ok()?;
    let m = v.get("message").or_else(|| v.get("Message"))?;
    m.as_str().map(str::to_owned)
}
