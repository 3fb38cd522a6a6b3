//! Webhooks: the message's own request (method, URL, headers, body) to the endpoint the
//! organization chose, plus `Idempotency-Key: <job id>` and, when the configuration has a
//! `secret`, `X-Mauntic-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`
//! (the receiver recomputes it and rejects old `t`s against replays). Any 2xx is sent (the
//! job id is the message id); 429 and 5xx are transient (`Retry-After`), every other answer,
//! redirects included (never followed: a redirected POST becomes a GET), permanent with the
//! start of the endpoint's body. Only `https://` URLs unless `allow_http`.
//!
//! **Deduplication** is the endpoint's: only when it honours `Idempotency-Key` may a job in
//! doubt be sent again, which the configuration says with `deduplicates: true`.

use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::http;
use crate::delivery::message::{Channel, Message};
use crate::delivery::provider::{Provider, SendError, Sent};

pub const SIGNATURE_HEADER: &str = "X-Mauntic-Signature";
pub const IDEMPOTENCY_HEADER: &str = "Idempotency-Key";

#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct WebhookConfig {
    /// Signs every request when set.
    #[serde(default)]
    pub secret: Option<String>,
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// Lets `http://` URLs through (development only).
    #[serde(default)]
    pub allow_http: bool,
    /// The endpoint honours `Idempotency-Key`.
    #[serde(default)]
    pub deduplicates: bool,
}

fn default_timeout_ms() -> u64 {
    10_000
}

pub struct WebhookSender {
    config: WebhookConfig,
    client: reqwest::Client,
}

impl WebhookSender {
    pub fn new(config: WebhookConfig) -> Result<Self, super::BuildError> {
        let client = http::builder(Duration::from_millis(config.timeout_ms))
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Self { config, client })
    }
}

/// The signature header's value for `body` sent at unix time `t`.
pub fn signature(secret: &str, t: i64, body: &str) -> String {
    // HMAC takes keys of any length: `new_from_slice` cannot fail for it.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else {
        return format!("t={t},v1=");
    };
    mac.update(format!("{t}.{body}").as_bytes());
    format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes()))
}

#[async_trait::async_trait]
impl Provider for WebhookSender {
    fn kind(&self) -> &'static str {
        "webhook"
    }

    fn channel(&self) -> Channel {
        Channel::Webhook
    }

    /// As configured: whether the endpoint honours `Idempotency-Key`.
    fn deduplicates(&self) -> bool {
        self.config.deduplicates
    }

    #[tracing::instrument(skip_all, fields(job_id = %message.job_id()), err)]
    async fn send(&self, message: &Message) -> Result<Sent, SendError> {
        let Message::Webhook(hook) = message else {
            return Err(http::wrong_channel("webhook", Channel::Webhook, message));
        };
        let url = reqwest::Url::parse(&hook.url)
            .map_err(|e| http::unbuildable("webhook", format!("url {:?}: {e}", hook.url)))?;
        match url.scheme() {
            "https" => {}
            "http" if self.config.allow_http => {}
            "http" => return Err(http::unbuildable("webhook", "HTTPS required")),
            other => {
                return Err(http::unbuildable(
                    "webhook",
                    format!("scheme {other:?} is not HTTP(S)"),
                ))
            }
        }
        let method = reqwest::Method::from_bytes(hook.method.to_ascii_uppercase().as_bytes())
            .map_err(|e| http::unbuildable("webhook", format!("method {:?}: {e}", hook.method)))?;
        let mut headers = reqwest::header::HeaderMap::new();
        for (name, value) in &hook.headers {
            let name = reqwest::header::HeaderName::from_bytes(name.as_bytes())
                .map_err(|e| http::unbuildable("webhook", format!("header {name:?}: {e}")))?;
            let value = reqwest::header::HeaderValue::from_str(value)
                .map_err(|e| http::unbuildable("webhook", format!("header {name}: {e}")))?;
            headers.append(name, value);
        }
        let job_id = hook.job_id.to_string();
        let ours = |v: &str| {
            reqwest::header::HeaderValue::from_str(v).map_err(|e| http::unbuildable("webhook", e))
        };
        headers.insert(IDEMPOTENCY_HEADER, ours(&job_id)?);
        if let Some(secret) = &self.config.secret {
            let t = chrono::Utc::now().timestamp();
            headers.insert(SIGNATURE_HEADER, ours(&signature(secret, t, &hook.body))?);
        }
        let mut request = self.client.request(method, url).headers(headers);
        if !hook.body.is_empty() {
            request = request.body(hook.body.clone());
        }
        http::send("webhook", request, |_| None).await?;
        Ok(Sent {
            provider_message_id: job_id,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_the_hmac_of_the_time_and_the_body() {
        // Computed apart (Python's hmac module).
        assert_eq!(
            signature("whsec_test", 1_700_000_000, "{\"a\":1}"),
            "t=1700000000,v1=38877139021993b830af32feea6e18a8da83eb2f6e49ee50bd9e4cf4ca4d3789"
        );
    }
}
