//! The request body of `POST /api/v1/suppressions`, and the names of channels and reasons
//! (shared with CSV imports).

use domain::contact::InvalidValue;
use domain::delivery::suppression::SuppressionReason;
use domain::delivery::Channel;

use crate::Invalid;
use serde::Deserialize;

use super::address::normalize;
use super::many::NewSuppression;

/// Most characters of a `source`.
pub const MAX_SOURCE: usize = 200;

/// `POST /api/v1/suppressions`
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddSuppression {
    /// `email`, `sms`, `push` or `webhook`.
    #[schema(example = "email")]
    pub channel: String,
    /// An email address, an international phone number, a push token or a webhook URL;
    /// normalized (emails lower-cased, numbers to E.164) before it is kept.
    #[schema(example = "ada@example.org")]
    pub address: String,
    /// `hard_bounce`, `complaint`, `unsubscribe` or `manual` (the default).
    pub reason: Option<String>,
    /// Where it came from (default: the caller, e.g. `user:<id>`).
    pub source: Option<String>,
}

const CHANNELS: [Channel; 4] = [
    Channel::Email,
    Channel::Sms,
    Channel::Push,
    Channel::Webhook,
];
const REASONS: [SuppressionReason; 4] = [
    SuppressionReason::HardBounce,
    SuppressionReason::Complaint,
    SuppressionReason::Unsubscribe,
    SuppressionReason::Manual,
];

/// The channel called `name` (as the API writes it, any case).
pub fn channel_named(name: &str) -> Result<Channel, String> {
    let name = name.trim();
    CHANNELS
        .into_iter()
        .find(|c| c.as_str().eq_ignore_ascii_case(name))
        .ok_or_else(|| format!("unknown channel {name:?}: email, sms, push or webhook"))
}

/// The reason called `name` (as the API writes it, any case).
pub fn reason_named(name: &str) -> Result<SuppressionReason, String> {
    let name = name.trim();
    REASONS
        .into_iter()
        .find(|r| r.as_str().eq_ignore_ascii_case(name))
        .ok_or_else(|| {
            format!("unknown reason {name:?}: hard_bounce, complaint, unsubscribe or manual")
        })
}

impl AddSuppression {
    /// The entry to add, `actor` its source unless the body names one; every bad field
    /// reported at once.
    pub fn validate(self, actor: String) -> Result<NewSuppression, Invalid> {
        let mut problems = Vec::new();
        let mut bad = |field: &str, reason: String| {
            problems.push(InvalidValue {
                field: field.to_owned(),
                reason,
            })
        };
        let channel = channel_named(&self.channel)
            .map_err(|e| bad("channel", e))
            .ok();
        let address = channel.and_then(|c| {
            normalize(c, &self.address)
                .map_err(|e| bad("address", e.0))
                .ok()
        });
        let reason = match self.reason.as_deref() {
            None => Some(SuppressionReason::Manual),
            Some(r) => reason_named(r).map_err(|e| bad("reason", e)).ok(),
        };
        let source = match self.source.map(|s| s.trim().to_owned()) {
            None => Some(actor),
            Some(s) if s.is_empty() || s.chars().count() > MAX_SOURCE => {
                bad("source", format!("1 to {MAX_SOURCE} characters"));
                None
            }
            Some(s) => Some(s),
        };
        match (channel, address, reason, source) {
            (Some(c), Some(a), Some(r), Some(s)) if problems.is_empty() => Ok((c, a, r, Some(s))),
            _ => Err(Invalid(problems)),
        }
    }
}
