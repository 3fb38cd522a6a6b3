//! The accounts service: what a person does with their own account — sign up, verify the
//! email, sign in (password, then a TOTP or recovery code), sign out, reset or change the
//! password, enrol TOTP, found or join an organization, switch between organizations.
//!
//! Sessions are made here and answered as [`NewSession`]s: the API and the console each put
//! the cookie value in their own answer. Brute force is limited here too (per account, per
//! client address), so every way in shares the same counts.

use std::sync::Arc;
use std::time::Duration;

use domain::identity::organization::{Organization, OrganizationCommand, OrganizationError};
use domain::identity::user::{User, UserCommand, UserError, PLATFORM_TENANT};
use domain::identity::OrgName;
use domain::{EmailAddress, EntityId, TenantId, UserId};
use event_store::reservation::{self, Holder, Scope};
use event_store::{Clock, EventMetadata, StoreError};
use http_kit::auth::orgs::OrgCache;
use http_kit::auth::session::{NewSession, Session, SessionStore, Stage};
use http_kit::auth::throttle::{Limit, Throttle, ThrottleError};
use http_kit::{secret, ClientInfo};
use sqlx::PgPool;
use uuid::Uuid;

use super::config::{chrono, IdentityConfig};
use super::mail::SystemMailer;
use super::{credentials, password, totp};
use crate::error::{Fault, Technical};
use crate::executor::{Accepted, Executor};
use crate::reservations::reserved;
use crate::{CommandError, Invalid};

const MINUTES_15: Duration = Duration::from_secs(15 * 60);
/// Sign-in attempts per account (email) per 15 minutes.
pub const LOGIN_PER_ACCOUNT: Limit = Limit {
    attempts: 10,
    window: MINUTES_15,
};
/// Sign-in attempts per client address per 15 minutes.
pub const LOGIN_PER_ADDRESS: Limit = Limit {
    attempts: 100,
    window: MINUTES_15,
};
/// Token and code submissions per client address per 15 minutes.
pub const TOKENS_PER_ADDRESS: Limit = Limit {
    attempts: 30,
    window: MINUTES_15,
};
/// Second-factor attempts per user per 15 minutes.
pub const SECOND_FACTOR_PER_USER: Limit = Limit {
    attempts: 10,
    window: MINUTES_15,
};
/// Sign-ups and reset requests per address per hour.
pub const MAILS_PER_ADDRESS: Limit = Limit {
    attempts: 20,
    window: Duration::from_secs(3600),
};
/// Reset requests per account per hour.
const RESETS_PER_ACCOUNT: Limit = Limit {
    attempts: 5,
    window: Duration::from_secs(3600),
};
/// Checks of the signed-in user's password (and TOTP confirmations, verification mails)
/// per user per 15 minutes.
const PASSWORD_CHECKS: Limit = Limit {
    attempts: 10,
    window: MINUTES_15,
};

