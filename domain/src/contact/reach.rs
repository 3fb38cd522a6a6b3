//! Whether and how often a contact may be messaged: consent and do-not-contact per channel,
//! and frequency rules; plus the contact's stage and points.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::InvalidValue;

/// A channel a contact can be messaged on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Channel {
    Email,
    Sms,
    Push,
}

impl Channel {
    pub fn parse(raw: &str) -> Result<Self, InvalidValue> {
        match raw {
            "email" => Ok(Self::Email),
            "sms" => Ok(Self::Sms),
            "push" => Ok(Self::Push),
            _ => Err(InvalidValue::new("channel", "email, sms or push")),
        }
    }
}

/// What the contact said about being messaged on a channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConsentStatus {
    OptedIn,
    OptedOut,
    Unknown,
}

/// Consent on one channel: the status, where it came from, when it was given.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Consent {
    pub status: ConsentStatus,
    /// e.g. `form:newsletter`, `import`, `api`.
    pub source: String,
    pub at: DateTime<Utc>,
}

/// Why a channel must not be used for a contact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DncReason {
    Unsubscribed,
    Bounced,
    Complaint,
    Manual,
}

/// A do-not-contact mark on one channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DoNotContact {
    pub reason: DncReason,
    pub note: Option<String>,
}

/// At most `max` messages per `per_days` days on a channel (campaigns and journeys obey it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FrequencyRule {
    pub max: u32,
    pub per_days: u32,
}

impl FrequencyRule {
    pub fn parse(max: u32, per_days: u32) -> Result<Self, InvalidValue> {
        if max == 0 || max > 10_000 {
            return Err(InvalidValue::new("max", "1 to 10000 messages"));
        }
        if per_days == 0 || per_days > 365 {
            return Err(InvalidValue::new("per_days", "1 to 365 days"));
        }
        Ok(Self { max, per_days })
    }
}

/// A short free text: 1 to `max` characters after trimming, no control characters.
pub fn short_text(field: &str, raw: &str, max: usize) -> Result<String, InvalidValue> {
    let s = raw.trim();
    if s.is_empty() || s.chars().count() > max {
        return Err(InvalidValue::new(field, format!("1 to {max} characters")));
    }
    if s.chars().any(char::is_control) {
        return Err(InvalidValue::new(field, "contains control characters"));
    }
    Ok(s.to_owned())
}
