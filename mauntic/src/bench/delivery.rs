//! `bench delivery`: the delivery worker through render (a 10 KB personalised HTML
//! template), tracking rewrite (every link and the pixel) and SMTP to Postfix's `smtp-sink`,
//! with the whole application running in this process (projectors included).
//!
//! 1. Throughput: `--events` jobs (default 100,000) are requested first (due in an hour, so
//!    nothing moves), then made due at once; the figure is jobs sent per second until the
//!    last one is recorded sent.
//! 2. Latency at `--rate` messages/s (default 200) for `--seconds`: each job is requested
//!    (committed) and timed until its `DeliverySent` is recorded, i.e. after the SMTP server
//!    accepted it.
//!
//! Peak RSS is the process's high-water mark (the worker, the API and the projectors).

use std::io::Write;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::Utc;
use commands::delivery::Jobs;
use domain::delivery::{Channel, Request, Source};
use event_store::EventMetadata;
use uuid::Uuid;

use super::common::{figure, figure_f, fresh_database, header, per_second, Latencies, RunningApp};
use super::export::rss_kib;
use super::BenchArgs;
use crate::Settings;

const DATABASE: &str = "mauntic_bench_delivery";
const CONTACTS: u64 = 20_000;

/// `smtp-sink` on a free port, accepting everything and keeping nothing.
pub(super) struct Sink {
    child: Child,
    pub(super) port: u16,
}

impl Sink {
    pub(super) fn start() -> anyhow::Result<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let mut cmd = Command::new("/usr/sbin/smtp-sink");
        if std::fs::metadata("/proc/self").is_ok_and(|m| {
            use std::os::unix::fs::MetadataExt;
            m.uid() == 0
        }) {
            cmd.args(["-u", "root"]);
        }
        let child = cmd
            .arg(format!("127.0.0.1:{port}"))
            .arg("256")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("running /usr/sbin/smtp-sink (scripts/services-up installs it)")?;
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            anyhow::ensure!(Instant::now() < deadline, "smtp-sink did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(Self { child, port })
    }
}

impl Sink {
    /// The bytes smtp-sink has read from its clients so far (commands and messages), from its
    /// `/proc/<pid>/io`.
    pub(super) fn bytes_read(&self) -> Option<u64> {
        let io = std::fs::read_to_string(format!("/proc/{}/io", self.child.id())).ok()?;
        io.lines()
            .find_map(|l| l.strip_prefix("rchar:"))
            .and_then(|n| n.trim().parse().ok())
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// About 10 KB of HTML: a newsletter with merge fields and 20 links.
fn html() -> String {
    let mut s = String::from(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{{organization.name}}</title></head>\
         <body style=\"font-family:Arial,sans-serif\"><h1>Hello {{default contact.first_name \"there\"}} {{contact.last_name}}!</h1>\
         <p>Your plan: <b>{{upper contact.fields.plan}}</b>, {{contact.fields.city}}.</p>",
    );
    let mut i = 0;
    while s.len() < 10_000 {
        i += 1;
        s.push_str(&format!(
            "<table width=\"100%\"><tr><td><h2>Story {i} for {{{{contact.first_name}}}}</h2>\
             <p>Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor \
             incididunt ut labore et dolore magna aliqua. Ut enim ad minim veniam, quis nostrud \
             exercitation ullamco laboris nisi ut aliquip ex ea commodo consequat.</p>\
             <a href=\"https://news.example.com/story/{i}?utm_source=mauntic&amp;id={{{{contact.id}}}}\">Read more</a>\
             </td></tr></table>"
        ));
    }
    s.push_str("<p><a href=\"{{message.unsubscribe_url}}\" data-mauntic-track=\"off\">Unsubscribe</a></p></body></html>");
    s
}

/// The custom fields the newsletter reads (`plan`, `city`), defined for tenant `t`.
pub(super) async fn define_fields(
    state: &commands::CommandState,
    t: Uuid,
    meta: &EventMetadata,
) -> anyhow::Result<()> {
    for key in ["plan", "city"] {
        let d = domain::field::FieldDefinition {
            key: key.into(),
            label: key.into(),
            field_type: domain::field::FieldType::Text,
            required: false,
            default: None,
            options: vec![],
            unique: false,
        };
        state
            .fields
            .define(domain::TenantId(t), d, meta)
            .await
            .map_err(|e| anyhow::anyhow!("defining a field: {e}"))?;
    }
    Ok(())
}

/// `n` contacts `reader<i>@bench.example` (names, plan `pro`, city Paris) imported into
/// tenant `t` through the import engine (and into static `segment`, if given).
pub(super) async fn import_readers(
    state: &commands::CommandState,
    t: Uuid,
    data_dir: &std::path::Path,
    n: u64,
    segment: Option<Uuid>,
) -> anyhow::Result<()> {
    let dir = data_dir.join("bench");
    std::fs::create_dir_all(&dir)?;
    let path = dir.join(format!("readers-{t}.csv"));
    {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&path)?);
        writeln!(f, "email,first_name,last_name,plan,city")?;
        for i in 0..n {
            writeln!(f, "reader{i}@bench.example,Reader{i},Number{i},pro,Paris")?;
        }
    }
    let options = commands::imports::ImportOptions {
        mapping: [
            ("email", "email"),
            ("first_name", "first_name"),
            ("last_name", "last_name"),
            ("plan", "fields.plan"),
            ("city", "fields.city"),
        ]
        .into_iter()
        .map(|(a, b)| (a.to_owned(), b.to_owned()))
        .collect(),
        tags: vec![],
        update_existing: true,
        segment_id: segment,
    };
    crate::import::contacts(state, t, &path, options, false).await?;
    let _ = std::fs::remove_file(&path);
    Ok(())
}

