use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::identity::Digest;
use crate::EmailAddress;

/// What can be asked of a user. Passwords arrive as argon2id hashes (hashing and verifying
/// is done before the command: it is slow and needs no state), tokens as digests.
#[derive(Debug, Clone, PartialEq)]
pub enum UserCommand {
    SignUp {
        email: EmailAddress,
        name: Option<String>,
        /// `None` for users who only sign in through OpenID Connect.
        password_hash: Option<String>,
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
    ChangePassword {
        password_hash: String,
    },
    RequestPasswordReset {
        token: Digest,
        expires_at: DateTime<Utc>,
    },
    ResetPassword {
        token: Digest,
        password_hash: String,
        now: DateTime<Utc>,
    },
    RecordLogin {
        method: LoginMethod,
    },
    /// Start TOTP enrolment with a fresh secret (base32); not yet required at login.
    StartTotp {
        secret: String,
    },
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

/// How a user proved who they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LoginMethod {
    Password,
    PasswordAndTotp,
    PasswordAndRecoveryCode,
    Oidc,
}
