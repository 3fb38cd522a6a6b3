//! The delivery worker end to end: a transactional message through the development mailbox
//! and through a real SMTP server (`smtp-sink`), idempotent requests, the contact rules that
//! stop a send (and say why), tracking links (open, click, one-click unsubscribe; forged
//! tokens refused), and a job caught by a crash between "dispatching" and the answer.

use std::time::Duration;

use mauntic_tests::smtp_sink::SmtpSink;
use mauntic_tests::{accepted, eventually, spawn_app, spawn_with, Options, TestApp};
use serde_json::{json, Value};
use uuid::Uuid;

const WAIT: Duration = Duration::from_secs(20);

async fn template(app: &TestApp, html: &str) -> Uuid {
    let subject = "Hello {{default contact.first_name \"there\"}}";
    app.published_template("email", json!({"subject": subject, "html": html}))
        .await
}

const HTML: &str = "<html><body><p>Hi {{contact.first_name}}</p>\
    <a href=\"https://acme.example/offer?x=1&amp;y=2\">Offer</a></body></html>";

async fn send(app: &TestApp, body: Value, key: Option<&str>) -> (u16, Value) {
    let mut req = app.post("/api/v1/messages", &body);
    if let Some(k) = key {
        req = req.header("Idempotency-Key", k);
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap())
}

