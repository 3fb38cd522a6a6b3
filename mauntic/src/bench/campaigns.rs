//! `bench campaign-list`: the campaign list as the API runs it, over `--campaigns` campaigns
//! (default 100,000) of one organization.
//!
//! The campaigns go in as events (`CampaignCreated` and, by a fixed mix, scheduled, started,
//! paused, sent, cancelled or deleted), through the log's batch append, and the
//! `campaign_summaries` read model is built from them by its own projection (`replay
//! rebuild`). Then at least 1,000 list queries — every sort either way, with and without a
//! status filter (one status or several) and a name search, first pages and the pages after
//! them — run through `projections::campaigns::list::list`, the function the API calls.
//! Figures: p50/p95/p99 overall and per shape; the plan of the slowest shape when its p99
//! misses the 20 ms target.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::Utc;
use domain::campaign::{CampaignEvent as E, Pinned, Schedule, Settings};
use event_store::append::{self, NewEvent};
use projections::campaigns::list::{self, ListQuery, Sort};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sqlx::PgPool;
use uuid::Uuid;

use super::common::{figure, figure_f, fresh_database, header, per_second, Latencies};
use crate::{app, Settings as AppSettings};

const DATABASE: &str = "mauntic_bench_campaign_list";
/// Events per append statement.
const BATCH: usize = 5000;
/// Queries measured (at least).
const QUERIES: usize = 1200;
const PAGE: i64 = 50;
/// The p99 the list aims at, in milliseconds.
const TARGET_P99_MS: f64 = 20.0;

/// Words campaign names are made of: a search for one matches about 1 in 25 campaigns.
const WORDS: &[&str] = &[
    "spring", "summer", "autumn", "winter", "sale", "launch", "digest", "weekly", "monthly",
    "promo", "welcome", "reminder", "survey", "webinar", "event", "offer", "news", "update",
    "holiday", "flash", "loyalty", "renewal", "trial", "feedback", "product",
];

/// The end state of campaign `n` (and the events that lead there).
#[derive(Debug, Clone, Copy)]
enum Fate {
    Draft,
    Scheduled,
    Sending,
    Paused,
    Sent,
    Cancelled,
    Deleted,
}

fn fate(rng: &mut StdRng) -> Fate {
    match rng.gen_range(0..100) {
        0..=19 => Fate::Draft,
        20..=29 => Fate::Scheduled,
        30..=31 => Fate::Sending,
        32 => Fate::Paused,
        33..=87 => Fate::Sent,
        88..=94 => Fate::Cancelled,
        _ => Fate::Deleted,
    }
}

fn life(n: u64, rng: &mut StdRng) -> Vec<E> {
    let template = Uuid::now_v7();
    let name = format!(
        "{} {} #{n}",
        WORDS[rng.gen_range(0..WORDS.len())],
        WORDS[rng.gen_range(0..WORDS.len())]
    );
    let settings = Settings {
        name,
        template_id: Some(template),
        segments: vec![Uuid::now_v7()],
        ..Settings::default()
    };
    let at = Utc::now() + chrono::Duration::minutes(rng.gen_range(-500_000..500_000));
    let scheduled = E::CampaignScheduled {
        schedule: Schedule::At {
            at,
            time_zone: "UTC".into(),
        },
        starts_at: at,
    };
    let started = E::CampaignSendingStarted {
        pinned: vec![Pinned {
            variant: None,
            template_id: template,
            version: 1,
        }],
        audience: rng.gen_range(100..100_000),
        test_group: 0,
        at,
    };
    let mut out = vec![E::CampaignCreated {
        settings,
        cloned_from: None,
    }];
    match fate(rng) {
        Fate::Draft => {}
        Fate::Scheduled => out.push(scheduled),
        Fate::Sending => out.extend([scheduled, started]),
        Fate::Paused => out.extend([scheduled, started, E::CampaignPaused { at }]),
        Fate::Sent => out.extend([scheduled, started, E::CampaignSent { at }]),
        Fate::Cancelled => out.extend([scheduled, E::CampaignCancelled { at }]),
        Fate::Deleted => out.push(E::CampaignDeleted),
    }
    out
}