/// A static segment of tenant `t` named `name`; its id.
pub(super) async fn static_segment(
    state: &commands::CommandState,
    t: Uuid,
    meta: &EventMetadata,
    name: &str,
) -> anyhow::Result<Uuid> {
    let new = commands::segments::NewSegment {
        name: name.into(),
        description: None,
        rule: None,
    };
    let created = state
        .segments
        .create(domain::TenantId(t), new, meta)
        .await
        .map_err(|e| anyhow::anyhow!("creating the segment: {e}"))?;
    Ok(created.id)
}

/// The published 10 KB newsletter template of tenant `t` (version 1); its id.
pub(super) async fn newsletter(
    state: &commands::CommandState,
    t: Uuid,
    meta: &EventMetadata,
) -> anyhow::Result<Uuid> {
    let tenant = domain::TenantId(t);
    let created = state
        .templates
        .create(
            tenant,
            "Newsletter".into(),
            domain::template::Channel::Email,
            meta,
        )
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let template = domain::TemplateId(created.id);
    let content = domain::template::Content::email(
        "News for {{contact.first_name}}".into(),
        Some("This week at {{organization.name}}".into()),
        html(),
        None,
    );
    state
        .templates
        .save_version(tenant, template, content, meta)
        .await
        .map_err(|e| anyhow::anyhow!("the bench template does not save: {e:?}"))?;
    state
        .templates
        .publish(tenant, template, 1, meta)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(template.0)
}

