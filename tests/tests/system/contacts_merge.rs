//! Merging contact B into contact A: the values combine, and B's id, email and history
//! resolve to A in every query and later command.

use event_store::Cursor;
use mauntic_tests::{accepted, spawn_app, TestApp};
use reqwest::Method;
use serde_json::{json, Value};
use uuid::Uuid;

async fn call(app: &TestApp, m: Method, path: &str, body: Value) -> reqwest::Response {
    app.http
        .request(m, app.url(path))
        .bearer_auth(&app.api_key)
        .json(&body)
        .send()
        .await
        .unwrap()
}

/// Merges `from` into `into`; the answer's status and body.
async fn merge(app: &TestApp, into: Uuid, body: Value) -> (u16, Value) {
    let res = call(
        app,
        Method::POST,
        &format!("/api/v1/contacts/{into}/merge"),
        body,
    )
    .await;
    (res.status().as_u16(), res.json().await.unwrap())
}

async fn merged(app: &TestApp, into: Uuid, from: Uuid) -> Cursor {
    let (status, body) = merge(app, into, json!({"from": from})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["id"], into.to_string());
    body["cursor"].as_str().unwrap().parse().unwrap()
}

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

#[tokio::test]
async fn a_merge_combines_both_contacts_into_the_target() {
    let app = spawn_app().await;
    let (a, _) = app
        .create_contact(json!({"email": "ada@example.org", "first_name": "Ada",
            "fields": {"plan": "pro"}, "tags": ["vip", "a"]}))
        .await;
    let (b, _) = app
        .create_contact(json!({"email": "augusta@example.org", "first_name": "Augusta",
            "last_name": "King", "fields": {"plan": "free", "city": "London"}, "tags": ["vip", "b"]}))
        .await;
    for (id, delta) in [(a, 10), (b, 5)] {
        let res = call(
            &app,
            Method::POST,
            &format!("/api/v1/contacts/{id}/points"),
            json!({"delta": delta, "reason": "r"}),
        )
        .await;
        assert_eq!(res.status(), 200);
    }
    let consent = |at: &str| json!({"status": "opted_in", "source": "form", "at": at});
    call(
        &app,
        Method::PUT,
        &format!("/api/v1/contacts/{a}/consent/email"),
        consent("2026-01-01T00:00:00Z"),
    )
    .await;
    let newer =
        json!({"status": "opted_out", "source": "unsubscribe", "at": "2026-03-01T00:00:00Z"});
    call(
        &app,
        Method::PUT,
        &format!("/api/v1/contacts/{b}/consent/email"),
        newer,
    )
    .await;
    call(
        &app,
        Method::PUT,
        &format!("/api/v1/contacts/{b}/do-not-contact/sms"),
        json!({"reason": "complaint"}),
    )
    .await;
    let res = call(
        &app,
        Method::POST,
        &format!("/api/v1/contacts/{b}/notes"),
        json!({"text": "met at the fair"}),
    )
    .await;
    assert_eq!(res.status(), 201);
    let (note, _) = accepted(res).await;

    let cursor = merged(&app, a, b).await;

    let survivor = read(&app, &format!("/api/v1/contacts/{a}"), cursor).await;
    assert_eq!(
        survivor["email"], "ada@example.org",
        "the target keeps its email"
    );
    assert_eq!(survivor["first_name"], "Ada", "keep_target by default");
    assert_eq!(
        survivor["last_name"], "King",
        "the source fills the target's gaps"
    );
    assert_eq!(survivor["fields"], json!({"plan": "pro", "city": "London"}));
    assert_eq!(survivor["tags"], json!(["a", "b", "vip"]));
    assert_eq!(survivor["points"], 15);
    assert_eq!(
        survivor["consent"]["email"]["status"], "opted_out",
        "the most recent"
    );
    assert_eq!(survivor["do_not_contact"]["sms"]["reason"], "complaint");

    // B's id answers A's data, with A's id, in every per-contact query.
    let as_b = read(&app, &format!("/api/v1/contacts/{b}"), cursor).await;
    assert_eq!(as_b, survivor);
    let export = read(&app, &format!("/api/v1/contacts/{b}/export"), cursor).await;
    assert_eq!(export["contact"]["id"], a.to_string());
    assert_eq!(export["merged"][0]["id"], b.to_string());
    let timeline = read(&app, &format!("/api/v1/contacts/{b}/timeline"), cursor).await;
    assert_eq!(timeline["items"][0]["contact_id"], a.to_string());
    assert_eq!(timeline["items"][0]["event_type"], "ContactMerged");
    assert_eq!(timeline["items"][0]["data"]["source_id"], b.to_string());
    let notes = read(&app, &format!("/api/v1/contacts/{a}/notes"), cursor).await;
    assert_eq!(notes[0]["id"], note.to_string(), "B's notes are shown on A");
    assert_eq!(
        read(&app, &format!("/api/v1/contacts/{b}/notes"), cursor).await,
        notes
    );

    // The list shows A only.
    let list = read(&app, "/api/v1/contacts", cursor).await;
    let ids: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![a.to_string()]);

    // B's own history stays inspectable, ending with the merge.
    let audit = read(&app, &format!("/api/v1/audit/contact/{b}"), cursor).await;
    let events = audit["events"].as_array().unwrap();
    assert_eq!(events.last().unwrap()["event_type"], "ContactMergedInto");
    assert_eq!(audit["state"]["merged_into"], a.to_string());
    assert_eq!(audit["state"]["first_name"], "Augusta");
    app.stop().await;
}

