//! SMS, push and webhook providers against the fakes of `mauntic_tests::fakes`, which speak
//! each provider's documented wire format, check its authentication (FCM's assertion and APNs'
//! provider token against the public half of keys made for the test) and answer its errors.
//! No database: these test `workers::delivery::providers` on their own.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use base64::Engine as _;
use mauntic_tests::fakes::{
    Failure, FakeApns, FakeFcm, FakePlivo, FakeTelnyx, FakeTwilio, FakeVonage, FakeWebhook,
};
use serde_json::json;
use uuid::Uuid;
use workers::delivery::message::{Message, Push, Sms, Webhook};
use workers::delivery::provider::{Provider, SendError};
use workers::delivery::providers::build;

const FROM: &str = "+15550001111";
const TO: &str = "+447700900123";
const TEXT: &str = "Bonjour Zoë, -20% aujourd’hui seulement ☕";
const DEVICE: &str = "7a6f1c0e8b3d4f2a9c5e7b1d3f5a7c9e0b2d4f6a8c0e2b4d6f8a0c2e4b6d8f0a";

fn sms() -> Sms {
    Sms {
        job_id: Uuid::new_v4(),
        from: FROM.into(),
        to: TO.into(),
        body: TEXT.into(),
    }
}

fn push() -> Push {
    Push {
        job_id: Uuid::new_v4(),
        token: DEVICE.into(),
        title: "Zoë, ta commande est partie 📦".into(),
        body: "Livraison prévue jeudi".into(),
        data: BTreeMap::from([
            ("order".to_owned(), "A-1042".to_owned()),
            ("deep_link".to_owned(), "acme://orders/A-1042".to_owned()),
        ]),
    }
}

async fn send(provider: &dyn Provider, message: Message) -> Result<String, SendError> {
    provider.send(&message).await.map(|s| s.provider_message_id)
}

fn basic(user: &str, password: &str) -> String {
    let credentials =
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    format!("Basic {credentials}")
}

/// 429 (or the provider's own throttle) → transient with `retry_after`, a server error →
/// transient, the provider's refusal → permanent carrying its message; then a send goes
/// through again.
async fn assert_error_mapping(
    provider: &dyn Provider,
    message: impl Fn() -> Message,
    fail_next: impl Fn(Failure),
    retry_after: Option<Duration>,
) {
    fail_next(Failure::Throttle {
        retry_after: Some(Duration::from_secs(7)),
    });
    let throttled = send(provider, message()).await;
    assert!(
        matches!(&throttled, Err(SendError::Transient { retry_after: r, .. }) if *r == retry_after),
        "{throttled:?}"
    );

    fail_next(Failure::ServerError);
    let failed = send(provider, message()).await;
    assert!(
        matches!(&failed, Err(SendError::Transient { .. })),
        "{failed:?}"
    );

    fail_next(Failure::Rejected {
        message: "The destination number is unreachable".into(),
    });
    let rejected = send(provider, message()).await;
    assert!(
        matches!(&rejected, Err(SendError::Permanent { reason }) if reason.contains("The destination number is unreachable")),
        "{rejected:?}"
    );

    let again = send(provider, message()).await;
    assert!(again.is_ok(), "{again:?}");
}

