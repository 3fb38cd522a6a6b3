//! `bench journeys`: the journey runner under the three loads.
//!
//! 1. **Entries**: `--events` contacts (default 100,000; seeded into the contacts read model
//!    and as `ContactCreated` streams by SQL) enter one journey at once through the entry path
//!    (`enter_in`, pages of 5,000), and the runner loops of a process (`MAUNTIC_JOURNEY_LOOPS`, default 2) run them: each
//!    execution runs `action_email` (a delivery job requested; no message leaves),
//!    `split_random`, and starts a one-day `delay_duration`. Figures: entries/s, step
//!    executions/s from the first entry until every execution waits, and peak RSS.
//! 2. **Timers due in one second**: 10,000 of the waiting executions are made due at the same
//!    moment two seconds ahead; every 5 ms the bench counts how many are still due then, so
//!    each fire is seen when its batch is committed and visible. Figures: p50/p95/p99/max fire
//!    delay (visible − due).
//! 3. **1,000,000 pending timers**: `journey_runs` is filled to `--timers` rows (default
//!    1,000,000) due over the next 30 days, plus 500 due now; the runner's claim statement is
//!    timed 50 times in transactions rolled back. Figures: claim p50/p99, the table and index
//!    sizes, and the process's RSS before and after (the runner holds no timer in memory).

use std::time::{Duration, Instant};

use chrono::Utc;
use commands::journeys::enter::{enter_in, Entry, Via};
use domain::journey::definition::Definition;
use domain::journey::JourneyCommand;
use serde_json::json;
use uuid::Uuid;

use super::common::{figure, figure_f, fresh_database, header, per_second, Latencies, RunningApp};
use super::export::rss_kib;
use crate::settings::Role;
use crate::Settings;

pub async fn run(settings: &Settings, contacts: u64, timers: u64) -> anyhow::Result<()> {
    let mut s = fresh_database(settings, "mauntic_bench_journeys").await?;
    s.nats = None;
    let roles = [Role::Commands, Role::Queries].into();
    let app = RunningApp::start_roles(s, roles).await?;
    let outcome = measure(&app, contacts, timers).await;
    let stopped = app.stop().await;
    outcome?;
    stopped
}

async fn scalar(pool: &sqlx::PgPool, sql: &str, tenant: Uuid) -> anyhow::Result<i64> {
    Ok(sqlx::query_scalar(sql).bind(tenant).fetch_one(pool).await?)
}

