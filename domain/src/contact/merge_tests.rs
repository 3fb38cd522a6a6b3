//! Merging, given/when/then: given the target's and the source's events, when the source is
//! merged into the target under a rule, then these events follow (or this refusal).
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use cqrs_es::test::TestFramework;
use cqrs_es::Aggregate;
use uuid::Uuid;

use super::aggregate::MAX_NOTES;
use super::*;

const A: Uuid = Uuid::from_u128(0xA);
const B: Uuid = Uuid::from_u128(0xB);

/// A merge scenario: the two streams as given.
struct Given {
    target: Vec<ContactEvent>,
    source: Vec<ContactEvent>,
}

fn given(target: Vec<ContactEvent>, source: Vec<ContactEvent>) -> Given {
    Given { target, source }
}

fn fold(events: &[ContactEvent]) -> Contact {
    let mut c = Contact::default();
    for e in events {
        c.apply(e.clone());
    }
    c
}

impl Given {
    fn when_merged(self, rule: MergeRule) -> Result<Merged, ContactError> {
        merge(&fold(&self.target), A, &fold(&self.source), B, rule)
    }

    fn when_merged_into_itself(self) -> Result<Merged, ContactError> {
        merge(
            &fold(&self.target),
            A,
            &fold(&self.target),
            A,
            MergeRule::KeepTarget,
        )
    }
}

trait Then {
    fn then_expect_error(self, e: ContactError);
    /// The target's `ContactMerged` event, after checking the source's is `ContactMergedInto`.
    fn then_target(self) -> ContactEvent;
}

impl Then for Result<Merged, ContactError> {
    fn then_expect_error(self, e: ContactError) {
        assert_eq!(self.err(), Some(e));
    }

    fn then_target(self) -> ContactEvent {
        let m = self.unwrap();
        assert_eq!(m.source, ContactEvent::ContactMergedInto { survivor_id: A });
        m.target
    }
}

fn created(
    email: &str,
    first: Option<&str>,
    fields: &[(&str, FieldValue)],
    tags: &[&str],
) -> ContactEvent {
    ContactEvent::ContactCreated {
        email: email.into(),
        first_name: first.map(Into::into),
        last_name: None,
        fields: fields
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect(),
        tags: tags.iter().map(|t| (*t).to_owned()).collect(),
        profile: Default::default(),
    }
}

fn ada() -> ContactEvent {
    created(
        "ada@example.org",
        Some("Ada"),
        &[
            ("plan", FieldValue::Text("pro".into())),
            ("city", FieldValue::Text(String::new())),
        ],
        &["vip", "a"],
    )
}

fn augusta() -> ContactEvent {
    created(
        "augusta@example.org",
        Some("Augusta"),
        &[
            ("plan", FieldValue::Text("free".into())),
            ("city", FieldValue::Text("London".into())),
            ("seats", FieldValue::Number(3.into())),
        ],
        &["vip", "b"],
    )
}

fn text(s: &str) -> FieldValue {
    FieldValue::Text(s.into())
}

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().to_utc()
}

fn consent(status: ConsentStatus, source: &str, when: &str) -> ContactEvent {
    ContactEvent::ContactConsentChanged {
        channel: Channel::Email,
        consent: Consent {
            status,
            source: source.into(),
            at: at(when),
        },
    }
}

fn points(total: i64) -> ContactEvent {
    ContactEvent::ContactPointsChanged {
        delta: total,
        reason: "r".into(),
        total,
    }
}

fn merged_into(survivor: Uuid) -> ContactEvent {
    ContactEvent::ContactMergedInto {
        survivor_id: survivor,
    }
}

#[test]
fn a_contact_cannot_be_merged_into_itself() {
    given(vec![ada()], vec![])
        .when_merged_into_itself()
        .then_expect_error(ContactError::MergeIntoItself);
}

#[test]
fn a_missing_target_is_refused() {
    given(vec![], vec![augusta()])
        .when_merged(MergeRule::KeepTarget)
        .then_expect_error(ContactError::NotFound);
}

