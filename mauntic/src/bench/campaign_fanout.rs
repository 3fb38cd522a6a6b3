//! `bench campaign-fanout`: the fan-out of a campaign to `--events` recipients (default 1,000,000).
//!
//! The audience is seeded straight from SQL: the contacts read model (as `bench segments`
//! fills it) and a static segment's `segment_members` rows (the membership write-side table,
//! the only thing a fan-out reads besides the contacts' time zones). The campaign (the 10 KB
//! newsletter of `bench delivery`, no throttle) is created and sent through the command
//! path, and the campaign worker fans it out: the audience fixed in one statement, then
//! pages of 5,000 recipients, each one transaction of 5,000 `DeliveryRequested` events and
//! queue rows. The delivery worker does not run (no message leaves): the figure is the
//! fan-out's alone.
//!
//! Figures: seconds until the audience is fixed, until every job is requested (the
//! campaign's last `CampaignFannedOut`), and until the jobs are visible (the `deliveries`
//! read model and the campaign summaries have applied every event); jobs per second; the
//! process's peak RSS (the API, the projectors and the campaign worker). Then the delivery
//! worker sends the campaign to `smtp-sink` for `--seconds` (default 15), and the statistics'
//! lag — the age of the oldest event `campaign_rollups` has not applied — is sampled every
//! 100 ms: p50/p95/p99, with the send rate it was measured at. Last, the same lag at exactly
//! 2,000 messages/s, whatever rate the delivery worker reaches on the machine: a paced writer
//! records queued jobs as dispatched and sent through the jobs' write path, with no provider.

use std::time::{Duration, Instant};

use chrono::Utc;
use domain::campaign::{CampaignCommand, Settings as CampaignSettings};
use event_store::EventMetadata;
use uuid::Uuid;

use super::common::{figure, figure_f, fresh_database, header, per_second, Latencies, RunningApp};
use super::export::rss_kib;
use crate::settings::Role;
use crate::Settings;

pub async fn run(settings: &Settings, recipients: u64, seconds: u64) -> anyhow::Result<()> {
    let mut s = fresh_database(settings, "mauntic_bench_campaign").await?;
    s.nats = None;
    let roles = [Role::Commands, Role::Queries, Role::Projector].into();
    let app = RunningApp::start_roles(s, roles).await?;
    let outcome = fan_out(&app, recipients, seconds).await;
    let stopped = app.stop().await;
    outcome?;
    stopped
}

