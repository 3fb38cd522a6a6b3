//! Brute-force protection: attempts counted per bucket (`login:<email>`, `ip:<address>`, …)
//! in fixed windows, in Postgres so every process shares the count.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::PgPool;

use crate::Problem;

/// Why an attempt was not counted in.
#[derive(Debug, thiserror::Error)]
pub enum ThrottleError {
    /// Past the limit; the window ends in `retry_after` seconds.
    #[error("too many attempts; try again in {retry_after} s")]
    TooMany { retry_after: u64 },
    /// The count could not be read or written.
    #[error("attempt counter: {0}")]
    Store(#[from] sqlx::Error),
}

impl From<ThrottleError> for Problem {
    fn from(e: ThrottleError) -> Self {
        match e {
            ThrottleError::TooMany { retry_after } => Problem::new(
                axum::http::StatusCode::TOO_MANY_REQUESTS,
                "too-many-attempts",
                "Too many attempts",
            )
            .detail(e.to_string())
            .retry_after(retry_after),
            ThrottleError::Store(e) => Problem::from_internal(&e),
        }
    }
}

/// A limit: at most `attempts` per `window`.
#[derive(Debug, Clone, Copy)]
pub struct Limit {
    pub attempts: i32,
    pub window: Duration,
}

#[derive(Clone)]
pub struct Throttle {
    pool: PgPool,
}

impl Throttle {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    /// Counts one attempt in `bucket`; 429 with `Retry-After` once the limit is passed.
    pub async fn hit(&self, bucket: &str, limit: Limit) -> Result<(), ThrottleError> {
        let secs = limit.window.as_secs_f64();
        let (attempts, start): (i32, DateTime<Utc>) = sqlx::query_as(
            "INSERT INTO auth_throttle AS t (bucket, window_start, attempts) VALUES ($1, now(), 1) \
             ON CONFLICT (bucket) DO UPDATE SET \
               window_start = CASE WHEN t.window_start < now() - make_interval(secs => $2) THEN now() ELSE t.window_start END, \
               attempts = CASE WHEN t.window_start < now() - make_interval(secs => $2) THEN 1 ELSE t.attempts + 1 END \
             RETURNING attempts, window_start",
        )
        .bind(bucket)
        .bind(secs)
        .fetch_one(&self.pool)
        .await?;
        if attempts <= limit.attempts {
            return Ok(());
        }
        let ends = start + chrono::Duration::milliseconds(limit.window.as_millis() as i64);
        let wait = (ends - Utc::now()).num_seconds().max(1) as u64;
        Err(ThrottleError::TooMany { retry_after: wait })
    }

    /// Forgets the attempts in `bucket` (after a successful login).
    pub async fn reset(&self, bucket: &str) -> Result<(), sqlx::Error> {
        sqlx::query("DELETE FROM auth_throttle WHERE bucket = $1")
            .bind(bucket)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
