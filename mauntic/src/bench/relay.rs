//! `bench relay`: how fast the relay moves a seeded log into a fresh JetStream stream.

use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use event_store::nats::{self, Bus, NatsConfig};
use event_store::reader::{self, Filter};
use event_store::relay::Relay;
use event_store::Cursor;
use sqlx::{Connection, PgPool};
use uuid::Uuid;

use super::common::{
    delete_stream, figure, figure_f, fresh_database, fresh_nats, header, per_second,
    stream_messages,
};
use super::seed::{self, Row, BATCH};
use crate::{app, Settings};

const DATABASE: &str = "mauntic_bench_relay";
/// The relay must be done by then.
const DEADLINE: Duration = Duration::from_secs(900);

pub async fn run(settings: &Settings, events: u64) -> anyhow::Result<()> {
    let url = &settings
        .nats
        .as_ref()
        .context("bench relay needs NATS_URL (e.g. nats://127.0.0.1:4222)")?
        .url;
    let mut s = fresh_database(settings, DATABASE).await?;
    s.nats = None;
    let (pool, _) = app::connect(&s).await?;
    header(&format!("relay (database {DATABASE}, {events} events)"));
    let seeded = seed_created(&pool, events).await?;
    figure("seed.events", events, "events");
    figure_f("seed.seconds", seeded.as_secs_f64(), "s");
    figure_f("seed.rate", per_second(events, seeded), "events/s");
    sqlx::query("ANALYZE events").execute(&pool).await?;

    let cfg = fresh_nats(url);
    let outcome = publish(&pool, &cfg, events).await;
    let deleted = delete_stream(&cfg).await;
    outcome?;
    deleted?;
    read_only(&pool, events).await?;
    pool.close().await;
    Ok(())
}

/// `events` ContactCreated events, one per contact, in INSERTs of [`BATCH`] rows.
async fn seed_created(pool: &PgPool, events: u64) -> anyhow::Result<Duration> {
    let tenant = Uuid::now_v7();
    let metadata = seed::metadata(tenant);
    let mut conn = pool.acquire().await?;
    let started = Instant::now();
    let mut n = 0u64;
    while n < events {
        let rows: Vec<Row> = (n..events.min(n + BATCH as u64))
            .map(|i| Row {
                entity: Uuid::now_v7(),
                sequence: 1,
                event: seed::contact_event(i, 1),
            })
            .collect();
        seed::insert(&mut conn, tenant, &metadata, &rows).await?;
        n += rows.len() as u64;
    }
    Ok(started.elapsed())
}

async fn publish(pool: &PgPool, cfg: &NatsConfig, events: u64) -> anyhow::Result<()> {
    let bus = Bus::connect(cfg.clone(), event_store::store::installation(pool).await?).await?;
    let stream = bus.names.stream.clone();
    let relay = Relay::new(pool.clone(), bus);
    let mut lead = relay
        .try_lead()
        .await?
        .context("another relay holds this database's relay lock")?;
    eprintln!("bench relay: publishing to stream {stream}");
    let started = Instant::now();
    let mut published = 0u64;
    let mut batches = 0u64;
    let mut reported = started;
    loop {
        let n = relay.publish_batch(&mut lead).await? as u64;
        if n == 0 {
            break;
        }
        published += n;
        batches += 1;
        if reported.elapsed() >= Duration::from_secs(5) {
            reported = Instant::now();
            eprintln!(
                "bench relay: {published} of {events} events, {:.0} events/s",
                per_second(published, started.elapsed())
            );
        }
        if started.elapsed() > DEADLINE {
            bail!("the relay published {published} of {events} events in {DEADLINE:?}; giving up");
        }
    }
    let took = started.elapsed();
    lead.close().await?;
    let in_stream = stream_messages(cfg).await?;
    figure("relay.published", published, "events");
    figure("relay.batches", batches, "batches");
    figure_f("relay.seconds", took.as_secs_f64(), "s");
    figure_f("relay.throughput", per_second(published, took), "events/s");
    figure("stream.messages", in_stream, "messages");
    figure(
        "stream.missing",
        events.saturating_sub(in_stream),
        "messages",
    );
    Ok(())
}

/// For comparison: the relay's reads (`read_after`, pages of 2000) and its message encoding
/// (`nats::message`) alone, without NATS, each timed on its own.
async fn read_only(pool: &PgPool, events: u64) -> anyhow::Result<()> {
    let started = Instant::now();
    let mut reading = Duration::ZERO;
    let mut encoding = Duration::ZERO;
    let mut at = Cursor::ZERO;
    let mut n = 0u64;
    let mut bytes = 0usize;
    let mut sample = 0usize;
    loop {
        let read_at = Instant::now();
        let page = reader::read_after(pool, at, 2000, &Filter::default()).await?;
        reading += read_at.elapsed();
        let Some(last) = page.last().map(|e| e.cursor) else {
            break;
        };
        if n == 0 {
            // The size of a message body, from the first page only.
            for e in &page {
                bytes += serde_json::to_vec(e).map(|b| b.len()).unwrap_or(0);
            }
            sample = page.len();
        }
        let encode_at = Instant::now();
        let mut prev = at;
        for e in &page {
            drop(nats::message(e, prev, uuid::Uuid::nil())?);
            prev = e.cursor;
        }
        encoding += encode_at.elapsed();
        n += page.len() as u64;
        at = last;
    }
    let took = started.elapsed();
    if n != events {
        eprintln!("bench relay: read {n} events back, seeded {events}");
    }
    figure("read_only.events", n, "events");
    figure_f("read_only.seconds", took.as_secs_f64(), "s");
    figure_f("read_only.throughput", per_second(n, took), "events/s");
    figure_f("read_only.read_seconds", reading.as_secs_f64(), "s");
    figure_f("read_only.encode_seconds", encoding.as_secs_f64(), "s");
    figure(
        "read_only.mean_message_body",
        bytes / sample.max(1),
        "bytes",
    );
    Ok(())
}