/// Why an account action was not carried out.
#[derive(Debug, thiserror::Error)]
pub enum AccountsError {
    /// The input does not fit (each field named); nothing was run.
    #[error(transparent)]
    Invalid(#[from] Invalid),
    /// Too many attempts from this account or address; try again later.
    #[error("too many attempts; try again in {retry_after} s")]
    TooManyAttempts { retry_after: u64 },
    #[error("an account with this email exists; sign in or reset the password")]
    EmailTaken,
    /// A failed sign-in: the same whatever was wrong.
    #[error("the email or password is wrong")]
    BadCredentials,
    /// The signed-in user's password, asked again, is wrong.
    #[error("the password is wrong")]
    WrongPassword,
    /// A second factor that does not sign in (or no sign-in is waiting for one).
    #[error("the code is wrong, or no login is waiting for one")]
    WrongCode,
    /// The code confirming a TOTP enrolment does not match the secret.
    #[error("the code does not match; check the app's clock")]
    CodeMismatch,
    #[error("two-factor is not being enrolled; start the enrolment first")]
    TotpNotEnrolling,
    /// Not an organization the user is a member of.
    #[error("no such organization")]
    NoSuchOrganization,
    #[error("no such invite")]
    NoSuchInvite,
    /// The user refused it (a used token, TOTP already on, …).
    #[error(transparent)]
    User(UserError),
    /// The organization refused it (an invite for another email, expired, …).
    #[error(transparent)]
    Organization(OrganizationError),
    /// Other writers kept winning the race for the stream, even after retries.
    #[error("the account was changed concurrently; retries exhausted")]
    Conflict,
    /// The store, the hasher or the attempt counter failed; the cause keeps its sources.
    #[error("account action failed: {0}")]
    Technical(#[source] Technical),
}

impl From<CommandError<UserError>> for AccountsError {
    fn from(e: CommandError<UserError>) -> Self {
        match e {
            CommandError::Invalid(i) => Self::Invalid(i),
            CommandError::Rejected(r) => Self::User(r),
            CommandError::Conflict => Self::Conflict,
            CommandError::Technical(t) => Self::Technical(t),
        }
    }
}

impl From<CommandError<OrganizationError>> for AccountsError {
    fn from(e: CommandError<OrganizationError>) -> Self {
        match e {
            CommandError::Invalid(i) => Self::Invalid(i),
            CommandError::Rejected(r) => Self::Organization(r),
            CommandError::Conflict => Self::Conflict,
            CommandError::Technical(t) => Self::Technical(t),
        }
    }
}

impl From<ThrottleError> for AccountsError {
    fn from(e: ThrottleError) -> Self {
        match e {
            ThrottleError::TooMany { retry_after } => Self::TooManyAttempts { retry_after },
            ThrottleError::Store(e) => Self::Technical(Box::new(e)),
        }
    }
}

impl From<Fault> for AccountsError {
    fn from(e: Fault) -> Self {
        Self::Technical(e.0)
    }
}

impl From<sqlx::Error> for AccountsError {
    fn from(e: sqlx::Error) -> Self {
        Self::Technical(Box::new(e))
    }
}

impl From<StoreError> for AccountsError {
    fn from(e: StoreError) -> Self {
        Self::Technical(Box::new(e))
    }
}

type Result<T, E = AccountsError> = std::result::Result<T, E>;

/// A session just opened for a signed-in user.
#[derive(Debug)]
pub struct SignedIn {
    pub user: UserId,
    /// The organization the session works in: the one used last, if still a member.
    pub organization: Option<TenantId>,
    /// The cookie value (shown once) and the session, with its CSRF token.
    pub session: NewSession,
}

/// What a password sign-in leads to.
#[derive(Debug)]
pub enum LogIn {
    /// Signed in.
    SignedIn(SignedIn),
    /// The password was right; a second factor must follow within 10 minutes, from the
    /// browser that holds this pending session.
    SecondFactor(NewSession),
}

/// A second factor: a code from the authenticator app, or one of the recovery codes.
#[derive(Debug, Clone)]
pub enum SecondFactor {
    Totp(String),
    Recovery(String),
}

impl SecondFactor {
    /// Exactly one of the two, or the field to fix.
    pub fn parse(code: Option<String>, recovery_code: Option<String>) -> Result<Self, Invalid> {
        match (code, recovery_code) {
            (Some(c), None) => Ok(Self::Totp(c)),
            (None, Some(c)) => Ok(Self::Recovery(c)),
            _ => Err(Invalid::one("code", "give either code or recovery_code")),
        }
    }
}

/// A TOTP secret to put in an authenticator app.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct TotpEnrolment {
    /// Base32 secret.
    pub secret: String,
    /// The same as an `otpauth://` URL (show it as a QR code).
    pub otpauth_url: String,
}

/// Recovery codes, shown once.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct RecoveryCodes {
    /// Each works once in place of a TOTP code.
    pub recovery_codes: Vec<String>,
}