#[tokio::test]
async fn merge_queries_and_commands_addressed_to_the_merged_id_reach_the_survivor() {
    let app = spawn_app().await;
    let (a, _) = app.create_contact(json!({"email": "a@example.org"})).await;
    let (b, _) = app.create_contact(json!({"email": "b@example.org"})).await;
    merged(&app, a, b).await;

    let res = call(
        &app,
        Method::PATCH,
        &format!("/api/v1/contacts/{b}"),
        json!({"first_name": "Ada"}),
    )
    .await;
    assert_eq!(res.status(), 200);
    let (id, _) = accepted(res).await;
    assert_eq!(id, a, "the command answers the contact it changed");
    let res = call(
        &app,
        Method::POST,
        &format!("/api/v1/contacts/{b}/tags"),
        json!({"tags": ["late"]}),
    )
    .await;
    assert_eq!(res.status(), 200);
    let res = call(
        &app,
        Method::POST,
        &format!("/api/v1/contacts/{b}/points"),
        json!({"delta": 7, "reason": "r"}),
    )
    .await;
    assert_eq!(res.status(), 200);
    let (id, cursor) = accepted(res).await;
    assert_eq!(id, a);

    for path in [
        format!("/api/v1/contacts/{a}"),
        format!("/api/v1/contacts/{b}"),
    ] {
        let c = read(&app, &path, cursor).await;
        assert_eq!(c["id"], a.to_string());
        assert_eq!(c["first_name"], "Ada");
        assert_eq!(c["tags"], json!(["late"]));
        assert_eq!(c["points"], 7);
    }
    // B's stream ended with the merge: nothing was appended to it.
    let audit = read(&app, &format!("/api/v1/audit/contact/{b}"), cursor).await;
    assert_eq!(audit["events"].as_array().unwrap().len(), 2);
    app.stop().await;
}

