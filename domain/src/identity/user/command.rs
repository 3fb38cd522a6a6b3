use chrono::{DateTime, Utc};

use crate::identity::Digest;
use crate::EmailAddress;

/// What can be asked of a user. Tokens arrive as digests. Credentials (the password hash,
/// the TOTP secret) never enter the log: the command side keeps them beside it and the
/// events only say that they changed.
#[derive(Debug, Clone, PartialEq)]
pub enum UserCommand {
    SignUp {
        email: EmailAddress,
        name: Option<String>,
        /// False for users who only sign in through OpenID Connect.
        has_password: bool,
        /// A verification token (absent when the email is already verified, e.g. by OpenID).
        verification: Option<(Digest, DateTime<Utc>)>,
    },
    RequestEmailVerification {
        token: Digest,
        expires_at: DateTime<Utc>,
    },
    VerifyEmail {
        token: Digest,
        now: DateTime<Utc>,
    },
    /// The old password was checked by the caller.
    ChangePassword,
    RequestPasswordReset {
        token: Digest,
        expires_at: DateTime<Utc>,
    },
    ResetPassword {
        token: Digest,
        now: DateTime<Utc>,
    },
    /// Start TOTP enrolment (with a fresh secret, kept beside the log); not yet required
    /// at login.
    StartTotp,
    /// The caller checked a code against the pending secret; TOTP is now required.
    ConfirmTotp {
        recovery_codes: Vec<Digest>,
    },
    DisableTotp,
    UseRecoveryCode {
        code: Digest,
    },
    LinkOidc {
        issuer: String,
        subject: String,
    },
}