/// A request the provider got and never answered (config timeout 1 s, a 3 s hang) may have
/// gone through: outcome unknown, never a retry.
async fn assert_hang_is_unknown(provider: &dyn Provider, message: Message, hang: impl Fn(Failure)) {
    hang(Failure::Hang(Duration::from_secs(3)));
    let started = Instant::now();
    let result = send(provider, message).await;
    assert!(
        matches!(&result, Err(SendError::Unknown { reason }) if reason.contains("timed out")),
        "{result:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(3));
}

fn with_timeout(mut config: serde_json::Value, secs: u64) -> serde_json::Value {
    config["timeout_secs"] = secs.into();
    config
}

// --- Twilio ---

#[tokio::test]
async fn twilio_posts_the_messages_form_with_basic_auth_and_returns_the_sid() {
    let twilio = FakeTwilio::start().await;
    let provider = build("twilio", &twilio.config()).unwrap();
    let message = sms();

    let id = send(provider.as_ref(), Message::Sms(message.clone()))
        .await
        .unwrap();

    let r = &twilio.received()[0];
    assert_eq!(r.status, 201);
    assert_eq!(
        r.uri,
        "/2010-04-01/Accounts/AC00000000000000000000000000fake/Messages.json"
    );
    assert_eq!(
        r.header("authorization"),
        Some(basic("AC00000000000000000000000000fake", "fake-twilio-auth-token").as_str())
    );
    assert_eq!(
        r.header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    assert_eq!(r.field("To"), Some(TO));
    assert_eq!(r.field("From"), Some(FROM));
    assert_eq!(r.field("Body"), Some(TEXT));
    assert_eq!(id, format!("SM{:032x}", 1), "the sid Twilio answered");
}

#[tokio::test]
async fn twilio_maps_throttling_server_errors_rejections_and_a_bad_token() {
    let twilio = FakeTwilio::start().await;
    let provider = build("twilio", &twilio.config()).unwrap();
    let message = || Message::Sms(sms());
    assert_error_mapping(
        provider.as_ref(),
        message,
        |f| twilio.fail_next(1, f),
        Some(Duration::from_secs(7)),
    )
    .await;

    let mut config = twilio.config();
    config["auth_token"] = "revoked".into();
    let bad = send(build("twilio", &config).unwrap().as_ref(), message()).await;
    assert!(
        matches!(&bad, Err(SendError::Permanent { reason }) if reason.contains("401") && reason.contains("Authenticate (code 20003)")),
        "{bad:?}"
    );

    let mut invalid = sms();
    invalid.to = "07700 900123".into();
    let refused = send(provider.as_ref(), Message::Sms(invalid)).await;
    assert!(
        matches!(&refused, Err(SendError::Permanent { reason }) if reason.contains("code 21211")),
        "{refused:?}"
    );
}

#[tokio::test]
async fn twilio_timeouts_leave_the_outcome_unknown() {
    let twilio = FakeTwilio::start().await;
    let provider = build("twilio", &with_timeout(twilio.config(), 1)).unwrap();
    assert_hang_is_unknown(provider.as_ref(), Message::Sms(sms()), |f| {
        twilio.fail_next(1, f)
    })
    .await;
}

// --- Vonage ---

#[tokio::test]
async fn vonage_posts_its_key_and_secret_numbers_without_plus_and_unicode_text() {
    let vonage = FakeVonage::start().await;
    let provider = build("vonage", &vonage.config()).unwrap();
    let message = sms();

    let id = send(provider.as_ref(), Message::Sms(message.clone()))
        .await
        .unwrap();

    let r = &vonage.received()[0];
    assert_eq!(r.uri, "/sms/json");
    assert_eq!(r.field("api_key"), Some("fakekey1"));
    assert_eq!(r.field("api_secret"), Some("fake-vonage-secret"));
    assert_eq!(r.field("from"), Some("15550001111"));
    assert_eq!(r.field("to"), Some("447700900123"));
    assert_eq!(r.field("text"), Some(TEXT));
    assert_eq!(r.field("type"), Some("unicode"), "☕ is not GSM-7");
    assert_eq!(
        r.field("client-ref"),
        Some(message.job_id.to_string().as_str())
    );
    assert_eq!(id, "FAKE0000000000001", "the message-id Vonage answered");
}

#[tokio::test]
async fn vonage_sends_a_long_gsm_text_in_parts_and_keeps_the_first_id() {
    let vonage = FakeVonage::start().await;
    let provider = build("vonage", &vonage.config()).unwrap();
    let mut message = sms();
    message.body = "Promo! ".repeat(30);

    let id = send(provider.as_ref(), Message::Sms(message))
        .await
        .unwrap();

    assert_eq!(vonage.received()[0].field("type"), Some("text"));
    assert_eq!(id, "FAKE0000000000001");
}

#[tokio::test]
async fn vonage_maps_its_status_codes_in_a_200_answer() {
    let vonage = FakeVonage::start().await;
    let provider = build("vonage", &vonage.config()).unwrap();
    let message = || Message::Sms(sms());
    // Status 1 names no delay; Vonage's limit is per second.
    assert_error_mapping(
        provider.as_ref(),
        message,
        |f| vonage.fail_next(1, f),
        Some(Duration::from_secs(1)),
    )
    .await;
    assert!(vonage.received().iter().all(|r| r.status == 200));

    let mut config = vonage.config();
    config["api_secret"] = "wrong".into();
    let bad = send(build("vonage", &config).unwrap().as_ref(), message()).await;
    assert!(
        matches!(&bad, Err(SendError::Permanent { reason }) if reason.contains("status 4: Bad Credentials")),
        "{bad:?}"
    );
}

#[tokio::test]
async fn vonage_timeouts_leave_the_outcome_unknown() {
    let vonage = FakeVonage::start().await;
    let provider = build("vonage", &with_timeout(vonage.config(), 1)).unwrap();
    assert_hang_is_unknown(provider.as_ref(), Message::Sms(sms()), |f| {
        vonage.fail_next(1, f)
    })
    .await;
}

// --- Plivo ---

#[tokio::test]
async fn plivo_posts_json_with_basic_auth_and_returns_the_first_message_uuid() {
    let plivo = FakePlivo::start().await;
    let provider = build("plivo", &plivo.config()).unwrap();

    let id = send(provider.as_ref(), Message::Sms(sms())).await.unwrap();

    let r = &plivo.received()[0];
    assert_eq!(r.status, 202);
    assert_eq!(r.uri, "/v1/Account/MAFAKEPLIVO0000000000/Message/");
    assert_eq!(
        r.header("authorization"),
        Some(basic("MAFAKEPLIVO0000000000", "fake-plivo-auth-token").as_str())
    );
    assert_eq!(r.json(), json!({"src": FROM, "dst": TO, "text": TEXT}));
    assert_eq!(id, "00000000-fake-plivo-0000-000000000001");
}

#[tokio::test]
async fn plivo_maps_throttling_server_errors_rejections_and_a_bad_token() {
    let plivo = FakePlivo::start().await;
    let provider = build("plivo", &plivo.config()).unwrap();
    let message = || Message::Sms(sms());
    assert_error_mapping(
        provider.as_ref(),
        message,
        |f| plivo.fail_next(1, f),
        Some(Duration::from_secs(7)),
    )
    .await;

    let mut config = plivo.config();
    config["auth_token"] = "wrong".into();
    let bad = send(build("plivo", &config).unwrap().as_ref(), message()).await;
    assert!(
        matches!(&bad, Err(SendError::Permanent { reason }) if reason.contains("Authentication credentials invalid")),
        "{bad:?}"
    );
}

#[tokio::test]
async fn plivo_timeouts_leave_the_outcome_unknown() {
    let plivo = FakePlivo::start().await;
    let provider = build("plivo", &with_timeout(plivo.config(), 1)).unwrap();
    assert_hang_is_unknown(provider.as_ref(), Message::Sms(sms()), |f| {
        plivo.fail_next(1, f)
    })
    .await;
}

// --- Telnyx ---

#[tokio::test]
async fn telnyx_posts_json_with_its_bearer_key_and_returns_data_id() {
    let telnyx = FakeTelnyx::start().await;
    let provider = build("telnyx", &telnyx.config()).unwrap();

    let id = send(provider.as_ref(), Message::Sms(sms())).await.unwrap();

    let r = &telnyx.received()[0];
    assert_eq!(r.status, 200);
    assert_eq!(r.uri, "/v2/messages");
    assert_eq!(
        r.header("authorization"),
        Some("Bearer KEY0FAKETELNYX_abcdef")
    );
    assert_eq!(r.json(), json!({"from": FROM, "to": TO, "text": TEXT}));
    assert_eq!(id, "40317f00-fake-telnyx-0000-000000000001");
}

#[tokio::test]
async fn telnyx_maps_throttling_server_errors_rejections_and_a_bad_key() {
    let telnyx = FakeTelnyx::start().await;
    let provider = build("telnyx", &telnyx.config()).unwrap();
    let message = || Message::Sms(sms());
    assert_error_mapping(
        provider.as_ref(),
        message,
        |f| telnyx.fail_next(1, f),
        Some(Duration::from_secs(7)),
    )
    .await;

    let mut config = telnyx.config();
    config["api_key"] = "KEY-revoked".into();
    let bad = send(build("telnyx", &config).unwrap().as_ref(), message()).await;
    assert!(
        matches!(&bad, Err(SendError::Permanent { reason }) if reason.contains("The API key looks malformed") && reason.contains("code 10009")),
        "{bad:?}"
    );
}

#[tokio::test]
async fn telnyx_timeouts_leave_the_outcome_unknown() {
    let telnyx = FakeTelnyx::start().await;
    let provider = build("telnyx", &with_timeout(telnyx.config(), 1)).unwrap();
    assert_hang_is_unknown(provider.as_ref(), Message::Sms(sms()), |f| {
        telnyx.fail_next(1, f)
    })
    .await;
}

// --- FCM ---

#[tokio::test]
async fn fcm_exchanges_a_signed_assertion_for_a_token_then_sends_the_message() {
    let fcm = FakeFcm::start().await;
    let provider = build("fcm", &fcm.config()).unwrap();
    let message = push();

    let id = send(provider.as_ref(), Message::Push(message.clone()))
        .await
        .unwrap();

    let token = &fcm.token_requests()[0];
    assert_eq!(token.status, 200, "the fake verified the assertion");
    assert_eq!(
        token.field("grant_type"),
        Some("urn:ietf:params:oauth:grant-type:jwt-bearer")
    );
    let r = &fcm.received()[0];
    assert_eq!(r.uri, "/v1/projects/acme-fake-app/messages:send");
    assert_eq!(r.header("authorization"), Some("Bearer ya29.fake-00000001"));
    assert_eq!(
        r.json(),
        json!({"message": {
            "token": DEVICE,
            "notification": {"title": message.title, "body": message.body},
            "data": {"deep_link": "acme://orders/A-1042", "order": "A-1042"},
        }})
    );
    assert_eq!(
        id,
        "projects/acme-fake-app/messages/0:0000000000000001%fakefcm"
    );
}

#[tokio::test]
async fn fcm_keeps_its_access_token_and_fetches_it_once_for_concurrent_sends() {
    let fcm = FakeFcm::start().await;
    let provider = build("fcm", &fcm.config()).unwrap();

    let first =
        futures::future::join_all((0..4).map(|_| send(provider.as_ref(), Message::Push(push()))))
            .await;
    let second = send(provider.as_ref(), Message::Push(push())).await;

    assert!(first.iter().all(Result::is_ok), "{first:?}");
    assert!(second.is_ok(), "{second:?}");
    assert_eq!(fcm.token_requests().len(), 1, "one token for five sends");
    assert!(fcm
        .received()
        .iter()
        .all(|r| r.header("authorization") == Some("Bearer ya29.fake-00000001")));
}

#[tokio::test]
async fn fcm_drops_a_refused_access_token_and_the_next_send_gets_a_new_one() {
    let fcm = FakeFcm::start().await;
    let provider = build("fcm", &fcm.config()).unwrap();
    assert!(send(provider.as_ref(), Message::Push(push())).await.is_ok());

    fcm.revoke_tokens();
    let refused = send(provider.as_ref(), Message::Push(push())).await;
    let again = send(provider.as_ref(), Message::Push(push())).await;

    assert!(
        matches!(&refused, Err(SendError::Transient { reason, .. }) if reason.contains("UNAUTHENTICATED")),
        "{refused:?}"
    );
    assert!(again.is_ok(), "{again:?}");
    assert_eq!(fcm.token_requests().len(), 2);
    assert_eq!(
        fcm.received().last().unwrap().header("authorization"),
        Some("Bearer ya29.fake-00000002")
    );
}

#[tokio::test]
async fn fcm_maps_quota_unavailable_invalid_argument_and_unregistered() {
    let fcm = FakeFcm::start().await;
    let provider = build("fcm", &fcm.config()).unwrap();
    assert_error_mapping(
        provider.as_ref(),
        || Message::Push(push()),
        |f| fcm.fail_next(1, f),
        Some(Duration::from_secs(7)),
    )
    .await;
    let statuses: Vec<u16> = fcm.received().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [429, 503, 400, 200]);

    fcm.unregister(DEVICE);
    let gone = send(provider.as_ref(), Message::Push(push())).await;
    assert!(
        matches!(&gone, Err(SendError::Unreachable { reason }) if reason.contains("UNREGISTERED: Requested entity was not found.")),
        "{gone:?}"
    );
}

#[tokio::test]
async fn fcm_refuses_an_assertion_signed_with_another_key_and_sends_nothing() {
    use rsa::pkcs8::EncodePrivateKey;
    let fcm = FakeFcm::start().await;
    let other = rsa::RsaPrivateKey::new(&mut rand::thread_rng(), 2048).unwrap();
    let mut config = fcm.config();
    config["service_account"]["private_key"] = other
        .to_pkcs8_pem(rsa::pkcs8::LineEnding::LF)
        .unwrap()
        .to_string()
        .into();
    let provider = build("fcm", &config).unwrap();

    let result = send(provider.as_ref(), Message::Push(push())).await;

    assert!(
        matches!(&result, Err(SendError::Permanent { reason }) if reason.contains("invalid_grant") && reason.contains("InvalidSignature")),
        "{result:?}"
    );
    assert_eq!(fcm.token_requests()[0].status, 400);
    assert!(fcm.received().is_empty());
}

#[tokio::test]
async fn fcm_a_token_exchange_that_hangs_is_transient_a_send_that_hangs_unknown() {
    let fcm = FakeFcm::start().await;
    let provider = build("fcm", &with_timeout(fcm.config(), 1)).unwrap();

    fcm.fail_next_token(1, Failure::Hang(Duration::from_secs(3)));
    let exchange = send(provider.as_ref(), Message::Push(push())).await;

    // Nothing was sent while the token was awaited: worth another try.
    assert!(
        matches!(&exchange, Err(SendError::Transient { reason, .. }) if reason.contains("fcm oauth timed out")),
        "{exchange:?}"
    );
    assert!(fcm.received().is_empty());
    assert_hang_is_unknown(provider.as_ref(), Message::Push(push()), |f| {
        fcm.fail_next(1, f)
    })
    .await;
}

// --- APNs ---

#[tokio::test]
async fn apns_posts_over_http2_with_its_provider_token_topic_and_the_job_as_apns_id() {
    let apns = FakeApns::start().await;
    let provider = build("apns", &apns.config()).unwrap();
    let message = push();

    let id = send(provider.as_ref(), Message::Push(message.clone()))
        .await
        .unwrap();

    let r = &apns.received()[0];
    assert_eq!(
        r.status, 200,
        "HTTP/2 and a provider token the fake verified"
    );
    assert_eq!(r.uri, format!("/3/device/{DEVICE}"));
    assert_eq!(r.header("apns-topic"), Some("com.acme.fake-app"));
    assert_eq!(r.header("apns-push-type"), Some("alert"));
    assert_eq!(
        r.header("apns-id"),
        Some(message.job_id.to_string().as_str())
    );
    assert!(r.header("authorization").unwrap().starts_with("bearer ey"));
    assert_eq!(
        r.json(),
        json!({
            "aps": {"alert": {"title": message.title, "body": message.body}},
            "deep_link": "acme://orders/A-1042",
            "order": "A-1042",
        })
    );
    assert_eq!(id, message.job_id.to_string(), "the apns-id APNs answered");
}

#[tokio::test]
async fn apns_reuses_its_provider_token() {
    let apns = FakeApns::start().await;
    let provider = build("apns", &apns.config()).unwrap();

    for _ in 0..3 {
        send(provider.as_ref(), Message::Push(push()))
            .await
            .unwrap();
    }

    let tokens = apns.provider_tokens();
    assert_eq!(tokens.len(), 3);
    assert!(tokens.iter().all(|t| t == &tokens[0]), "one token, reused");
}

#[tokio::test]
async fn apns_maps_too_many_requests_unavailable_bad_device_token_and_unregistered() {
    let apns = FakeApns::start().await;
    let provider = build("apns", &apns.config()).unwrap();
    assert_error_mapping(
        provider.as_ref(),
        || Message::Push(push()),
        |f| apns.fail_next(1, f),
        Some(Duration::from_secs(7)),
    )
    .await;
    let statuses: Vec<u16> = apns.received().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [429, 503, 400, 200]);

    let mut short = push();
    short.token = "abcdef".into();
    let bad = send(provider.as_ref(), Message::Push(short)).await;
    assert!(
        matches!(&bad, Err(SendError::Permanent { reason }) if reason.contains("400") && reason.contains("BadDeviceToken")),
        "{bad:?}"
    );

    apns.unregister(DEVICE);
    let gone = send(provider.as_ref(), Message::Push(push())).await;
    assert!(
        matches!(&gone, Err(SendError::Unreachable { reason }) if reason.contains("410") && reason.contains("Unregistered")),
        "{gone:?}"
    );
}

