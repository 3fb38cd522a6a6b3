//! What a delivery job is about: its channel, source, request, sender, and the reasons it
//! may be suppressed, deferred or bounced.

use super::*;

/// The channel a message goes out on: the channel of its template.
pub use crate::template::Channel;

/// Who asked for the message: a campaign, a journey step, or a transactional API call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Source {
    Campaign {
        campaign_id: Uuid,
        variant: Option<String>,
    },
    Journey {
        journey_id: Uuid,
        execution_id: Uuid,
        step_id: String,
    },
    Transactional {
        /// The client's `Idempotency-Key`, if it sent one.
        idempotency_key: Option<String>,
    },
    Test,
}

/// The campaign a job belongs to, as the job's later events name it: analytics count them
/// by campaign, variant and channel without a job → campaign lookup. Decided in the
/// aggregate from the request's [`Source::Campaign`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CampaignRef {
    pub id: Uuid,
    /// The A/B test variant the recipient got (`None`: no test, or the remainder of a test
    /// sent before a winner was named on the job).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    /// The channel the message goes out on (a campaign's is fixed once sending started):
    /// rollups are kept per channel, and no later job event says it otherwise.
    pub channel: Channel,
}

impl CampaignRef {
    /// The campaign of a job requested with `request` (`None`: not a campaign's).
    pub fn of(request: &Request) -> Option<Self> {
        match &request.source {
            Source::Campaign {
                campaign_id,
                variant,
            } => Some(Self {
                id: *campaign_id,
                variant: variant.clone(),
                channel: request.channel,
            }),
            _ => None,
        }
    }
}

/// What a job is asked to deliver.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    pub channel: Channel,
    /// The contact it is for (`None`: a bare address, e.g. a test send).
    pub contact_id: Option<Uuid>,
    /// The address, for a message to a bare address (a test send, a transactional message
    /// to someone who is not a contact). Empty for a contact: the worker sends to the
    /// contact's address at send time, so the job's events hold no personal data.
    #[serde(default)]
    pub to: String,
    pub template_id: Uuid,
    pub template_version: u32,
    pub source: Source,
    /// Values the template may use besides the contact's (e.g. an order for a receipt),
    /// under `message` in the render context.
    #[serde(default)]
    pub data: serde_json::Value,
    /// The sender (email: the From address and name); `None`: the organization's default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<Sender>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<Sender>,
    /// The provider that carries the message (one of the organization's providers of the
    /// channel); `None`: the channel's default provider when the message is sent. A named
    /// provider that is gone by then gives the job up: the message is never silently sent
    /// by another one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider_id: Option<Uuid>,
}

/// An address a message comes from (or a reply goes to), with an optional display name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sender {
    pub address: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// Why a job was not sent and never will be (checked before dispatch).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Suppression {
    /// The address is on the organization's suppression list for the channel.
    SuppressedAddress { reason: String },
    /// The contact opted out of the channel (or never opted in where that is required).
    OptedOut,
    /// The contact is marked do-not-contact on the channel.
    DoNotContact { reason: String },
    /// The contact has no address on the channel.
    NoAddress,
    /// The contact was erased or merged away before the send.
    ContactGone,
    /// A campaign's message to a contact whose frequency rule allows nothing more on the
    /// channel now. A blast is time-bound: the contact is skipped rather than sent the
    /// message days late (journeys' messages wait instead: `Deferral::FrequencyCap`).
    FrequencyCap,
}

/// Why a job waits (it is sent later, never dropped).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Deferral {
    /// The sending domain's warmup allowance for the day is used up.
    Warmup { domain: String },
    /// The provider's rate limit is reached.
    RateLimit { provider: String },
    /// The contact's frequency rule allows no more messages on the channel until then.
    FrequencyCap,
    /// Quiet hours in the contact's time zone.
    QuietHours,
}

/// A bounce's kind: hard (the address does not exist: suppressed for good) or soft.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BounceKind {
    Hard,
    Soft,
}
