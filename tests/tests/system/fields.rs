//! Field definitions: contact writes are checked against them, with a 422 naming the field.

use mauntic_tests::spawn_app;
use serde_json::{json, Value};

#[tokio::test]
async fn contact_writes_follow_the_field_definitions() {
    let app = spawn_app().await;
    let define = |body: Value| app.post("/api/v1/fields", &body).send();
    for body in [
        json!({"key": "plan", "label": "Plan", "type": "select", "options": ["free", "pro"], "default": "free"}),
        json!({"key": "country", "label": "Country", "type": "country", "required": true}),
        json!({"key": "signed_up", "label": "Signed up", "type": "date"}),
        json!({"key": "seats", "label": "Seats", "type": "number"}),
    ] {
        let res = define(body).await.unwrap();
        assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
    }
    // Bad definitions.
    let res = define(json!({"key": "plan", "label": "Again", "type": "text"}))
        .await
        .unwrap();
    assert_eq!(res.status(), 409);
    let res = define(json!({"key": "tier", "label": "Tier", "type": "select"}))
        .await
        .unwrap();
    assert_eq!(res.status(), 422);
    let res = define(json!({"key": "Bad Key", "label": "x", "type": "text"}))
        .await
        .unwrap();
    assert_eq!(res.status(), 422);

    let listed: Value = app
        .get("/api/v1/fields")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let keys: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, ["country", "plan", "seats", "signed_up"]);

    // A contact without a required field, or with values that do not fit, is refused.
    let before = app.event_count().await;
    let res = app
        .post("/api/v1/contacts", &json!({"email": "a@example.org", "fields": {"plan": "gold", "signed_up": "yesterday", "seats": "ten"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 422);
    let p: Value = res.json().await.unwrap();
    let fields: Vec<&str> = p["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(
        fields,
        [
            "fields.plan",
            "fields.seats",
            "fields.signed_up",
            "fields.country"
        ]
    );
    assert_eq!(app.event_count().await, before);

    // A good one is normalised and gets the default.
    let (id, cursor) = app
        .create_contact(json!({"email": "a@example.org", "fields": {"country": "fr", "signed_up": "2026-11-01", "free_form": "kept"}}))
        .await;
    let c = app.contact(id, cursor).await;
    assert_eq!(
        c["fields"],
        json!({"country": "FR", "signed_up": "2026-11-01", "plan": "free", "free_form": "kept"})
    );

    // Updates are checked too; a required field cannot be cleared.
    let res = app
        .patch(
            &format!("/api/v1/contacts/{id}"),
            &json!({"fields": {"country": null}}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 422);
    let res = app
        .patch(
            &format!("/api/v1/contacts/{id}"),
            &json!({"fields": {"plan": "pro"}}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    // Upserts as well.
    let res = app
        .post(
            "/api/v1/contacts:upsert",
            &json!({"email": "b@example.org", "fields": {"plan": "gold"}}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 422);

    // Changing a definition: the field is no longer required.
    let res = app
        .patch("/api/v1/fields/country", &json!({"required": false}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let res = app
        .post("/api/v1/contacts", &json!({"email": "c@example.org"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let res = app.delete("/api/v1/fields/seats").send().await.unwrap();
    assert_eq!(res.status(), 200);
    let res = app.delete("/api/v1/fields/seats").send().await.unwrap();
    assert_eq!(res.status(), 404);
    app.stop().await;
}

#[tokio::test]
async fn a_unique_field_value_belongs_to_one_contact_at_a_time() {
    let app = spawn_app().await;
    let res = app
        .post(
            "/api/v1/fields",
            &json!({"key": "crm_id", "label": "CRM id", "type": "text", "unique": true}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let (a, _) = app
        .create_contact(json!({"email": "a@example.org", "fields": {"crm_id": "X-1"}}))
        .await;
    let res = app
        .post(
            "/api/v1/contacts",
            &json!({"email": "b@example.org", "fields": {"crm_id": "X-1"}}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 409);
    let p: Value = res.json().await.unwrap();
    assert_eq!(p["type"], "/problems/field-taken");
    assert_eq!(p["field"], "fields.crm_id");
    assert_eq!(p["existing_id"], a.to_string());
    let (b, _) = app
        .create_contact(json!({"email": "b@example.org", "fields": {"crm_id": "X-2"}}))
        .await;
    let patch = |id: uuid::Uuid, v: &str| {
        app.patch(
            &format!("/api/v1/contacts/{id}"),
            &json!({"fields": {"crm_id": v}}),
        )
        .send()
    };
    assert_eq!(patch(b, "X-1").await.unwrap().status(), 409);
    assert_eq!(patch(a, "X-3").await.unwrap().status(), 200);
    assert_eq!(
        patch(b, "X-1").await.unwrap().status(),
        200,
        "A gave X-1 up"
    );

    // Concurrent creates with one value: exactly one wins, and the losers hold nothing.
    let tries = (0..10).map(|i| {
        app.post(
            "/api/v1/contacts",
            &json!({"email": format!("r{i}@example.org"), "fields": {"crm_id": "RACE"}}),
        )
        .send()
    });
    let statuses: Vec<u16> = futures::future::join_all(tries)
        .await
        .into_iter()
        .map(|r| r.unwrap().status().as_u16())
        .collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        1,
        "{statuses:?}"
    );
    assert!(
        statuses.iter().all(|s| *s == 201 || *s == 409),
        "{statuses:?}"
    );
    let held: i64 =
        sqlx::query_scalar("SELECT count(*) FROM reservations WHERE scope = 'contact_field'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(
        held, 3,
        "X-3, X-1 and RACE; nothing left behind by the losers"
    );
    app.stop().await;
}
