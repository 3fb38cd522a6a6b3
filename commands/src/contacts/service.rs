//! The contacts service: every write to a contact, with typed inputs and [`ContactsError`].
//! The API's handlers, the console, the journey worker and imports all come through here;
//! none of it knows about HTTP (the API maps the error in `contacts::http`).

use std::collections::BTreeSet;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use domain::contact::{
    Contact, ContactCommand, ContactError, ContactPatch, EventName, EventProperties, FieldKey,
    FieldValue, NewContact, Tag,
};
use domain::journey::definition::ContactChange;
use domain::{ContactId, EmailAddress, TenantId};
use event_store::{EventMetadata, StoreError};
use sqlx::PgPool;

use crate::executor::{Accepted, Executor};
use crate::fields::Fields;
use crate::{CommandError, Invalid, Technical};

/// Why a contact write was not carried out.
#[derive(Debug, thiserror::Error)]
pub enum ContactsError {
    /// The input does not fit (each field named); nothing was written.
    #[error(transparent)]
    Invalid(#[from] Invalid),
    /// The contact refused it (a business rule, or no such contact).
    #[error(transparent)]
    Rejected(ContactError),
    /// Another contact of the organization has this email.
    #[error("another contact of this organization has this email")]
    EmailTaken { existing: ContactId },
    /// Another contact has this value of a unique field (`field` is `fields.<key>`).
    #[error("{field}: another contact has this value")]
    FieldTaken { field: String, existing: ContactId },
    /// No such company in the organization (linking a contact to one).
    #[error("no such company")]
    NoSuchCompany,
    /// Other writers kept winning the race for the contact, even after retries.
    #[error("the contact kept changing while the command was applied")]
    Conflict,
    /// The store failed; the cause keeps its own sources.
    #[error("contact command could not be stored")]
    Technical(#[source] Technical),
}

impl From<CommandError<ContactError>> for ContactsError {
    fn from(e: CommandError<ContactError>) -> Self {
        match e {
            CommandError::Invalid(e) => Self::Invalid(e),
            CommandError::Rejected(e) => Self::Rejected(e),
            CommandError::Conflict => Self::Conflict,
            CommandError::Technical(t) => Self::Technical(t),
        }
    }
}

/// Loading the field definitions a write is checked against.
impl From<CommandError<domain::field::FieldSchemaError>> for ContactsError {
    fn from(e: CommandError<domain::field::FieldSchemaError>) -> Self {
        // Loading never refuses; if it ever did, it is ours to look into.
        e.within::<ContactError>().into()
    }
}

impl From<StoreError> for ContactsError {
    fn from(e: StoreError) -> Self {
        Self::Technical(Box::new(e))
    }
}

impl From<sqlx::Error> for ContactsError {
    fn from(e: sqlx::Error) -> Self {
        Self::Technical(Box::new(e))
    }
}

impl ContactsError {
    /// Whether retrying the same write later can succeed (a store failure or a race), as
    /// opposed to a refusal that will stay one.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Conflict | Self::Technical(_))
    }
}

/// A custom event (`signed_up`, `purchase`) checked: its name, properties, and when it
/// happened (check a caller's time with `domain::contact::custom_event::occurred_at`).
#[derive(Debug, Clone)]
pub struct CustomEvent {
    pub name: EventName,
    pub properties: EventProperties,
    pub occurred_at: DateTime<Utc>,
}

/// The contacts of every organization: their commands, with the field definitions they are
/// checked against and the reservations that keep emails and unique values to one contact.
#[derive(Clone)]
pub struct Contacts {
    pub(crate) pool: PgPool,
    pub(crate) executor: Arc<Executor<Contact>>,
    pub(crate) fields: Fields,
}

impl Contacts {
    pub fn new(pool: PgPool, executor: Arc<Executor<Contact>>, fields: Fields) -> Self {
        Self {
            pool,
            executor,
            fields,
        }
    }

    /// The command runner underneath (for the write paths that decide over several
    /// aggregates, such as unsubscribing from a delivery).
    pub fn executor(&self) -> &Arc<Executor<Contact>> {
        &self.executor
    }

    /// Contact `id` as the log has it now (a contact that never existed has `exists` false).
    pub async fn get(&self, tenant: TenantId, id: ContactId) -> Result<Contact, ContactsError> {
        Ok(self.executor.load(tenant.0, id.0).await?)
    }

