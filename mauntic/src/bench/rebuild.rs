//! `bench rebuild`: `replay rebuild contacts` over a seeded log of contact events.

use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use event_store::reader::{self, Filter};
use event_store::Cursor;
use sqlx::PgPool;
use uuid::Uuid;

use super::common::{figure, figure_f, fresh_database, header, per_second};
use super::seed::{self, Row, BATCH};
use crate::{app, Settings};

const DATABASE: &str = "mauntic_bench_rebuild";
/// Events per contact.
const LIFE: u64 = 5;

pub async fn run(settings: &Settings, events: u64) -> anyhow::Result<()> {
    let contacts = events / LIFE;
    if contacts == 0 {
        bail!("--events must be at least {LIFE}");
    }
    let mut s = fresh_database(settings, DATABASE).await?;
    s.nats = None;
    let (pool, _) = app::connect(&s).await?;
    header(&format!(
        "rebuild (database {DATABASE}, {contacts} contacts x {LIFE} events)"
    ));
    let (seeded, took) = seed_lives(&pool, contacts).await?;
    figure("seed.events", seeded, "events");
    figure_f("seed.seconds", took.as_secs_f64(), "s");
    figure_f("seed.rate", per_second(seeded, took), "events/s");
    let analyzed = Instant::now();
    sqlx::query("ANALYZE events").execute(&pool).await?;
    figure_f(
        "seed.analyze_seconds",
        analyzed.elapsed().as_secs_f64(),
        "s",
    );

    let projection = projections::by_name("contacts").context("no contacts projection")?;
    let mut reported = Instant::now();
    let report = replay::rebuild::rebuild(&pool, projection.as_ref(), |p| {
        if reported.elapsed() >= Duration::from_secs(5) {
            reported = Instant::now();
            eprintln!(
                "bench rebuild: {} events, at {} of head {}, {:.0} events/s",
                p.events,
                p.at,
                p.head,
                per_second(p.events, p.elapsed)
            );
        }
    })
    .await?;
    figure("rebuild.events", report.events, "events");
    figure_f("rebuild.seconds", report.seconds, "s");
    figure_f("rebuild.throughput", report.events_per_second, "events/s");
    figure("rebuild.checkpoint", report.checkpoint, "cursor");

    let (rows,): (i64,) = sqlx::query_as("SELECT count(*) FROM contacts")
        .fetch_one(&pool)
        .await?;
    // Every event of every contact applied: the state the fifth event leaves.
    let (complete,): (i64,) = sqlx::query_as(
        "SELECT count(*) FROM contacts WHERE version = 5 AND email LIKE '%@moved.example.org' \
         AND last_name IS NOT NULL AND NOT fields ? 'plan' AND fields ? 'score' \
         AND 'vip' = ANY(tags) AND NOT 'bench' = ANY(tags)",
    )
    .fetch_one(&pool)
    .await?;
    figure("contacts.rows", rows, "rows");
    figure("contacts.rows_with_all_5_events", complete, "rows");

    read_only(&pool).await?;
    pool.close().await;
    Ok(())
}

/// `contacts` contacts with [`LIFE`] events each. Batch `b` holds the first events of the
/// contacts of wave `b`, the second events of wave `b - 1`, and so on: a stream's events
/// are spread over five transactions, as later changes are in a real log.
async fn seed_lives(pool: &PgPool, contacts: u64) -> anyhow::Result<(u64, Duration)> {
    let tenant = Uuid::now_v7();
    let metadata = seed::metadata(tenant);
    let ids: Vec<Uuid> = (0..contacts).map(|_| Uuid::now_v7()).collect();
    let wave = BATCH as u64 / LIFE;
    let waves = contacts.div_ceil(wave);
    let mut conn = pool.acquire().await?;
    let started = Instant::now();
    let mut seeded = 0u64;
    let mut reported = started;
    for b in 0..waves + LIFE - 1 {
        let mut rows = Vec::with_capacity(BATCH);
        for k in 0..LIFE {
            let Some(w) = b.checked_sub(k).filter(|w| *w < waves) else {
                continue;
            };
            for n in w * wave..contacts.min((w + 1) * wave) {
                let sequence = i64::try_from(k + 1)?;
                rows.push(Row {
                    entity: ids[usize::try_from(n)?],
                    sequence,
                    event: seed::contact_event(n, sequence),
                });
            }
        }
        seed::insert(&mut conn, tenant, &metadata, &rows).await?;
        seeded += rows.len() as u64;
        if reported.elapsed() >= Duration::from_secs(5) {
            reported = Instant::now();
            eprintln!(
                "bench rebuild: seeded {seeded} events, {:.0} events/s",
                per_second(seeded, started.elapsed())
            );
        }
    }
    Ok((seeded, started.elapsed()))
}

/// For comparison: reading the whole log in the rebuild's page size, without applying it.
async fn read_only(pool: &PgPool) -> anyhow::Result<()> {
    let started = Instant::now();
    let mut at = Cursor::ZERO;
    let mut n = 0u64;
    loop {
        let page = reader::read_after(pool, at, 10_000, &Filter::default()).await?;
        let Some(last) = page.last().map(|e| e.cursor) else {
            break;
        };
        n += page.len() as u64;
        at = last;
    }
    let took = started.elapsed();
    figure("read_only.events", n, "events");
    figure_f("read_only.seconds", took.as_secs_f64(), "s");
    figure_f("read_only.throughput", per_second(n, took), "events/s");
    Ok(())
}
