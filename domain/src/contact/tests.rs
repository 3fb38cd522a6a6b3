#![allow(clippy::unwrap_used)]
use std::collections::BTreeMap;

use cqrs_es::test::TestFramework;

use super::*;
use crate::EmailAddress;

type ContactTest = TestFramework<Contact>;

fn email(s: &str) -> EmailAddress {
    EmailAddress::parse(s).unwrap()
}

fn tag(s: &str) -> Tag {
    Tag::parse(s).unwrap()
}

fn key(s: &str) -> FieldKey {
    FieldKey::parse(s).unwrap()
}

fn ada() -> NewContact {
    NewContact {
        email: email("ada@example.org"),
        first_name: PersonName::parse("first_name", "Ada").unwrap(),
        last_name: None,
        fields: [(key("plan"), FieldValue::Text("pro".into()))].into(),
        tags: [tag("vip")].into(),
        profile: Default::default(),
    }
}

fn created() -> ContactEvent {
    ContactEvent::ContactCreated {
        email: "ada@example.org".into(),
        first_name: Some("Ada".into()),
        last_name: None,
        fields: [("plan".to_owned(), FieldValue::Text("pro".into()))].into(),
        tags: vec!["vip".into()],
        profile: Default::default(),
    }
}

#[test]
fn a_new_contact_is_created_with_what_was_given() {
    ContactTest::with(())
        .given_no_previous_events()
        .when(ContactCommand::Create(ada()))
        .then_expect_events(vec![created()]);
}

#[test]
fn a_contact_cannot_be_created_twice() {
    ContactTest::with(())
        .given(vec![created()])
        .when(ContactCommand::Create(ada()))
        .then_expect_error(ContactError::AlreadyExists);
}

#[test]
fn a_contact_with_too_many_tags_is_refused() {
    let mut new = ada();
    new.tags = (0..=MAX_TAGS).map(|i| tag(&format!("t{i}"))).collect();
    ContactTest::with(())
        .given_no_previous_events()
        .when(ContactCommand::Create(new))
        .then_expect_error(ContactError::TooManyTags { max: MAX_TAGS });
}

#[test]
fn a_contact_with_too_many_fields_is_refused() {
    let mut new = ada();
    new.fields = (0..=MAX_FIELDS)
        .map(|i| (key(&format!("f{i}")), FieldValue::Bool(true)))
        .collect();
    ContactTest::with(())
        .given_no_previous_events()
        .when(ContactCommand::Create(new))
        .then_expect_error(ContactError::TooManyFields { max: MAX_FIELDS });
}

#[test]
fn an_update_records_only_what_changed_with_the_resulting_values() {
    let patch = ContactPatch {
        email: Some(email("ada@example.org")),
        first_name: Some(None),
        last_name: Some(PersonName::parse("last_name", "Lovelace").unwrap()),
        fields: [
            (key("plan"), None),
            (key("city"), Some(FieldValue::Text("London".into()))),
        ]
        .into(),
        profile: ProfilePatch::default(),
    };
    ContactTest::with(())
        .given(vec![created()])
        .when(ContactCommand::Update(patch))
        .then_expect_events(vec![ContactEvent::ContactUpdated {
            changed: vec![
                "first_name".into(),
                "last_name".into(),
                "fields.city".into(),
                "fields.plan".into(),
            ],
            email: "ada@example.org".into(),
            first_name: None,
            last_name: Some("Lovelace".into()),
            fields_set: [("city".to_owned(), FieldValue::Text("London".into()))].into(),
            fields_unset: vec!["plan".into()],
            profile: Default::default(),
        }]);
}

#[test]
fn an_update_that_changes_nothing_records_nothing() {
    let patch = ContactPatch {
        email: Some(email("ADA@example.org")),
        fields: [(key("plan"), Some(FieldValue::Text("pro".into())))].into(),
        ..Default::default()
    };
    ContactTest::with(())
        .given(vec![created()])
        .when(ContactCommand::Update(patch))
        .then_expect_events(vec![]);
}

#[test]
fn an_unknown_contact_cannot_be_updated() {
    ContactTest::with(())
        .given_no_previous_events()
        .when(ContactCommand::Update(ContactPatch::default()))
        .then_expect_error(ContactError::NotFound);
}

