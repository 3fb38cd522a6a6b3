use std::collections::BTreeMap;

use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};

use super::{
    Channel, Consent, DncReason, DoNotContact, FieldValue, FrequencyRule, MergeRule, Profile,
};

/// Facts about a contact. Type names never change; shapes evolve through upcasters.
/// Events carry derived values (the whole new email and names) so projections stay dumb.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ContactEvent {
    ContactCreated {
        email: String,
        first_name: Option<String>,
        last_name: Option<String>,
        fields: BTreeMap<String, FieldValue>,
        tags: Vec<String>,
        #[serde(flatten)]
        profile: Profile,
    },
    ContactUpdated {
        /// Names of what changed: `email`, `first_name`, `last_name`, `fields.<key>`.
        changed: Vec<String>,
        email: String,
        first_name: Option<String>,
        last_name: Option<String>,
        fields_set: BTreeMap<String, FieldValue>,
        fields_unset: Vec<String>,
        /// The whole profile after the change.
        #[serde(flatten)]
        profile: Profile,
    },
    ContactTagsAdded {
        tags: Vec<String>,
    },
    ContactTagRemoved {
        tag: String,
    },
    ContactConsentChanged {
        channel: Channel,
        consent: Consent,
    },
    ContactDoNotContactAdded {
        channel: Channel,
        reason: DncReason,
        note: Option<String>,
    },
    ContactDoNotContactRemoved {
        channel: Channel,
    },
    ContactFrequencyRuleChanged {
        channel: Channel,
        rule: Option<FrequencyRule>,
    },
    ContactStageChanged {
        from: Option<String>,
        to: String,
    },
    ContactPointsChanged {
        delta: i64,
        reason: String,
        /// The total after the change.
        total: i64,
    },
    ContactCompanyLinked {
        company_id: uuid::Uuid,
        /// The contact's primary company now (the previous primary, if any, is no longer).
        primary: bool,
    },
    ContactCompanyUnlinked {
        company_id: uuid::Uuid,
    },
    ContactOwnerChanged {
        /// The user who owns the contact now, if any.
        owner: Option<uuid::Uuid>,
    },
    ContactNoteAdded {
        note_id: uuid::Uuid,
        text: String,
    },
    ContactNoteRemoved {
        note_id: uuid::Uuid,
    },
    /// A custom event: something the contact did or that happened to it, named by the
    /// organization. `properties` are personal (sealed in the log, `{}` once erased).
    ContactEventRecorded {
        name: String,
        properties: serde_json::Map<String, serde_json::Value>,
        occurred_at: chrono::DateTime<chrono::Utc>,
        /// Where it came from: `api`, `journey:<id>`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        source: Option<String>,
    },
    /// Contact `source_id` was merged into this one. Carries what this contact has after the
    /// merge (whole values, not differences); its email is unchanged.
    ContactMerged {
        source_id: uuid::Uuid,
        rule: MergeRule,
        /// The source's email, which resolves to this contact from now on.
        source_email: String,
        first_name: Option<String>,
        last_name: Option<String>,
        profile: Profile,
        fields: BTreeMap<String, FieldValue>,
        tags: Vec<String>,
        consent: BTreeMap<Channel, Consent>,
        do_not_contact: BTreeMap<Channel, DoNotContact>,
        frequency: BTreeMap<Channel, FrequencyRule>,
        stage: Option<String>,
        /// The total after the merge (the sum of both).
        points: i64,
        owner: Option<uuid::Uuid>,
        companies: Vec<uuid::Uuid>,
        primary_company: Option<uuid::Uuid>,
        /// The source's notes, which are this contact's from now on.
        notes: Vec<uuid::Uuid>,
    },
    /// This contact was merged into `survivor_id`: the stream's last event. Every later
    /// command is refused with `ContactError::MergedInto`, which the command layer follows.
    ContactMergedInto {
        survivor_id: uuid::Uuid,
    },
    /// The contact was erased (GDPR): its key, and those of the contacts merged into it
    /// (`also_erased`), were deleted with this event, so every personal value of these
    /// streams reads as erased from now on. Carries no personal data. The stream's last
    /// event: every later command is refused with `ContactError::Erased`.
    ContactErased {
        also_erased: Vec<uuid::Uuid>,
    },
}

impl DomainEvent for ContactEvent {
    fn event_type(&self) -> String {
        match self {
            Self::ContactCreated { .. } => "ContactCreated",
            Self::ContactUpdated { .. } => "ContactUpdated",
            Self::ContactTagsAdded { .. } => "ContactTagsAdded",
            Self::ContactTagRemoved { .. } => "ContactTagRemoved",
            Self::ContactConsentChanged { .. } => "ContactConsentChanged",
            Self::ContactDoNotContactAdded { .. } => "ContactDoNotContactAdded",
            Self::ContactDoNotContactRemoved { .. } => "ContactDoNotContactRemoved",
            Self::ContactFrequencyRuleChanged { .. } => "ContactFrequencyRuleChanged",
            Self::ContactStageChanged { .. } => "ContactStageChanged",
            Self::ContactPointsChanged { .. } => "ContactPointsChanged",
            Self::ContactCompanyLinked { .. } => "ContactCompanyLinked",
            Self::ContactCompanyUnlinked { .. } => "ContactCompanyUnlinked",
            Self::ContactOwnerChanged { .. } => "ContactOwnerChanged",
            Self::ContactNoteAdded { .. } => "ContactNoteAdded",
            Self::ContactNoteRemoved { .. } => "ContactNoteRemoved",
            Self::ContactEventRecorded { .. } => "ContactEventRecorded",
            Self::ContactMerged { .. } => "ContactMerged",
            Self::ContactMergedInto { .. } => "ContactMergedInto",
            Self::ContactErased { .. } => "ContactErased",
        }
        .to_owned()
    }

    fn event_version(&self) -> String {
        "1.0".to_owned()
    }
}
