//! Warmup of sending domains through the API: a configured ramp holds email over the day's
//! allowance until the next window (and the status counts it), `{}` is BillionMail's
//! schedule, bad configurations are refused whole, removal lifts the limit, and the
//! `delivery_warmup` read model is what a rebuild from the log makes.

use std::time::Duration;

use chrono::{DateTime, Utc};
use mauntic_tests::{accepted, spawn_app, TestApp};
use serde_json::{json, Value};
use uuid::Uuid;

const WAIT: Duration = Duration::from_secs(20);

async fn put(app: &TestApp, domain: &str, body: &Value) -> reqwest::Response {
    app.http
        .put(app.url(&format!("/api/v1/warmup/{domain}")))
        .bearer_auth(&app.api_key)
        .json(body)
        .send()
        .await
        .unwrap()
}

/// Configures `domain`; the answer (`id`, `cursor`, `warmup`).
async fn configure(app: &TestApp, domain: &str, body: Value) -> Value {
    let res = put(app, domain, &body).await;
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    res.json().await.unwrap()
}

/// Status and JSON of a GET once the read model has passed `cursor`.
async fn get_after(app: &TestApp, path: &str, cursor: &str) -> (u16, Value) {
    let res = app
        .get(&format!("{path}?consistent_after={cursor}"))
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

async fn template(app: &TestApp) -> Uuid {
    app.published_template("email", json!({"subject": "News", "html": "<p>News</p>"}))
        .await
}

/// Sends a message from `from` to `to`; its job id.
async fn send(app: &TestApp, template: Uuid, from: &str, to: &str) -> String {
    app.send_message(json!({"template_id": template, "to": to, "from": {"address": from}}))
        .await
}

fn status_of(job: &Value) -> &str {
    job["state"]["status"].as_str().unwrap_or_default()
}

/// Waits until every job is in one of `statuses`; the jobs then.
async fn settled(app: &TestApp, ids: &[String], statuses: &[&str]) -> Vec<Value> {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let mut jobs = Vec::new();
        for id in ids {
            jobs.push(app.delivery_job(id).await);
        }
        if jobs.iter().all(|j| statuses.contains(&status_of(j))) {
            return jobs;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "jobs not settled in {statuses:?}: {:?}",
            jobs.iter().map(status_of).collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn today() -> String {
    Utc::now().date_naive().to_string()
}

#[tokio::test]
async fn a_domain_sends_its_days_allowance_and_the_rest_waits_for_the_next_window() {
    let app = spawn_app().await;
    let answer = configure(&app, "Warm.Example.org", json!({"ramp": [2]})).await;
    let w = &answer["warmup"];
    assert_eq!(w["domain"], "warm.example.org");
    assert_eq!(w["started_on"], today());
    assert_eq!(w["time_zone"], "UTC");
    assert_eq!(
        (&w["day"], &w["allowance"], &w["used"], &w["remaining"]),
        (&json!(1), &json!(2), &json!(0), &json!(2)),
        "{w}"
    );
    let cursor = answer["cursor"].as_str().unwrap().to_owned();
    // The worker follows the read model: wait until it has the configuration.
    let (status, _) = get_after(&app, "/api/v1/warmup/warm.example.org", &cursor).await;
    assert_eq!(status, 200);

    let t = template(&app).await;
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(
            send(
                &app,
                t,
                "news@warm.example.org",
                &format!("r{i}@example.org"),
            )
            .await,
        );
    }
    // Another domain is not limited.
    let other = send(&app, t, "news@cold.example.org", "x@example.org").await;
    settled(&app, &[other], &["sent"]).await;

    let jobs = settled(&app, &ids, &["sent", "deferred"]).await;
    let sent = jobs.iter().filter(|j| status_of(j) == "sent").count();
    assert_eq!(sent, 2, "exactly the day's allowance is sent");
    let (_, w) = get_after(&app, "/api/v1/warmup/warm.example.org", &cursor).await;
    let window_ends: DateTime<Utc> = w["window_ends"].as_str().unwrap().parse().unwrap();
    assert_eq!(
        window_ends,
        (Utc::now().date_naive() + chrono::Days::new(1))
            .and_hms_opt(0, 0, 0)
            .unwrap()
            .and_utc()
    );
    for j in jobs.iter().filter(|j| status_of(j) == "deferred") {
        let last = j["events"].as_array().unwrap().last().unwrap();
        let deferred = &last["payload"]["DeliveryDeferred"];
        assert_eq!(
            deferred["reason"],
            json!({"kind": "warmup", "domain": "warm.example.org"}),
            "{j}"
        );
        let until: DateTime<Utc> = deferred["until"].as_str().unwrap().parse().unwrap();
        assert_eq!(until, window_ends);
    }
    assert_eq!((&w["used"], &w["remaining"]), (&json!(2), &json!(0)), "{w}");
    app.stop().await;
}

#[tokio::test]
async fn an_empty_body_configures_billionmails_ramp_starting_today() {
    let app = spawn_app().await;
    let answer = configure(&app, "bulk.example.org", json!({})).await;
    let w = &answer["warmup"];
    assert_eq!(
        w["ramp"],
        json!([1000, 1500, 2000, 3000, 5000, 7000, 10000])
    );
    assert_eq!(
        (&w["growth"], &w["ceiling"]),
        (&json!(1.3), &json!(1_000_000))
    );
    assert_eq!((&w["day"], &w["allowance"]), (&json!(1), &json!(1000)));
    assert_eq!(
        (&w["started_on"], &w["time_zone"]),
        (&json!(today()), &json!("UTC"))
    );
    assert_eq!(w["warm"], false);

    // Started three days ago at UTC+2: day 4 (3,000). A new ramp keeps that start.
    let plus_two = chrono::FixedOffset::east_opt(2 * 3600).unwrap();
    let start =
        (Utc::now().with_timezone(&plus_two).date_naive() - chrono::Days::new(3)).to_string();
    let w = configure(
        &app,
        "bulk.example.org",
        json!({"started_on": start, "time_zone": "Etc/GMT-2"}),
    )
    .await["warmup"]
        .clone();
    assert_eq!(
        (&w["day"], &w["allowance"]),
        (&json!(4), &json!(3000)),
        "{w}"
    );
    let answer = configure(
        &app,
        "bulk.example.org",
        json!({"time_zone": "Etc/GMT-2", "ramp": [10], "growth": 1.0, "ceiling": null}),
    )
    .await;
    let w = &answer["warmup"];
    assert_eq!(w["started_on"], start);
    assert_eq!(
        (&w["day"], &w["allowance"], &w["ceiling"]),
        (&json!(4), &json!(10), &Value::Null)
    );

    let cursor = answer["cursor"].as_str().unwrap();
    let (status, list) = get_after(&app, "/api/v1/warmup", cursor).await;
    assert_eq!(status, 200);
    assert_eq!(list["items"].as_array().unwrap().len(), 1, "{list}");
    assert_eq!(
        &list["items"][0], w,
        "the list shows what the command answered"
    );
    app.stop().await;
}

#[tokio::test]
async fn each_bad_configuration_is_refused_with_a_problem_and_writes_nothing() {
    let app = spawn_app().await;
    let before = app.event_count().await;
    let cases: &[(&str, Value, &str)] = &[
        ("not_a_domain", json!({}), "domain"),
        ("localhost", json!({}), "domain"),
        (
            "ok.example.org",
            json!({"time_zone": "Mars/Olympus"}),
            "time_zone",
        ),
        ("ok.example.org", json!({"ramp": []}), "ramp"),
        ("ok.example.org", json!({"ramp": [5, 0]}), "ramp"),
        ("ok.example.org", json!({"ramp": [5, 3]}), "ramp"),
        ("ok.example.org", json!({"ramp": [-1]}), "ramp"),
        ("ok.example.org", json!({"growth": 0.5}), "growth"),
        (
            "ok.example.org",
            json!({"ramp": [10, 20], "ceiling": 15}),
            "ceiling",
        ),
        ("ok.example.org", json!({"ramp": [2_000_000]}), "ceiling"),
        (
            "ok.example.org",
            json!({"started_on": "yesterday"}),
            "started_on",
        ),
        ("ok.example.org", json!({"rampp": [1]}), "rampp"),
    ];
    for (domain, body, field) in cases {
        let res = put(&app, domain, body).await;
        assert_eq!(res.status(), 422, "{domain} {body}");
        assert_eq!(
            res.headers()["content-type"],
            "application/problem+json",
            "{domain} {body}"
        );
        let problem = res.text().await.unwrap();
        assert!(problem.contains(field), "{domain} {body}: {problem}");
    }
    assert_eq!(app.event_count().await, before, "nothing was recorded");
    let (_, list) = get_after(&app, "/api/v1/warmup", &app.head().await.to_string()).await;
    assert_eq!(list["items"], json!([]));
    app.stop().await;
}

#[tokio::test]
async fn after_removal_the_domain_sends_without_warmup() {
    let app = spawn_app().await;
    let answer = configure(&app, "warm.example.org", json!({"ramp": [1]})).await;
    get_after(
        &app,
        "/api/v1/warmup/warm.example.org",
        answer["cursor"].as_str().unwrap(),
    )
    .await;
    let t = template(&app).await;
    let first = send(&app, t, "news@warm.example.org", "a@example.org").await;
    settled(&app, &[first], &["sent"]).await;
    let second = send(&app, t, "news@warm.example.org", "b@example.org").await;
    settled(&app, std::slice::from_ref(&second), &["deferred"]).await;

    let res = app
        .delete("/api/v1/warmup/warm.example.org")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let (_, cursor) = accepted(res).await;
    let (status, _) = get_after(&app, "/api/v1/warmup/warm.example.org", &cursor.to_string()).await;
    assert_eq!(status, 404);
    let res = app
        .delete("/api/v1/warmup/warm.example.org")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404, "removed already");

    let mut ids = Vec::new();
    for i in 0..3 {
        ids.push(
            send(
                &app,
                t,
                "news@warm.example.org",
                &format!("c{i}@example.org"),
            )
            .await,
        );
    }
    for j in settled(&app, &ids, &["sent", "deferred"]).await {
        assert_eq!(status_of(&j), "sent", "not deferred after removal: {j}");
    }
    // The one deferred before stays deferred to its window (it was decided then).
    assert_eq!(status_of(&app.delivery_job(&second).await), "deferred");
    app.stop().await;
}

#[tokio::test]
async fn the_warmup_read_model_is_what_a_rebuild_from_the_log_makes() {
    let app = spawn_app().await;
    configure(&app, "a.example.org", json!({"ramp": [5, 10]})).await;
    let b = configure(&app, "b.example.org", json!({})).await;
    configure(
        &app,
        "b.example.org",
        json!({"time_zone": "Asia/Tokyo", "ramp": [7]}),
    )
    .await;
    configure(&app, "c.example.org", json!({"ceiling": null})).await;
    let res = app
        .delete("/api/v1/warmup/c.example.org")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    // c configured again after its removal: a fresh row.
    configure(&app, "c.example.org", json!({"ramp": [3]})).await;
    configure(&app, "d.example.org", json!({})).await;
    let res = app
        .delete("/api/v1/warmup/d.example.org")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);

    app.caught_up("warmup").await;
    let (_, list) = get_after(&app, "/api/v1/warmup", &app.head().await.to_string()).await;
    let domains: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["domain"].as_str().unwrap())
        .collect();
    assert_eq!(domains, ["a.example.org", "b.example.org", "c.example.org"]);
    assert_eq!(list["items"][1]["time_zone"], "Asia/Tokyo");

    let live = app.checksum("delivery_warmup").await;
    let projection = projections::by_name("warmup").unwrap();
    replay::rebuild::rebuild(&app.pool, projection.as_ref(), |_| {})
        .await
        .unwrap();
    assert_eq!(app.checksum("delivery_warmup").await, live);

    // Time travel knows the aggregate.
    let id = b["id"].as_str().unwrap();
    let res = app
        .get(&format!("/api/v1/audit/delivery_warmup/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let audit: Value = res.json().await.unwrap();
    assert_eq!(audit["events"].as_array().unwrap().len(), 2, "{audit}");
    assert_eq!(audit["state"]["warmup"]["time_zone"], "Asia/Tokyo");
    app.stop().await;
}