#[test]
fn an_unknown_contact_cannot_be_tagged() {
    ContactTest::with(())
        .given_no_previous_events()
        .when(ContactCommand::AddTags([tag("x")].into()))
        .then_expect_error(ContactError::NotFound);
}

#[test]
fn tags_already_carried_are_not_added_again() {
    ContactTest::with(())
        .given(vec![created()])
        .when(ContactCommand::AddTags([tag("vip"), tag("new")].into()))
        .then_expect_events(vec![ContactEvent::ContactTagsAdded {
            tags: vec!["new".into()],
        }]);
}

#[test]
fn tagging_past_the_limit_is_refused() {
    let tags: Vec<String> = (1..MAX_TAGS).map(|i| format!("t{i}")).collect();
    ContactTest::with(())
        .given(vec![created(), ContactEvent::ContactTagsAdded { tags }])
        .when(ContactCommand::AddTags([tag("one-too-many")].into()))
        .then_expect_error(ContactError::TooManyTags { max: MAX_TAGS });
}

#[test]
fn removing_a_carried_tag_records_it() {
    ContactTest::with(())
        .given(vec![created()])
        .when(ContactCommand::RemoveTag(tag("vip")))
        .then_expect_events(vec![ContactEvent::ContactTagRemoved { tag: "vip".into() }]);
}

#[test]
fn removing_a_tag_not_carried_records_nothing() {
    ContactTest::with(())
        .given(vec![created()])
        .when(ContactCommand::RemoveTag(tag("absent")))
        .then_expect_events(vec![]);
}

#[test]
fn objects_are_not_a_field_type() {
    let err = FieldValue::from_json(&key("address"), &serde_json::json!({"city": "x"}));
    assert_eq!(err.map_err(|e| e.field), Err("fields.address".to_owned()));
}

#[test]
fn field_keys_are_lower_case_identifiers() {
    assert!(FieldKey::parse("Plan").is_err());
    assert!(FieldKey::parse("9lives").is_err());
    assert!(FieldKey::parse("plan_2").is_ok());
}

/// The stored JSON of each event is a contract: changing it breaks old streams.
#[test]
fn event_payloads_keep_their_json_shape() {
    let events = vec![
        created(),
        ContactEvent::ContactUpdated {
            changed: vec!["last_name".into()],
            email: "ada@example.org".into(),
            first_name: Some("Ada".into()),
            last_name: Some("L".into()),
            fields_set: BTreeMap::new(),
            fields_unset: vec![],
            profile: Default::default(),
        },
        ContactEvent::ContactTagsAdded {
            tags: vec!["a".into()],
        },
        ContactEvent::ContactTagRemoved { tag: "a".into() },
        ContactEvent::ContactMerged {
            source_id: uuid::Uuid::from_u128(0xB),
            rule: MergeRule::PreferSource,
            source_email: "augusta@example.org".into(),
            first_name: Some("Ada".into()),
            last_name: None,
            profile: Profile {
                phone: None,
                time_zone: Some("Europe/London".into()),
                locale: None,
            },
            fields: [("plan".to_owned(), FieldValue::Text("pro".into()))].into(),
            tags: vec!["vip".into()],
            consent: [(
                Channel::Email,
                Consent {
                    status: ConsentStatus::OptedIn,
                    source: "form".into(),
                    at: at(),
                },
            )]
            .into(),
            do_not_contact: [(
                Channel::Sms,
                DoNotContact {
                    reason: DncReason::Bounced,
                    note: None,
                },
            )]
            .into(),
            frequency: [(
                Channel::Email,
                FrequencyRule {
                    max: 2,
                    per_days: 7,
                },
            )]
            .into(),
            stage: Some("lead".into()),
            points: 12,
            owner: None,
            companies: vec![uuid::Uuid::from_u128(1)],
            primary_company: Some(uuid::Uuid::from_u128(1)),
            notes: vec![uuid::Uuid::from_u128(2)],
        },
        ContactEvent::ContactMergedInto {
            survivor_id: uuid::Uuid::from_u128(0xA),
        },
        ContactEvent::ContactEventRecorded {
            name: "purchase".into(),
            properties: serde_json::json!({"total": 42, "items": [{"sku": "b-1"}]})
                .as_object()
                .unwrap()
                .clone(),
            occurred_at: at(),
            source: Some("journey:00000000-0000-0000-0000-00000000000c".into()),
        },
    ];
    let json = serde_json::to_string(&events).unwrap();
    assert_eq!(
        json,
        r#"[{"ContactCreated":{"email":"ada@example.org","first_name":"Ada","last_name":null,"fields":{"plan":"pro"},"tags":["vip"]}},{"ContactUpdated":{"changed":["last_name"],"email":"ada@example.org","first_name":"Ada","last_name":"L","fields_set":{},"fields_unset":[]}},{"ContactTagsAdded":{"tags":["a"]}},{"ContactTagRemoved":{"tag":"a"}},{"ContactMerged":{"source_id":"00000000-0000-0000-0000-00000000000b","rule":"prefer_source","source_email":"augusta@example.org","first_name":"Ada","last_name":null,"profile":{"time_zone":"Europe/London"},"fields":{"plan":"pro"},"tags":["vip"],"consent":{"email":{"status":"opted_in","source":"form","at":"2026-11-01T10:00:00Z"}},"do_not_contact":{"sms":{"reason":"bounced","note":null}},"frequency":{"email":{"max":2,"per_days":7}},"stage":"lead","points":12,"owner":null,"companies":["00000000-0000-0000-0000-000000000001"],"primary_company":"00000000-0000-0000-0000-000000000001","notes":["00000000-0000-0000-0000-000000000002"]}},{"ContactMergedInto":{"survivor_id":"00000000-0000-0000-0000-00000000000a"}},{"ContactEventRecorded":{"name":"purchase","properties":{"items":[{"sku":"b-1"}],"total":42},"occurred_at":"2026-11-01T10:00:00Z","source":"journey:00000000-0000-0000-0000-00000000000c"}}]"#
    );
    let back: Vec<ContactEvent> = serde_json::from_str(&json).unwrap();
    assert_eq!(back, events);
}

