//! Campaigns end to end: drafts and their refusals over HTTP, a send to segments minus
//! exclusions, pause/resume under load, cancel, recipients' time zones with a moved clock,
//! and an A/B test whose winner goes to the remainder. Messages land in the development
//! mailbox (the default provider), where each recipient's messages are counted.

use std::collections::HashMap;
use std::time::Duration;

use futures::StreamExt;
use mauntic_tests::{accepted, eventually, spawn_app, TestApp};
use serde_json::{json, Value};
use uuid::Uuid;

const WAIT: Duration = Duration::from_secs(90);

/// `n` contacts `<prefix><i>@example.org` (with `extra` fields), created 16 at a time.
pub(crate) async fn contacts(app: &TestApp, prefix: &str, n: usize, extra: Value) -> Vec<Uuid> {
    futures::stream::iter(0..n)
        .map(|i| {
            let mut body = extra.clone();
            body["email"] = json!(format!("{prefix}{i}@example.org"));
            async move { app.create_contact(body).await.0 }
        })
        .buffered(16)
        .collect()
        .await
}

/// A static segment holding `ids`.
pub(crate) async fn segment(app: &TestApp, name: &str, ids: &[Uuid]) -> Uuid {
    let res = app
        .post("/api/v1/segments", &json!({"name": name}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let (id, _) = accepted(res).await;
    for chunk in ids.chunks(5_000) {
        let res = app
            .post(
                &format!("/api/v1/segments/{id}/contacts"),
                &json!({"contact_ids": chunk}),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    }
    id
}

pub(crate) async fn answer(res: reqwest::Response) -> (u16, Value) {
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

pub(crate) async fn post(app: &TestApp, path: &str, body: Value) -> (u16, Value) {
    answer(app.post(path, &body).send().await.unwrap()).await
}

pub(crate) async fn create(app: &TestApp, body: Value) -> Uuid {
    let (status, v) = post(app, "/api/v1/campaigns", body).await;
    assert_eq!(status, 201, "{v}");
    v["id"].as_str().unwrap().parse().unwrap()
}

pub(crate) async fn act(app: &TestApp, id: Uuid, action: &str) -> (u16, Value) {
    post(app, &format!("/api/v1/campaigns/{id}/{action}"), json!({})).await
}

/// The campaign as the log says it is now.
pub(crate) async fn campaign(app: &TestApp, id: Uuid) -> Value {
    let res = app
        .get(&format!("/api/v1/audit/campaign/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    res.json::<Value>().await.unwrap()["state"].clone()
}

pub(crate) async fn wait_status(app: &TestApp, id: Uuid, status: &str) -> Value {
    let mut last = Value::Null;
    let deadline = tokio::time::Instant::now() + WAIT;
    while tokio::time::Instant::now() < deadline {
        last = campaign(app, id).await;
        if last["status"] == status {
            return last;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("campaign {id} is not {status}: {last}");
}

/// Messages in the development mailbox, per recipient.
pub(crate) async fn mailbox(app: &TestApp) -> HashMap<String, i64> {
    sqlx::query_as::<_, (String, i64)>(
        "SELECT recipient, count(*) FROM dev_mailbox WHERE tenant_id = $1 GROUP BY recipient",
    )
    .bind(app.tenant_id)
    .fetch_all(&app.pool)
    .await
    .unwrap()
    .into_iter()
    .collect()
}

/// The campaign's delivery jobs per status (from the log).
async fn job_statuses(app: &TestApp, id: Uuid) -> HashMap<String, i64> {
    sqlx::query_as::<_, (String, i64)>(
        "SELECT status, count(*) FROM deliveries WHERE tenant_id = $1 AND source_id = $2 \
         GROUP BY status",
    )
    .bind(app.tenant_id)
    .bind(id)
    .fetch_all(&app.pool)
    .await
    .unwrap()
    .into_iter()
    .collect()
}

async fn news(app: &TestApp) -> Uuid {
    app.published_template(
        "email",
        json!({"subject": "News for {{contact.email}}", "html": "<p>Hello</p>"}),
    )
    .await
}

#[tokio::test]
async fn a_campaign_goes_once_to_each_member_of_its_segments_who_is_in_no_excluded_one() {
    let app = spawn_app().await;
    let t = news(&app).await;
    let all = contacts(&app, "m", 30, json!({})).await;
    // Two overlapping included segments (a contact in both gets one message) and one
    // excluded segment.
    let a = segment(&app, "A", &all[..20]).await;
    let b = segment(&app, "B", &all[10..25]).await;
    let out = segment(&app, "Out", &all[20..23]).await;
    let id = create(
        &app,
        json!({"name": "November", "template_id": t, "segments": [a, b], "excluded_segments": [out]}),
    )
    .await;
    let (status, v) = act(&app, id, "send").await;
    assert_eq!(status, 200, "{v}");
    let done = wait_status(&app, id, "sent").await;
    assert_eq!(done["audience"], 22, "{done}");
    assert_eq!(done["pinned"][0]["version"], 1);
    let got = mailbox(&app).await;
    let expected: Vec<String> = (0..25)
        .filter(|i| !(20..23).contains(i))
        .map(|i| format!("m{i}@example.org"))
        .collect();
    assert_eq!(got.len(), 22, "{got:?}");
    for r in &expected {
        assert_eq!(got.get(r), Some(&1), "{r}: {got:?}");
    }
    // The campaign's own values reach the template context.
    let row: (String, String) =
        sqlx::query_as("SELECT recipient, subject FROM dev_mailbox WHERE tenant_id = $1 LIMIT 1")
            .bind(app.tenant_id)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(row.1, format!("News for {}", row.0));
    // Sending again is refused; the campaign is sent.
    let (status, v) = act(&app, id, "send").await;
    assert_eq!(status, 409, "{v}");
    assert_eq!(v["status"], 409, "{v}");
    assert_eq!(v["current_status"], "sent", "{v}");
    app.stop().await;
}

#[tokio::test]
async fn drafts_are_checked_and_a_sending_campaigns_audience_is_locked() {
    let app = spawn_app().await;
    let t = news(&app).await;
    let sms = app.published_template("sms", json!({"body": "Hi"})).await;
    let ids = contacts(&app, "d", 3, json!({})).await;
    let seg = segment(&app, "D", &ids).await;

    // Bad input names every bad field and writes nothing.
    let before = app.event_count().await;
    for (body, field) in [
        (json!({"template_id": t}), "name"),
        (json!({"name": " "}), "name"),
        (json!({"name": "x", "template_id": sms}), "template_id"),
        (
            json!({"name": "x", "segments": [Uuid::now_v7()]}),
            "segments",
        ),
        (
            json!({"name": "x", "segments": [seg], "excluded_segments": [seg]}),
            "excluded_segments",
        ),
        (json!({"name": "x", "from": {"address": "nope"}}), "from"),
        (
            json!({"name": "x", "throttle_per_hour": 0}),
            "throttle_per_hour",
        ),
        (
            json!({"name": "x", "ab_test": {"variants": [{"name": "A", "template_id": t}],
                   "test_percent": 20, "metric": "unique_opens", "wait_minutes": 60}}),
            "ab_test.variants",
        ),
        (
            json!({"name": "x", "provider_id": Uuid::now_v7()}),
            "provider_id",
        ),
    ] {
        let (status, v) = post(&app, "/api/v1/campaigns", body.clone()).await;
        assert_eq!(status, 422, "{body}: {v}");
        assert_eq!(v["errors"][0]["field"], field, "{body}: {v}");
    }
    let (status, _) = post(&app, "/api/v1/campaigns", json!({"name": "x", "bogus": 1})).await;
    assert_eq!(status, 422);
    assert_eq!(app.event_count().await, before, "nothing was written");

    // An incomplete draft can be saved, not scheduled or sent.
    let id = create(&app, json!({"name": "Draft"})).await;
    let (status, v) = act(&app, id, "send").await;
    assert_eq!(status, 422, "{v}");
    let (status, v) = post(
        &app,
        &format!("/api/v1/campaigns/{id}/schedule"),
        json!({"at": "2099-01-01T09:00", "time_zone": "Europe/Berlin"}),
    )
    .await;
    assert_eq!(status, 422, "{v}");
    assert_eq!(v["errors"][0]["field"], "template_id");
    // Completed, it is scheduled; a time in the past is refused.
    let res = app
        .patch(
            &format!("/api/v1/campaigns/{id}"),
            &json!({"template_id": t, "segments": [seg], "throttle_per_hour": 60}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let (status, v) = post(
        &app,
        &format!("/api/v1/campaigns/{id}/schedule"),
        json!({"at": "2001-01-01T09:00"}),
    )
    .await;
    assert_eq!(status, 422, "{v}");
    let (status, v) = post(
        &app,
        &format!("/api/v1/campaigns/{id}/schedule"),
        json!({"at": "2099-01-01T09:00", "time_zone": "Europe/Berlin"}),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    let c = campaign(&app, id).await;
    assert_eq!(c["status"], "scheduled");
    assert_eq!(c["schedule"]["at"], "2099-01-01T08:00:00Z");
    let (status, _) = act(&app, id, "unschedule").await;
    assert_eq!(status, 200);
    assert_eq!(campaign(&app, id).await["status"], "draft");

    // Sending (throttled to one a minute, so it is still sending): only the name changes.
    let (status, v) = act(&app, id, "send").await;
    assert_eq!(status, 200, "{v}");
    let res = app
        .patch(&format!("/api/v1/campaigns/{id}"), &json!({"segments": []}))
        .send()
        .await
        .unwrap();
    let (status, v) = answer(res).await;
    assert_eq!(status, 409, "{v}");
    assert_eq!(v["field"], "segments");
    let res = app
        .patch(
            &format!("/api/v1/campaigns/{id}"),
            &json!({"name": "Renamed"}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let (status, _) = answer(
        app.delete(&format!("/api/v1/campaigns/{id}"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 409, "a sending campaign is not deleted");
    let (status, _) = act(&app, id, "resume").await;
    assert_eq!(status, 409, "a sending campaign is not resumed");

    // A clone is a draft with the same settings and its own name.
    let (status, v) = post(&app, &format!("/api/v1/campaigns/{id}/clone"), json!({})).await;
    assert_eq!(status, 201, "{v}");
    let copy: Uuid = v["id"].as_str().unwrap().parse().unwrap();
    let c = campaign(&app, copy).await;
    assert_eq!(c["status"], "draft");
    assert_eq!(c["settings"]["name"], "Renamed (copy)");
    assert_eq!(c["settings"]["template_id"], t.to_string());
    assert_eq!(c["cloned_from"], id.to_string());
    // Every settings change is in the campaign's history.
    let res = app
        .get(&format!("/api/v1/audit/campaign/{id}"))
        .send()
        .await
        .unwrap();
    let history: Value = res.json().await.unwrap();
    let changes: Vec<&Value> = history["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["event_type"] == "CampaignSettingsChanged")
        .collect();
    assert_eq!(changes.len(), 2, "{history}");
    app.stop().await;
}

#[tokio::test]
async fn pause_stops_new_sends_and_resume_sends_exactly_the_rest() {
    let app = spawn_app().await;
    let t = news(&app).await;
    let n = 600;
    let ids = contacts(&app, "p", n, json!({})).await;
    let seg = segment(&app, "P", &ids).await;
    let id = create(
        &app,
        json!({"name": "Paused", "template_id": t, "segments": [seg], "throttle_per_hour": 360000}),
    )
    .await;
    let (status, _) = act(&app, id, "send").await;
    assert_eq!(status, 200);
    eventually(WAIT, "some messages are out", || async {
        mailbox(&app).await.len() >= 50
    })
    .await;
    let (status, v) = act(&app, id, "pause").await;
    assert_eq!(status, 200, "{v}");
    // Within seconds nothing more goes out: jobs being handed over when the pause came
    // finish; the rest wait.
    // Every waiting job is held, and what was being handed over when the pause came is out.
    eventually(WAIT, "the pause settles", || async {
        let (rows, held): (i64, i64) = sqlx::query_as(
            "SELECT count(*), count(*) FILTER (WHERE held) FROM delivery_queue WHERE campaign_id = $1",
        )
        .bind(id)
        .fetch_one(&app.pool)
        .await
        .unwrap();
        let jobs = job_statuses(&app, id).await;
        let sent = jobs.get("sent").copied().unwrap_or(0);
        rows == held
            && !jobs.contains_key("dispatching")
            && sent == mailbox(&app).await.values().sum::<i64>()
    })
    .await;
    let settled = mailbox(&app).await.values().sum::<i64>();
    assert!(
        (settled as usize) < n,
        "the pause came before everything was sent ({settled} of {n})"
    );
    assert_eq!(campaign(&app, id).await["status"], "paused");
    let (status, _) = act(&app, id, "pause").await;
    assert_eq!(status, 409);

    let (status, v) = act(&app, id, "resume").await;
    assert_eq!(status, 200, "{v}");
    wait_status(&app, id, "sent").await;
    let got = mailbox(&app).await;
    assert_eq!(got.len(), n, "every recipient got it");
    assert!(
        got.values().all(|c| *c == 1),
        "nobody got it twice: {:?}",
        got.iter().filter(|(_, c)| **c != 1).collect::<Vec<_>>()
    );
    app.stop().await;
}

#[tokio::test]
async fn cancel_ends_the_pending_messages_as_cancelled_and_sends_no_more() {
    let app = spawn_app().await;
    let t = news(&app).await;
    let ids = contacts(&app, "c", 40, json!({})).await;
    let seg = segment(&app, "C", &ids).await;
    // Ten an hour: one goes at once, the rest wait.
    let id = create(
        &app,
        json!({"name": "Cancelled", "template_id": t, "segments": [seg], "throttle_per_hour": 10}),
    )
    .await;
    act(&app, id, "send").await;
    eventually(WAIT, "the first message is out", || async {
        !mailbox(&app).await.is_empty()
    })
    .await;
    let (status, v) = act(&app, id, "cancel").await;
    assert_eq!(status, 200, "{v}");
    eventually(WAIT, "every pending job is cancelled", || async {
        let s = job_statuses(&app, id).await;
        s.get("cancelled") == Some(&39) && s.values().sum::<i64>() == 40
    })
    .await;
    eventually(WAIT, "the campaign's run is over", || async {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM campaign_runs")
            .fetch_one(&app.pool)
            .await
            .unwrap()
            == 0
    })
    .await;
    assert_eq!(mailbox(&app).await.len(), 1);
    assert_eq!(campaign(&app, id).await["status"], "cancelled");
    let (status, _) = act(&app, id, "resume").await;
    assert_eq!(status, 409);
    app.stop().await;
}

#[tokio::test]
async fn recipients_get_a_local_time_campaign_at_that_time_in_their_own_zone() {
    let app = spawn_app().await;
    let t = news(&app).await;
    let mut ids = Vec::new();
    for (name, zone) in [
        ("tokyo", Some("Asia/Tokyo")),
        ("berlin", Some("Europe/Berlin")),
        ("newyork", Some("America/New_York")),
        ("nozone", None),
    ] {
        let mut body = json!({"email": format!("{name}@example.org")});
        if let Some(z) = zone {
            body["time_zone"] = json!(z);
        }
        ids.push(app.create_contact(body).await.0);
    }
    let seg = segment(&app, "Zones", &ids).await;
    let id = create(
        &app,
        json!({"name": "Morning", "template_id": t, "segments": [seg]}),
    )
    .await;
    // 09:00 the day after tomorrow, in each recipient's zone; London for those without one.
    let day = (chrono::Utc::now() + chrono::Duration::days(2)).date_naive();
    let (status, v) = post(
        &app,
        &format!("/api/v1/campaigns/{id}/schedule"),
        json!({"at": format!("{day}T09:00"), "time_zone": "Europe/London", "recipient_time_zone": true}),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    // 09:00 of that day in `zone`, as a moment.
    let nine = |zone: &str| {
        day.and_hms_opt(9, 0, 0)
            .unwrap()
            .and_local_timezone(zone.parse::<chrono_tz::Tz>().unwrap())
            .earliest()
            .unwrap()
            .with_timezone(&chrono::Utc)
    };
    let clock = app.settings.clock.clone();
    let move_to = |t: chrono::DateTime<chrono::Utc>| {
        let by = t - clock.now();
        if by > chrono::Duration::zero() {
            clock.advance(by);
        }
    };
    let received = |who: &'static str| {
        let app = &app;
        async move {
            mailbox(app)
                .await
                .contains_key(&format!("{who}@example.org"))
        }
    };
    // Zones reach 09:00 in this order: Tokyo, Berlin, London (the default), New York.
    let minute = chrono::Duration::minutes(1);
    move_to(nine("Asia/Tokyo") + minute);
    eventually(WAIT, "Tokyo's message", || received("tokyo")).await;
    assert_eq!(mailbox(&app).await.len(), 1, "only Tokyo's 09:00 has come");
    move_to(nine("Europe/Berlin") + minute);
    eventually(WAIT, "Berlin's message", || received("berlin")).await;
    assert_eq!(mailbox(&app).await.len(), 2);
    move_to(nine("Europe/London") + minute);
    eventually(WAIT, "the zoneless contact's message", || {
        received("nozone")
    })
    .await;
    assert_eq!(mailbox(&app).await.len(), 3);
    move_to(nine("America/New_York") + minute);
    eventually(WAIT, "New York's message", || received("newyork")).await;
    wait_status(&app, id, "sent").await;
    assert!(mailbox(&app).await.values().all(|c| *c == 1));
    app.stop().await;
}

/// The click links (`/t/c/<token>`) in the development mailbox's message to `to`, as paths.
async fn click_links(app: &TestApp, to: &str) -> Vec<String> {
    let html: String =
        sqlx::query_scalar("SELECT html FROM dev_mailbox WHERE tenant_id = $1 AND recipient = $2")
            .bind(app.tenant_id)
            .bind(to)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    html.match_indices("/t/c/")
        .map(|(i, _)| {
            let rest = &html[i..];
            let end = rest.find(['"', '\'', ' ', '>']).unwrap_or(rest.len());
            rest[..end].to_owned()
        })
        .collect()
}

#[tokio::test]
async fn an_ab_test_sends_the_variant_with_more_unique_clicks_to_everyone_else() {
    let app = spawn_app().await;
    let html = "<p>Hello</p><p><a href=\"https://example.org/offer\">Offer</a></p>";
    let a = app
        .published_template("email", json!({"subject": "Variant A", "html": html}))
        .await;
    let b = app
        .published_template("email", json!({"subject": "Variant B", "html": html}))
        .await;
    let ids = contacts(&app, "ab", 100, json!({})).await;
    let seg = segment(&app, "AB", &ids).await;
    let id = create(
        &app,
        json!({"name": "Subject test", "segments": [seg], "ab_test": {
            "variants": [{"name": "A", "template_id": a}, {"name": "B", "template_id": b}],
            "test_percent": 40, "metric": "unique_clicks", "wait_minutes": 60}}),
    )
    .await;
    let (status, v) = act(&app, id, "send").await;
    assert_eq!(status, 200, "{v}");
    let started = campaign(&app, id).await;
    assert_eq!(started["test_group"], 40);

    // The test group: 20 messages of each variant, nobody else.
    let by_subject = || async {
        sqlx::query_as::<_, (String, String)>(
            "SELECT subject, recipient FROM dev_mailbox WHERE tenant_id = $1",
        )
        .bind(app.tenant_id)
        .fetch_all(&app.pool)
        .await
        .unwrap()
    };
    eventually(WAIT, "the test group's 40 messages", || async {
        by_subject().await.len() == 40
    })
    .await;
    let test = by_subject().await;
    let of = |s: &str| -> Vec<String> {
        test.iter()
            .filter(|(subject, _)| subject == s)
            .map(|(_, to)| to.clone())
            .collect()
    };
    let (got_a, got_b) = (of("Variant A"), of("Variant B"));
    assert_eq!((got_a.len(), got_b.len()), (20, 20));

    // Five of B's recipients click (one of them twice: unique clicks count people), one of A's.
    let tracker = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let mut clicks = Vec::new();
    for to in got_b.iter().take(5).chain(got_a.iter().take(1)) {
        clicks.extend(click_links(&app, to).await);
    }
    clicks.push(clicks[0].clone());
    for path in &clicks {
        let res = tracker.get(app.url(path)).send().await.unwrap();
        assert!(res.status().is_redirection(), "{path}: {}", res.status());
    }
    eventually(WAIT, "the clicks are recorded", || async {
        sqlx::query_scalar::<_, i64>(
            "SELECT count(*) FROM events WHERE aggregate_type = 'delivery_job' \
             AND event_type = 'DeliveryClicked' AND tenant_id = $1",
        )
        .bind(app.tenant_id)
        .fetch_one(&app.pool)
        .await
        .unwrap()
            == 7
    })
    .await;
    assert_eq!(
        by_subject().await.len(),
        40,
        "nothing more before the wait is over"
    );

    // An hour later the winner goes to the remainder.
    app.settings.clock.advance(chrono::Duration::minutes(61));
    let done = wait_status(&app, id, "sent").await;
    assert_eq!(done["winner"], "B", "{done}");
    let all = by_subject().await;
    assert_eq!(all.len(), 100);
    let mut seen = std::collections::HashSet::new();
    for (subject, to) in &all {
        assert!(seen.insert(to.clone()), "{to} got two messages");
        if !got_a.contains(to) && !got_b.contains(to) {
            assert_eq!(subject, "Variant B", "the remainder gets only the winner");
        }
    }
    // The decision and the figures it was based on are in the log.
    let res = app
        .get(&format!("/api/v1/audit/campaign/{id}"))
        .send()
        .await
        .unwrap();
    let history: Value = res.json().await.unwrap();
    let decision = history["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["event_type"] == "CampaignWinnerChosen")
        .expect("a decision")
        .clone();
    let figures = &decision["payload"]["CampaignWinnerChosen"]["figures"];
    assert_eq!(
        figures,
        &json!([
            {"variant": "A", "sent": 20, "unique_opens": 0, "unique_clicks": 1},
            {"variant": "B", "sent": 20, "unique_opens": 0, "unique_clicks": 5}
        ]),
        "{decision}"
    );
    app.stop().await;
}
