#![allow(clippy::unwrap_used)]
use std::collections::BTreeMap;

use chrono::{TimeZone, Utc};
use cqrs_es::test::TestFramework;
use serde_json::json;

use super::*;
use crate::contact::{Channel, ConsentStatus, DncReason};
use crate::field::{FieldDefinition, FieldType};

type SegmentTest = TestFramework<Segment>;

fn schema() -> BTreeMap<String, FieldDefinition> {
    let def = |key: &str, t: FieldType, options: &[&str]| {
        (
            key.to_owned(),
            FieldDefinition {
                key: key.into(),
                label: key.into(),
                field_type: t,
                required: false,
                default: None,
                options: options.iter().map(|o| o.to_string()).collect(),
                unique: false,
            },
        )
    };
    [
        def("plan", FieldType::Select, &["free", "pro"]),
        def("score", FieldType::Number, &[]),
        def("birthday", FieldType::Date, &[]),
        def("renews_at", FieldType::Datetime, &[]),
        def("bio", FieldType::Text, &[]),
        def("news", FieldType::Multiselect, &["a", "b", "c"]),
        def("active", FieldType::Boolean, &[]),
    ]
    .into()
}

fn rule(v: serde_json::Value) -> Rule {
    serde_json::from_value(v).unwrap()
}

fn checked(v: serde_json::Value) -> Checked {
    rule(v).check(&schema()).unwrap()
}

fn dynamic(v: serde_json::Value) -> Definition {
    Definition::Dynamic {
        rule: rule(v.clone()),
        compiled: checked(v),
    }
}

fn created_static() -> SegmentEvent {
    SegmentEvent::SegmentCreated {
        name: "Newsletter".into(),
        description: None,
        kind: SegmentKind::Static,
        rule: None,
        compiled: None,
    }
}

fn created_dynamic() -> SegmentEvent {
    let v = json!({"tag": "vip"});
    SegmentEvent::SegmentCreated {
        name: "VIPs".into(),
        description: None,
        kind: SegmentKind::Dynamic,
        rule: Some(rule(v.clone())),
        compiled: Some(checked(v)),
    }
}

fn now() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 22, 12, 0, 0).unwrap()
}

#[test]
fn a_dynamic_segment_is_created_with_its_checked_rule() {
    SegmentTest::with(())
        .given_no_previous_events()
        .when(SegmentCommand::Create {
            name: " VIPs ".into(),
            description: Some("  ".into()),
            definition: dynamic(json!({"tag": "vip"})),
        })
        .then_expect_events(vec![created_dynamic()]);
}

#[test]
fn a_segment_cannot_be_created_twice() {
    SegmentTest::with(())
        .given(vec![created_static()])
        .when(SegmentCommand::Create {
            name: "Again".into(),
            description: None,
            definition: Definition::Static,
        })
        .then_expect_error(SegmentError::AlreadyExists);
}

#[test]
fn a_segment_needs_a_name() {
    SegmentTest::with(())
        .given_no_previous_events()
        .when(SegmentCommand::Create {
            name: "  ".into(),
            description: None,
            definition: Definition::Static,
        })
        .then_expect_error(SegmentError::BadName);
}

#[test]
fn a_description_has_a_limit() {
    SegmentTest::with(())
        .given_no_previous_events()
        .when(SegmentCommand::Create {
            name: "Long".into(),
            description: Some("x".repeat(2001)),
            definition: Definition::Static,
        })
        .then_expect_error(SegmentError::BadDescription);
}

#[test]
fn a_static_segment_takes_no_rule() {
    SegmentTest::with(())
        .given(vec![created_static()])
        .when(SegmentCommand::Update(SegmentPatch {
            rule: Some((rule(json!({"tag": "x"})), checked(json!({"tag": "x"})))),
            ..Default::default()
        }))
        .then_expect_error(SegmentError::StaticHasNoRule);
}

#[test]
fn a_deleted_segment_refuses_changes() {
    SegmentTest::with(())
        .given(vec![created_static(), SegmentEvent::SegmentDeleted {}])
        .when(SegmentCommand::Update(SegmentPatch {
            name: Some("New".into()),
            ..Default::default()
        }))
        .then_expect_error(SegmentError::NotFound);
    SegmentTest::with(())
        .given(vec![created_static(), SegmentEvent::SegmentDeleted {}])
        .when(SegmentCommand::Delete)
        .then_expect_error(SegmentError::NotFound);
}

