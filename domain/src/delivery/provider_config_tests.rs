#![allow(clippy::unwrap_used)]

use cqrs_es::test::TestFramework;
use serde_json::{json, Map, Value};
use uuid::Uuid;

use super::provider_config::*;
use super::Channel;

type ProviderTest = TestFramework<ProviderConfig>;

fn settings(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => panic!("not an object"),
    }
}

fn configure(make_default: bool, previous_default: Option<Uuid>) -> ProviderCommand {
    ProviderCommand::Configure {
        name: " Relay ".into(),
        channel: Channel::Email,
        kind: "smtp".into(),
        settings: settings(json!({"host": "mx.example.org", "port": 587})),
        secret_fields: vec!["password".into()],
        make_default,
        previous_default,
    }
}

fn configured() -> ProviderEvent {
    ProviderEvent::ProviderConfigured {
        name: "Relay".into(),
        channel: Channel::Email,
        kind: "smtp".into(),
        settings: json!({"host": "mx.example.org", "port": 587}),
        secret_fields: vec!["password".into()],
        secrets_version: 1,
    }
}

fn made_default(previous: Option<Uuid>) -> ProviderEvent {
    ProviderEvent::ProviderMadeDefault {
        channel: Channel::Email,
        previous,
    }
}

fn removed(was_default: bool) -> ProviderEvent {
    ProviderEvent::ProviderRemoved {
        channel: Channel::Email,
        was_default,
    }
}

fn change(name: Option<&str>, s: Option<Value>, secrets: Option<&[&str]>) -> ProviderCommand {
    ProviderCommand::Change {
        name: name.map(Into::into),
        settings: s.map(settings),
        secret_fields: secrets.map(|f| f.iter().map(|x| (*x).to_owned()).collect()),
    }
}

#[test]
fn a_provider_is_configured_with_its_settings_and_the_names_of_its_secrets() {
    ProviderTest::with(())
        .given_no_previous_events()
        .when(configure(false, None))
        .then_expect_events(vec![configured()]);
}

#[test]
fn a_provider_configured_as_default_takes_the_mark_from_the_previous_one() {
    let previous = Uuid::from_u128(5);
    ProviderTest::with(())
        .given_no_previous_events()
        .when(configure(true, Some(previous)))
        .then_expect_events(vec![configured(), made_default(Some(previous))]);
}

#[test]
fn a_provider_cannot_be_configured_twice() {
    ProviderTest::with(())
        .given(vec![configured()])
        .when(configure(false, None))
        .then_expect_error(ProviderError::AlreadyExists);
}

#[test]
fn an_empty_name_is_refused() {
    let ProviderCommand::Configure { channel, kind, .. } = configure(false, None) else {
        unreachable!()
    };
    ProviderTest::with(())
        .given_no_previous_events()
        .when(ProviderCommand::Configure {
            name: "  ".into(),
            channel,
            kind,
            settings: Map::new(),
            secret_fields: vec![],
            make_default: false,
            previous_default: None,
        })
        .then_expect_error(ProviderError::BadName);
}

#[test]
fn a_kind_of_another_channel_or_none_is_refused() {
    for (channel, kind) in [(Channel::Email, "twilio"), (Channel::Sms, "carrier-pigeon")] {
        ProviderTest::with(())
            .given_no_previous_events()
            .when(ProviderCommand::Configure {
                name: "X".into(),
                channel,
                kind: kind.into(),
                settings: Map::new(),
                secret_fields: vec![],
                make_default: false,
                previous_default: None,
            })
            .then_expect_error(ProviderError::UnknownKind {
                channel: channel.as_str(),
                kind: kind.into(),
            });
    }
}

#[test]
fn a_credential_in_the_settings_is_refused() {
    ProviderTest::with(())
        .given(vec![configured()])
        .when(change(
            None,
            Some(json!({"host": "h", "api_key": "k"})),
            None,
        ))
        .then_expect_error(ProviderError::SecretInSettings("api_key".into()));
}

#[test]
fn a_secret_that_is_also_a_setting_is_refused() {
    ProviderTest::with(())
        .given(vec![configured()])
        .when(change(None, None, Some(&["host"])))
        .then_expect_error(ProviderError::SecretAlsoSetting("host".into()));
}

#[test]
fn a_bad_field_name_is_refused() {
    ProviderTest::with(())
        .given(vec![configured()])
        .when(change(None, None, Some(&["Pass Word"])))
        .then_expect_error(ProviderError::BadFieldName("Pass Word".into()));
}

#[test]
fn changing_the_name_and_settings_records_both_whole() {
    ProviderTest::with(())
        .given(vec![configured()])
        .when(change(
            Some("Backup"),
            Some(json!({"host": "b.example.org"})),
            None,
        ))
        .then_expect_events(vec![ProviderEvent::ProviderSettingsChanged {
            name: "Backup".into(),
            settings: json!({"host": "b.example.org"}),
        }]);
}

