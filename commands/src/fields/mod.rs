//! Field definitions: the service ([`Fields`]) and its routes.

pub mod claims;
pub mod http;

use std::sync::Arc;

use axum::routing::{patch, post};
use axum::Router;
use domain::contact::FieldValue;
use domain::field::{FieldDefinition, FieldSchema, FieldSchemaCommand, FieldSchemaError};
use domain::TenantId;
use event_store::EventMetadata;

use crate::executor::{Accepted, Executor};
use crate::{CommandError, CommandState};

pub fn routes() -> Router<CommandState> {
    Router::new()
        .route("/api/v1/fields", post(http::define))
        .route(
            "/api/v1/fields/{key}",
            patch(http::change).delete(http::remove),
        )
}

/// Why a field command was not carried out.
pub type FieldsError = CommandError<FieldSchemaError>;

/// A change to a field's definition: `None` leaves each part as it is; `default: Some(None)`
/// removes the default. The type and `unique` never change.
#[derive(Debug, Clone, Default)]
pub struct FieldChange {
    pub label: Option<String>,
    pub required: Option<bool>,
    pub default: Option<Option<FieldValue>>,
    pub options: Option<Vec<String>>,
}

/// The custom fields of every organization (one schema per organization).
#[derive(Clone)]
pub struct Fields {
    executor: Arc<Executor<FieldSchema>>,
}

impl Fields {
    pub fn new(executor: Arc<Executor<FieldSchema>>) -> Self {
        Self { executor }
    }

    /// The organization's field definitions, as of now.
    pub async fn schema(&self, tenant: TenantId) -> Result<FieldSchema, FieldsError> {
        self.executor.load(tenant.0, tenant.0).await
    }

    /// Defines a field (the answer's id is the organization's schema).
    pub async fn define(
        &self,
        tenant: TenantId,
        definition: FieldDefinition,
        meta: &EventMetadata,
    ) -> Result<Accepted, FieldsError> {
        self.run(tenant, FieldSchemaCommand::Define(definition), meta)
            .await
    }

    /// Changes field `key`'s label, required flag, default or options.
    pub async fn change(
        &self,
        tenant: TenantId,
        key: &str,
        change: FieldChange,
        meta: &EventMetadata,
    ) -> Result<Accepted, FieldsError> {
        let schema = self.schema(tenant).await?;
        let current = schema
            .fields
            .get(key)
            .cloned()
            .ok_or(CommandError::Rejected(FieldSchemaError::NotDefined))?;
        let definition = FieldDefinition {
            label: change.label.unwrap_or_else(|| current.label.clone()),
            required: change.required.unwrap_or(current.required),
            default: change.default.unwrap_or_else(|| current.default.clone()),
            options: change.options.unwrap_or_else(|| current.options.clone()),
            ..current
        };
        self.run(tenant, FieldSchemaCommand::Change(definition), meta)
            .await
    }

    /// Removes field `key`'s definition (values stored already stay on the contacts).
    pub async fn remove(
        &self,
        tenant: TenantId,
        key: String,
        meta: &EventMetadata,
    ) -> Result<Accepted, FieldsError> {
        self.run(tenant, FieldSchemaCommand::Remove { key }, meta)
            .await
    }

    async fn run(
        &self,
        tenant: TenantId,
        command: FieldSchemaCommand,
        meta: &EventMetadata,
    ) -> Result<Accepted, FieldsError> {
        self.executor
            .execute(tenant.0, tenant.0, command, meta)
            .await
    }
}
