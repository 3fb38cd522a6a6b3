#![allow(clippy::unwrap_used)]
use std::collections::BTreeMap;

use cqrs_es::test::TestFramework;

use super::*;
use crate::contact::{FieldKey, FieldValue};

type SchemaTest = TestFramework<FieldSchema>;

fn def(key: &str, t: FieldType) -> FieldDefinition {
    FieldDefinition {
        key: key.into(),
        label: key.into(),
        field_type: t,
        required: false,
        default: None,
        options: vec![],
        unique: false,
    }
}

fn text(s: &str) -> FieldValue {
    FieldValue::Text(s.into())
}

#[test]
fn a_field_is_defined_once() {
    let d = def("plan", FieldType::Text);
    SchemaTest::with(())
        .given(vec![FieldSchemaEvent::FieldDefined {
            definition: d.clone(),
        }])
        .when(FieldSchemaCommand::Define(d))
        .then_expect_error(FieldSchemaError::AlreadyDefined("plan".into()));
}

#[test]
fn a_fields_type_never_changes() {
    SchemaTest::with(())
        .given(vec![FieldSchemaEvent::FieldDefined {
            definition: def("plan", FieldType::Text),
        }])
        .when(FieldSchemaCommand::Change(def("plan", FieldType::Number)))
        .then_expect_error(FieldSchemaError::TypeChange);
}

#[test]
fn a_select_needs_options_and_its_default_must_be_one() {
    SchemaTest::with(())
        .given_no_previous_events()
        .when(FieldSchemaCommand::Define(def("tier", FieldType::Select)))
        .then_expect_error(FieldSchemaError::Options("a select needs options".into()));
    let mut d = def("tier", FieldType::Select);
    d.options = vec!["gold".into(), "silver".into()];
    d.default = Some(text("bronze"));
    SchemaTest::with(())
        .given_no_previous_events()
        .when(FieldSchemaCommand::Define(d))
        .then_expect_error(FieldSchemaError::BadDefault(
            "expected one of gold, silver".into(),
        ));
}

#[test]
fn removing_an_unknown_field_is_refused() {
    SchemaTest::with(())
        .given_no_previous_events()
        .when(FieldSchemaCommand::Remove { key: "x".into() })
        .then_expect_error(FieldSchemaError::NotDefined);
}

#[test]
fn values_are_checked_and_normalised_per_type() {
    let cases: Vec<(FieldType, FieldValue, Result<FieldValue, ()>)> = vec![
        (FieldType::Date, text("2026-11-22"), Ok(text("2026-11-22"))),
        (FieldType::Date, text("22/11/2026"), Err(())),
        (
            FieldType::Datetime,
            text("2026-11-22T11:00:00+01:00"),
            Ok(text("2026-11-22T10:00:00+00:00")),
        ),
        (
            FieldType::Email,
            text(" Ada@Example.org "),
            Ok(text("ada@example.org")),
        ),
        (FieldType::Country, text("fr"), Ok(text("FR"))),
        (FieldType::Country, text("France"), Err(())),
        (
            FieldType::Phone,
            text("+33 1 23 45 67 89"),
            Ok(text("+33123456789")),
        ),
        (FieldType::Url, text("javascript:alert(1)"), Err(())),
        (FieldType::Number, text("12"), Err(())),
        (
            FieldType::Boolean,
            FieldValue::Bool(true),
            Ok(FieldValue::Bool(true)),
        ),
        (
            FieldType::Timezone,
            text("Asia/Tokyo"),
            Ok(text("Asia/Tokyo")),
        ),
        (FieldType::Text, text(&"x".repeat(256)), Err(())),
    ];
    for (t, v, want) in cases {
        let got = def("f", t).check(&v).map_err(|_| ());
        assert_eq!(got, want, "{t:?} {v:?}");
    }
}

#[test]
fn a_new_contact_gets_defaults_and_must_have_required_fields() {
    let mut schema = FieldSchema::default();
    let mut plan = def("plan", FieldType::Select);
    plan.options = vec!["free".into(), "pro".into()];
    plan.default = Some(text("free"));
    let mut country = def("country", FieldType::Country);
    country.required = true;
    schema.fields.insert("plan".into(), plan);
    schema.fields.insert("country".into(), country);
    let mut fields = BTreeMap::new();
    let problems = schema.check_new(&mut fields);
    assert_eq!(
        problems,
        vec![("fields.country".to_owned(), "required".to_owned())]
    );
    assert_eq!(
        fields.get(&FieldKey::parse("plan").unwrap()),
        Some(&text("free"))
    );
    let mut patch = BTreeMap::from([(FieldKey::parse("country").unwrap(), None)]);
    assert_eq!(
        schema.check_patch(&mut patch).len(),
        1,
        "a required field cannot be cleared"
    );
}

#[test]
fn uniqueness_is_chosen_at_definition_and_only_for_single_values() {
    let mut d = def("flag", FieldType::Boolean);
    d.unique = true;
    SchemaTest::with(())
        .given_no_previous_events()
        .when(FieldSchemaCommand::Define(d))
        .then_expect_error(FieldSchemaError::Unique(
            "booleans, multiselects and long texts cannot be unique".into(),
        ));
    let mut later = def("crm_id", FieldType::Text);
    later.unique = true;
    SchemaTest::with(())
        .given(vec![FieldSchemaEvent::FieldDefined {
            definition: def("crm_id", FieldType::Text),
        }])
        .when(FieldSchemaCommand::Change(later))
        .then_expect_error(FieldSchemaError::Unique(
            "unique is chosen when the field is defined".into(),
        ));
}

#[test]
fn text_cells_are_read_per_type() {
    let mut choices = def("langs", FieldType::Multiselect);
    choices.options = vec!["de".into(), "fr".into()];
    assert_eq!(
        choices.value_from_text("de; fr"),
        Ok(FieldValue::List(vec!["de".into(), "fr".into()]))
    );
    assert_eq!(
        def("n", FieldType::Number).value_from_text(" 42 "),
        Ok(FieldValue::Number(42.into()))
    );
    assert!(def("n", FieldType::Number).value_from_text("4x").is_err());
    assert_eq!(
        def("b", FieldType::Boolean).value_from_text("Yes"),
        Ok(FieldValue::Bool(true))
    );
    assert_eq!(
        def("t", FieldType::Text).value_from_text(" a "),
        Ok(text("a"))
    );
}
