//! One contact per email in an organization, whatever the concurrency; upsert by email.

use std::collections::HashSet;

use mauntic_tests::spawn_app;
use serde_json::{json, Value};

#[tokio::test]
async fn fifty_concurrent_creates_of_one_email_make_one_contact() {
    let app = spawn_app().await;
    let tries = (0..50).map(|i| {
        app.post(
            "/api/v1/contacts",
            &json!({"email": "Same@Example.org", "first_name": format!("n{i}")}),
        )
        .send()
    });
    let answers = futures::future::join_all(tries).await;
    let mut created = Vec::new();
    let mut existing = HashSet::new();
    for a in answers {
        let res = a.unwrap();
        let status = res.status().as_u16();
        let body: Value = res.json().await.unwrap();
        match status {
            201 => created.push(body["id"].as_str().unwrap().to_owned()),
            409 => {
                assert_eq!(body["type"], "/problems/email-taken");
                existing.insert(body["existing_id"].as_str().unwrap().to_owned());
            }
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert_eq!(created.len(), 1, "exactly one create wins");
    assert!(
        existing.iter().all(|id| *id == created[0]),
        "the others are told which contact has it"
    );
    let contacts: i64 =
        sqlx::query_scalar("SELECT count(*) FROM events WHERE event_type = 'ContactCreated'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(contacts, 1);
    app.stop().await;
}

#[tokio::test]
async fn an_email_moves_between_contacts_only_when_free() {
    let app = spawn_app().await;
    let (a, _) = app.create_contact(json!({"email": "a@example.org"})).await;
    let (b, _) = app.create_contact(json!({"email": "b@example.org"})).await;
    let res = app
        .patch(
            &format!("/api/v1/contacts/{b}"),
            &json!({"email": "a@example.org"}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 409);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["existing_id"], a.to_string());
    let res = app
        .patch(
            &format!("/api/v1/contacts/{a}"),
            &json!({"email": "new-a@example.org"}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    // The old address is free again.
    let res = app
        .patch(
            &format!("/api/v1/contacts/{b}"),
            &json!({"email": "a@example.org"}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    // Another organization may have a contact with the same email.
    let (_, other_key) = app.other_tenant().await;
    let res = app
        .http
        .post(app.url("/api/v1/contacts"))
        .bearer_auth(other_key)
        .json(&json!({"email": "a@example.org"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    app.stop().await;
}

#[tokio::test]
async fn upsert_creates_once_then_updates_the_same_contact() {
    let app = spawn_app().await;
    let up = |body: Value| app.post("/api/v1/contacts:upsert", &body).send();
    let res =
        up(json!({"email": "u@example.org", "first_name": "Uma", "fields": {"plan": "free"}}))
            .await
            .unwrap();
    assert_eq!(res.status(), 201);
    let first: Value = res.json().await.unwrap();
    assert_eq!(first["created"], true);
    let res = up(json!({"email": "U@example.org", "fields": {"plan": "pro"}, "tags": ["vip"]}))
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let second: Value = res.json().await.unwrap();
    assert_eq!(second["created"], false);
    assert_eq!(second["id"], first["id"]);
    let contact = app
        .contact(
            first["id"].as_str().unwrap().parse().unwrap(),
            second["cursor"].as_str().unwrap().parse().unwrap(),
        )
        .await;
    assert_eq!(contact["first_name"], "Uma", "names not given are kept");
    assert_eq!(contact["fields"]["plan"], "pro");
    assert_eq!(contact["tags"], json!(["vip"]));

    // Concurrent upserts of a new email: one contact, one id for all.
    let tries = (0..20).map(|i| up(json!({"email": "race@example.org", "fields": {"n": i}})));
    let mut ids = HashSet::new();
    for res in futures::future::join_all(tries).await {
        let res = res.unwrap();
        assert!(
            res.status() == 200 || res.status() == 201,
            "{}",
            res.status()
        );
        let body: Value = res.json().await.unwrap();
        ids.insert(body["id"].as_str().unwrap().to_owned());
    }
    assert_eq!(ids.len(), 1);
    app.stop().await;
}
