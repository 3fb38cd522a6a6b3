//! Inbound mail end to end: a message goes out through a real SMTP server (`smtp-sink`) with
//! a signed VERP return path and a mailto unsubscribe on the bounce domain; the DSN, ARF
//! report or unsubscribe mail an MTA would pipe back is posted to `/inbound/mail` and lands
//! on the job, the suppression list and the contact. Forged addresses record nothing. Opens
//! and clicks (and bounces) show on the contact's timeline.

use std::time::Duration;

use domain::delivery::suppression::SuppressionReason;
use domain::delivery::Channel;
use mauntic::settings::InboundSecret;
use mauntic_tests::smtp_sink::SmtpSink;
use mauntic_tests::{eventually, fresh_settings, spawn_app, start, Options, TestApp};
use serde_json::{json, Value};
use uuid::Uuid;

const WAIT: Duration = Duration::from_secs(20);
const SECRET: &str = "inbound test secret";
const BOUNCE_DOMAIN: &str = "bounces.acme.test";
const HTML: &str = "<html><body><p>Hi {{contact.first_name}}</p>\
    <a href=\"https://acme.example/offer\">Offer</a></body></html>";

/// The application sending through `sink`, with a bounce domain and the inbound endpoint.
async fn app_with_inbound(sink: &SmtpSink) -> TestApp {
    let mut settings = fresh_settings(&Options {
        delivery_smtp: Some(
            json!({"host": "127.0.0.1", "port": sink.port(), "security": "none", "timeout_secs": 5}),
        ),
        ..Options::default()
    });
    settings.delivery.worker.bounce_domain = Some(BOUNCE_DOMAIN.into());
    settings.delivery.inbound_secret = Some(InboundSecret(SECRET.into()));
    start(settings).await
}

async fn template(app: &TestApp) -> Uuid {
    app.published_template("email", json!({"subject": "Hello", "html": HTML}))
        .await
}

/// One message sent to a new contact at `email`: (contact, job id, what smtp-sink received).
async fn sent(
    app: &TestApp,
    sink: &SmtpSink,
    template: Uuid,
    email: &str,
) -> (Uuid, String, String) {
    let (contact, _) = app
        .create_contact(json!({"email": email, "first_name": "Ada"}))
        .await;
    let id = app
        .send_message(json!({"template_id": template, "contact_id": contact}))
        .await;
    let dump = sink.wait_for_message(email, WAIT).await;
    app.wait_delivery_job(&id, "sent").await;
    (contact, id, dump)
}

/// The envelope sender smtp-sink recorded (MAIL FROM).
fn return_path(dump: &str) -> String {
    let args = dump
        .lines()
        .find_map(|l| l.strip_prefix("X-Mail-Args: "))
        .unwrap();
    let start = args.find('<').unwrap() + 1;
    let end = args[start..].find('>').unwrap() + start;
    args[start..end].to_owned()
}