#[test]
fn a_missing_source_is_refused() {
    given(vec![ada()], vec![])
        .when_merged(MergeRule::KeepTarget)
        .then_expect_error(ContactError::MergeSourceNotFound);
}

#[test]
fn an_already_merged_source_is_refused_naming_its_survivor() {
    let c = Uuid::from_u128(0xC);
    given(vec![ada()], vec![augusta(), merged_into(c)])
        .when_merged(MergeRule::KeepTarget)
        .then_expect_error(ContactError::MergeSourceMerged { survivor_id: c });
}

#[test]
fn an_already_merged_target_is_refused_naming_its_survivor() {
    let c = Uuid::from_u128(0xC);
    given(vec![ada(), merged_into(c)], vec![augusta()])
        .when_merged(MergeRule::KeepTarget)
        .then_expect_error(ContactError::MergeTargetMerged { survivor_id: c });
}

#[test]
fn a_merge_that_would_exceed_the_tag_limit_is_refused() {
    let many = |p: &str| ContactEvent::ContactTagsAdded {
        tags: (0..MAX_TAGS / 2 + 1).map(|i| format!("{p}{i}")).collect(),
    };
    given(vec![ada(), many("x")], vec![augusta(), many("y")])
        .when_merged(MergeRule::KeepTarget)
        .then_expect_error(ContactError::TooManyTags { max: MAX_TAGS });
}

#[test]
fn a_merge_that_would_exceed_the_field_limit_is_refused() {
    let many = |p: &str| {
        let fields: Vec<(String, FieldValue)> = (0..MAX_FIELDS / 2 + 1)
            .map(|i| (format!("{p}{i}"), FieldValue::Bool(true)))
            .collect();
        ContactEvent::ContactUpdated {
            changed: vec![],
            email: "x@example.org".into(),
            first_name: None,
            last_name: None,
            fields_set: fields.into_iter().collect(),
            fields_unset: vec![],
            profile: Default::default(),
        }
    };
    given(vec![ada(), many("x")], vec![augusta(), many("y")])
        .when_merged(MergeRule::KeepTarget)
        .then_expect_error(ContactError::TooManyFields { max: MAX_FIELDS });
}

#[test]
fn a_merge_that_would_exceed_the_note_limit_is_refused() {
    let notes = |from: u128, n: usize| {
        (0..n as u128).map(move |i| ContactEvent::ContactNoteAdded {
            note_id: Uuid::from_u128(from + i),
            text: "n".into(),
        })
    };
    let target: Vec<_> = std::iter::once(ada())
        .chain(notes(1_000, MAX_NOTES / 2 + 1))
        .collect();
    let source: Vec<_> = std::iter::once(augusta())
        .chain(notes(100_000, MAX_NOTES / 2))
        .collect();
    given(target, source)
        .when_merged(MergeRule::KeepTarget)
        .then_expect_error(ContactError::TooManyNotes { max: MAX_NOTES });
}

#[test]
fn a_merge_whose_points_would_leave_the_range_is_refused() {
    given(
        vec![ada(), points(600_000_000)],
        vec![augusta(), points(600_000_000)],
    )
    .when_merged(MergeRule::KeepTarget)
    .then_expect_error(ContactError::PointsOutOfRange);
}

#[test]
fn keep_target_keeps_the_targets_values_and_fills_its_gaps_from_the_source() {
    let e = given(vec![ada()], vec![augusta()])
        .when_merged(MergeRule::KeepTarget)
        .then_target();
    let ContactEvent::ContactMerged {
        first_name, fields, ..
    } = e
    else {
        panic!("{e:?}")
    };
    assert_eq!(first_name.as_deref(), Some("Ada"));
    let expected: BTreeMap<String, FieldValue> = [
        ("plan".to_owned(), text("pro")),
        // The target's empty city does not win over the source's.
        ("city".to_owned(), text("London")),
        ("seats".to_owned(), FieldValue::Number(3.into())),
    ]
    .into();
    assert_eq!(fields, expected);
}

