//! The query API: reads of read models (and, for audit, of the log). Never writes.
//!
//! - [`consistency`]: `?consistent_after=` / `X-Mauntic-After` read-your-writes waits.
//! - [`contacts`]: contact list (keyset pages) and detail.
//! - [`companies`]: company list (name search, keyset pages) and detail.
//! - [`notes`]: the notes on a contact.
//! - [`segments`]: segments (list, detail, members) and previews of rules.
//! - [`providers`]: channel providers (settings and secret names, never secret values).
//! - [`warmup`]: warmup of sending domains (configuration and today's standing).
//! - [`templates`]: templates (list, detail, versions) and previews of a version.
//! - [`deliveries`]: delivery jobs (list with filters, detail with their events).
//! - [`campaigns`]: campaigns (list, detail, stats, recipients).
//! - [`journeys`]: journeys (list, detail, versions, stats, executions and their history),
//!   and a contact's journeys.
//! - [`suppressions`]: the suppression list and its entries.
//! - [`resolve`]: a merged contact's id answers as its survivor.
//! - [`params`]: query parameters checked whole (422 naming every bad one).
//! - [`timeline`]: a contact's timeline.
//! - [`csv_export`]: contacts to CSV, streamed.
//! - [`fields`]: the organization's field definitions.
//! - [`export`]: everything held about a contact, as one document (GDPR).
//! - [`audit`]: an aggregate's history and state as of a sequence or time.
//! - [`audit_log`]: who did what, when, from where, in the caller's organization.
//! - [`identity`]: the signed-in user, the organization, members, invites, keys.
//! - [`system`]: projection lag.

pub mod audit;
pub mod audit_log;
pub mod campaigns;
pub mod companies;
pub mod consistency;
pub mod contacts;
pub mod csv_export;
pub mod deliveries;
pub mod export;
pub mod fields;
pub mod identity;
pub mod journeys;
pub mod notes;
pub mod params;
pub mod providers;
pub mod resolve;
pub mod segments;
pub mod suppressions;
pub mod system;
pub mod templates;
pub mod timeline;
pub mod warmup;

use std::time::Duration;

use axum::routing::{get, post};
use axum::Router;
use sqlx::PgPool;

/// The state query handlers share.
#[derive(Clone)]
pub struct QueryState {
    pub pool: PgPool,
    /// How long a query waits for `consistent_after` before answering 503.
    pub consistency_timeout: Duration,
    /// The time rules on relative dates are evaluated at (tests move it).
    pub clock: event_store::Clock,
}

/// The query routes under `/api/v1` (authentication is layered on by the caller).
pub fn router(state: QueryState) -> Router {
    Router::new()
        .route("/api/v1/contacts", get(contacts::list))
        .route("/api/v1/contacts/{id}", get(contacts::get))
        .route("/api/v1/contacts:export", get(csv_export::export))
        .route("/api/v1/contacts/{id}/export", get(export::export))
        .route("/api/v1/contacts/{id}/timeline", get(timeline::page))
        .route("/api/v1/contacts/{id}/notes", get(notes::list))
        .route("/api/v1/contacts/{id}/journeys", get(journeys::of_contact))
        .route("/api/v1/fields", get(fields::list))
        .route("/api/v1/segments", get(segments::list))
        .route("/api/v1/segments:preview", post(segments::preview_rule))
        .route("/api/v1/segments/{id}", get(segments::get))
        .route("/api/v1/segments/{id}/contacts", get(segments::contacts))
        .route("/api/v1/segments/{id}/preview", get(segments::preview))
        .route("/api/v1/deliveries", get(deliveries::list))
        .route("/api/v1/deliveries/{id}", get(deliveries::get))
        .route("/api/v1/campaigns", get(campaigns::list))
        .route("/api/v1/campaigns/{id}", get(campaigns::get))
        .route("/api/v1/campaigns/{id}/stats", get(campaigns::stats))
        .route(
            "/api/v1/campaigns/{id}/recipients",
            get(campaigns::recipients),
        )
        .route("/api/v1/journeys", get(journeys::list))
        .route("/api/v1/journeys/{id}", get(journeys::get))
        .route(
            "/api/v1/journeys/{id}/versions/{version}",
            get(journeys::get_version),
        )
        .route("/api/v1/journeys/{id}/stats", get(journeys::stats))
        .route(
            "/api/v1/journeys/{id}/executions",
            get(journeys::executions),
        )
        .route(
            "/api/v1/journeys/{id}/executions/{execution_id}",
            get(journeys::execution),
        )
        .route("/api/v1/templates", get(templates::list))
        .route("/api/v1/templates/{id}", get(templates::get))
        .route(
            "/api/v1/templates/{id}/versions/{n}",
            get(templates::get_version),
        )
        .route(
            "/api/v1/templates/{id}/versions/{n}/preview",
            post(templates::preview),
        )
        .route("/api/v1/suppressions", get(suppressions::list))
        .route("/api/v1/suppressions/{id}", get(suppressions::get))
        .route("/api/v1/providers", get(providers::list))
        .route("/api/v1/providers/{id}", get(providers::get))
        .route("/api/v1/warmup", get(warmup::list))
        .route("/api/v1/warmup/{domain}", get(warmup::get))
        .route("/api/v1/companies", get(companies::list))
        .route("/api/v1/companies/{id}", get(companies::get))
        .route("/api/v1/audit/{aggregate_type}/{id}", get(audit::get))
        .route("/api/v1/audit", get(audit_log::list))
        .route("/api/v1/me", get(identity::me))
        .route("/api/v1/organization", get(identity::organization))
        .route("/api/v1/organization/members", get(identity::members))
        .route("/api/v1/organization/invites", get(identity::invites))
        .route("/api/v1/api-keys", get(identity::api_keys))
        .route("/api/v1/projections", get(system::projections))
        .with_state(state)
}