#[test]
fn an_unchanged_rule_records_nothing_and_a_new_one_is_recorded() {
    SegmentTest::with(())
        .given(vec![created_dynamic()])
        .when(SegmentCommand::Update(SegmentPatch {
            rule: Some((rule(json!({"tag": "vip"})), checked(json!({"tag": "vip"})))),
            ..Default::default()
        }))
        .then_expect_events(vec![]);
    SegmentTest::with(())
        .given(vec![created_dynamic()])
        .when(SegmentCommand::Update(SegmentPatch {
            name: Some("Top".into()),
            rule: Some((rule(json!({"tag": "top"})), checked(json!({"tag": "top"})))),
            ..Default::default()
        }))
        .then_expect_events(vec![
            SegmentEvent::SegmentRenamed {
                name: "Top".into(),
                description: None,
            },
            SegmentEvent::SegmentRuleChanged {
                rule: rule(json!({"tag": "top"})),
                compiled: checked(json!({"tag": "top"})),
            },
        ]);
}

#[test]
fn a_rule_naming_an_unknown_field_or_a_wrong_operator_is_refused_with_where() {
    let errors = rule(json!({"all": [
        {"field": {"name": "fields.nope", "op": "equals", "value": 1}},
        {"field": {"name": "fields.score", "op": "contains", "value": "x"}},
        {"field": {"name": "fields.score", "op": "gt", "value": "ten"}},
        {"field": {"name": "fields.score", "op": "between", "values": [5, 1]}},
        {"field": {"name": "fields.birthday", "op": "before", "value": "22/11/2026"}},
        {"field": {"name": "fields.birthday", "op": "within_last_days"}},
    ]}))
    .check(&schema())
    .unwrap_err();
    let paths: Vec<&str> = errors.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "/all/0/field",
            "/all/1/field",
            "/all/2/field",
            "/all/3/field",
            "/all/4/field",
            "/all/5/field"
        ]
    );
    assert!(errors[0].reason.contains("nope"), "{}", errors[0].reason);
    assert!(errors[1].reason.contains("gt"), "{}", errors[1].reason);
}

#[test]
fn rules_are_limited_in_depth() {
    let mut v = json!({"tag": "x"});
    for _ in 0..10 {
        v = json!({"not": v});
    }
    let errors = rule(v).check(&schema()).unwrap_err();
    assert!(errors[0].reason.contains("nest"));
}

fn contact() -> ContactFacts {
    ContactFacts {
        email: "ada@example.org".into(),
        first_name: Some("Ada".into()),
        points: 42,
        created_at: Utc.with_ymd_and_hms(2026, 11, 1, 8, 0, 0).unwrap(),
        fields: json!({
            "plan": "pro", "score": 7.5, "birthday": "1990-11-25",
            "renews_at": "2026-11-20T10:00:00+00:00", "bio": "Loves Rust",
            "news": ["a", "c"], "active": true
        })
        .as_object()
        .unwrap()
        .clone(),
        tags: ["vip".to_owned()].into(),
        consent: [(Channel::Email, ConsentStatus::OptedIn)].into(),
        do_not_contact: [(Channel::Sms, DncReason::Bounced)].into(),
        events: vec![
            ("EmailOpened".into(), now() - chrono::Duration::days(2)),
            ("EmailOpened".into(), now() - chrono::Duration::days(40)),
        ],
        ..Default::default()
    }
}