#[test]
fn prefer_source_takes_the_sources_non_empty_values() {
    let mut ada_with_phone = vec![ada()];
    ada_with_phone.push(ContactEvent::ContactUpdated {
        changed: vec!["phone".into()],
        email: "ada@example.org".into(),
        first_name: Some("Ada".into()),
        last_name: Some("Lovelace".into()),
        fields_set: BTreeMap::new(),
        fields_unset: vec![],
        profile: Profile {
            phone: Some("+4915123456789".into()),
            time_zone: None,
            locale: Some("en-GB".into()),
        },
    });
    let mut source = vec![augusta()];
    source.push(ContactEvent::ContactUpdated {
        changed: vec!["plan".into()],
        email: "augusta@example.org".into(),
        first_name: Some("Augusta".into()),
        last_name: None,
        fields_set: [("plan".to_owned(), text(""))].into(),
        fields_unset: vec![],
        profile: Profile {
            phone: None,
            time_zone: Some("Europe/London".into()),
            locale: Some("fr-FR".into()),
        },
    });
    let e = given(ada_with_phone, source)
        .when_merged(MergeRule::PreferSource)
        .then_target();
    let ContactEvent::ContactMerged {
        first_name,
        last_name,
        profile,
        fields,
        ..
    } = e
    else {
        panic!("{e:?}")
    };
    assert_eq!(first_name.as_deref(), Some("Augusta"));
    assert_eq!(
        last_name.as_deref(),
        Some("Lovelace"),
        "the source has none"
    );
    assert_eq!(
        profile,
        Profile {
            phone: Some("+4915123456789".into()),
            time_zone: Some("Europe/London".into()),
            locale: Some("fr-FR".into()),
        }
    );
    // The source's empty plan does not win over the target's.
    assert_eq!(fields.get("plan"), Some(&text("pro")));
    assert_eq!(fields.get("city"), Some(&text("London")));
}

#[test]
fn tags_and_companies_are_united_and_points_summed() {
    let (x, y) = (Uuid::from_u128(1), Uuid::from_u128(2));
    let link = |company_id, primary| ContactEvent::ContactCompanyLinked {
        company_id,
        primary,
    };
    let e = given(
        vec![ada(), points(10), link(x, false)],
        vec![augusta(), points(-3), link(y, true)],
    )
    .when_merged(MergeRule::KeepTarget)
    .then_target();
    let ContactEvent::ContactMerged {
        tags,
        points,
        companies,
        primary_company,
        ..
    } = e
    else {
        panic!("{e:?}")
    };
    assert_eq!(tags, vec!["a", "b", "vip"]);
    assert_eq!(points, 7);
    assert_eq!(companies, vec![x, y]);
    assert_eq!(
        primary_company,
        Some(y),
        "the target has no primary: the source's"
    );
}

#[test]
fn consent_per_channel_is_the_most_recent_decision_whatever_the_rule() {
    let older = consent(ConsentStatus::OptedIn, "form", "2026-01-01T00:00:00Z");
    let newer = consent(
        ConsentStatus::OptedOut,
        "unsubscribe",
        "2026-02-01T00:00:00Z",
    );
    for rule in [MergeRule::KeepTarget, MergeRule::PreferSource] {
        for (t, s) in [(&older, &newer), (&newer, &older)] {
            let e = given(vec![ada(), t.clone()], vec![augusta(), s.clone()])
                .when_merged(rule)
                .then_target();
            let ContactEvent::ContactMerged { consent, .. } = e else {
                panic!("{e:?}")
            };
            assert_eq!(consent[&Channel::Email].status, ConsentStatus::OptedOut);
        }
    }
}

