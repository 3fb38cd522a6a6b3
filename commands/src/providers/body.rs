//! Request bodies of the provider routes, checked into typed input with every bad field
//! reported at once (422, nothing written).

use domain::contact::InvalidValue;
use domain::delivery::provider_config::{self as rules, ProviderError};
use domain::delivery::Channel;

use crate::Invalid;
use serde::Deserialize;
use serde_json::{Map, Value};

/// `POST /api/v1/providers`
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateProvider {
    #[schema(example = "Main relay")]
    pub name: String,
    /// `email`, `sms`, `push` or `webhook`.
    #[schema(example = "email")]
    pub channel: String,
    /// A provider of the channel: email `smtp`, `ses`, `sendgrid`, `mailgun`, `postmark`;
    /// sms `twilio`, `vonage`, `plivo`, `telnyx`; push `fcm`, `apns`; webhook `webhook`.
    #[schema(example = "smtp")]
    pub kind: String,
    /// Non-secret settings (host, port, region, …); recorded in the log.
    #[serde(default)]
    #[schema(value_type = Object, example = json!({"host": "smtp.example.org", "port": 587, "security": "starttls", "username": "mailer"}))]
    pub settings: Option<Value>,
    /// Credentials (password, api_key, secret_access_key, …): stored encrypted, never
    /// logged, never shown again.
    #[serde(default)]
    #[schema(value_type = Object, example = json!({"password": "s3cret"}))]
    pub secrets: Option<Value>,
    /// Make it the channel's default (the first provider of a channel always is).
    #[serde(default)]
    pub default: bool,
}

/// `PATCH /api/v1/providers/{id}`: what is given changes; `secrets`, when given, replace
/// the stored ones whole.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateProvider {
    pub name: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub settings: Option<Value>,
    #[schema(value_type = Option<Object>)]
    pub secrets: Option<Value>,
}

/// A new provider, checked.
#[derive(Debug, Clone)]
pub struct NewProvider {
    pub name: String,
    pub channel: Channel,
    pub kind: String,
    pub settings: Map<String, Value>,
    pub secrets: Map<String, Value>,
    pub default: bool,
}

/// A change, checked.
#[derive(Debug, Clone, Default)]
pub struct ProviderChange {
    pub name: Option<String>,
    pub settings: Option<Map<String, Value>>,
    pub secrets: Option<Map<String, Value>>,
}

fn problem(field: &str, reason: impl Into<String>) -> InvalidValue {
    InvalidValue::new(field, reason)
}

fn object(
    field: &str,
    v: Option<Value>,
    problems: &mut Vec<InvalidValue>,
) -> Option<Map<String, Value>> {
    match v {
        None | Some(Value::Null) => None,
        Some(Value::Object(m)) => Some(m),
        Some(_) => {
            problems.push(problem(field, "must be a JSON object"));
            None
        }
    }
}

fn check_name(raw: &str, problems: &mut Vec<InvalidValue>) -> String {
    rules::valid_name(raw).unwrap_or_else(|e| {
        problems.push(problem("name", e.to_string()));
        String::new()
    })
}

fn check_settings(settings: &Map<String, Value>, problems: &mut Vec<InvalidValue>) {
    if let Err(e) = rules::check_settings(settings) {
        problems.push(problem("settings", e.to_string()));
    }
}

fn check_secrets(
    secrets: &Map<String, Value>,
    settings: &Map<String, Value>,
    problems: &mut Vec<InvalidValue>,
) {
    let fields: Vec<String> = secrets.keys().cloned().collect();
    if let Err(e) = rules::check_secret_fields(&fields, settings) {
        problems.push(problem("secrets", e.to_string()));
    }
    if let Some((k, _)) = secrets.iter().find(|(_, v)| v.is_null()) {
        problems.push(problem("secrets", format!("{k:?} has no value")));
    }
}

fn done<T>(value: T, problems: Vec<InvalidValue>) -> Result<T, Invalid> {
    if problems.is_empty() {
        Ok(value)
    } else {
        Err(Invalid(problems))
    }
}

impl CreateProvider {
    /// The provider checked; 422 listing every bad field.
    pub fn validate(self) -> Result<NewProvider, Invalid> {
        let mut problems = Vec::new();
        let name = check_name(&self.name, &mut problems);
        let channel = serde_json::from_value::<Channel>(Value::String(self.channel.clone()));
        let kind = self.kind.trim().to_owned();
        match &channel {
            Ok(c) if !rules::kind_fits(*c, &kind) => {
                problems.push(problem(
                    "kind",
                    ProviderError::UnknownKind {
                        channel: c.as_str(),
                        kind: kind.clone(),
                    }
                    .to_string(),
                ));
            }
            Ok(_) => {}
            Err(_) => {
                problems.push(problem("channel", "one of email, sms, push, webhook"));
                if !rules::KINDS
                    .iter()
                    .any(|(_, ks)| ks.contains(&kind.as_str()))
                {
                    problems.push(problem("kind", format!("{kind:?} is not a provider kind")));
                }
            }
        }
        let settings = object("settings", self.settings, &mut problems).unwrap_or_default();
        let secrets = object("secrets", self.secrets, &mut problems).unwrap_or_default();
        check_settings(&settings, &mut problems);
        check_secrets(&secrets, &settings, &mut problems);
        let value = NewProvider {
            name,
            channel: channel.unwrap_or_default(),
            kind,
            settings,
            secrets,
            default: self.default,
        };
        done(value, problems)
    }
}

impl UpdateProvider {
    /// The change checked on its own (the aggregate checks it against the stored settings).
    pub fn validate(self) -> Result<ProviderChange, Invalid> {
        let mut problems = Vec::new();
        let name = self.name.map(|n| check_name(&n, &mut problems));
        if matches!(self.settings, Some(Value::Null)) {
            problems.push(problem("settings", "must be a JSON object"));
        }
        if matches!(self.secrets, Some(Value::Null)) {
            problems.push(problem("secrets", "must be a JSON object"));
        }
        let settings = object("settings", self.settings, &mut problems);
        let secrets = object("secrets", self.secrets, &mut problems);
        if let Some(s) = &settings {
            check_settings(s, &mut problems);
        }
        if let Some(s) = &secrets {
            check_secrets(s, settings.as_ref().unwrap_or(&Map::new()), &mut problems);
        }
        done(
            ProviderChange {
                name,
                settings,
                secrets,
            },
            problems,
        )
    }
}
