//! Consent and do-not-contact per channel, frequency rules, stage and points.

use mauntic_tests::spawn_app;
use serde_json::{json, Value};

#[tokio::test]
async fn consent_dnc_frequency_stage_and_points_are_recorded_and_read_back() {
    let app = spawn_app().await;
    let (id, _) = app.create_contact(json!({"email": "r@example.org"})).await;
    let call = |m: reqwest::Method, path: &str, body: Value| {
        app.http
            .request(m, app.url(&format!("/api/v1/contacts/{id}{path}")))
            .bearer_auth(&app.api_key)
            .json(&body)
            .send()
    };
    use reqwest::Method as M;
    let res = call(
        M::PUT,
        "/consent/email",
        json!({"status": "opted_in", "source": "form:newsletter", "at": "2026-11-01T10:00:00Z"}),
    )
    .await
    .unwrap();
    assert_eq!(res.status(), 200);
    let res = call(
        M::PUT,
        "/do-not-contact/sms",
        json!({"reason": "complaint", "note": "called support"}),
    )
    .await
    .unwrap();
    assert_eq!(res.status(), 200);
    let res = call(M::PUT, "/frequency/email", json!({"max": 3, "per_days": 7}))
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let res = call(M::PUT, "/stage", json!({"stage": "lead"}))
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let res = call(M::PUT, "/stage", json!({"stage": "customer"}))
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    for (delta, reason) in [(10, "webinar"), (-3, "inactive")] {
        let res = call(
            M::POST,
            "/points",
            json!({"delta": delta, "reason": reason}),
        )
        .await
        .unwrap();
        assert_eq!(res.status(), 200);
    }
    let (_, cursor) = mauntic_tests::accepted(
        call(M::DELETE, "/do-not-contact/push", json!({}))
            .await
            .unwrap(),
    )
    .await;
    let c = app.contact(id, cursor).await;
    assert_eq!(c["consent"]["email"]["status"], "opted_in");
    assert_eq!(c["consent"]["email"]["source"], "form:newsletter");
    assert_eq!(c["consent"]["email"]["at"], "2026-11-01T10:00:00Z");
    assert_eq!(c["do_not_contact"]["sms"]["reason"], "complaint");
    assert_eq!(c["frequency"]["email"], json!({"max": 3, "per_days": 7}));
    assert_eq!(c["stage"], "customer");
    assert_eq!(c["points"], 7);

    // Lifting a mark and removing a rule; repeating a change records nothing.
    let before = app.event_count().await;
    call(M::PUT, "/stage", json!({"stage": "customer"}))
        .await
        .unwrap();
    call(
        M::PUT,
        "/consent/email",
        json!({"status": "opted_in", "source": "form:newsletter"}),
    )
    .await
    .unwrap();
    assert_eq!(app.event_count().await, before, "no change, no event");
    call(M::DELETE, "/do-not-contact/sms", json!({}))
        .await
        .unwrap();
    let (_, cursor) = mauntic_tests::accepted(
        call(M::DELETE, "/frequency/email", json!({}))
            .await
            .unwrap(),
    )
    .await;
    let c = app.contact(id, cursor).await;
    assert_eq!(c["do_not_contact"], json!({}));
    assert_eq!(c["frequency"], json!({}));

    // The stage history is in the log.
    let history: Value = app
        .get(&format!("/api/v1/audit/contact/{id}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let stages: Vec<&Value> = history["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["event_type"] == "ContactStageChanged")
        .map(|e| &e["payload"]["ContactStageChanged"])
        .collect();
    assert_eq!(stages[0]["to"], "lead");
    assert_eq!(stages[1]["from"], "lead");
    assert_eq!(stages[1]["to"], "customer");

    // The GDPR export holds the contact, its whole history and its audit entries.
    let res = app
        .get(&format!(
            "/api/v1/contacts/{id}/export?consistent_after={cursor}"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .starts_with("attachment"));
    let export: Value = res.json().await.unwrap();
    assert_eq!(export["contact"]["email"], "r@example.org");
    assert_eq!(export["contact"]["points"], 7);
    let history = export["history"].as_array().unwrap();
    assert_eq!(history[0]["event_type"], "ContactCreated");
    assert!(history
        .iter()
        .all(|e| e["actor"].as_str().unwrap().starts_with("apikey:")));
    assert_eq!(export["audit"].as_array().unwrap().len(), history.len());

    // The timeline: everything that happened to the contact, newest first, in pages.
    let page: Value = app
        .get(&format!(
            "/api/v1/contacts/{id}/timeline?limit=3&consistent_after={cursor}"
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len(), 3);
    assert_eq!(items[0]["event_type"], "ContactFrequencyRuleChanged");
    let mut seen = items.len();
    let mut next = page["next"].as_str().map(str::to_owned);
    let mut last_type = Value::Null;
    while let Some(token) = next {
        let p: Value = app
            .get(&format!(
                "/api/v1/contacts/{id}/timeline?limit=3&after={token}"
            ))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        seen += p["items"].as_array().unwrap().len();
        if let Some(l) = p["items"].as_array().unwrap().last() {
            last_type = l["event_type"].clone();
        }
        next = p["next"].as_str().map(str::to_owned);
    }
    assert_eq!(seen, history.len(), "every event once");
    assert_eq!(last_type, "ContactCreated", "oldest last");

    // Bad input: a problem naming the field, nothing written.
    let before = app.event_count().await;
    // A bad path parameter is a 400, like every bad parameter.
    let res = call(
        M::PUT,
        "/consent/fax",
        json!({"status": "opted_in", "source": "x"}),
    )
    .await
    .unwrap();
    assert_eq!(res.status(), 400);
    let p: Value = res.json().await.unwrap();
    assert_eq!(p["errors"][0]["field"], "channel", "{p}");
    for (m, path, body, field) in [
        (
            M::PUT,
            "/frequency/email",
            json!({"max": 0, "per_days": 7}),
            "max",
        ),
        (
            M::PUT,
            "/frequency/email",
            json!({"max": 1, "per_days": 400}),
            "per_days",
        ),
        (M::PUT, "/stage", json!({"stage": " "}), "stage"),
        (
            M::POST,
            "/points",
            json!({"delta": 0, "reason": "x"}),
            "delta",
        ),
        (
            M::POST,
            "/points",
            json!({"delta": 2_000_000_000i64, "reason": "x"}),
            "delta",
        ),
    ] {
        let res = call(m, path, body).await.unwrap();
        assert_eq!(res.status(), 422, "{path}");
        let p: Value = res.json().await.unwrap();
        assert_eq!(p["errors"][0]["field"], field, "{path}: {p}");
    }
    let res = call(
        M::PUT,
        "/consent/email",
        json!({"status": "maybe", "source": "x"}),
    )
    .await
    .unwrap();
    assert_eq!(res.status(), 422);
    assert_eq!(app.event_count().await, before);
    app.stop().await;
}

#[tokio::test]
async fn phone_time_zone_and_locale_are_normalised_changed_and_cleared() {
    let app = spawn_app().await;
    let (id, cursor) = app
        .create_contact(json!({"email": "p@example.org", "phone": "+49 (151) 2345-6789", "time_zone": "Europe/Paris", "locale": "fr_fr"}))
        .await;
    let c = app.contact(id, cursor).await;
    assert_eq!(c["phone"], "+4915123456789");
    assert_eq!(c["locale"], "fr-FR");
    // IANA names are case-sensitive in the database; accept the canonical one only.
    assert!(
        c["time_zone"] == "Europe/Paris" || c["time_zone"].is_null(),
        "{c}"
    );
    let res = app
        .patch(
            &format!("/api/v1/contacts/{id}"),
            &json!({"time_zone": "America/New_York", "phone": null}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let (_, cursor) = mauntic_tests::accepted(res).await;
    let c = app.contact(id, cursor).await;
    assert_eq!(c["time_zone"], "America/New_York");
    assert_eq!(c["phone"], Value::Null);
    assert_eq!(c["locale"], "fr-FR", "absent keys stay");
    let before = app.event_count().await;
    let res = app
        .post("/api/v1/contacts", &json!({"email": "q@example.org", "phone": "0151 234", "time_zone": "Mars/Base", "locale": "klingon"}))
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
    assert_eq!(fields, ["phone", "time_zone", "locale"]);
    assert_eq!(app.event_count().await, before);
    app.stop().await;
}

#[tokio::test]
async fn a_contact_is_owned_by_a_member_of_its_organization_only() {
    let app = spawn_app().await;
    let (owner, org) = app.founder("boss@example.org", "Acme").await;
    let member = app
        .member(org, "rep@example.org", domain::identity::Role::Member)
        .await;
    let rep = member.user_id.unwrap();
    let res = owner
        .post("/api/v1/contacts", json!({"email": "lead@example.org"}))
        .await;
    let (contact, _) = mauntic_tests::accepted(res).await;
    let put = |b: &mauntic_tests::browser::Browser, user: Value| {
        b.request(
            reqwest::Method::PUT,
            &format!("/api/v1/contacts/{contact}/owner"),
        )
        .json(&json!({"user_id": user}))
        .send()
    };
    let res = put(&member, json!(rep)).await.unwrap();
    assert_eq!(res.status(), 200);
    let (_, cursor) = mauntic_tests::accepted(res).await;
    let c: Value = owner
        .get(&format!(
            "/api/v1/contacts/{contact}?consistent_after={cursor}"
        ))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(c["owner_id"], rep.to_string());
    // Someone of another organization (or no one at all) cannot own it.
    let (_, _) = app.founder("other@example.org", "Other").await;
    let outsider: Value = sqlx::query_scalar::<_, String>(
        "SELECT split_part(aggregate_id, ':', 2) FROM events WHERE event_type = 'UserSignedUp' \
         AND payload->'UserSignedUp'->>'email' = 'other@example.org'",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap()
    .into();
    let res = put(&owner, outsider).await.unwrap();
    assert_eq!(res.status(), 422);
    let res = put(&owner, Value::Null).await.unwrap();
    assert_eq!(res.status(), 200);
    app.stop().await;
}

#[tokio::test]
async fn notes_are_added_listed_newest_first_and_removed() {
    let app = spawn_app().await;
    let (id, _) = app.create_contact(json!({"email": "n@example.org"})).await;
    let mut notes = Vec::new();
    for text in ["called, no answer", "called back: interested"] {
        let res = app
            .post(
                &format!("/api/v1/contacts/{id}/notes"),
                &json!({"text": text}),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 201);
        notes.push(mauntic_tests::accepted(res).await);
    }
    let (_, cursor) = notes[1];
    let listed: Value = app
        .get(&format!(
            "/api/v1/contacts/{id}/notes?consistent_after={cursor}"
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed[0]["text"], "called back: interested");
    assert!(listed[0]["author"].as_str().unwrap().starts_with("apikey:"));
    assert_eq!(listed.as_array().unwrap().len(), 2);
    let res = app
        .delete(&format!("/api/v1/contacts/{id}/notes/{}", notes[0].0))
        .send()
        .await
        .unwrap();
    let (_, cursor) = mauntic_tests::accepted(res).await;
    let listed: Value = app
        .get(&format!(
            "/api/v1/contacts/{id}/notes?consistent_after={cursor}"
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 1);
    let res = app
        .delete(&format!("/api/v1/contacts/{id}/notes/{}", notes[0].0))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404, "a removed note is gone");
    let res = app
        .post(
            &format!("/api/v1/contacts/{id}/notes"),
            &json!({"text": "  "}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 422);
    app.stop().await;
}