/// A mailed token that names its user: `<user id>.<secret>`.
pub fn user_token(user: Uuid, secret: &str) -> String {
    format!("{user}.{secret}")
}

/// The user and secret of a mailed token; any malformed token is simply invalid.
fn parse_user_token(token: &str) -> Result<(Uuid, String)> {
    let invalid = || AccountsError::User(UserError::InvalidToken);
    let (user, secret) = token.trim().split_once('.').ok_or_else(invalid)?;
    let user = Uuid::parse_str(user).map_err(|_| invalid())?;
    if secret.len() != 64 {
        return Err(invalid());
    }
    Ok((user, secret.to_owned()))
}

/// An invite token: `<organization>.<invite>.<secret>`.
pub fn invite_token(org: Uuid, invite: Uuid, secret: &str) -> String {
    format!("{org}.{invite}.{secret}")
}

fn parse_invite_token(t: &str) -> Result<(Uuid, Uuid, String)> {
    let mut parts = t.trim().splitn(3, '.');
    let mut id = || parts.next().and_then(|p| Uuid::parse_str(p).ok());
    let (Some(org), Some(invite)) = (id(), id()) else {
        return Err(AccountsError::NoSuchInvite);
    };
    match parts.next() {
        Some(secret) if secret.len() == 64 => Ok((org, invite, secret.to_owned())),
        _ => Err(AccountsError::NoSuchInvite),
    }
}

/// The accounts of the platform's users.
#[derive(Clone)]
pub struct Accounts {
    pool: PgPool,
    users: Arc<Executor<User>>,
    organizations: Arc<Executor<Organization>>,
    config: Arc<IdentityConfig>,
    mailer: SystemMailer,
    sessions: SessionStore,
    throttle: Throttle,
    orgs: OrgCache,
    clock: Clock,
}

/// What the accounts service is built from.
pub struct AccountParts {
    pub pool: PgPool,
    pub users: Arc<Executor<User>>,
    pub organizations: Arc<Executor<Organization>>,
    pub config: Arc<IdentityConfig>,
    pub mailer: SystemMailer,
    pub sessions: SessionStore,
    pub throttle: Throttle,
    pub orgs: OrgCache,
    pub clock: Clock,
}

impl Accounts {
    pub fn new(p: AccountParts) -> Self {
        Self {
            pool: p.pool,
            users: p.users,
            organizations: p.organizations,
            config: p.config,
            mailer: p.mailer,
            sessions: p.sessions,
            throttle: p.throttle,
            orgs: p.orgs,
            clock: p.clock,
        }
    }

    /// The live session of a cookie value, if any (a pending second factor included).
    pub async fn session(&self, cookie_value: &str) -> Result<Option<Session>> {
        Ok(self.sessions.find(cookie_value).await?)
    }

    /// The user `id` as of its latest event (`exists` is false for an unknown id).
    pub async fn user(&self, id: UserId) -> Result<User> {
        Ok(self.users.load(PLATFORM_TENANT, id.uuid()).await?)
    }

    /// Creates an account with a password and signs it in at once; the email still needs
    /// verifying (a link is mailed). `presented` is the session cookie the browser sent.
    pub async fn sign_up(
        &self,
        email: EmailAddress,
        name: Option<String>,
        password: String,
        presented: Option<&str>,
        client: &ClientInfo,
        meta: &EventMetadata,
    ) -> Result<SignedIn> {
        password::check_policy(&password, email.as_str(), name.as_deref())?;
        self.throttle
            .hit(&format!("mail:{}", client.ip_text()), MAILS_PER_ADDRESS)
            .await?;
        let hash = password::hash(self.config.password_cost, password).await?;
        let user = Uuid::now_v7();
        let token = secret::random_hex(32);
        let command = UserCommand::SignUp {
            email: email.clone(),
            name,
            has_password: true,
            verification: Some((
                secret::digest(&token),
                self.clock.now() + chrono(self.config.verification_ttl),
            )),
        };
        let meta = platform(meta);
        let me = Holder {
            tenant_id: PLATFORM_TENANT,
            owner_id: user,
        };
        let created = reserved(&self.pool, Scope::UserEmail, email.as_str(), me, || async {
            credentials::set_password(&self.pool, user, &hash).await?;
            self.users
                .execute(PLATFORM_TENANT, user, command, &meta)
                .await
                .map_err(AccountsError::from)
        })
        .await?;
        if created.is_err() {
            return Err(AccountsError::EmailTaken);
        }
        self.mail_verification(email.as_str(), user, &token).await;
        self.open(presented, user, client).await
    }

