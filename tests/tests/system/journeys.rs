//! Journeys end to end: publish validation over HTTP, the example flow with the clock moved
//! by days, versioning while contacts wait, gates both ways, pause and archive, and a process
//! killed while steps run and while timers fire (every action once).

use std::collections::HashMap;
use std::time::Duration;

use mauntic_tests::{eventually, spawn_app, TestApp};
use serde_json::{json, Value};
use uuid::Uuid;

use super::campaigns::{answer, contacts, post};
use super::campaigns_crash::kill_and_restart;

const WAIT: Duration = Duration::from_secs(60);

/// A journey created and published; its id.
pub(crate) async fn published(app: &TestApp, name: &str, definition: Value) -> Uuid {
    let (status, v) = post(
        app,
        "/api/v1/journeys",
        json!({"name": name, "definition": definition}),
    )
    .await;
    assert_eq!(status, 201, "{v}");
    let id: Uuid = v["id"].as_str().unwrap().parse().unwrap();
    let (status, v) = post(app, &format!("/api/v1/journeys/{id}/publish"), json!({})).await;
    assert_eq!(status, 200, "{v}");
    id
}

pub(crate) async fn enter(app: &TestApp, journey: Uuid, contacts: &[Uuid]) -> Value {
    let (status, v) = post(
        app,
        &format!("/api/v1/journeys/{journey}/entries"),
        json!({"contact_ids": contacts}),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    v
}

/// Delivery jobs a journey requested, as `(contact, channel)` → count (from the write side's
/// log, not a read model).
async fn journey_jobs(app: &TestApp, journey: Uuid) -> HashMap<(Uuid, String), i64> {
    sqlx::query_as::<_, (String, String, i64)>(
        "SELECT payload->'DeliveryRequested'->>'contact_id', payload->'DeliveryRequested'->>'channel', count(*) \
         FROM events WHERE aggregate_type = 'delivery_job' AND event_type = 'DeliveryRequested' \
           AND tenant_id = $1 AND payload->'DeliveryRequested'->'source'->>'journey_id' = $2 \
         GROUP BY 1, 2",
    )
    .bind(app.tenant_id)
    .bind(journey.to_string())
    .fetch_all(&app.pool)
    .await
    .unwrap()
    .into_iter()
    .map(|(c, ch, n)| ((c.parse().unwrap(), ch), n))
    .collect()
}

/// Executions of a journey per status (write side: rows in flight, and the log's last events).
async fn finished(app: &TestApp, journey: Uuid) -> HashMap<String, i64> {
    sqlx::query_as::<_, (String, i64)>(
        "SELECT e.event_type, count(*) FROM events e \
         WHERE e.aggregate_type = 'journey_execution' AND e.tenant_id = $1 \
           AND e.event_type IN ('JourneyCompleted', 'JourneyExited', 'JourneyFailed') \
           AND e.aggregate_id IN (SELECT aggregate_id FROM events WHERE aggregate_type = 'journey_execution' \
                AND event_type = 'JourneyEntered' AND payload->'JourneyEntered'->>'journey_id' = $2) \
         GROUP BY 1",
    )
    .bind(app.tenant_id)
    .bind(journey.to_string())
    .fetch_all(&app.pool)
    .await
    .unwrap()
    .into_iter()
    .collect()
}

/// Executions of `journey` waiting now (write side).
async fn waiting(app: &TestApp, journey: Uuid) -> i64 {
    sqlx::query_scalar::<_, i64>(
        "SELECT count(*) FROM journey_runs WHERE tenant_id = $1 AND journey_id = $2 \
         AND state->>'status' = 'waiting'",
    )
    .bind(app.tenant_id)
    .bind(journey)
    .fetch_one(&app.pool)
    .await
    .unwrap()
}

/// How many of `people` have an execution of `journey` whose next step waits for a moment
/// after the app's clock: a test moves the clock only once each timer it means to fire is
/// set, else the runner could set it after the move, from the moved clock.
async fn timers_set(app: &TestApp, journey: Uuid, people: &[Uuid]) -> i64 {
    sqlx::query_scalar::<_, i64>(
        "SELECT count(*) FROM journey_runs WHERE tenant_id = $1 AND journey_id = $2 \
         AND contact_id = ANY($4) AND due_at > $3",
    )
    .bind(app.tenant_id)
    .bind(journey)
    .bind(app.settings.clock.now())
    .bind(people)
    .fetch_one(&app.pool)
    .await
    .unwrap()
}

async fn tags(app: &TestApp, contact: Uuid) -> Vec<String> {
    let res = app
        .get(&format!("/api/v1/contacts/{contact}"))
        .send()
        .await
        .unwrap();
    let v: Value = res.json().await.unwrap();
    v["tags"]
        .as_array()
        .map(|a| a.iter().map(|t| t.as_str().unwrap().to_owned()).collect())
        .unwrap_or_default()
}

async fn wait_tag(app: &TestApp, contact: Uuid, tag: &str) {
    eventually(WAIT, &format!("tag {tag} on {contact}"), || async move {
        tags(app, contact).await.iter().any(|t| t == tag)
    })
    .await;
}

fn move_clock(app: &TestApp, by: chrono::Duration) {
    app.settings.clock.advance(by);
}

#[tokio::test]
async fn publishing_reports_every_problem_of_the_graph_and_its_references() {
    let app = spawn_app().await;
    let missing = Uuid::now_v7();
    let (status, v) = post(
        &app,
        "/api/v1/journeys",
        json!({"name": "Broken", "definition": {
            "triggers": [{"id": "api", "type": "api", "entry": "a"}],
            "steps": [
                {"id": "a", "type": "action_update_contact", "config": {"add_tags": ["x"]}, "next": "b"},
                {"id": "b", "type": "split_random", "config": {"paths": [{"key": "l", "weight": 1}, {"key": "r", "weight": 1}]},
                 "branches": {"l": "a", "r": "nowhere"}},
                {"id": "lonely", "type": "exit", "config": {}},
                {"id": "mail", "type": "action_email", "config": {"template_id": missing}}
            ]}}),
    )
    .await;
    assert_eq!(status, 201, "{v}");
    let id = v["id"].as_str().unwrap().to_owned();
    let (status, v) = post(&app, &format!("/api/v1/journeys/{id}/publish"), json!({})).await;
    assert_eq!(status, 422, "{v}");
    let fields: Vec<String> = v["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| format!("{} {}", e["field"], e["reason"]))
        .collect();
    let has = |needle: &str| fields.iter().any(|f| f.contains(needle));
    assert!(has("definition.steps.b.branches.r"), "{fields:?}");
    assert!(
        has("definition.steps.lonely") && has("not reachable"),
        "{fields:?}"
    );
    assert!(has("cycle without a delay"), "{fields:?}");
    // Nothing was published: entries are refused as for a draft.
    let c = contacts(&app, "p", 1, json!({})).await;
    let (status, _) = post(
        &app,
        &format!("/api/v1/journeys/{id}/entries"),
        json!({"contact_ids": c}),
    )
    .await;
    assert_eq!(status, 409);

    // The graph fixed, the missing template is what remains.
    let (status, v) = answer(
        app.patch(
            &format!("/api/v1/journeys/{id}"),
            &json!({"definition": {
                "triggers": [{"id": "api", "type": "api", "entry": "mail"}],
                "steps": [{"id": "mail", "type": "action_email", "config": {"template_id": missing}}]}}),
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    let (status, v) = post(&app, &format!("/api/v1/journeys/{id}/publish"), json!({})).await;
    assert_eq!(status, 422, "{v}");
    assert_eq!(
        v["errors"][0]["field"],
        "definition.steps.mail.config.template_id"
    );
    // A draft of the wrong shape is refused when saved.
    let (status, v) = post(
        &app,
        "/api/v1/journeys",
        json!({"name": "Shape", "definition": {"steps": [{"id": "x", "type": "teleport", "config": {}}]}}),
    )
    .await;
    assert_eq!(status, 422, "{v}");
}

#[tokio::test]
async fn the_example_flow_sends_sms_to_who_opened_the_welcome_and_push_to_who_did_not_after_two_days(
) {
    let app = spawn_app().await;
    let welcome = app
        .published_template(
            "email",
            json!({"subject": "Welcome {{contact.email}}", "html": "<p>Welcome</p>"}),
        )
        .await;
    let sms = app
        .published_template("sms", json!({"body": "You opened it"}))
        .await;
    let push = app
        .published_template("push", json!({"title": "Hey", "body": "Missed us?"}))
        .await;
    let people = contacts(&app, "ex", 2, json!({})).await;
    let (opener, other) = (people[0], people[1]);
    let journey = published(
        &app,
        "Welcome",
        json!({
            "triggers": [{"id": "api", "type": "api", "entry": "welcome"}],
            "steps": [
                {"id": "welcome", "type": "action_email", "config": {"template_id": welcome}, "next": "wait"},
                {"id": "wait", "type": "delay_duration", "config": {"days": 2}, "next": "opened"},
                {"id": "opened", "type": "split_conditional",
                 "config": {"kind": "message", "step": "welcome", "engagement": "opened"},
                 "branches": {"yes": "sms", "no": "push"}},
                {"id": "sms", "type": "action_sms", "config": {"template_id": sms}},
                {"id": "push", "type": "action_push", "config": {"template_id": push}}
            ]
        }),
    )
    .await;
    let v = enter(&app, journey, &people).await;
    assert_eq!(v["entered"].as_array().unwrap().len(), 2, "{v}");

    // Both get the welcome email at once.
    let html_of = |who: &'static str| {
        let app = &app;
        async move {
            sqlx::query_scalar::<_, String>(
                "SELECT html FROM dev_mailbox WHERE tenant_id = $1 AND recipient = $2",
            )
            .bind(app.tenant_id)
            .bind(format!("{who}@example.org"))
            .fetch_optional(&app.pool)
            .await
            .unwrap()
        }
    };
    eventually(WAIT, "both welcome emails", || async {
        html_of("ex0").await.is_some() && html_of("ex1").await.is_some()
    })
    .await;
    // The first opens it (the tracking pixel).
    let html = html_of("ex0").await.unwrap();
    let start = html.find("/t/o/").expect("open pixel");
    let end = start + html[start..].find('"').unwrap();
    let res = reqwest::get(app.url(&html[start..end])).await.unwrap();
    assert_eq!(res.status(), 200);
    eventually(WAIT, "the open is in the deliveries read model", || async {
        sqlx::query_scalar::<_, i32>(
            "SELECT opens FROM deliveries WHERE tenant_id = $1 AND contact_id = $2",
        )
        .bind(app.tenant_id)
        .bind(opener)
        .fetch_one(&app.pool)
        .await
        .unwrap()
            > 0
    })
    .await;

    eventually(WAIT, "both wait their two days", || async {
        timers_set(&app, journey, &people).await == 2
    })
    .await;
    // A day later nothing more has happened: both timers are still ahead of the clock.
    move_clock(&app, chrono::Duration::days(1));
    assert_eq!(timers_set(&app, journey, &people).await, 2);
    let jobs = journey_jobs(&app, journey).await;
    assert_eq!(jobs.len(), 2, "only the welcome emails so far: {jobs:?}");

    // Two days after entering: SMS to who opened, push to who did not.
    move_clock(
        &app,
        chrono::Duration::days(1) + chrono::Duration::minutes(1),
    );
    eventually(WAIT, "both executions complete", || async {
        finished(&app, journey).await.get("JourneyCompleted") == Some(&2)
    })
    .await;
    let jobs = journey_jobs(&app, journey).await;
    let expected: HashMap<(Uuid, String), i64> = [
        ((opener, "email".to_owned()), 1),
        ((opener, "sms".to_owned()), 1),
        ((other, "email".to_owned()), 1),
        ((other, "push".to_owned()), 1),
    ]
    .into_iter()
    .collect();
    assert_eq!(jobs, expected);
}

#[tokio::test]
async fn contacts_waiting_in_v1_finish_on_v1_while_new_entries_run_v2() {
    let app = spawn_app().await;
    let people = contacts(&app, "ver", 2, json!({})).await;
    let v1 = json!({
        "triggers": [{"id": "api", "type": "api", "entry": "wait"}],
        "steps": [
            {"id": "wait", "type": "delay_duration", "config": {"days": 1}, "next": "tag"},
            {"id": "tag", "type": "action_update_contact", "config": {"add_tags": ["v1"]}}
        ]
    });
    let journey = published(&app, "Versions", v1).await;
    enter(&app, journey, &people[..1]).await;
    eventually(WAIT, "the first waits its day in v1", || async {
        timers_set(&app, journey, &people[..1]).await == 1
    })
    .await;
    // v2: no wait, another tag.
    let (status, v) = answer(
        app.patch(
            &format!("/api/v1/journeys/{journey}"),
            &json!({"definition": {
                "triggers": [{"id": "api", "type": "api", "entry": "tag"}],
                "steps": [{"id": "tag", "type": "action_update_contact", "config": {"add_tags": ["v2"]}}]}}),
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    let (status, v) = post(
        &app,
        &format!("/api/v1/journeys/{journey}/publish"),
        json!({}),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    enter(&app, journey, &people[1..]).await;
    wait_tag(&app, people[1], "v2").await;
    assert!(tags(&app, people[0]).await.is_empty(), "v1 still waits");
    move_clock(
        &app,
        chrono::Duration::days(1) + chrono::Duration::seconds(1),
    );
    wait_tag(&app, people[0], "v1").await;
    assert_eq!(tags(&app, people[0]).await, vec!["v1"]);
    assert_eq!(tags(&app, people[1]).await, vec!["v2"]);
}

#[tokio::test]
async fn a_gate_passes_when_its_condition_comes_true_and_times_out_otherwise() {
    let app = spawn_app().await;
    let people = contacts(&app, "gate", 2, json!({})).await;
    let journey = published(
        &app,
        "Gate",
        json!({
            "triggers": [{"id": "api", "type": "api", "entry": "g"}],
            "steps": [
                {"id": "g", "type": "gate",
                 "config": {"condition": {"kind": "rule", "rule": {"tag": "vip"}}, "timeout": {"days": 1}},
                 "branches": {"yes": "pass", "timeout": "late"}},
                {"id": "pass", "type": "action_update_contact", "config": {"add_tags": ["passed"]}},
                {"id": "late", "type": "action_update_contact", "config": {"add_tags": ["timed_out"]}}
            ]
        }),
    )
    .await;
    enter(&app, journey, &people).await;
    eventually(WAIT, "both wait at the gate", || async {
        waiting(&app, journey).await == 2
    })
    .await;
    // The first becomes a VIP: the gate opens for them, without the clock moving.
    let res = app
        .post(
            &format!("/api/v1/contacts/{}/tags", people[0]),
            &json!({"tags": ["vip"]}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    wait_tag(&app, people[0], "passed").await;
    assert!(!tags(&app, people[1])
        .await
        .contains(&"timed_out".to_owned()));
    move_clock(
        &app,
        chrono::Duration::days(1) + chrono::Duration::seconds(1),
    );
    wait_tag(&app, people[1], "timed_out").await;
    assert_eq!(tags(&app, people[0]).await, vec!["passed", "vip"]);
}

#[tokio::test]
async fn pausing_holds_executions_and_archiving_exits_them() {
    let app = spawn_app().await;
    let people = contacts(&app, "pa", 3, json!({})).await;
    let journey = published(
        &app,
        "Pause",
        json!({
            "triggers": [{"id": "api", "type": "api", "entry": "wait"}],
            "steps": [
                {"id": "wait", "type": "delay_duration", "config": {"hours": 1}, "next": "tag"},
                {"id": "tag", "type": "action_update_contact", "config": {"add_tags": ["done"]}}
            ]
        }),
    )
    .await;
    enter(&app, journey, &people[..2]).await;
    // Both start their hour's wait (an execution held before it starts waiting starts its
    // hour when resumed).
    eventually(WAIT, "both wait", || async {
        waiting(&app, journey).await == 2
    })
    .await;
    let (status, _) = post(
        &app,
        &format!("/api/v1/journeys/{journey}/pause"),
        json!({}),
    )
    .await;
    assert_eq!(status, 200);
    // Paused: nobody enters, and the wait's end passes without anything happening.
    let (status, v) = post(
        &app,
        &format!("/api/v1/journeys/{journey}/entries"),
        json!({"contact_ids": [people[2]]}),
    )
    .await;
    assert_eq!(status, 409, "{v}");
    // Held: the runner claims no held execution, whatever the clock says.
    let held: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM journey_runs WHERE tenant_id = $1 AND journey_id = $2 AND held",
    )
    .bind(app.tenant_id)
    .bind(journey)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(held, 2, "both executions held");
    move_clock(&app, chrono::Duration::hours(2));
    assert!(tags(&app, people[0]).await.is_empty());
    let (status, _) = post(
        &app,
        &format!("/api/v1/journeys/{journey}/resume"),
        json!({}),
    )
    .await;
    assert_eq!(status, 200);
    wait_tag(&app, people[0], "done").await;
    wait_tag(&app, people[1], "done").await;

    // Archive while someone waits: they exit.
    enter(&app, journey, &people[2..]).await;
    let (status, _) = post(
        &app,
        &format!("/api/v1/journeys/{journey}/archive"),
        json!({}),
    )
    .await;
    assert_eq!(status, 200);
    eventually(WAIT, "the waiting execution exits", || async {
        finished(&app, journey).await.get("JourneyExited") == Some(&1)
    })
    .await;
    let (status, _) = post(
        &app,
        &format!("/api/v1/journeys/{journey}/pause"),
        json!({}),
    )
    .await;
    assert_eq!(status, 409);
}

#[tokio::test]
async fn the_reentry_policy_decides_who_enters_again() {
    let app = spawn_app().await;
    let people = contacts(&app, "re", 1, json!({})).await;
    let def = |policy: Value| {
        json!({
            "triggers": [{"id": "api", "type": "api", "entry": "tag"}],
            "steps": [{"id": "tag", "type": "action_update_contact", "config": {"add_tags": ["in"]}}],
            "reentry": policy
        })
    };
    let never = published(&app, "Never", def(json!({"policy": "never"}))).await;
    let v = enter(&app, never, &people).await;
    assert_eq!(v["entered"].as_array().unwrap().len(), 1);
    let v = enter(&app, never, &people).await;
    assert_eq!(v["refused"], json!([people[0]]), "{v}");

    let after = published(
        &app,
        "After",
        def(json!({"policy": "after", "period": {"days": 1}})),
    )
    .await;
    enter(&app, after, &people).await;
    eventually(WAIT, "the first execution ends", || async {
        finished(&app, after).await.get("JourneyCompleted") == Some(&1)
    })
    .await;
    let v = enter(&app, after, &people).await;
    assert_eq!(
        v["refused"].as_array().unwrap().len(),
        1,
        "within the period: {v}"
    );
    move_clock(&app, chrono::Duration::days(1));
    let v = enter(&app, after, &people).await;
    assert_eq!(
        v["entered"].as_array().unwrap().len(),
        1,
        "after the period: {v}"
    );
}

#[tokio::test]
async fn killed_while_steps_run_and_while_timers_fire_every_action_happens_once() {
    let app = spawn_app().await;
    const N: usize = 1_500;
    let first = app
        .published_template("email", json!({"subject": "One", "html": "<p>1</p>"}))
        .await;
    let second = app
        .published_template("email", json!({"subject": "Two", "html": "<p>2</p>"}))
        .await;
    let people = contacts(&app, "k", N, json!({})).await;
    let journey = published(
        &app,
        "Crash",
        json!({
            "triggers": [{"id": "api", "type": "api", "entry": "one"}],
            "steps": [
                {"id": "one", "type": "action_email", "config": {"template_id": first}, "next": "wait"},
                {"id": "wait", "type": "delay_duration", "config": {"hours": 1}, "next": "two"},
                {"id": "two", "type": "action_email", "config": {"template_id": second}}
            ]
        }),
    )
    .await;
    for chunk in people.chunks(1000) {
        enter(&app, journey, chunk).await;
    }
    // Kill while the first steps run (some executions done, some not).
    eventually(WAIT, "some executions ran their first step", || async {
        waiting(&app, journey).await > 0
    })
    .await;
    let app = kill_and_restart(app).await;
    eventually(WAIT, "every execution waits", || async {
        waiting(&app, journey).await == N as i64
    })
    .await;
    // The timers fire; kill while they do.
    move_clock(
        &app,
        chrono::Duration::hours(1) + chrono::Duration::seconds(1),
    );
    eventually(WAIT, "some timers fired", || async {
        waiting(&app, journey).await < N as i64
    })
    .await;
    let app = kill_and_restart(app).await;
    eventually(WAIT * 2, "every execution completes", || async {
        finished(&app, journey).await.get("JourneyCompleted") == Some(&(N as i64))
    })
    .await;
    let jobs = journey_jobs(&app, journey).await;
    assert_eq!(jobs.len(), N, "one (contact, email) pair per contact");
    assert!(
        jobs.values().all(|n| *n == 2),
        "each contact's two emails requested exactly once: {:?}",
        jobs.values().filter(|n| **n != 2).count()
    );
    // And no execution ran a step twice.
    let twice: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM (SELECT aggregate_id, payload->'JourneyActionRequested'->>'step' \
         FROM events WHERE tenant_id = $1 AND event_type = 'JourneyActionRequested' \
         GROUP BY 1, 2 HAVING count(*) > 1) t",
    )
    .bind(app.tenant_id)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(twice, 0);
}

async fn record(app: &TestApp, contact: Uuid, name: &str, properties: Value) {
    let (status, v) = post(
        app,
        &format!("/api/v1/contacts/{contact}/events"),
        json!({"name": name, "properties": properties}),
    )
    .await;
    assert_eq!(status, 201, "{v}");
}

#[tokio::test]
async fn events_enter_journeys_wake_waits_for_them_count_goals_and_exit_contacts() {
    let app = spawn_app().await;
    let people = contacts(&app, "ev", 4, json!({})).await;
    let journey = published(
        &app,
        "Signup",
        json!({
            "triggers": [{"id": "signup", "type": "event", "name": "signed_up",
                          "entry": "wait",
                          "conditions": [{"property": "plan", "op": "equals", "value": "pro"}]}],
            "steps": [
                {"id": "wait", "type": "delay_event",
                 "config": {"name": "activated", "timeout": {"days": 3}},
                 "branches": {"event": "active", "timeout": "idle"}},
                {"id": "active", "type": "action_update_contact", "config": {"add_tags": ["activated"]}, "next": "later"},
                {"id": "idle", "type": "action_update_contact", "config": {"add_tags": ["never_activated"]}, "next": "later"},
                {"id": "later", "type": "delay_duration", "config": {"days": 30}}
            ],
            "exit_criteria": [{"type": "event", "name": "churned"}],
            "goal": {"name": "purchased"}
        }),
    )
    .await;
    // A free sign-up does not match the trigger's condition; the pro ones enter.
    record(&app, people[0], "signed_up", json!({"plan": "free"})).await;
    for p in &people[1..] {
        record(&app, *p, "signed_up", json!({"plan": "pro"})).await;
    }
    eventually(WAIT, "three entries wait for activation", || async {
        waiting(&app, journey).await == 3
    })
    .await;
    // people[1] activates: the event branch, at once.
    record(&app, people[1], "activated", json!({})).await;
    wait_tag(&app, people[1], "activated").await;
    // people[2] churns: they leave wherever they are.
    record(&app, people[2], "churned", json!({})).await;
    eventually(WAIT, "the churned contact exits", || async {
        finished(&app, journey).await.get("JourneyExited") == Some(&1)
    })
    .await;
    // people[3] never activates: the timeout branch after three days.
    move_clock(
        &app,
        chrono::Duration::days(3) + chrono::Duration::seconds(1),
    );
    wait_tag(&app, people[3], "never_activated").await;
    assert!(
        tags(&app, people[0]).await.is_empty(),
        "the free sign-up never entered"
    );
    assert!(!tags(&app, people[2])
        .await
        .contains(&"never_activated".to_owned()));
    // A purchase counts as the goal, once, and does not end the journey.
    record(&app, people[1], "purchased", json!({})).await;
    record(&app, people[1], "purchased", json!({})).await;
    eventually(WAIT, "the conversion", || async {
        sqlx::query_scalar::<_, i64>(
            "SELECT count(*) FROM events WHERE tenant_id = $1 AND event_type = 'JourneyConverted'",
        )
        .bind(app.tenant_id)
        .fetch_one(&app.pool)
        .await
        .unwrap()
            == 1
    })
    .await;
    // Both purchases handled: the trigger follower is past them, and the runner has taken
    // every signal from the inboxes (the events it decided commit with that).
    app.settle().await;
    let converted: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM events WHERE tenant_id = $1 AND event_type = 'JourneyConverted'",
    )
    .bind(app.tenant_id)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(converted, 1, "a goal counts once per execution");
    assert_eq!(
        waiting(&app, journey).await,
        2,
        "both remaining wait their 30 days"
    );
}

#[tokio::test]
async fn an_event_step_emits_an_event_that_enters_another_journey_and_a_link_enters_after_its_delay(
) {
    let app = spawn_app().await;
    let people = contacts(&app, "emit", 1, json!({})).await;
    let downstream = published(
        &app,
        "Downstream",
        json!({
            "triggers": [
                {"id": "api", "type": "api", "entry": "tag"},
                {"id": "on_event", "type": "event", "name": "onboarded", "entry": "tag2"}
            ],
            "steps": [
                {"id": "tag", "type": "action_update_contact", "config": {"add_tags": ["linked"]}},
                {"id": "tag2", "type": "action_update_contact", "config": {"add_tags": ["heard_event"]}}
            ],
            "reentry": {"policy": "concurrent"}
        }),
    )
    .await;
    let upstream = published(
        &app,
        "Upstream",
        json!({
            "triggers": [{"id": "api", "type": "api", "entry": "emit"}],
            "steps": [
                {"id": "emit", "type": "event", "config": {"name": "onboarded", "properties": {"step": 1}}, "next": "link"},
                {"id": "link", "type": "link", "config": {"journey_id": downstream, "delay": "15m"}}
            ]
        }),
    )
    .await;
    enter(&app, upstream, &people).await;
    wait_tag(&app, people[0], "heard_event").await;
    assert!(!tags(&app, people[0]).await.contains(&"linked".to_owned()));
    eventually(WAIT, "the link waits its 15 minutes", || async {
        timers_set(&app, upstream, &people).await == 1
    })
    .await;
    move_clock(
        &app,
        chrono::Duration::minutes(15) + chrono::Duration::seconds(1),
    );
    wait_tag(&app, people[0], "linked").await;
}

async fn entered_count(app: &TestApp, journey: Uuid) -> i64 {
    sqlx::query_scalar::<_, i64>(
        "SELECT count(*) FROM events WHERE tenant_id = $1 AND event_type = 'JourneyEntered' \
         AND payload->'JourneyEntered'->>'journey_id' = $2",
    )
    .bind(app.tenant_id)
    .bind(journey.to_string())
    .fetch_one(&app.pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn entering_a_segment_enters_the_journey_and_leaving_it_exits() {
    let app = spawn_app().await;
    let people = contacts(&app, "seg", 2, json!({})).await;
    let (status, v) = post(&app, "/api/v1/segments", json!({"name": "Trial"})).await;
    assert_eq!(status, 201, "{v}");
    let segment: Uuid = v["id"].as_str().unwrap().parse().unwrap();
    let journey = published(
        &app,
        "Trial",
        json!({
            "triggers": [{"id": "joined", "type": "segment_entered", "segment_id": segment, "entry": "wait"}],
            "steps": [
                {"id": "wait", "type": "delay_duration", "config": {"days": 7}, "next": "tag"},
                {"id": "tag", "type": "action_update_contact", "config": {"add_tags": ["trial_over"]}}
            ],
            "exit_criteria": [{"type": "segment_exited", "segment_id": segment}]
        }),
    )
    .await;
    let (status, v) = post(
        &app,
        &format!("/api/v1/segments/{segment}/contacts"),
        json!({"contact_ids": people}),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    eventually(WAIT, "both entered", || async {
        entered_count(&app, journey).await == 2
    })
    .await;
    // The second leaves the segment, and with it the journey.
    let (status, v) = post(
        &app,
        &format!("/api/v1/segments/{segment}/contacts:remove"),
        json!({"contact_ids": [people[1]]}),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    eventually(WAIT, "the leaver exits", || async {
        finished(&app, journey).await.get("JourneyExited") == Some(&1)
    })
    .await;
    eventually(WAIT, "the one left waits its seven days", || async {
        timers_set(&app, journey, &people[..1]).await == 1
    })
    .await;
    move_clock(
        &app,
        chrono::Duration::days(7) + chrono::Duration::seconds(1),
    );
    wait_tag(&app, people[0], "trial_over").await;
    assert!(tags(&app, people[1]).await.is_empty());
}

#[tokio::test]
async fn a_schedule_enters_the_segment_at_each_occurrence_and_quiet_hours_hold_messages() {
    let app = spawn_app().await;
    let people = contacts(&app, "sch", 3, json!({})).await;
    let segment = super::campaigns::segment(&app, "Weekly", &people).await;
    let now = app.settings.clock.now();
    let at = now + chrono::Duration::hours(1);
    let template = app
        .published_template(
            "email",
            json!({"subject": "Digest", "html": "<p>Digest</p>"}),
        )
        .await;
    // Quiet from an hour ago to two hours ahead (UTC, the contacts have no zone).
    let hm = |t: chrono::DateTime<chrono::Utc>| t.format("%H:%M").to_string();
    let journey = published(
        &app,
        "Digest",
        json!({
            "triggers": [{"id": "daily", "type": "schedule", "segment_id": segment, "entry": "mail",
                          "recurrence": {"frequency": "daily", "time": hm(at), "starts_at": now}}],
            "steps": [{"id": "mail", "type": "action_email", "config": {"template_id": template}}],
            "reentry": {"policy": "concurrent"},
            "quiet_hours": {"start": hm(now - chrono::Duration::hours(1)),
                            "end": hm(now + chrono::Duration::hours(3))}
        }),
    )
    .await;
    // Not before its time: the occurrence is due at the hour, not now.
    let next: chrono::DateTime<chrono::Utc> = sqlx::query_scalar(
        "SELECT next_run_at FROM journey_triggers WHERE tenant_id = $1 AND journey_id = $2",
    )
    .bind(app.tenant_id)
    .bind(journey)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert!(next > app.settings.clock.now(), "next occurrence {next}");
    assert_eq!(entered_count(&app, journey).await, 0, "not before its time");
    move_clock(
        &app,
        chrono::Duration::hours(1) + chrono::Duration::minutes(1),
    );
    eventually(WAIT, "the first occurrence enters everyone", || async {
        entered_count(&app, journey).await == 3
    })
    .await;
    // Their messages wait for the end of the quiet hours.
    eventually(WAIT, "the three messages are requested", || async {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM delivery_queue WHERE tenant_id = $1")
            .bind(app.tenant_id)
            .fetch_one(&app.pool)
            .await
            .unwrap()
            == 3
    })
    .await;
    let due: Vec<chrono::DateTime<chrono::Utc>> =
        sqlx::query_scalar("SELECT due_at FROM delivery_queue WHERE tenant_id = $1")
            .bind(app.tenant_id)
            .fetch_all(&app.pool)
            .await
            .unwrap();
    assert_eq!(due.len(), 3);
    let end = now + chrono::Duration::hours(3);
    for d in due {
        assert!(
            (d - end).num_seconds().abs() < 60,
            "due at the quiet hours' end {end}, not {d}"
        );
    }
    // A day later, the next occurrence.
    move_clock(&app, chrono::Duration::days(1));
    eventually(WAIT, "the second occurrence", || async {
        entered_count(&app, journey).await == 6
    })
    .await;
}

#[tokio::test]
async fn templates_read_what_earlier_steps_stored() {
    let app = spawn_app().await;
    let people = contacts(&app, "data", 1, json!({})).await;
    let template = app
        .published_template(
            "email",
            json!({"subject": "Your plan", "html": "<p>Plan: {{message.journey.choice.value.plan}}; path {{message.journey.path.branch}}</p>"}),
        )
        .await;
    let journey = published(
        &app,
        "Data",
        json!({
            "triggers": [{"id": "api", "type": "api", "entry": "wait"}],
            "steps": [
                {"id": "wait", "type": "delay_event", "data_key": "choice",
                 "config": {"name": "chose_plan", "timeout": {"days": 1}},
                 "branches": {"event": "split", "timeout": "split"}},
                {"id": "split", "type": "experiment", "data_key": "path",
                 "config": {"paths": [{"key": "only_a", "weight": 1}, {"key": "only_b", "weight": 1}]},
                 "branches": {"only_a": "mail", "only_b": "mail"}},
                {"id": "mail", "type": "action_email", "config": {"template_id": template}}
            ]
        }),
    )
    .await;
    enter(&app, journey, &people).await;
    eventually(WAIT, "waiting for the choice", || async {
        waiting(&app, journey).await == 1
    })
    .await;
    record(&app, people[0], "chose_plan", json!({"plan": "pro"})).await;
    let html = || async {
        sqlx::query_scalar::<_, String>("SELECT html FROM dev_mailbox WHERE tenant_id = $1")
            .bind(app.tenant_id)
            .fetch_optional(&app.pool)
            .await
            .unwrap()
    };
    eventually(WAIT, "the email", || async { html().await.is_some() }).await;
    let html = html().await.unwrap();
    assert!(html.contains("Plan: pro; path only_"), "{html}");
}
