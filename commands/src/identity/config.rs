//! What identity needs to know from settings.

use std::time::Duration;

use super::password::PasswordCost;

/// Identity settings (from `MAUNTIC_*` variables; see the README).
#[derive(Debug, Clone)]
pub struct IdentityConfig {
    /// Where users reach the platform; links in mail start with it.
    pub public_url: String,
    pub password_cost: PasswordCost,
    pub verification_ttl: Duration,
    pub reset_ttl: Duration,
    pub invite_ttl: Duration,
    /// The system SMTP server (`MAUNTIC_SMTP_URL`); mail is logged when unset.
    pub smtp_url: Option<String>,
    pub mail_from: String,
    pub oidc: Option<OidcConfig>,
}

/// Sign-in with an OpenID Connect provider.
#[derive(Debug, Clone)]
pub struct OidcConfig {
    /// The issuer URL; its `/.well-known/openid-configuration` is read on first use.
    pub issuer: String,
    pub client_id: String,
    pub client_secret: String,
}

impl Default for IdentityConfig {
    fn default() -> Self {
        Self {
            public_url: "http://127.0.0.1:8080".into(),
            password_cost: PasswordCost::default(),
            verification_ttl: Duration::from_secs(48 * 3600),
            reset_ttl: Duration::from_secs(3600),
            invite_ttl: Duration::from_secs(7 * 24 * 3600),
            smtp_url: None,
            mail_from: "Mauntic3 <no-reply@localhost>".into(),
            oidc: None,
        }
    }
}

/// `d` as a chrono duration (saturating).
pub fn chrono(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}
