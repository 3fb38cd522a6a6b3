//! GDPR erasure with crypto-shredding: after `DELETE /api/v1/contacts/{id}` no read model, no
//! export, no replay, no time-travel view and no JetStream message shows the person's email
//! or name in clear text; contacts that are not erased read back through every path.

use std::time::Duration;

use cqrs_es::DomainEvent;
use domain::contact::{ContactEvent, FieldValue, MergeRule, Profile};
use domain::identity::{KeyKind, Role};
use event_store::shred::policy;
use mauntic_tests::{accepted, eventually, spawn_app, spawn_with, start, Options, TestApp};
use serde_json::{json, Value};
use uuid::Uuid;

const EMAIL: &str = "adalbertina.z@erase.example";
const SECRETS: &[&str] = &[
    "adalbertina",
    "zwiebelmann",
    "zwiebelfrau",
    "4915199912345",
    "zuckertuete",
    "notiz-geheimnis",
];

fn clear_values_in(text: &str) -> Vec<&'static str> {
    let lower = text.to_lowercase();
    SECRETS
        .iter()
        .copied()
        .filter(|s| lower.contains(s))
        .collect()
}

/// Every row of every table (but `events`) as text, and `events`' payloads, that still
/// holds a clear value: `(table, found)`.
async fn clear_values_in_database(app: &TestApp) -> Vec<(String, Vec<&'static str>)> {
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.tables \
         WHERE table_schema = 'public' AND table_type = 'BASE TABLE' ORDER BY 1",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert!(tables.iter().any(|t| t == "contacts"), "{tables:?}");
    let mut out = Vec::new();
    for t in tables {
        let sql = if t == "events" {
            "SELECT payload::text FROM events".to_owned()
        } else {
            format!("SELECT to_jsonb(t)::text FROM \"{t}\" t")
        };
        let rows: Vec<String> = sqlx::query_scalar(&sql).fetch_all(&app.pool).await.unwrap();
        for r in rows {
            let found = clear_values_in(&r);
            if !found.is_empty() {
                out.push((t.clone(), found));
            }
        }
    }
    out
}

/// The bodies of every message of the test's JetStream stream.
async fn jetstream_bodies(app: &TestApp) -> Vec<String> {
    let bus = app.bus().await;
    let stream = bus.stream().await.unwrap();
    let n = stream.get_info().await.unwrap().state.messages as usize;
    let consumer: async_nats::jetstream::consumer::PullConsumer = stream
        .create_consumer(async_nats::jetstream::consumer::pull::Config {
            ack_policy: async_nats::jetstream::consumer::AckPolicy::None,
            ..Default::default()
        })
        .await
        .unwrap();
    let mut msgs = consumer.messages().await.unwrap();
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let m = tokio::time::timeout(Duration::from_secs(5), futures::StreamExt::next(&mut msgs))
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        out.push(String::from_utf8_lossy(&m.payload).into_owned());
    }
    out
}

async fn ok(res: reqwest::Response) -> Value {
    let status = res.status();
    let body: Value = res.json().await.unwrap();
    assert!(status.is_success(), "{status}: {body}");
    body
}

/// Creates the person (with a note, a change and a segment that matches them); returns
/// `(id, segment, cursor)`.
async fn create_person(app: &TestApp) -> (Uuid, Uuid, String) {
    let (id, _) = app
        .create_contact(json!({
            "email": EMAIL, "first_name": "Adalbertina", "last_name": "Zwiebelmann",
            "phone": "+4915199912345", "fields": {"nickname": "Zuckertuete", "score": 3},
            "tags": ["erasure-test"],
        }))
        .await;
    let res = app
        .post(
            "/api/v1/segments",
            &json!({"name": "Erasure testers", "rule": {"tag": "erasure-test"}}),
        )
        .send()
        .await
        .unwrap();
    let (segment, _) = accepted(res).await;
    let res = app
        .post(
            &format!("/api/v1/contacts/{id}/notes"),
            &json!({"text": "Notiz-Geheimnis about her"}),
        )
        .send()
        .await
        .unwrap();
    ok(res).await;
    let res = app
        .patch(
            &format!("/api/v1/contacts/{id}"),
            &json!({"last_name": "Zwiebelfrau", "fields": {"score": 4}}),
        )
        .send()
        .await
        .unwrap();
    let body = ok(res).await;
    (id, segment, body["cursor"].as_str().unwrap().to_owned())
}

