//! Credentials beside the log: a user's password hash (argon2id) and TOTP secret. They never
//! enter an event — events say that a password changed, not what it is — so the log, the bus
//! and every read model stay free of them, and erasing a user deletes one row.

use sqlx::PgPool;
use uuid::Uuid;

/// What a user signs in with.
#[derive(Debug, Clone, Default)]
pub struct Credentials {
    pub password_hash: Option<String>,
    pub totp_secret: Option<String>,
}

use crate::error::Fault;

fn internal(e: sqlx::Error) -> Fault {
    Fault::from(e)
}

/// The credentials of `user` (empty for an unknown user).
pub async fn of(pool: &PgPool, user: Uuid) -> Result<Credentials, Fault> {
    let row: Option<(Option<String>, Option<String>)> = sqlx::query_as(
        "SELECT password_hash, totp_secret FROM user_credentials WHERE user_id = $1",
    )
    .bind(user)
    .fetch_optional(pool)
    .await
    .map_err(internal)?;
    Ok(row
        .map(|(password_hash, totp_secret)| Credentials {
            password_hash,
            totp_secret,
        })
        .unwrap_or_default())
}

/// Stores `hash` as `user`'s password.
pub async fn set_password(pool: &PgPool, user: Uuid, hash: &str) -> Result<(), Fault> {
    sqlx::query(
        "INSERT INTO user_credentials (user_id, password_hash) VALUES ($1, $2) \
         ON CONFLICT (user_id) DO UPDATE SET password_hash = EXCLUDED.password_hash, updated_at = now()",
    )
    .bind(user)
    .bind(hash)
    .execute(pool)
    .await
    .map_err(internal)?;
    Ok(())
}

/// Stores (or, with `None`, forgets) `user`'s TOTP secret.
pub async fn set_totp_secret(pool: &PgPool, user: Uuid, secret: Option<&str>) -> Result<(), Fault> {
    sqlx::query(
        "INSERT INTO user_credentials (user_id, totp_secret) VALUES ($1, $2) \
         ON CONFLICT (user_id) DO UPDATE SET totp_secret = EXCLUDED.totp_secret, updated_at = now()",
    )
    .bind(user)
    .bind(secret)
    .execute(pool)
    .await
    .map_err(internal)?;
    Ok(())
}

/// Marks TOTP `step` used by `user`; false if it (or a later one) was used already.
pub async fn use_totp_step(pool: &PgPool, user: Uuid, step: i64) -> Result<bool, Fault> {
    let updated = sqlx::query(
        "UPDATE user_credentials SET totp_last_step = $2 \
         WHERE user_id = $1 AND (totp_last_step IS NULL OR totp_last_step < $2)",
    )
    .bind(user)
    .bind(step)
    .execute(pool)
    .await
    .map_err(internal)?;
    Ok(updated.rows_affected() == 1)
}