    /// Creates a contact; its fields are checked against the organization's definitions
    /// (defaults filled in), its email and unique values reserved.
    pub async fn create(
        &self,
        tenant: TenantId,
        mut new: NewContact,
        meta: &EventMetadata,
    ) -> Result<Accepted, ContactsError> {
        let schema = self.fields.schema(tenant).await?;
        Invalid::check(schema.check_new(&mut new.fields))?;
        self.create_checked(&schema, tenant, ContactId::generate(), new, meta)
            .await?
            .map_err(|existing| ContactsError::EmailTaken { existing })
    }

    /// Changes a contact's email, names, profile or fields (checked against the definitions).
    pub async fn update(
        &self,
        tenant: TenantId,
        id: ContactId,
        mut patch: ContactPatch,
        meta: &EventMetadata,
    ) -> Result<Accepted, ContactsError> {
        let schema = self.fields.schema(tenant).await?;
        Invalid::check(schema.check_patch(&mut patch.fields))?;
        self.update_checked(&schema, tenant, id, patch, meta).await
    }

    /// Runs one command on contact `id` (tags, consent, do-not-contact, frequency, stage,
    /// owner, notes, points): the commands that need no check beyond the contact's own.
    pub async fn execute(
        &self,
        tenant: TenantId,
        id: ContactId,
        command: ContactCommand,
        meta: &EventMetadata,
    ) -> Result<Accepted, ContactsError> {
        Ok(self.executor.execute(tenant.0, id.0, command, meta).await?)
    }

    /// Adds `tags` to contact `id` (tags it has already are ignored).
    pub async fn add_tags(
        &self,
        tenant: TenantId,
        id: ContactId,
        tags: BTreeSet<Tag>,
        meta: &EventMetadata,
    ) -> Result<Accepted, ContactsError> {
        if tags.is_empty() {
            return Err(Invalid::one("tags", "give at least one tag").into());
        }
        self.execute(tenant, id, ContactCommand::AddTags(tags), meta)
            .await
    }

    /// Records custom event `event` on contact `id`, coming from `source` (`api`,
    /// `journey:<id>`). A merged contact's event is recorded on its survivor, whose id the
    /// answer carries.
    #[tracing::instrument(level = "debug", skip_all, fields(%tenant, %id, name = event.name.as_str()), err(level = "debug"))]
    pub async fn record_event(
        &self,
        tenant: TenantId,
        id: ContactId,
        event: CustomEvent,
        source: Option<String>,
        meta: &EventMetadata,
    ) -> Result<Accepted, ContactsError> {
        let command = ContactCommand::RecordEvent {
            name: event.name,
            properties: event.properties,
            occurred_at: event.occurred_at,
            source,
        };
        self.execute(tenant, id, command, meta).await
    }

    /// The contact of `tenant` with `email`, if any.
    pub async fn owner_of(
        &self,
        tenant: TenantId,
        email: &EmailAddress,
    ) -> Result<Option<ContactId>, ContactsError> {
        super::unique::owner_of(&self.pool, tenant, email.as_str()).await
    }

    /// What a journey's `action_update_contact` step does to the contact: fields set
    /// (checked against the definitions, unique values claimed), tags added and removed.
    /// Every change sets a value, so applying it twice records nothing the second time.
    pub async fn change(
        &self,
        tenant: TenantId,
        id: ContactId,
        change: &ContactChange,
        meta: &EventMetadata,
    ) -> Result<(), ContactsError> {
        let mut invalid = Vec::new();
        let mut patch = ContactPatch::default();
        for (k, v) in &change.fields {
            let parsed = FieldKey::parse(k)
                .and_then(|key| FieldValue::from_json(&key, v).map(|value| (key, value)));
            match parsed {
                Ok((key, value)) => {
                    patch.fields.insert(key, value);
                }
                Err(e) => invalid.push(e),
            }
        }
        let mut tags = |raw: &[String]| -> BTreeSet<Tag> {
            raw.iter()
                .filter_map(|t| Tag::parse(t).map_err(|e| invalid.push(e)).ok())
                .collect()
        };
        let (add, remove) = (tags(&change.add_tags), tags(&change.remove_tags));
        if !invalid.is_empty() {
            return Err(Invalid(invalid).into());
        }
        if !patch.fields.is_empty() {
            self.update(tenant, id, patch, meta).await?;
        }
        if !add.is_empty() {
            self.add_tags(tenant, id, add, meta).await?;
        }
        for tag in remove {
            self.execute(tenant, id, ContactCommand::RemoveTag(tag), meta)
                .await?;
        }
        Ok(())
    }
}
