use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};

use super::{
    Channel, ConsentStatus, DncReason, EventName, EventProperties, FieldKey, FieldValue, Fields,
    FrequencyRule, PersonName, ProfilePatch, Tag,
};
use crate::EmailAddress;

/// What can be asked of a contact. Values arrive validated (newtypes); the aggregate
/// decides what they mean for its current state.
#[derive(Debug, Clone, PartialEq)]
pub enum ContactCommand {
    Create(NewContact),
    Update(ContactPatch),
    AddTags(BTreeSet<Tag>),
    RemoveTag(Tag),
    /// Record what the contact said about `channel` (`source`: where, `at`: when).
    SetConsent {
        channel: Channel,
        status: ConsentStatus,
        source: String,
        at: DateTime<Utc>,
    },
    /// Mark `channel` as not to be used.
    AddDoNotContact {
        channel: Channel,
        reason: DncReason,
        note: Option<String>,
    },
    RemoveDoNotContact(Channel),
    /// `None` removes the rule.
    SetFrequencyRule {
        channel: Channel,
        rule: Option<FrequencyRule>,
    },
    ChangeStage(String),
    /// Add (or, negative, subtract) points, with the reason.
    ChangePoints {
        delta: i64,
        reason: String,
    },
    /// Link the contact to a company (which the caller checked exists), optionally as its
    /// primary company.
    LinkCompany {
        company_id: uuid::Uuid,
        primary: bool,
    },
    UnlinkCompany(uuid::Uuid),
    /// Make a member of the organization (checked by the caller) the contact's owner, or
    /// (`None`) leave it without one.
    AssignOwner(Option<uuid::Uuid>),
    /// Add a note (at most 10,000 characters).
    AddNote {
        note_id: uuid::Uuid,
        text: String,
    },
    RemoveNote(uuid::Uuid),
    /// Record a custom event (`signed_up`, `purchase`): what the contact did or what
    /// happened to it, `occurred_at` (checked by the caller with
    /// [`super::custom_event::occurred_at`]), from `source` (`api`, `journey:<id>`).
    RecordEvent {
        name: EventName,
        properties: EventProperties,
        occurred_at: DateTime<Utc>,
        source: Option<String>,
    },
    /// Erase the contact (GDPR) together with the contacts merged into it, directly or along
    /// a chain (`also_erased`, which the caller looked up): see [`super::Contact::erase`].
    Erase {
        also_erased: Vec<uuid::Uuid>,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct NewContact {
    pub email: EmailAddress,
    pub first_name: Option<PersonName>,
    pub last_name: Option<PersonName>,
    pub fields: Fields,
    pub tags: BTreeSet<Tag>,
    pub profile: ProfilePatch,
}

/// A partial update: absent means "leave as is"; `Some(None)` clears a name or a field.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ContactPatch {
    pub email: Option<EmailAddress>,
    pub first_name: Option<Option<PersonName>>,
    pub last_name: Option<Option<PersonName>>,
    pub fields: BTreeMap<FieldKey, Option<FieldValue>>,
    pub profile: ProfilePatch,
}
