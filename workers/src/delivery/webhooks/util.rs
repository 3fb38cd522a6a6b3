//! Small readers shared by the providers' parsers.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::{Incoming, WebhookError};

/// A header's value as text (`None` when absent or not visible ASCII).
pub(super) fn header<'a>(incoming: &Incoming<'a>, name: &str) -> Option<&'a str> {
    incoming.headers.get(name).and_then(|v| v.to_str().ok())
}

/// A string secret of the configuration, or [`WebhookError::Config`] naming the key.
pub(super) fn secret<'a>(secrets: &'a Value, key: &str) -> Result<&'a str, WebhookError> {
    secrets
        .get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| WebhookError::Config(format!("`{key}` is not set")))
}

/// The string at a JSON path (`["mail", "messageId"]`).
pub(super) fn str_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter().try_fold(v, |v, key| v.get(key))?.as_str()
}

/// Like [`str_at`], but a missing value is [`WebhookError::Malformed`].
pub(super) fn required<'a>(v: &'a Value, path: &[&str]) -> Result<&'a str, WebhookError> {
    str_at(v, path)
        .ok_or_else(|| WebhookError::Malformed(format!("no string at {}", path.join("."))))
}

/// An RFC 3339 instant (any offset, any number of decimals).
pub(super) fn rfc3339(text: &str) -> Result<DateTime<Utc>, WebhookError> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| WebhookError::Malformed(format!("time {text:?}: {e}")))
}

/// Seconds since the epoch, with a decimal fraction (Mailgun) or without (SendGrid). Read
/// from the number's text, so `1529006854.329574` is exactly that many microseconds.
pub(super) fn unix_seconds(v: &Value) -> Result<DateTime<Utc>, WebhookError> {
    let text = match v {
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.trim().to_owned(),
        _ => String::new(),
    };
    let bad = || WebhookError::Malformed(format!("not a unix time: {v}"));
    let (whole, fraction) = text.split_once('.').unwrap_or((&text, ""));
    let secs: i64 = whole.parse().map_err(|_| bad())?;
    if !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let digits: String = fraction
        .chars()
        .chain(std::iter::repeat('0'))
        .take(9)
        .collect();
    let nanos: u32 = digits.parse().map_err(|_| bad())?;
    DateTime::from_timestamp(secs, nanos).ok_or_else(bad)
}

/// The body as JSON.
pub(super) fn json_body(incoming: &Incoming<'_>) -> Result<Value, WebhookError> {
    serde_json::from_slice(incoming.body)
        .map_err(|e| WebhookError::Malformed(format!("body is not JSON: {e}")))
}