fn at() -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339("2026-11-01T10:00:00Z")
        .unwrap()
        .to_utc()
}

#[test]
fn consent_is_recorded_with_source_and_time_and_a_repeat_records_nothing() {
    let consent = Consent {
        status: ConsentStatus::OptedIn,
        source: "form:news".into(),
        at: at(),
    };
    ContactTest::with(())
        .given(vec![created()])
        .when(ContactCommand::SetConsent {
            channel: Channel::Email,
            status: ConsentStatus::OptedIn,
            source: "form:news".into(),
            at: at(),
        })
        .then_expect_events(vec![ContactEvent::ContactConsentChanged {
            channel: Channel::Email,
            consent: consent.clone(),
        }]);
    ContactTest::with(())
        .given(vec![
            created(),
            ContactEvent::ContactConsentChanged {
                channel: Channel::Email,
                consent,
            },
        ])
        .when(ContactCommand::SetConsent {
            channel: Channel::Email,
            status: ConsentStatus::OptedIn,
            source: "form:news".into(),
            at: at(),
        })
        .then_expect_events(vec![]);
}

#[test]
fn a_stage_change_records_where_the_contact_came_from() {
    ContactTest::with(())
        .given(vec![
            created(),
            ContactEvent::ContactStageChanged {
                from: None,
                to: "lead".into(),
            },
        ])
        .when(ContactCommand::ChangeStage("customer".into()))
        .then_expect_events(vec![ContactEvent::ContactStageChanged {
            from: Some("lead".into()),
            to: "customer".into(),
        }]);
}

#[test]
fn points_carry_the_new_total_and_cannot_leave_the_range() {
    let given = vec![
        created(),
        ContactEvent::ContactPointsChanged {
            delta: 10,
            reason: "a".into(),
            total: 10,
        },
    ];
    ContactTest::with(())
        .given(given.clone())
        .when(ContactCommand::ChangePoints {
            delta: -3,
            reason: "b".into(),
        })
        .then_expect_events(vec![ContactEvent::ContactPointsChanged {
            delta: -3,
            reason: "b".into(),
            total: 7,
        }]);
    ContactTest::with(())
        .given(given)
        .when(ContactCommand::ChangePoints {
            delta: 1_000_000_000,
            reason: "c".into(),
        })
        .then_expect_error(ContactError::PointsOutOfRange);
}

#[test]
fn lifting_a_do_not_contact_mark_that_is_not_there_records_nothing() {
    ContactTest::with(())
        .given(vec![created()])
        .when(ContactCommand::RemoveDoNotContact(Channel::Sms))
        .then_expect_events(vec![]);
}

