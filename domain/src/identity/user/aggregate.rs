use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use serde::{Deserialize, Serialize};

use super::{UserCommand, UserError, UserEvent};
use crate::identity::Digest;

type Event = UserEvent;
type Error = UserError;

/// The write model of a user. Login folds it from the log, so a changed password or a used
/// token is seen at once.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct User {
    pub exists: bool,
    pub email: String,
    pub name: Option<String>,
    pub password_hash: Option<String>,
    pub email_verified: bool,
    /// The one outstanding verification token (a new request supersedes the old one).
    pub verification: Option<PendingToken>,
    /// The one outstanding password-reset token.
    pub reset: Option<PendingToken>,
    /// The TOTP secret, once enrolment started.
    pub totp_secret: Option<String>,
    pub totp_enabled: bool,
    pub recovery_codes: BTreeSet<Digest>,
    pub oidc: BTreeSet<(String, String)>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PendingToken {
    pub token: Digest,
    pub expires_at: DateTime<Utc>,
}

impl PendingToken {
    /// Checks `token` at `now`: unknown, superseded or used → invalid; late → expired.
    fn check(slot: &Option<Self>, token: &Digest, now: DateTime<Utc>) -> Result<(), Error> {
        match slot {
            Some(p) if p.token == *token && now < p.expires_at => Ok(()),
            Some(p) if p.token == *token => Err(Error::TokenExpired),
            _ => Err(Error::InvalidToken),
        }
    }
}

impl Aggregate for User {
    const TYPE: &'static str = "user";
    type Command = UserCommand;
    type Event = UserEvent;
    type Error = UserError;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        let events = self.decide(command)?;
        for e in events {
            sink.write(e, self).await;
        }
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        match event {
            Event::UserSignedUp {
                email,
                name,
                password_hash,
                email_verified,
            } => {
                self.exists = true;
                self.email = email;
                self.name = name;
                self.password_hash = password_hash;
                self.email_verified = email_verified;
            }
            Event::EmailVerificationRequested { token, expires_at } => {
                self.verification = Some(PendingToken { token, expires_at });
            }
            Event::EmailVerified {} => {
                self.email_verified = true;
                self.verification = None;
            }
            Event::PasswordChanged { password_hash, .. } => {
                self.password_hash = Some(password_hash);
                self.reset = None;
            }
            Event::PasswordResetRequested { token, expires_at } => {
                self.reset = Some(PendingToken { token, expires_at });
            }
            Event::UserLoggedIn { .. } => {}
            Event::TotpEnrolmentStarted { secret } => {
                self.totp_secret = Some(secret);
                self.totp_enabled = false;
            }
            Event::TotpEnabled { recovery_codes } => {
                self.totp_enabled = true;
                self.recovery_codes = recovery_codes.into_iter().collect();
            }
            Event::TotpDisabled {} => {
                self.totp_enabled = false;
                self.totp_secret = None;
                self.recovery_codes.clear();
            }
            Event::RecoveryCodeUsed { code } => {
                self.recovery_codes.remove(&code);
            }
            Event::OidcIdentityLinked { issuer, subject } => {
                self.oidc.insert((issuer, subject));
            }
        }
    }
}

impl User {
    fn decide(&self, command: UserCommand) -> Result<Vec<Event>, Error> {
        use UserCommand as C;
        if let C::SignUp {
            email,
            name,
            password_hash,
            verification,
        } = command
        {
            if self.exists {
                return Err(Error::AlreadyExists);
            }
            let mut out = vec![Event::UserSignedUp {
                email: email.into(),
                name,
                password_hash,
                email_verified: verification.is_none(),
            }];
            if let Some((token, expires_at)) = verification {
                out.push(Event::EmailVerificationRequested { token, expires_at });
            }
            return Ok(out);
        }
        if !self.exists {
            return Err(Error::NotFound);
        }
        Ok(match command {
            C::SignUp { .. } => vec![],
            C::RequestEmailVerification { token, expires_at } => {
                if self.email_verified {
                    return Err(Error::AlreadyVerified);
                }
                vec![Event::EmailVerificationRequested { token, expires_at }]
            }
            C::VerifyEmail { token, now } => {
                PendingToken::check(&self.verification, &token, now)?;
                vec![Event::EmailVerified {}]
            }
            C::ChangePassword { password_hash } => vec![Event::PasswordChanged {
                password_hash,
                via: "change".into(),
            }],
            C::RequestPasswordReset { token, expires_at } => {
                vec![Event::PasswordResetRequested { token, expires_at }]
            }
            C::ResetPassword {
                token,
                password_hash,
                now,
            } => {
                PendingToken::check(&self.reset, &token, now)?;
                let mut out = vec![Event::PasswordChanged {
                    password_hash,
                    via: "reset".into(),
                }];
                // The link came through the mailbox: the address is proven.
                if !self.email_verified {
                    out.push(Event::EmailVerified {});
                }
                out
            }
            C::RecordLogin { method } => vec![Event::UserLoggedIn { method }],
            C::StartTotp { secret } => {
                if self.totp_enabled {
                    return Err(Error::TotpAlreadyEnabled);
                }
                vec![Event::TotpEnrolmentStarted { secret }]
            }
            C::ConfirmTotp { recovery_codes } => {
                if self.totp_enabled {
                    return Err(Error::TotpAlreadyEnabled);
                }
                if self.totp_secret.is_none() {
                    return Err(Error::TotpNotSetUp);
                }
                vec![Event::TotpEnabled { recovery_codes }]
            }
            C::DisableTotp => {
                if self.totp_secret.is_none() {
                    return Err(Error::TotpNotSetUp);
                }
                vec![Event::TotpDisabled {}]
            }
            C::UseRecoveryCode { code } => {
                if !self.totp_enabled || !self.recovery_codes.contains(&code) {
                    return Err(Error::InvalidRecoveryCode);
                }
                vec![Event::RecoveryCodeUsed { code }]
            }
            C::LinkOidc { issuer, subject } => {
                if self.oidc.contains(&(issuer.clone(), subject.clone())) {
                    vec![]
                } else {
                    vec![Event::OidcIdentityLinked { issuer, subject }]
                }
            }
        })
    }
}
