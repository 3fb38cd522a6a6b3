//! Custom contact events (`POST /api/v1/contacts/{id}/events`, `POST /api/v1/events`): what
//! journeys trigger on. Recorded on the contact's stream (a merged contact's survivor), listed
//! in its timeline and export, properties sealed in the log and erased with the contact.

use domain::identity::{KeyKind, Role};
use event_store::Cursor;
use mauntic_tests::{accepted, spawn_app, TestApp};
use serde_json::{json, Value};
use uuid::Uuid;

use super::campaigns::post;

/// `GET path` once the read models have passed `cursor`.
async fn read(app: &TestApp, path: &str, cursor: Cursor) -> Value {
    let sep = if path.contains('?') { '&' } else { '?' };
    let res = app
        .get(&format!("{path}{sep}consistent_after={cursor}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "{path}");
    res.json().await.unwrap()
}

/// The `ContactEventRecorded` payloads of a contact's stream, as the audit endpoint (the log,
/// revealed) shows them.
async fn recorded_in_log(app: &TestApp, id: Uuid) -> Vec<Value> {
    let res = app
        .get(&format!("/api/v1/audit/contact/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let audit: Value = res.json().await.unwrap();
    audit["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["event_type"] == "ContactEventRecorded")
        .map(|e| e["payload"]["ContactEventRecorded"].clone())
        .collect()
}

fn cursor_of(body: &Value) -> Cursor {
    body["cursor"].as_str().unwrap().parse().unwrap()
}

#[tokio::test]
async fn an_event_is_recorded_on_the_contact_and_shows_in_its_timeline_log_and_export() {
    let app = spawn_app().await;
    let (id, _) = app
        .create_contact(json!({"email": "ada@example.org"}))
        .await;
    let before = chrono::Utc::now();
    let (status, body) = post(
        &app,
        &format!("/api/v1/contacts/{id}/events"),
        json!({"name": "purchase", "properties": {"total": 42, "items": [{"sku": "b-1"}]},
               "occurred_at": "2026-01-05T09:30:00+01:00"}),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["id"], id.to_string());
    // A public key (embedded in a website) may ingest; without occurred_at it is now.
    let public = commands::identity::admin::create_api_key(
        &app.admin,
        app.tenant_id,
        "site",
        Role::Member,
        KeyKind::Public,
    )
    .await
    .unwrap();
    let res = app
        .http
        .post(app.url(&format!("/api/v1/contacts/{id}/events")))
        .bearer_auth(&public.key)
        .json(&json!({"name": "signed_up"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let (_, cursor) = accepted(res).await;

    let log = recorded_in_log(&app, id).await;
    assert_eq!(log.len(), 2, "{log:?}");
    assert_eq!(
        log[0],
        json!({"name": "purchase", "properties": {"total": 42, "items": [{"sku": "b-1"}]},
               "occurred_at": "2026-01-05T08:30:00Z", "source": "api"})
    );
    assert_eq!(log[1]["name"], "signed_up");
    assert_eq!(log[1]["properties"], json!({}));
    let at: chrono::DateTime<chrono::Utc> =
        log[1]["occurred_at"].as_str().unwrap().parse().unwrap();
    assert!(at >= before && at <= chrono::Utc::now(), "{at}");

    let timeline = read(&app, &format!("/api/v1/contacts/{id}/timeline"), cursor).await;
    let entries: Vec<&Value> = timeline["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["event_type"] == "ContactEventRecorded")
        .collect();
    assert_eq!(entries.len(), 2, "{timeline}");
    assert_eq!(entries[0]["data"]["name"], "signed_up");
    assert_eq!(entries[1]["data"]["name"], "purchase");
    assert_eq!(entries[1]["data"]["properties"]["total"], 42);
    assert_eq!(
        entries[0]["actor"],
        format!("apikey:{}", public.id),
        "{timeline}"
    );

    let export = read(&app, &format!("/api/v1/contacts/{id}/export"), cursor).await;
    let names: Vec<&Value> = export["history"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["event_type"] == "ContactEventRecorded")
        .map(|e| &e["payload"]["ContactEventRecorded"]["name"])
        .collect();
    assert_eq!(names, vec!["purchase", "signed_up"]);
    // The contact itself did not change.
    let contact = read(&app, &format!("/api/v1/contacts/{id}"), cursor).await;
    assert_eq!(contact["version"], 3);
    app.stop().await;
}

#[tokio::test]
async fn bad_events_are_refused_with_every_bad_field_and_nothing_is_written() {
    let app = spawn_app().await;
    let (id, _) = app
        .create_contact(json!({"email": "ada@example.org"}))
        .await;
    let path = format!("/api/v1/contacts/{id}/events");
    let (_, other_key) = app.other_tenant().await;
    let before = app.event_count().await;
    let tomorrow_and_more = (chrono::Utc::now() + chrono::Duration::hours(25)).to_rfc3339();
    let (status, body) = post(
        &app,
        &path,
        json!({"name": "signed up!", "properties": [1, 2], "occurred_at": tomorrow_and_more}),
    )
    .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["type"], "/problems/validation");
    let mut fields: Vec<&str> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    fields.sort_unstable();
    assert_eq!(fields, ["name", "occurred_at", "properties"], "{body}");

    for (bad, field) in [
        (json!({"name": ""}), "name"),
        (json!({"name": "x".repeat(101)}), "name"),
        (
            json!({"name": "kauf", "properties": "total=42"}),
            "properties",
        ),
        (
            json!({"name": "kauf", "properties": {"blob": "x".repeat(16 * 1024)}}),
            "properties",
        ),
        (
            json!({"name": "kauf", "properties": {"a": {"b": {"c": {"d": {}}}}}}),
            "properties",
        ),
        (
            json!({"name": "kauf", "properties": {"$enc": "AAAA"}}),
            "properties",
        ),
        (
            json!({"name": "kauf", "occurred_at": "yesterday"}),
            "occurred_at",
        ),
    ] {
        let (status, body) = post(&app, &path, bad.clone()).await;
        assert_eq!(status, 422, "{bad}: {body}");
        assert_eq!(body["errors"][0]["field"], field, "{bad}: {body}");
    }
    let (status, body) = post(&app, &path, json!({"name": "kauf", "total": 42})).await;
    assert_eq!(status, 422, "unknown keys are refused: {body}");

    for unknown in [Uuid::now_v7().to_string(), "not-a-uuid".to_owned()] {
        let (status, body) = post(
            &app,
            &format!("/api/v1/contacts/{unknown}/events"),
            json!({"name": "kauf"}),
        )
        .await;
        assert_eq!(status, 404, "{body}");
        assert_eq!(body["type"], "/problems/not-found");
    }
    // Another organization's contact is not found either.
    let res = app
        .http
        .post(app.url(&path))
        .bearer_auth(&other_key)
        .json(&json!({"name": "kauf"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    assert_eq!(app.event_count().await, before, "nothing was written");

    // Bulk: not a list of 1 to 500 is refused whole.
    for bad in [
        json!({"events": []}),
        json!({"events": vec![json!({"contact_id": id, "name": "x"}); 501]}),
        json!({"events": {"contact_id": id, "name": "x"}}),
    ] {
        let (status, body) = post(&app, "/api/v1/events", bad).await;
        assert_eq!(status, 422, "{body}");
    }
    assert_eq!(app.event_count().await, before, "nothing was written");
    app.stop().await;
}

#[tokio::test]
async fn a_batch_resolves_each_item_by_id_or_email_and_one_bad_item_stops_no_other() {
    let app = spawn_app().await;
    let (ada, _) = app
        .create_contact(json!({"email": "ada@example.org"}))
        .await;
    let (bob, _) = app
        .create_contact(json!({"email": "bob@example.org"}))
        .await;
    let before = app.event_count().await;
    let stranger = Uuid::now_v7();
    let (status, body) = post(
        &app,
        "/api/v1/events",
        json!({"events": [
            {"contact_id": ada, "name": "purchase", "properties": {"total": 42}},
            {"email": " BOB@Example.org ", "name": "signed_up", "occurred_at": "2026-01-05T08:30:00Z"},
            {"email": "nobody@example.org", "name": "signed_up"},
            {"contact_id": stranger, "name": "signed_up"},
            {"contact_id": ada, "email": "ada@example.org", "name": "bad name", "properties": 7},
            {"name": "signed_up"},
            42,
            {"email": "ada@example.org", "name": "page.viewed"},
        ]}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let results = body["results"].as_array().unwrap();
    assert_eq!(results.len(), 8, "{body}");
    for (i, r) in results.iter().enumerate() {
        assert_eq!(r["index"], i, "{r}");
    }
    let recorded = |i: usize, contact: Uuid| {
        assert_eq!(results[i]["status"], "recorded", "{}", results[i]);
        assert_eq!(results[i]["contact_id"], contact.to_string());
        assert!(results[i].get("problem").is_none());
    };
    recorded(0, ada);
    recorded(1, bob);
    recorded(7, ada);
    let failed = |i: usize, status: u16| -> &Value {
        assert_eq!(results[i]["status"], "error", "{}", results[i]);
        assert_eq!(results[i]["problem"]["status"], status, "{}", results[i]);
        &results[i]
    };
    assert_eq!(failed(2, 404)["contact_id"], Value::Null);
    assert_eq!(failed(3, 404)["contact_id"], stranger.to_string());
    let mut fields: Vec<&str> = failed(4, 422)["problem"]["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    fields.sort_unstable();
    assert_eq!(fields, ["contact_id", "name", "properties"]);
    assert_eq!(
        failed(5, 422)["problem"]["errors"][0]["field"],
        "contact_id"
    );
    failed(6, 422);

    assert_eq!(app.event_count().await, before + 3, "only the good items");
    let cursor = cursor_of(&body);
    assert_eq!(cursor, app.head().await, "the cursor after the last event");
    let names = |v: &Value| -> Vec<String> {
        v["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["event_type"] == "ContactEventRecorded")
            .map(|e| e["data"]["name"].as_str().unwrap().to_owned())
            .collect()
    };
    let timeline = read(&app, &format!("/api/v1/contacts/{ada}/timeline"), cursor).await;
    assert_eq!(names(&timeline), ["page.viewed", "purchase"]);
    let timeline = read(&app, &format!("/api/v1/contacts/{bob}/timeline"), cursor).await;
    assert_eq!(names(&timeline), ["signed_up"]);
    assert_eq!(
        recorded_in_log(&app, bob).await[0]["occurred_at"],
        "2026-01-05T08:30:00Z"
    );

    // A batch of which nothing is recorded still answers each item, and no cursor.
    let (status, body) = post(
        &app,
        "/api/v1/events",
        json!({"events": [{"email": "nobody@example.org", "name": "x"}]}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["results"][0]["status"], "error");
    assert_eq!(body["cursor"], Value::Null);
    app.stop().await;
}

#[tokio::test]
async fn a_merged_contacts_events_land_on_its_survivor() {
    let app = spawn_app().await;
    let (a, _) = app
        .create_contact(json!({"email": "survivor@example.org"}))
        .await;
    let (b, _) = app
        .create_contact(json!({"email": "merged@example.org"}))
        .await;
    let (status, body) = post(
        &app,
        &format!("/api/v1/contacts/{a}/merge"),
        json!({"from": b}),
    )
    .await;
    assert_eq!(status, 200, "{body}");

    let (status, body) = post(
        &app,
        &format!("/api/v1/contacts/{b}/events"),
        json!({"name": "by_id"}),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["id"], a.to_string());
    let (status, body) = post(
        &app,
        "/api/v1/events",
        json!({"events": [
            {"contact_id": b, "name": "by_id_in_a_batch"},
            {"email": "merged@example.org", "name": "by_email"},
        ]}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    for r in body["results"].as_array().unwrap() {
        assert_eq!(r["status"], "recorded", "{r}");
        assert_eq!(r["contact_id"], a.to_string(), "{r}");
    }
    let on_a: Vec<Value> = recorded_in_log(&app, a)
        .await
        .into_iter()
        .map(|e| e["name"].clone())
        .collect();
    assert_eq!(on_a, ["by_id", "by_id_in_a_batch", "by_email"]);
    assert!(recorded_in_log(&app, b).await.is_empty());
    app.stop().await;
}

#[tokio::test]
async fn erasure_empties_the_properties_in_the_log_but_keeps_the_names() {
    let app = spawn_app().await;
    let (id, _) = app
        .create_contact(json!({"email": "erase-me@example.org"}))
        .await;
    let (status, body) = post(
        &app,
        &format!("/api/v1/contacts/{id}/events"),
        json!({"name": "purchase", "properties": {"note": "zuckertuete-7781"}}),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    // Sealed in the log from the start.
    let stored: Vec<String> = sqlx::query_scalar(
        "SELECT payload::text FROM events WHERE event_type = 'ContactEventRecorded'",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(stored.len(), 1);
    assert!(!stored[0].contains("zuckertuete"), "{}", stored[0]);
    assert!(stored[0].contains("purchase"), "{}", stored[0]);
    assert_eq!(
        recorded_in_log(&app, id).await[0]["properties"]["note"],
        "zuckertuete-7781"
    );

    let res = app
        .delete(&format!("/api/v1/contacts/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let log = recorded_in_log(&app, id).await;
    assert_eq!(log.len(), 1);
    assert_eq!(log[0]["name"], "purchase");
    assert_eq!(log[0]["properties"], json!({}));
    assert_eq!(log[0]["source"], "api");

    // An erased contact records nothing more: 410 alone, an item error in a batch.
    let before = app.event_count().await;
    let (status, body) = post(
        &app,
        &format!("/api/v1/contacts/{id}/events"),
        json!({"name": "purchase"}),
    )
    .await;
    assert_eq!(status, 410, "{body}");
    let (status, body) = post(
        &app,
        "/api/v1/events",
        json!({"events": [
            {"contact_id": id, "name": "purchase"},
            {"email": "erase-me@example.org", "name": "purchase"},
        ]}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["results"][0]["problem"]["status"], 410, "{body}");
    assert_eq!(body["results"][1]["problem"]["status"], 404, "{body}");
    assert_eq!(app.event_count().await, before);
    app.stop().await;
}