fn event_type(e: &E) -> &'static str {
    match e {
        E::CampaignCreated { .. } => "CampaignCreated",
        E::CampaignScheduled { .. } => "CampaignScheduled",
        E::CampaignSendingStarted { .. } => "CampaignSendingStarted",
        E::CampaignPaused { .. } => "CampaignPaused",
        E::CampaignSent { .. } => "CampaignSent",
        E::CampaignCancelled { .. } => "CampaignCancelled",
        E::CampaignDeleted => "CampaignDeleted",
        E::CampaignSettingsChanged { .. } => "CampaignSettingsChanged",
        E::CampaignUnscheduled => "CampaignUnscheduled",
        E::CampaignFannedOut { .. } => "CampaignFannedOut",
        E::CampaignWinnerChosen { .. } => "CampaignWinnerChosen",
        E::CampaignResumed { .. } => "CampaignResumed",
    }
}

pub async fn run(settings: &AppSettings, campaigns: u64) -> anyhow::Result<()> {
    anyhow::ensure!(campaigns > 0, "--campaigns must be at least 1");
    let mut s = fresh_database(settings, DATABASE).await?;
    s.nats = None;
    let (pool, _) = app::connect(&s).await?;
    header(&format!(
        "campaign-list (database {DATABASE}, {campaigns} campaigns of one organization)"
    ));
    let tenant = Uuid::now_v7();
    let (events, took) = seed(&pool, tenant, campaigns).await?;
    figure("seed.events", events, "events");
    figure_f("seed.seconds", took.as_secs_f64(), "s");

    let projection =
        projections::by_name("campaign_summaries").context("no campaign_summaries projection")?;
    let report = replay::rebuild::rebuild(&pool, projection.as_ref(), |_| {}).await?;
    println!("seeded_through: events + the campaign_summaries projection (replay rebuild)");
    figure_f("project.seconds", report.seconds, "s");
    figure_f("project.throughput", report.events_per_second, "events/s");
    sqlx::query("ANALYZE campaign_summaries")
        .execute(&pool)
        .await?;
    let (rows,): (i64,) =
        sqlx::query_as("SELECT count(*) FROM campaign_summaries WHERE NOT deleted")
            .fetch_one(&pool)
            .await?;
    figure("campaign_summaries.listed_rows", rows, "rows");

    measure(&pool, tenant).await?;
    pool.close().await;
    Ok(())
}

/// Appends every campaign's events through the log's batch path; (events, time).
async fn seed(pool: &PgPool, tenant: Uuid, campaigns: u64) -> anyhow::Result<(u64, Duration)> {
    let metadata = serde_json::json!({"tenant_id": tenant.to_string(), "actor": "bench"});
    let mut rng = StdRng::seed_from_u64(7);
    let started = Instant::now();
    let mut total = 0u64;
    let mut rows: Vec<(String, i64, String, String)> = Vec::with_capacity(BATCH);
    let mut n = 0u64;
    while n < campaigns || !rows.is_empty() {
        if n < campaigns && rows.len() < BATCH {
            let stream = event_store::recorded::stream_id(tenant, Uuid::now_v7());
            for (i, e) in life(n, &mut rng).into_iter().enumerate() {
                let payload = serde_json::to_string(&e).context("serializing an event")?;
                rows.push((
                    stream.clone(),
                    i as i64 + 1,
                    event_type(&e).to_owned(),
                    payload,
                ));
            }
            n += 1;
            continue;
        }
        let batch: Vec<NewEvent<'_>> = rows
            .iter()
            .map(|(stream, sequence, event_type, payload)| NewEvent {
                aggregate_type: "campaign",
                aggregate_id: stream,
                sequence: *sequence,
                event_type,
                event_version: "1.0",
                payload,
                metadata: &metadata,
            })
            .collect();
        let mut tx = pool.begin().await?;
        append::append(&mut tx, &batch)
            .await
            .map_err(|e| anyhow::anyhow!("appending campaign events: {e}"))?;
        tx.commit().await?;
        total += rows.len() as u64;
        rows.clear();
    }
    let took = started.elapsed();
    eprintln!(
        "bench campaign-list: {total} events in {:.1} s ({:.0} events/s)",
        took.as_secs_f64(),
        per_second(total, took)
    );
    Ok((total, took))
}

