//! Connecting to the log: pool, database creation, migrations, the installation's id.

use std::time::Duration;

use sqlx::migrate::MigrateDatabase;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgPool, Postgres};

use crate::StoreError;

/// Creates the database named in `url` if it does not exist yet.
pub async fn create_database_if_missing(url: &str) -> Result<(), StoreError> {
    if !Postgres::database_exists(url).await? {
        match Postgres::create_database(url).await {
            Ok(()) => {}
            // Another process created it between the check and the create.
            Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("42P04") => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// How long the server lets one of our sessions sit idle inside a transaction before it ends
/// the session (rolling the transaction back). None of our transactions waits on anything but
/// Postgres, so only a leaked one gets near this: a task cancelled between a statement and its
/// end can leave a transaction open on a connection nobody uses again, holding its row locks
/// (a checkpoint's, say, which every later move of that checkpoint then skips) until the
/// session ends. A killed process ends it at once; a live one now within a minute.
pub const IDLE_IN_TRANSACTION: &str = "60s";

/// A pool of `size` connections to `url`.
pub async fn connect(url: &str, size: u32) -> Result<PgPool, StoreError> {
    let options: PgConnectOptions = url.parse()?;
    let options = options
        .application_name("mauntic")
        .options([("idle_in_transaction_session_timeout", IDLE_IN_TRANSACTION)]);
    let pool = PgPoolOptions::new()
        .max_connections(size)
        .min_connections(1)
        // No ping before handing a connection out: with sqlx's ping when one is given back,
        // every statement run on the pool cost three round trips. A connection that broke
        // while idle fails its next statement (callers retry) and is then dropped by that
        // ping on its return.
        .test_before_acquire(false)
        .acquire_timeout(Duration::from_secs(10))
        .connect_with(options)
        .await?;
    Ok(pool)
}

/// Applies the migrations in `migrations/` (sqlx takes an advisory lock while it does).
pub async fn migrate(pool: &PgPool) -> Result<(), StoreError> {
    sqlx::migrate!("../migrations").run(pool).await?;
    Ok(())
}

/// This installation's id (migration 0028), which scopes everything it puts on NATS.
pub async fn installation(pool: &PgPool) -> Result<uuid::Uuid, StoreError> {
    Ok(sqlx::query_scalar("SELECT id FROM installation")
        .fetch_one(pool)
        .await?)
}