#[test]
fn conditions_evaluate_against_a_contact() {
    let c = contact();
    let yes = |v: serde_json::Value| assert!(c.matches(&checked(v.clone()), now()), "{v}");
    let no = |v: serde_json::Value| assert!(!c.matches(&checked(v.clone()), now()), "{v}");
    yes(json!({"field": {"name": "first_name", "op": "equals", "value": "ADA"}}));
    yes(json!({"field": {"name": "fields.bio", "op": "contains", "value": "rust"}}));
    no(json!({"field": {"name": "fields.plan", "op": "equals", "value": "PRO"}}));
    yes(json!({"field": {"name": "last_name", "op": "not_equals", "value": "x"}}));
    yes(json!({"field": {"name": "last_name", "op": "is_empty"}}));
    yes(json!({"field": {"name": "fields.score", "op": "between", "values": [7, 8]}}));
    yes(json!({"field": {"name": "points", "op": "gte", "value": 42}}));
    yes(json!({"field": {"name": "fields.birthday", "op": "anniversary_in_days", "days": 3}}));
    no(json!({"field": {"name": "fields.birthday", "op": "anniversary_in_days", "days": 2}}));
    yes(json!({"field": {"name": "fields.renews_at", "op": "within_last_days", "days": 3}}));
    no(json!({"field": {"name": "fields.renews_at", "op": "within_last_days", "days": 1}}));
    yes(json!({"field": {"name": "created_at", "op": "before", "value": "2026-11-02"}}));
    yes(json!({"field": {"name": "fields.news", "op": "contains_all", "values": ["a", "c"]}}));
    no(json!({"field": {"name": "fields.news", "op": "contains", "value": "b"}}));
    yes(json!({"field": {"name": "fields.active", "op": "equals", "value": true}}));
    yes(json!({"consent": {"channel": "email", "status": "opted_in"}}));
    yes(json!({"consent": {"channel": "push", "status": "unknown"}}));
    yes(json!({"do_not_contact": {"channel": "sms", "reason": "bounced"}}));
    no(json!({"do_not_contact": {"channel": "email"}}));
    yes(json!({"event": {"type": "EmailOpened", "at_least": 1, "within_days": 30}}));
    no(json!({"event": {"type": "EmailOpened", "at_least": 2, "within_days": 30}}));
    yes(json!({"event": {"type": "EmailOpened", "at_least": 2}}));
    yes(json!({"all": []}));
    no(json!({"any": []}));
    yes(json!({"not": {"tag": "nope"}}));
}

#[test]
fn membership_reconciles_only_what_differs() {
    let a = uuid::Uuid::from_u128(1);
    let b = uuid::Uuid::from_u128(2);
    let c = uuid::Uuid::from_u128(3);
    let m = SegmentMembership {
        segments: [a, b].into(),
    };
    let contact = uuid::Uuid::from_u128(9);
    let events = m.reconcile(
        contact,
        &[a, b, c].into(),
        &[b, c].into(),
        MembershipReason::Rule,
    );
    assert_eq!(
        events,
        vec![
            SegmentMembershipEvent::SegmentExited {
                segment_id: a,
                contact_id: contact,
                reason: MembershipReason::Rule
            },
            SegmentMembershipEvent::SegmentEntered {
                segment_id: c,
                contact_id: contact,
                reason: MembershipReason::Rule
            },
        ]
    );
}

#[test]
fn segment_event_payloads_keep_their_json_shape() {
    let s = |e: &SegmentEvent| serde_json::to_string(e).unwrap();
    assert_eq!(
        s(&created_static()),
        r#"{"SegmentCreated":{"name":"Newsletter","description":null,"kind":"static","rule":null,"compiled":null}}"#
    );
    let v = json!({"field": {"name": "fields.plan", "op": "equals", "value": "pro"}});
    assert_eq!(
        s(&SegmentEvent::SegmentRuleChanged {
            rule: rule(v.clone()),
            compiled: checked(v)
        }),
        r#"{"SegmentRuleChanged":{"rule":{"field":{"name":"fields.plan","op":"equals","value":"pro"}},"compiled":{"compare":{"subject":{"custom":"plan"},"kind":"choice","op":"equals","operand":{"text":"pro"}}}}}"#
    );
    assert_eq!(
        s(&SegmentEvent::SegmentDeleted {}),
        r#"{"SegmentDeleted":{}}"#
    );
    assert_eq!(
        serde_json::to_string(&SegmentMembershipEvent::SegmentEntered {
            segment_id: uuid::Uuid::from_u128(1),
            contact_id: uuid::Uuid::from_u128(9),
            reason: MembershipReason::Rule,
        })
        .unwrap(),
        r#"{"SegmentEntered":{"segment_id":"00000000-0000-0000-0000-000000000001","contact_id":"00000000-0000-0000-0000-000000000009","reason":"rule"}}"#
    );
}
