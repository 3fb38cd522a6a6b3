//! A channel provider configured by an organization (`delivery_provider`): its name, channel,
//! kind, non-secret settings, the *names* of its secret fields and their version, and whether
//! it is the channel's default.
//!
//! Credentials never enter the log: the secret values live encrypted beside it (the command
//! side's `provider_secrets` table), written in the transaction that appends the event
//! naming their fields. "Default" is state of each provider: making one the default also
//! removes the mark from the previous default (`ProviderDefaultRemoved` on its stream, in
//! the same transaction); the caller looks the previous default up before the command.

use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;

use super::Channel;

/// The provider kinds of each channel. The worker builds providers from them; a kind it
/// cannot build yet is reported by the worker, not refused here.
pub const KINDS: &[(Channel, &[&str])] = &[
    (
        Channel::Email,
        &["smtp", "ses", "sendgrid", "mailgun", "postmark"],
    ),
    (Channel::Sms, &["twilio", "vonage", "plivo", "telnyx"]),
    (Channel::Push, &["fcm", "apns"]),
    (Channel::Webhook, &["webhook"]),
];

/// Most characters of a name.
pub const MAX_NAME: usize = 200;
/// Most settings or secret fields.
pub const MAX_FIELDS: usize = 50;

/// Whether `kind` is a provider kind of `channel`.
pub fn kind_fits(channel: Channel, kind: &str) -> bool {
    KINDS
        .iter()
        .any(|(c, kinds)| *c == channel && kinds.contains(&kind))
}

/// A name trimmed, if it has 1 to 200 characters and no control characters.
pub fn valid_name(raw: &str) -> Result<String, ProviderError> {
    let s = raw.trim();
    if s.is_empty() || s.chars().count() > MAX_NAME || s.chars().any(char::is_control) {
        return Err(ProviderError::BadName);
    }
    Ok(s.to_owned())
}

/// Whether a settings key names what is a credential (so it belongs in `secrets`, which
/// never enter the log): passwords, secrets, tokens, API and private keys.
pub fn looks_secret(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    [
        "password",
        "passwd",
        "secret",
        "token",
        "passphrase",
        "credential",
    ]
    .iter()
    .any(|w| k.contains(w))
        || [
            "api_key",
            "apikey",
            "private_key",
            "server_key",
            "auth_key",
            "signing_key",
        ]
        .iter()
        .any(|w| k.ends_with(w))
}

