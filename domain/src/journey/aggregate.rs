//! The `Journey` aggregate: a draft edited freely, published as immutable numbered versions.
//!
//! ```text
//! draft ──publish──► live ⇄ paused          (publish again: a new version, still live)
//!   │                 │       │
//!   └─────────────────┴───────┴──archive──► archived
//! ```
//!
//! New executions start on the latest version; executions in flight finish on theirs.
//! Paused: nobody enters and executions in flight hold where they are until resumed.
//! Archived: nobody enters and executions in flight exit.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};

use super::definition::{Definition, Problem, MAX_NAME};
use crate::field::FieldDefinition;
use crate::segment::rule::Checked;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    #[default]
    None,
    Draft,
    Live,
    Paused,
    Archived,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Draft => "draft",
            Self::Live => "live",
            Self::Paused => "paused",
            Self::Archived => "archived",
        }
    }
}

/// A published version: the definition frozen, with its conditions' rules checked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Version {
    pub number: u32,
    pub definition: Definition,
    /// The checked rule of each conditional step, by step id.
    pub rules: BTreeMap<String, Checked>,
    pub published_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Journey {
    pub status: Status,
    pub name: String,
    pub draft: Definition,
    /// Versions published, in order (numbers from 1).
    pub versions: Vec<u32>,
    pub published_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum JourneyCommand {
    Create {
        name: String,
        definition: Definition,
    },
    /// Replace the draft (and/or the name).
    Edit {
        name: Option<String>,
        definition: Option<Definition>,
    },
    /// Freeze the draft as the next version, its rules checked against `fields`.
    Publish {
        fields: BTreeMap<String, FieldDefinition>,
        now: DateTime<Utc>,
    },
    Pause {
        now: DateTime<Utc>,
    },
    Resume {
        now: DateTime<Utc>,
    },
    Archive {
        now: DateTime<Utc>,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum JourneyEvent {
    JourneyCreated {
        name: String,
        definition: Definition,
    },
    JourneyDraftChanged {
        name: String,
        definition: Definition,
        /// `name` and/or `definition`.
        changed: Vec<String>,
    },
    JourneyPublished {
        version: u32,
        definition: Definition,
        rules: BTreeMap<String, Checked>,
        at: DateTime<Utc>,
    },
    JourneyPaused {
        at: DateTime<Utc>,
    },
    JourneyResumed {
        at: DateTime<Utc>,
    },
    JourneyArchived {
        at: DateTime<Utc>,
    },
}

impl DomainEvent for JourneyEvent {
    fn event_type(&self) -> String {
        match self {
            Self::JourneyCreated { .. } => "JourneyCreated",
            Self::JourneyDraftChanged { .. } => "JourneyDraftChanged",
            Self::JourneyPublished { .. } => "JourneyPublished",
            Self::JourneyPaused { .. } => "JourneyPaused",
            Self::JourneyResumed { .. } => "JourneyResumed",
            Self::JourneyArchived { .. } => "JourneyArchived",
        }
        .to_owned()
    }

    fn event_version(&self) -> String {
        "1.0".to_owned()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JourneyError {
    #[error("the journey exists already")]
    AlreadyExists,
    #[error("no such journey")]
    NotFound,
    #[error("name: 1 to {MAX_NAME} characters")]
    Name,
    /// The definition has problems (all of them).
    #[error("the journey cannot be published as it is")]
    Invalid(Vec<Problem>),
    #[error("the journey is {status}: {action} is not possible")]
    Status {
        status: &'static str,
        action: &'static str,
    },
}

fn check_name(name: &str) -> Result<String, JourneyError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > MAX_NAME {
        return Err(JourneyError::Name);
    }
    Ok(name.to_owned())
}

fn check_draft(d: &Definition) -> Result<(), JourneyError> {
    let problems = d.check_draft();
    if problems.is_empty() {
        Ok(())
    } else {
        Err(JourneyError::Invalid(problems))
    }
}

impl Journey {
    fn refuse(&self, action: &'static str) -> JourneyError {
        match self.status {
            Status::None => JourneyError::NotFound,
            s => JourneyError::Status {
                status: s.as_str(),
                action,
            },
        }
    }

    /// The latest version, if any.
    pub fn live_version(&self) -> Option<u32> {
        self.versions.last().copied()
    }

    /// The events `command` leads to (pure).
    pub fn decide(&self, command: JourneyCommand) -> Result<Vec<JourneyEvent>, JourneyError> {
        use JourneyCommand as C;
        use JourneyEvent as E;
        let s = self.status;
        match command {
            C::Create { name, definition } => {
                if s != Status::None {
                    return Err(JourneyError::AlreadyExists);
                }
                let name = check_name(&name)?;
                check_draft(&definition)?;
                Ok(vec![E::JourneyCreated { name, definition }])
            }
            C::Edit { name, definition } => {
                if matches!(s, Status::None | Status::Archived) {
                    return Err(self.refuse("editing"));
                }
                let name = match name {
                    Some(n) => check_name(&n)?,
                    None => self.name.clone(),
                };
                let definition = definition.unwrap_or_else(|| self.draft.clone());
                check_draft(&definition)?;
                let mut changed = Vec::new();
                if name != self.name {
                    changed.push("name".to_owned());
                }
                if definition != self.draft {
                    changed.push("definition".to_owned());
                }
                if changed.is_empty() {
                    return Ok(vec![]);
                }
                Ok(vec![E::JourneyDraftChanged {
                    name,
                    definition,
                    changed,
                }])
            }
            C::Publish { fields, now } => {
                if matches!(s, Status::None | Status::Archived) {
                    return Err(self.refuse("publishing"));
                }
                let rules = self
                    .draft
                    .check_publish(|rule| {
                        rule.check(&fields)
                            .map_err(|es| es.into_iter().map(|e| e.to_string()).collect())
                    })
                    .map_err(JourneyError::Invalid)?;
                Ok(vec![E::JourneyPublished {
                    version: self.live_version().unwrap_or(0) + 1,
                    definition: self.draft.clone(),
                    rules,
                    at: now,
                }])
            }
            C::Pause { now } => {
                if s != Status::Live {
                    return Err(self.refuse("pausing"));
                }
                Ok(vec![E::JourneyPaused { at: now }])
            }
            C::Resume { now } => {
                if s != Status::Paused {
                    return Err(self.refuse("resuming"));
                }
                Ok(vec![E::JourneyResumed { at: now }])
            }
            C::Archive { now } => {
                if matches!(s, Status::None | Status::Archived) {
                    return Err(self.refuse("archiving"));
                }
                Ok(vec![E::JourneyArchived { at: now }])
            }
        }
    }
}

impl Aggregate for Journey {
    const TYPE: &'static str = "journey";
    type Command = JourneyCommand;
    type Event = JourneyEvent;
    type Error = JourneyError;
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
        use JourneyEvent as E;
        match event {
            E::JourneyCreated { name, definition } => {
                self.status = Status::Draft;
                self.name = name;
                self.draft = definition;
            }
            E::JourneyDraftChanged {
                name, definition, ..
            } => {
                self.name = name;
                self.draft = definition;
            }
            E::JourneyPublished { version, at, .. } => {
                if self.status == Status::Draft {
                    self.status = Status::Live;
                }
                self.versions.push(version);
                self.published_at = Some(at);
            }
            E::JourneyPaused { .. } => self.status = Status::Paused,
            E::JourneyResumed { .. } => self.status = Status::Live,
            E::JourneyArchived { .. } => self.status = Status::Archived,
        }
    }
}
