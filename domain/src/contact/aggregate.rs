use std::collections::{BTreeMap, BTreeSet};

use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use serde::{Deserialize, Serialize};

use super::{
    Channel, Consent, ContactCommand, ContactError, ContactEvent, ContactPatch, DoNotContact,
    FieldValue, FieldsDiff, FrequencyRule, NewContact, Profile, MAX_FIELDS, MAX_TAGS,
};

/// The write model of a contact: only what its rules need.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Contact {
    pub exists: bool,
    pub email: String,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub fields: BTreeMap<String, FieldValue>,
    pub tags: BTreeSet<String>,
    #[serde(default)]
    pub consent: BTreeMap<Channel, Consent>,
    #[serde(default)]
    pub do_not_contact: BTreeMap<Channel, DoNotContact>,
    #[serde(default)]
    pub frequency: BTreeMap<Channel, FrequencyRule>,
    #[serde(default)]
    pub stage: Option<String>,
    #[serde(default)]
    pub points: i64,
    #[serde(default)]
    pub profile: Profile,
    #[serde(default)]
    pub companies: BTreeSet<uuid::Uuid>,
    #[serde(default)]
    pub primary_company: Option<uuid::Uuid>,
    #[serde(default)]
    pub owner: Option<uuid::Uuid>,
    #[serde(default)]
    pub notes: BTreeSet<uuid::Uuid>,
    /// Set by the stream's last event when the contact was merged into another one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merged_into: Option<uuid::Uuid>,
    /// The contacts merged directly into this one (their streams hold this person's data too).
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub merged_from: BTreeSet<uuid::Uuid>,
    /// Set by the stream's last event when the contact was erased.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub erased: bool,
}

/// Most notes one contact can carry.
pub const MAX_NOTES: usize = 1000;

/// The largest total of points a contact can have (either way).
pub const MAX_POINTS: i64 = 1_000_000_000;

impl Aggregate for Contact {
    const TYPE: &'static str = "contact";
    type Command = ContactCommand;
    type Event = ContactEvent;
    type Error = ContactError;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        if self.erased {
            return Err(ContactError::Erased);
        }
        if let Some(survivor_id) = self.merged_into {
            return Err(ContactError::MergedInto { survivor_id });
        }
        let event = match command {
            ContactCommand::Erase { also_erased } => Some(self.erase(also_erased)?),
            ContactCommand::Create(new) => self.create(new)?,
            ContactCommand::Update(patch) => self.update(patch)?,
            ContactCommand::AddTags(tags) => {
                self.require_exists()?;
                let added: Vec<String> = tags
                    .into_iter()
                    .map(|t| t.as_str().to_owned())
                    .filter(|t| !self.tags.contains(t))
                    .collect();
                if self.tags.len() + added.len() > MAX_TAGS {
                    return Err(ContactError::TooManyTags { max: MAX_TAGS });
                }
                (!added.is_empty()).then_some(ContactEvent::ContactTagsAdded { tags: added })
            }
            ContactCommand::RemoveTag(tag) => {
                self.require_exists()?;
                self.tags
                    .contains(tag.as_str())
                    .then(|| ContactEvent::ContactTagRemoved {
                        tag: tag.as_str().to_owned(),
                    })
            }
            ContactCommand::RecordEvent {
                name,
                properties,
                occurred_at,
                source,
            } => {
                self.require_exists()?;
                Some(ContactEvent::ContactEventRecorded {
                    name: name.into(),
                    properties: properties.into_map(),
                    occurred_at,
                    source,
                })
            }
            other => {
                self.require_exists()?;
                self.reach(other)?
            }
        };
        if let Some(event) = event {
            sink.write(event, self).await;
        }
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        match event {
            ContactEvent::ContactCreated {
                email,
                first_name,
                last_name,
                fields,
                tags,
                profile,
            } => {
                self.exists = true;
                self.profile = profile;
                self.email = email;
                self.first_name = first_name;
                self.last_name = last_name;
                self.fields = fields;
                self.tags = tags.into_iter().collect();
            }
            ContactEvent::ContactUpdated {
                email,
                first_name,
                last_name,
                fields_set,
                fields_unset,
                profile,
                ..
            } => {
                self.profile = profile;
                self.email = email;
                self.first_name = first_name;
                self.last_name = last_name;
                self.fields.extend(fields_set);
                for k in fields_unset {
                    self.fields.remove(&k);
                }
            }
            ContactEvent::ContactTagsAdded { tags } => self.tags.extend(tags),
            ContactEvent::ContactTagRemoved { tag } => {
                self.tags.remove(&tag);
            }
            ContactEvent::ContactConsentChanged { channel, consent } => {
                self.consent.insert(channel, consent);
            }
            ContactEvent::ContactDoNotContactAdded {
                channel,
                reason,
                note,
            } => {
                self.do_not_contact
                    .insert(channel, DoNotContact { reason, note });
            }
            ContactEvent::ContactDoNotContactRemoved { channel } => {
                self.do_not_contact.remove(&channel);
            }
            ContactEvent::ContactFrequencyRuleChanged { channel, rule } => match rule {
                Some(r) => {
                    self.frequency.insert(channel, r);
                }
                None => {
                    self.frequency.remove(&channel);
                }
            },
            ContactEvent::ContactStageChanged { to, .. } => self.stage = Some(to),
            ContactEvent::ContactPointsChanged { total, .. } => self.points = total,
            ContactEvent::ContactCompanyLinked {
                company_id,
                primary,
            } => {
                self.companies.insert(company_id);
                if primary {
                    self.primary_company = Some(company_id);
                } else if self.primary_company == Some(company_id) {
                    self.primary_company = None;
                }
            }
            ContactEvent::ContactOwnerChanged { owner } => self.owner = owner,
            ContactEvent::ContactNoteAdded { note_id, .. } => {
                self.notes.insert(note_id);
            }
            ContactEvent::ContactNoteRemoved { note_id } => {
                self.notes.remove(&note_id);
            }
            ContactEvent::ContactCompanyUnlinked { company_id } => {
                self.companies.remove(&company_id);
                if self.primary_company == Some(company_id) {
                    self.primary_company = None;
                }
            }
            ContactEvent::ContactMerged {
                first_name,
                last_name,
                profile,
                fields,
                tags,
                consent,
                do_not_contact,
                frequency,
                stage,
                points,
                owner,
                companies,
                primary_company,
                notes,
                source_id,
                ..
            } => {
                self.merged_from.insert(source_id);
                self.first_name = first_name;
                self.last_name = last_name;
                self.profile = profile;
                self.fields = fields;
                self.tags = tags.into_iter().collect();
                self.consent = consent;
                self.do_not_contact = do_not_contact;
                self.frequency = frequency;
                self.stage = stage;
                self.points = points;
                self.owner = owner;
                self.companies = companies.into_iter().collect();
                self.primary_company = primary_company;
                self.notes.extend(notes);
            }
            ContactEvent::ContactMergedInto { survivor_id } => {
                self.merged_into = Some(survivor_id);
            }
            // A fact about what the contact did: nothing the contact's rules depend on.
            ContactEvent::ContactEventRecorded { .. } => {}
            ContactEvent::ContactErased { .. } => self.erased = true,
        }
    }
}

