//! SMS, push and webhook messages along the whole path: the organization's provider
//! configured over `POST /api/v1/providers` (pointing at a fake that speaks the provider's
//! wire format), a template of the channel, `POST /api/v1/messages` to a contact, then the
//! delivery worker renders, composes and sends through that provider, and the job records
//! the outcome (sent with the provider's id, suppressed, retried, given up).

use std::time::Duration;

use mauntic_tests::fakes::{Failure, FakeFcm, FakeTwilio, FakeVonage, FakeWebhook};
use mauntic_tests::{accepted, spawn_app, TestApp};
use serde_json::{json, Map, Value};
use uuid::Uuid;

const WAIT: Duration = Duration::from_secs(20);
const SENDER: &str = "+15550001111";
const PHONE: &str = "+447700900123";
const DEVICE: &str = "fcm-token-7a6f1c0e8b3d4f2a9c5e7b1d3f5a7c9e";

/// The Twilio fake as the organization's SMS provider (sender [`SENDER`]) and an SMS
/// template greeting the contact by first name.
async fn twilio_app() -> (FakeTwilio, TestApp, Uuid) {
    let twilio = FakeTwilio::start().await;
    let app = spawn_app().await;
    configure(
        &app,
        "sms",
        "twilio",
        twilio.config(),
        &["auth_token"],
        json!({"from": SENDER}),
    )
    .await;
    let t = app
        .published_template("sms", json!({"body": "Hi {{contact.first_name}}"}))
        .await;
    (twilio, app, t)
}

/// Splits a fake's configuration into the API's `settings` and `secrets` (credentials go in
/// `secrets`), adds `extra` settings, and configures it as the organization's provider.
async fn configure(
    app: &TestApp,
    channel: &str,
    kind: &str,
    config: Value,
    secret_keys: &[&str],
    extra: Value,
) -> Uuid {
    let mut settings = Map::new();
    let mut secrets = Map::new();
    for (k, v) in config.as_object().unwrap() {
        if v.is_null() {
            continue;
        }
        if secret_keys.contains(&k.as_str()) {
            secrets.insert(k.clone(), v.clone());
        } else {
            settings.insert(k.clone(), v.clone());
        }
    }
    for (k, v) in extra.as_object().unwrap() {
        settings.insert(k.clone(), v.clone());
    }
    let body = json!({"name": format!("Our {kind}"), "channel": channel, "kind": kind,
                      "settings": settings, "secrets": secrets});
    let res = app.post("/api/v1/providers", &body).send().await.unwrap();
    assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
    accepted(res).await.0
}

fn event_types(job: &Value) -> Vec<String> {
    job["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event_type"].as_str().unwrap().to_owned())
        .collect()
}

fn last_payload(job: &Value) -> Value {
    job["events"].as_array().unwrap().last().unwrap()["payload"].clone()
}

