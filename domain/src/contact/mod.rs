//! The contact: a person a tenant markets to.

mod aggregate;
mod command;
pub mod custom_event;
mod error;
mod event;
mod merge;
mod reach;
mod values;

#[cfg(test)]
mod custom_event_tests;
#[cfg(test)]
mod merge_tests;
#[cfg(test)]
mod tests;

pub use aggregate::Contact;
pub use command::{ContactCommand, ContactPatch, NewContact};
pub use custom_event::{EventName, EventProperties};
pub use error::ContactError;
pub use event::ContactEvent;
pub use merge::{merge, MergeRule, Merged};
pub use reach::{
    short_text, Channel, Consent, ConsentStatus, DncReason, DoNotContact, FrequencyRule,
};
pub use values::{
    FieldKey, FieldValue, Fields, FieldsDiff, InvalidValue, PersonName, Phone, Profile,
    ProfilePatch, Tag,
};

/// Most tags one contact can carry.
pub const MAX_TAGS: usize = 100;
/// Most custom fields one contact can carry.
pub const MAX_FIELDS: usize = 200;
