//! The command API: HTTP → typed command → aggregate → event log, answered with the aggregate
//! id and the cursor after its events.
//!
//! - [`executor`]: runs a command on a tenant's stream with metadata; retries conflicts.
//! - [`error`]: the one mapping from command failures to problem+json.
//! - [`context`]: the metadata of a request (actor, client, correlation, causation, request id).
//! - [`contacts`]: contact routes and their request bodies; email uniqueness; merging;
//!   custom contact events (`contacts::events::record_event`, the one path that records them).
//! - [`fields`]: field definitions, and checking contact writes against them.
//! - [`companies`]: company routes, and linking contacts to companies.
//! - [`imports`]: CSV import of contacts (batched, in the background, resumable).
//! - [`identity`]: sign-up, login, sessions, organizations, members, invites, API keys.
//! - [`segments`]: segment definitions, static membership, and the one membership writer.
//! - [`templates`]: message templates and their versions (checked when saved).
//! - [`delivery`]: requesting messages (transactional sends, test sends) and the batched
//!   write path of delivery jobs that the worker and fan-outs share.
//! - [`suppressions`]: the suppression list (add, remove, CSV import, batch adds, lookups).
//! - [`providers`]: channel providers, their encrypted credentials, resolution for delivery.
//! - [`warmup`]: warmup schedules of sending domains.
//! - [`campaigns`]: blast campaigns (drafts, schedules, send, pause/resume/cancel) and the
//!   write path the campaign worker shares.
//! - [`reservations`]: unique values claimed before the command that takes them.

pub mod campaigns;
pub mod companies;
pub mod contacts;
pub mod context;
pub mod delivery;
pub mod error;
pub mod executor;
pub mod fields;
pub mod identity;
pub mod imports;
pub mod invalid;
pub mod journeys;
pub mod providers;
pub mod reservations;
pub mod segments;
pub mod suppressions;
pub mod templates;
pub mod warmup;

use std::sync::Arc;

use axum::Router;
use http_kit::AuthState;
use sqlx::PgPool;

pub use error::{CommandError, Technical};
pub use executor::Executor;
pub use identity::IdentityConfig;
pub use invalid::Invalid;

/// The state command handlers share.
#[derive(Clone)]
pub struct CommandState {
    pub pool: PgPool,
    /// Contacts: every write to a contact (the API, the console, journeys and imports).
    pub contacts: contacts::Contacts,
    /// Companies, and the links of contacts to them.
    pub companies: companies::Companies,
    /// Custom field definitions.
    pub fields: fields::Fields,
    /// Segments: definitions, static membership, refreshes.
    pub segments: segments::Segments,
    /// Message templates and their versions.
    pub templates: templates::Templates,
    /// Delivery: jobs, the suppression list, providers and their keys, warmups.
    pub delivery: delivery::Delivery,
    /// Campaigns: commands with their effects on the campaign worker's tables.
    pub campaigns: campaigns::Campaigns,
    /// Journeys: commands with their effects on the journey worker's tables, and executions.
    pub journeys: journeys::Journeys,
    /// Identity: organizations, users, their settings, system mail and OpenID Connect.
    pub identity: identity::Identity,
    /// Who is calling (sessions and API keys), shared with the query side.
    pub auth: AuthState,
    /// Wakes tails of the log after appends that bypass the executors (imports).
    pub notifier: event_store::wakeup::Notifier,
    /// Imports: where uploads go, and which ones this process is applying.
    pub imports: Arc<imports::Imports>,
    /// The time journeys run by (tests move it; the journey worker reads the same clock).
    pub clock: event_store::Clock,
}

