//! Web sessions: a random id in an HttpOnly, SameSite=Lax cookie (Secure when configured);
//! server-side state in `sessions`, stored under the id's SHA-256. Sessions expire after a
//! fixed lifetime and after an idle time; a login always makes a new id (no fixation).

use std::time::Duration;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum_extra::extract::cookie::{Cookie, SameSite};
use chrono::{DateTime, Utc};
use event_store::Clock;
use sqlx::PgPool;
use uuid::Uuid;

use super::ClientInfo;
use crate::{secret, Problem};

/// The session cookie's name.
pub const COOKIE: &str = "mauntic_session";
/// The header cookie-authenticated writes must carry (the session's CSRF token).
pub const CSRF_HEADER: &str = "x-csrf-token";
/// How often `last_seen_at` is written at most.
const TOUCH_EVERY_SECS: i64 = 60;

#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// Absolute lifetime.
    pub ttl: Duration,
    /// Ends after this long without a request.
    pub idle: Duration,
    /// Mark the cookie `Secure` (serve over HTTPS).
    pub secure: bool,
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            ttl: Duration::from_secs(7 * 24 * 3600),
            idle: Duration::from_secs(12 * 3600),
            secure: false,
        }
    }
}

/// What a session is for: signed in, or waiting for the second factor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Active,
    /// Password checked; a TOTP or recovery code is awaited. Lives 10 minutes.
    SecondFactor,
}

impl Stage {
    fn as_str(self) -> &'static str {
        match self {
            Stage::Active => "active",
            Stage::SecondFactor => "mfa",
        }
    }
}

/// A live session.
#[derive(Debug, Clone)]
pub struct Session {
    pub id_hash: Vec<u8>,
    pub user_id: Uuid,
    pub organization_id: Option<Uuid>,
    pub stage: Stage,
    pub csrf_token: String,
    pub expires_at: DateTime<Utc>,
}

/// A session just made: its cookie value (shown once, to the browser) and its state.
#[derive(Debug, Clone)]
pub struct NewSession {
    pub cookie_value: String,
    pub session: Session,
}

#[derive(Clone)]
pub struct SessionStore {
    pool: PgPool,
    pub config: SessionConfig,
    clock: Clock,
}

type Row = (
    Vec<u8>,
    Uuid,
    Option<Uuid>,
    String,
    String,
    DateTime<Utc>,
    DateTime<Utc>,
);

impl SessionStore {
    pub fn new(pool: PgPool, config: SessionConfig, clock: Clock) -> Self {
        Self {
            pool,
            config,
            clock,
        }
    }

    /// A new session for `user` with a fresh random id and CSRF token.
    pub async fn create(
        &self,
        user_id: Uuid,
        organization_id: Option<Uuid>,
        stage: Stage,
        client: &ClientInfo,
    ) -> Result<NewSession, sqlx::Error> {
        let cookie_value = secret::random_hex(32);
        let now = self.clock.now();
        let lifetime = match stage {
            Stage::Active => self.config.ttl,
            Stage::SecondFactor => Duration::from_secs(600),
        };
        let session = Session {
            id_hash: secret::digest_bytes(&cookie_value),
            user_id,
            organization_id,
            stage,
            csrf_token: secret::random_hex(24),
            expires_at: now + chrono::Duration::from_std(lifetime).unwrap_or_default(),
        };
        sqlx::query(
            "INSERT INTO sessions (id_hash, user_id, organization_id, stage, csrf_token, created_at, last_seen_at, expires_at, ip, user_agent) \
             VALUES ($1, $2, $3, $4, $5, $6, $6, $7, $8, $9)",
        )
        .bind(&session.id_hash)
        .bind(user_id)
        .bind(organization_id)
        .bind(stage.as_str())
        .bind(&session.csrf_token)
        .bind(now)
        .bind(session.expires_at)
        .bind(client.ip.map(|ip| ip.to_string()))
        .bind(&client.user_agent)
        .execute(&self.pool)
        .await?;
        Ok(NewSession {
            cookie_value,
            session,
        })
    }

