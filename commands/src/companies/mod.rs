//! Companies: the service ([`Companies`]: create, update, link contacts) and its routes.

pub mod http;

use std::sync::Arc;

use axum::routing::{patch, post, put};
use axum::Router;
use domain::company::{Company, CompanyCommand, CompanyError, CompanyPatch, NewCompany};
use domain::contact::ContactCommand;
use domain::{CompanyId, ContactId, TenantId};
use event_store::EventMetadata;

use crate::contacts::{Contacts, ContactsError};
use crate::executor::{Accepted, Executor};
use crate::{CommandError, CommandState};

/// Why a company command was not carried out.
pub type CompaniesError = CommandError<CompanyError>;

/// The companies of every organization, and the links of contacts to them.
#[derive(Clone)]
pub struct Companies {
    executor: Arc<Executor<Company>>,
    contacts: Contacts,
}

impl Companies {
    pub fn new(executor: Arc<Executor<Company>>, contacts: Contacts) -> Self {
        Self { executor, contacts }
    }

    /// Creates a company.
    pub async fn create(
        &self,
        tenant: TenantId,
        new: NewCompany,
        meta: &EventMetadata,
    ) -> Result<Accepted, CompaniesError> {
        let id = CompanyId::generate();
        self.executor
            .execute(tenant.0, id.0, CompanyCommand::Create(new), meta)
            .await
    }

    /// Changes a company's name, domain or custom fields.
    pub async fn update(
        &self,
        tenant: TenantId,
        id: CompanyId,
        patch: CompanyPatch,
        meta: &EventMetadata,
    ) -> Result<Accepted, CompaniesError> {
        self.executor
            .execute(tenant.0, id.0, CompanyCommand::Update(patch), meta)
            .await
    }

    /// Links contact `contact` to company `company` (which must exist in the organization).
    pub async fn link(
        &self,
        tenant: TenantId,
        contact: ContactId,
        company: CompanyId,
        primary: bool,
        meta: &EventMetadata,
    ) -> Result<Accepted, ContactsError> {
        // Loaded by tenant-scoped id: another organization's company does not exist here.
        let found = self.executor.load(tenant.0, company.0).await;
        if !found
            .map_err(|e| ContactsError::Technical(Box::new(e)))?
            .exists
        {
            return Err(ContactsError::NoSuchCompany);
        }
        let command = ContactCommand::LinkCompany {
            company_id: company.0,
            primary,
        };
        self.contacts.execute(tenant, contact, command, meta).await
    }

    /// Unlinks contact `contact` from company `company` (nothing changes if it was not).
    pub async fn unlink(
        &self,
        tenant: TenantId,
        contact: ContactId,
        company: CompanyId,
        meta: &EventMetadata,
    ) -> Result<Accepted, ContactsError> {
        let command = ContactCommand::UnlinkCompany(company.0);
        self.contacts.execute(tenant, contact, command, meta).await
    }
}

pub fn routes() -> Router<CommandState> {
    Router::new()
        .route("/api/v1/companies", post(http::create))
        .route("/api/v1/companies/{id}", patch(http::update))
        .route(
            "/api/v1/contacts/{id}/companies/{company_id}",
            put(http::link).delete(http::unlink),
        )
}
