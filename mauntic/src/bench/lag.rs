//! `bench lag`: how long after a command's answer its event is visible in the contacts read
//! model, at a fixed rate of creates, with projectors on the Postgres tail and on JetStream.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use event_store::{store, Cursor};
use sqlx::PgPool;
use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TryRecvError;

use super::common::{
    delete_stream, figure, fresh_database, fresh_nats, header, Latencies, RunningApp,
};
use super::load::{open_loop, Answered, Api, Op, Schedule};
use super::BenchArgs;
use crate::settings::ProjectionSource;
use crate::Settings;

/// How long the watcher waits, after the last answer, for the read model to catch up.
const DRAIN: Duration = Duration::from_secs(60);

pub async fn run(settings: &Settings, args: &BenchArgs) -> anyhow::Result<()> {
    header(&format!(
        "lag (contacts projection, {} creates/s, {} s per source)",
        args.rate, args.seconds
    ));
    half(settings, args, ProjectionSource::Postgres).await?;
    if settings.nats.is_some() {
        half(settings, args, ProjectionSource::JetStream).await?;
    } else {
        figure("jetstream.skipped", 1, "(NATS_URL not set)");
    }
    Ok(())
}

async fn half(
    settings: &Settings,
    args: &BenchArgs,
    source: ProjectionSource,
) -> anyhow::Result<()> {
    let name = match source {
        ProjectionSource::JetStream => "jetstream",
        _ => "postgres",
    };
    let mut s = fresh_database(settings, &format!("mauntic_bench_lag_{name}")).await?;
    s.projection_source = source;
    s.nats = match source {
        ProjectionSource::JetStream => {
            let url = &settings.nats.as_ref().context("NATS_URL is not set")?.url;
            Some(fresh_nats(url))
        }
        _ => None,
    };
    let nats = s.nats.clone();
    let url = s.database_url.clone();
    eprintln!("bench lag: {name}: {}+{} s", args.warmup, args.seconds);
    let app = RunningApp::start(s).await?;
    let outcome = measure(&app, &url, args, name).await;
    let stopped = app.stop().await;
    if let Some(cfg) = &nats {
        delete_stream(cfg).await?;
    }
    outcome?;
    stopped
}

async fn measure(app: &RunningApp, url: &str, args: &BenchArgs, name: &str) -> anyhow::Result<()> {
    let tenant = app.tenant().await?;
    let api = Arc::new(Api::new(&app.base_url, &tenant.api_key)?);
    // The watcher's own connection, so the application's pool does not slow its polls.
    let watch_pool = store::connect(url, 1).await?;
    let (tx, rx) = mpsc::unbounded_channel();
    let watcher = tokio::spawn(watch(watch_pool, rx));
    let schedule = Schedule {
        rate: args.rate,
        warmup: Duration::from_secs(args.warmup),
        measure: Duration::from_secs(args.seconds),
        max_in_flight: args.max_in_flight,
    };
    let load = open_loop(api, schedule, |_| Op::Create, Some(tx)).await;
    let lag = watcher.await.context("the watcher panicked")??;
    let load = load?;
    let p = name;
    load.print(&format!("{p}.commands"), args.rate);
    figure(&format!("{p}.lag_samples"), lag.lag.len(), "count");
    figure(
        &format!("{p}.lag_not_visible_after_60s"),
        lag.never,
        "count",
    );
    lag.lag.print(&format!("{p}.lag"), &[50, 95, 99]);
    figure(&format!("{p}.watcher_polls"), lag.polls, "count");
    Ok(())
}

struct LagReport {
    lag: Latencies,
    /// Measured commands still not visible when the watcher gave up.
    never: u64,
    polls: u64,
}

/// Polls the contacts checkpoint every millisecond; for each answered command, records the
/// time from its answer to the first poll that saw the checkpoint at or past its cursor.
async fn watch(
    pool: PgPool,
    mut rx: mpsc::UnboundedReceiver<Answered>,
) -> anyhow::Result<LagReport> {
    let mut pending: BinaryHeap<Reverse<(Cursor, Instant, bool)>> = BinaryHeap::new();
    let mut report = LagReport {
        lag: Latencies::new()?,
        never: 0,
        polls: 0,
    };
    let mut closed_at: Option<Instant> = None;
    let mut tick = tokio::time::interval(Duration::from_millis(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tick.tick().await;
        while closed_at.is_none() {
            match rx.try_recv() {
                Ok(a) => pending.push(Reverse((a.cursor, a.at, a.measured))),
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => closed_at = Some(Instant::now()),
            }
        }
        if let Some(t) = closed_at {
            if pending.is_empty() {
                break;
            }
            if t.elapsed() > DRAIN {
                report.never = pending.iter().filter(|Reverse(p)| p.2).count() as u64;
                break;
            }
        }
        if pending.is_empty() {
            continue;
        }
        let row: Option<(i64, i64)> = sqlx::query_as(
            "SELECT tx_id, global_position FROM checkpoints WHERE name = 'contacts'",
        )
        .fetch_optional(&pool)
        .await?;
        let seen = Instant::now();
        report.polls += 1;
        let at = row.map_or(Cursor::ZERO, |(t, p)| Cursor::new(t, p));
        while let Some(Reverse((cursor, answered, measured))) = pending.peek().copied() {
            if cursor > at {
                break;
            }
            pending.pop();
            if measured {
                report.lag.record(seen.saturating_duration_since(answered));
            }
        }
    }
    pool.close().await;
    Ok(report)
}
