use std::collections::BTreeMap;

use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};

use super::{FieldDefinition, FieldType};
use crate::contact::FieldValue;

/// The custom fields of one organization (one stream per organization).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FieldSchema {
    pub fields: BTreeMap<String, FieldDefinition>,
}

/// Most custom fields an organization can define.
pub const MAX_DEFINITIONS: usize = 200;

#[derive(Debug, Clone, PartialEq)]
pub enum FieldSchemaCommand {
    Define(FieldDefinition),
    /// A new label, required flag, default or options; the type never changes.
    Change(FieldDefinition),
    Remove {
        key: String,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum FieldSchemaEvent {
    FieldDefined { definition: FieldDefinition },
    FieldChanged { definition: FieldDefinition },
    FieldRemoved { key: String },
}

impl DomainEvent for FieldSchemaEvent {
    fn event_type(&self) -> String {
        match self {
            Self::FieldDefined { .. } => "FieldDefined",
            Self::FieldChanged { .. } => "FieldChanged",
            Self::FieldRemoved { .. } => "FieldRemoved",
        }
        .to_owned()
    }

    fn event_version(&self) -> String {
        "1.0".to_owned()
    }
}

/// Why a definition was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FieldSchemaError {
    /// The field is defined already.
    #[error("the field {0} is defined already")]
    AlreadyDefined(String),
    /// No such field.
    #[error("no such field")]
    NotDefined,
    /// A field's type cannot change (stored values would no longer fit).
    #[error("a field's type cannot change; define a new field")]
    TypeChange,
    /// A select or multiselect needs options, others take none.
    #[error("{0}")]
    Options(String),
    /// The default does not fit the field.
    #[error("default: {0}")]
    BadDefault(String),
    /// Uniqueness cannot apply here.
    #[error("unique: {0}")]
    Unique(String),
    /// Too many fields.
    #[error("an organization can define at most {max} fields")]
    TooMany { max: usize },
}

impl Aggregate for FieldSchema {
    const TYPE: &'static str = "field_schema";
    type Command = FieldSchemaCommand;
    type Event = FieldSchemaEvent;
    type Error = FieldSchemaError;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        if let Some(e) = self.decide(command)? {
            sink.write(e, self).await;
        }
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        match event {
            FieldSchemaEvent::FieldDefined { definition }
            | FieldSchemaEvent::FieldChanged { definition } => {
                self.fields.insert(definition.key.clone(), definition);
            }
            FieldSchemaEvent::FieldRemoved { key } => {
                self.fields.remove(&key);
            }
        }
    }
}

impl FieldSchema {
    fn valid(d: FieldDefinition) -> Result<FieldDefinition, FieldSchemaError> {
        let choices = matches!(d.field_type, FieldType::Select | FieldType::Multiselect);
        if choices && d.options.is_empty() {
            return Err(FieldSchemaError::Options("a select needs options".into()));
        }
        if !choices && !d.options.is_empty() {
            return Err(FieldSchemaError::Options(
                "only selects take options".into(),
            ));
        }
        let scalar = !matches!(
            d.field_type,
            FieldType::Boolean | FieldType::Multiselect | FieldType::LongText
        );
        if d.unique && !scalar {
            return Err(FieldSchemaError::Unique(
                "booleans, multiselects and long texts cannot be unique".into(),
            ));
        }
        let default = match &d.default {
            Some(v) => Some(d.check(v).map_err(FieldSchemaError::BadDefault)?),
            None => None,
        };
        Ok(FieldDefinition { default, ..d })
    }

    fn decide(
        &self,
        command: FieldSchemaCommand,
    ) -> Result<Option<FieldSchemaEvent>, FieldSchemaError> {
        use FieldSchemaCommand as C;
        use FieldSchemaEvent as E;
        Ok(match command {
            C::Define(d) => {
                if self.fields.contains_key(&d.key) {
                    return Err(FieldSchemaError::AlreadyDefined(d.key));
                }
                if self.fields.len() >= MAX_DEFINITIONS {
                    return Err(FieldSchemaError::TooMany {
                        max: MAX_DEFINITIONS,
                    });
                }
                Some(E::FieldDefined {
                    definition: Self::valid(d)?,
                })
            }
            C::Change(d) => {
                let current = self
                    .fields
                    .get(&d.key)
                    .ok_or(FieldSchemaError::NotDefined)?;
                if current.field_type != d.field_type {
                    return Err(FieldSchemaError::TypeChange);
                }
                if current.unique != d.unique {
                    return Err(FieldSchemaError::Unique(
                        "unique is chosen when the field is defined".into(),
                    ));
                }
                let d = Self::valid(d)?;
                (*current != d).then_some(E::FieldChanged { definition: d })
            }
            C::Remove { key } => {
                if !self.fields.contains_key(&key) {
                    return Err(FieldSchemaError::NotDefined);
                }
                Some(E::FieldRemoved { key })
            }
        })
    }

    /// `fields` of a new contact checked against the definitions: values normalised,
    /// defaults filled in, required fields present. Every problem is named by field.
    pub fn check_new(
        &self,
        fields: &mut BTreeMap<crate::contact::FieldKey, FieldValue>,
    ) -> Vec<(String, String)> {
        let mut problems =
            self.check_values(fields.iter_mut().map(|(k, v)| (k.as_str().to_owned(), v)));
        for d in self.fields.values() {
            let present = fields.keys().any(|k| k.as_str() == d.key);
            if present {
                continue;
            }
            match (&d.default, crate::contact::FieldKey::parse(&d.key)) {
                (Some(v), Ok(k)) => {
                    fields.insert(k, v.clone());
                }
                _ if d.required => problems.push((format!("fields.{}", d.key), "required".into())),
                _ => {}
            }
        }
        problems
    }

    /// A change of fields checked: values normalised; a required field cannot be cleared.
    pub fn check_patch(
        &self,
        fields: &mut BTreeMap<crate::contact::FieldKey, Option<FieldValue>>,
    ) -> Vec<(String, String)> {
        let mut problems = Vec::new();
        for (k, v) in fields.iter_mut() {
            let Some(d) = self.fields.get(k.as_str()) else {
                continue;
            };
            match v {
                Some(value) => match d.check(value) {
                    Ok(n) => *value = n,
                    Err(why) => problems.push((format!("fields.{}", d.key), why)),
                },
                None if d.required => problems.push((
                    format!("fields.{}", d.key),
                    "required; it cannot be cleared".into(),
                )),
                None => {}
            }
        }
        problems
    }

    fn check_values<'a>(
        &self,
        values: impl Iterator<Item = (String, &'a mut FieldValue)>,
    ) -> Vec<(String, String)> {
        let mut problems = Vec::new();
        for (k, v) in values {
            if let Some(d) = self.fields.get(&k) {
                match d.check(v) {
                    Ok(n) => *v = n,
                    Err(why) => problems.push((format!("fields.{k}"), why)),
                }
            }
        }
        problems
    }
}