impl Contact {
    /// Consent, do-not-contact, frequency, stage and points: only what differs is recorded.
    fn reach(&self, command: ContactCommand) -> Result<Option<ContactEvent>, ContactError> {
        use ContactCommand as C;
        use ContactEvent as E;
        Ok(match command {
            C::SetConsent {
                channel,
                status,
                source,
                at,
            } => {
                let same = self
                    .consent
                    .get(&channel)
                    .is_some_and(|c| c.status == status && c.source == source);
                (!same).then_some(E::ContactConsentChanged {
                    channel,
                    consent: Consent { status, source, at },
                })
            }
            C::AddDoNotContact {
                channel,
                reason,
                note,
            } => {
                let mark = DoNotContact { reason, note };
                (self.do_not_contact.get(&channel) != Some(&mark)).then_some(
                    E::ContactDoNotContactAdded {
                        channel,
                        reason: mark.reason,
                        note: mark.note,
                    },
                )
            }
            C::RemoveDoNotContact(channel) => self
                .do_not_contact
                .contains_key(&channel)
                .then_some(E::ContactDoNotContactRemoved { channel }),
            C::SetFrequencyRule { channel, rule } => (self.frequency.get(&channel)
                != rule.as_ref())
            .then_some(E::ContactFrequencyRuleChanged { channel, rule }),
            C::ChangeStage(to) => {
                (self.stage.as_deref() != Some(to.as_str())).then(|| E::ContactStageChanged {
                    from: self.stage.clone(),
                    to,
                })
            }
            C::ChangePoints { delta, reason } => {
                let total = self
                    .points
                    .checked_add(delta)
                    .filter(|t| t.abs() <= MAX_POINTS)
                    .ok_or(ContactError::PointsOutOfRange)?;
                (delta != 0).then_some(E::ContactPointsChanged {
                    delta,
                    reason,
                    total,
                })
            }
            C::LinkCompany {
                company_id,
                primary,
            } => {
                let same = self.companies.contains(&company_id)
                    && (self.primary_company == Some(company_id)) == primary;
                (!same).then_some(E::ContactCompanyLinked {
                    company_id,
                    primary,
                })
            }
            C::UnlinkCompany(company_id) => self
                .companies
                .contains(&company_id)
                .then_some(E::ContactCompanyUnlinked { company_id }),
            C::AddNote { note_id, text } => {
                if self.notes.len() >= MAX_NOTES {
                    return Err(ContactError::TooManyNotes { max: MAX_NOTES });
                }
                (!self.notes.contains(&note_id)).then_some(E::ContactNoteAdded { note_id, text })
            }
            C::RemoveNote(note_id) => {
                if !self.notes.contains(&note_id) {
                    return Err(ContactError::NoteNotFound);
                }
                Some(E::ContactNoteRemoved { note_id })
            }
            C::AssignOwner(owner) => {
                (self.owner != owner).then_some(E::ContactOwnerChanged { owner })
            }
            C::Create(_)
            | C::Update(_)
            | C::AddTags(_)
            | C::RemoveTag(_)
            | C::RecordEvent { .. }
            | C::Erase { .. } => None,
        })
    }

