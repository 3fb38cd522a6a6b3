#![allow(clippy::unwrap_used)]
use cqrs_es::test::TestFramework;

use super::*;
use crate::contact::{FieldKey, FieldValue, MAX_FIELDS};

type CompanyTest = TestFramework<Company>;

fn created() -> CompanyEvent {
    CompanyEvent::CompanyCreated {
        name: "Acme".into(),
        domain: Some("acme.test".into()),
        fields: [("tier".to_owned(), FieldValue::Text("gold".into()))].into(),
    }
}

#[test]
fn a_company_is_created_with_what_was_given() {
    CompanyTest::with(())
        .given_no_previous_events()
        .when(CompanyCommand::Create(NewCompany {
            name: "Acme".into(),
            domain: Some("acme.test".into()),
            fields: [(
                FieldKey::parse("tier").unwrap(),
                FieldValue::Text("gold".into()),
            )]
            .into(),
        }))
        .then_expect_events(vec![created()]);
}

#[test]
fn a_company_cannot_be_created_twice() {
    CompanyTest::with(())
        .given(vec![created()])
        .when(CompanyCommand::Create(NewCompany {
            name: "Acme".into(),
            domain: None,
            fields: Default::default(),
        }))
        .then_expect_error(CompanyError::AlreadyExists);
}

#[test]
fn updating_a_company_that_does_not_exist_is_refused() {
    CompanyTest::with(())
        .given_no_previous_events()
        .when(CompanyCommand::Update(CompanyPatch::default()))
        .then_expect_error(CompanyError::NotFound);
}

#[test]
fn an_update_records_only_what_changed() {
    CompanyTest::with(())
        .given(vec![created()])
        .when(CompanyCommand::Update(CompanyPatch {
            name: Some("Acme".into()),
            domain: Some(None),
            fields: [(FieldKey::parse("tier").unwrap(), None)].into(),
        }))
        .then_expect_events(vec![CompanyEvent::CompanyUpdated {
            changed: vec!["domain".into(), "fields.tier".into()],
            name: "Acme".into(),
            domain: None,
            fields_set: Default::default(),
            fields_unset: vec!["tier".into()],
        }]);
}

#[test]
fn a_company_with_too_many_fields_is_refused() {
    let fields = (0..=MAX_FIELDS)
        .map(|i| {
            (
                FieldKey::parse(&format!("f{i}")).unwrap(),
                FieldValue::Bool(true),
            )
        })
        .collect();
    CompanyTest::with(())
        .given_no_previous_events()
        .when(CompanyCommand::Create(NewCompany {
            name: "Big".into(),
            domain: None,
            fields,
        }))
        .then_expect_error(CompanyError::TooManyFields { max: MAX_FIELDS });
}

#[test]
fn company_event_payloads_keep_their_json_shape() {
    assert_eq!(
        serde_json::to_string(&created()).unwrap(),
        r#"{"CompanyCreated":{"name":"Acme","domain":"acme.test","fields":{"tier":"gold"}}}"#
    );
}
