//! `bench export`: contacts to CSV, streamed over HTTP, with the process's memory watched.
//!
//! The contacts read model of a fresh database is filled straight from SQL (the export reads
//! the read model; projecting is measured by `bench rebuild`) with `--events` contacts
//! (default 1,000,000) of 20 custom fields each. Then `GET /api/v1/contacts:export` is read
//! chunk by chunk and dropped. Peak RSS is the process's high-water mark (`VmHWM`): the
//! server and the client both run in this process, so it bounds the server's share.

use std::time::{Duration, Instant};

use anyhow::Context;

use super::common::{figure, figure_f, fresh_database, header, per_second, RunningApp};
use crate::Settings;

const DATABASE: &str = "mauntic_bench_export";

pub(super) fn rss_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(0)
}

pub async fn run(settings: &Settings, contacts: u64) -> anyhow::Result<()> {
    let mut s = fresh_database(settings, DATABASE).await?;
    s.nats = None;
    let app = RunningApp::start(s).await?;
    let outcome = measure(&app, contacts).await;
    let stopped = app.stop().await;
    outcome?;
    stopped
}

async fn measure(app: &RunningApp, contacts: u64) -> anyhow::Result<()> {
    let tenant = app.tenant().await?;
    eprintln!("bench export: filling the read model with {contacts} contacts");
    let t = Instant::now();
    sqlx::query(
        "INSERT INTO contacts (tenant_id, id, email, first_name, last_name, fields, tags, stage, \
                               points, created_at, updated_at, version) \
         SELECT $1, gen_random_uuid(), 'c' || n || '@bench.example.org', 'First' || n, 'Last' || n, \
                (SELECT jsonb_object_agg('f' || k, 'value ' || k || '-' || n) FROM generate_series(1, 20) k), \
                ARRAY['bench', 't' || (n % 10)], 'lead', n % 100, now(), now(), 1 \
         FROM generate_series(1, $2) n",
    )
    .bind(tenant.tenant_id)
    .bind(contacts as i64)
    .execute(&app.pool)
    .await
    .context("filling the contacts read model")?;
    sqlx::query("ANALYZE contacts").execute(&app.pool).await?;
    eprintln!("bench export: filled in {:.1} s", t.elapsed().as_secs_f64());

    header(&format!(
        "export ({contacts} contacts, 20 custom fields each, CSV over HTTP)"
    ));
    let before = rss_kib("VmRSS:");
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(3600))
        .build()?;
    let t = Instant::now();
    let res = client
        .get(format!("{}/api/v1/contacts:export", app.base_url))
        .bearer_auth(&tenant.api_key)
        .send()
        .await?;
    anyhow::ensure!(res.status() == 200, "export answered {}", res.status());
    let first_byte = t.elapsed();
    let (mut bytes, mut lines) = (0u64, 0u64);
    let mut res = res;
    while let Some(chunk) = res.chunk().await.context("reading the export")? {
        bytes += chunk.len() as u64;
        lines += chunk.iter().filter(|b| **b == b'\n').count() as u64;
    }
    let took = t.elapsed();
    figure("rows", lines.saturating_sub(1), "rows");
    figure_f("megabytes", bytes as f64 / 1e6, "MB");
    figure_f("seconds", took.as_secs_f64(), "s");
    figure_f(
        "throughput",
        per_second(lines.saturating_sub(1), took),
        "rows/s",
    );
    figure_f("first_byte_ms", first_byte.as_secs_f64() * 1000.0, "ms");
    figure_f("rss_before_mb", before as f64 / 1024.0, "MB");
    figure_f("peak_rss_mb", rss_kib("VmHWM:") as f64 / 1024.0, "MB");
    anyhow::ensure!(
        lines.saturating_sub(1) == contacts,
        "exported {} of {contacts}",
        lines.saturating_sub(1)
    );
    Ok(())
}