    /// Decides the erasure of this contact and of `also_erased`, the contacts merged into it
    /// (directly or along a chain; the caller follows `merged_from`). Refused for a contact
    /// that does not exist, is already erased, or was merged into another one (erase the
    /// survivor: that erases this one too).
    pub fn erase(&self, also_erased: Vec<uuid::Uuid>) -> Result<ContactEvent, ContactError> {
        if self.erased {
            return Err(ContactError::Erased);
        }
        if let Some(survivor_id) = self.merged_into {
            return Err(ContactError::MergedInto { survivor_id });
        }
        self.require_exists()?;
        Ok(ContactEvent::ContactErased { also_erased })
    }

    fn require_exists(&self) -> Result<(), ContactError> {
        if self.exists {
            Ok(())
        } else {
            Err(ContactError::NotFound)
        }
    }

    fn create(&self, new: NewContact) -> Result<Option<ContactEvent>, ContactError> {
        if self.exists {
            return Err(ContactError::AlreadyExists);
        }
        if new.tags.len() > MAX_TAGS {
            return Err(ContactError::TooManyTags { max: MAX_TAGS });
        }
        if new.fields.len() > MAX_FIELDS {
            return Err(ContactError::TooManyFields { max: MAX_FIELDS });
        }
        Ok(Some(ContactEvent::ContactCreated {
            email: new.email.into(),
            first_name: new.first_name.map(|n| n.as_str().to_owned()),
            last_name: new.last_name.map(|n| n.as_str().to_owned()),
            fields: new
                .fields
                .into_iter()
                .map(|(k, v)| (k.as_str().to_owned(), v))
                .collect(),
            tags: new
                .tags
                .into_iter()
                .map(|t| t.as_str().to_owned())
                .collect(),
            profile: new.profile.apply_to(&Profile::default()).0,
        }))
    }

    /// Emits only what differs from the current state; an update that changes nothing
    /// records nothing.
    fn update(&self, patch: ContactPatch) -> Result<Option<ContactEvent>, ContactError> {
        self.require_exists()?;
        let mut changed = Vec::new();
        let mut email = self.email.clone();
        if let Some(e) = patch.email {
            if e.as_str() != email {
                email = e.into();
                changed.push("email".to_owned());
            }
        }
        let mut first_name = self.first_name.clone();
        if let Some(n) = patch.first_name {
            let n = n.map(|n| n.as_str().to_owned());
            if n != first_name {
                first_name = n;
                changed.push("first_name".to_owned());
            }
        }
        let mut last_name = self.last_name.clone();
        if let Some(n) = patch.last_name {
            let n = n.map(|n| n.as_str().to_owned());
            if n != last_name {
                last_name = n;
                changed.push("last_name".to_owned());
            }
        }
        let (profile, profile_changed) = patch.profile.apply_to(&self.profile);
        changed.extend(profile_changed);
        let diff = FieldsDiff::of(&self.fields, patch.fields);
        if diff.count_after > MAX_FIELDS {
            return Err(ContactError::TooManyFields { max: MAX_FIELDS });
        }
        changed.extend(diff.changed);
        let (fields_set, fields_unset) = (diff.set, diff.unset);
        if changed.is_empty() {
            return Ok(None);
        }
        Ok(Some(ContactEvent::ContactUpdated {
            changed,
            email,
            first_name,
            last_name,
            fields_set,
            fields_unset,
            profile,
        }))
    }
}