/// The `List-Unsubscribe` header, unfolded.
fn list_unsubscribe(dump: &str) -> String {
    let m = mail_parser::MessageParser::default()
        .parse(dump.as_bytes())
        .unwrap();
    m.header_raw("List-Unsubscribe")
        .unwrap()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// A delivery status notification as Postfix writes it, to `to`, about `recipient`.
fn postfix_dsn(
    to: &str,
    recipient: &str,
    status: &str,
    diagnostic: &str,
    message_id: &str,
) -> String {
    let action = if status.starts_with('5') {
        "failed"
    } else {
        "delayed"
    };
    format!(
        "Return-Path: <>\r\nDelivered-To: {to}\r\n\
         From: MAILER-DAEMON@mx.example.org (Mail Delivery System)\r\n\
         Subject: Undelivered Mail Returned to Sender\r\nTo: {to}\r\n\
         Auto-Submitted: auto-replied\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/report; report-type=delivery-status;\r\n\
         \tboundary=\"8C2E/mx.example.org\"\r\n\
         Message-Id: <20300101.8C2E@mx.example.org>\r\n\r\n\
         This is a MIME-encapsulated message.\r\n\r\n\
         --8C2E/mx.example.org\r\nContent-Description: Notification\r\n\
         Content-Type: text/plain; charset=us-ascii\r\n\r\n\
         This is the mail system at host mx.example.org.\r\n\r\n\
         <{recipient}>: host mx.example.org said: {diagnostic}\r\n\r\n\
         --8C2E/mx.example.org\r\nContent-Description: Delivery report\r\n\
         Content-Type: message/delivery-status\r\n\r\n\
         Reporting-MTA: dns; mx.example.org\r\nX-Postfix-Queue-ID: 8C2E\r\n\
         X-Postfix-Sender: rfc822; {to}\r\n\
         Arrival-Date: Tue,  1 Jan 2030 00:00:00 +0000 (UTC)\r\n\r\n\
         Final-Recipient: rfc822; {recipient}\r\nOriginal-Recipient: rfc822;{recipient}\r\n\
         Action: {action}\r\nStatus: {status}\r\nRemote-MTA: dns; mx.example.org\r\n\
         Diagnostic-Code: smtp; {diagnostic}\r\n\r\n\
         --8C2E/mx.example.org\r\nContent-Description: Undelivered Message Headers\r\n\
         Content-Type: text/rfc822-headers\r\n\r\n\
         Return-Path: <{to}>\r\nMessage-ID: <{message_id}>\r\nSubject: Hello\r\n\r\n\
         --8C2E/mx.example.org--\r\n"
    )
}

/// An ARF (RFC 5965) report from a feedback loop, to `to`, about the message `message_id`.
fn arf(to: &str, message_id: &str, recipient: &str) -> String {
    format!(
        "From: fbl@isp.example\r\nTo: {to}\r\nSubject: Abuse report\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/report; report-type=feedback-report; boundary=\"arf-1\"\r\n\r\n\
         --arf-1\r\nContent-Type: text/plain\r\n\r\nThis is an email abuse report.\r\n\r\n\
         --arf-1\r\nContent-Type: message/feedback-report\r\n\r\n\
         Feedback-Type: abuse\r\nUser-Agent: ISP-FBL/1.0\r\nVersion: 1\r\n\
         Original-Rcpt-To: <{recipient}>\r\n\r\n\
         --arf-1\r\nContent-Type: message/rfc822\r\nContent-Disposition: inline\r\n\r\n\
         From: Acme <news@acme.test>\r\nTo: {recipient}\r\nSubject: Hello\r\n\
         Message-ID: <{message_id}>\r\n\r\nHi Ada\r\n\
         --arf-1--\r\n"
    )
}

/// Posts `raw` to the inbound endpoint (`to`: the envelope recipient) with `secret`.
async fn inbound(app: &TestApp, to: Option<&str>, raw: &str, secret: Option<&str>) -> (u16, Value) {
    let mut req = app
        .http
        .post(app.url("/inbound/mail"))
        .header("content-type", "message/rfc822")
        .body(raw.to_owned());
    if let Some(to) = to {
        req = req.query(&[("to", to)]);
    }
    if let Some(s) = secret {
        req = req.bearer_auth(s);
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    let body = res.json().await.unwrap_or(Value::Null);
    (status, body)
}

async fn suppressed(app: &TestApp, address: &str) -> Option<SuppressionReason> {
    commands::suppressions::suppressed_now(
        &app.pool,
        app.tenant_id,
        Channel::Email,
        &[address.to_owned()],
    )
    .await
    .unwrap()
    .remove(address)
}

fn last_event(j: &Value) -> &Value {
    j["events"].as_array().unwrap().last().unwrap()
}

#[tokio::test]
async fn a_dsn_to_the_signed_return_path_bounces_the_job_hard_and_suppresses_the_address() {
    let sink = SmtpSink::start();
    let app = app_with_inbound(&sink).await;
    let t = template(&app).await;
    let (contact, id, dump) = sent(&app, &sink, t, "gone@example.org").await;

    // The return path is signed, on the bounce domain, within RFC 5321's 64-character local part.
    let rp = return_path(&dump);
    let (local, domain) = rp.rsplit_once('@').unwrap();
    assert_eq!(domain, BOUNCE_DOMAIN);
    assert!(
        local.starts_with(&format!("bounce+{}.", id.replace('-', ""))),
        "{rp}"
    );
    assert!(local.len() <= 64, "{rp}");
    // List-Unsubscribe: the one-click https URL first, then the signed mailto.
    let lu = list_unsubscribe(&dump);
    assert!(lu.starts_with("<http://track.mauntic.test/t/u/"), "{lu}");
    let mailto = lu.split("<mailto:").nth(1).unwrap().trim_end_matches('>');
    assert!(
        mailto.starts_with("unsubscribe+") && mailto.ends_with(&format!("@{BOUNCE_DOMAIN}")),
        "{lu}"
    );
    assert!(dump.contains("List-Unsubscribe-Post: List-Unsubscribe=One-Click"));

    let dsn = postfix_dsn(
        &rp,
        "gone@example.org",
        "5.1.1",
        "550 5.1.1 <gone@example.org>: Recipient address rejected: User unknown",
        &format!("{id}@acme.test"),
    );
    // Without the secret, or with another one: refused, nothing recorded.
    let before = app.event_count().await;
    let (status, problem) = inbound(&app, Some(&rp), &dsn, None).await;
    assert_eq!(status, 401, "{problem}");
    assert_eq!(problem["status"], 401);
    let (status, _) = inbound(&app, Some(&rp), &dsn, Some("not the secret")).await;
    assert_eq!(status, 401);
    assert_eq!(app.event_count().await, before);

    let (status, answer) = inbound(&app, Some(&rp), &dsn, Some(SECRET)).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["outcome"], "recorded");
    assert_eq!(answer["kind"], "hard_bounce");
    assert_eq!(answer["job_id"], id.as_str());
    let j = app.wait_delivery_job(&id, "bounced").await;
    let bounced = &last_event(&j)["payload"]["DeliveryBounced"];
    assert_eq!(bounced["kind"], "hard");
    assert_eq!(
        bounced["diagnostic"],
        "550 5.1.1 <gone@example.org>: Recipient address rejected: User unknown"
    );
    assert_eq!(bounced["contact_id"], contact.to_string());
    assert_eq!(
        suppressed(&app, "gone@example.org").await,
        Some(SuppressionReason::HardBounce)
    );

    // The same DSN again (an MTA retried): answered the same, nothing more recorded.
    let after = app.event_count().await;
    let (status, _) = inbound(&app, Some(&rp), &dsn, Some(SECRET)).await;
    assert_eq!(status, 200);
    assert_eq!(
        app.event_count().await,
        after,
        "a repeated DSN records nothing"
    );

    // The bounce is on the contact's timeline.
    eventually(WAIT, "the bounce is on the contact's timeline", || async {
        timeline_types(&app, contact)
            .await
            .contains(&"DeliveryBounced".to_owned())
    })
    .await;
    // The message is listed from its send (naming the contact), not from its request.
    let types = timeline_types(&app, contact).await;
    assert!(types.contains(&"DeliverySent".to_owned()), "{types:?}");
    assert!(
        !types.contains(&"DeliveryRequested".to_owned()),
        "{types:?}"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_soft_bounce_does_not_suppress_and_a_plain_bounce_is_hard_only_with_a_permanent_code() {
    let sink = SmtpSink::start();
    let app = app_with_inbound(&sink).await;
    let t = template(&app).await;
    let (_, id, dump) = sent(&app, &sink, t, "full@example.org").await;
    let rp = return_path(&dump);
    let dsn = postfix_dsn(
        &rp,
        "full@example.org",
        "4.2.2",
        "452 4.2.2 <full@example.org>: Mailbox full",
        &format!("{id}@acme.test"),
    );
    // The recipient from the message's Delivered-To (no ?to=).
    let (status, answer) = inbound(&app, None, &dsn, Some(SECRET)).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["kind"], "soft_bounce");
    let j = app.wait_delivery_job(&id, "bounced").await;
    assert_eq!(last_event(&j)["payload"]["DeliveryBounced"]["kind"], "soft");
    assert_eq!(suppressed(&app, "full@example.org").await, None);

    // A bounce that is not RFC 3464, with a 55x code: hard.
    let (_, id2, dump2) = sent(&app, &sink, t, "old@example.org").await;
    let rp2 = return_path(&dump2);
    let plain = format!(
        "From: postmaster@old.example\r\nTo: {rp2}\r\nSubject: failure notice\r\n\r\n\
         Hi. This is the qmail-send program at old.example.\r\n\
         <old@example.org>:\r\nRemote host said: 550 Sorry, no mailbox here by that name.\r\n"
    );
    let (status, answer) = inbound(&app, Some(&rp2), &plain, Some(SECRET)).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["kind"], "hard_bounce");
    let j = app.wait_delivery_job(&id2, "bounced").await;
    assert_eq!(
        last_event(&j)["payload"]["DeliveryBounced"]["diagnostic"],
        "Remote host said: 550 Sorry, no mailbox here by that name."
    );
    assert_eq!(
        suppressed(&app, "old@example.org").await,
        Some(SuppressionReason::HardBounce)
    );
    app.stop().await;
}

#[tokio::test]
async fn forged_return_paths_are_ignored_and_bad_bodies_refused_recording_nothing() {
    let sink = SmtpSink::start();
    let app = app_with_inbound(&sink).await;
    let t = template(&app).await;
    let (_, a, dump_a) = sent(&app, &sink, t, "ann@example.org").await;
    let (_, b, _) = sent(&app, &sink, t, "bob@example.org").await;
    let rp = return_path(&dump_a);
    let tag = rp.split_once('.').unwrap().1.split_once('@').unwrap().0;
    let b_simple = b.replace('-', "");
    let forged = [
        // Job B named with job A's signature.
        format!("bounce+{b_simple}.{tag}@{BOUNCE_DOMAIN}"),
        // Job B with a made-up signature.
        format!("bounce+{b_simple}.0123456789abcdef@{BOUNCE_DOMAIN}"),
        // Unsigned.
        format!("bounce+{b_simple}@{BOUNCE_DOMAIN}"),
        // A bounce address used as an unsubscribe address.
        rp.replacen("bounce+", "unsubscribe+", 1),
        // Not ours at all.
        format!("postmaster@{BOUNCE_DOMAIN}"),
    ];
    let before = app.event_count().await;
    for to in &forged {
        let dsn = postfix_dsn(
            to,
            "bob@example.org",
            "5.1.1",
            "550 5.1.1 unknown",
            &format!("{b}@acme.test"),
        );
        let (status, answer) = inbound(&app, Some(to), &dsn, Some(SECRET)).await;
        assert_eq!(status, 202, "{to}: {answer}");
        assert_eq!(answer["outcome"], "ignored", "{to}");
        assert!(
            answer["reason"].as_str().is_some_and(|r| !r.is_empty()),
            "{answer}"
        );
    }
    // Malformed: empty, or no header fields at all.
    for body in ["", "\u{1}\u{2} not a message"] {
        let (status, problem) = inbound(&app, Some(&rp), body, Some(SECRET)).await;
        assert_eq!(status, 400, "{problem}");
        assert!(
            problem["detail"].as_str().unwrap().contains("message"),
            "{problem}"
        );
    }
    assert_eq!(app.event_count().await, before, "nothing recorded");
    assert_eq!(app.delivery_job(&a).await["state"]["status"], "sent");
    assert_eq!(app.delivery_job(&b).await["state"]["status"], "sent");
    assert_eq!(suppressed(&app, "bob@example.org").await, None);
    app.stop().await;
}

#[tokio::test]
async fn an_arf_complaint_marks_the_job_complained_and_suppresses_the_address() {
    let sink = SmtpSink::start();
    let app = app_with_inbound(&sink).await;
    let t = template(&app).await;
    let (contact, id, _) = sent(&app, &sink, t, "cross@example.org").await;
    // Sent by the feedback loop to an address of the operator's: the job is the original's,
    // found by its Message-ID.
    let fbl = format!("fbl@{BOUNCE_DOMAIN}");
    let report = arf(&fbl, &format!("{id}@acme.test"), "cross@example.org");
    let (status, answer) = inbound(&app, Some(&fbl), &report, Some(SECRET)).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["kind"], "complaint");
    let j = app.wait_delivery_job(&id, "complained").await;
    assert_eq!(
        last_event(&j)["payload"]["DeliveryComplained"]["contact_id"],
        contact.to_string()
    );
    assert_eq!(
        suppressed(&app, "cross@example.org").await,
        Some(SuppressionReason::Complaint)
    );
    // A report about a message we never sent: ignored.
    let other = arf(
        &fbl,
        &format!("{}@acme.test", Uuid::now_v7()),
        "x@example.org",
    );
    let (status, answer) = inbound(&app, Some(&fbl), &other, Some(SECRET)).await;
    assert_eq!(
        (status, &answer["outcome"]),
        (202, &json!("ignored")),
        "{answer}"
    );
    app.stop().await;
}