    /// Verifies an email address with the mailed token.
    pub async fn verify_email(
        &self,
        token: &str,
        client: &ClientInfo,
        meta: &EventMetadata,
    ) -> Result<Accepted> {
        self.limit_token_guesses(client).await?;
        let (user, token) = parse_user_token(token)?;
        let command = UserCommand::VerifyEmail {
            token: secret::digest(&token),
            now: self.clock.now(),
        };
        self.token_command(user, command, &platform(meta)).await
    }

    /// Mails a new verification link (the previous one stops working).
    pub async fn resend_verification(
        &self,
        user: UserId,
        meta: &EventMetadata,
    ) -> Result<Accepted> {
        self.throttle
            .hit(&format!("verify-mail:{user}"), PASSWORD_CHECKS)
            .await?;
        let token = secret::random_hex(32);
        let command = UserCommand::RequestEmailVerification {
            token: secret::digest(&token),
            expires_at: self.clock.now() + chrono(self.config.verification_ttl),
        };
        let accepted = self
            .users
            .execute(PLATFORM_TENANT, user.uuid(), command, &platform(meta))
            .await?;
        let email = self.user(user).await?.email;
        self.mail_verification(&email, user.uuid(), &token).await;
        Ok(accepted)
    }

    /// Signs in with email and password; a user with TOTP on gets a pending session that
    /// [`Accounts::second_factor`] completes.
    pub async fn log_in(
        &self,
        email: &str,
        password: String,
        presented: Option<&str>,
        client: &ClientInfo,
    ) -> Result<LogIn> {
        let email = email.trim().to_lowercase();
        self.throttle
            .hit(&format!("login-ip:{}", client.ip_text()), LOGIN_PER_ADDRESS)
            .await?;
        let account_bucket = format!("login:{email}");
        self.throttle
            .hit(&account_bucket, LOGIN_PER_ACCOUNT)
            .await?;
        let user = match self.user_by_email(&email).await? {
            Some(id) => Some((id, self.users.load(PLATFORM_TENANT, id).await?)),
            None => None,
        }
        .filter(|(_, u)| u.exists);
        let hash = match &user {
            Some((id, _)) => credentials::of(&self.pool, *id).await?.password_hash,
            None => None,
        };
        // Verified even for an unknown email (against a dummy hash): the answer takes as
        // long either way.
        let right = password::verify(self.config.password_cost, password, hash).await?;
        let Some((user_id, user)) = user.filter(|_| right) else {
            return Err(AccountsError::BadCredentials);
        };
        self.throttle.reset(&account_bucket).await?;
        if !user.totp_enabled {
            return self
                .open(presented, user_id, client)
                .await
                .map(LogIn::SignedIn);
        }
        self.end(presented).await?;
        let pending = self
            .sessions
            .create(user_id, None, Stage::SecondFactor, client)
            .await?;
        Ok(LogIn::SecondFactor(pending))
    }