#[tokio::test]
async fn apns_refuses_a_device_token_that_is_not_hex_before_any_request() {
    let apns = FakeApns::start().await;
    let provider = build("apns", &apns.config()).unwrap();
    let mut message = push();
    message.token = "../../1/admin".into();

    let result = send(provider.as_ref(), Message::Push(message)).await;

    assert!(
        matches!(&result, Err(SendError::Permanent { reason }) if reason.contains("not hexadecimal")),
        "{result:?}"
    );
    assert!(apns.received().is_empty());
}

#[tokio::test]
async fn apns_timeouts_leave_the_outcome_unknown() {
    let apns = FakeApns::start().await;
    let provider = build("apns", &with_timeout(apns.config(), 1)).unwrap();
    assert_hang_is_unknown(provider.as_ref(), Message::Push(push()), |f| {
        apns.fail_next(1, f)
    })
    .await;
}

// --- Webhooks ---

fn hook(url: String) -> Webhook {
    Webhook {
        job_id: Uuid::new_v4(),
        method: "put".into(),
        url,
        headers: vec![
            ("Content-Type".into(), "application/json".into()),
            ("X-Acme-Tenant".into(), "acme".into()),
        ],
        body: r#"{"event":"order.shipped","contact":{"first_name":"Zoë"}}"#.into(),
    }
}

