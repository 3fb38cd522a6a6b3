//! Rebuilding a projection without downtime.
//!
//! 1. Create `<table>__rebuild` like the live table (unlogged while it fills) — for each
//!    table the projection owns — and read the whole log into them, in cursor order, in short
//!    transactions, with the projection's own `apply` (reading the next page while the
//!    previous one is written); then make them logged.
//! 2. When they have caught up, take the live checkpoint's row lock (the live projector
//!    waits), apply whatever arrived meanwhile, swap the tables by renaming, and set the live
//!    checkpoint to the rebuilt one, all in one transaction. Readers see the old tables until
//!    that commit and the new ones after it, never a half-built one.

use std::time::{Duration, Instant};

use event_store::reader::{self, Filter};
use event_store::{checkpoint, Cursor, RecordedEvent};
use projections::projection::SHADOW;
use projections::runner;
use projections::{Projection, Target};
use sqlx::{Connection, PgConnection, PgPool};

use crate::ReplayError;

/// Events read per page.
const PAGE: i64 = 50_000;

/// Where a rebuild has got to.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    pub events: u64,
    pub at: Cursor,
    pub head: Cursor,
    pub elapsed: Duration,
}

/// What a finished rebuild did.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct Report {
    pub events: u64,
    pub seconds: f64,
    pub events_per_second: f64,
    #[serde(serialize_with = "ser_cursor")]
    pub checkpoint: Cursor,
}

fn ser_cursor<S: serde::Serializer>(c: &Cursor, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(c)
}

/// Rebuilds `projection` from the log and swaps the result in; `progress` is called after
/// every page.
pub async fn rebuild(
    pool: &PgPool,
    projection: &dyn Projection,
    mut progress: impl FnMut(&Progress),
) -> Result<Report, ReplayError> {
    let live = Target::live(projection);
    let shadow = Target::shadow(projection);
    // One rebuild per projection at a time: a session lock held for the whole rebuild.
    let mut guard = pool.acquire().await?.detach();
    let (got,): (bool,) = sqlx::query_as("SELECT pg_try_advisory_lock(hashtext($1))")
        .bind(format!("rebuild:{}", projection.name()))
        .fetch_one(&mut guard)
        .await?;
    if !got {
        return Err(ReplayError::Busy(projection.name().to_owned()));
    }
    let started = Instant::now();

    prepare_shadow(pool, projection, &shadow).await?;

    // Read ahead: one task pages through the log while this one writes.
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<Vec<RecordedEvent>, ReplayError>>(2);
    let reader_pool = pool.clone();
    let reader_task = tokio::spawn(async move {
        let mut at = Cursor::ZERO;
        loop {
            let page = reader::read_after(&reader_pool, at, PAGE, &Filter::default()).await;
            let page = match page {
                Ok(p) => p,
                Err(e) => {
                    let _ = tx.send(Err(e.into())).await;
                    return;
                }
            };
            let Some(last) = page.last().map(|e| e.cursor) else {
                return;
            };
            at = last;
            if tx.send(Ok(page)).await.is_err() {
                return;
            }
        }
    });

    let mut events = 0u64;
    let mut at = Cursor::ZERO;
    let mut head = reader::head(pool).await?;
    while let Some(page) = rx.recv().await {
        let page = page?;
        events += page.len() as u64;
        at = apply_page(pool, projection, &shadow, &page).await?;
        if at > head {
            head = reader::head(pool).await?;
        }
        progress(&Progress {
            events,
            at,
            head,
            elapsed: started.elapsed(),
        });
    }
    reader_task.await.ok();

    // Make the shadows durable before the swap (a rewrite), outside the swap's lock.
    for table in tables(projection) {
        sqlx::query(&format!(
            "ALTER TABLE {} SET LOGGED",
            shadow.table_named(table)
        ))
        .execute(pool)
        .await?;
    }
    let (more, final_cursor) = swap(pool, projection, &live, &shadow).await?;
    events += more;
    let seconds = started.elapsed().as_secs_f64();
    let _ = guard.close().await;
    Ok(Report {
        events,
        seconds,
        events_per_second: events as f64 / seconds.max(1e-9),
        checkpoint: final_cursor.max(at),
    })
}