async fn fan_out(app: &RunningApp, recipients: u64, seconds: u64) -> anyhow::Result<()> {
    let (t, state, meta) = app.organization().await?;
    super::delivery::define_fields(&state, t, &meta).await?;
    let template = super::delivery::newsletter(&state, t, &meta).await?;
    let segment = super::delivery::static_segment(&state, t, &meta, "Everyone").await?;
    eprintln!("bench campaign: seeding {recipients} contacts in one segment");
    let seeding = Instant::now();
    super::segments::fill_contacts(&app.pool, t, recipients).await?;
    sqlx::query(
        "INSERT INTO segment_members (tenant_id, segment_id, contact_id, entered_at) \
         SELECT tenant_id, $2, id, now() FROM contacts WHERE tenant_id = $1",
    )
    .bind(t)
    .bind(segment)
    .execute(&app.pool)
    .await?;
    sqlx::query("ANALYZE segment_members")
        .execute(&app.pool)
        .await?;
    eprintln!(
        "bench campaign: seeded in {:.1} s",
        seeding.elapsed().as_secs_f64()
    );

    let id = Uuid::now_v7();
    let settings = CampaignSettings {
        name: "Newsletter".into(),
        template_id: Some(template),
        segments: vec![segment],
        ..Default::default()
    };
    state
        .campaigns
        .writer()
        .execute(
            t,
            id,
            CampaignCommand::Create {
                settings,
                cloned_from: None,
            },
            &meta,
            Utc::now(),
        )
        .await
        .map_err(|e| anyhow::anyhow!("creating the campaign: {e}"))?;
    let head = event_store::reader::committed_head(&app.pool).await?;
    projections::status::wait_for(&app.pool, "deliveries", head, Duration::from_secs(60)).await?;
    let rss_before = rss_kib("VmRSS:");

    eprintln!("bench campaign: sending");
    let started = Instant::now();
    state
        .campaigns
        .writer()
        .start(t, id, &meta, Utc::now())
        .await
        .map_err(|e| anyhow::anyhow!("starting the campaign: {e}"))?;
    let fixed = started.elapsed();
    let cancel = tokio_util::sync::CancellationToken::new();
    let worker = workers::campaigns::CampaignWorker::new(
        app.pool.clone(),
        state.campaigns.writer().clone(),
        app.settings.clock.clone(),
        app.settings.campaigns.clone(),
    );
    let wake = event_store::wakeup::Wakeup::listen(app.pool.clone(), cancel.clone());
    let running = tokio::spawn(worker.run(wake, cancel.clone()));
    let mut last_report = Instant::now();
    let fanned_out = loop {
        let c = state
            .campaigns
            .writer()
            .load(t, id)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        if c.fully_fanned_out() {
            break started.elapsed();
        }
        if last_report.elapsed() > Duration::from_secs(5) {
            let queued: Option<i64> = sqlx::query_scalar(
                "SELECT queued FROM campaign_runs WHERE tenant_id = $1 AND campaign_id = $2",
            )
            .bind(t)
            .bind(id)
            .fetch_optional(&app.pool)
            .await?;
            eprintln!(
                "bench campaign: {} jobs after {:.0} s",
                queued.unwrap_or(0),
                started.elapsed().as_secs_f64()
            );
            last_report = Instant::now();
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(3600),
            "the fan-out did not end within an hour"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    cancel.cancel();
    running.await?;
    let head = event_store::reader::committed_head(&app.pool).await?;
    for p in ["deliveries", "campaign_summaries"] {
        anyhow::ensure!(
            projections::status::wait_for(&app.pool, p, head, Duration::from_secs(3600)).await?,
            "the {p} read model did not catch up within an hour"
        );
    }
    let visible = started.elapsed();
    let (jobs, shown): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM delivery_queue WHERE tenant_id = $1 AND campaign_id = $2), \
                (SELECT count(*) FROM deliveries WHERE tenant_id = $1 AND source_id = $2)",
    )
    .bind(t)
    .bind(id)
    .fetch_one(&app.pool)
    .await?;
    header(&format!("campaign fan-out ({recipients} recipients)"));
    figure("jobs", jobs, "jobs");
    figure_f("audience_fixed_s", fixed.as_secs_f64(), "s");
    figure_f("fanned_out_s", fanned_out.as_secs_f64(), "s");
    figure_f("visible_s", visible.as_secs_f64(), "s");
    figure_f(
        "fan_out_rate",
        per_second(jobs as u64, fanned_out),
        "jobs/s",
    );
    figure_f("rss_before_mb", rss_before as f64 / 1024.0, "MB");
    figure_f("peak_rss_mb", rss_kib("VmHWM:") as f64 / 1024.0, "MB");
    anyhow::ensure!(
        jobs as u64 == recipients && shown as u64 == recipients,
        "{jobs} jobs queued and {shown} visible of {recipients}"
    );
    stats_lag(app, &state, seconds).await?;
    paced_stats_lag(app, &state, t, PACED_RATE, seconds).await
}

/// The send rate the issue names for the statistics lag.
const PACED_RATE: u64 = 2_000;