/// A field name: 1 to 64 of `a-z`, `0-9`, `_`, starting with a letter.
fn valid_field(key: &str) -> bool {
    let mut chars = key.chars();
    key.len() <= 64
        && chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// Checks the non-secret settings: field names, nothing that looks like a credential.
pub fn check_settings(settings: &Map<String, Value>) -> Result<(), ProviderError> {
    if settings.len() > MAX_FIELDS {
        return Err(ProviderError::TooManyFields);
    }
    if let Some(k) = settings.keys().find(|k| !valid_field(k)) {
        return Err(ProviderError::BadFieldName(k.clone()));
    }
    if let Some(k) = settings.keys().find(|k| looks_secret(k)) {
        return Err(ProviderError::SecretInSettings(k.clone()));
    }
    Ok(())
}

/// Checks the names of secret fields, and that none is also a setting (the worker gets
/// both merged into one object).
pub fn check_secret_fields(
    fields: &[String],
    settings: &Map<String, Value>,
) -> Result<(), ProviderError> {
    if fields.len() > MAX_FIELDS {
        return Err(ProviderError::TooManyFields);
    }
    if let Some(k) = fields.iter().find(|k| !valid_field(k)) {
        return Err(ProviderError::BadFieldName(k.clone()));
    }
    if let Some(k) = fields.iter().find(|k| settings.contains_key(k.as_str())) {
        return Err(ProviderError::SecretAlsoSetting(k.clone()));
    }
    Ok(())
}

/// A provider configuration of an organization.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ProviderConfig {
    pub exists: bool,
    pub removed: bool,
    pub name: String,
    pub channel: Channel,
    pub kind: String,
    /// The settings (kept to check that secret fields do not shadow one).
    pub settings: Map<String, Value>,
    /// The names of the secret fields (their values are never here).
    pub secret_fields: Vec<String>,
    /// Starts at 1; each replacement of the secrets adds one.
    pub secrets_version: u32,
    pub is_default: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ProviderCommand {
    /// Configure a new provider. `make_default`: it becomes the channel's default, taking
    /// the mark from `previous_default` (looked up by the caller).
    Configure {
        name: String,
        channel: Channel,
        kind: String,
        settings: Map<String, Value>,
        secret_fields: Vec<String>,
        make_default: bool,
        previous_default: Option<Uuid>,
    },
    /// Change the name and/or settings and/or replace the secrets (their field names here).
    Change {
        name: Option<String>,
        settings: Option<Map<String, Value>>,
        secret_fields: Option<Vec<String>>,
    },
    /// Become the channel's default, taking the mark from `previous` (looked up by the caller).
    MakeDefault {
        previous: Option<Uuid>,
    },
    /// Lose the default mark to `replaced_by`.
    RemoveDefault {
        replaced_by: Uuid,
    },
    Remove,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ProviderEvent {
    ProviderConfigured {
        name: String,
        channel: Channel,
        kind: String,
        /// Non-secret settings (an object).
        settings: Value,
        /// Names of the secret fields only.
        secret_fields: Vec<String>,
        secrets_version: u32,
    },
    /// The name and settings after the change, whole.
    ProviderSettingsChanged {
        name: String,
        settings: Value,
    },
    ProviderSecretsReplaced {
        secret_fields: Vec<String>,
        secrets_version: u32,
    },
    ProviderMadeDefault {
        channel: Channel,
        /// The provider that was the default before (it gets `ProviderDefaultRemoved`).
        previous: Option<Uuid>,
    },
    ProviderDefaultRemoved {
        channel: Channel,
        replaced_by: Uuid,
    },
    ProviderRemoved {
        channel: Channel,
        /// The channel has no default after this.
        was_default: bool,
    },
}

impl DomainEvent for ProviderEvent {
    fn event_type(&self) -> String {
        match self {
            Self::ProviderConfigured { .. } => "ProviderConfigured",
            Self::ProviderSettingsChanged { .. } => "ProviderSettingsChanged",
            Self::ProviderSecretsReplaced { .. } => "ProviderSecretsReplaced",
            Self::ProviderMadeDefault { .. } => "ProviderMadeDefault",
            Self::ProviderDefaultRemoved { .. } => "ProviderDefaultRemoved",
            Self::ProviderRemoved { .. } => "ProviderRemoved",
        }
        .to_owned()
    }

    fn event_version(&self) -> String {
        "1.0".to_owned()
    }
}

/// Why a provider command was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProviderError {
    /// The provider exists already.
    #[error("the provider exists already")]
    AlreadyExists,
    /// No such provider.
    #[error("no such provider")]
    NotFound,
    /// The provider was removed; it takes no more commands.
    #[error("the provider was removed")]
    Removed,
    /// A name is 1 to 200 characters.
    #[error("name: 1 to 200 characters, no control characters")]
    BadName,
    /// The kind is not a provider of the channel.
    #[error("{kind:?} is not a provider kind of the {channel} channel")]
    UnknownKind { channel: &'static str, kind: String },
    /// A settings or secret field name is not `a-z0-9_` (starting with a letter, ≤ 64).
    #[error("field name {0:?}: a-z, 0-9 and _, starting with a letter, at most 64")]
    BadFieldName(String),
    /// More than [`MAX_FIELDS`] settings or secret fields.
    #[error("at most {MAX_FIELDS} fields")]
    TooManyFields,
    /// A setting that is a credential: it must go in `secrets` (never logged).
    #[error("{0:?} looks like a credential: put it in secrets")]
    SecretInSettings(String),
    /// A secret field with the name of a setting.
    #[error("{0:?} is both a setting and a secret")]
    SecretAlsoSetting(String),
    /// Only the default provider can lose the mark.
    #[error("the provider is not the default")]
    NotDefault,
}

impl Aggregate for ProviderConfig {
    const TYPE: &'static str = "delivery_provider";
    type Command = ProviderCommand;
    type Event = ProviderEvent;
    type Error = ProviderError;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        for e in self.decide(command)? {
            sink.write(e, self).await;
        }
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        match event {
            ProviderEvent::ProviderConfigured {
                name,
                channel,
                kind,
                settings,
                secret_fields,
                secrets_version,
            } => {
                self.exists = true;
                self.name = name;
                self.channel = channel;
                self.kind = kind;
                self.settings = object(settings);
                self.secret_fields = secret_fields;
                self.secrets_version = secrets_version;
            }
            ProviderEvent::ProviderSettingsChanged { name, settings } => {
                self.name = name;
                self.settings = object(settings);
            }
            ProviderEvent::ProviderSecretsReplaced {
                secret_fields,
                secrets_version,
            } => {
                self.secret_fields = secret_fields;
                self.secrets_version = secrets_version;
            }
            ProviderEvent::ProviderMadeDefault { .. } => self.is_default = true,
            ProviderEvent::ProviderDefaultRemoved { .. } => self.is_default = false,
            ProviderEvent::ProviderRemoved { .. } => {
                self.removed = true;
                self.is_default = false;
            }
        }
    }
}

fn object(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

impl ProviderConfig {
    /// Whether the provider can be used (configured, not removed).
    pub fn live(&self) -> bool {
        self.exists && !self.removed
    }

    /// The events `command` leads to (pure; `handle` writes them). Callers that decide over
    /// two providers (a default moving) call it for each and append both.
    pub fn decide(&self, command: ProviderCommand) -> Result<Vec<ProviderEvent>, ProviderError> {
        if let ProviderCommand::Configure {
            name,
            channel,
            kind,
            settings,
            secret_fields,
            make_default,
            previous_default,
        } = command
        {
            if self.exists {
                return Err(ProviderError::AlreadyExists);
            }
            let name = valid_name(&name)?;
            if !kind_fits(channel, &kind) {
                return Err(ProviderError::UnknownKind {
                    channel: channel.as_str(),
                    kind,
                });
            }
            check_settings(&settings)?;
            check_secret_fields(&secret_fields, &settings)?;
            let mut events = vec![ProviderEvent::ProviderConfigured {
                name,
                channel,
                kind,
                settings: Value::Object(settings),
                secret_fields,
                secrets_version: 1,
            }];
            if make_default {
                events.push(ProviderEvent::ProviderMadeDefault {
                    channel,
                    previous: previous_default,
                });
            }
            return Ok(events);
        }
        if !self.exists {
            return Err(ProviderError::NotFound);
        }
        if self.removed {
            return Err(ProviderError::Removed);
        }
        match command {
            ProviderCommand::Configure { .. } => Err(ProviderError::AlreadyExists),
            ProviderCommand::Change {
                name,
                settings,
                secret_fields,
            } => {
                let name = name
                    .map(|n| valid_name(&n))
                    .transpose()?
                    .unwrap_or_else(|| self.name.clone());
                let settings = settings.unwrap_or_else(|| self.settings.clone());
                check_settings(&settings)?;
                let fields = secret_fields
                    .clone()
                    .unwrap_or_else(|| self.secret_fields.clone());
                check_secret_fields(&fields, &settings)?;
                let mut events = Vec::new();
                if name != self.name || settings != self.settings {
                    events.push(ProviderEvent::ProviderSettingsChanged {
                        name,
                        settings: Value::Object(settings),
                    });
                }
                // Secrets given are always replaced: their values may differ even when
                // their names do not (this aggregate never sees the values).
                if let Some(secret_fields) = secret_fields {
                    events.push(ProviderEvent::ProviderSecretsReplaced {
                        secret_fields,
                        secrets_version: self.secrets_version + 1,
                    });
                }
                Ok(events)
            }
            ProviderCommand::MakeDefault { previous } => {
                if self.is_default {
                    return Ok(vec![]);
                }
                Ok(vec![ProviderEvent::ProviderMadeDefault {
                    channel: self.channel,
                    previous,
                }])
            }
            ProviderCommand::RemoveDefault { replaced_by } => {
                if !self.is_default {
                    return Err(ProviderError::NotDefault);
                }
                Ok(vec![ProviderEvent::ProviderDefaultRemoved {
                    channel: self.channel,
                    replaced_by,
                }])
            }
            ProviderCommand::Remove => Ok(vec![ProviderEvent::ProviderRemoved {
                channel: self.channel,
                was_default: self.is_default,
            }]),
        }
    }
}
