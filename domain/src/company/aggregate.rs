use std::collections::BTreeMap;

use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};

use crate::contact::{FieldKey, FieldValue, Fields, FieldsDiff, MAX_FIELDS};

/// The write model of a company.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Company {
    pub exists: bool,
    pub name: String,
    pub domain: Option<String>,
    pub fields: BTreeMap<String, FieldValue>,
}

/// What can be asked of a company.
#[derive(Debug, Clone, PartialEq)]
pub enum CompanyCommand {
    Create(NewCompany),
    Update(CompanyPatch),
}

#[derive(Debug, Clone, PartialEq)]
pub struct NewCompany {
    pub name: String,
    /// The company's web domain, e.g. `example.org`.
    pub domain: Option<String>,
    pub fields: Fields,
}

/// A partial update: absent means "leave as is"; a `None` field value removes the field.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CompanyPatch {
    pub name: Option<String>,
    pub domain: Option<Option<String>>,
    pub fields: BTreeMap<FieldKey, Option<FieldValue>>,
}

/// Facts about a company. Events carry the whole new name and domain.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum CompanyEvent {
    CompanyCreated {
        name: String,
        domain: Option<String>,
        fields: BTreeMap<String, FieldValue>,
    },
    CompanyUpdated {
        /// `name`, `domain`, `fields.<key>`.
        changed: Vec<String>,
        name: String,
        domain: Option<String>,
        fields_set: BTreeMap<String, FieldValue>,
        fields_unset: Vec<String>,
    },
}

impl DomainEvent for CompanyEvent {
    fn event_type(&self) -> String {
        match self {
            Self::CompanyCreated { .. } => "CompanyCreated",
            Self::CompanyUpdated { .. } => "CompanyUpdated",
        }
        .to_owned()
    }

    fn event_version(&self) -> String {
        "1.0".to_owned()
    }
}

/// Why a company refused a command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CompanyError {
    /// The company already exists.
    #[error("the company already exists")]
    AlreadyExists,
    /// No such company.
    #[error("no such company")]
    NotFound,
    /// The change would leave the company with more custom fields than allowed.
    #[error("a company can carry at most {max} custom fields")]
    TooManyFields { max: usize },
}

impl Aggregate for Company {
    const TYPE: &'static str = "company";
    type Command = CompanyCommand;
    type Event = CompanyEvent;
    type Error = CompanyError;
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
            CompanyEvent::CompanyCreated {
                name,
                domain,
                fields,
            } => {
                self.exists = true;
                self.name = name;
                self.domain = domain;
                self.fields = fields;
            }
            CompanyEvent::CompanyUpdated {
                name,
                domain,
                fields_set,
                fields_unset,
                ..
            } => {
                self.name = name;
                self.domain = domain;
                self.fields.extend(fields_set);
                for k in fields_unset {
                    self.fields.remove(&k);
                }
            }
        }
    }
}

impl Company {
    fn decide(&self, command: CompanyCommand) -> Result<Option<CompanyEvent>, CompanyError> {
        match command {
            CompanyCommand::Create(new) => {
                if self.exists {
                    return Err(CompanyError::AlreadyExists);
                }
                if new.fields.len() > MAX_FIELDS {
                    return Err(CompanyError::TooManyFields { max: MAX_FIELDS });
                }
                Ok(Some(CompanyEvent::CompanyCreated {
                    name: new.name,
                    domain: new.domain,
                    fields: new
                        .fields
                        .into_iter()
                        .map(|(k, v)| (k.as_str().to_owned(), v))
                        .collect(),
                }))
            }
            CompanyCommand::Update(patch) => {
                if !self.exists {
                    return Err(CompanyError::NotFound);
                }
                let mut changed = Vec::new();
                let name = match patch.name {
                    Some(n) if n != self.name => {
                        changed.push("name".to_owned());
                        n
                    }
                    _ => self.name.clone(),
                };
                let domain = match patch.domain {
                    Some(d) if d != self.domain => {
                        changed.push("domain".to_owned());
                        d
                    }
                    _ => self.domain.clone(),
                };
                let diff = FieldsDiff::of(&self.fields, patch.fields);
                if diff.count_after > MAX_FIELDS {
                    return Err(CompanyError::TooManyFields { max: MAX_FIELDS });
                }
                changed.extend(diff.changed);
                let (fields_set, fields_unset) = (diff.set, diff.unset);
                Ok(
                    (!changed.is_empty()).then_some(CompanyEvent::CompanyUpdated {
                        changed,
                        name,
                        domain,
                        fields_set,
                        fields_unset,
                    }),
                )
            }
        }
    }
}