pub async fn run(settings: &Settings, args: &BenchArgs, jobs_n: u64) -> anyhow::Result<()> {
    let sink = Sink::start()?;
    let mut s = fresh_database(settings, DATABASE).await?;
    s.nats = None;
    s.delivery.smtp = Some(serde_json::json!({
        "host": "127.0.0.1", "port": sink.port, "security": "none", "pool_size": 32, "timeout_secs": 30
    }));
    let app = RunningApp::start(s.clone()).await?;
    let (t, state, meta) = app.organization().await?;

    // Fields, contacts (through the import engine), the template.
    define_fields(&state, t, &meta).await?;
    import_readers(&state, t, &s.imports.data_dir, CONTACTS, None).await?;
    let contact_ids: Vec<Uuid> = sqlx::query_scalar(
        "SELECT DISTINCT (regexp_split_to_array(aggregate_id, ':'))[2]::uuid FROM events WHERE aggregate_type = 'contact'",
    )
    .fetch_all(&app.pool)
    .await?;
    anyhow::ensure!(contact_ids.len() as u64 == CONTACTS, "contacts seeded");
    let template = newsletter(&state, t, &meta).await?;
    let request = |contact: Uuid| Request {
        channel: Channel::Email,
        contact_id: Some(contact),
        to: String::new(),
        template_id: template,
        template_version: 1,
        source: Source::Transactional {
            idempotency_key: None,
        },
        data: serde_json::json!({}),
        from: None,
        reply_to: None,
        provider_id: None,
    };
    let jobs = state.delivery.jobs.clone();
    // The read models the worker reads must have the seed.
    let head = event_store::reader::committed_head(&app.pool).await?;
    for p in ["contacts", "templates"] {
        projections::status::wait_for(&app.pool, p, head, Duration::from_secs(300)).await?;
    }

    // 1. Throughput.
    eprintln!("bench delivery: requesting {jobs_n} jobs");
    let later = Utc::now() + chrono::Duration::hours(1);
    let mut requested = 0u64;
    while requested < jobs_n {
        let n = (jobs_n - requested).min(2000);
        let batch: Vec<(Uuid, Request)> = (requested..requested + n)
            .map(|i| {
                (
                    Uuid::now_v7(),
                    request(contact_ids[(i % CONTACTS) as usize]),
                )
            })
            .collect();
        jobs.request(t, &meta, &batch, later).await?;
        requested += n;
    }
    let head = event_store::reader::committed_head(&app.pool).await?;
    for p in ["contacts", "templates"] {
        projections::status::wait_for(&app.pool, p, head, Duration::from_secs(300)).await?;
    }
    let rss_before = rss_kib("VmRSS:");
    eprintln!("bench delivery: sending");
    let started = Instant::now();
    sqlx::query("UPDATE delivery_queue SET due_at = now()")
        .execute(&app.pool)
        .await?;
    state.notifier.poke();
    let mut last_report = Instant::now();
    loop {
        // Whether any job is left is one index probe; counting them (a scan) only for the
        // progress line, so the watching costs the system under test next to nothing.
        let any: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM delivery_queue)")
            .fetch_one(&app.pool)
            .await?;
        if !any {
            break;
        }
        if last_report.elapsed() > Duration::from_secs(5) {
            let left: i64 = sqlx::query_scalar("SELECT count(*) FROM delivery_queue")
                .fetch_one(&app.pool)
                .await?;
            eprintln!(
                "bench delivery: {left} left after {:.0} s",
                started.elapsed().as_secs_f64()
            );
            last_report = Instant::now();
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(3600),
            "the queue did not drain within an hour"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let took = started.elapsed();
    let sent: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM events WHERE aggregate_type = 'delivery_job' AND event_type = 'DeliverySent'",
    )
    .fetch_one(&app.pool)
    .await?;
    header(&format!(
        "delivery throughput ({jobs_n} emails, 10 KB personalised HTML, tracking, SMTP to smtp-sink)"
    ));
    figure("sent", sent, "messages");
    figure_f("seconds", took.as_secs_f64(), "s");
    figure_f("throughput", per_second(sent as u64, took), "messages/s");
    figure_f("rss_before_mb", rss_before as f64 / 1024.0, "MB");
    figure_f("peak_rss_mb", rss_kib("VmHWM:") as f64 / 1024.0, "MB");
    // What each message weighs on the wire: the server's cost grows with it.
    if let Some(bytes) = sink.bytes_read().filter(|_| sent > 0) {
        figure("smtp_bytes_per_message", bytes / sent as u64, "bytes");
    }
    anyhow::ensure!(sent as u64 == jobs_n, "{sent} of {jobs_n} sent");

    // 2. Latency at a steady rate.
    let rate = args.rate.clamp(1, 10_000);
    let total = rate * args.seconds;
    eprintln!("bench delivery: {rate} messages/s for {} s", args.seconds);
    let mut ids = Vec::with_capacity(total as usize);
    let tick = Duration::from_secs_f64(1.0 / rate as f64);
    let start = Instant::now();
    let mut in_flight = tokio::task::JoinSet::new();
    for i in 0..total {
        let due = start + tick * i as u32;
        tokio::time::sleep_until(due.into()).await;
        let (jobs, meta): (Jobs, EventMetadata) = (jobs.clone(), meta.clone());
        let r = request(contact_ids[(i % CONTACTS) as usize]);
        in_flight.spawn(async move {
            let id = Uuid::now_v7();
            let at = Utc::now();
            jobs.request(t, &meta, &[(id, r)], Utc::now())
                .await
                .map(|_| (id, at))
        });
    }
    while let Some(r) = in_flight.join_next().await {
        ids.push(r??);
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut latencies = Latencies::new()?;
    loop {
        let any: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM delivery_queue)")
            .fetch_one(&app.pool)
            .await?;
        if !any {
            break;
        }
        anyhow::ensure!(Instant::now() < deadline, "jobs still queued after 120 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let streams: Vec<String> = ids
        .iter()
        .map(|(id, _)| event_store::recorded::stream_id(t, *id))
        .collect();
    let sent_at: Vec<(String, chrono::DateTime<Utc>)> = sqlx::query_as(
        "SELECT aggregate_id, recorded_at FROM events \
         WHERE aggregate_type = 'delivery_job' AND event_type = 'DeliverySent' AND aggregate_id = ANY($1)",
    )
    .bind(&streams)
    .fetch_all(&app.pool)
    .await?;
    let sent_at: std::collections::HashMap<String, chrono::DateTime<Utc>> =
        sent_at.into_iter().collect();
    for ((_, requested_at), stream) in ids.iter().zip(&streams) {
        if let Some(at) = sent_at.get(stream) {
            latencies.record((*at - *requested_at).to_std().unwrap_or_default());
        }
    }
    header(&format!(
        "delivery latency (request committed → accepted by SMTP, {rate} messages/s for {} s)",
        args.seconds
    ));
    figure("messages", latencies.len(), "messages");
    latencies.print("latency", &[50, 95, 99]);
    anyhow::ensure!(
        latencies.len() == total,
        "{} of {total} sent",
        latencies.len()
    );
    app.stop().await?;
    Ok(())
}