#[tokio::test]
async fn a_webhook_sends_the_request_as_rendered_with_its_idempotency_key_and_signature() {
    let receiver = FakeWebhook::start(Some("whsec_fake")).await;
    let provider = build("webhook", &receiver.config()).unwrap();
    let message = hook(receiver.url("/hooks/orders?v=2"));

    let id = send(provider.as_ref(), Message::Webhook(message.clone()))
        .await
        .unwrap();

    let r = &receiver.received()[0];
    assert_eq!(r.status, 200);
    assert_eq!(r.method, "PUT");
    assert_eq!(r.uri, "/hooks/orders?v=2");
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.header("x-acme-tenant"), Some("acme"));
    assert_eq!(r.body, message.body.as_bytes());
    assert_eq!(
        r.header("idempotency-key"),
        Some(message.job_id.to_string().as_str())
    );
    assert_eq!(receiver.verify(r), Ok(()));
    assert_eq!(id, message.job_id.to_string());
    assert!(!provider.deduplicates());
}

#[tokio::test]
async fn a_webhook_signed_with_another_secret_is_refused_by_the_receiver() {
    let receiver = FakeWebhook::start(Some("whsec_fake")).await;
    let mut config = receiver.config();
    config["secret"] = "whsec_other".into();
    let provider = build("webhook", &config).unwrap();

    let result = send(
        provider.as_ref(),
        Message::Webhook(hook(receiver.url("/hooks"))),
    )
    .await;

    assert!(
        matches!(&result, Err(SendError::Permanent { reason }) if reason.contains("401") && reason.contains("signature mismatch")),
        "{result:?}"
    );
    assert!(receiver.verify(&receiver.received()[0]).is_err());
}