/// The OpenAPI description of the query routes.
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(
        contacts::list,
        contacts::get,
        export::export,
        csv_export::export,
        timeline::page,
        notes::list,
        companies::list,
        fields::list,
        segments::list,
        segments::get,
        segments::contacts,
        segments::preview,
        segments::preview_rule,
        deliveries::list,
        deliveries::get,
        campaigns::list,
        campaigns::get,
        campaigns::stats,
        campaigns::recipients,
        journeys::list,
        journeys::get,
        journeys::get_version,
        journeys::stats,
        journeys::executions,
        journeys::execution,
        journeys::of_contact,
        templates::list,
        templates::get,
        templates::get_version,
        templates::preview,
        suppressions::list,
        suppressions::get,
        providers::list,
        providers::get,
        warmup::list,
        warmup::get,
        companies::get,
        audit::get,
        audit_log::list,
        identity::me,
        identity::organization,
        identity::members,
        identity::invites,
        identity::api_keys,
        system::projections
    ),
    components(schemas(
        export::ContactExport,
        export::MergedContact,
        timeline::TimelinePage,
        projections::notes::NoteRow,
        projections::timeline::TimelineRow,
        companies::CompanyPage,
        fields::FieldView,
        segments::SegmentView,
        segments::SegmentPage,
        segments::ContactMatches,
        segments::PreviewRule,
        templates::TemplateSummary,
        templates::TemplateDetail,
        templates::TemplatePage,
        templates::PreviewTemplate,
        templates::Preview,
        providers::ProviderView,
        providers::ProviderList,
        warmup::WarmupView,
        warmup::WarmupList,
        projections::templates::VersionRow,
        projections::deliveries::DeliveryRow,
        deliveries::DeliveryPage,
        deliveries::DeliveryDetail,
        campaigns::CampaignPage,
        campaigns::CampaignStats,
        campaigns::Rates,
        campaigns::Part,
        campaigns::Bucket,
        campaigns::Recipient,
        campaigns::RecipientPage,
        projections::campaigns::list::ListRow,
        projections::campaigns::summaries::SummaryRow,
        projections::campaigns::summaries::Counts,
        projections::campaigns::rollups::Figures,
        projections::campaigns::links::LinkRow,
        journeys::JourneyPage,
        journeys::JourneyDetail,
        journeys::JourneyStats,
        journeys::VersionStats,
        journeys::StepStats,
        journeys::ExecutionPage,
        journeys::ContactJourneyPage,
        journeys::ExecutionHistory,
        projections::journeys::read::JourneyRow,
        projections::journeys::read::ContactExecution,
        projections::journeys::summaries::VersionRef,
        projections::journeys::figures::Counters,
        projections::journeys::executions::ExecutionRow,
        projections::journeys::executions::Taken,
        projections::journeys::versions::VersionDefRow,
        suppressions::SuppressionView,
        suppressions::SuppressionPage,
        companies::CompanyView,
        projections::companies::CompanyRow,
        audit_log::AuditPage,
        projections::audit_log::AuditRow,
        identity::Me,
        identity::OrganizationView,
        identity::KeyView,
        projections::users::UserRow,
        projections::organizations::Membership,
        projections::organizations::MemberRow,
        projections::organizations::InviteRow,
        projections::organizations::KeyRow,
        contacts::ContactPage,
        projections::contacts::ContactRow,
        replay::inspect::Inspection,
        replay::inspect::HistoryEvent,
        projections::status::Lag
    ))
)]
pub struct ApiDoc;