/// One page into the shadow table. The shadow is unlogged until it is swapped in and a crash
/// means starting the rebuild again, so its commits need not wait for the disk.
async fn apply_page(
    pool: &PgPool,
    projection: &dyn Projection,
    shadow: &Target,
    page: &[RecordedEvent],
) -> Result<Cursor, ReplayError> {
    let mut tx = pool.begin().await?;
    sqlx::query("SET LOCAL synchronous_commit = off")
        .execute(&mut *tx)
        .await?;
    let at = runner::apply_in(&mut tx, projection, shadow, page).await?;
    tx.commit().await?;
    Ok(at)
}

/// Every table `projection` owns: its own and its `more_tables`.
fn tables(projection: &dyn Projection) -> impl Iterator<Item = &'static str> {
    std::iter::once(projection.table()).chain(projection.more_tables().iter().copied())
}

async fn prepare_shadow(
    pool: &PgPool,
    projection: &dyn Projection,
    shadow: &Target,
) -> Result<(), ReplayError> {
    let mut tx = pool.begin().await?;
    for table in tables(projection) {
        let copy = shadow.table_named(table);
        sqlx::query(&format!("DROP TABLE IF EXISTS {copy}"))
            .execute(&mut *tx)
            .await?;
        sqlx::query(&format!(
            "CREATE UNLOGGED TABLE {copy} (LIKE {table} INCLUDING ALL)"
        ))
        .execute(&mut *tx)
        .await?;
    }
    checkpoint::set(&mut *tx, &shadow.checkpoint, Cursor::ZERO).await?;
    tx.commit().await?;
    Ok(())
}

/// Catches the shadow up under the live checkpoint's lock and swaps it in.
async fn swap(
    pool: &PgPool,
    projection: &dyn Projection,
    live: &Target,
    shadow: &Target,
) -> Result<(u64, Cursor), ReplayError> {
    let mut tx = pool.begin().await?;
    // The live projector now waits on this lock until the swap commits.
    checkpoint::lock(&mut tx, &live.checkpoint).await?;
    let mut at = checkpoint::load(&mut *tx, &shadow.checkpoint).await?;
    let mut more = 0u64;
    loop {
        let page = reader::read_after(&mut *tx, at, PAGE, &Filter::default()).await?;
        if page.is_empty() {
            break;
        }
        more += page.len() as u64;
        at = runner::apply_in(&mut tx, projection, shadow, &page).await?;
    }
    for table in tables(projection) {
        swap_table(
            &mut tx,
            &live.table_named(table),
            &shadow.table_named(table),
        )
        .await?;
    }
    checkpoint::set(&mut *tx, &live.checkpoint, at).await?;
    checkpoint::remove(&mut *tx, &shadow.checkpoint).await?;
    tx.commit().await?;
    Ok((more, at))
}

/// Puts table `shadow` in the place of table `live` (inside the swap's transaction).
async fn swap_table(conn: &mut PgConnection, live: &str, shadow: &str) -> Result<(), ReplayError> {
    let old = format!("{live}__old");
    for sql in [
        format!("ALTER TABLE {live} RENAME TO {old}"),
        format!("ALTER TABLE {shadow} RENAME TO {live}"),
        format!("DROP TABLE {old}"),
    ] {
        sqlx::query(&sql).execute(&mut *conn).await?;
    }
    // Give the swapped-in indexes the live table's names again.
    let indexes: Vec<(String,)> = sqlx::query_as(
        "SELECT indexname::text FROM pg_indexes WHERE schemaname = current_schema() \
         AND tablename = $1 AND indexname LIKE '%\\_\\_rebuild%'",
    )
    .bind(live)
    .fetch_all(&mut *conn)
    .await?;
    for (name,) in indexes {
        let renamed = name.replacen(SHADOW, "", 1);
        sqlx::query(&format!("ALTER INDEX {name} RENAME TO {renamed}"))
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}
