#![allow(clippy::unwrap_used)]
use chrono::{DateTime, Duration, Utc};
use cqrs_es::test::TestFramework;
use cqrs_es::Aggregate;
use serde_json::json;

use super::custom_event::{occurred_at, MAX_PROPERTIES_BYTES};
use super::*;

type ContactTest = TestFramework<Contact>;

fn at() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-01T10:00:00Z")
        .unwrap()
        .to_utc()
}

fn created() -> ContactEvent {
    ContactEvent::ContactCreated {
        email: "ada@example.org".into(),
        first_name: Some("Ada".into()),
        last_name: None,
        fields: Default::default(),
        tags: vec![],
        profile: Default::default(),
    }
}

fn purchase() -> ContactCommand {
    ContactCommand::RecordEvent {
        name: EventName::parse("purchase").unwrap(),
        properties: EventProperties::parse(Some(json!({"total": 42, "items": ["book"]}))).unwrap(),
        occurred_at: at(),
        source: Some("api".into()),
    }
}

fn purchased() -> ContactEvent {
    ContactEvent::ContactEventRecorded {
        name: "purchase".into(),
        properties: json!({"total": 42, "items": ["book"]})
            .as_object()
            .unwrap()
            .clone(),
        occurred_at: at(),
        source: Some("api".into()),
    }
}

#[test]
fn an_event_is_recorded_with_its_name_properties_time_and_source() {
    ContactTest::with(())
        .given(vec![created()])
        .when(purchase())
        .then_expect_events(vec![purchased()]);
}

#[test]
fn the_same_event_twice_is_recorded_twice() {
    ContactTest::with(())
        .given(vec![created(), purchased()])
        .when(purchase())
        .then_expect_events(vec![purchased()]);
}

#[test]
fn an_event_of_a_contact_that_does_not_exist_is_refused() {
    ContactTest::with(())
        .given_no_previous_events()
        .when(purchase())
        .then_expect_error(ContactError::NotFound);
}

#[test]
fn an_erased_contact_records_no_event() {
    ContactTest::with(())
        .given(vec![
            created(),
            ContactEvent::ContactErased {
                also_erased: vec![],
            },
        ])
        .when(purchase())
        .then_expect_error(ContactError::Erased);
}

#[test]
fn a_merged_contact_sends_its_events_to_its_survivor() {
    let survivor_id = uuid::Uuid::from_u128(0xA);
    ContactTest::with(())
        .given(vec![
            created(),
            ContactEvent::ContactMergedInto { survivor_id },
        ])
        .when(purchase())
        .then_expect_error(ContactError::MergedInto { survivor_id });
}

#[test]
fn a_recorded_event_changes_nothing_the_contact_decides_on() {
    let mut before = Contact::default();
    before.apply(created());
    let mut after = before.clone();
    after.apply(purchased());
    assert_eq!(after, before);
}

#[test]
fn an_event_name_is_1_to_100_letters_digits_or_underscore_dot_colon_dash() {
    for ok in [
        "signed_up",
        "Order.Completed",
        "page:view",
        "a-b",
        "x",
        &"n".repeat(100),
    ] {
        assert_eq!(EventName::parse(ok).unwrap().as_str(), ok);
    }
    for bad in [
        "",
        "signed up",
        "kauf/abschluss",
        "café",
        "a\n",
        &"n".repeat(101),
    ] {
        assert_eq!(EventName::parse(bad).unwrap_err().field, "name", "{bad:?}");
    }
}

#[test]
fn properties_are_a_json_object_and_absent_or_null_is_none() {
    assert_eq!(EventProperties::parse(None).unwrap().as_map().len(), 0);
    assert_eq!(
        EventProperties::parse(Some(json!(null)))
            .unwrap()
            .as_map()
            .len(),
        0
    );
    for bad in [json!([1]), json!("total"), json!(42), json!(true)] {
        assert_eq!(
            EventProperties::parse(Some(bad.clone())).unwrap_err().field,
            "properties",
            "{bad}"
        );
    }
}

#[test]
fn properties_hold_at_most_16_kib_of_json() {
    // {"s":"…"} is 8 bytes around the text.
    let fits = json!({"s": "x".repeat(MAX_PROPERTIES_BYTES - 8)});
    assert!(EventProperties::parse(Some(fits)).is_ok());
    let over = json!({"s": "x".repeat(MAX_PROPERTIES_BYTES - 7)});
    assert!(EventProperties::parse(Some(over)).is_err());
}

#[test]
fn properties_nest_at_most_four_levels() {
    let four = json!({"a": {"b": [{"c": 1}]}});
    assert!(EventProperties::parse(Some(four)).is_ok());
    let five = json!({"a": {"b": [{"c": [1]}]}});
    assert!(EventProperties::parse(Some(five)).is_err());
}

#[test]
fn property_names_starting_with_a_dollar_are_reserved() {
    let envelope_like = json!({"$enc": "AAAA"});
    assert!(EventProperties::parse(Some(envelope_like)).is_err());
    assert!(EventProperties::parse(Some(json!({"price": {"$amount": 1}}))).is_ok());
}

#[test]
fn an_event_occurs_now_unless_told_and_at_most_a_day_ahead() {
    let now = at();
    assert_eq!(occurred_at(None, now).unwrap(), now);
    let last_week = now - Duration::days(7);
    assert_eq!(occurred_at(Some(last_week), now).unwrap(), last_week);
    let tomorrow = now + Duration::hours(24);
    assert_eq!(occurred_at(Some(tomorrow), now).unwrap(), tomorrow);
    let later = tomorrow + Duration::seconds(1);
    assert_eq!(
        occurred_at(Some(later), now).unwrap_err().field,
        "occurred_at"
    );
}

#[test]
fn an_event_without_a_source_keeps_it_out_of_its_json() {
    let e = ContactEvent::ContactEventRecorded {
        name: "signed_up".into(),
        properties: Default::default(),
        occurred_at: at(),
        source: None,
    };
    let json = serde_json::to_string(&e).unwrap();
    assert_eq!(
        json,
        r#"{"ContactEventRecorded":{"name":"signed_up","properties":{},"occurred_at":"2026-11-01T10:00:00Z"}}"#
    );
    assert_eq!(serde_json::from_str::<ContactEvent>(&json).unwrap(), e);
}
