//! Which fields of which events are personal data: the one table crypto-shredding follows.
//!
//! A field listed as personal is stored as a ciphertext envelope under the stream's key; when
//! the key is gone it reads back as its `erased` value, which the event type still
//! deserializes. Every field of every event type is listed, personal or public, so a new
//! field must be classified (a system test checks each `ContactEvent` variant against this
//! table). An event type missing here is refused on write (fail closed).

/// A personal field and what it reads as after erasure (JSON).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Personal {
    pub field: &'static str,
    pub erased: &'static str,
}

/// The fields of one event type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventPolicy {
    pub event_type: &'static str,
    pub personal: &'static [Personal],
    /// Fields that stay readable (ids, channels, reasons, counters, field *names*).
    pub public: &'static [&'static str],
}

/// The aggregate types whose events hold personal data.
pub const AGGREGATE_TYPES: &[&str] = &["contact", "suppression"];

const EMAIL: &str = r#""erased@erased.invalid""#;
const NULL: &str = "null";
const NO_FIELDS: &str = "{}";
const NO_LIST: &str = "[]";
const TEXT: &str = r#""[erased]""#;

const fn p(field: &'static str, erased: &'static str) -> Personal {
    Personal { field, erased }
}

/// A profile (flattened into created/updated events): phone, time zone and locale.
const PROFILE: [Personal; 3] = [p("phone", NULL), p("time_zone", NULL), p("locale", NULL)];

/// The contact's events. Tags are personal too: free text an operator chose about a person.
pub const CONTACT: &[EventPolicy] = &[
    EventPolicy {
        event_type: "ContactCreated",
        personal: &[
            p("email", EMAIL),
            p("first_name", NULL),
            p("last_name", NULL),
            p("fields", NO_FIELDS),
            p("tags", NO_LIST),
            PROFILE[0],
            PROFILE[1],
            PROFILE[2],
        ],
        public: &[],
    },
    EventPolicy {
        event_type: "ContactUpdated",
        personal: &[
            p("email", EMAIL),
            p("first_name", NULL),
            p("last_name", NULL),
            p("fields_set", NO_FIELDS),
            PROFILE[0],
            PROFILE[1],
            PROFILE[2],
        ],
        public: &["changed", "fields_unset"],
    },
    EventPolicy {
        event_type: "ContactTagsAdded",
        personal: &[p("tags", NO_LIST)],
        public: &[],
    },
    EventPolicy {
        event_type: "ContactTagRemoved",
        personal: &[p("tag", TEXT)],
        public: &[],
    },
    EventPolicy {
        event_type: "ContactConsentChanged",
        personal: &[],
        public: &["channel", "consent"],
    },
    EventPolicy {
        event_type: "ContactDoNotContactAdded",
        personal: &[p("note", NULL)],
        public: &["channel", "reason"],
    },
    EventPolicy {
        event_type: "ContactDoNotContactRemoved",
        personal: &[],
        public: &["channel"],
    },
    EventPolicy {
        event_type: "ContactFrequencyRuleChanged",
        personal: &[],
        public: &["channel", "rule"],
    },
    EventPolicy {
        event_type: "ContactStageChanged",
        personal: &[],
        public: &["from", "to"],
    },
    EventPolicy {
        event_type: "ContactPointsChanged",
        personal: &[],
        public: &["delta", "reason", "total"],
    },
    EventPolicy {
        event_type: "ContactCompanyLinked",
        personal: &[],
        public: &["company_id", "primary"],
    },
    EventPolicy {
        event_type: "ContactCompanyUnlinked",
        personal: &[],
        public: &["company_id"],
    },
    EventPolicy {
        event_type: "ContactOwnerChanged",
        personal: &[],
        public: &["owner"],
    },
    EventPolicy {
        event_type: "ContactNoteAdded",
        personal: &[p("text", TEXT)],
        public: &["note_id"],
    },
    EventPolicy {
        event_type: "ContactNoteRemoved",
        personal: &[],
        public: &["note_id"],
    },
    EventPolicy {
        event_type: "ContactEventRecorded",
        personal: &[p("properties", NO_FIELDS)],
        public: &["name", "occurred_at", "source"],
    },
    EventPolicy {
        event_type: "ContactMerged",
        personal: &[
            p("source_email", EMAIL),
            p("first_name", NULL),
            p("last_name", NULL),
            p("profile", NO_FIELDS),
            p("fields", NO_FIELDS),
            p("tags", NO_LIST),
            p("do_not_contact", NO_FIELDS),
        ],
        public: &[
            "source_id",
            "rule",
            "consent",
            "frequency",
            "stage",
            "points",
            "owner",
            "companies",
            "primary_company",
            "notes",
        ],
    },
    EventPolicy {
        event_type: "ContactMergedInto",
        personal: &[],
        public: &["survivor_id"],
    },
    EventPolicy {
        event_type: "ContactErased",
        personal: &[],
        public: &["also_erased"],
    },
];

/// The suppression list's entries: the address is personal (its entry's id is a keyed digest
/// of it, so an erased person's address stays suppressed without being readable).
pub const SUPPRESSION: &[EventPolicy] = &[
    EventPolicy {
        event_type: "AddressSuppressed",
        personal: &[p("address", TEXT)],
        public: &["channel", "reason", "source"],
    },
    EventPolicy {
        event_type: "AddressUnsuppressed",
        personal: &[],
        public: &["source"],
    },
];

/// Whether events of `aggregate_type` are shredded at all.
pub fn covers(aggregate_type: &str) -> bool {
    AGGREGATE_TYPES.contains(&aggregate_type)
}

/// The policy of `event_type` of `aggregate_type`; `None` for an uncovered aggregate type
/// or an unknown event type (which writers refuse).
pub fn of(aggregate_type: &str, event_type: &str) -> Option<&'static EventPolicy> {
    match aggregate_type {
        "contact" => CONTACT.iter().find(|p| p.event_type == event_type),
        "suppression" => SUPPRESSION.iter().find(|p| p.event_type == event_type),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_erased_value_is_json_and_no_field_is_listed_twice() {
        for e in CONTACT.iter().chain(SUPPRESSION) {
            let mut names: Vec<&str> = e.personal.iter().map(|p| p.field).collect();
            names.extend(e.public);
            let n = names.len();
            names.sort_unstable();
            names.dedup();
            assert_eq!(n, names.len(), "{} lists a field twice", e.event_type);
            for p in e.personal {
                assert!(
                    serde_json::from_str::<serde_json::Value>(p.erased).is_ok(),
                    "{}.{}",
                    e.event_type,
                    p.field
                );
            }
        }
    }
}