#[test]
fn reachability_of_a_contact_that_does_not_exist_is_refused() {
    ContactTest::with(())
        .given_no_previous_events()
        .when(ContactCommand::AddDoNotContact {
            channel: Channel::Email,
            reason: DncReason::Manual,
            note: None,
        })
        .then_expect_error(ContactError::NotFound);
}

#[test]
fn reach_event_payloads_keep_their_json_shape() {
    let events = vec![
        ContactEvent::ContactDoNotContactAdded {
            channel: Channel::Sms,
            reason: DncReason::Complaint,
            note: None,
        },
        ContactEvent::ContactFrequencyRuleChanged {
            channel: Channel::Email,
            rule: Some(FrequencyRule {
                max: 3,
                per_days: 7,
            }),
        },
        ContactEvent::ContactConsentChanged {
            channel: Channel::Push,
            consent: Consent {
                status: ConsentStatus::OptedOut,
                source: "api".into(),
                at: at(),
            },
        },
    ];
    assert_eq!(
        serde_json::to_string(&events).unwrap(),
        r#"[{"ContactDoNotContactAdded":{"channel":"sms","reason":"complaint","note":null}},{"ContactFrequencyRuleChanged":{"channel":"email","rule":{"max":3,"per_days":7}}},{"ContactConsentChanged":{"channel":"push","consent":{"status":"opted_out","source":"api","at":"2026-11-01T10:00:00Z"}}}]"#
    );
}

#[test]
fn linking_a_primary_company_replaces_the_previous_primary_and_unlinking_clears_it() {
    let (a, b) = (uuid::Uuid::from_u128(1), uuid::Uuid::from_u128(2));
    let given = vec![
        created(),
        ContactEvent::ContactCompanyLinked {
            company_id: a,
            primary: true,
        },
    ];
    ContactTest::with(())
        .given(given.clone())
        .when(ContactCommand::LinkCompany {
            company_id: a,
            primary: true,
        })
        .then_expect_events(vec![]);
    ContactTest::with(())
        .given(given.clone())
        .when(ContactCommand::LinkCompany {
            company_id: b,
            primary: true,
        })
        .then_expect_events(vec![ContactEvent::ContactCompanyLinked {
            company_id: b,
            primary: true,
        }]);
    ContactTest::with(())
        .given(given)
        .when(ContactCommand::UnlinkCompany(b))
        .then_expect_events(vec![]);
}

#[test]
fn a_profile_change_names_what_changed_and_carries_the_whole_profile() {
    let mut given = created();
    if let ContactEvent::ContactCreated { profile, .. } = &mut given {
        profile.time_zone = Some("Europe/Paris".into());
    }
    ContactTest::with(())
        .given(vec![given])
        .when(ContactCommand::Update(ContactPatch {
            profile: ProfilePatch {
                phone: Some(Some(Phone::parse("+49 151 2345-6789").unwrap())),
                time_zone: Some(Some("Europe/Paris".into())),
                locale: None,
            },
            ..Default::default()
        }))
        .then_expect_events(vec![ContactEvent::ContactUpdated {
            changed: vec!["phone".into()],
            email: "ada@example.org".into(),
            first_name: Some("Ada".into()),
            last_name: None,
            fields_set: BTreeMap::new(),
            fields_unset: vec![],
            profile: Profile {
                phone: Some("+4915123456789".into()),
                time_zone: Some("Europe/Paris".into()),
                locale: None,
            },
        }]);
}

#[test]
fn a_phone_is_an_international_number() {
    assert_eq!(
        Phone::parse("+1 (415) 555-0100").unwrap().as_str(),
        "+14155550100"
    );
    for bad in ["0151 2345678", "+0123456789", "+12", "+49 151 abc"] {
        assert!(Phone::parse(bad).is_err(), "{bad}");
    }
}

