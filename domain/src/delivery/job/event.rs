//! What a delivery job records.

use super::*;

#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum DeliveryEvent {
    DeliveryRequested(Request),
    DeliverySuppressed {
        reason: Suppression,
        /// The campaign the job belongs to (`None`: not a campaign's, or written before
        /// events named it).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        campaign: Option<CampaignRef>,
    },
    DeliveryDeferred {
        reason: Deferral,
        until: DateTime<Utc>,
    },
    DeliveryDispatching {
        attempt: u32,
        provider: String,
    },
    DeliverySent {
        attempt: u32,
        provider: String,
        provider_message_id: String,
        /// The job's contact (the contact's timeline lists the message from here, not from
        /// its request); `None`: a bare address, or written before sends named it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        contact_id: Option<Uuid>,
        /// The campaign the job belongs to (`None`: not a campaign's, or written before
        /// events named it).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        campaign: Option<CampaignRef>,
    },
    DeliveryAttemptFailed {
        attempt: u32,
        error: String,
        retry_at: DateTime<Utc>,
    },
    DeliveryGivenUp {
        attempt: u32,
        error: String,
        /// The campaign the job belongs to (`None`: not a campaign's, or written before
        /// events named it).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        campaign: Option<CampaignRef>,
    },
    /// A crash came between dispatching `attempt` and its outcome; not retried.
    DeliveryInDoubt {
        attempt: u32,
        provider: String,
        /// The campaign the job belongs to (`None`: not a campaign's, or written before
        /// events named it).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        campaign: Option<CampaignRef>,
    },
    DeliveryDelivered {
        at: DateTime<Utc>,
        /// The job's contact (the contact's timeline lists the event); `None`: a bare address.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        contact_id: Option<Uuid>,
        /// The campaign the job belongs to (`None`: not a campaign's, or written before
        /// events named it).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        campaign: Option<CampaignRef>,
    },
    DeliveryBounced {
        kind: BounceKind,
        diagnostic: String,
        at: DateTime<Utc>,
        /// The job's contact (the contact's timeline lists the event); `None`: a bare address.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        contact_id: Option<Uuid>,
        /// The campaign the job belongs to (`None`: not a campaign's, or written before
        /// events named it).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        campaign: Option<CampaignRef>,
    },
    DeliveryComplained {
        at: DateTime<Utc>,
        /// The job's contact (the contact's timeline lists the event); `None`: a bare address.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        contact_id: Option<Uuid>,
        /// The campaign the job belongs to (`None`: not a campaign's, or written before
        /// events named it).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        campaign: Option<CampaignRef>,
    },
    DeliveryOpened {
        at: DateTime<Utc>,
        user_agent: Option<String>,
        /// The contact's first open of this message.
        first: bool,
        /// The job's contact (the contact's timeline lists the event); `None`: a bare address.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        contact_id: Option<Uuid>,
        /// The campaign the job belongs to (`None`: not a campaign's, or written before
        /// events named it).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        campaign: Option<CampaignRef>,
    },
    DeliveryClicked {
        url: String,
        at: DateTime<Utc>,
        first: bool,
        /// The job's contact (the contact's timeline lists the event); `None`: a bare address.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        contact_id: Option<Uuid>,
        /// The campaign the job belongs to (`None`: not a campaign's, or written before
        /// events named it).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        campaign: Option<CampaignRef>,
    },
    DeliveryUnsubscribed {
        at: DateTime<Utc>,
        /// The job's contact (the contact's timeline lists the event); `None`: a bare address.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        contact_id: Option<Uuid>,
        /// The campaign the job belongs to (`None`: not a campaign's, or written before
        /// events named it).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        campaign: Option<CampaignRef>,
    },
    DeliveryCancelled {
        reason: String,
        /// The campaign the job belongs to (`None`: not a campaign's, or written before
        /// events named it).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        campaign: Option<CampaignRef>,
    },
}

impl DomainEvent for DeliveryEvent {
    fn event_type(&self) -> String {
        match self {
            Self::DeliveryRequested(_) => "DeliveryRequested",
            Self::DeliverySuppressed { .. } => "DeliverySuppressed",
            Self::DeliveryDeferred { .. } => "DeliveryDeferred",
            Self::DeliveryDispatching { .. } => "DeliveryDispatching",
            Self::DeliverySent { .. } => "DeliverySent",
            Self::DeliveryAttemptFailed { .. } => "DeliveryAttemptFailed",
            Self::DeliveryGivenUp { .. } => "DeliveryGivenUp",
            Self::DeliveryInDoubt { .. } => "DeliveryInDoubt",
            Self::DeliveryDelivered { .. } => "DeliveryDelivered",
            Self::DeliveryBounced { .. } => "DeliveryBounced",
            Self::DeliveryComplained { .. } => "DeliveryComplained",
            Self::DeliveryOpened { .. } => "DeliveryOpened",
            Self::DeliveryClicked { .. } => "DeliveryClicked",
            Self::DeliveryUnsubscribed { .. } => "DeliveryUnsubscribed",
            Self::DeliveryCancelled { .. } => "DeliveryCancelled",
        }
        .to_owned()
    }

    fn event_version(&self) -> String {
        "1.0".to_owned()
    }
}