#[tokio::test]
async fn the_merged_contacts_email_resolves_to_the_survivor() {
    let app = spawn_app().await;
    let (a, _) = app.create_contact(json!({"email": "a@example.org"})).await;
    let (b, _) = app.create_contact(json!({"email": "b@example.org"})).await;
    merged(&app, a, b).await;

    let res = app
        .post(
            "/api/v1/contacts:upsert",
            &json!({"email": "B@example.org", "first_name": "Bea"}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let up: Value = res.json().await.unwrap();
    assert_eq!(
        (up["id"].as_str(), up["created"].as_bool()),
        (Some(a.to_string().as_str()), Some(false))
    );
    let c = read(
        &app,
        &format!("/api/v1/contacts/{a}"),
        up["cursor"].as_str().unwrap().parse().unwrap(),
    )
    .await;
    assert_eq!(c["first_name"], "Bea");
    assert_eq!(c["email"], "a@example.org");

    let res = app
        .post("/api/v1/contacts", &json!({"email": "b@example.org"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 409);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["existing_id"], a.to_string());
    app.stop().await;
}

#[tokio::test]
async fn unique_values_follow_the_merge_and_those_left_behind_are_free_again() {
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
    let create = |email: &str, crm: &str| {
        app.post(
            "/api/v1/contacts",
            &json!({"email": email, "fields": {"crm_id": crm}}),
        )
        .send()
    };
    let (a, _) = accepted(create("a@example.org", "A-1").await.unwrap()).await;
    let (b, _) = accepted(create("b@example.org", "B-1").await.unwrap()).await;
    let (status, body) = merge(&app, a, json!({"from": b, "rule": "prefer_source"})).await;
    assert_eq!(status, 200, "{body}");
    // A took B's value; its own is free again, B's is A's.
    let res = create("x@example.org", "B-1").await.unwrap();
    assert_eq!(res.status(), 409);
    let p: Value = res.json().await.unwrap();
    assert_eq!(p["existing_id"], a.to_string());
    assert_eq!(create("y@example.org", "A-1").await.unwrap().status(), 201);

    // An email change addressed to the merged id moves the survivor's email.
    let res = call(
        &app,
        Method::PATCH,
        &format!("/api/v1/contacts/{b}"),
        json!({"email": "new-a@example.org"}),
    )
    .await;
    assert_eq!(res.status(), 200);
    let (id, cursor) = accepted(res).await;
    assert_eq!(id, a);
    let c = read(&app, &format!("/api/v1/contacts/{b}"), cursor).await;
    assert_eq!(c["email"], "new-a@example.org");
    assert_eq!(c["fields"]["crm_id"], "B-1");
    // A's old address is free; B's stays A's.
    assert_eq!(create("a@example.org", "Z-1").await.unwrap().status(), 201);
    let res = create("b@example.org", "Z-2").await.unwrap();
    let p: Value = res.json().await.unwrap();
    assert_eq!(p["existing_id"], a.to_string(), "{p}");
    app.stop().await;
}

#[tokio::test]
async fn a_chain_of_merges_resolves_to_the_final_survivor() {
    let app = spawn_app().await;
    let (a, _) = app.create_contact(json!({"email": "a@example.org"})).await;
    let (b, _) = app.create_contact(json!({"email": "b@example.org"})).await;
    let (c, _) = app
        .create_contact(json!({"email": "c@example.org", "tags": ["from-c"]}))
        .await;
    let res = call(
        &app,
        Method::POST,
        &format!("/api/v1/contacts/{c}/notes"),
        json!({"text": "from c"}),
    )
    .await;
    let (note, _) = accepted(res).await;
    merged(&app, b, c).await;
    merged(&app, a, b).await;

    let res = call(
        &app,
        Method::POST,
        &format!("/api/v1/contacts/{c}/tags"),
        json!({"tags": ["via-c"]}),
    )
    .await;
    assert_eq!(res.status(), 200);
    let (id, cursor) = accepted(res).await;
    assert_eq!(id, a, "C → B → A");
    for x in [a, b, c] {
        let contact = read(&app, &format!("/api/v1/contacts/{x}"), cursor).await;
        assert_eq!(contact["id"], a.to_string());
        assert_eq!(contact["tags"], json!(["from-c", "via-c"]));
    }
    let list = read(&app, "/api/v1/contacts", cursor).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    let notes = read(&app, &format!("/api/v1/contacts/{c}/notes"), cursor).await;
    assert_eq!(notes[0]["id"], note.to_string());
    assert_eq!(notes[0]["contact_id"], a.to_string());
    // C's email reached A through B.
    let res = app
        .post("/api/v1/contacts", &json!({"email": "c@example.org"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 409);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["existing_id"], a.to_string());

    // Rebuilt from the log, the read models a merge touches come out the same.
    for p in [
        "contacts",
        "contact_merges",
        "contact_notes",
        "contact_timeline",
    ] {
        app.caught_up(p).await;
        let live = app.checksum(p).await;
        let projection = projections::by_name(p).unwrap();
        replay::rebuild::rebuild(&app.pool, projection.as_ref(), |_| {})
            .await
            .unwrap();
        assert_eq!(app.checksum(p).await, live, "{p}");
    }
    app.stop().await;
}

#[tokio::test]
async fn merging_across_organizations_answers_404() {
    let app = spawn_app().await;
    let (mine, _) = app
        .create_contact(json!({"email": "mine@example.org"}))
        .await;
    let (_, other_key) = app.other_tenant().await;
    let res = app
        .http
        .post(app.url("/api/v1/contacts"))
        .bearer_auth(&other_key)
        .json(&json!({"email": "theirs@example.org"}))
        .send()
        .await
        .unwrap();
    let (theirs, _) = accepted(res).await;
    let before = app.event_count().await;

    let (status, body) = merge(&app, mine, json!({"from": theirs})).await;
    assert_eq!(
        (status, body["type"].as_str()),
        (404, Some("/problems/not-found"))
    );
    let res = app
        .http
        .post(app.url(&format!("/api/v1/contacts/{theirs}/merge")))
        .bearer_auth(&other_key)
        .json(&json!({"from": mine}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    assert_eq!(app.event_count().await, before, "nothing was written");
    app.stop().await;
}

#[tokio::test]
async fn concurrent_merges_of_one_source_into_two_targets_let_exactly_one_win() {
    let app = spawn_app().await;
    let (a1, _) = app.create_contact(json!({"email": "a1@example.org"})).await;
    let (a2, _) = app.create_contact(json!({"email": "a2@example.org"})).await;
    let (b, _) = app.create_contact(json!({"email": "b@example.org"})).await;
    let ((s1, r1), (s2, r2)) = tokio::join!(
        merge(&app, a1, json!({"from": b})),
        merge(&app, a2, json!({"from": b, "rule": "prefer_source"})),
    );
    let mut statuses = [s1, s2];
    statuses.sort();
    assert_eq!(statuses, [200, 409], "{r1} {r2}");
    let (winner, loser) = if s1 == 200 { (a1, r2) } else { (a2, r1) };
    assert_eq!(loser["type"], "/problems/already-merged");
    assert_eq!(loser["survivor_id"], winner.to_string());
    let merges: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM events WHERE event_type IN ('ContactMerged', 'ContactMergedInto')",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(merges, 2, "one merge: one event on each stream");

    // The refusals of a merge, over HTTP.
    let (status, body) = merge(&app, winner, json!({"from": winner})).await;
    assert_eq!(
        (status, body["type"].as_str()),
        (422, Some("/problems/validation"))
    );
    let (status, body) = merge(&app, b, json!({"from": a1})).await;
    assert_eq!(status, 409, "a merged target: {body}");
    let (status, _) = merge(&app, winner, json!({"from": Uuid::now_v7()})).await;
    assert_eq!(status, 404);
    let (status, _) = merge(&app, winner, json!({"from": b, "rule": "whatever"})).await;
    assert_eq!(status, 422);
    app.stop().await;
}
