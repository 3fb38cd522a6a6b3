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
    pub has_password: bool,
    pub email_verified: bool,
    /// The one outstanding verification token (a new request supersedes the old one).
    pub verification: Option<PendingToken>,
    /// The one outstanding password-reset token.
    pub reset: Option<PendingToken>,
    /// TOTP enrolment started (the secret is kept beside the log).
    pub totp_pending: bool,
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
                has_password,
                email_verified,
            } => {
                self.exists = true;
                self.email = email;
                self.name = name;
                self.has_password = has_password;
                self.email_verified = email_verified;
            }
            Event::EmailVerificationRequested { token, expires_at } => {
                self.verification = Some(PendingToken { token, expires_at });
            }
            Event::EmailVerified {} => {
                self.email_verified = true;
                self.verification = None;
            }
            Event::PasswordChanged { .. } => {
                self.has_password = true;
                self.reset = None;
            }
            Event::PasswordResetRequested { token, expires_at } => {
                self.reset = Some(PendingToken { token, expires_at });
            }
            Event::TotpEnrolmentStarted {} => {
                self.totp_pending = true;
                self.totp_enabled = false;
            }
            Event::TotpEnabled { recovery_codes } => {
                self.totp_enabled = true;
                self.totp_pending = false;
                self.recovery_codes = recovery_codes.into_iter().collect();
            }
            Event::TotpDisabled {} => {
                self.totp_enabled = false;
                self.totp_pending = false;
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
    /// Whether `token` would reset the password at `now` (checked before the new password
    /// is stored; the command checks again).
    pub fn check_reset_token(&self, token: &Digest, now: DateTime<Utc>) -> Result<(), UserError> {
        if !self.exists {
            return Err(Error::InvalidToken);
        }
        PendingToken::check(&self.reset, token, now)
    }

    fn decide(&self, command: UserCommand) -> Result<Vec<Event>, Error> {
        use UserCommand as C;
        if let C::SignUp {
            email,
            name,
            has_password,
            verification,
        } = command
        {
            if self.exists {
                return Err(Error::AlreadyExists);
            }
            let mut out = vec![Event::UserSignedUp {
                email: email.into(),
                name,
                has_password,
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
            C::ChangePassword => vec![Event::PasswordChanged {
                via: "change".into(),
            }],
            C::RequestPasswordReset { token, expires_at } => {
                vec![Event::PasswordResetRequested { token, expires_at }]
            }
            C::ResetPassword { token, now } => {
                PendingToken::check(&self.reset, &token, now)?;
                let mut out = vec![Event::PasswordChanged {
                    via: "reset".into(),
                }];
                // The link came through the mailbox: the address is proven.
                if !self.email_verified {
                    out.push(Event::EmailVerified {});
                }
                out
            }
            C::StartTotp => {
                if self.totp_enabled {
                    return Err(Error::TotpAlreadyEnabled);
                }
                vec![Event::TotpEnrolmentStarted {}]
            }
            C::ConfirmTotp { recovery_codes } => {
                if self.totp_enabled {
                    return Err(Error::TotpAlreadyEnabled);
                }
                if !self.totp_pending {
                    return Err(Error::TotpNotSetUp);
                }
                vec![Event::TotpEnabled { recovery_codes }]
            }
            C::DisableTotp => {
                if !self.totp_pending && !self.totp_enabled {
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
