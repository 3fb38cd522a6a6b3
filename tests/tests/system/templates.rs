//! Templates: versions, publishing, previews against a real contact (custom fields, time
//! zone and locale formatting), compile errors with part, line and column (nothing
//! written), the derived text part, deletion, roles, and isolation between organizations.

use domain::identity::{KeyKind, Role};
use mauntic_tests::{accepted, spawn_app, TestApp};
use serde_json::{json, Value};
use uuid::Uuid;

async fn define(app: &TestApp, body: Value) {
    let res = app.post("/api/v1/fields", &body).send().await.unwrap();
    assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
}

async fn create(app: &TestApp, name: &str, channel: &str) -> Uuid {
    let res = app
        .post(
            "/api/v1/templates",
            &json!({"name": name, "channel": channel}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
    accepted(res).await.0
}

async fn save(app: &TestApp, id: Uuid, body: Value) -> reqwest::Response {
    app.post(&format!("/api/v1/templates/{id}/versions"), &body)
        .send()
        .await
        .unwrap()
}

async fn get_json(app: &TestApp, path: &str) -> (u16, Value) {
    let res = app.get(path).send().await.unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_template_is_versioned_published_and_previewed_for_a_real_contact() {
    let app = spawn_app().await;
    define(
        &app,
        json!({"key": "plan", "label": "Plan", "type": "select", "options": ["free", "pro"]}),
    )
    .await;
    define(
        &app,
        json!({"key": "renews_at", "label": "Renews", "type": "datetime"}),
    )
    .await;
    define(
        &app,
        json!({"key": "credit", "label": "Credit", "type": "number"}),
    )
    .await;
    let (contact, _) = app
        .create_contact(json!({
            "email": "ada@example.org", "first_name": "ada",
            "time_zone": "Europe/Berlin", "locale": "de-DE",
            "fields": {"plan": "pro", "renews_at": "2026-12-01T23:30:00Z", "credit": 1234567.5},
            "tags": ["vip"]
        }))
        .await;
    let id = create(&app, "Renewal", "email").await;

    let res = save(
        &app,
        id,
        json!({"subject": "Hi {{default contact.first_name \"there\"}}", "html": "<p>v1</p>"}),
    )
    .await;
    assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
    let res = save(
        &app,
        id,
        json!({
            "subject": "{{title contact.first_name}}, your {{upper contact.fields.plan}} plan",
            "preheader": "Renews {{date contact.fields.renews_at \"%d.%m.%Y\"}}",
            "html": "<h1>Hello {{title contact.first_name}}</h1>\
                     <p>Renews on {{date contact.fields.renews_at \"%d.%m.%Y %H:%M\"}}.</p>\
                     <p>Credit: {{number contact.fields.credit decimals=2}}</p>\
                     <p><a href=\"https://example.org/u?e={{url_encode contact.email}}\">Unsubscribe</a></p>"
        }),
    )
    .await;
    assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
    let res = app
        .post(
            &format!("/api/v1/templates/{id}/versions/2/publish"),
            &json!({}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    let (_, cursor) = accepted(res).await;

    // The list and the detail.
    let (status, page) = get_json(
        &app,
        &format!("/api/v1/templates?name=renew&consistent_after={cursor}"),
    )
    .await;
    assert_eq!(status, 200, "{page}");
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{page}");
    assert_eq!(items[0]["name"], "Renewal");
    assert_eq!(items[0]["channel"], "email");
    assert_eq!(items[0]["latest_version"], 2);
    assert_eq!(items[0]["published_version"], 2);
    let (_, page) = get_json(&app, "/api/v1/templates?name=nothing").await;
    assert_eq!(page["items"], json!([]));
    let (status, detail) = get_json(&app, &format!("/api/v1/templates/{id}")).await;
    assert_eq!(status, 200, "{detail}");
    let versions = detail["versions"].as_array().unwrap();
    assert_eq!(versions.len(), 2);
    assert_eq!(versions[0]["version"], 1);
    assert_eq!(versions[0]["content"]["html"], "<p>v1</p>");
    let (status, v2) = get_json(&app, &format!("/api/v1/templates/{id}/versions/2")).await;
    assert_eq!(status, 200);
    // The text part was derived from the HTML.
    assert_eq!(v2["content"]["text_derived"], true);
    assert_eq!(
        v2["content"]["text"],
        "# Hello {{title contact.first_name}}\n\n\
         Renews on {{date contact.fields.renews_at \"%d.%m.%Y %H:%M\"}}.\n\n\
         Credit: {{number contact.fields.credit decimals=2}}\n\n\
         [Unsubscribe][1]\n\n\
         [1]: https://example.org/u?e={{url_encode contact.email}}"
    );
    let (status, _) = get_json(&app, &format!("/api/v1/templates/{id}/versions/3")).await;
    assert_eq!(status, 404);

    // Preview for the contact: Berlin time (23:30 UTC is 00:30 the next day), German numbers.
    let res = app
        .post(
            &format!("/api/v1/templates/{id}/versions/2/preview?consistent_after={cursor}"),
            &json!({"contact_id": contact}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let preview: Value = res.json().await.unwrap();
    assert_eq!(preview["version"], 2);
    let parts = &preview["parts"];
    assert_eq!(parts["subject"], "Ada, your PRO plan");
    assert_eq!(parts["preheader"], "Renews 02.12.2026");
    assert_eq!(
        parts["html"],
        "<h1>Hello Ada</h1><p>Renews on 02.12.2026 00:30.</p><p>Credit: 1.234.567,50</p>\
         <p><a href=\"https://example.org/u?e=ada%40example.org\">Unsubscribe</a></p>"
    );
    assert_eq!(
        parts["text"],
        "# Hello Ada\n\nRenews on 02.12.2026 00:30.\n\nCredit: 1.234.567,50\n\n\
         [Unsubscribe][1]\n\n[1]: https://example.org/u?e=ada%40example.org"
    );

    // A contact without a time zone or locale: the organization's (UTC, en).
    let (plain, plain_cursor) = app
        .create_contact(json!({
            "email": "bob@example.org", "first_name": "bob",
            "fields": {"plan": "free", "renews_at": "2026-12-01T23:30:00Z", "credit": 1234567.5}
        }))
        .await;
    let res = app
        .post(
            &format!("/api/v1/templates/{id}/versions/2/preview?consistent_after={plain_cursor}"),
            &json!({"contact_id": plain}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let preview: Value = res.json().await.unwrap();
    assert_eq!(
        preview["parts"]["html"],
        "<h1>Hello Bob</h1><p>Renews on 01.12.2026 23:30.</p><p>Credit: 1,234,567.50</p>\
         <p><a href=\"https://example.org/u?e=bob%40example.org\">Unsubscribe</a></p>"
    );

    // Preview against a given context: French numbers, New York time, the fallback.
    let res = app
        .post(
            &format!("/api/v1/templates/{id}/versions/1/preview"),
            &json!({"context": {"contact": {"email": "x@example.org", "first_name": null}}}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let preview: Value = res.json().await.unwrap();
    assert_eq!(preview["parts"]["subject"], "Hi there");
    let res = app
        .post(
            &format!("/api/v1/templates/{id}/versions/2/preview"),
            &json!({"context": {"contact": {
                "email": "jean@example.org", "first_name": "jean", "time_zone": "America/New_York",
                "locale": "fr-FR", "fields": {"plan": "free", "renews_at": "2026-12-01T23:30:00Z",
                "credit": 1234.5}}}}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let preview: Value = res.json().await.unwrap();
    assert_eq!(preview["parts"]["subject"], "Jean, your FREE plan");
    assert_eq!(
        preview["parts"]["html"],
        "<h1>Hello Jean</h1><p>Renews on 01.12.2026 18:30.</p><p>Credit: 1\u{202f}234,50</p>\
         <p><a href=\"https://example.org/u?e=jean%40example.org\">Unsubscribe</a></p>"
    );

    // A context that lacks a value: 422 naming the part (strict mode).
    let res = app
        .post(
            &format!("/api/v1/templates/{id}/versions/2/preview"),
            &json!({"context": {"contact": {"email": "x@example.org"}}}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 422);
    let problem: Value = res.json().await.unwrap();
    assert_eq!(
        problem["template_errors"][0]["part"], "subject",
        "{problem}"
    );

    // An unknown contact.
    let res = app
        .post(
            &format!("/api/v1/templates/{id}/versions/2/preview"),
            &json!({"contact_id": Uuid::now_v7()}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);

    // Time travel: the template as of its first version.
    let (status, audit) =
        get_json(&app, &format!("/api/v1/audit/template/{id}?at_sequence=2")).await;
    assert_eq!(status, 200, "{audit}");
    assert_eq!(audit["state"]["latest_version"], 1, "{audit}");
    assert_eq!(audit["state"]["published_version"], Value::Null, "{audit}");

    // Rebuilt from the log, the read model comes out the same.
    app.caught_up("templates").await;
    let live = app.checksum("templates").await;
    let projection = projections::by_name("templates").unwrap();
    replay::rebuild::rebuild(&app.pool, projection.as_ref(), |_| {})
        .await
        .unwrap();
    assert_eq!(app.checksum("templates").await, live);
    app.stop().await;
}

#[tokio::test]
async fn compile_errors_answer_422_with_part_line_and_column_and_write_nothing() {
    let app = spawn_app().await;
    define(
        &app,
        json!({"key": "plan", "label": "Plan", "type": "text"}),
    )
    .await;
    let id = create(&app, "Broken", "email").await;
    let before = app.event_count().await;

    let res = save(
        &app,
        id,
        json!({"subject": "Hi", "html": "<p>Hello</p>\n<p>{{#if contact.first_name}}x</p>"}),
    )
    .await;
    assert_eq!(res.status(), 422);
    assert_eq!(res.headers()["content-type"], "application/problem+json");
    let problem: Value = res.json().await.unwrap();
    let e = &problem["template_errors"][0];
    assert_eq!(e["part"], "html", "{problem}");
    assert_eq!(e["line"], 2, "{problem}");
    assert!(e["column"].as_u64().is_some(), "{problem}");
    assert_eq!(problem["errors"][0]["field"], "html");

    let res = save(
        &app,
        id,
        json!({"subject": "Your {{contact.fields.plan}}", "html": "<p>Hi</p>\n<p>{{contact.fields.colour}}</p>"}),
    )
    .await;
    assert_eq!(res.status(), 422);
    let problem: Value = res.json().await.unwrap();
    assert_eq!(
        problem["template_errors"],
        json!([{"part": "html", "line": 2, "column": 4,
                "message": "contact.fields.colour: no such custom field"}]),
        "{problem}"
    );

    let res = save(
        &app,
        id,
        json!({"subject": "{{customer.name}}", "html": "x"}),
    )
    .await;
    assert_eq!(res.status(), 422);
    let problem: Value = res.json().await.unwrap();
    assert_eq!(problem["template_errors"][0]["part"], "subject");
    assert_eq!(problem["template_errors"][0]["line"], 1);
    assert_eq!(problem["template_errors"][0]["column"], 1);

    // Parts of another channel, or missing ones.
    let res = save(&app, id, json!({"body": "x"})).await;
    assert_eq!(res.status(), 422);
    let problem: Value = res.json().await.unwrap();
    let fields: Vec<&str> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["subject", "html", "body"], "{problem}");

    assert_eq!(app.event_count().await, before, "nothing was written");
    app.stop().await;
}

#[tokio::test]
async fn a_deleted_template_refuses_commands_and_leaves_the_list() {
    let app = spawn_app().await;
    let id = create(&app, "Short-lived", "sms").await;
    let res = save(&app, id, json!({"body": "Hi {{contact.first_name}}"})).await;
    assert_eq!(res.status(), 201);
    let res = app
        .patch(
            &format!("/api/v1/templates/{id}"),
            &json!({"name": "Renamed"}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let res = app
        .delete(&format!("/api/v1/templates/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let (_, cursor) = accepted(res).await;

    let res = save(&app, id, json!({"body": "again"})).await;
    assert_eq!(res.status(), 410);
    let problem: Value = res.json().await.unwrap();
    assert_eq!(problem["type"], "/problems/template-deleted");
    for res in [
        app.post(
            &format!("/api/v1/templates/{id}/versions/1/publish"),
            &json!({}),
        ),
        app.patch(&format!("/api/v1/templates/{id}"), &json!({"name": "x"})),
        app.delete(&format!("/api/v1/templates/{id}")),
    ] {
        assert_eq!(res.send().await.unwrap().status(), 410);
    }
    let (status, _) = get_json(
        &app,
        &format!("/api/v1/templates/{id}?consistent_after={cursor}"),
    )
    .await;
    assert_eq!(status, 404);
    let (_, page) = get_json(&app, "/api/v1/templates").await;
    assert_eq!(page["items"], json!([]));

    // Publishing a version that does not exist, on a live template.
    let other = create(&app, "Other", "sms").await;
    let res = app
        .post(
            &format!("/api/v1/templates/{other}/versions/1/publish"),
            &json!({}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    app.stop().await;
}

#[tokio::test]
async fn viewers_read_templates_and_other_organizations_see_none() {
    let app = spawn_app().await;
    let id = create(&app, "Push", "push").await;
    let res = save(
        &app,
        id,
        json!({"title": "Hi {{contact.first_name}}", "body": "b", "data": {"url": "/p/{{url_encode contact.email}}"}}),
    )
    .await;
    assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
    let (_, cursor) = accepted(res).await;

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
        .get(app.url(&format!("/api/v1/templates/{id}?consistent_after={cursor}")))
        .bearer_auth(&viewer.key)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let res = app
        .http
        .post(app.url(&format!("/api/v1/templates/{id}/versions/1/preview")))
        .bearer_auth(&viewer.key)
        .json(&json!({"context": {"contact": {"email": "a b@example.org", "first_name": "V"}}}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let preview: Value = res.json().await.unwrap();
    assert_eq!(
        preview["parts"],
        json!({"title": "Hi V", "body": "b", "data.url": "/p/a%20b%40example.org"})
    );
    let res = app
        .http
        .post(app.url(&format!("/api/v1/templates/{id}/versions")))
        .bearer_auth(&viewer.key)
        .json(&json!({"title": "t", "body": "b"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);

    let (_, other_key) = app.other_tenant().await;
    let before = app.event_count().await;
    let other = |m: reqwest::Method, path: String| {
        app.http.request(m, app.url(&path)).bearer_auth(&other_key)
    };
    for req in [
        other(reqwest::Method::GET, format!("/api/v1/templates/{id}")),
        other(
            reqwest::Method::GET,
            format!("/api/v1/templates/{id}/versions/1"),
        ),
        other(
            reqwest::Method::POST,
            format!("/api/v1/templates/{id}/versions/1/preview"),
        )
        .json(&json!({"context": {}})),
        other(
            reqwest::Method::POST,
            format!("/api/v1/templates/{id}/versions/1/publish"),
        ),
        other(
            reqwest::Method::POST,
            format!("/api/v1/templates/{id}/versions"),
        )
        .json(&json!({"title": "t", "body": "b"})),
        other(reqwest::Method::PATCH, format!("/api/v1/templates/{id}"))
            .json(&json!({"name": "pwned"})),
        other(reqwest::Method::DELETE, format!("/api/v1/templates/{id}")),
    ] {
        assert_eq!(req.send().await.unwrap().status(), 404);
    }
    let page: Value = other(reqwest::Method::GET, "/api/v1/templates".to_owned())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(page["items"], json!([]));
    assert_eq!(app.event_count().await, before, "nothing was written");
    app.stop().await;
}