    /// Completes a sign-in waiting for a second factor (`presented` is its pending session).
    pub async fn second_factor(
        &self,
        presented: Option<&str>,
        factor: SecondFactor,
        client: &ClientInfo,
        meta: &EventMetadata,
    ) -> Result<SignedIn> {
        let pending = match presented {
            Some(value) => self.sessions.find(value).await?,
            None => None,
        };
        let user_id = pending
            .filter(|p| p.stage == Stage::SecondFactor)
            .ok_or(AccountsError::WrongCode)?
            .user_id;
        self.throttle
            .hit(&format!("mfa:{user_id}"), SECOND_FACTOR_PER_USER)
            .await?;
        let user = self.users.load(PLATFORM_TENANT, user_id).await?;
        match factor {
            SecondFactor::Totp(code) => {
                let secret_b32 = credentials::of(&self.pool, user_id).await?.totp_secret;
                let secret_b32 = secret_b32.as_deref().ok_or(AccountsError::WrongCode)?;
                let step = totp::matching_step(secret_b32, &code, self.clock.now())?;
                let Some(step) = step.filter(|_| user.totp_enabled) else {
                    return Err(AccountsError::WrongCode);
                };
                // Each code signs in once: a replay within its 30 s is refused.
                if !credentials::use_totp_step(&self.pool, user_id, step).await? {
                    return Err(AccountsError::WrongCode);
                }
            }
            SecondFactor::Recovery(code) => {
                let code = secret::digest(&code.trim().to_lowercase());
                let command = UserCommand::UseRecoveryCode { code };
                match self
                    .users
                    .execute(PLATFORM_TENANT, user_id, command, &platform(meta))
                    .await
                {
                    Ok(_) => {}
                    Err(CommandError::Rejected(_)) => return Err(AccountsError::WrongCode),
                    Err(e) => return Err(e.into()),
                }
            }
        }
        self.open(presented, user_id, client).await
    }

    /// Ends a session (signing out).
    pub async fn log_out(&self, session: &Session) -> Result<()> {
        Ok(self.sessions.delete(&session.id_hash).await?)
    }

    /// Mails a password-reset link if the account exists; the same either way.
    pub async fn forgot_password(
        &self,
        email: EmailAddress,
        client: &ClientInfo,
        meta: &EventMetadata,
    ) -> Result<()> {
        self.throttle
            .hit(&format!("mail:{}", client.ip_text()), MAILS_PER_ADDRESS)
            .await?;
        self.throttle
            .hit(&format!("forgot:{email}"), RESETS_PER_ACCOUNT)
            .await?;
        let Some(user) = self.user_by_email(email.as_str()).await? else {
            return Ok(());
        };
        let token = secret::random_hex(32);
        let command = UserCommand::RequestPasswordReset {
            token: secret::digest(&token),
            expires_at: self.clock.now() + chrono(self.config.reset_ttl),
        };
        match self
            .users
            .execute(PLATFORM_TENANT, user, command, &platform(meta))
            .await
        {
            Ok(_) => {}
            // An account that cannot reset (erased meanwhile) is answered like no account.
            Err(CommandError::Rejected(_)) => return Ok(()),
            Err(e) => return Err(e.into()),
        }
        let url = self.link("/reset-password", &user_token(user, &token));
        let body = format!("Someone asked to reset your Mauntic3 password.\n\nChoose a new one: {url}\n\nThe link works once, for one hour. If it was not you, ignore this mail.\n");
        if let Err(e) = self
            .mailer
            .send(email.as_str(), "Reset your password", body)
            .await
        {
            tracing::warn!(error = %e, "reset mail not sent");
        }
        Ok(())
    }

    /// Sets a new password with the mailed token; every session of the user ends.
    pub async fn reset_password(
        &self,
        token: &str,
        new_password: String,
        client: &ClientInfo,
        meta: &EventMetadata,
    ) -> Result<Accepted> {
        self.limit_token_guesses(client).await?;
        let (user_id, token) = parse_user_token(token)?;
        let user = self.users.load(PLATFORM_TENANT, user_id).await?;
        password::check_policy(&new_password, &user.email, user.name.as_deref())?;
        let (digest, now) = (secret::digest(&token), self.clock.now());
        // Checked before the new password is stored; the command checks again, atomically.
        user.check_reset_token(&digest, now)
            .map_err(AccountsError::User)?;
        let hash = password::hash(self.config.password_cost, new_password).await?;
        credentials::set_password(&self.pool, user_id, &hash).await?;
        let command = UserCommand::ResetPassword { token: digest, now };
        let accepted = self
            .token_command(user_id, command, &platform(meta))
            .await?;
        self.sessions.delete_for_user(user_id, None).await?;
        Ok(accepted)
    }

