//! `bench campaign-send`: a campaign to `--events` recipients (default 20,000) sent by the
//! whole platform in this process, as an operator runs it: every role, the projectors on
//! JetStream when `NATS_URL` is set (the relay on, into a stream of the run's own) and on
//! the Postgres tail otherwise. The recipients are imported through the import engine into
//! a static segment, the template is the 10 KB personalised newsletter of `bench delivery`
//! with tracked links, and every projection has caught up before the send. The figure is
//! from the send command to the last message accepted by `smtp-sink`.

use std::time::{Duration, Instant};

use chrono::Utc;
use domain::campaign::{CampaignCommand, Settings as CampaignSettings};
use uuid::Uuid;

use super::common::{
    delete_stream, figure, figure_f, fresh_database, fresh_nats, header, per_second, RunningApp,
};
use super::delivery::{define_fields, import_readers, newsletter, static_segment, Sink};
use super::export::rss_kib;
use crate::Settings;

const DATABASE: &str = "mauntic_bench_campaign_send";

pub async fn run(settings: &Settings, recipients: u64) -> anyhow::Result<()> {
    let sink = Sink::start()?;
    let mut s = fresh_database(settings, DATABASE).await?;
    s.nats = settings.nats.as_ref().map(|n| fresh_nats(&n.url));
    s.delivery.smtp = Some(serde_json::json!({
        "host": "127.0.0.1", "port": sink.port, "security": "none", "pool_size": 32, "timeout_secs": 30
    }));
    let nats = s.nats.clone();
    let app = RunningApp::start(s).await?;
    let outcome = send(&app, recipients, nats.is_some()).await;
    let stopped = app.stop().await;
    if let Some(cfg) = &nats {
        delete_stream(cfg).await?;
    }
    outcome?;
    stopped
}

async fn send(app: &RunningApp, recipients: u64, nats: bool) -> anyhow::Result<()> {
    let (t, state, meta) = app.organization().await?;
    define_fields(&state, t, &meta).await?;
    let template = newsletter(&state, t, &meta).await?;
    let segment = static_segment(&state, t, &meta, "Readers").await?;
    eprintln!("bench campaign-send: importing {recipients} contacts into the segment");
    import_readers(
        &state,
        t,
        &app.settings.imports.data_dir,
        recipients,
        Some(segment),
    )
    .await?;

    let id = Uuid::now_v7();
    state
        .campaigns
        .writer()
        .execute(
            t,
            id,
            CampaignCommand::Create {
                settings: CampaignSettings {
                    name: "Newsletter".into(),
                    template_id: Some(template),
                    segments: vec![segment],
                    ..Default::default()
                },
                cloned_from: None,
            },
            &meta,
            Utc::now(),
        )
        .await
        .map_err(|e| anyhow::anyhow!("creating the campaign: {e}"))?;
    // Every read model has everything before the send.
    app.caught_up(Duration::from_secs(600)).await?;
    let members: i64 =
        sqlx::query_scalar("SELECT count(*) FROM segment_members WHERE segment_id = $1")
            .bind(segment)
            .fetch_one(&app.pool)
            .await?;
    anyhow::ensure!(
        members as u64 == recipients,
        "{members} of {recipients} in the segment"
    );

    eprintln!("bench campaign-send: sending");
    let rss_before = rss_kib("VmRSS:");
    let started = Instant::now();
    state
        .campaigns
        .writer()
        .start(t, id, &meta, Utc::now())
        .await
        .map_err(|e| anyhow::anyhow!("starting the campaign: {e}"))?;
    let mut first: Option<Duration> = None;
    let mut reported = Instant::now();
    let sent = loop {
        // The worker writes one `delivery_sends` row per message the server accepted.
        let sent: i64 = sqlx::query_scalar("SELECT count(*) FROM delivery_sends")
            .fetch_one(&app.pool)
            .await?;
        if sent > 0 && first.is_none() {
            first = Some(started.elapsed());
        }
        if sent as u64 >= recipients {
            break sent;
        }
        if reported.elapsed() > Duration::from_secs(5) {
            eprintln!(
                "bench campaign-send: {sent} sent after {:.0} s",
                started.elapsed().as_secs_f64()
            );
            reported = Instant::now();
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(1800),
            "{sent} of {recipients} sent after 30 minutes"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let took = started.elapsed();
    header(&format!(
        "campaign-send ({recipients} recipients, 10 KB personalised HTML, tracking, SMTP to smtp-sink; projectors: {})",
        if nats { "JetStream" } else { "Postgres tail" }
    ));
    figure("sent", sent, "messages");
    figure_f("first_message_s", first.unwrap_or(took).as_secs_f64(), "s");
    figure_f("seconds", took.as_secs_f64(), "s");
    figure_f("throughput", per_second(sent as u64, took), "messages/s");
    figure_f("rss_before_mb", rss_before as f64 / 1024.0, "MB");
    figure_f("peak_rss_mb", rss_kib("VmHWM:") as f64 / 1024.0, "MB");
    Ok(())
}