async fn measure(app: &RunningApp, contacts: u64, timers: u64) -> anyhow::Result<()> {
    let (t, state, meta) = app.organization().await?;
    super::delivery::define_fields(&state, t, &meta).await?;
    let template = super::delivery::newsletter(&state, t, &meta).await?;
    eprintln!("bench journeys: seeding {contacts} contacts");
    super::segments::fill_contacts(&app.pool, t, contacts).await?;
    // The entry path checks nothing of the log's contacts, but the runner's "gone" check
    // reads their streams when the read model lacks one: the read model has them all.
    let definition: Definition = serde_json::from_value(json!({
        "triggers": [{"id": "api", "type": "api", "entry": "welcome"}],
        "steps": [
            {"id": "welcome", "type": "action_email", "config": {"template_id": template}, "next": "split"},
            {"id": "split", "type": "split_random",
             "config": {"paths": [{"key": "a", "weight": 1}, {"key": "b", "weight": 1}]},
             "branches": {"a": "wait", "b": "wait"}},
            {"id": "wait", "type": "delay_duration", "config": {"days": 1}, "next": "again"},
            {"id": "again", "type": "action_email", "config": {"template_id": template}}
        ],
        "reentry": {"policy": "concurrent"}
    }))?;
    let journey = Uuid::now_v7();
    let now = Utc::now();
    for command in [
        JourneyCommand::Create {
            name: "Bench".into(),
            definition,
        },
        JourneyCommand::Publish {
            fields: Default::default(),
            now,
        },
    ] {
        state
            .journeys
            .writer()
            .execute(t, journey, command, &meta, now)
            .await
            .map_err(|e| anyhow::anyhow!("journey: {e}"))?;
    }
    let ids: Vec<Uuid> = sqlx::query_scalar("SELECT id FROM contacts WHERE tenant_id = $1")
        .bind(t)
        .fetch_all(&app.pool)
        .await?;

    // 1. Entries, and the runners taking every execution to its wait.
    let cancel = tokio_util::sync::CancellationToken::new();
    let mut runners = Vec::new();
    for _ in 0..app.settings.journeys.loops.max(1) {
        let runner = workers::journeys::JourneyRunner::new(
            state.clone(),
            app.settings.clock.clone(),
            app.settings.journeys.clone(),
        );
        let wake = event_store::wakeup::Wakeup::listen(app.pool.clone(), cancel.clone());
        runners.push(tokio::spawn(runner.run(wake, cancel.clone())));
    }
    eprintln!("bench journeys: {} contacts enter", ids.len());
    let started = Instant::now();
    for page in ids.chunks(5_000) {
        let entries: Vec<Entry> = page
            .iter()
            .map(|c| Entry {
                contact_id: *c,
                execution_id: Uuid::now_v7(),
            })
            .collect();
        let mut tx = app.pool.begin().await?;
        enter_in(
            &mut tx,
            &state.journeys.writer().executions,
            t,
            journey,
            &Via::Api,
            &entries,
            &meta,
            Utc::now(),
        )
        .await?;
        tx.commit().await?;
        state.notifier.poke();
    }
    let entered = started.elapsed();
    let n = ids.len() as i64;
    let mut last_report = Instant::now();
    loop {
        let waiting = scalar(
            &app.pool,
            "SELECT count(*) FROM journey_runs WHERE tenant_id = $1 AND state->>'status' = 'waiting'",
            t,
        )
        .await?;
        if waiting == n {
            break;
        }
        if last_report.elapsed() > Duration::from_secs(5) {
            eprintln!(
                "bench journeys: {waiting} waiting after {:.0} s",
                started.elapsed().as_secs_f64()
            );
            last_report = Instant::now();
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(3600),
            "the executions did not reach their wait within an hour"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let ran = started.elapsed();
    let steps = scalar(
        &app.pool,
        "SELECT count(*) FROM events WHERE tenant_id = $1 AND event_type IN \
         ('JourneyActionRequested', 'JourneyBranchTaken', 'JourneyWaitStarted')",
        t,
    )
    .await?;
    header(&format!("journey entries ({n} contacts at once)"));
    figure("executions", n, "executions");
    figure("step_executions", steps, "steps");
    figure_f("entered_s", entered.as_secs_f64(), "s");
    figure_f("entries_rate", per_second(n as u64, entered), "entries/s");
    figure_f("until_all_wait_s", ran.as_secs_f64(), "s");
    figure_f("step_rate", per_second(steps as u64, ran), "steps/s");
    figure_f("peak_rss_mb", rss_kib("VmHWM:") as f64 / 1024.0, "MB");

    // 2. 10,000 timers due in the same second.
    let due = Utc::now() + chrono::Duration::seconds(2);
    let due_at = Instant::now() + Duration::from_secs(2);
    let fired_total = 10_000.min(n);
    sqlx::query(
        "UPDATE journey_runs SET due_at = $2 WHERE (tenant_id, execution_id) IN \
         (SELECT tenant_id, execution_id FROM journey_runs WHERE tenant_id = $1 LIMIT $3)",
    )
    .bind(t)
    .bind(due)
    .bind(fired_total)
    .execute(&app.pool)
    .await?;
    let mut delays = Latencies::new()?;
    let mut left = fired_total;
    while left > 0 {
        let now_left: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM journey_runs WHERE tenant_id = $1 AND due_at = $2",
        )
        .bind(t)
        .bind(due)
        .fetch_one(&app.pool)
        .await?;
        if now_left < left {
            let d = Instant::now().saturating_duration_since(due_at);
            for _ in 0..(left - now_left) {
                delays.record(d);
            }
            left = now_left;
        }
        anyhow::ensure!(
            due_at.elapsed() < Duration::from_secs(600),
            "the timers did not fire within ten minutes"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    header(&format!("timers due in the same second ({fired_total})"));
    delays.print("fire_delay", &[50, 95, 99, 100]);
    cancel.cancel();
    for r in runners {
        r.await?;
    }

    // 3. A million pending timers: what claiming the next due batch costs.
    eprintln!("bench journeys: filling journey_runs to {timers} pending timers");
    let have = scalar(
        &app.pool,
        "SELECT count(*) FROM journey_runs WHERE tenant_id = $1",
        t,
    )
    .await?;
    let more = (timers as i64 - have).max(0);
    sqlx::query(
        "INSERT INTO journey_runs (tenant_id, execution_id, journey_id, version, contact_id, seq, state, due_at, listens) \
         SELECT r.tenant_id, gen_random_uuid(), r.journey_id, r.version, r.contact_id, r.seq, r.state, \
                now() + (random() * interval '30 days') + interval '1 hour', r.listens \
         FROM (SELECT * FROM journey_runs WHERE tenant_id = $1 LIMIT 1) r, generate_series(1, $2)",
    )
    .bind(t)
    .bind(more)
    .execute(&app.pool)
    .await?;
    // 500 due now, the rest later.
    sqlx::query(
        "UPDATE journey_runs SET due_at = now() - interval '1 second' WHERE (tenant_id, execution_id) IN \
         (SELECT tenant_id, execution_id FROM journey_runs WHERE tenant_id = $1 LIMIT 500)",
    )
    .bind(t)
    .execute(&app.pool)
    .await?;
    sqlx::query("ANALYZE journey_runs")
        .execute(&app.pool)
        .await?;
    let pending = scalar(
        &app.pool,
        "SELECT count(*) FROM journey_runs WHERE tenant_id = $1",
        t,
    )
    .await?;
    let rss_before = rss_kib("VmRSS:");
    let mut claims = Latencies::new()?;
    let mut claimed = 0;
    for _ in 0..50 {
        let mut tx = app.pool.begin().await?;
        let begun = Instant::now();
        let rows: Vec<(Uuid,)> = sqlx::query_as(
            "SELECT execution_id FROM journey_runs WHERE due_at <= $1 AND NOT held \
             ORDER BY due_at LIMIT $2 FOR UPDATE SKIP LOCKED",
        )
        .bind(Utc::now())
        .bind(app.settings.journeys.batch)
        .fetch_all(&mut *tx)
        .await?;
        claims.record(begun.elapsed());
        claimed = rows.len();
        tx.rollback().await?;
    }
    let (table, index): (i64, i64) = sqlx::query_as(
        "SELECT pg_table_size('journey_runs'), pg_relation_size('journey_runs_due')",
    )
    .fetch_one(&app.pool)
    .await?;
    header(&format!("pending timers ({pending})"));
    figure("claimed_per_batch", claimed, "executions");
    claims.print("claim", &[50, 99]);
    figure_f("table_mb", table as f64 / 1048576.0, "MB");
    figure_f("due_index_mb", index as f64 / 1048576.0, "MB");
    figure_f("rss_before_mb", rss_before as f64 / 1024.0, "MB");
    figure_f("rss_after_mb", rss_kib("VmRSS:") as f64 / 1024.0, "MB");
    Ok(())
}