    /// Changes the password knowing the current one; every session but `keep` ends.
    pub async fn change_password(
        &self,
        user: UserId,
        current: String,
        new_password: String,
        keep: Option<&Session>,
        meta: &EventMetadata,
    ) -> Result<Accepted> {
        let account = self.confirm_password(user, current).await?;
        password::check_policy(&new_password, &account.email, account.name.as_deref())?;
        let hash = password::hash(self.config.password_cost, new_password).await?;
        // Stored first, so the event never tells of a change that did not happen.
        credentials::set_password(&self.pool, user.uuid(), &hash).await?;
        let accepted = self
            .users
            .execute(
                PLATFORM_TENANT,
                user.uuid(),
                UserCommand::ChangePassword,
                &platform(meta),
            )
            .await?;
        let keep = keep.map(|s| s.id_hash.as_slice());
        self.sessions.delete_for_user(user.uuid(), keep).await?;
        Ok(accepted)
    }

    /// Starts enrolling a TOTP second factor; [`Accounts::confirm_totp`] turns it on.
    pub async fn start_totp(&self, user: UserId, meta: &EventMetadata) -> Result<TotpEnrolment> {
        let account = self.user(user).await?;
        if account.totp_enabled {
            return Err(AccountsError::User(UserError::TotpAlreadyEnabled));
        }
        let secret_b32 = totp::new_secret();
        credentials::set_totp_secret(&self.pool, user.uuid(), Some(&secret_b32)).await?;
        self.users
            .execute(
                PLATFORM_TENANT,
                user.uuid(),
                UserCommand::StartTotp,
                &platform(meta),
            )
            .await?;
        Ok(TotpEnrolment {
            otpauth_url: totp::otpauth_url(&secret_b32, &account.email),
            secret: secret_b32,
        })
    }

    /// Turns TOTP on once the app produces a valid code; answers the recovery codes.
    pub async fn confirm_totp(
        &self,
        user: UserId,
        code: &str,
        meta: &EventMetadata,
    ) -> Result<RecoveryCodes> {
        self.throttle
            .hit(&format!("mfa:{user}"), PASSWORD_CHECKS)
            .await?;
        let account = self.user(user).await?;
        let secret_b32 = credentials::of(&self.pool, user.uuid()).await?.totp_secret;
        let Some(secret_b32) = secret_b32.as_deref().filter(|_| account.totp_pending) else {
            return Err(AccountsError::TotpNotEnrolling);
        };
        if !totp::check(secret_b32, code, self.clock.now())? {
            return Err(AccountsError::CodeMismatch);
        }
        let codes = totp::recovery_codes();
        let command = UserCommand::ConfirmTotp {
            recovery_codes: codes.iter().map(|c| secret::digest(c)).collect(),
        };
        self.users
            .execute(PLATFORM_TENANT, user.uuid(), command, &platform(meta))
            .await?;
        Ok(RecoveryCodes {
            recovery_codes: codes,
        })
    }

    /// Turns TOTP off (the password is asked again).
    pub async fn disable_totp(
        &self,
        user: UserId,
        password: String,
        meta: &EventMetadata,
    ) -> Result<Accepted> {
        self.confirm_password(user, password).await?;
        let accepted = self
            .users
            .execute(
                PLATFORM_TENANT,
                user.uuid(),
                UserCommand::DisableTotp,
                &platform(meta),
            )
            .await?;
        credentials::set_totp_secret(&self.pool, user.uuid(), None).await?;
        Ok(accepted)
    }

