use std::collections::{BTreeMap, BTreeSet};

use super::{FieldKey, FieldValue, Fields, PersonName, Tag};
use crate::EmailAddress;

/// What can be asked of a contact. Values arrive validated (newtypes); the aggregate
/// decides what they mean for its current state.
#[derive(Debug, Clone, PartialEq)]
pub enum ContactCommand {
    Create(NewContact),
    Update(ContactPatch),
    AddTags(BTreeSet<Tag>),
    RemoveTag(Tag),
}

#[derive(Debug, Clone, PartialEq)]
pub struct NewContact {
    pub email: EmailAddress,
    pub first_name: Option<PersonName>,
    pub last_name: Option<PersonName>,
    pub fields: Fields,
    pub tags: BTreeSet<Tag>,
}

/// A partial update: absent means "leave as is"; `Some(None)` clears a name or a field.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ContactPatch {
    pub email: Option<EmailAddress>,
    pub first_name: Option<Option<PersonName>>,
    pub last_name: Option<Option<PersonName>>,
    pub fields: BTreeMap<FieldKey, Option<FieldValue>>,
}