    /// The live session with cookie value `value`; expired and idle sessions are deleted.
    pub async fn find(&self, value: &str) -> Result<Option<Session>, sqlx::Error> {
        if value.len() != 64 {
            return Ok(None);
        }
        let id_hash = secret::digest_bytes(value);
        let row: Option<Row> = sqlx::query_as(
            "SELECT id_hash, user_id, organization_id, stage, csrf_token, expires_at, last_seen_at \
             FROM sessions WHERE id_hash = $1",
        )
        .bind(&id_hash)
        .fetch_optional(&self.pool)
        .await?;
        let Some((id_hash, user_id, organization_id, stage, csrf_token, expires_at, seen)) = row
        else {
            return Ok(None);
        };
        let now = self.clock.now();
        let idle = chrono::Duration::from_std(self.config.idle).unwrap_or_default();
        if now >= expires_at || now - seen >= idle {
            self.delete(&id_hash).await?;
            return Ok(None);
        }
        if (now - seen).num_seconds() >= TOUCH_EVERY_SECS {
            sqlx::query("UPDATE sessions SET last_seen_at = $2 WHERE id_hash = $1")
                .bind(&id_hash)
                .bind(now)
                .execute(&self.pool)
                .await?;
        }
        Ok(Some(Session {
            id_hash,
            user_id,
            organization_id,
            stage: if stage == "active" {
                Stage::Active
            } else {
                Stage::SecondFactor
            },
            csrf_token,
            expires_at,
        }))
    }

    pub async fn delete(&self, id_hash: &[u8]) -> Result<(), sqlx::Error> {
        sqlx::query("DELETE FROM sessions WHERE id_hash = $1")
            .bind(id_hash)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Ends every session of `user` but `keep` (after a password change or reset).
    pub async fn delete_for_user(
        &self,
        user_id: Uuid,
        keep: Option<&[u8]>,
    ) -> Result<u64, sqlx::Error> {
        sqlx::query(
            "DELETE FROM sessions WHERE user_id = $1 AND ($2::bytea IS NULL OR id_hash <> $2)",
        )
        .bind(user_id)
        .bind(keep)
        .execute(&self.pool)
        .await
        .map(|r| r.rows_affected())
    }

    /// Makes `organization` the session's current organization.
    pub async fn set_organization(
        &self,
        id_hash: &[u8],
        organization: Uuid,
    ) -> Result<(), sqlx::Error> {
        sqlx::query("UPDATE sessions SET organization_id = $2 WHERE id_hash = $1")
            .bind(id_hash)
            .bind(organization)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The cookie that carries `value`.
    pub fn cookie(&self, value: String, stage: Stage) -> Cookie<'static> {
        let max_age = match stage {
            Stage::Active => self.config.ttl,
            Stage::SecondFactor => Duration::from_secs(600),
        };
        Cookie::build((COOKIE, value))
            .http_only(true)
            .same_site(SameSite::Lax)
            .secure(self.config.secure)
            .path("/")
            .max_age(time_from(max_age))
            .build()
    }

    /// A cookie that clears the session cookie.
    pub fn removal(&self) -> Cookie<'static> {
        Cookie::build((COOKIE, ""))
            .http_only(true)
            .same_site(SameSite::Lax)
            .secure(self.config.secure)
            .path("/")
            .max_age(time_from(Duration::ZERO))
            .build()
    }
}

fn time_from(d: Duration) -> cookie::time::Duration {
    cookie::time::Duration::seconds(d.as_secs() as i64)
}

/// The signed-in user's session (on routes whose rule is `Access::User`).
pub struct SignedIn(pub Session);

impl<S: Send + Sync> FromRequestParts<S> for SignedIn {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Session>()
            .cloned()
            .map(Self)
            .ok_or_else(Problem::internal)
    }
}