/// One query shape: how it filters and sorts, and how deep it pages.
#[derive(Debug, Clone)]
struct Shape {
    statuses: Vec<String>,
    search: bool,
    sort: Sort,
    descending: bool,
    /// Pages read one after the other (1: the first only).
    pages: usize,
}

impl Shape {
    fn label(&self) -> String {
        let sort = match self.sort {
            Sort::CreatedAt => "created_at",
            Sort::Name => "name",
            Sort::StartsAt => "starts_at",
        };
        format!(
            "{}{sort} status={} q={} pages={}",
            if self.descending { "-" } else { "" },
            if self.statuses.is_empty() {
                "any".to_owned()
            } else {
                self.statuses.join(",")
            },
            if self.search { "word" } else { "none" },
            self.pages
        )
    }
}

fn shapes() -> Vec<Shape> {
    let filters: [Vec<&str>; 4] = [
        vec![],
        vec!["sent"],
        vec!["paused"],
        vec!["draft", "scheduled"],
    ];
    let mut out = Vec::new();
    for sort in [Sort::CreatedAt, Sort::Name, Sort::StartsAt] {
        for descending in [false, true] {
            for statuses in &filters {
                for search in [false, true] {
                    out.push(Shape {
                        statuses: statuses.iter().map(|s| (*s).to_owned()).collect(),
                        search,
                        sort,
                        descending,
                        pages: if search { 2 } else { 3 },
                    });
                }
            }
        }
    }
    out
}

async fn measure(pool: &PgPool, tenant: Uuid) -> anyhow::Result<()> {
    let shapes = shapes();
    let mut rng = StdRng::seed_from_u64(11);
    let mut all = Latencies::new()?;
    let mut by_shape: BTreeMap<usize, Latencies> = BTreeMap::new();
    let mut queries = 0usize;
    let mut rows = 0usize;
    // A warm-up round, unmeasured: the first touch of each index reads it from disk.
    for shape in &shapes {
        let q = query(shape, WORDS[0], None);
        list::list(pool, tenant, &q).await?;
    }
    while queries < QUERIES {
        for (i, shape) in shapes.iter().enumerate() {
            let word = WORDS[rng.gen_range(0..WORDS.len())];
            let mut after = None;
            for _ in 0..shape.pages {
                let q = query(shape, word, after.take());
                let t = Instant::now();
                let page = list::list(pool, tenant, &q).await?;
                let d = t.elapsed();
                all.record(d);
                by_shape.entry(i).or_insert(Latencies::new()?).record(d);
                queries += 1;
                rows += page.rows.len();
                match page.rows.last() {
                    Some((r, key)) if page.rows.len() as i64 == PAGE => {
                        after = Some((key.clone(), r.id));
                    }
                    _ => break,
                }
            }
        }
    }
    figure("queries", queries, "queries");
    figure("rows_read", rows, "rows");
    all.print("list", &[50, 95, 99]);
    let mut worst: Option<(usize, f64)> = None;
    for (i, l) in &by_shape {
        let p99 = l.quantile_ms(0.99);
        eprintln!(
            "bench campaign-list: {:<48} p50 {:>6.2} ms  p99 {:>6.2} ms",
            shapes[*i].label(),
            l.quantile_ms(0.5),
            p99
        );
        if worst.is_none_or(|(_, w)| p99 > w) {
            worst = Some((*i, p99));
        }
    }
    let Some((i, p99)) = worst else {
        return Ok(());
    };
    println!("slowest_shape: {}", shapes[i].label());
    figure_f("slowest_shape_p99", p99, "ms");
    let target_met = all.quantile_ms(0.99) < TARGET_P99_MS;
    println!(
        "target: p99 < {TARGET_P99_MS} ms: {}",
        if target_met { "met" } else { "MISSED" }
    );
    if p99 >= TARGET_P99_MS {
        println!("explain ({}):", shapes[i].label());
        let q = query(&shapes[i], WORDS[1], None);
        for line in list::explain(pool, tenant, &q).await? {
            println!("  {line}");
        }
    }
    Ok(())
}

fn query(shape: &Shape, word: &str, after: Option<(String, Uuid)>) -> ListQuery {
    ListQuery {
        statuses: shape.statuses.clone(),
        name: shape.search.then(|| word.to_owned()),
        sort: shape.sort,
        descending: shape.descending,
        after,
        limit: PAGE,
    }
}
