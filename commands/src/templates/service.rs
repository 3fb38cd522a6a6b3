//! The templates service: create, rename, delete, save content as the next version (compiled
//! and checked against the render context and the organization's fields first), publish.

use std::sync::Arc;

use domain::template::render::{self, Known, PartError};
use domain::template::{Channel, Content, Template, TemplateCommand, TemplateError};
use domain::{TemplateId, TenantId};
use event_store::EventMetadata;

use crate::executor::{Accepted, Executor};
use crate::fields::Fields;
use crate::{CommandError, Invalid, Technical};

/// Why a template command was not carried out.
#[derive(Debug, thiserror::Error)]
pub enum TemplatesError {
    /// The input does not fit (each field named); nothing was written.
    #[error(transparent)]
    Invalid(#[from] Invalid),
    /// The content does not compile, or uses variables the render context lacks (each
    /// problem with its part, line and column).
    #[error("the content has {} error(s)", .0.len())]
    Content(Vec<PartError>),
    /// The template refused it (a business rule, or no such template).
    #[error(transparent)]
    Rejected(TemplateError),
    /// Other writers kept winning the race for the template, even after retries.
    #[error("the template kept changing while the command was applied")]
    Conflict,
    /// The store failed; the cause keeps its own sources.
    #[error("template command could not be stored")]
    Technical(#[source] Technical),
}

impl From<CommandError<TemplateError>> for TemplatesError {
    fn from(e: CommandError<TemplateError>) -> Self {
        match e {
            CommandError::Invalid(e) => Self::Invalid(e),
            CommandError::Rejected(e) => Self::Rejected(e),
            CommandError::Conflict => Self::Conflict,
            CommandError::Technical(t) => Self::Technical(t),
        }
    }
}

/// The message templates of every organization.
#[derive(Clone)]
pub struct Templates {
    executor: Arc<Executor<Template>>,
    fields: Fields,
}

impl Templates {
    pub fn new(executor: Arc<Executor<Template>>, fields: Fields) -> Self {
        Self { executor, fields }
    }

    /// The command runner underneath (campaigns check their templates through it).
    pub fn executor(&self) -> &Arc<Executor<Template>> {
        &self.executor
    }

    /// Template `id` as the log has it now.
    pub async fn get(&self, tenant: TenantId, id: TemplateId) -> Result<Template, TemplatesError> {
        Ok(self.executor.load(tenant.0, id.0).await?)
    }

    /// Creates a template of `channel` (no content yet: save a version next).
    pub async fn create(
        &self,
        tenant: TenantId,
        name: String,
        channel: Channel,
        meta: &EventMetadata,
    ) -> Result<Accepted, TemplatesError> {
        let command = TemplateCommand::Create { name, channel };
        self.run(tenant, TemplateId::generate(), command, meta)
            .await
    }

    /// Renames a template.
    pub async fn rename(
        &self,
        tenant: TenantId,
        id: TemplateId,
        name: String,
        meta: &EventMetadata,
    ) -> Result<Accepted, TemplatesError> {
        self.run(tenant, id, TemplateCommand::Rename { name }, meta)
            .await
    }

    /// Deletes a template (it stays in the log; it takes no more commands).
    pub async fn delete(
        &self,
        tenant: TenantId,
        id: TemplateId,
        meta: &EventMetadata,
    ) -> Result<Accepted, TemplatesError> {
        self.run(tenant, id, TemplateCommand::Delete, meta).await
    }

    /// The channel of template `id`, which must exist and not be deleted (what its content
    /// must be made of).
    pub async fn channel(
        &self,
        tenant: TenantId,
        id: TemplateId,
    ) -> Result<Channel, TemplatesError> {
        let template = self.get(tenant, id).await?;
        if !template.exists {
            return Err(TemplatesError::Rejected(TemplateError::NotFound));
        }
        if template.deleted {
            return Err(TemplatesError::Rejected(TemplateError::Deleted));
        }
        Ok(template.channel)
    }

    /// Saves `content` as template `id`'s next version: every part is compiled (strict
    /// Handlebars) and checked against the render context and the organization's fields.
    pub async fn save_version(
        &self,
        tenant: TenantId,
        id: TemplateId,
        content: Content,
        meta: &EventMetadata,
    ) -> Result<Accepted, TemplatesError> {
        let schema = self
            .fields
            .schema(tenant)
            .await
            .map_err(|e| TemplatesError::from(e.within::<TemplateError>()))?;
        let known = Known {
            fields: schema.fields.keys().cloned().collect(),
        };
        let content = render::check(content, &known).map_err(TemplatesError::Content)?;
        self.run(tenant, id, TemplateCommand::SaveVersion { content }, meta)
            .await
    }

    /// Publishes version `version`: sends use it from now on.
    pub async fn publish(
        &self,
        tenant: TenantId,
        id: TemplateId,
        version: u32,
        meta: &EventMetadata,
    ) -> Result<Accepted, TemplatesError> {
        self.run(tenant, id, TemplateCommand::Publish { version }, meta)
            .await
    }

    async fn run(
        &self,
        tenant: TenantId,
        id: TemplateId,
        command: TemplateCommand,
        meta: &EventMetadata,
    ) -> Result<Accepted, TemplatesError> {
        Ok(self.executor.execute(tenant.0, id.0, command, meta).await?)
    }
}