impl CommandState {
    pub fn new(pool: PgPool, auth: AuthState, identity: IdentityConfig) -> anyhow::Result<Self> {
        let notifier = event_store::wakeup::Notifier::start(pool.clone());
        let mailer =
            identity::mail::SystemMailer::new(identity.smtp_url.as_deref(), &identity.mail_from)?;
        let oidc = identity
            .oidc
            .clone()
            .map(|c| Arc::new(identity::oidc::OidcClient::new(c, &identity.public_url)));
        let templates = Arc::new(Executor::new(pool.clone(), notifier.clone(), ()));
        let fields =
            fields::Fields::new(Arc::new(Executor::new(pool.clone(), notifier.clone(), ())));
        let contact_executor = Executor::new(pool.clone(), notifier.clone(), ())
            .with_redirect(domain::contact::ContactError::survivor);
        let contacts =
            contacts::Contacts::new(pool.clone(), Arc::new(contact_executor), fields.clone());
        let segments = segments::Segments::new(
            pool.clone(),
            Arc::new(Executor::new(pool.clone(), notifier.clone(), ())),
            fields.clone(),
            notifier.clone(),
            auth.clock.clone(),
        );
        let config = Arc::new(identity);
        let organizations = identity::organizations::Organizations::new(
            pool.clone(),
            Arc::new(Executor::new(pool.clone(), notifier.clone(), ())),
            auth.orgs.clone(),
            config.clone(),
            mailer.clone(),
            auth.clock.clone(),
        );
        let users = Arc::new(Executor::new(pool.clone(), notifier.clone(), ()));
        let accounts = identity::accounts::Accounts::new(identity::accounts::AccountParts {
            pool: pool.clone(),
            users: Arc::clone(&users),
            organizations: organizations.executor().clone(),
            config: config.clone(),
            mailer: mailer.clone(),
            sessions: auth.sessions.clone(),
            throttle: auth.throttle.clone(),
            orgs: auth.orgs.clone(),
            clock: auth.clock.clone(),
        });
        let identity = identity::Identity {
            organizations,
            accounts,
            users,
            config,
            mailer,
            oidc,
        };
        let campaign_writer = campaigns::write::CampaignWriter::new(
            pool.clone(),
            notifier.clone(),
            templates.clone(),
        );
        let templates = templates::Templates::new(templates, fields.clone());
        let jobs = delivery::Jobs::new(pool.clone(), notifier.clone());
        let providers = providers::Providers::new(
            pool.clone(),
            Arc::new(Executor::new(pool.clone(), notifier.clone(), ())),
            Arc::new(event_store::shred::keyring::Keyring::new(None, None)),
        );
        let journeys = journeys::Journeys::new(
            pool.clone(),
            Arc::new(journeys::write::JourneyWriter::new(
                pool.clone(),
                notifier.clone(),
            )),
            fields.clone(),
            segments.clone(),
            templates.clone(),
            event_store::Clock::system(),
        );
        let delivery = delivery::Delivery {
            messages: delivery::Messages::new(
                jobs.clone(),
                templates.clone(),
                contacts.clone(),
                providers.clone(),
            ),
            jobs,
            suppressions: suppressions::Suppressions::new(
                pool.clone(),
                notifier.clone(),
                Arc::new(Executor::new(pool.clone(), notifier.clone(), ())),
            ),
            providers,
            warmups: warmup::Warmups::new(
                pool.clone(),
                Arc::new(Executor::new(pool.clone(), notifier.clone(), ())),
            ),
        };
        Ok(Self {
            companies: companies::Companies::new(
                Arc::new(Executor::new(pool.clone(), notifier.clone(), ())),
                contacts.clone(),
            ),
            contacts,
            campaigns: campaigns::Campaigns::new(
                pool.clone(),
                Arc::new(campaign_writer),
                segments.clone(),
                templates.clone(),
                identity.organizations.executor().clone(),
            ),
            segments,
            templates,
            fields,
            journeys,
            delivery,
            identity,
            notifier,
            imports: Arc::new(imports::Imports::default()),
            clock: event_store::Clock::system(),
            pool,
            auth,
        })
    }
}

impl CommandState {
    /// The same state with these import settings.
    pub fn with_imports(mut self, config: imports::ImportConfig) -> Self {
        self.imports = Arc::new(imports::Imports::new(config));
        self
    }

    /// The same state with this clock.
    pub fn with_clock(mut self, clock: event_store::Clock) -> Self {
        self.journeys = self.journeys.with_clock(clock.clone());
        self.clock = clock;
        self
    }

    /// The same state with these master keys for provider credentials.
    pub fn with_provider_keys(mut self, keys: event_store::shred::keyring::Keyring) -> Self {
        self.delivery.providers = self.delivery.providers.with_keys(Arc::new(keys));
        self
    }
}

/// The command routes under `/api/v1` (authentication is layered on by the caller).
pub fn router(state: CommandState) -> Router {
    contacts::routes()
        .merge(companies::routes())
        .merge(fields::routes())
        .merge(segments::routes())
        .merge(templates::routes())
        .merge(delivery::routes())
        .merge(suppressions::routes())
        .merge(providers::routes())
        .merge(warmup::routes())
        .merge(campaigns::routes())
        .merge(journeys::routes())
        .merge(identity::routes())
        .merge(imports::routes())
        .with_state(state)
}