#[test]
fn a_change_to_the_same_values_records_nothing() {
    ProviderTest::with(())
        .given(vec![configured()])
        .when(change(
            Some("Relay"),
            Some(json!({"port": 587, "host": "mx.example.org"})),
            None,
        ))
        .then_expect_events(vec![]);
}

#[test]
fn secrets_given_are_replaced_under_the_next_version() {
    ProviderTest::with(())
        .given(vec![configured()])
        .when(change(None, None, Some(&["password"])))
        .then_expect_events(vec![ProviderEvent::ProviderSecretsReplaced {
            secret_fields: vec!["password".into()],
            secrets_version: 2,
        }]);
}

#[test]
fn making_a_provider_default_names_the_previous_default() {
    let previous = Uuid::from_u128(9);
    ProviderTest::with(())
        .given(vec![configured()])
        .when(ProviderCommand::MakeDefault {
            previous: Some(previous),
        })
        .then_expect_events(vec![made_default(Some(previous))]);
}

#[test]
fn making_the_default_default_again_records_nothing() {
    ProviderTest::with(())
        .given(vec![configured(), made_default(None)])
        .when(ProviderCommand::MakeDefault { previous: None })
        .then_expect_events(vec![]);
}

#[test]
fn the_default_loses_its_mark_to_its_replacement() {
    let next = Uuid::from_u128(11);
    ProviderTest::with(())
        .given(vec![configured(), made_default(None)])
        .when(ProviderCommand::RemoveDefault { replaced_by: next })
        .then_expect_events(vec![ProviderEvent::ProviderDefaultRemoved {
            channel: Channel::Email,
            replaced_by: next,
        }]);
}

#[test]
fn a_provider_that_is_not_the_default_cannot_lose_the_mark() {
    ProviderTest::with(())
        .given(vec![configured()])
        .when(ProviderCommand::RemoveDefault {
            replaced_by: Uuid::from_u128(11),
        })
        .then_expect_error(ProviderError::NotDefault);
}

#[test]
fn removing_the_default_says_so() {
    ProviderTest::with(())
        .given(vec![configured(), made_default(None)])
        .when(ProviderCommand::Remove)
        .then_expect_events(vec![removed(true)]);
}

#[test]
fn a_missing_provider_takes_no_commands() {
    ProviderTest::with(())
        .given_no_previous_events()
        .when(ProviderCommand::Remove)
        .then_expect_error(ProviderError::NotFound);
}

#[test]
fn a_removed_provider_takes_no_more_commands() {
    for command in [
        change(Some("Again"), None, None),
        ProviderCommand::MakeDefault { previous: None },
        ProviderCommand::Remove,
    ] {
        ProviderTest::with(())
            .given(vec![configured(), removed(false)])
            .when(command)
            .then_expect_error(ProviderError::Removed);
    }
}

#[test]
fn credential_like_keys_are_recognised() {
    for k in [
        "password",
        "smtp_pass_word_x",
        "secret_access_key",
        "api_key",
        "server_token",
        "private_key",
    ] {
        let secret = looks_secret(k);
        assert_eq!(secret, k != "smtp_pass_word_x", "{k}");
    }
    for k in ["host", "access_key_id", "username", "region", "from"] {
        assert!(!looks_secret(k), "{k}");
    }
}

#[test]
fn event_payloads_keep_their_json_shape() {
    let id = Uuid::from_u128(1);
    let all = [
        configured(),
        ProviderEvent::ProviderSettingsChanged {
            name: "N".into(),
            settings: json!({"host": "h"}),
        },
        ProviderEvent::ProviderSecretsReplaced {
            secret_fields: vec!["api_key".into()],
            secrets_version: 2,
        },
        made_default(Some(id)),
        ProviderEvent::ProviderDefaultRemoved {
            channel: Channel::Sms,
            replaced_by: id,
        },
        removed(true),
    ];
    let json: Vec<_> = all
        .iter()
        .map(|e| serde_json::to_value(e).unwrap())
        .collect();
    let id = id.to_string();
    assert_eq!(
        json,
        vec![
            json!({"ProviderConfigured": {"name": "Relay", "channel": "email", "kind": "smtp",
                "settings": {"host": "mx.example.org", "port": 587},
                "secret_fields": ["password"], "secrets_version": 1}}),
            json!({"ProviderSettingsChanged": {"name": "N", "settings": {"host": "h"}}}),
            json!({"ProviderSecretsReplaced": {"secret_fields": ["api_key"], "secrets_version": 2}}),
            json!({"ProviderMadeDefault": {"channel": "email", "previous": id}}),
            json!({"ProviderDefaultRemoved": {"channel": "sms", "replaced_by": id}}),
            json!({"ProviderRemoved": {"channel": "email", "was_default": true}}),
        ]
    );
}