#[tokio::test]
async fn a_webhook_without_a_secret_is_not_signed() {
    let receiver = FakeWebhook::start(None).await;
    let provider = build("webhook", &receiver.config()).unwrap();

    send(
        provider.as_ref(),
        Message::Webhook(hook(receiver.url("/h"))),
    )
    .await
    .unwrap();

    assert_eq!(receiver.received()[0].header("x-mauntic-signature"), None);
}

#[tokio::test]
async fn a_webhook_to_plain_http_is_refused_unless_allowed() {
    let receiver = FakeWebhook::start(None).await;
    let refusing = build("webhook", &json!({})).unwrap();
    let allowing = build("webhook", &json!({"allow_http": true})).unwrap();

    let refused = send(
        refusing.as_ref(),
        Message::Webhook(hook(receiver.url("/h"))),
    )
    .await;
    assert!(
        matches!(&refused, Err(SendError::Permanent { reason }) if reason.contains("HTTPS required")),
        "{refused:?}"
    );
    assert!(receiver.received().is_empty());

    let allowed = send(
        allowing.as_ref(),
        Message::Webhook(hook(receiver.url("/h"))),
    )
    .await;
    assert!(allowed.is_ok(), "{allowed:?}");
    assert_eq!(receiver.received().len(), 1);
}