    /// Makes `org` the session's organization (the user must be a member of it).
    pub async fn switch_organization(&self, session: &Session, org: TenantId) -> Result<()> {
        let current = self.orgs.current(org.uuid()).await?;
        if current.and_then(|o| o.role_of(session.user_id)).is_none() {
            return Err(AccountsError::NoSuchOrganization);
        }
        self.work_in(session, org.uuid()).await
    }

    /// Founds an organization; the user becomes its owner and works in it from now on.
    pub async fn create_organization(
        &self,
        session: &Session,
        name: OrgName,
        meta: &EventMetadata,
    ) -> Result<(TenantId, Accepted)> {
        let email = self.email_of(session.user_id).await?;
        let org = Uuid::now_v7();
        let command = OrganizationCommand::Create {
            name,
            owner: Some((session.user_id, email)),
        };
        let accepted = self
            .organizations
            .execute(org, org, command, &in_tenant(meta, org))
            .await?;
        self.work_in(session, org).await?;
        Ok((TenantId(org), accepted))
    }

    /// Accepts an invite with the mailed token; the user joins and works in that
    /// organization (accepting again changes nothing).
    pub async fn accept_invite(
        &self,
        session: &Session,
        token: &str,
        client: &ClientInfo,
        meta: &EventMetadata,
    ) -> Result<Accepted> {
        self.limit_token_guesses(client).await?;
        let (org, invite_id, token) = parse_invite_token(token)?;
        let command = OrganizationCommand::AcceptInvite {
            invite_id,
            token: secret::digest(&token),
            user_id: session.user_id,
            email: self.email_of(session.user_id).await?,
            now: self.clock.now(),
        };
        let accepted = match self
            .organizations
            .execute(org, org, command, &in_tenant(meta, org))
            .await
        {
            Err(CommandError::Rejected(OrganizationError::NotFound)) => {
                return Err(AccountsError::NoSuchInvite)
            }
            other => other?,
        };
        self.work_in(session, org).await?;
        Ok(accepted)
    }

    /// Signs `user` in: a new session id (a presented one is ended: no fixation), the
    /// organization used last if still a member. The session row records when and from
    /// where. (OpenID Connect sign-ins end here too.)
    pub async fn open(
        &self,
        presented: Option<&str>,
        user: Uuid,
        client: &ClientInfo,
    ) -> Result<SignedIn> {
        self.end(presented).await?;
        let org = self.last_organization(user).await?;
        let session = self
            .sessions
            .create(user, org, Stage::Active, client)
            .await?;
        Ok(SignedIn {
            user: UserId(user),
            organization: org.map(TenantId),
            session,
        })
    }

    /// Ends the session whose cookie value the browser presented, if any.
    async fn end(&self, presented: Option<&str>) -> Result<()> {
        if let Some(value) = presented {
            self.sessions.delete(&secret::digest_bytes(value)).await?;
        }
        Ok(())
    }

    /// The user with this email, if any.
    pub async fn user_by_email(&self, email: &str) -> Result<Option<Uuid>> {
        Ok(reservation::lookup(&self.pool, Scope::UserEmail, email)
            .await?
            .map(|h| h.owner_id))
    }

    async fn email_of(&self, user: Uuid) -> Result<EmailAddress> {
        let user = self.users.load(PLATFORM_TENANT, user).await?;
        EmailAddress::parse(&user.email).map_err(|e| AccountsError::Technical(Box::new(e)))
    }

    /// Checks the signed-in user's password (limited per user).
    async fn confirm_password(&self, user: UserId, given: String) -> Result<User> {
        self.throttle
            .hit(&format!("password:{user}"), PASSWORD_CHECKS)
            .await?;
        let account = self.user(user).await?;
        let hash = credentials::of(&self.pool, user.uuid())
            .await?
            .password_hash;
        if !password::verify(self.config.password_cost, given, hash).await? {
            return Err(AccountsError::WrongPassword);
        }
        Ok(account)
    }

