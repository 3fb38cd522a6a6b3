//! A 100,000-recipient campaign through SMTP to a real server, with the process killed twice —
//! once while the campaign fans out (its first jobs already going out), once while it sends —
//! and restarted each time: at the sink every recipient has one message, except the few whose
//! message was being handed over at a kill, which are in doubt (at most one message, never a
//! second one: the written policy for a crash between "dispatching" and the server's answer).

use std::collections::HashMap;
use std::io::Write;
use std::time::Duration;

use mauntic_tests::smtp_sink::SmtpSink;
use mauntic_tests::{eventually, Options, TestApp};
use serde_json::json;
use uuid::Uuid;

use super::campaigns::{act, create, wait_status};

const RECIPIENTS: usize = 100_000;
const LONG: Duration = Duration::from_secs(900);

/// Kills the application mid-flight (its task dropped with whatever it was doing) and
/// starts another process on the same database and organization.
pub(crate) async fn kill_and_restart(mut app: TestApp) -> TestApp {
    app.task.take().unwrap().abort();
    app.cancel.cancel();
    let mut next = mauntic_tests::start(app.settings.clone()).await;
    next.api_key = app.api_key.clone();
    next.tenant_id = app.tenant_id;
    next
}

async fn scalar(app: &TestApp, sql: &str, id: Uuid) -> i64 {
    sqlx::query_scalar::<_, i64>(sql)
        .bind(id)
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_campaign_killed_during_fan_out_and_during_sending_reaches_each_recipient_once() {
    let sink = SmtpSink::start();
    let mut settings = mauntic_tests::fresh_settings(&Options {
        delivery_smtp: Some(
            json!({"host": "127.0.0.1", "port": sink.port(), "security": "none", "timeout_secs": 30}),
        ),
        ..Options::default()
    });
    settings.imports.batch_rows = 2_000;
    settings.campaigns.page = 1_000;
    settings.campaigns.lease = Duration::from_secs(2);
    settings.delivery.worker.lease = Duration::from_secs(2);
    let app = mauntic_tests::start(settings).await;

    // The audience: 100,000 contacts imported into one static segment.
    let res = app
        .post("/api/v1/segments", &json!({"name": "Everyone"}))
        .send()
        .await
        .unwrap();
    let (segment, _) = mauntic_tests::accepted(res).await;
    let path = app.settings.imports.data_dir.join("crash.csv");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
        writeln!(f, "email").unwrap();
        for i in 0..RECIPIENTS {
            writeln!(f, "r{i}@example.org").unwrap();
        }
    }
    let options = commands::imports::ImportOptions {
        mapping: [("email".to_owned(), "email".to_owned())].into(),
        tags: vec![],
        update_existing: true,
        segment_id: Some(segment),
    };
    mauntic::import::contacts(&app.admin, app.tenant_id, &path, options, false)
        .await
        .unwrap();
    let t = app
        .published_template(
            "email",
            json!({"subject": "Hello {{contact.email}}", "html": "<p>Hi</p>", "text": "Hi"}),
        )
        .await;
    let id = create(
        &app,
        json!({"name": "Big", "template_id": t, "segments": [segment]}),
    )
    .await;
    let (status, v) = act(&app, id, "send").await;
    assert_eq!(status, 200, "{v}");
    let began = std::time::Instant::now();
    let progress = |what: &str| {
        eprintln!(
            "campaigns_crash: {what} after {:.0} s",
            began.elapsed().as_secs_f64()
        )
    };

    // Kill 1: while the jobs are being requested.
    eventually(LONG, "a fifth of the jobs are requested", || async {
        scalar(
            &app,
            "SELECT COALESCE((SELECT queued FROM campaign_runs WHERE campaign_id = $1), 0)",
            id,
        )
        .await
            >= (RECIPIENTS / 5) as i64
    })
    .await;
    progress("kill 1");
    let kill_1 = chrono::Utc::now();
    let app = kill_and_restart(app).await;

    // Kill 2: while messages go out.
    eventually(LONG, "a third of the messages are sent", || async {
        scalar(
            &app,
            "SELECT count(*) FROM delivery_sends WHERE tenant_id = $1",
            app.tenant_id,
        )
        .await
            >= (RECIPIENTS / 3) as i64
    })
    .await;
    progress("kill 2");
    let kill_2 = chrono::Utc::now();
    let app = kill_and_restart(app).await;

    wait_status_long(&app, id).await;
    // Every job reached an outcome: sent, or in doubt (caught by the second kill).
    progress("sent");
    // Who is in doubt is read in the deliveries read model: once it has every outcome.
    let head = app.head().await;
    eventually(
        LONG,
        "the deliveries read model has every outcome",
        || async {
            event_store::checkpoint::load(&app.pool, "deliveries")
                .await
                .unwrap()
                >= head
        },
    )
    .await;
    let in_doubt: Vec<String> = sqlx::query_scalar(
        "SELECT c.email FROM deliveries d JOIN contacts c ON c.tenant_id = d.tenant_id AND c.id = d.contact_id \
         WHERE d.source_id = $1 AND d.status = 'in_doubt'",
    )
    .bind(id)
    .fetch_all(&app.pool)
    .await
    .unwrap();
    let jobs: i64 = scalar(
        &app,
        "SELECT count(DISTINCT aggregate_id) FROM events \
         WHERE aggregate_type = 'delivery_job' AND event_type = 'DeliveryRequested' \
           AND payload->'DeliveryRequested'->'source'->>'campaign_id' = $1::text",
        id,
    )
    .await;
    assert_eq!(jobs as usize, RECIPIENTS, "one job per recipient");
    // Only what a killed process was handing over is in doubt: at each kill, at most one
    // chunk (`concurrency` jobs) per loop, dispatched before that kill (the commit of a write
    // the kill cut short may land just after it), and nothing a live process dispatched.
    let dispatched: Vec<chrono::DateTime<chrono::Utc>> = sqlx::query_scalar(
        "SELECT (SELECT max(e.recorded_at) FROM events e \
                 WHERE e.aggregate_type = 'delivery_job' \
                   AND e.aggregate_id = d.tenant_id::text || ':' || d.id::text \
                   AND e.event_type = 'DeliveryDispatching') \
         FROM deliveries d WHERE d.source_id = $1 AND d.status = 'in_doubt'",
    )
    .bind(id)
    .fetch_all(&app.pool)
    .await
    .unwrap();
    let worker = &app.settings.delivery.worker;
    let per_kill = worker.loops * worker.concurrency;
    let grace = chrono::Duration::seconds(2);
    let at_kill_1 = dispatched.iter().filter(|t| **t <= kill_1 + grace).count();
    let at_kill_2 = dispatched
        .iter()
        .filter(|t| **t > kill_1 + grace && **t <= kill_2 + grace)
        .count();
    progress(&format!("{at_kill_1} + {at_kill_2} in doubt"));
    assert_eq!(dispatched.len(), in_doubt.len());
    assert!(
        at_kill_1 <= per_kill && at_kill_2 <= per_kill && at_kill_1 + at_kill_2 == in_doubt.len(),
        "in doubt: {at_kill_1} from kill 1, {at_kill_2} from kill 2, {} dispatched by a live \
         process (at most {per_kill} per kill)",
        in_doubt.len() - at_kill_1 - at_kill_2
    );
    // smtp-sink writes each message out as it takes it: the last ones may still be on
    // their way to the disk.
    eventually(LONG, "the sink has every message sent", || async {
        let got: std::collections::HashSet<String> =
            sink.envelope_recipients().into_iter().collect();
        got.len() >= RECIPIENTS - in_doubt.len()
    })
    .await;
    let mut per_recipient: HashMap<String, usize> = HashMap::new();
    for to in sink.envelope_recipients() {
        *per_recipient.entry(to).or_default() += 1;
    }
    let twice: Vec<_> = per_recipient.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "recipients with two messages: {twice:?}");
    for i in 0..RECIPIENTS {
        let to = format!("r{i}@example.org");
        if !in_doubt.contains(&to) {
            assert_eq!(per_recipient.get(&to), Some(&1), "{to} got no message");
        }
    }
    progress("checked");
    app.stop().await;
}

async fn wait_status_long(app: &TestApp, id: Uuid) {
    eventually(LONG, "the campaign is sent", || async {
        scalar(
            app,
            "SELECT count(*) FROM events WHERE aggregate_type = 'campaign' \
             AND event_type = 'CampaignSent' AND aggregate_id LIKE '%' || $1::text",
            id,
        )
        .await
            == 1
    })
    .await;
    wait_status(app, id, "sent").await;
}
