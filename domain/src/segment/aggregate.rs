use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};

use super::rule::{Checked, Rule};

/// A segment: a static list (members added and removed by hand or import) or a dynamic
/// rule (members are whoever matches it, kept current as contacts change).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Segment {
    pub exists: bool,
    pub deleted: bool,
    pub name: String,
    pub description: Option<String>,
    pub kind: SegmentKind,
    /// The rule as written, and as checked (dynamic segments).
    pub rule: Option<Rule>,
    pub compiled: Option<Checked>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SegmentKind {
    #[default]
    Static,
    Dynamic,
}

/// What a segment holds: a list, or a rule (checked against the field definitions before
/// the command, as outside data is).
#[derive(Debug, Clone, PartialEq)]
pub enum Definition {
    Static,
    Dynamic { rule: Rule, compiled: Checked },
}

#[derive(Debug, Clone, PartialEq)]
pub enum SegmentCommand {
    Create {
        name: String,
        description: Option<String>,
        definition: Definition,
    },
    Update(SegmentPatch),
    Delete,
}

/// A partial update: absent means "leave as is".
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SegmentPatch {
    pub name: Option<String>,
    pub description: Option<Option<String>>,
    pub rule: Option<(Rule, Checked)>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum SegmentEvent {
    SegmentCreated {
        name: String,
        description: Option<String>,
        kind: SegmentKind,
        rule: Option<Rule>,
        /// The rule as checked when it was saved: what evaluators run.
        compiled: Option<Checked>,
    },
    SegmentRenamed {
        name: String,
        description: Option<String>,
    },
    SegmentRuleChanged {
        rule: Rule,
        compiled: Checked,
    },
    SegmentDeleted {},
}

impl DomainEvent for SegmentEvent {
    fn event_type(&self) -> String {
        match self {
            Self::SegmentCreated { .. } => "SegmentCreated",
            Self::SegmentRenamed { .. } => "SegmentRenamed",
            Self::SegmentRuleChanged { .. } => "SegmentRuleChanged",
            Self::SegmentDeleted { .. } => "SegmentDeleted",
        }
        .to_owned()
    }

    fn event_version(&self) -> String {
        "1.0".to_owned()
    }
}

/// Why a segment command was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SegmentError {
    /// The segment exists already.
    #[error("the segment exists already")]
    AlreadyExists,
    /// No such segment (or it was deleted).
    #[error("no such segment")]
    NotFound,
    /// A name is 1 to 200 characters.
    #[error("name: 1 to 200 characters, no control characters")]
    BadName,
    /// A description is at most 2000 characters.
    #[error("description: at most 2000 characters")]
    BadDescription,
    /// Only dynamic segments have rules.
    #[error("a static segment has no rule; create a dynamic segment instead")]
    StaticHasNoRule,
    /// Contacts are added to and removed from static segments only.
    #[error("a dynamic segment's members follow its rule; change the rule instead")]
    MembersFollowRule,
}

impl Aggregate for Segment {
    const TYPE: &'static str = "segment";
    type Command = SegmentCommand;
    type Event = SegmentEvent;
    type Error = SegmentError;
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
            SegmentEvent::SegmentCreated {
                name,
                description,
                kind,
                rule,
                compiled,
            } => {
                self.exists = true;
                self.name = name;
                self.description = description;
                self.kind = kind;
                self.rule = rule;
                self.compiled = compiled;
            }
            SegmentEvent::SegmentRenamed { name, description } => {
                self.name = name;
                self.description = description;
            }
            SegmentEvent::SegmentRuleChanged { rule, compiled } => {
                self.rule = Some(rule);
                self.compiled = Some(compiled);
            }
            SegmentEvent::SegmentDeleted {} => self.deleted = true,
        }
    }
}

impl Segment {
    /// Whether the segment can be used (exists, not deleted).
    pub fn live(&self) -> bool {
        self.exists && !self.deleted
    }

    fn decide(&self, command: SegmentCommand) -> Result<Vec<SegmentEvent>, SegmentError> {
        match command {
            SegmentCommand::Create {
                name,
                description,
                definition,
            } => {
                if self.exists {
                    return Err(SegmentError::AlreadyExists);
                }
                let (kind, rule, compiled) = match definition {
                    Definition::Static => (SegmentKind::Static, None, None),
                    Definition::Dynamic { rule, compiled } => {
                        (SegmentKind::Dynamic, Some(rule), Some(compiled))
                    }
                };
                Ok(vec![SegmentEvent::SegmentCreated {
                    name: valid_name(&name)?,
                    description: valid_description(description)?,
                    kind,
                    rule,
                    compiled,
                }])
            }
            SegmentCommand::Update(patch) => {
                if !self.live() {
                    return Err(SegmentError::NotFound);
                }
                let mut out = Vec::new();
                let name = match patch.name {
                    Some(n) => valid_name(&n)?,
                    None => self.name.clone(),
                };
                let description = match patch.description {
                    Some(d) => valid_description(d)?,
                    None => self.description.clone(),
                };
                if name != self.name || description != self.description {
                    out.push(SegmentEvent::SegmentRenamed { name, description });
                }
                if let Some((rule, compiled)) = patch.rule {
                    if self.kind == SegmentKind::Static {
                        return Err(SegmentError::StaticHasNoRule);
                    }
                    if self.compiled.as_ref() != Some(&compiled) {
                        out.push(SegmentEvent::SegmentRuleChanged { rule, compiled });
                    }
                }
                Ok(out)
            }
            SegmentCommand::Delete => {
                if !self.live() {
                    return Err(SegmentError::NotFound);
                }
                Ok(vec![SegmentEvent::SegmentDeleted {}])
            }
        }
    }
}

fn valid_name(raw: &str) -> Result<String, SegmentError> {
    let s = raw.trim();
    if s.is_empty() || s.chars().count() > 200 || s.chars().any(char::is_control) {
        return Err(SegmentError::BadName);
    }
    Ok(s.to_owned())
}

fn valid_description(d: Option<String>) -> Result<Option<String>, SegmentError> {
    match d.map(|d| d.trim().to_owned()).filter(|d| !d.is_empty()) {
        Some(d) if d.chars().count() > 2000 => Err(SegmentError::BadDescription),
        d => Ok(d),
    }
}
