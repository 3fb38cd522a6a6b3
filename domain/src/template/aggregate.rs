use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};

use super::content::{Channel, CheckedContent, Content};

/// A message template of one channel: immutable numbered versions (1, 2, 3 …), at most one
/// of them published (the one sends use).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Template {
    pub exists: bool,
    pub deleted: bool,
    pub name: String,
    pub channel: Channel,
    /// The number of the last version saved (0: none yet).
    pub latest_version: u32,
    pub published_version: Option<u32>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum TemplateCommand {
    Create {
        name: String,
        channel: Channel,
    },
    /// Save content as the next version (checked against the render context first).
    SaveVersion {
        content: CheckedContent,
    },
    Publish {
        version: u32,
    },
    Rename {
        name: String,
    },
    Delete,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum TemplateEvent {
    TemplateCreated {
        name: String,
        channel: Channel,
    },
    TemplateVersionSaved {
        version: u32,
        content: Content,
    },
    TemplateVersionPublished {
        version: u32,
        /// The version it replaces, if one was published.
        previous: Option<u32>,
    },
    TemplateRenamed {
        name: String,
    },
    TemplateDeleted {},
}

impl DomainEvent for TemplateEvent {
    fn event_type(&self) -> String {
        match self {
            Self::TemplateCreated { .. } => "TemplateCreated",
            Self::TemplateVersionSaved { .. } => "TemplateVersionSaved",
            Self::TemplateVersionPublished { .. } => "TemplateVersionPublished",
            Self::TemplateRenamed { .. } => "TemplateRenamed",
            Self::TemplateDeleted { .. } => "TemplateDeleted",
        }
        .to_owned()
    }

    fn event_version(&self) -> String {
        "1.0".to_owned()
    }
}

/// Why a template command was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// The template exists already.
    #[error("the template exists already")]
    AlreadyExists,
    /// No such template.
    #[error("no such template")]
    NotFound,
    /// The template was deleted; it takes no more commands.
    #[error("the template was deleted")]
    Deleted,
    /// A name is 1 to 200 characters.
    #[error("name: 1 to 200 characters, no control characters")]
    BadName,
    /// Content of another channel than the template's.
    #[error("this is a {expected} template; the content is for {given}")]
    WrongChannel {
        expected: &'static str,
        given: &'static str,
    },
    /// No version with that number.
    #[error("no version {0}")]
    NoSuchVersion(u32),
}

impl Aggregate for Template {
    const TYPE: &'static str = "template";
    type Command = TemplateCommand;
    type Event = TemplateEvent;
    type Error = TemplateError;
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
            TemplateEvent::TemplateCreated { name, channel } => {
                self.exists = true;
                self.name = name;
                self.channel = channel;
            }
            TemplateEvent::TemplateVersionSaved { version, .. } => self.latest_version = version,
            TemplateEvent::TemplateVersionPublished { version, .. } => {
                self.published_version = Some(version)
            }
            TemplateEvent::TemplateRenamed { name } => self.name = name,
            TemplateEvent::TemplateDeleted {} => self.deleted = true,
        }
    }
}

impl Template {
    /// Whether the template can be used (exists, not deleted).
    pub fn live(&self) -> bool {
        self.exists && !self.deleted
    }

    fn decide(&self, command: TemplateCommand) -> Result<Vec<TemplateEvent>, TemplateError> {
        if let TemplateCommand::Create { name, channel } = command {
            if self.exists {
                return Err(TemplateError::AlreadyExists);
            }
            return Ok(vec![TemplateEvent::TemplateCreated {
                name: valid_name(&name)?,
                channel,
            }]);
        }
        if !self.exists {
            return Err(TemplateError::NotFound);
        }
        if self.deleted {
            return Err(TemplateError::Deleted);
        }
        match command {
            TemplateCommand::Create { .. } => Err(TemplateError::AlreadyExists),
            TemplateCommand::SaveVersion { content } => {
                let content = content.into_content();
                if content.channel() != self.channel {
                    return Err(TemplateError::WrongChannel {
                        expected: self.channel.as_str(),
                        given: content.channel().as_str(),
                    });
                }
                Ok(vec![TemplateEvent::TemplateVersionSaved {
                    version: self.latest_version + 1,
                    content,
                }])
            }
            TemplateCommand::Publish { version } => {
                if version == 0 || version > self.latest_version {
                    return Err(TemplateError::NoSuchVersion(version));
                }
                if self.published_version == Some(version) {
                    return Ok(vec![]);
                }
                Ok(vec![TemplateEvent::TemplateVersionPublished {
                    version,
                    previous: self.published_version,
                }])
            }
            TemplateCommand::Rename { name } => {
                let name = valid_name(&name)?;
                if name == self.name {
                    return Ok(vec![]);
                }
                Ok(vec![TemplateEvent::TemplateRenamed { name }])
            }
            TemplateCommand::Delete => Ok(vec![TemplateEvent::TemplateDeleted {}]),
        }
    }
}

fn valid_name(raw: &str) -> Result<String, TemplateError> {
    let s = raw.trim();
    if s.is_empty() || s.chars().count() > 200 || s.chars().any(char::is_control) {
        return Err(TemplateError::BadName);
    }
    Ok(s.to_owned())
}