#[test]
fn a_profile_appears_in_the_event_json_only_when_set() {
    let mut e = created();
    if let ContactEvent::ContactCreated { profile, .. } = &mut e {
        profile.locale = Some("fr-FR".into());
    }
    let json = serde_json::to_string(&e).unwrap();
    assert!(
        json.ends_with(r#""tags":["vip"],"locale":"fr-FR"}}"#),
        "{json}"
    );
    let back: ContactEvent = serde_json::from_str(&json).unwrap();
    assert_eq!(back, e);
}

#[test]
fn assigning_the_same_owner_again_records_nothing() {
    let rep = uuid::Uuid::from_u128(7);
    ContactTest::with(())
        .given(vec![created()])
        .when(ContactCommand::AssignOwner(Some(rep)))
        .then_expect_events(vec![ContactEvent::ContactOwnerChanged { owner: Some(rep) }]);
    ContactTest::with(())
        .given(vec![
            created(),
            ContactEvent::ContactOwnerChanged { owner: Some(rep) },
        ])
        .when(ContactCommand::AssignOwner(Some(rep)))
        .then_expect_events(vec![]);
}

#[test]
fn only_a_note_the_contact_has_can_be_removed() {
    ContactTest::with(())
        .given(vec![created()])
        .when(ContactCommand::RemoveNote(uuid::Uuid::from_u128(9)))
        .then_expect_error(ContactError::NoteNotFound);
}

fn erased() -> ContactEvent {
    ContactEvent::ContactErased {
        also_erased: vec![],
    }
}

#[test]
fn erasing_a_contact_records_the_erasure_with_the_contacts_merged_into_it() {
    let merged = uuid::Uuid::from_u128(0xB);
    ContactTest::with(())
        .given(vec![created()])
        .when(ContactCommand::Erase {
            also_erased: vec![merged],
        })
        .then_expect_events(vec![ContactEvent::ContactErased {
            also_erased: vec![merged],
        }]);
}

#[test]
fn an_erased_contact_refuses_every_command_as_erased() {
    for command in [
        ContactCommand::Erase {
            also_erased: vec![],
        },
        ContactCommand::AddTags([tag("x")].into()),
        ContactCommand::Update(ContactPatch::default()),
        ContactCommand::Create(ada()),
    ] {
        ContactTest::with(())
            .given(vec![created(), erased()])
            .when(command)
            .then_expect_error(ContactError::Erased);
    }
}

#[test]
fn a_missing_contact_cannot_be_erased() {
    ContactTest::with(())
        .given_no_previous_events()
        .when(ContactCommand::Erase {
            also_erased: vec![],
        })
        .then_expect_error(ContactError::NotFound);
}

#[test]
fn a_merged_contact_is_not_erased_but_names_its_survivor() {
    let survivor_id = uuid::Uuid::from_u128(0xA);
    let contact = {
        let mut c = Contact::default();
        cqrs_es::Aggregate::apply(&mut c, created());
        cqrs_es::Aggregate::apply(&mut c, ContactEvent::ContactMergedInto { survivor_id });
        c
    };
    assert_eq!(
        contact.erase(vec![]),
        Err(ContactError::MergedInto { survivor_id })
    );
}

#[test]
fn an_erased_contact_cannot_take_part_in_a_merge() {
    let mut alive = Contact::default();
    cqrs_es::Aggregate::apply(&mut alive, created());
    let mut gone = alive.clone();
    cqrs_es::Aggregate::apply(&mut gone, erased());
    let (a, b) = (uuid::Uuid::from_u128(1), uuid::Uuid::from_u128(2));
    assert_eq!(
        merge(&alive, a, &gone, b, MergeRule::KeepTarget),
        Err(ContactError::Erased)
    );
    assert_eq!(
        merge(&gone, a, &alive, b, MergeRule::KeepTarget),
        Err(ContactError::Erased)
    );
}

#[test]
fn a_survivor_remembers_the_contacts_merged_into_it() {
    let mut c = Contact::default();
    cqrs_es::Aggregate::apply(&mut c, created());
    let mut b = Contact::default();
    cqrs_es::Aggregate::apply(&mut b, created());
    let merged = merge(
        &c,
        uuid::Uuid::from_u128(1),
        &b,
        uuid::Uuid::from_u128(2),
        MergeRule::KeepTarget,
    )
    .unwrap();
    cqrs_es::Aggregate::apply(&mut c, merged.target);
    assert_eq!(c.merged_from, [uuid::Uuid::from_u128(2)].into());
}

#[test]
fn the_erasure_event_keeps_its_json_shape() {
    assert_eq!(
        serde_json::to_string(&ContactEvent::ContactErased {
            also_erased: vec![uuid::Uuid::from_u128(0xB)]
        })
        .unwrap(),
        r#"{"ContactErased":{"also_erased":["00000000-0000-0000-0000-00000000000b"]}}"#
    );
}
