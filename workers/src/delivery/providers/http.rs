//! What the HTTP providers share: the client, and the one mapping of an answer to a
//! [`SendError`]: 429 and 5xx are transient (with `Retry-After` when given, in seconds or as
//! an HTTP date), other 4xx permanent with the provider's own error message, a connection
//! that never opened transient, a timeout or a connection lost after the request went out
//! unknown (the provider may have the message).

use std::time::Duration;

use crate::delivery::message::Channel;
use crate::delivery::provider::SendError;

/// A client with the provider's timeout (for the whole request, connecting included).
pub fn client(timeout: Duration) -> Result<reqwest::Client, reqwest::Error> {
    builder(timeout).build()
}

/// The builder behind [`client`], for a provider that needs more (HTTP/2, no redirects).
pub fn builder(timeout: Duration) -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
}

/// `path` on the provider's `base` URL (its default, or the configured `base_url`).
pub fn endpoint(provider: &str, base: &str, path: &str) -> Result<reqwest::Url, super::BuildError> {
    reqwest::Url::parse(base)
        .and_then(|b| b.join(path))
        .map_err(|e| super::BuildError::Config(format!("{provider} base_url {base:?}: {e}")))
}

/// Sends `request`; the response when 2xx, otherwise the mapped error, its reason naming the
/// provider, the status and what `message` finds in the body (the body itself if nothing).
pub async fn send(
    provider: &str,
    request: reqwest::RequestBuilder,
    message: fn(&str) -> Option<String>,
) -> Result<reqwest::Response, SendError> {
    let response = request.send().await.map_err(|e| transport(provider, &e))?;
    checked(provider, response, message).await
}

/// An answer already received: itself when 2xx, otherwise the mapped error (as [`send`]), for
/// a provider that looks at the status first (to drop a refused access token).
pub async fn checked(
    provider: &str,
    response: reqwest::Response,
    message: fn(&str) -> Option<String>,
) -> Result<reqwest::Response, SendError> {
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let retry_after = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(retry_after);
    let body = response.text().await.unwrap_or_default();
    let detail = message(&body).unwrap_or_else(|| body.chars().take(500).collect());
    let reason = format!("{provider} answered {status}: {detail}");
    Err(classify(status.as_u16(), reason, retry_after))
}

/// 429 and 5xx → transient, anything else → permanent.
pub fn classify(status: u16, reason: String, retry_after: Option<Duration>) -> SendError {
    if status == 429 || status >= 500 {
        SendError::Transient {
            reason,
            retry_after,
        }
    } else {
        SendError::Permanent { reason }
    }
}

/// A request that got no answer. One that never connected sent nothing: worth another try.
/// Any other (a timeout, a connection lost mid-request) may have reached the provider: its
/// outcome is unknown.
pub fn transport(provider: &str, e: &reqwest::Error) -> SendError {
    if e.is_connect() {
        return SendError::Transient {
            reason: format!("{provider} cannot connect: {e}"),
            retry_after: None,
        };
    }
    let what = if e.is_timeout() {
        "timed out"
    } else {
        "request failed"
    };
    SendError::Unknown {
        reason: format!("{provider} {what}: {e}"),
    }
}

/// `Retry-After`: delay-seconds, or an HTTP date (the time left until then, zero if past).
pub fn retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let left = at.with_timezone(&chrono::Utc) - chrono::Utc::now();
    Some(left.to_std().unwrap_or(Duration::ZERO))
}

/// The error of a request that carries no message (an OAuth token exchange): whatever became
/// of it, nothing was sent, so an unknown outcome is only worth another try.
pub fn nothing_sent(e: SendError) -> SendError {
    match e {
        SendError::Unknown { reason } => SendError::Transient {
            reason,
            retry_after: None,
        },
        other => other,
    }
}

/// The permanent error of a message that cannot be put into the provider's request.
pub fn unbuildable(provider: &str, e: impl std::fmt::Display) -> SendError {
    SendError::Permanent {
        reason: format!("{provider}: {e}"),
    }
}

/// `e` as [`SendError::Unreachable`] when the provider's refusal says the address is gone
/// (`gone`, decided by the caller from the answer's status and reason).
pub fn unreachable_when(e: SendError, gone: bool) -> SendError {
    match e {
        SendError::Permanent { reason } if gone => SendError::Unreachable { reason },
        other => other,
    }
}

/// The permanent error of a message on a channel the provider does not carry.
pub fn wrong_channel(
    provider: &str,
    carries: Channel,
    message: &crate::delivery::message::Message,
) -> SendError {
    SendError::Permanent {
        reason: format!(
            "{provider} carries {carries:?}, not {:?} (job {})",
            message.channel(),
            message.job_id()
        ),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn retry_after_is_read_in_seconds_or_as_a_date() {
        assert_eq!(retry_after(" 7 "), Some(Duration::from_secs(7)));
        let soon = chrono::Utc::now() + chrono::Duration::seconds(120);
        let date = soon.format("%a, %d %b %Y %H:%M:%S GMT").to_string();
        let left = retry_after(&date).unwrap();
        assert!(left > Duration::from_secs(100) && left <= Duration::from_secs(120));
        assert_eq!(
            retry_after("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(Duration::ZERO)
        );
        assert_eq!(retry_after("soon"), None);
    }

    #[test]
    fn throttling_and_server_errors_are_transient_other_refusals_permanent() {
        assert!(matches!(
            classify(429, String::new(), None),
            SendError::Transient { .. }
        ));
        assert!(matches!(
            classify(503, String::new(), None),
            SendError::Transient { .. }
        ));
        assert!(matches!(
            classify(400, String::new(), None),
            SendError::Permanent { .. }
        ));
        assert!(matches!(
            classify(401, String::new(), None),
            SendError::Permanent { .. }
        ));
    }
}