#[tokio::test]
async fn mail_to_the_mailto_unsubscribe_address_opts_the_contact_out() {
    let sink = SmtpSink::start();
    let app = app_with_inbound(&sink).await;
    let t = template(&app).await;
    let (contact, id, dump) = sent(&app, &sink, t, "una@example.org").await;
    let lu = list_unsubscribe(&dump);
    let mailto = lu
        .split("<mailto:")
        .nth(1)
        .unwrap()
        .trim_end_matches('>')
        .to_owned();
    // What a mail client sends for the mailto: any body, to that address.
    let mail = format!(
        "From: una@example.org\r\nTo: {mailto}\r\nSubject: unsubscribe\r\n\r\nunsubscribe\r\n"
    );
    let (status, answer) = inbound(&app, Some(&mailto), &mail, Some(SECRET)).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["kind"], "unsubscribe");
    assert_eq!(app.delivery_job(&id).await["state"]["unsubscribed"], true);
    eventually(WAIT, "the contact opted out of email", || async {
        let res = app
            .get(&format!("/api/v1/contacts/{contact}"))
            .send()
            .await
            .unwrap();
        res.json::<Value>().await.unwrap()["consent"]["email"]["status"] == "opted_out"
    })
    .await;
    app.stop().await;
}

async fn timeline_types(app: &TestApp, contact: Uuid) -> Vec<String> {
    let res = app
        .get(&format!("/api/v1/contacts/{contact}/timeline"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let page: Value = res.json().await.unwrap();
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["event_type"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn opens_and_clicks_appear_on_the_contacts_timeline() {
    // The development mailbox, and no bounce domain: List-Unsubscribe has only the https URL.
    let app = spawn_app().await;
    let t = template(&app).await;
    let (contact, _) = app
        .create_contact(json!({"email": "tim@example.org", "first_name": "Tim"}))
        .await;
    let id = app
        .send_message(json!({"template_id": t, "contact_id": contact}))
        .await;
    app.wait_delivery_job(&id, "sent").await;
    let res = app
        .get(&format!("/api/v1/dev-mailbox?job_id={id}"))
        .send()
        .await
        .unwrap();
    let got: Vec<Value> = res.json().await.unwrap();
    let raw = got[0]["raw"].as_str().unwrap();
    assert!(
        !raw.contains("mailto:"),
        "no bounce domain, no mailto: {raw}"
    );
    let html = got[0]["html"].as_str().unwrap();
    let link = |kind: &str| {
        let start = html
            .find(&format!("http://track.mauntic.test{kind}"))
            .unwrap()
            + "http://track.mauntic.test".len();
        let end = html[start..].find('"').unwrap() + start;
        html[start..end].to_owned()
    };
    let no_redirect = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let res = no_redirect
        .get(app.url(&link("/t/o/")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let res = no_redirect
        .get(app.url(&link("/t/c/")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);

    eventually(
        WAIT,
        "the open and the click are on the timeline",
        || async {
            let types = timeline_types(&app, contact).await;
            types.contains(&"DeliveryOpened".to_owned())
                && types.contains(&"DeliveryClicked".to_owned())
        },
    )
    .await;
    let res = app
        .get(&format!("/api/v1/contacts/{contact}/timeline"))
        .send()
        .await
        .unwrap();
    let page: Value = res.json().await.unwrap();
    let click = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["event_type"] == "DeliveryClicked")
        .unwrap();
    assert_eq!(click["data"]["url"], "https://acme.example/offer");
    assert_eq!(click["aggregate_type"], "delivery_job");
    app.stop().await;
}
