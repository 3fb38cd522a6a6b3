//! Command failures and their one mapping to HTTP.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use domain::contact::ContactError;
use domain::identity::organization::OrganizationError;
use domain::identity::user::UserError;
use http_kit::problem::FieldProblem;
use http_kit::Problem;

use crate::Invalid;

/// Why a command was not carried out: what a context's service answers (`FieldsError`,
/// `SegmentsError`, … are this over the context's rejection; contacts have their own).
#[derive(Debug, thiserror::Error)]
pub enum CommandError<E: std::error::Error> {
    /// The input does not fit (each field named); nothing was run.
    #[error(transparent)]
    Invalid(#[from] Invalid),
    /// The aggregate refused it (a business rule).
    #[error(transparent)]
    Rejected(E),
    /// Other writers kept winning the race for the stream, even after retries.
    #[error("the aggregate was changed concurrently; retries exhausted")]
    Conflict,
    /// The store failed; the cause keeps its own sources (logged whole, never shown).
    #[error("command could not be stored: {0}")]
    Technical(#[source] Technical),
}

impl<E: std::error::Error + Send + Sync + 'static> CommandError<E> {
    /// This failure as one of a command of another aggregate that needed this one (loading
    /// the field definitions a segment's rule is checked against): a refusal here is a
    /// fault there.
    pub fn within<F: std::error::Error>(self) -> CommandError<F> {
        match self {
            Self::Invalid(e) => CommandError::Invalid(e),
            Self::Rejected(e) => CommandError::Technical(Box::new(e)),
            Self::Conflict => CommandError::Conflict,
            Self::Technical(t) => CommandError::Technical(t),
        }
    }
}

/// A store failure under a command is technical.
impl<E: std::error::Error> From<event_store::StoreError> for CommandError<E> {
    fn from(e: event_store::StoreError) -> Self {
        Self::Technical(Box::new(e))
    }
}

/// A failure of ours that has no answer but "try again" (a store, a hash, a background
/// task): kept with its sources, logged whole where it is shown (a 500 from the API).
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct Fault(pub Technical);

impl Fault {
    /// A fault of anything that says what went wrong.
    pub fn new(e: impl std::fmt::Display) -> Self {
        Self(e.to_string().into())
    }
}

impl From<sqlx::Error> for Fault {
    fn from(e: sqlx::Error) -> Self {
        Self(Box::new(e))
    }
}

impl From<tokio::task::JoinError> for Fault {
    fn from(e: tokio::task::JoinError) -> Self {
        Self(Box::new(e))
    }
}

impl From<Fault> for Problem {
    fn from(e: Fault) -> Self {
        tracing::error!(cause = %chain(e.0.as_ref()), "internal error");
        Problem::internal()
    }
}

/// A technical failure's cause.
pub type Technical = Box<dyn std::error::Error + Send + Sync>;

/// `e` and each of its sources, `: `-separated (what a log line needs); a source whose
/// message the text already ends with (a `{0}` of its own source) is not repeated.
pub fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut next = e.source();
    while let Some(s) = next {
        let text = s.to_string();
        if !out.ends_with(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        next = s.source();
    }
    out
}

/// How a domain rejection is shown.
pub trait Rejection: std::error::Error {
    fn problem(&self) -> Problem;
}

impl<E: Rejection> CommandError<E> {
    /// The problem this failure answers with.
    pub fn into_problem(self) -> Problem {
        Problem::from(self)
    }
}

impl Rejection for ContactError {
    fn problem(&self) -> Problem {
        match self {
            ContactError::NotFound => Problem::not_found("contact"),
            ContactError::AlreadyExists => {
                Problem::new(StatusCode::CONFLICT, "already-exists", "Already exists")
                    .detail(self.to_string())
            }
            ContactError::TooManyTags { .. } => Problem::validation("tags", self.to_string()),
            ContactError::TooManyFields { .. } => Problem::validation("fields", self.to_string()),
            ContactError::PointsOutOfRange => Problem::validation("delta", self.to_string()),
            ContactError::NoteNotFound => Problem::not_found("note"),
            ContactError::TooManyNotes { .. } => {
                Problem::new(StatusCode::CONFLICT, "limit-reached", "Limit reached")
                    .detail(self.to_string())
            }
            ContactError::MergeSourceNotFound => Problem::not_found("contact"),
            ContactError::Erased => {
                Problem::new(StatusCode::GONE, "erased", "Contact erased").detail(self.to_string())
            }
            ContactError::MergeIntoItself => Problem::validation("from", self.to_string()),
            // Commands follow a merged contact to its survivor; this shows only when they
            // cannot (a merge naming a merged contact, or a chain too long to follow).
            ContactError::MergedInto { survivor_id }
            | ContactError::MergeSourceMerged { survivor_id }
            | ContactError::MergeTargetMerged { survivor_id } => {
                Problem::new(StatusCode::CONFLICT, "already-merged", "Contact merged")
                    .detail(self.to_string())
                    .with("survivor_id", survivor_id.to_string())
            }
        }
    }
}

impl Rejection for domain::company::CompanyError {
    fn problem(&self) -> Problem {
        use domain::company::CompanyError as E;
        match self {
            E::NotFound => Problem::not_found("company"),
            E::AlreadyExists => {
                Problem::new(StatusCode::CONFLICT, "already-exists", "Already exists")
                    .detail(self.to_string())
            }
            E::TooManyFields { .. } => Problem::validation("fields", self.to_string()),
        }
    }
}

impl Rejection for domain::field::FieldSchemaError {
    fn problem(&self) -> Problem {
        use domain::field::FieldSchemaError as E;
        match self {
            E::NotDefined => Problem::not_found("field"),
            E::AlreadyDefined(_) => {
                Problem::new(StatusCode::CONFLICT, "already-exists", "Already exists")
                    .detail(self.to_string())
            }
            E::TypeChange => Problem::validation("type", self.to_string()),
            E::Options(why) => Problem::validation("options", why.clone()),
            E::Unique(why) => Problem::validation("unique", why.clone()),
            E::BadDefault(why) => Problem::validation("default", why.clone()),
            E::TooMany { .. } => {
                Problem::new(StatusCode::CONFLICT, "limit-reached", "Limit reached")
                    .detail(self.to_string())
            }
        }
    }
}

impl Rejection for domain::segment::SegmentError {
    fn problem(&self) -> Problem {
        use domain::segment::SegmentError as E;
        match self {
            E::NotFound => Problem::not_found("segment"),
            E::AlreadyExists => {
                Problem::new(StatusCode::CONFLICT, "already-exists", "Already exists")
                    .detail(self.to_string())
            }
            E::BadName => Problem::validation("name", self.to_string()),
            E::BadDescription => Problem::validation("description", self.to_string()),
            E::StaticHasNoRule => Problem::validation("rule", self.to_string()),
            E::MembersFollowRule => {
                Problem::new(StatusCode::CONFLICT, "dynamic-segment", "Dynamic segment")
                    .detail(self.to_string())
            }
        }
    }
}

impl Rejection for domain::template::TemplateError {
    fn problem(&self) -> Problem {
        use domain::template::TemplateError as E;
        match self {
            E::NotFound => Problem::not_found("template"),
            E::NoSuchVersion(_) => Problem::not_found("version"),
            E::AlreadyExists => {
                Problem::new(StatusCode::CONFLICT, "already-exists", "Already exists")
                    .detail(self.to_string())
            }
            E::Deleted => Problem::new(StatusCode::GONE, "template-deleted", "Template deleted")
                .detail(self.to_string()),
            E::BadName => Problem::validation("name", self.to_string()),
            E::WrongChannel { .. } => Problem::validation("channel", self.to_string()),
        }
    }
}

impl Rejection for domain::delivery::suppression::SuppressionError {
    fn problem(&self) -> Problem {
        use domain::delivery::suppression::SuppressionError as E;
        match self {
            // Unknown, another organization's, or removed already: nothing to remove.
            E::NotSuppressed => Problem::not_found("suppression"),
            E::NoAddress => Problem::validation("address", "required"),
            E::OtherAddress => Problem::validation("address", self.to_string()),
            E::SourceRequired => Problem::validation("source", self.to_string()),
        }
    }
}

impl Rejection for domain::delivery::provider_config::ProviderError {
    fn problem(&self) -> Problem {
        use domain::delivery::provider_config::ProviderError as E;
        match self {
            E::NotFound => Problem::not_found("provider"),
            E::AlreadyExists => {
                Problem::new(StatusCode::CONFLICT, "already-exists", "Already exists")
                    .detail(self.to_string())
            }
            E::Removed => Problem::new(StatusCode::GONE, "provider-removed", "Provider removed")
                .detail(self.to_string()),
            E::BadName => Problem::validation("name", self.to_string()),
            E::UnknownKind { .. } => Problem::validation("kind", self.to_string()),
            E::BadFieldName(_) | E::TooManyFields | E::SecretInSettings(_) => {
                Problem::validation("settings", self.to_string())
            }
            E::SecretAlsoSetting(_) => Problem::validation("secrets", self.to_string()),
            E::NotDefault => Problem::new(StatusCode::CONFLICT, "not-default", "Not the default")
                .detail(self.to_string()),
        }
    }
}

impl Rejection for domain::delivery::warmup_config::WarmupConfigError {
    fn problem(&self) -> Problem {
        use domain::delivery::warmup::WarmupError as S;
        use domain::delivery::warmup_config::WarmupConfigError as E;
        match self {
            E::BadDomain | E::OtherDomain(_) => Problem::validation("domain", self.to_string()),
            E::BadTimeZone(_) => Problem::validation("time_zone", self.to_string()),
            E::Schedule(S::EmptyRamp | S::Shrinking) => {
                Problem::validation("ramp", self.to_string())
            }
            E::Schedule(S::BadGrowth) => Problem::validation("growth", self.to_string()),
            E::Schedule(S::CeilingBelowRamp) => Problem::validation("ceiling", self.to_string()),
            E::NotConfigured => Problem::not_found("warmup"),
        }
    }
}

impl Rejection for OrganizationError {
    fn problem(&self) -> Problem {
        use OrganizationError as E;
        let p = |status: StatusCode, slug: &str, title: &str| {
            Problem::new(status, slug, title).detail(self.to_string())
        };
        match self {
            E::NotFound => Problem::not_found("organization"),
            E::MemberNotFound => Problem::not_found("member"),
            E::InviteNotFound => Problem::not_found("invite"),
            E::KeyNotFound => Problem::not_found("API key"),
            E::AlreadyExists => p(StatusCode::CONFLICT, "already-exists", "Already exists"),
            E::Blocked => p(
                StatusCode::FORBIDDEN,
                "organization-blocked",
                "Organization blocked",
            ),
            E::AlreadyMember => p(StatusCode::CONFLICT, "already-member", "Already a member"),
            E::LastOwner => p(StatusCode::CONFLICT, "last-owner", "Last owner"),
            E::NotAllowed { .. } => p(StatusCode::FORBIDDEN, "forbidden", "Forbidden"),
            E::TooManyMembers { .. } | E::TooManyKeys { .. } => {
                p(StatusCode::CONFLICT, "limit-reached", "Limit reached")
            }
            E::InvitePending { .. } => p(StatusCode::CONFLICT, "invite-pending", "Invite pending"),
            E::InviteExpired => p(StatusCode::GONE, "invite-expired", "Invite expired"),
            E::InviteUsed => p(
                StatusCode::CONFLICT,
                "invite-used",
                "Invite no longer valid",
            ),
            E::InviteForAnotherEmail => p(
                StatusCode::FORBIDDEN,
                "invite-for-another-email",
                "Invite for another email",
            ),
            E::OwnerKey => Problem::validation("role", self.to_string()),
        }
    }
}

impl Rejection for UserError {
    fn problem(&self) -> Problem {
        use UserError as E;
        let p = |status: StatusCode, slug: &str, title: &str| {
            Problem::new(status, slug, title).detail(self.to_string())
        };
        match self {
            E::NotFound => Problem::not_found("user"),
            E::AlreadyExists => p(StatusCode::CONFLICT, "already-exists", "Already exists"),
            E::InvalidToken => p(StatusCode::BAD_REQUEST, "invalid-token", "Invalid token"),
            E::TokenExpired => p(StatusCode::GONE, "token-expired", "Token expired"),
            E::AlreadyVerified => p(StatusCode::CONFLICT, "already-verified", "Already verified"),
            E::TotpNotSetUp => p(
                StatusCode::CONFLICT,
                "totp-not-set-up",
                "Two-factor not set up",
            ),
            E::TotpAlreadyEnabled => p(
                StatusCode::CONFLICT,
                "totp-enabled",
                "Two-factor already on",
            ),
            E::InvalidRecoveryCode => p(
                StatusCode::UNAUTHORIZED,
                "invalid-second-factor",
                "Invalid code",
            ),
        }
    }
}

impl From<Invalid> for Problem {
    fn from(e: Invalid) -> Self {
        Problem::invalid_fields(
            e.0.into_iter()
                .map(|v| FieldProblem {
                    field: v.field,
                    reason: v.reason,
                })
                .collect(),
        )
    }
}

impl<E: Rejection> From<CommandError<E>> for Problem {
    fn from(e: CommandError<E>) -> Self {
        match e {
            CommandError::Invalid(e) => e.into(),
            CommandError::Rejected(e) => e.problem(),
            CommandError::Conflict => {
                Problem::new(StatusCode::CONFLICT, "conflict", "Concurrent change")
                    .detail("the resource kept changing while this request was applied; retry it")
                    .retry_after(1)
            }
            CommandError::Technical(cause) => {
                tracing::error!(cause = %chain(cause.as_ref()), "command failed");
                Problem::internal()
            }
        }
    }
}

impl<E: Rejection> IntoResponse for CommandError<E> {
    fn into_response(self) -> Response {
        Problem::from(self).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("connection reset")]
    struct Reset;

    #[derive(Debug, thiserror::Error)]
    #[error("appending to contact-1")]
    struct Append(#[source] Reset);

    #[derive(Debug, thiserror::Error)]
    #[error("no")]
    struct Never;

    impl Rejection for Never {
        fn problem(&self) -> Problem {
            Problem::validation("never", "no")
        }
    }

    #[test]
    fn a_technical_failure_keeps_its_sources_for_the_log() {
        let e: CommandError<Never> = CommandError::Technical(Box::new(Append(Reset)));
        assert_eq!(
            chain(&e),
            "command could not be stored: appending to contact-1: connection reset"
        );
        let p = Problem::from(e);
        assert_eq!(p.status, 500);
        assert!(
            !p.detail.unwrap_or_default().contains("reset"),
            "never shown"
        );
    }
}