    /// Runs a token command on `user`; an unknown user reads as an invalid token.
    async fn token_command(
        &self,
        user: Uuid,
        command: UserCommand,
        meta: &EventMetadata,
    ) -> Result<Accepted> {
        match self
            .users
            .execute(PLATFORM_TENANT, user, command, meta)
            .await
        {
            Ok(a) => Ok(a),
            Err(CommandError::Rejected(UserError::NotFound)) => {
                Err(AccountsError::User(UserError::InvalidToken))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Counts a token or code guess from this client.
    async fn limit_token_guesses(&self, client: &ClientInfo) -> Result<()> {
        Ok(self
            .throttle
            .hit(&format!("token:{}", client.ip_text()), TOKENS_PER_ADDRESS)
            .await?)
    }

    /// Mails the verification link; a failure is logged (the user can ask for another).
    async fn mail_verification(&self, to: &str, user: Uuid, token: &str) {
        let url = self.link("/verify-email", &user_token(user, token));
        let body = format!("Welcome to Mauntic3.\n\nConfirm your email address: {url}\n\nThe link works once, for 48 hours.\n");
        if let Err(e) = self
            .mailer
            .send(to, "Confirm your email address", body)
            .await
        {
            tracing::warn!(error = %e, "verification mail not sent");
        }
    }

    /// A link into the platform, e.g. `https://app.example/reset-password?token=…`.
    fn link(&self, path: &str, token: &str) -> String {
        format!(
            "{}{path}?token={token}",
            self.config.public_url.trim_end_matches('/')
        )
    }

    /// The organization `user` worked in last, if they are still a member of it.
    async fn last_organization(&self, user: Uuid) -> Result<Option<Uuid>> {
        let org: Option<(Uuid,)> =
            sqlx::query_as("SELECT organization_id FROM user_last_organization WHERE user_id = $1")
                .bind(user)
                .fetch_optional(&self.pool)
                .await?;
        let Some((org,)) = org else {
            return Ok(None);
        };
        let current = self.orgs.current(org).await?;
        Ok(current.filter(|o| o.role_of(user).is_some()).map(|_| org))
    }

    /// The session works in `org` from now on, and so does the user's next sign-in.
    async fn work_in(&self, session: &Session, org: Uuid) -> Result<()> {
        self.sessions
            .set_organization(&session.id_hash, org)
            .await?;
        sqlx::query(
            "INSERT INTO user_last_organization (user_id, organization_id) VALUES ($1, $2) \
             ON CONFLICT (user_id) DO UPDATE SET organization_id = EXCLUDED.organization_id",
        )
        .bind(session.user_id)
        .bind(org)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}

/// `meta` for a command on the platform's own streams (users).
fn platform(meta: &EventMetadata) -> EventMetadata {
    in_tenant(meta, PLATFORM_TENANT)
}

fn in_tenant(meta: &EventMetadata, tenant: Uuid) -> EventMetadata {
    EventMetadata {
        tenant_id: Some(tenant),
        ..meta.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_tokens_are_invalid_not_errors() {
        assert!(matches!(
            parse_user_token("nope"),
            Err(AccountsError::User(UserError::InvalidToken))
        ));
        let user = Uuid::now_v7();
        let ok = user_token(user, &"a".repeat(64));
        assert!(matches!(parse_user_token(&ok), Ok((u, _)) if u == user));
        assert!(parse_user_token(&user_token(user, "short")).is_err());
        assert!(matches!(
            parse_invite_token("x.y.z"),
            Err(AccountsError::NoSuchInvite)
        ));
    }

    #[test]
    fn a_second_factor_is_one_code_or_the_other() {
        assert!(SecondFactor::parse(Some("123456".into()), None).is_ok());
        assert!(SecondFactor::parse(None, Some("abcd-efgh".into())).is_ok());
        assert!(SecondFactor::parse(None, None).is_err());
        assert!(SecondFactor::parse(Some("1".into()), Some("2".into())).is_err());
    }
}
