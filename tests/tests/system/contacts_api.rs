use std::collections::HashSet;
use std::time::Duration;

use mauntic_tests::{accepted, spawn_app, spawn_with, Options};
use serde_json::{json, Value};

#[tokio::test]
async fn a_created_contact_reads_back_as_written_and_updates_apply() {
    let app = spawn_app().await;
    let (id, cursor) = app
        .create_contact(json!({"email": " Ada@Example.ORG ", "first_name": "Ada", "last_name": "Byron",
                               "fields": {"plan": "pro", "score": 7, "beta": true, "langs": ["en", "fr"]},
                               "tags": ["vip", "vip", "news"]}))
        .await;
    let c = app.contact(id, cursor).await;
    assert_eq!(c["email"], "ada@example.org");
    assert_eq!(c["first_name"], "Ada");
    assert_eq!(
        c["fields"],
        json!({"plan": "pro", "score": 7, "beta": true, "langs": ["en", "fr"]})
    );
    assert_eq!(c["tags"], json!(["news", "vip"]));
    assert_eq!(c["version"], 1);

    let res = app
        .patch(
            &format!("/api/v1/contacts/{id}"),
            &json!({"last_name": null, "fields": {"plan": null, "score": 8}}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let (_, cursor) = accepted(res).await;
    let c = app.contact(id, cursor).await;
    assert_eq!(c["last_name"], Value::Null);
    assert_eq!(
        c["fields"],
        json!({"score": 8, "beta": true, "langs": ["en", "fr"]})
    );
    assert_eq!(c["version"], 2);

    let res = app
        .delete(&format!("/api/v1/contacts/{id}/tags/vip"))
        .send()
        .await
        .unwrap();
    let (_, cursor) = accepted(res).await;
    assert_eq!(app.contact(id, cursor).await["tags"], json!(["news"]));
    app.stop().await;
}

#[tokio::test]
async fn contacts_list_in_keyset_pages_without_gaps_or_repeats() {
    let app = spawn_app().await;
    let mut created = HashSet::new();
    let mut last = None;
    for i in 0..25 {
        let (id, c) = app
            .create_contact(json!({"email": format!("k{i}@example.org")}))
            .await;
        created.insert(id.to_string());
        last = Some(c);
    }
    let mut seen = Vec::new();
    let mut next: Option<String> = None;
    loop {
        let mut url = format!(
            "/api/v1/contacts?limit=10&consistent_after={}",
            last.unwrap()
        );
        if let Some(n) = &next {
            url.push_str(&format!("&after={n}"));
        }
        let page: Value = app.get(&url).send().await.unwrap().json().await.unwrap();
        for item in page["items"].as_array().unwrap() {
            seen.push(item["id"].as_str().unwrap().to_owned());
        }
        match page["next"].as_str() {
            Some(n) => next = Some(n.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen.len(), 25);
    assert_eq!(seen.iter().cloned().collect::<HashSet<_>>(), created);
    let mut sorted = seen.clone();
    sorted.sort();
    assert_eq!(seen, sorted, "pages come in id order");

    for bad in ["limit=0", "limit=501", "after=not-a-token"] {
        let res = app
            .get(&format!("/api/v1/contacts?{bad}"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 400, "{bad}");
    }
    app.stop().await;
}

#[tokio::test]
async fn a_query_waits_for_its_cursor_and_answers_503_when_the_model_cannot_reach_it() {
    let app = spawn_with(Options {
        // Long enough for other tests' transactions (which hold the cluster-wide horizon) to
        // end; the unreachable cursor below waits all of it.
        consistency_timeout: Duration::from_secs(3),
        ..Options::default()
    })
    .await;
    let (id, cursor) = app
        .create_contact(json!({"email": "wait@example.org"}))
        .await;
    // Via the header rather than the query string.
    let res = app
        .get(&format!("/api/v1/contacts/{id}"))
        .header("x-mauntic-after", cursor.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);

    let res = app
        .get("/api/v1/contacts?consistent_after=999999999-1")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 503);
    assert_eq!(res.headers()["retry-after"], "1");
    let res = app
        .get("/api/v1/contacts?consistent_after=garbage")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    app.stop().await;
}

#[tokio::test]
async fn concurrent_writes_to_one_contact_are_retried_and_none_is_lost() {
    let app = spawn_app().await;
    let (id, _) = app
        .create_contact(json!({"email": "busy@example.org"}))
        .await;
    let mut tasks = Vec::new();
    for i in 0..16 {
        let req = app.post(
            &format!("/api/v1/contacts/{id}/tags"),
            &json!({"tags": [format!("t{i}")]}),
        );
        tasks.push(tokio::spawn(async move { req.send().await.unwrap() }));
    }
    let mut last = None;
    for t in tasks {
        let res = t.await.unwrap();
        assert_eq!(
            res.status(),
            200,
            "{}",
            res.text().await.unwrap_or_default()
        );
        let (_, c) = accepted(res).await;
        last = last.max(Some(c));
    }
    let c = app.contact(id, last.unwrap()).await;
    assert_eq!(c["tags"].as_array().unwrap().len(), 16);
    assert_eq!(c["version"], 17);
    app.stop().await;
}

#[tokio::test]
async fn bad_input_gets_a_problem_and_writes_nothing() {
    let app = spawn_with(Options {
        max_body_bytes: 4096,
        ..Options::default()
    })
    .await;
    let (id, _) = app
        .create_contact(json!({"email": "exists@example.org"}))
        .await;
    let before = app.event_count().await;
    let post = |body: &str| {
        app.http
            .post(app.url("/api/v1/contacts"))
            .bearer_auth(&app.api_key)
            .header("content-type", "application/json")
            .body(body.to_owned())
    };
    let huge = format!(
        r#"{{"email":"a@b.org","first_name":"{}"}}"#,
        "x".repeat(10_000)
    );
    let cases: Vec<(reqwest::RequestBuilder, u16, &str)> = vec![
        (post("{\"email\": "), 400, "/problems/malformed-json"),
        (post("[1,2]"), 422, "/problems/validation"),
        (
            post(r#"{"email":"not-an-email"}"#),
            422,
            "/problems/validation",
        ),
        (
            post(r#"{"first_name":"No Email"}"#),
            422,
            "/problems/validation",
        ),
        (
            post(r#"{"email":"a@b.org","fields":{"address":{"city":"x"}}}"#),
            422,
            "/problems/validation",
        ),
        (
            post(r#"{"email":"a@b.org","fields":{"list":[1,2]}}"#),
            422,
            "/problems/validation",
        ),
        (
            post(r#"{"email":"a@b.org","fields":{"Bad Key":1}}"#),
            422,
            "/problems/validation",
        ),
        (
            post(r#"{"email":"a@b.org","colour":"red"}"#),
            422,
            "/problems/validation",
        ),
        (
            post(r#"{"email":"a@b.org","tags":[""]}"#),
            422,
            "/problems/validation",
        ),
        (post(&huge), 413, "/problems/body-too-large"),
        (
            app.http
                .post(app.url("/api/v1/contacts"))
                .bearer_auth(&app.api_key)
                .body("{}"),
            415,
            "/problems/unsupported-media-type",
        ),
        (
            app.http
                .post(app.url("/api/v1/contacts"))
                .json(&json!({"email": "a@b.org"})),
            401,
            "/problems/unauthorized",
        ),
        (
            app.http
                .post(app.url("/api/v1/contacts"))
                .bearer_auth("mk_wrong")
                .json(&json!({"email": "a@b.org"})),
            401,
            "/problems/unauthorized",
        ),
        (
            app.patch(&format!("/api/v1/contacts/{id}"), &json!({"email": "nope"})),
            422,
            "/problems/validation",
        ),
        (
            app.patch(
                "/api/v1/contacts/0190f1c2-0000-7000-8000-000000000001",
                &json!({"first_name": "X"}),
            ),
            404,
            "/problems/not-found",
        ),
        (
            app.patch("/api/v1/contacts/not-a-uuid", &json!({"first_name": "X"})),
            404,
            "/problems/not-found",
        ),
        (
            app.post(&format!("/api/v1/contacts/{id}/tags"), &json!({"tags": []})),
            422,
            "/problems/validation",
        ),
    ];
    for (i, (req, status, kind)) in cases.into_iter().enumerate() {
        let res = req.send().await.unwrap();
        assert_eq!(res.status().as_u16(), status, "case {i}");
        assert_eq!(
            res.headers()["content-type"],
            "application/problem+json",
            "case {i}"
        );
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["type"], kind, "case {i}: {body}");
        assert_eq!(body["status"], status, "case {i}");
    }
    assert_eq!(
        app.event_count().await,
        before,
        "a rejected request wrote an event"
    );
    app.stop().await;
}