#[tokio::test]
async fn a_webhook_maps_throttling_server_errors_refusals_and_hangs() {
    let receiver = FakeWebhook::start(Some("whsec_fake")).await;
    let provider = build("webhook", &receiver.config()).unwrap();
    let url = receiver.url("/hooks");
    assert_error_mapping(
        provider.as_ref(),
        || Message::Webhook(hook(url.clone())),
        |f| receiver.fail_next(1, f),
        Some(Duration::from_secs(7)),
    )
    .await;

    let mut config = receiver.config();
    config["timeout_ms"] = 500.into();
    let impatient = build("webhook", &config).unwrap();
    assert_hang_is_unknown(
        impatient.as_ref(),
        Message::Webhook(hook(url.clone())),
        |f| receiver.fail_next(1, f),
    )
    .await;
}

#[tokio::test]
async fn a_webhook_deduplicates_only_when_configured_so() {
    assert!(!build("webhook", &json!({})).unwrap().deduplicates());
    assert!(build("webhook", &json!({"deduplicates": true}))
        .unwrap()
        .deduplicates());
}

// --- All ---

#[tokio::test]
async fn every_channel_provider_refuses_a_message_of_another_channel_before_any_request() {
    let (twilio, fcm, receiver) = (
        FakeTwilio::start().await,
        FakeFcm::start().await,
        FakeWebhook::start(None).await,
    );
    let cases = [
        ("twilio", twilio.config(), Message::Push(push())),
        ("fcm", fcm.config(), Message::Sms(sms())),
        ("webhook", receiver.config(), Message::Sms(sms())),
    ];
    for (kind, config, message) in cases {
        let result = send(build(kind, &config).unwrap().as_ref(), message).await;
        assert!(
            matches!(&result, Err(SendError::Permanent { reason }) if reason.contains("carries")),
            "{kind}: {result:?}"
        );
    }
    assert!(twilio.received().is_empty() && fcm.token_requests().is_empty());
    assert!(receiver.received().is_empty());
}