/// The statistics' lag at exactly `rate` messages/s, whatever the delivery worker's own rate:
/// every 50 ms a writer records `rate / 20` of the campaign's queued jobs as dispatched and
/// sent (`DeliveryDispatching` and `DeliverySent`, through the jobs' one write path, as the
/// worker writes them, without rendering or a provider), for `seconds`, while the lag is
/// sampled every 100 ms as above.
async fn paced_stats_lag(
    app: &RunningApp,
    state: &commands::CommandState,
    tenant: Uuid,
    rate: u64,
    seconds: u64,
) -> anyhow::Result<()> {
    use commands::delivery::jobs::{self, Queue, Write};
    use domain::delivery::DeliveryCommand;
    const TICK: Duration = Duration::from_millis(50);
    let per_tick = (rate / 20).max(1) as i64;
    let ids: Vec<Uuid> = sqlx::query_scalar(
        "SELECT job_id FROM delivery_queue WHERE tenant_id = $1 AND NOT held AND due_at <= now() \
         ORDER BY job_id LIMIT $2",
    )
    .bind(tenant)
    .bind(per_tick * 20 * (seconds as i64 + 1))
    .fetch_all(&app.pool)
    .await?;
    let meta = EventMetadata {
        tenant_id: Some(tenant),
        actor: Some("system:delivery".into()),
        ..Default::default()
    };
    let stop = tokio_util::sync::CancellationToken::new();
    let writer = {
        let (jobs, stop) = (state.delivery.jobs.clone(), stop.clone());
        tokio::spawn(async move {
            let (mut sent, started) = (0u64, Instant::now());
            let mut tick = tokio::time::interval(TICK);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
            for chunk in ids.chunks(per_tick as usize) {
                tick.tick().await;
                if stop.is_cancelled() {
                    break;
                }
                let mut loaded = jobs.load(tenant, chunk).await?;
                let now = Utc::now();
                let mut writes = Vec::with_capacity(chunk.len());
                for (id, l) in loaded.iter_mut() {
                    let Ok(mut events) = jobs::decide(
                        &mut l.job,
                        DeliveryCommand::BeginDispatch {
                            provider: "bench".into(),
                        },
                    )
                    .await
                    else {
                        continue;
                    };
                    let Ok(more) = jobs::decide(
                        &mut l.job,
                        DeliveryCommand::RecordSent {
                            provider_message_id: id.to_string(),
                        },
                    )
                    .await
                    else {
                        continue;
                    };
                    events.extend(more);
                    let contact = l.job.request.as_ref().and_then(|r| r.contact_id);
                    writes.push(Write {
                        id: *id,
                        version: l.version,
                        events,
                        queue: Queue::Remove,
                        send: contact.map(|c| (c, "email", now)),
                        provider_message: None,
                    });
                }
                jobs.record(tenant, &meta, &writes).await?;
                sent += writes.len() as u64;
            }
            anyhow::Ok((sent, started.elapsed()))
        })
    };
    eprintln!("bench campaign-fanout: recording {rate} sends/s for {seconds} s, sampling the statistics lag");
    tokio::time::sleep(Duration::from_secs(1)).await;
    let window = Instant::now();
    let mut lag = Latencies::new()?;
    while window.elapsed() < Duration::from_secs(seconds) && !writer.is_finished() {
        lag.record(Duration::from_secs_f64(unapplied_age(&app.pool).await?));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop.cancel();
    let (sent, took) = writer.await??;
    header(&format!(
        "campaign statistics lag at {rate} messages/s (dispatched and sent recorded by a paced writer, no provider; sampled every 100 ms for {seconds} s)"
    ));
    figure_f("record_rate", per_second(sent, took), "messages/s");
    figure("samples", lag.len(), "samples");
    lag.print("stats_lag", &[50, 95, 99]);
    Ok(())
}

/// The campaign sends (the delivery worker, as fast as it goes, to `smtp-sink`) for
/// `seconds`; every 100 ms the age of the oldest event the `campaign_rollups` read model has
/// not applied yet is sampled: how late the statistics are.
async fn stats_lag(
    app: &RunningApp,
    state: &commands::CommandState,
    seconds: u64,
) -> anyhow::Result<()> {
    let sink = super::delivery::Sink::start()?;
    let mut with_sink = app.settings.clone();
    with_sink.delivery.smtp = Some(serde_json::json!({"host": "127.0.0.1", "port": sink.port,
        "security": "none", "pool_size": 32, "timeout_secs": 30}));
    let worker = crate::app::delivery_worker(&with_sink, &app.pool, state)?;
    let count_sent = || async {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM delivery_sends")
            .fetch_one(&app.pool)
            .await
    };
    let cancel = tokio_util::sync::CancellationToken::new();
    let wake = event_store::wakeup::Wakeup::listen(app.pool.clone(), cancel.clone());
    let running = tokio::spawn(worker.run(wake, cancel.clone()));
    eprintln!("bench campaign-fanout: sending for {seconds} s, sampling the statistics lag");
    // The first seconds fill the pipeline; then the window is measured.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let before = count_sent().await?;
    let window = Instant::now();
    let mut lag = Latencies::new()?;
    while window.elapsed() < Duration::from_secs(seconds) {
        lag.record(Duration::from_secs_f64(unapplied_age(&app.pool).await?));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let sent = count_sent().await? - before;
    let took = window.elapsed();
    cancel.cancel();
    running.await?;
    header(&format!(
        "campaign statistics lag (oldest event not yet in campaign_rollups, sampled every 100 ms while sending for {seconds} s)"
    ));
    figure_f(
        "send_rate",
        per_second(sent.max(0) as u64, took),
        "messages/s",
    );
    figure("samples", lag.len(), "samples");
    lag.print("stats_lag", &[50, 95, 99]);
    Ok(())
}

/// The age in seconds of the oldest committed event `campaign_rollups` has not applied (0
/// when it has applied everything): one probe of the cursor index, the time taken by the
/// database as it answers.
async fn unapplied_age(pool: &sqlx::PgPool) -> anyhow::Result<f64> {
    let cp = event_store::checkpoint::load(pool, "campaign_rollups").await?;
    let age: Option<f64> = sqlx::query_scalar(
        "SELECT extract(epoch FROM clock_timestamp() - recorded_at)::float8 FROM events \
         WHERE (tx_id, global_position) > ($1::bigint::text::xid8, $2) \
           AND tx_id < pg_snapshot_xmin(pg_current_snapshot()) \
         ORDER BY tx_id, global_position LIMIT 1",
    )
    .bind(cp.tx_id)
    .bind(cp.position)
    .fetch_optional(pool)
    .await?;
    Ok(age.unwrap_or(0.0).max(0.0))
}
