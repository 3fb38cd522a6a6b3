//! Vonage (Nexmo) SMS API `POST /sms/json` (a urlencoded form with `api_key`, `api_secret`,
//! `from`, `to`, `text`, `type`, and the job id as `client-ref`, echoed in delivery receipts).
//! Vonage answers HTTP 200 even when it refuses: `{"message-count": "n", "messages": [{"status":
//! "0", "message-id": "…"} | {"status": "n", "error-text": "…"}]}`, one entry per part of a
//! long message. Its documented statuses: 0 accepted, 1 throttled and 5 internal error worth
//! another try, every other one (missing or invalid parameters, bad credentials, barred
//! number, too long, …) permanent.

use std::time::Duration;

use super::http;
use crate::delivery::message::{Channel, Message};
use crate::delivery::provider::{Provider, SendError, Sent};

pub const PATH: &str = "/sms/json";

/// Vonage's throttle (status 1) is a per-second rate ("throughput limit") and names no delay.
const THROTTLED_RETRY_AFTER: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct VonageConfig {
    pub api_key: String,
    pub api_secret: String,
    /// `https://rest.nexmo.com` unless set (tests point it at a fake).
    #[serde(default)]
    pub base_url: Option<String>,
    #[serde(default = "default_timeout_secs")]
    pub timeout_secs: u64,
}

fn default_timeout_secs() -> u64 {
    30
}

pub struct Vonage {
    config: VonageConfig,
    url: reqwest::Url,
    client: reqwest::Client,
}

impl Vonage {
    pub fn new(config: VonageConfig) -> Result<Self, super::BuildError> {
        let base = config
            .base_url
            .as_deref()
            .unwrap_or("https://rest.nexmo.com");
        let url = http::endpoint("vonage", base, PATH)?;
        let client = http::client(Duration::from_secs(config.timeout_secs))?;
        Ok(Self {
            config,
            url,
            client,
        })
    }
}

#[derive(serde::Deserialize)]
struct Answer {
    messages: Vec<Part>,
}

#[derive(serde::Deserialize)]
struct Part {
    status: String,
    #[serde(rename = "message-id")]
    message_id: Option<String>,
    #[serde(rename = "error-text")]
    error_text: Option<String>,
}

#[async_trait::async_trait]
impl Provider for Vonage {
    fn kind(&self) -> &'static str {
        "vonage"
    }

    fn channel(&self) -> Channel {
        Channel::Sms
    }

    /// Vonage's SMS API takes no idempotency key (`client-ref` is only echoed back).
    fn deduplicates(&self) -> bool {
        false
    }

    #[tracing::instrument(skip_all, fields(job_id = %message.job_id()), err)]
    async fn send(&self, message: &Message) -> Result<Sent, SendError> {
        let Message::Sms(sms) = message else {
            return Err(http::wrong_channel("vonage", Channel::Sms, message));
        };
        let job_id = sms.job_id.to_string();
        let form = [
            ("api_key", self.config.api_key.as_str()),
            ("api_secret", self.config.api_secret.as_str()),
            ("from", number(&sms.from)),
            ("to", number(&sms.to)),
            ("text", sms.body.as_str()),
            (
                "type",
                if is_gsm7(&sms.body) {
                    "text"
                } else {
                    "unicode"
                },
            ),
            ("client-ref", job_id.as_str()),
        ];
        let request = self.client.post(self.url.clone()).form(&form);
        let response = http::send("vonage", request, error_message).await?;
        // The only word on whether Vonage took it: unreadable, the outcome is unknown.
        let answer: Answer = response.json().await.map_err(|e| SendError::Unknown {
            reason: format!("vonage answered 200 with an unreadable body: {e}"),
        })?;
        outcome(answer, &job_id)
    }
}

/// Accepted when every part is; refused as the first refused part says when none went out;
/// permanent when some parts went out and others not (sending it again repeats those).
fn outcome(answer: Answer, job_id: &str) -> Result<Sent, SendError> {
    let accepted: Vec<&Part> = answer.messages.iter().filter(|p| p.status == "0").collect();
    let refused = answer.messages.iter().find(|p| p.status != "0");
    match (accepted.first(), refused) {
        (Some(first), None) => Ok(Sent {
            provider_message_id: first
                .message_id
                .clone()
                .unwrap_or_else(|| job_id.to_owned()),
        }),
        (None, None) => Err(SendError::Unknown {
            reason: "vonage answered 200 with no message status".to_owned(),
        }),
        (None, Some(part)) => {
            let reason = format!(
                "vonage status {}: {}",
                part.status,
                part.error_text.as_deref().unwrap_or("no error text")
            );
            Err(match part.status.as_str() {
                "1" => SendError::Transient {
                    reason,
                    retry_after: Some(THROTTLED_RETRY_AFTER),
                },
                "5" => SendError::Transient {
                    reason,
                    retry_after: None,
                },
                _ => SendError::Permanent { reason },
            })
        }
        (Some(_), Some(part)) => Err(SendError::Permanent {
            reason: format!(
                "vonage sent {} of {} parts; status {}: {}",
                accepted.len(),
                answer.messages.len(),
                part.status,
                part.error_text.as_deref().unwrap_or("no error text")
            ),
        }),
    }
}

/// Vonage writes numbers without the leading `+` of E.164; a sender name stays as it is.
fn number(s: &str) -> &str {
    s.strip_prefix('+').unwrap_or(s)
}

/// The GSM 03.38 alphabet (basic set and extension table): anything else needs `unicode`.
fn is_gsm7(text: &str) -> bool {
    const GSM: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?\
                       ¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà\
                       \u{c}^{}\\[~]|€";
    text.chars().all(|c| GSM.contains(c))
}

/// Vonage's error answers outside the 200 (401, 429, 5xx) are `{"error-text": "…"}` or
/// problem JSON with `title`/`detail`.
fn error_message(body: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(body).ok()?;
    if let Some(text) = v.get("error-text").and_then(|t| t.as_str()) {
        return Some(text.to_owned());
    }
    let title = v.get("title")?.as_str()?;
    Some(match v.get("detail").and_then(|d| d.as_str()) {
        Some(detail) => format!("{title}: {detail}"),
        None => title.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_outside_the_gsm_alphabet_is_sent_as_unicode() {
        assert!(is_gsm7("Bonjour Zoé! Prix: 5€ {promo}"));
        assert!(!is_gsm7("Zoë"), "ë is not in GSM 03.38");
        assert!(!is_gsm7("Café ☕"));
        assert!(!is_gsm7("back`tick"));
    }

    fn part(status: &str, id: Option<&str>, text: Option<&str>) -> Part {
        Part {
            status: status.to_owned(),
            message_id: id.map(str::to_owned),
            error_text: text.map(str::to_owned),
        }
    }

    #[test]
    fn a_long_message_sent_in_part_is_never_retried() {
        let answer = Answer {
            messages: vec![
                part("0", Some("a"), None),
                part("1", None, Some("Throughput Rate Exceeded")),
            ],
        };
        assert!(matches!(
            outcome(answer, "job"),
            Err(SendError::Permanent { reason }) if reason.contains("sent 1 of 2 parts")
        ));
    }
}