async fn job_status(app: &TestApp, id: &str) -> String {
    app.delivery_job(id).await["state"]["status"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// Configures a provider for the organization (`POST /api/v1/providers`); its id.
async fn configure_provider(app: &TestApp, body: Value) -> Uuid {
    let res = app.post("/api/v1/providers", &body).send().await.unwrap();
    assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
    accepted(res).await.0
}

/// Sends a message (no Idempotency-Key) and answers its job id.
async fn get_json(app: &TestApp, path: &str) -> Value {
    let res = app.get(path).send().await.unwrap();
    assert_eq!(res.status(), 200, "{path}");
    res.json().await.unwrap()
}

async fn mailbox(app: &TestApp, query: &str) -> Vec<Value> {
    let res = app
        .get(&format!("/api/v1/dev-mailbox{query}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    res.json::<Vec<Value>>().await.unwrap()
}

#[tokio::test]
async fn a_transactional_message_reaches_the_development_mailbox_rendered_and_tracked() {
    let app = spawn_app().await;
    let t = template(&app, HTML).await;
    let (contact, _) = app
        .create_contact(json!({"email": "ada@example.org", "first_name": "Ada"}))
        .await;

    let (status, body) = send(&app, json!({"template_id": t, "contact_id": contact}), None).await;
    assert_eq!(status, 202, "{body}");
    let id = body["id"].as_str().unwrap().to_owned();

    let j = app.wait_delivery_job(&id, "sent").await;
    let types: Vec<&str> = j["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event_type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        ["DeliveryRequested", "DeliveryDispatching", "DeliverySent"],
        "dispatching is recorded before the provider answers"
    );
    assert_eq!(j["state"]["provider"], "dev_mailbox");
    // The job's events hold no address: the contact's is looked up when sending.
    assert_eq!(j["events"][0]["payload"]["DeliveryRequested"]["to"], "");

    let got = mailbox(&app, &format!("?job_id={id}")).await;
    assert_eq!(got.len(), 1);
    let m = &got[0];
    assert_eq!(m["subject"], "Hello Ada");
    assert_eq!(m["to"], "ada@example.org");
    assert_eq!(m["from"], "Acme <news@acme.test>");
    assert_eq!(m["message_id"], format!("{id}@acme.test"));
    let html = m["html"].as_str().unwrap();
    assert!(html.contains("<p>Hi Ada</p>"), "{html}");
    assert!(
        !html.contains("https://acme.example/offer"),
        "the link goes through a click URL: {html}"
    );
    assert!(html.contains("http://track.mauntic.test/t/c/"), "{html}");
    assert!(
        html.contains("http://track.mauntic.test/t/o/"),
        "open pixel: {html}"
    );
    assert!(m["text"].as_str().unwrap().contains("Hi Ada"));
    let raw = m["raw"].as_str().unwrap();
    assert!(
        raw.contains("List-Unsubscribe: <http://track.mauntic.test/t/u/"),
        "{raw}"
    );
    assert!(raw.contains("List-Unsubscribe-Post: List-Unsubscribe=One-Click"));
    assert!(raw.contains("multipart/alternative"));
    assert!(raw.contains(&format!(
        "Feedback-ID: transactional:{}:mauntic",
        app.tenant_id
    )));

    // The deliveries read model: listed by status and contact, detail with its events.
    eventually(WAIT, "the delivery is listed as sent", || async {
        let page = get_json(
            &app,
            &format!("/api/v1/deliveries?status=sent&contact_id={contact}"),
        )
        .await;
        page["items"]
            .as_array()
            .is_some_and(|i| i.len() == 1 && i[0]["id"] == id.as_str())
    })
    .await;
    let detail: Value = get_json(&app, &format!("/api/v1/deliveries/{id}")).await;
    assert_eq!(detail["provider"], "dev_mailbox");
    assert_eq!(detail["source"], "transactional");
    assert_eq!(detail["attempts"], 1);
    assert_eq!(detail["events"].as_array().unwrap().len(), 3);
    let none: Value = get_json(&app, "/api/v1/deliveries?status=suppressed").await;
    assert_eq!(none["items"], json!([]));
    let res = app
        .get("/api/v1/deliveries?status=lost")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
}

#[tokio::test]
async fn an_idempotency_key_makes_a_retried_request_the_same_message() {
    let app = spawn_app().await;
    let t = template(&app, HTML).await;
    let body = json!({"template_id": t, "to": "bob@example.org", "data": {"order": 7}});

    let (s1, first) = send(&app, body.clone(), Some("order-7")).await;
    let (s2, second) = send(&app, body.clone(), Some("order-7")).await;
    assert_eq!((s1, s2), (202, 200));
    assert_eq!(first["id"], second["id"]);
    assert_eq!(second["duplicate"], true);

    let mut other = body.clone();
    other["to"] = json!("eve@example.org");
    let (s3, problem) = send(&app, other, Some("order-7")).await;
    assert_eq!(s3, 422, "{problem}");

    let id = first["id"].as_str().unwrap().to_owned();
    app.wait_delivery_job(&id, "sent").await;
    assert_eq!(mailbox(&app, "?to=bob@example.org").await.len(), 1);
}

#[tokio::test]
async fn bad_requests_are_refused_and_write_nothing() {
    let app = spawn_app().await;
    let t = template(&app, HTML).await;
    let before = app.event_count().await;
    for (body, field) in [
        (json!({"template_id": t}), "to"),
        (
            json!({"template_id": t, "to": "x@example.org", "contact_id": Uuid::now_v7()}),
            "to",
        ),
        (json!({"template_id": t, "to": "not an address"}), "to"),
        (
            json!({"template_id": t, "to": "x@example.org", "data": [1]}),
            "data",
        ),
        (
            json!({"template_id": t, "to": "x@example.org", "from": {"address": "nope"}}),
            "from.address",
        ),
    ] {
        let (status, problem) = send(&app, body.clone(), None).await;
        assert_eq!(status, 422, "{body} → {problem}");
        assert!(problem.to_string().contains(field), "{problem}");
    }
    let (status, _) = send(
        &app,
        json!({"template_id": Uuid::now_v7(), "to": "x@example.org"}),
        None,
    )
    .await;
    assert_eq!(status, 404);
    let (status, _) = send(
        &app,
        json!({"template_id": t, "contact_id": Uuid::now_v7()}),
        None,
    )
    .await;
    assert_eq!(status, 404);
    assert_eq!(app.event_count().await, before);
}

#[tokio::test]
async fn a_do_not_contact_mark_stops_the_send_and_the_job_says_why() {
    let app = spawn_app().await;
    let t = template(&app, HTML).await;
    let (contact, _) = app
        .create_contact(json!({"email": "dnc@example.org"}))
        .await;
    let res = app
        .http
        .put(app.url(&format!("/api/v1/contacts/{contact}/do-not-contact/email")))
        .bearer_auth(&app.api_key)
        .json(&json!({"reason": "manual"}))
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success(), "{}", res.text().await.unwrap());

    let (_, body) = send(&app, json!({"template_id": t, "contact_id": contact}), None).await;
    let id = body["id"].as_str().unwrap().to_owned();
    let j = app.wait_delivery_job(&id, "suppressed").await;
    let last = j["events"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(
        last["payload"]["DeliverySuppressed"]["reason"],
        json!({"kind": "do_not_contact", "reason": "manual"})
    );
    assert!(mailbox(&app, "").await.is_empty());
}

#[tokio::test]
async fn email_goes_out_over_smtp_with_the_jobs_headers_and_tracking_that_records() {
    let sink = SmtpSink::start();
    let app = spawn_with(Options {
        delivery_smtp: Some(
            json!({"host": "127.0.0.1", "port": sink.port(), "security": "none", "timeout_secs": 5}),
        ),
        ..Options::default()
    })
    .await;
    let t = template(&app, HTML).await;
    let (contact, _) = app
        .create_contact(json!({"email": "grace@example.org", "first_name": "Grace"}))
        .await;
    let (_, body) = send(&app, json!({"template_id": t, "contact_id": contact}), None).await;
    let id = body["id"].as_str().unwrap().to_owned();

    let dump = sink.wait_for_message("grace@example.org", WAIT).await;
    let parsed = mail_parser::MessageParser::default()
        .parse(dump.as_bytes())
        .unwrap();
    assert_eq!(parsed.subject(), Some("Hello Grace"));
    assert_eq!(
        parsed.message_id(),
        Some(format!("{id}@acme.test").as_str())
    );
    let mail_from = dump
        .lines()
        .find_map(|l| l.strip_prefix("X-Mail-Args: "))
        .unwrap();
    let simple = id.replace('-', "");
    assert!(
        mail_from.contains(&format!("bounce+{simple}.")) && mail_from.contains("@acme.test"),
        "a signed return path on the sender's domain: {mail_from}"
    );
    let html = parsed.body_html(0).unwrap().into_owned();
    let text = parsed.body_text(0).unwrap().into_owned();
    assert!(text.contains("Hi Grace"), "{text}");
    app.wait_delivery_job(&id, "sent").await;

    // The click link redirects to the original target and records the click.
    let click = link(&html, "/t/c/");
    let no_redirect = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let res = no_redirect.get(app.url(&click)).send().await.unwrap();
    assert_eq!(res.status(), 303);
    assert_eq!(
        res.headers()["location"],
        "https://acme.example/offer?x=1&y=2"
    );
    // A token changed by one character is refused: no redirect anywhere.
    let mut forged = click.clone();
    let last = forged.pop().unwrap();
    forged.push(if last == 'A' { 'B' } else { 'A' });
    let res = no_redirect.get(app.url(&forged)).send().await.unwrap();
    assert_eq!(res.status(), 404);
    assert!(res.headers().get("location").is_none());

    let res = no_redirect
        .get(app.url(&link(&html, "/t/o/")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "image/gif");
    let j = app.wait_delivery_job(&id, "delivered").await;
    assert_eq!(j["state"]["opens"], 1);
    assert_eq!(j["state"]["clicks"], 1);

    // One-click unsubscribe (RFC 8058): the POST the List-Unsubscribe header names.
    let unsubscribe = dump
        .lines()
        .find_map(|l| l.strip_prefix("List-Unsubscribe: <"))
        .unwrap()
        .trim_end_matches('>')
        .to_owned();
    let path = unsubscribe.trim_start_matches("http://track.mauntic.test");
    let page = no_redirect.get(app.url(path)).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert_eq!(
        app.delivery_job(&id).await["state"]["unsubscribed"],
        false,
        "a GET changes nothing"
    );
    let res = no_redirect
        .post(app.url(path))
        .form(&[("List-Unsubscribe", "One-Click")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(app.delivery_job(&id).await["state"]["unsubscribed"], true);
    eventually(WAIT, "the contact opted out of email", || async {
        let c = get_json(&app, &format!("/api/v1/contacts/{contact}")).await;
        c["consent"]["email"]["status"] == "opted_out"
    })
    .await;
}

/// The path of the first tracking link of `kind` in `html`.
fn link(html: &str, kind: &str) -> String {
    let start = html
        .find(&format!("http://track.mauntic.test{kind}"))
        .unwrap();
    let rest = &html[start + "http://track.mauntic.test".len()..];
    let end = rest.find('"').unwrap();
    rest[..end].to_owned()
}

#[tokio::test]
async fn a_job_left_dispatching_by_a_crash_is_in_doubt_and_never_sent_again() {
    let sink = SmtpSink::start();
    let app = spawn_with(Options {
        delivery_smtp: Some(
            json!({"host": "127.0.0.1", "port": sink.port(), "security": "none", "timeout_secs": 5}),
        ),
        ..Options::default()
    })
    .await;
    let t = template(&app, HTML).await;
    // A worker died after recording "dispatching": its job is in the log as dispatching,
    // and its queue row's lease has lapsed.
    let id = Uuid::now_v7();
    let jobs = app.admin.delivery.jobs.clone();
    let meta = event_store::EventMetadata {
        tenant_id: Some(app.tenant_id),
        ..Default::default()
    };
    let request = domain::delivery::Request {
        channel: domain::delivery::Channel::Email,
        contact_id: None,
        to: "crash@example.org".into(),
        template_id: t,
        template_version: 1,
        source: domain::delivery::Source::Test,
        data: json!({}),
        from: None,
        reply_to: None,
        provider_id: None,
    };
    let far = chrono::Utc::now() + chrono::Duration::hours(1);
    jobs.request(app.tenant_id, &meta, &[(id, request)], far)
        .await
        .unwrap();
    jobs.execute(
        app.tenant_id,
        id,
        domain::delivery::DeliveryCommand::BeginDispatch {
            provider: "smtp".into(),
        },
        &meta,
        commands::delivery::jobs::Queue::DueAt(chrono::Utc::now() - chrono::Duration::seconds(1)),
    )
    .await
    .unwrap();

    let j = app.wait_delivery_job(&id.to_string(), "in_doubt").await;
    assert_eq!(
        j["events"].as_array().unwrap().last().unwrap()["event_type"],
        "DeliveryInDoubt"
    );
    // A normal message sent after it arrives; the job in doubt never does.
    let (_, body) = send(
        &app,
        json!({"template_id": t, "to": "after@example.org"}),
        None,
    )
    .await;
    app.wait_delivery_job(body["id"].as_str().unwrap(), "sent")
        .await;
    sink.wait_for_message("after@example.org", WAIT).await;
    assert!(sink.messages_to("crash@example.org").is_empty());
    let queued: (i64,) = sqlx::query_as("SELECT count(*) FROM delivery_queue")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(queued.0, 0, "no job is left without an outcome");
    assert_eq!(job_status(&app, &id.to_string()).await, "in_doubt");
}

#[tokio::test]
async fn an_organizations_own_provider_carries_its_email() {
    let sink = SmtpSink::start();
    let app = spawn_app().await;
    let provider = configure_provider(&app, json!({"name": "Our relay", "channel": "email", "kind": "smtp",
                    "settings": {"host": "127.0.0.1", "port": sink.port(), "security": "none", "timeout_secs": 5}})).await;
    let t = template(&app, HTML).await;

    let id = app
        .send_message(json!({"template_id": t, "to": "own@example.org"}))
        .await;
    sink.wait_for_message("own@example.org", WAIT).await;
    let j = app.wait_delivery_job(&id, "sent").await;
    assert_eq!(j["state"]["provider"], format!("smtp:{provider}"));
    assert!(
        mailbox(&app, "").await.is_empty(),
        "the development mailbox is only for organizations without a provider"
    );
}

/// A Mailgun webhook body for `event` on `message_id`, signed with `key`.
fn mailgun_report(key: &str, message_id: &str, recipient: &str, severity: &str) -> Value {
    use hmac::Mac;
    let ts = chrono::Utc::now().timestamp().to_string();
    let token = Uuid::new_v4().simple().to_string();
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(key.as_bytes()).unwrap();
    mac.update(format!("{ts}{token}").as_bytes());
    let signature = hex::encode(mac.finalize().into_bytes());
    json!({
        "signature": {"timestamp": ts, "token": token, "signature": signature},
        "event-data": {
            "event": "failed", "severity": severity, "reason": "bounce",
            "timestamp": chrono::Utc::now().timestamp() as f64,
            "recipient": recipient,
            "delivery-status": {"code": 550, "description": "5.1.1 The account does not exist."},
            "message": {"headers": {"message-id": message_id}}
        }
    })
}

#[tokio::test]
async fn a_verified_hard_bounce_report_bounces_the_job_and_suppresses_the_address() {
    let mailgun = mauntic_tests::fakes::mailgun::FakeMailgun::start().await;
    let app = spawn_app().await;
    let mut settings = mailgun.config();
    let api_key = settings.as_object_mut().unwrap().remove("api_key").unwrap();
    let provider = configure_provider(
        &app,
        json!({"name": "Mailgun", "channel": "email", "kind": "mailgun", "settings": settings,
                    "secrets": {"api_key": api_key, "webhook_signing_key": "wh-key"}}),
    )
    .await;
    let t = template(&app, HTML).await;
    let id = app
        .send_message(json!({"template_id": t, "to": "gone@example.org"}))
        .await;
    let j = app.wait_delivery_job(&id, "sent").await;
    let message_id = j["state"]["provider_message_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let hook = format!("/webhooks/{}/{provider}", app.tenant_id);

    // Signed with another key: refused, nothing recorded.
    let forged = mailgun_report("not-the-key", &message_id, "gone@example.org", "permanent");
    let res = app
        .http
        .post(app.url(&hook))
        .json(&forged)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    assert_eq!(job_status(&app, &id).await, "sent");

    let genuine = mailgun_report("wh-key", &message_id, "gone@example.org", "permanent");
    let res = app
        .http
        .post(app.url(&hook))
        .json(&genuine)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    let j = app.wait_delivery_job(&id, "bounced").await;
    assert_eq!(
        j["events"].as_array().unwrap().last().unwrap()["payload"]["DeliveryBounced"]["kind"],
        "hard"
    );

    // The address is suppressed: the next message to it is not sent, and says why.
    let next = app
        .send_message(json!({"template_id": t, "to": "Gone@Example.org"}))
        .await;
    let j = app.wait_delivery_job(&next, "suppressed").await;
    assert_eq!(
        j["events"].as_array().unwrap().last().unwrap()["payload"]["DeliverySuppressed"]["reason"],
        json!({"kind": "suppressed_address", "reason": "hard_bounce"})
    );
    assert_eq!(
        mailgun.received().len(),
        1,
        "one message reached the provider"
    );
}

#[tokio::test]
async fn killing_the_worker_while_the_smtp_server_has_the_message_never_sends_it_again() {
    // An SMTP server that accepts connections and never answers: the provider call hangs
    // after "dispatching" is recorded, and the process is killed there.
    let hang = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hang_port = hang.local_addr().unwrap().port();
    let held = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let keep = held.clone();
    tokio::spawn(async move {
        while let Ok((socket, _)) = hang.accept().await {
            keep.lock().unwrap().push(socket);
        }
    });
    let mut settings = mauntic_tests::fresh_settings(&Options {
        delivery_smtp: Some(
            json!({"host": "127.0.0.1", "port": hang_port, "security": "none", "timeout_secs": 60}),
        ),
        ..Options::default()
    });
    settings.delivery.worker.lease = Duration::from_secs(2);
    let mut first = mauntic_tests::start(settings.clone()).await;
    let t = template(&first, HTML).await;
    // Five messages requested in one transaction: one claim takes them all.
    let meta = event_store::EventMetadata {
        tenant_id: Some(first.tenant_id),
        ..Default::default()
    };
    let batch: Vec<(Uuid, domain::delivery::Request)> = (0..5)
        .map(|i| {
            (
                Uuid::now_v7(),
                domain::delivery::Request {
                    channel: domain::delivery::Channel::Email,
                    contact_id: None,
                    to: format!("crash{i}@example.org"),
                    template_id: t,
                    template_version: 1,
                    source: domain::delivery::Source::Transactional {
                        idempotency_key: None,
                    },
                    data: json!({}),
                    from: None,
                    reply_to: None,
                    provider_id: None,
                },
            )
        })
        .collect();
    first
        .admin
        .delivery
        .jobs
        .request(first.tenant_id, &meta, &batch, chrono::Utc::now())
        .await
        .unwrap();
    let ids: Vec<String> = batch.iter().map(|(id, _)| id.to_string()).collect();
    for id in &ids {
        first.wait_delivery_job(id, "dispatching").await;
    }
    // Killed mid-call: the task is dropped with the provider calls in flight.
    first.task.take().unwrap().abort();
    first.cancel.cancel();

    // A new process, now with a working SMTP server.
    let sink = SmtpSink::start();
    settings.delivery.smtp = Some(
        json!({"host": "127.0.0.1", "port": sink.port(), "security": "none", "timeout_secs": 5}),
    );
    let mut second = mauntic_tests::start(settings).await;
    // The same organization, through the new process.
    second.api_key = first.api_key.clone();
    second.tenant_id = first.tenant_id;
    for id in &ids {
        let j = second.wait_delivery_job(id, "in_doubt").await;
        let types: Vec<&str> = j["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["event_type"].as_str().unwrap())
            .collect();
        assert_eq!(
            types,
            [
                "DeliveryRequested",
                "DeliveryDispatching",
                "DeliveryInDoubt"
            ]
        );
    }
    // The queue is empty and a new message goes out; none of the five ever reaches the sink.
    let (_, body) = send(
        &second,
        json!({"template_id": t, "to": "after@example.org"}),
        None,
    )
    .await;
    second
        .wait_delivery_job(body["id"].as_str().unwrap(), "sent")
        .await;
    sink.wait_for_message("after@example.org", WAIT).await;
    for i in 0..5 {
        assert!(sink
            .messages_to(&format!("crash{i}@example.org"))
            .is_empty());
    }
    eventually(
        WAIT,
        "the deliveries list shows the five in doubt",
        || async {
            let page: Value = get_json(&second, "/api/v1/deliveries?status=in_doubt").await;
            page["items"].as_array().is_some_and(|i| i.len() == 5)
        },
    )
    .await;
    drop(held);
}

/// A marketing (campaign) job for `contact`, requested directly (campaigns request their
/// jobs through the same write path).
async fn campaign_job(app: &TestApp, template: Uuid, contact: Uuid) -> String {
    let source = domain::delivery::Source::Campaign {
        campaign_id: Uuid::from_u128(42),
        variant: None,
    };
    marketing_job(app, template, contact, source).await
}

/// A journey step's job for `contact`, requested directly.
async fn journey_job(app: &TestApp, template: Uuid, contact: Uuid) -> String {
    let source = domain::delivery::Source::Journey {
        journey_id: Uuid::from_u128(43),
        execution_id: Uuid::now_v7(),
        step_id: "welcome".into(),
    };
    marketing_job(app, template, contact, source).await
}

async fn marketing_job(
    app: &TestApp,
    template: Uuid,
    contact: Uuid,
    source: domain::delivery::Source,
) -> String {
    let id = Uuid::now_v7();
    let meta = event_store::EventMetadata {
        tenant_id: Some(app.tenant_id),
        ..Default::default()
    };
    let request = domain::delivery::Request {
        channel: domain::delivery::Channel::Email,
        contact_id: Some(contact),
        to: String::new(),
        template_id: template,
        template_version: 1,
        source,
        data: json!({}),
        from: None,
        reply_to: None,
        provider_id: None,
    };
    app.admin
        .delivery
        .jobs
        .request(app.tenant_id, &meta, &[(id, request)], chrono::Utc::now())
        .await
        .unwrap();
    id.to_string()
}

async fn put(app: &TestApp, path: &str, body: Value) {
    let res = app
        .http
        .put(app.url(path))
        .bearer_auth(&app.api_key)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success(), "{}", res.text().await.unwrap());
}

#[tokio::test]
async fn opted_out_and_over_frequency_contacts_get_no_marketing_and_the_job_says_why() {
    let app = spawn_app().await;
    let t = template(&app, HTML).await;
    let (out, _) = app
        .create_contact(json!({"email": "out@example.org"}))
        .await;
    put(
        &app,
        &format!("/api/v1/contacts/{out}/consent/email"),
        json!({"status": "opted_out", "source": "preference-centre"}),
    )
    .await;
    let (capped, _) = app
        .create_contact(json!({"email": "capped@example.org"}))
        .await;
    put(
        &app,
        &format!("/api/v1/contacts/{capped}/frequency/email"),
        json!({"max": 1, "per_days": 7}),
    )
    .await;

    let opted_out = campaign_job(&app, t, out).await;
    let j = app.wait_delivery_job(&opted_out, "suppressed").await;
    assert_eq!(
        j["events"].as_array().unwrap().last().unwrap()["payload"]["DeliverySuppressed"]["reason"],
        json!({"kind": "opted_out"})
    );
    // A transactional message (a receipt) still reaches someone who opted out of marketing.
    let (_, body) = send(&app, json!({"template_id": t, "contact_id": out}), None).await;
    app.wait_delivery_job(body["id"].as_str().unwrap(), "sent")
        .await;

    // A journey's message over the cap waits (a campaign's is suppressed:
    // `delivery_campaigns::over_its_frequency_cap_a_contact_is_skipped_by_a_campaign`).
    let first = journey_job(&app, t, capped).await;
    app.wait_delivery_job(&first, "sent").await;
    let second = journey_job(&app, t, capped).await;
    let j = app.wait_delivery_job(&second, "deferred").await;
    let deferred = &j["events"].as_array().unwrap().last().unwrap()["payload"]["DeliveryDeferred"];
    assert_eq!(deferred["reason"], json!({"kind": "frequency_cap"}));
    let until: chrono::DateTime<chrono::Utc> = deferred["until"].as_str().unwrap().parse().unwrap();
    assert!(
        until > chrono::Utc::now() + chrono::Duration::days(6),
        "{until}"
    );
    assert_eq!(
        mailbox(&app, "?to=capped@example.org").await.len(),
        1,
        "one message in the week"
    );
}

/// An SMTP server that takes one message and answers its end of data only when `release`
/// is notified: the message is with "the provider" while its job is still dispatching.
async fn holding_smtp_server() -> (
    u16,
    tokio::sync::oneshot::Receiver<Vec<u8>>,
    std::sync::Arc<tokio::sync::Notify>,
) {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let release = std::sync::Arc::new(tokio::sync::Notify::new());
    let (data_tx, data_rx) = tokio::sync::oneshot::channel();
    let held = release.clone();
    tokio::spawn(async move {
        let (socket, _) = listener.accept().await.unwrap();
        let (read, mut write) = socket.into_split();
        let mut lines = BufReader::new(read);
        write.write_all(b"220 holding ESMTP\r\n").await.unwrap();
        let mut data_tx = Some(data_tx);
        let mut line = Vec::new();
        loop {
            line.clear();
            if lines.read_until(b'\n', &mut line).await.unwrap() == 0 {
                return;
            }
            let verb = String::from_utf8_lossy(&line).to_ascii_uppercase();
            let answer: &[u8] = if verb.starts_with("EHLO") {
                b"250-holding\r\n250 8BITMIME\r\n"
            } else if verb.starts_with("DATA") {
                write.write_all(b"354 go on\r\n").await.unwrap();
                let mut message = Vec::new();
                loop {
                    line.clear();
                    lines.read_until(b'\n', &mut line).await.unwrap();
                    if line == b".\r\n" {
                        break;
                    }
                    message.extend_from_slice(&line);
                }
                if let Some(tx) = data_tx.take() {
                    tx.send(message).unwrap();
                }
                held.notified().await;
                b"250 queued\r\n"
            } else if verb.starts_with("QUIT") {
                write.write_all(b"221 bye\r\n").await.unwrap();
                return;
            } else {
                b"250 ok\r\n"
            };
            write.write_all(answer).await.unwrap();
        }
    });
    (port, data_rx, release)
}

#[tokio::test]
async fn a_click_while_the_provider_still_has_the_message_is_recorded_once_it_is_sent() {
    // Link scanners follow a message's links as soon as it arrives, often before the
    // provider has answered our worker: the click comes while the job is dispatching.
    let (port, data, release) = holding_smtp_server().await;
    let app = spawn_with(Options {
        delivery_smtp: Some(
            json!({"host": "127.0.0.1", "port": port, "security": "none", "timeout_secs": 60}),
        ),
        ..Options::default()
    })
    .await;
    let t = template(&app, HTML).await;
    let (status, body) = send(
        &app,
        json!({"template_id": t, "to": "scanned@example.org"}),
        None,
    )
    .await;
    assert_eq!(status, 202, "{body}");
    let id = body["id"].as_str().unwrap().to_owned();
    let raw = tokio::time::timeout(WAIT, data).await.unwrap().unwrap();
    let parsed = mail_parser::MessageParser::default().parse(&raw).unwrap();
    let html = parsed.body_html(0).unwrap().into_owned();
    let start = html.find("/t/c/").expect("a tracked link");
    let end = start + html[start..].find('"').unwrap();
    let link = &html[start..end];
    assert_eq!(job_status(&app, &id).await, "dispatching");

    // The scanner is redirected at once, whatever the job's state.
    let res = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(app.url(link))
        .send()
        .await
        .unwrap();
    assert!(res.status().is_redirection(), "{}", res.status());
    assert_eq!(
        res.headers()["location"],
        "https://acme.example/offer?x=1&y=2"
    );

    // The provider answers; the click lands after the send, not lost to the race.
    release.notify_one();
    let types = || async {
        let j = app.delivery_job(&id).await;
        j["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["event_type"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    eventually(WAIT, "the click is recorded after the send", || async {
        types().await.len() == 4
    })
    .await;
    assert_eq!(
        types().await,
        [
            "DeliveryRequested",
            "DeliveryDispatching",
            "DeliverySent",
            "DeliveryClicked"
        ]
    );
}