async fn status_of(app: &TestApp, path: &str) -> u16 {
    app.get(path).send().await.unwrap().status().as_u16()
}

#[tokio::test]
async fn after_an_erasure_no_read_model_export_replay_time_travel_or_jetstream_message_shows_the_person(
) {
    let app = spawn_with(Options::with_nats()).await;
    let (id, segment, cursor) = create_person(&app).await;

    // Before the erasure: the API shows the person, the log and JetStream only ciphertext.
    let c: Value = ok(app
        .get(&format!("/api/v1/contacts/{id}?consistent_after={cursor}"))
        .send()
        .await
        .unwrap())
    .await;
    assert_eq!(c["email"], EMAIL);
    assert_eq!(c["last_name"], "Zwiebelfrau");
    assert_eq!(c["phone"], "+4915199912345");
    assert_eq!(c["fields"]["nickname"], "Zuckertuete");
    let events: Vec<String> = sqlx::query_scalar("SELECT payload::text FROM events")
        .fetch_all(&app.pool)
        .await
        .unwrap();
    for p in &events {
        assert!(clear_values_in(p).is_empty(), "clear value in the log: {p}");
    }
    app.caught_up("relay").await;
    let before = jetstream_bodies(&app).await;
    assert!(before.iter().any(|b| b.contains("ContactNoteAdded")));
    for b in &before {
        assert!(
            clear_values_in(b).is_empty(),
            "clear value in JetStream: {b}"
        );
    }
    let pool = app.pool.clone();
    eventually(
        Duration::from_secs(20),
        "the person enters the segment",
        || {
            let pool = pool.clone();
            async move {
                sqlx::query_scalar::<_, i64>(
                    "SELECT count(*) FROM segment_members WHERE contact_id = $1",
                )
                .bind(id)
                .fetch_one(&pool)
                .await
                .unwrap_or(0)
                    > 0
            }
        },
    )
    .await;

    // Erase.
    let res = app
        .delete(&format!("/api/v1/contacts/{id}"))
        .send()
        .await
        .unwrap();
    let body = ok(res).await;
    let cursor = body["cursor"].as_str().unwrap().to_owned();
    assert_eq!(
        status_of(
            &app,
            &format!("/api/v1/contacts/{id}?consistent_after={cursor}")
        )
        .await,
        404
    );
    assert_eq!(
        status_of(
            &app,
            &format!("/api/v1/contacts/{id}/export?consistent_after={cursor}")
        )
        .await,
        404
    );
    for p in projections::all() {
        app.caught_up(p.name()).await;
    }
    app.caught_up("relay").await;
    app.caught_up("segment_evaluator").await;

    // No read model, no reservation, no table holds a clear value; the log holds ciphertext.
    assert_eq!(clear_values_in_database(&app).await, vec![]);
    let notes: Value = app
        .get(&format!("/api/v1/contacts/{id}/notes"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(clear_values_in(&notes.to_string()).is_empty(), "{notes}");
    let csv = app
        .get("/api/v1/contacts:export")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(clear_values_in(&csv).is_empty(), "{csv}");

    // The person left the segment (an exit in the log).
    let exited: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM events WHERE aggregate_type = 'segment_membership' \
           AND event_type = 'SegmentExited' AND payload::text LIKE '%' || $1 || '%' \
           AND payload::text LIKE '%' || $2 || '%'",
    )
    .bind(id.to_string())
    .bind(segment.to_string())
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(exited, 1);

    // Rebuilds replay the log with the key gone: the person stays erased.
    for p in projections::all() {
        replay::rebuild::rebuild(&app.pool, p.as_ref(), |_| {})
            .await
            .unwrap();
    }
    assert_eq!(clear_values_in_database(&app).await, vec![]);
    assert_eq!(
        status_of(&app, &format!("/api/v1/contacts/{id}")).await,
        404
    );

    // Time travel shows the history with erased placeholders, at every version.
    for q in ["", "?at_sequence=1", "?at_sequence=3"] {
        let audit = ok(app
            .get(&format!("/api/v1/audit/contact/{id}{q}"))
            .send()
            .await
            .unwrap())
        .await;
        let text = audit.to_string();
        assert!(clear_values_in(&text).is_empty(), "{text}");
        assert!(text.contains("erased@erased.invalid"), "{text}");
    }

    // JetStream: every message, before and after the erasure, holds only ciphertext.
    let after = jetstream_bodies(&app).await;
    assert!(after.iter().any(|b| b.contains("ContactErased")));
    for b in &after {
        assert!(
            clear_values_in(b).is_empty(),
            "clear value in JetStream: {b}"
        );
    }

    // Every later command is refused: 410.
    let res = app
        .patch(
            &format!("/api/v1/contacts/{id}"),
            &json!({"first_name": "X"}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 410);
    let res = app
        .delete(&format!("/api/v1/contacts/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 410);
    let problem: Value = res.json().await.unwrap();
    assert_eq!(problem["type"], "/problems/erased");
    // The email is free again: a new contact may use it.
    app.create_contact(json!({"email": EMAIL})).await;
    app.stop().await;
}

#[tokio::test]
async fn a_contact_that_is_not_erased_reads_back_through_the_api_rebuilds_time_travel_and_a_restart(
) {
    let app = spawn_app().await;
    let (id, _, cursor) = create_person(&app).await;
    let check = |c: &Value| {
        assert_eq!(c["email"], EMAIL, "{c}");
        assert_eq!(c["first_name"], "Adalbertina");
        assert_eq!(c["last_name"], "Zwiebelfrau");
        assert_eq!(c["phone"], "+4915199912345");
        assert_eq!(c["fields"], json!({"nickname": "Zuckertuete", "score": 4}));
        assert_eq!(c["tags"], json!(["erasure-test"]));
    };
    let c = ok(app
        .get(&format!("/api/v1/contacts/{id}?consistent_after={cursor}"))
        .send()
        .await
        .unwrap())
    .await;
    check(&c);
    for p in projections::all() {
        app.caught_up(p.name()).await;
        replay::rebuild::rebuild(&app.pool, p.as_ref(), |_| {})
            .await
            .unwrap();
    }
    check(
        &ok(app
            .get(&format!("/api/v1/contacts/{id}"))
            .send()
            .await
            .unwrap())
        .await,
    );
    let notes = ok(app
        .get(&format!("/api/v1/contacts/{id}/notes"))
        .send()
        .await
        .unwrap())
    .await;
    assert!(
        notes.to_string().contains("Notiz-Geheimnis about her"),
        "{notes}"
    );
    let audit = ok(app
        .get(&format!("/api/v1/audit/contact/{id}"))
        .send()
        .await
        .unwrap())
    .await;
    assert_eq!(audit["state"]["email"], EMAIL);
    assert_eq!(audit["state"]["last_name"], "Zwiebelfrau");
    let first = ok(app
        .get(&format!("/api/v1/audit/contact/{id}?at_sequence=1"))
        .send()
        .await
        .unwrap())
    .await;
    assert_eq!(first["state"]["last_name"], "Zwiebelmann");

    // A new process over the same database: the aggregate loads (a command succeeds) and
    // the read model keeps reading back.
    let settings = app.settings.clone();
    let key = app.api_key.clone();
    let mut app = app;
    app.cancel.cancel();
    if let Some(t) = app.task.take() {
        t.await.unwrap().unwrap();
    }
    app.pool.close().await;
    let again = start(settings).await;
    let http = reqwest::Client::new();
    let res = http
        .post(again.url(&format!("/api/v1/contacts/{id}/tags")))
        .bearer_auth(&key)
        .json(&json!({"tags": ["after-restart"]}))
        .send()
        .await
        .unwrap();
    let body = ok(res).await;
    let cursor = body["cursor"].as_str().unwrap();
    let c = ok(http
        .get(again.url(&format!("/api/v1/contacts/{id}?consistent_after={cursor}")))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap())
    .await;
    assert_eq!(c["email"], EMAIL);
    assert_eq!(c["last_name"], "Zwiebelfrau");
    assert_eq!(c["tags"], json!(["after-restart", "erasure-test"]));
    again.stop().await;
}

#[tokio::test]
async fn erasing_twice_answers_gone_another_organization_not_found_and_a_viewer_is_forbidden() {
    let app = spawn_app().await;
    let (id, _) = app
        .create_contact(json!({"email": "twice@example.org", "first_name": "Twice"}))
        .await;
    let viewer = commands::identity::admin::create_api_key(
        &app.admin,
        app.tenant_id,
        "viewer",
        Role::Viewer,
        KeyKind::Secret,
    )
    .await
    .unwrap();
    let res = app
        .http
        .delete(app.url(&format!("/api/v1/contacts/{id}")))
        .bearer_auth(&viewer.key)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    let (_, other_key) = app.other_tenant().await;
    let res = app
        .http
        .delete(app.url(&format!("/api/v1/contacts/{id}")))
        .bearer_auth(&other_key)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    let unknown = app
        .delete(&format!("/api/v1/contacts/{}", Uuid::now_v7()))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);

    let res = app
        .delete(&format!("/api/v1/contacts/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let res = app
        .delete(&format!("/api/v1/contacts/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 410);
    let erasures: i64 =
        sqlx::query_scalar("SELECT count(*) FROM events WHERE event_type = 'ContactErased'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(erasures, 1);
    app.stop().await;
}

#[tokio::test]
async fn erasing_a_survivor_shreds_the_contacts_merged_into_it_and_a_merged_id_is_refused() {
    let app = spawn_app().await;
    let (a, _) = app
        .create_contact(json!({"email": "survivor@example.org", "first_name": "Adalbertina"}))
        .await;
    let (b, _) = app
        .create_contact(json!({"email": "merged@example.org", "last_name": "Zwiebelmann"}))
        .await;
    let res = app
        .post(&format!("/api/v1/contacts/{a}/merge"), &json!({"from": b}))
        .send()
        .await
        .unwrap();
    ok(res).await;
    let res = app
        .delete(&format!("/api/v1/contacts/{b}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 409);
    let problem: Value = res.json().await.unwrap();
    assert_eq!(problem["survivor_id"], a.to_string());

    let res = app
        .delete(&format!("/api/v1/contacts/{a}"))
        .send()
        .await
        .unwrap();
    let cursor = ok(res).await["cursor"].as_str().unwrap().to_owned();
    for id in [a, b] {
        assert_eq!(
            status_of(
                &app,
                &format!("/api/v1/contacts/{id}?consistent_after={cursor}")
            )
            .await,
            404
        );
        let audit = ok(app
            .get(&format!("/api/v1/audit/contact/{id}"))
            .send()
            .await
            .unwrap())
        .await;
        let text = audit.to_string();
        assert!(clear_values_in(&text).is_empty(), "{text}");
        assert!(!text.contains("merged@example.org"), "{text}");
        assert!(!text.contains("survivor@example.org"), "{text}");
    }
    for p in projections::all() {
        app.caught_up(p.name()).await;
    }
    assert_eq!(clear_values_in_database(&app).await, vec![]);
    // Both emails are free again.
    app.create_contact(json!({"email": "merged@example.org"}))
        .await;
    app.create_contact(json!({"email": "survivor@example.org"}))
        .await;
    app.stop().await;
}

#[tokio::test]
async fn a_contact_written_before_encryption_still_loads_changes_and_is_erased_from_read_models() {
    let app = spawn_app().await;
    let stream = mauntic_tests::append_raw(&app.pool, app.tenant_id, 7).await;
    let id: Uuid = stream.split_once(':').unwrap().1.parse().unwrap();
    let res = app
        .patch(
            &format!("/api/v1/contacts/{id}"),
            &json!({"first_name": "Adalbertina"}),
        )
        .send()
        .await
        .unwrap();
    let cursor = ok(res).await["cursor"].as_str().unwrap().to_owned();
    let c = ok(app
        .get(&format!("/api/v1/contacts/{id}?consistent_after={cursor}"))
        .send()
        .await
        .unwrap())
    .await;
    assert_eq!(c["email"], "raw7@example.org");
    assert_eq!(c["first_name"], "Adalbertina");
    let res = app
        .delete(&format!("/api/v1/contacts/{id}"))
        .send()
        .await
        .unwrap();
    let cursor = ok(res).await["cursor"].as_str().unwrap().to_owned();
    assert_eq!(
        status_of(
            &app,
            &format!("/api/v1/contacts/{id}?consistent_after={cursor}")
        )
        .await,
        404
    );
    for p in projections::all() {
        app.caught_up(p.name()).await;
    }
    // The change made after encryption is shredded; the read models hold nothing of either.
    assert_eq!(clear_values_in_database(&app).await, vec![]);
    app.stop().await;
}

/// One event of each variant: the match has no wildcard, so a new variant fails to compile
/// here until it has a sample (and so a policy).
fn samples() -> Vec<ContactEvent> {
    let id = Uuid::from_u128(1);
    let all = vec![
        ContactEvent::ContactCreated {
            email: "a@example.org".into(),
            first_name: Some("A".into()),
            last_name: Some("B".into()),
            fields: [("k".to_owned(), FieldValue::Text("v".into()))].into(),
            tags: vec!["t".into()],
            profile: Profile {
                phone: Some("+491".into()),
                time_zone: Some("Europe/Paris".into()),
                locale: Some("fr".into()),
            },
        },
        ContactEvent::ContactUpdated {
            changed: vec!["email".into()],
            email: "a@example.org".into(),
            first_name: None,
            last_name: None,
            fields_set: Default::default(),
            fields_unset: vec![],
            profile: Profile {
                phone: Some("+491".into()),
                time_zone: Some("Europe/Paris".into()),
                locale: Some("fr".into()),
            },
        },
        ContactEvent::ContactTagsAdded { tags: vec![] },
        ContactEvent::ContactTagRemoved { tag: "t".into() },
        ContactEvent::ContactConsentChanged {
            channel: domain::contact::Channel::Email,
            consent: domain::contact::Consent {
                status: domain::contact::ConsentStatus::OptedIn,
                source: "api".into(),
                at: chrono::Utc::now(),
            },
        },
        ContactEvent::ContactDoNotContactAdded {
            channel: domain::contact::Channel::Email,
            reason: domain::contact::DncReason::Manual,
            note: Some("n".into()),
        },
        ContactEvent::ContactDoNotContactRemoved {
            channel: domain::contact::Channel::Email,
        },
        ContactEvent::ContactFrequencyRuleChanged {
            channel: domain::contact::Channel::Email,
            rule: None,
        },
        ContactEvent::ContactStageChanged {
            from: None,
            to: "lead".into(),
        },
        ContactEvent::ContactPointsChanged {
            delta: 1,
            reason: "r".into(),
            total: 1,
        },
        ContactEvent::ContactCompanyLinked {
            company_id: id,
            primary: true,
        },
        ContactEvent::ContactCompanyUnlinked { company_id: id },
        ContactEvent::ContactOwnerChanged { owner: Some(id) },
        ContactEvent::ContactNoteAdded {
            note_id: id,
            text: "x".into(),
        },
        ContactEvent::ContactNoteRemoved { note_id: id },
        ContactEvent::ContactEventRecorded {
            name: "purchase".into(),
            properties: json!({"total": 42}).as_object().unwrap().clone(),
            occurred_at: chrono::Utc::now(),
            source: Some("api".into()),
        },
        ContactEvent::ContactMerged {
            source_id: id,
            rule: MergeRule::KeepTarget,
            source_email: "b@example.org".into(),
            first_name: None,
            last_name: None,
            profile: Profile::default(),
            fields: Default::default(),
            tags: vec![],
            consent: Default::default(),
            do_not_contact: Default::default(),
            frequency: Default::default(),
            stage: None,
            points: 0,
            owner: None,
            companies: vec![],
            primary_company: None,
            notes: vec![],
        },
        ContactEvent::ContactMergedInto { survivor_id: id },
        ContactEvent::ContactErased {
            also_erased: vec![id],
        },
    ];
    for e in &all {
        match e {
            ContactEvent::ContactCreated { .. }
            | ContactEvent::ContactUpdated { .. }
            | ContactEvent::ContactTagsAdded { .. }
            | ContactEvent::ContactTagRemoved { .. }
            | ContactEvent::ContactConsentChanged { .. }
            | ContactEvent::ContactDoNotContactAdded { .. }
            | ContactEvent::ContactDoNotContactRemoved { .. }
            | ContactEvent::ContactFrequencyRuleChanged { .. }
            | ContactEvent::ContactStageChanged { .. }
            | ContactEvent::ContactPointsChanged { .. }
            | ContactEvent::ContactCompanyLinked { .. }
            | ContactEvent::ContactCompanyUnlinked { .. }
            | ContactEvent::ContactOwnerChanged { .. }
            | ContactEvent::ContactNoteAdded { .. }
            | ContactEvent::ContactNoteRemoved { .. }
            | ContactEvent::ContactEventRecorded { .. }
            | ContactEvent::ContactMerged { .. }
            | ContactEvent::ContactMergedInto { .. }
            | ContactEvent::ContactErased { .. } => {}
        }
    }
    all
}

/// One sample per event type of `aggregate_type`: the policy lists exactly those types, each
/// field of each is personal or public, and what an erased field reads as still
/// deserializes as the event.
fn check_policy<E>(aggregate_type: &str, samples: &[E], listed: &[policy::EventPolicy])
where
    E: DomainEvent + serde::Serialize + serde::de::DeserializeOwned,
{
    assert!(policy::covers(aggregate_type));
    let mut types: Vec<String> = samples.iter().map(|e| e.event_type()).collect();
    types.sort();
    types.dedup();
    assert_eq!(types.len(), samples.len(), "one sample per variant");
    let mut listed: Vec<String> = listed.iter().map(|p| p.event_type.to_owned()).collect();
    listed.sort();
    assert_eq!(
        types, listed,
        "the policy lists exactly the {aggregate_type}'s event types"
    );
    for e in samples {
        let t = e.event_type();
        let p = policy::of(aggregate_type, &t).unwrap();
        let v = serde_json::to_value(e).unwrap();
        for field in v[&t].as_object().unwrap().keys() {
            assert!(
                p.personal.iter().any(|f| f.field == field) || p.public.contains(&field.as_str()),
                "{t}.{field} is neither personal nor public in event-store/src/shred/policy.rs"
            );
        }
        let mut erased = v.clone();
        for f in p.personal {
            if erased[&t].get(f.field).is_some() {
                erased[&t][f.field] = serde_json::from_str(f.erased).unwrap();
            }
        }
        serde_json::from_value::<E>(erased)
            .unwrap_or_else(|x| panic!("{t} with erased values: {x}"));
    }
}

#[test]
fn every_contact_event_variant_has_a_personal_data_policy_that_classifies_every_field() {
    check_policy("contact", &samples(), policy::CONTACT);
}

#[test]
fn every_suppression_event_has_a_policy_that_classifies_every_field() {
    use domain::delivery::suppression::{SuppressionEvent, SuppressionReason};
    use domain::delivery::Channel;
    let samples = [
        SuppressionEvent::AddressSuppressed {
            channel: Channel::Email,
            address: "ada@example.org".into(),
            reason: SuppressionReason::HardBounce,
            source: Some("job:1".into()),
        },
        SuppressionEvent::AddressUnsuppressed {
            source: Some("user:1".into()),
        },
    ];
    check_policy("suppression", &samples, policy::SUPPRESSION);
    assert!(policy::of("suppression", "AddressSuppressed")
        .unwrap()
        .personal
        .iter()
        .any(|f| f.field == "address"));
}
