/// Why a user refused a command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UserError {
    /// The user already exists.
    #[error("the user already exists")]
    AlreadyExists,
    /// No such user.
    #[error("no such user")]
    NotFound,
    /// The token is unknown, already used, or superseded by a newer one.
    #[error("the token is invalid or was already used")]
    InvalidToken,
    /// The token has expired.
    #[error("the token has expired")]
    TokenExpired,
    /// The email is verified already.
    #[error("the email address is already verified")]
    AlreadyVerified,
    /// TOTP is not being enrolled (or not enabled) for this user.
    #[error("two-factor authentication is not set up")]
    TotpNotSetUp,
    /// TOTP is enabled already.
    #[error("two-factor authentication is already enabled")]
    TotpAlreadyEnabled,
    /// The recovery code is unknown or used.
    #[error("the recovery code is invalid or was already used")]
    InvalidRecoveryCode,
}