/// The OpenAPI description of the command routes.
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(
        contacts::http::create,
        contacts::http::upsert,
        contacts::http::update,
        contacts::http::erase,
        contacts::http::add_tags,
        contacts::http::remove_tag,
        contacts::reach_http::set_consent,
        contacts::reach_http::add_dnc,
        contacts::reach_http::remove_dnc,
        contacts::reach_http::set_frequency,
        contacts::reach_http::remove_frequency,
        contacts::reach_http::set_stage,
        contacts::reach_http::set_owner,
        contacts::reach_http::add_note,
        contacts::reach_http::remove_note,
        contacts::reach_http::change_points,
        contacts::merge_http::merge,
        contacts::events_http::record,
        contacts::events_http::record_many,
        companies::http::create,
        fields::http::define,
        fields::http::change,
        fields::http::remove,
        segments::http::create,
        segments::http::update,
        segments::http::delete,
        segments::http::add_contacts,
        segments::http::remove_contacts,
        segments::http::refresh,
        templates::http::create,
        templates::http::rename,
        templates::http::delete,
        templates::http::save_version,
        templates::http::publish,
        delivery::http::send_message,
        delivery::http::test_send,
        suppressions::http::add,
        suppressions::http::remove,
        suppressions::http::import,
        providers::http::create,
        providers::http::update,
        providers::http::make_default,
        providers::http::remove,
        warmup::http::configure,
        warmup::http::remove,
        campaigns::http::create,
        campaigns::http::change,
        campaigns::http::delete,
        campaigns::http::schedule,
        campaigns::http::unschedule,
        campaigns::http::send,
        campaigns::http::pause,
        campaigns::http::resume,
        campaigns::http::cancel,
        campaigns::http::clone,
        journeys::http::create,
        journeys::http::change,
        journeys::http::publish,
        journeys::http::pause,
        journeys::http::resume,
        journeys::http::archive,
        journeys::http::entries,
        companies::http::update,
        companies::http::link,
        companies::http::unlink,
        identity::auth_http::signup,
        identity::auth_http::verify_email,
        identity::auth_http::login,
        identity::auth_http::second_factor,
        identity::auth_http::logout,
        identity::auth_http::forgot_password,
        identity::auth_http::reset_password,
        identity::oidc::start,
        identity::oidc::callback,
        identity::account_http::change_password,
        identity::account_http::resend_verification,
        identity::account_http::start_totp,
        identity::account_http::confirm_totp,
        identity::account_http::disable_totp,
        identity::account_http::switch_organization,
        identity::account_http::create_organization,
        identity::account_http::accept_invite,
        identity::org_http::update,
        identity::org_http::leave,
        identity::org_http::transfer_ownership,
        identity::org_http::change_role,
        identity::org_http::remove_member,
        identity::org_http::invite,
        identity::org_http::revoke_invite,
        identity::org_http::resend_invite,
        identity::keys_http::create,
        identity::keys_http::revoke,
        imports::http::create,
        imports::http::list,
        imports::http::get,
        imports::http::errors,
    ),
    components(schemas(
        contacts::body::CreateContact,
        contacts::body::UpdateContact,
        contacts::body::AddTags,
        contacts::http::Upserted,
        contacts::reach_http::SetConsent,
        contacts::reach_http::AddDoNotContact,
        contacts::reach_http::SetFrequency,
        contacts::reach_http::SetStage,
        contacts::reach_http::SetOwner,
        contacts::reach_http::AddNote,
        contacts::reach_http::ChangePoints,
        contacts::merge_http::MergeContacts,
        contacts::events_http::RecordEvent,
        contacts::events_http::EventItem,
        contacts::events_http::RecordEvents,
        contacts::events_http::ItemStatus,
        contacts::events_http::ItemResult,
        contacts::events_http::EventsRecorded,
        delivery::body::SendMessage,
        delivery::body::TestSend,
        delivery::body::Address,
        delivery::body::MessageAccepted,
        companies::http::CreateCompany,
        fields::http::DefineField,
        fields::http::ChangeField,
        companies::http::UpdateCompany,
        segments::http::CreateSegment,
        segments::http::UpdateSegment,
        segments::http::SegmentContacts,
        segments::MembershipChanged,
        templates::body::CreateTemplate,
        templates::body::RenameTemplate,
        templates::body::SaveVersion,
        suppressions::body::AddSuppression,
        suppressions::ImportReport,
        suppressions::http::SuppressionUpload,
        suppressions::import::RejectedRow,
        providers::body::CreateProvider,
        providers::body::UpdateProvider,
        warmup::body::ConfigureWarmup,
        warmup::WarmupAccepted,
        campaigns::body::CampaignBody,
        campaigns::body::ScheduleBody,
        campaigns::body::CloneBody,
        journeys::http::JourneyBody,
        journeys::http::EntriesBody,
        journeys::http::EntriesAnswer,
        journeys::http::EnteredContact,
        companies::http::Link,
        identity::body::SignUp,
        identity::body::TokenBody,
        identity::body::Login,
        identity::body::SecondFactor,
        identity::body::ForgotPassword,
        identity::body::ResetPassword,
        identity::body::ChangePassword,
        identity::body::TotpCode,
        identity::body::PasswordConfirmation,
        identity::body::SwitchOrganization,
        identity::body::CreateOrganization,
        identity::body::UpdateOrganization,
        identity::body::TransferOwnership,
        identity::body::ChangeRole,
        identity::body::Invite,
        identity::body::CreateApiKey,
        identity::support::SignedInAnswer,
        identity::auth_http::SecondFactorRequired,
        identity::accounts::TotpEnrolment,
        identity::accounts::RecoveryCodes,
        identity::organizations::CreatedKey,
        imports::ImportOptions,
        imports::http::ImportUpload,
        imports::http::Started,
        imports::http::ImportPage,
        imports::http::ErrorPage,
        imports::store::ImportView,
        imports::store::RowError,
        executor::Accepted,
        http_kit::problem::FieldProblem,
        http_kit::Problem
    ))
)]
pub struct ApiDoc;
