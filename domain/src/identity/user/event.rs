use chrono::{DateTime, Utc};
use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};

use crate::identity::Digest;

/// Facts about a user. Type names never change. No credential is in an event: tokens and
/// recovery codes appear as digests, passwords and TOTP secrets not at all.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum UserEvent {
    UserSignedUp {
        email: String,
        name: Option<String>,
        has_password: bool,
        email_verified: bool,
    },
    EmailVerificationRequested {
        token: Digest,
        expires_at: DateTime<Utc>,
    },
    EmailVerified {},
    PasswordChanged {
        /// `change` (knowing the old one) or `reset` (through an emailed token).
        via: String,
    },
    PasswordResetRequested {
        token: Digest,
        expires_at: DateTime<Utc>,
    },
    TotpEnrolmentStarted {},
    TotpEnabled {
        recovery_codes: Vec<Digest>,
    },
    TotpDisabled {},
    RecoveryCodeUsed {
        code: Digest,
    },
    OidcIdentityLinked {
        issuer: String,
        subject: String,
    },
}

impl DomainEvent for UserEvent {
    fn event_type(&self) -> String {
        match self {
            Self::UserSignedUp { .. } => "UserSignedUp",
            Self::EmailVerificationRequested { .. } => "EmailVerificationRequested",
            Self::EmailVerified { .. } => "EmailVerified",
            Self::PasswordChanged { .. } => "PasswordChanged",
            Self::PasswordResetRequested { .. } => "PasswordResetRequested",
            Self::TotpEnrolmentStarted { .. } => "TotpEnrolmentStarted",
            Self::TotpEnabled { .. } => "TotpEnabled",
            Self::TotpDisabled { .. } => "TotpDisabled",
            Self::RecoveryCodeUsed { .. } => "RecoveryCodeUsed",
            Self::OidcIdentityLinked { .. } => "OidcIdentityLinked",
        }
        .to_owned()
    }

    fn event_version(&self) -> String {
        "1.0".to_owned()
    }
}