#[test]
fn a_do_not_contact_mark_of_either_contact_is_never_lost() {
    let dnc = |channel, reason| ContactEvent::ContactDoNotContactAdded {
        channel,
        reason,
        note: None,
    };
    let e = given(
        vec![ada(), dnc(Channel::Sms, DncReason::Manual)],
        vec![
            augusta(),
            dnc(Channel::Email, DncReason::Bounced),
            dnc(Channel::Sms, DncReason::Complaint),
        ],
    )
    .when_merged(MergeRule::KeepTarget)
    .then_target();
    let ContactEvent::ContactMerged { do_not_contact, .. } = e else {
        panic!("{e:?}")
    };
    assert_eq!(do_not_contact[&Channel::Email].reason, DncReason::Bounced);
    assert_eq!(
        do_not_contact[&Channel::Sms].reason,
        DncReason::Manual,
        "both have one: the rule's (the target's)"
    );
}

#[test]
fn frequency_rules_are_the_targets_else_the_sources() {
    let rule = |channel, max| ContactEvent::ContactFrequencyRuleChanged {
        channel,
        rule: Some(FrequencyRule { max, per_days: 7 }),
    };
    let e = given(
        vec![ada(), rule(Channel::Email, 1)],
        vec![augusta(), rule(Channel::Email, 5), rule(Channel::Sms, 2)],
    )
    .when_merged(MergeRule::PreferSource)
    .then_target();
    let ContactEvent::ContactMerged { frequency, .. } = e else {
        panic!("{e:?}")
    };
    assert_eq!(frequency[&Channel::Email].max, 1);
    assert_eq!(frequency[&Channel::Sms].max, 2);
}

#[test]
fn stage_and_owner_follow_the_rule_and_the_sources_notes_become_the_targets() {
    let (rep_a, rep_b) = (Uuid::from_u128(7), Uuid::from_u128(8));
    let note = Uuid::from_u128(99);
    let target = vec![
        ada(),
        ContactEvent::ContactStageChanged {
            from: None,
            to: "lead".into(),
        },
        ContactEvent::ContactOwnerChanged { owner: Some(rep_a) },
    ];
    let source = vec![
        augusta(),
        ContactEvent::ContactStageChanged {
            from: None,
            to: "customer".into(),
        },
        ContactEvent::ContactOwnerChanged { owner: Some(rep_b) },
        ContactEvent::ContactNoteAdded {
            note_id: note,
            text: "met at a fair".into(),
        },
    ];
    let keep = given(target.clone(), source.clone())
        .when_merged(MergeRule::KeepTarget)
        .then_target();
    let ContactEvent::ContactMerged {
        stage,
        owner,
        notes,
        ..
    } = &keep
    else {
        panic!("{keep:?}")
    };
    assert_eq!((stage.as_deref(), *owner), (Some("lead"), Some(rep_a)));
    assert_eq!(notes, &vec![note]);
    let prefer = given(target.clone(), source)
        .when_merged(MergeRule::PreferSource)
        .then_target();
    let ContactEvent::ContactMerged { stage, owner, .. } = &prefer else {
        panic!("{prefer:?}")
    };
    assert_eq!((stage.as_deref(), *owner), (Some("customer"), Some(rep_b)));

    // The survivor can remove the note it took over.
    let mut after = target;
    after.push(keep);
    TestFramework::<Contact>::with(())
        .given(after)
        .when(ContactCommand::RemoveNote(note))
        .then_expect_events(vec![ContactEvent::ContactNoteRemoved { note_id: note }]);
}

#[test]
fn a_merged_contact_refuses_every_command_naming_its_survivor() {
    TestFramework::<Contact>::with(())
        .given(vec![augusta(), merged_into(A)])
        .when(ContactCommand::AddTags([Tag::parse("x").unwrap()].into()))
        .then_expect_error(ContactError::MergedInto { survivor_id: A });
    TestFramework::<Contact>::with(())
        .given(vec![augusta(), merged_into(A)])
        .when(ContactCommand::ChangePoints {
            delta: 1,
            reason: "r".into(),
        })
        .then_expect_error(ContactError::MergedInto { survivor_id: A });
}