/// The deliveries read model's detail once it shows `status`.
async fn delivery(app: &TestApp, id: &str, status: &str) -> Value {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let res = app
            .get(&format!("/api/v1/deliveries/{id}"))
            .send()
            .await
            .unwrap();
        let found: Value = if res.status() == 200 {
            res.json().await.unwrap()
        } else {
            Value::Null
        };
        if found["status"] == status {
            return found;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "delivery {id} is not listed {status:?}: {found}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

// --- SMS ---

#[tokio::test]
async fn an_sms_goes_out_through_the_organizations_twilio_rendered_for_the_contact() {
    let twilio = FakeTwilio::start().await;
    let app = spawn_app().await;
    let provider = configure(
        &app,
        "sms",
        "twilio",
        twilio.config(),
        &["auth_token"],
        json!({"from": SENDER}),
    )
    .await;
    let t = app
        .published_template(
            "sms",
            json!({"body": "Hi {{contact.first_name}}, your code is {{message.code}} ☕"}),
        )
        .await;
    let (contact, _) = app
        .create_contact(json!({"email": "zoe@example.org", "first_name": "Zoë", "phone": PHONE}))
        .await;

    let id = app
        .send_message(json!({"template_id": t, "contact_id": contact, "data": {"code": "4711"}}))
        .await;

    let j = app.wait_delivery_job(&id, "sent").await;
    assert_eq!(
        event_types(&j),
        ["DeliveryRequested", "DeliveryDispatching", "DeliverySent"]
    );
    let received = twilio.received();
    assert_eq!(received.len(), 1, "one request reached Twilio");
    let r = &received[0];
    assert_eq!(r.status, 201, "Twilio took it");
    assert_eq!(r.field("To"), Some(PHONE), "the contact's phone");
    assert_eq!(
        r.field("From"),
        Some(SENDER),
        "the provider's sender number"
    );
    assert_eq!(r.field("Body"), Some("Hi Zoë, your code is 4711 ☕"));

    let d = delivery(&app, &id, "sent").await;
    assert_eq!(d["channel"], "sms");
    assert_eq!(d["provider"], format!("twilio:{provider}"));
    assert_eq!(
        d["provider_message_id"],
        format!("SM{:032x}", 1),
        "the sid Twilio answered"
    );
    assert_eq!(d["attempts"], 1);
    app.stop().await;
}

#[tokio::test]
async fn an_sms_through_vonage_carries_the_number_without_plus_and_the_jobs_reference() {
    let vonage = FakeVonage::start().await;
    let app = spawn_app().await;
    configure(
        &app,
        "sms",
        "vonage",
        vonage.config(),
        &["api_secret", "api_key"],
        json!({"from": SENDER}),
    )
    .await;
    let t = app
        .published_template("sms", json!({"body": "Hello {{contact.first_name}}"}))
        .await;
    let (contact, _) = app
        .create_contact(json!({"email": "ada@example.org", "first_name": "Ada", "phone": PHONE}))
        .await;

    let id = app
        .send_message(json!({"template_id": t, "contact_id": contact}))
        .await;

    app.wait_delivery_job(&id, "sent").await;
    let r = &vonage.received()[0];
    assert_eq!(r.field("to"), Some("447700900123"));
    assert_eq!(r.field("from"), Some("15550001111"));
    assert_eq!(r.field("text"), Some("Hello Ada"));
    assert_eq!(r.field("client-ref"), Some(id.as_str()));
    let d = delivery(&app, &id, "sent").await;
    assert_eq!(d["provider_message_id"], "FAKE0000000000001");
    app.stop().await;
}

#[tokio::test]
async fn an_sms_to_a_contact_without_a_phone_is_suppressed_and_says_so() {
    let (twilio, app, t) = twilio_app().await;
    let (contact, _) = app
        .create_contact(json!({"email": "nophone@example.org", "first_name": "Nils"}))
        .await;

    let id = app
        .send_message(json!({"template_id": t, "contact_id": contact}))
        .await;

    let j = app.wait_delivery_job(&id, "suppressed").await;
    assert_eq!(
        last_payload(&j)["DeliverySuppressed"]["reason"],
        json!({"kind": "no_address"})
    );
    let d = delivery(&app, &id, "suppressed").await;
    assert_eq!(d["reason"]["kind"], "no_address", "{d}");
    assert!(twilio.received().is_empty(), "nothing reached Twilio");
    app.stop().await;
}

#[tokio::test]
async fn an_sms_twilio_throttles_is_retried_after_the_delay_it_asked_for_and_then_sent() {
    let (twilio, app, t) = twilio_app().await;
    let (contact, _) = app
        .create_contact(json!({"email": "busy@example.org", "first_name": "Bo", "phone": PHONE}))
        .await;
    twilio.fail_next(
        1,
        Failure::Throttle {
            retry_after: Some(Duration::from_secs(1)),
        },
    );

    let id = app
        .send_message(json!({"template_id": t, "contact_id": contact}))
        .await;

    // Failed for now, due again: not given up.
    let j = app.wait_delivery_job(&id, "failed").await;
    let failed = &last_payload(&j)["DeliveryAttemptFailed"];
    assert!(
        failed["error"].as_str().unwrap().contains("429"),
        "{failed}"
    );
    let recorded: chrono::DateTime<chrono::Utc> = j["events"].as_array().unwrap().last().unwrap()
        ["recorded_at"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let retry_at: chrono::DateTime<chrono::Utc> =
        failed["retry_at"].as_str().unwrap().parse().unwrap();
    assert!(
        retry_at >= recorded + chrono::Duration::milliseconds(900),
        "no sooner than Retry-After: {retry_at} vs {recorded}"
    );

    // Then sent on the second attempt.
    let j = app.wait_delivery_job(&id, "sent").await;
    assert_eq!(
        event_types(&j),
        [
            "DeliveryRequested",
            "DeliveryDispatching",
            "DeliveryAttemptFailed",
            "DeliveryDispatching",
            "DeliverySent"
        ]
    );
    let statuses: Vec<u16> = twilio.received().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [429, 201]);
    let d = delivery(&app, &id, "sent").await;
    assert_eq!(d["attempts"], 2);
    assert_eq!(d["provider_message_id"], format!("SM{:032x}", 1));
    app.stop().await;
}

// --- Push ---

async fn push_setup(app: &TestApp, fcm: &FakeFcm) -> Uuid {
    let res = app
        .post(
            "/api/v1/fields",
            &json!({"key": "push_token", "label": "Push token", "type": "text"}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
    configure(
        app,
        "push",
        "fcm",
        fcm.config(),
        &["service_account"],
        json!({}),
    )
    .await;
    app.published_template("push",
        json!({"title": "{{contact.first_name}}, your order shipped",
               "body": "Arrives {{message.day}}",
               "data": {"order": "{{message.order}}", "deep_link": "acme://orders/{{message.order}}"}}),
    )
    .await
}

#[tokio::test]
async fn a_push_goes_out_through_the_organizations_fcm_rendered_for_the_contact() {
    let fcm = FakeFcm::start().await;
    let app = spawn_app().await;
    let t = push_setup(&app, &fcm).await;
    let (contact, _) = app
        .create_contact(json!({"email": "zoe@example.org", "first_name": "Zoë",
                               "fields": {"push_token": DEVICE}}))
        .await;

    let id = app
        .send_message(json!({"template_id": t, "contact_id": contact,
               "data": {"day": "Thursday", "order": "A-1042"}}))
        .await;

    app.wait_delivery_job(&id, "sent").await;
    let token = &fcm.token_requests()[0];
    assert_eq!(
        token.status, 200,
        "the fake verified the service account's assertion"
    );
    let r = &fcm.received()[0];
    assert_eq!(r.uri, "/v1/projects/acme-fake-app/messages:send");
    assert_eq!(r.header("authorization"), Some("Bearer ya29.fake-00000001"));
    assert_eq!(
        r.json(),
        json!({"message": {
            "token": DEVICE,
            "notification": {"title": "Zoë, your order shipped", "body": "Arrives Thursday"},
            "data": {"deep_link": "acme://orders/A-1042", "order": "A-1042"},
        }})
    );
    let d = delivery(&app, &id, "sent").await;
    assert_eq!(d["channel"], "push");
    assert_eq!(
        d["provider_message_id"],
        "projects/acme-fake-app/messages/0:0000000000000001%fakefcm"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_push_to_a_token_fcm_no_longer_knows_is_given_up_and_the_token_suppressed() {
    let fcm = FakeFcm::start().await;
    let app = spawn_app().await;
    let t = push_setup(&app, &fcm).await;
    let (contact, _) = app
        .create_contact(json!({"email": "gone@example.org", "first_name": "Gus",
                               "fields": {"push_token": DEVICE}}))
        .await;
    fcm.unregister(DEVICE);

    let id = app
        .send_message(json!({"template_id": t, "contact_id": contact,
               "data": {"day": "Friday", "order": "B-7"}}))
        .await;

    let j = app.wait_delivery_job(&id, "given_up").await;
    let error = last_payload(&j)["DeliveryGivenUp"]["error"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(error.contains("UNREGISTERED"), "{error}");
    assert_eq!(
        event_types(&j),
        [
            "DeliveryRequested",
            "DeliveryDispatching",
            "DeliveryGivenUp"
        ],
        "a permanent failure is not retried"
    );
    assert_eq!(fcm.received().len(), 1);
    let d = delivery(&app, &id, "given_up").await;
    assert!(d["reason"].to_string().contains("UNREGISTERED"), "{d}");

    // The token is on the suppression list, as a hard bounce naming the job...
    let push_list = "/api/v1/suppressions?channel=push";
    mauntic_tests::eventually(WAIT, "the token is suppressed", || {
        let req = app.get(push_list);
        async move {
            let listed: Value = req.send().await.unwrap().json().await.unwrap();
            listed["items"].as_array().is_some_and(|a| !a.is_empty())
        }
    })
    .await;
    let listed: Value = app
        .get(push_list)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let entry = &listed["items"][0];
    assert_eq!(entry["address"], DEVICE, "{listed}");
    assert_eq!(entry["reason"], "hard_bounce", "{listed}");
    // ...so the next message to it never reaches FCM.
    let again = app
        .send_message(json!({"template_id": t, "contact_id": contact}))
        .await;
    let j = app.wait_delivery_job(&again, "suppressed").await;
    assert_eq!(
        last_payload(&j)["DeliverySuppressed"]["reason"]["kind"],
        "suppressed_address"
    );
    assert_eq!(fcm.received().len(), 1, "nothing more reached FCM");
    app.stop().await;
}

// --- Webhook ---

#[tokio::test]
async fn a_webhook_message_is_sent_with_its_method_url_headers_and_body_rendered() {
    let receiver = FakeWebhook::start(Some("whsec_fake")).await;
    let app = spawn_app().await;
    let provider = configure(
        &app,
        "webhook",
        "webhook",
        receiver.config(),
        &["secret"],
        json!({}),
    )
    .await;
    let t = app
        .published_template(
            "webhook",
            json!({"method": "PUT",
               "url": receiver.url("/hooks/{{message.kind}}?email={{url_encode contact.email}}"),
               "headers": {"Content-Type": "application/json", "X-Contact": "{{contact.email}}"},
               "body": "{\"event\":\"{{message.kind}}\",\"name\":\"{{contact.first_name}}\"}"}),
        )
        .await;
    let (contact, _) = app
        .create_contact(json!({"email": "zoe+hooks@example.org", "first_name": "Zoë"}))
        .await;

    let id = app
        .send_message(
            json!({"template_id": t, "contact_id": contact, "data": {"kind": "order.shipped"}}),
        )
        .await;

    app.wait_delivery_job(&id, "sent").await;
    let received = receiver.received();
    assert_eq!(received.len(), 1);
    let r = &received[0];
    assert_eq!(r.status, 200);
    assert_eq!(r.method, "PUT");
    assert_eq!(
        r.uri,
        "/hooks/order.shipped?email=zoe%2Bhooks%40example.org"
    );
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.header("x-contact"), Some("zoe+hooks@example.org"));
    assert_eq!(
        String::from_utf8_lossy(&r.body),
        r#"{"event":"order.shipped","name":"Zoë"}"#
    );
    assert_eq!(r.header("idempotency-key"), Some(id.as_str()));
    assert_eq!(
        receiver.verify(r),
        Ok(()),
        "signed with the provider's secret"
    );
    let d = delivery(&app, &id, "sent").await;
    assert_eq!(d["channel"], "webhook");
    assert_eq!(d["provider"], format!("webhook:{provider}"));
    assert_eq!(d["provider_message_id"], id.as_str());
    app.stop().await;
}

#[tokio::test]
async fn an_sms_may_name_its_own_sender_number_and_a_bad_one_is_refused_whole() {
    let twilio = FakeTwilio::start().await;
    let app = spawn_app().await;
    configure(
        &app,
        "sms",
        "twilio",
        twilio.config(),
        &["auth_token"],
        json!({"from": SENDER}),
    )
    .await;
    let t = app
        .published_template("sms", json!({"body": "Your parcel is here"}))
        .await;

    let before = app.event_count().await;
    for bad in ["news@acme.test", "+12", "TOO LONG SENDER"] {
        let res = app
            .post(
                "/api/v1/messages",
                &json!({"template_id": t, "to": PHONE, "from": {"address": bad}}),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 422, "{bad}");
        let problem: Value = res.json().await.unwrap();
        assert!(problem.to_string().contains("from.address"), "{problem}");
    }
    assert_eq!(app.event_count().await, before, "nothing was written");

    let id = app
        .send_message(json!({"template_id": t, "to": PHONE, "from": {"address": "+15559998888"}}))
        .await;
    app.wait_delivery_job(&id, "sent").await;
    let r = &twilio.received()[0];
    assert_eq!(r.field("From"), Some("+15559998888"), "the message's own");
    assert_eq!(r.field("To"), Some(PHONE));
    assert_eq!(r.field("Body"), Some("Your parcel is here"));
    app.stop().await;
}
