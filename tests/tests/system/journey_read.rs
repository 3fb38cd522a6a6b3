//! What users read about journeys: the list (filters, search, sorts, keyset pages), one
//! journey with its draft and versions, a version's definition, the figures per version and
//! step, a journey's executions and one execution's history (time travel), a contact's
//! journeys — driven by journey events (through the executor) and execution events
//! (appended with `append_decided`, as the journey worker will), and each read model rebuilt
//! from the log equal to the live one.

use std::collections::BTreeSet;

use chrono::{DateTime, Duration, Utc};
use commands::executor::Decided;
use commands::Executor;
use domain::delivery::Channel;
use domain::journey::aggregate::{Journey, JourneyCommand as J};
use domain::journey::definition::{ContactChange, Definition};
use domain::journey::execution::{Action, Execution, ExecutionEvent as X, WakeReason};
use event_store::EventMetadata;
use mauntic::settings::Role;
use mauntic_tests::{spawn_with, Options, TestApp};
use projections::journeys::projector::JourneysProjection;
use projections::Target;
use serde_json::{json, Value};
use uuid::Uuid;

/// The application without workers: nothing but the test writes execution events.
async fn app() -> TestApp {
    spawn_with(Options {
        roles: [Role::Commands, Role::Queries, Role::Projector].into(),
        ..Options::default()
    })
    .await
}

fn metadata(tenant: Uuid) -> EventMetadata {
    EventMetadata {
        tenant_id: Some(tenant),
        actor: Some("system:test".into()),
        ..Default::default()
    }
}

fn t0() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-03-02T09:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

fn def(v: Value) -> Definition {
    serde_json::from_value(v).unwrap()
}

/// Version 1: welcome email → wait 2 days → opened it? SMS : push.
pub(crate) fn welcome_v1() -> Definition {
    def(json!({
        "triggers": [{"id": "api", "type": "api", "entry": "welcome"}],
        "steps": [
            {"id": "welcome", "type": "action_email", "config": {"template_id": Uuid::from_u128(1)}, "next": "wait"},
            {"id": "wait", "type": "delay_duration", "config": {"days": 2}, "next": "opened"},
            {"id": "opened", "type": "split_conditional",
             "config": {"kind": "message", "step": "welcome", "engagement": "opened"},
             "branches": {"yes": "sms", "no": "push"}},
            {"id": "sms", "type": "action_sms", "config": {"template_id": Uuid::from_u128(2)}},
            {"id": "push", "type": "action_push", "config": {"template_id": Uuid::from_u128(3)}}
        ],
        "exit_criteria": [{"type": "event", "name": "unsubscribed_all"}],
        "goal": {"name": "purchased"}
    }))
}

/// Version 2: welcome email → wait up to 3 days for a purchase → tag a buyer, or exit.
fn welcome_v2() -> Definition {
    def(json!({
        "triggers": [{"id": "api", "type": "api", "entry": "welcome"}],
        "steps": [
            {"id": "welcome", "type": "action_email", "config": {"template_id": Uuid::from_u128(1)}, "next": "listen"},
            {"id": "listen", "type": "delay_event", "config": {"name": "purchased", "timeout": {"days": 3}},
             "branches": {"event": "thanks", "timeout": "bye"}},
            {"id": "thanks", "type": "action_update_contact", "config": {"add_tags": ["buyer"]}},
            {"id": "bye", "type": "exit", "config": {}}
        ],
        "goal": {"name": "purchased"}
    }))
}

/// Writes journeys and executions of one tenant to the log.
pub(crate) struct Journeys<'a> {
    app: &'a TestApp,
    tenant: Uuid,
    journeys: Executor<Journey>,
    executions: Executor<Execution>,
}

impl<'a> Journeys<'a> {
    pub(crate) fn new(app: &'a TestApp, tenant: Uuid) -> Self {
        let n = || app.admin.notifier.clone();
        Self {
            app,
            tenant,
            journeys: Executor::new(app.pool.clone(), n(), ()),
            executions: Executor::new(app.pool.clone(), n(), ()),
        }
    }

    pub(crate) async fn run(&self, id: Uuid, command: J) {
        self.journeys
            .execute(self.tenant, id, command, &metadata(self.tenant))
            .await
            .unwrap();
    }

    pub(crate) async fn create(&self, name: &str, definition: Definition) -> Uuid {
        let id = Uuid::now_v7();
        let name = name.to_owned();
        self.run(id, J::Create { name, definition }).await;
        id
    }

    pub(crate) async fn publish(&self, id: Uuid) {
        let now = Utc::now();
        let fields = Default::default();
        self.run(id, J::Publish { fields, now }).await;
    }

    /// Appends `events` to execution `id`'s stream, after what it holds, in one transaction.
    pub(crate) async fn record(&self, id: Uuid, events: Vec<X>) {
        let (_, version) = self
            .executions
            .load_versioned(self.tenant, id)
            .await
            .unwrap();
        let decided: Vec<Decided<X>> = events
            .into_iter()
            .enumerate()
            .map(|(i, event)| Decided {
                id,
                version: version + i,
                event,
            })
            .collect();
        let mut tx = self.app.pool.begin().await.unwrap();
        self.executions
            .append_decided(&mut tx, self.tenant, &decided, &metadata(self.tenant))
            .await
            .unwrap();
        tx.commit().await.unwrap();
        self.executions.poke();
    }
}

pub(crate) fn entered(journey: Uuid, version: u32, contact: Uuid, at: DateTime<Utc>) -> X {
    X::JourneyEntered {
        journey_id: journey,
        version,
        contact_id: contact,
        trigger: "api".into(),
        entry: "welcome".into(),
        at,
    }
}

pub(crate) fn email(step: &str, next: Option<&str>, at: DateTime<Utc>) -> X {
    X::JourneyActionRequested {
        step: step.into(),
        action: Action::Message {
            channel: Channel::Email,
            job_id: Uuid::now_v7(),
            template_id: Uuid::from_u128(1),
            template_version: 1,
            provider_id: None,
            from: None,
            reply_to: None,
            due_at: at,
        },
        stored: None,
        next: next.map(str::to_owned),
        at,
    }
}

fn wait(step: &str, days: i64, event: Option<&str>, at: DateTime<Utc>) -> X {
    X::JourneyWaitStarted {
        step: step.into(),
        until: Some(at + Duration::days(days)),
        event: event.map(str::to_owned),
        at,
    }
}

fn woken(step: &str, reason: WakeReason, branch: Option<&str>, next: &str, at: DateTime<Utc>) -> X {
    X::JourneyWoken {
        step: step.into(),
        reason,
        branch: branch.map(str::to_owned),
        stored: None,
        next: Some(next.into()),
        at,
    }
}

fn branch(step: &str, branch: &str, next: &str, at: DateTime<Utc>) -> X {
    X::JourneyBranchTaken {
        step: step.into(),
        branch: branch.into(),
        values: json!({"opened": branch == "yes"}),
        stored: None,
        next: Some(next.into()),
        at,
    }
}

fn converted(at: DateTime<Utc>) -> X {
    X::JourneyConverted {
        goal: "purchased".into(),
        at,
    }
}

fn completed(at: DateTime<Utc>) -> X {
    X::JourneyCompleted { at }
}

async fn get(app: &TestApp, path: &str) -> Value {
    let res = app.get(path).send().await.unwrap();
    let status = res.status();
    let body: Value = res.json().await.unwrap_or(Value::Null);
    assert_eq!(status, 200, "GET {path}: {body}");
    body
}

/// The status and problem `type` of `GET path`.
async fn refused(app: &TestApp, path: &str) -> (u16, Value) {
    let res = app.get(path).send().await.unwrap();
    let status = res.status().as_u16();
    let body: Value = res.json().await.unwrap_or(Value::Null);
    (status, body)
}

fn ids(items: &Value) -> Vec<String> {
    items
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_owned())
        .collect()
}

/// Every page of `path` (with `?`/`&` to add `after`), the items' ids in order.
async fn all_pages(app: &TestApp, path: &str) -> (Vec<String>, usize) {
    let (mut out, mut pages) = (Vec::new(), 0);
    let mut after: Option<String> = None;
    loop {
        let p = match &after {
            Some(a) => format!("{path}&after={a}"),
            None => path.to_owned(),
        };
        let page = get(app, &p).await;
        pages += 1;
        out.extend(ids(&page["items"]));
        match page["next"].as_str() {
            Some(n) => after = Some(n.to_owned()),
            None => return (out, pages),
        }
        assert!(pages < 20, "pages never end");
    }
}

const TABLES: [&str; 5] = [
    "journey_summaries",
    "journey_executions",
    "journey_version_stats",
    "journey_step_stats",
    "journey_version_defs",
];

/// Both projections rebuilt from the log hold exactly the live tables' rows.
async fn rebuilds_equal_live(app: &TestApp) {
    app.caught_up("journeys").await;
    app.caught_up("journey_version_defs").await;
    let mut live = Vec::new();
    for t in TABLES {
        live.push(app.checksum(t).await);
    }
    for name in ["journeys", "journey_version_defs"] {
        let projection = projections::by_name(name).unwrap();
        replay::rebuild::rebuild(&app.pool, projection.as_ref(), |_| {})
            .await
            .unwrap();
    }
    for (t, before) in TABLES.iter().zip(live) {
        assert_eq!(app.checksum(t).await, before, "{t} rebuilt differs");
    }
}

/// The figures of step `step` in a version of a stats answer.
fn step<'v>(version: &'v Value, step: &str) -> &'v Value {
    version["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["step"] == step)
        .unwrap_or_else(|| panic!("no step {step} in {version}"))
}

fn counters(v: &Value) -> [i64; 6] {
    [
        "entered",
        "in_flight",
        "completed",
        "exited",
        "failed",
        "converted",
    ]
    .map(|k| v[k].as_i64().unwrap_or_else(|| panic!("{k} in {v}")))
}

#[tokio::test]
async fn journeys_their_figures_executions_and_histories_read_as_the_log_says_and_rebuild_the_same()
{
    let app = app().await;
    let w = Journeys::new(&app, app.tenant_id);
    let (c1, _) = app
        .create_contact(json!({"email": "one@example.org"}))
        .await;
    let (c2, _) = app
        .create_contact(json!({"email": "two@example.org"}))
        .await;
    let (c3, _) = app
        .create_contact(json!({"email": "three@example.org"}))
        .await;

    // Four journeys: live with two versions, a draft, archived, paused.
    let j1 = w.create("Welcome series", welcome_v1()).await;
    w.publish(j1).await;
    let j2 = w.create("Abandoned cart", Definition::default()).await;
    let j3 = w.create("Old newsletter", welcome_v1()).await;
    w.publish(j3).await;
    w.run(j3, J::Archive { now: Utc::now() }).await;
    let j4 = w.create("Winback", welcome_v1()).await;
    w.publish(j4).await;
    w.run(j4, J::Pause { now: Utc::now() }).await;

    // Seven executions of j1; e(n) entered at t0 + n minutes.
    let e: Vec<Uuid> = (0..8).map(|_| Uuid::now_v7()).collect();
    let at = |n: i64| t0() + Duration::minutes(n);
    // e1 (c1): waits at `wait` — its events in two transactions.
    w.record(e[1], vec![entered(j1, 1, c1, at(1))]).await;
    w.record(
        e[1],
        vec![
            email("welcome", Some("wait"), at(1)),
            wait("wait", 2, None, at(1)),
        ],
    )
    .await;
    // e2 (c2): opened → sms, completed.
    w.record(
        e[2],
        vec![
            entered(j1, 1, c2, at(2)),
            email("welcome", Some("wait"), at(2)),
            wait("wait", 2, None, at(2)),
            woken("wait", WakeReason::Timer, None, "opened", at(2)),
            branch("opened", "yes", "sms", at(2)),
            email("sms", None, at(2)),
            completed(at(2)),
        ],
    )
    .await;
    // e3 (c3): did not open → push, converted on the way, completed (three transactions).
    w.record(
        e[3],
        vec![
            entered(j1, 1, c3, at(3)),
            email("welcome", Some("wait"), at(3)),
            wait("wait", 2, None, at(3)),
        ],
    )
    .await;
    w.record(
        e[3],
        vec![
            woken("wait", WakeReason::Timer, None, "opened", at(3)),
            branch("opened", "no", "push", at(3)),
        ],
    )
    .await;
    w.record(
        e[3],
        vec![
            converted(at(3)),
            email("push", None, at(3)),
            completed(at(3)),
        ],
    )
    .await;
    // e4: exits while waiting (exit criteria).
    w.record(
        e[4],
        vec![
            entered(j1, 1, Uuid::now_v7(), at(4)),
            email("welcome", Some("wait"), at(4)),
            wait("wait", 2, None, at(4)),
            X::JourneyExited {
                step: Some("wait".into()),
                reason: "exit_criteria:unsubscribed_all".into(),
                at: at(4),
            },
        ],
    )
    .await;
    // e5: fails at the first step.
    w.record(
        e[5],
        vec![
            entered(j1, 1, Uuid::now_v7(), at(5)),
            X::JourneyFailed {
                step: "welcome".into(),
                error: "template has no published version".into(),
                at: at(5),
            },
        ],
    )
    .await;
    // Version 2, and two executions of it.
    let draft = welcome_v2();
    w.run(
        j1,
        J::Edit {
            name: None,
            definition: Some(draft),
        },
    )
    .await;
    w.publish(j1).await;
    // e6 (c1): times out waiting for a purchase → exit step.
    w.record(
        e[6],
        vec![
            entered(j1, 2, c1, at(6)),
            email("welcome", Some("listen"), at(6)),
            wait("listen", 3, Some("purchased"), at(6)),
            woken("listen", WakeReason::Timer, Some("timeout"), "bye", at(6)),
            X::JourneyExited {
                step: Some("bye".into()),
                reason: "exit_step".into(),
                at: at(6),
            },
        ],
    )
    .await;
    // e7: purchases while waiting: converted, then woken by the event → tagged, completed.
    w.record(
        e[7],
        vec![
            entered(j1, 2, Uuid::now_v7(), at(7)),
            email("welcome", Some("listen"), at(7)),
            wait("listen", 3, Some("purchased"), at(7)),
            converted(at(7)),
            woken("listen", WakeReason::Event, Some("event"), "thanks", at(7)),
            X::JourneyActionRequested {
                step: "thanks".into(),
                action: Action::UpdateContact {
                    change: ContactChange {
                        add_tags: vec!["buyer".into()],
                        ..Default::default()
                    },
                },
                stored: None,
                next: None,
                at: at(7),
            },
            completed(at(7)),
        ],
    )
    .await;
    let cursor = app.head().await;

    // The list: every journey, filters, search, sorts, pages.
    let list = get(&app, &format!("/api/v1/journeys?consistent_after={cursor}")).await;
    let [s1, s2, s3, s4] = [j1, j2, j3, j4].map(|j| j.to_string());
    let [s1, s2, s3, s4] = [s1.as_str(), s2.as_str(), s3.as_str(), s4.as_str()];
    assert_eq!(ids(&list["items"]), [s1, s2, s3, s4], "created first first");
    assert_eq!(list["next"], Value::Null);
    let first = &list["items"][0];
    assert_eq!(first["status"], "live");
    assert_eq!(first["latest_version"], 2);
    assert_eq!(counters(first), [7, 1, 3, 2, 1, 2], "{first}");
    assert!(
        first.get("draft").is_none(),
        "the list leaves definitions out"
    );
    let statuses: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["live", "draft", "archived", "paused"]);
    let by_name = get(&app, "/api/v1/journeys?sort=name").await;
    assert_eq!(ids(&by_name["items"]), [s2, s3, s1, s4]);
    let by_name_desc = get(&app, "/api/v1/journeys?sort=-name").await;
    assert_eq!(ids(&by_name_desc["items"]), [s4, s1, s3, s2]);
    let live = get(&app, "/api/v1/journeys?status=live").await;
    assert_eq!(ids(&live["items"]), [s1]);
    let stopped = get(&app, "/api/v1/journeys?status=paused,archived").await;
    assert_eq!(ids(&stopped["items"]), [s3, s4]);
    let repeated = get(
        &app,
        "/api/v1/journeys?status=paused&status=archived&sort=-created_at",
    )
    .await;
    assert_eq!(ids(&repeated["items"]), [s4, s3]);
    let search = get(&app, "/api/v1/journeys?q=WIN").await;
    assert_eq!(ids(&search["items"]), [s4]);
    let (paged, pages) = all_pages(&app, "/api/v1/journeys?limit=1&sort=-created_at").await;
    assert_eq!(paged, [s4, s3, s2, s1]);
    assert_eq!(pages, 4);
    let (paged, _) = all_pages(
        &app,
        "/api/v1/journeys?limit=3&sort=name&status=live,draft,paused",
    )
    .await;
    assert_eq!(paged, [s2, s1, s4]);
    // Bad parameters: every one named, 400 (as everywhere).
    let (status, problem) = refused(
        &app,
        "/api/v1/journeys?status=bogus&sort=age&limit=0&after=zzz",
    )
    .await;
    assert_eq!(status, 400, "{problem}");
    assert_eq!(problem["type"], "/problems/bad-request");
    let fields: BTreeSet<&str> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["after", "limit", "sort", "status"].into());
    let token = get(&app, "/api/v1/journeys?limit=1&sort=name").await["next"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, problem) = refused(&app, &format!("/api/v1/journeys?after={token}")).await;
    assert_eq!(status, 400, "a token of another order: {problem}");
    assert_eq!(problem["errors"][0]["field"], "after");

    // One journey: draft, versions, counters.
    let d1 = get(&app, &format!("/api/v1/journeys/{j1}")).await;
    assert_eq!(d1["name"], "Welcome series");
    assert_eq!(d1["status"], "live");
    assert_eq!(d1["draft"]["steps"][1]["id"], "listen", "{d1}");
    let numbers: Vec<i64> = d1["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["number"].as_i64().unwrap())
        .collect();
    assert_eq!(numbers, [1, 2]);
    assert!(d1["versions"][1]["published_at"].is_string());
    assert_eq!(d1["published_at"], d1["versions"][1]["published_at"]);
    assert_eq!(counters(&d1), [7, 1, 3, 2, 1, 2]);
    let d2 = get(&app, &format!("/api/v1/journeys/{j2}")).await;
    assert_eq!(d2["status"], "draft");
    assert_eq!(d2["latest_version"], Value::Null);
    assert_eq!(d2["versions"], json!([]));
    assert_eq!(counters(&d2), [0; 6]);
    for path in [
        format!("/api/v1/journeys/{}", Uuid::now_v7()),
        "/api/v1/journeys/not-an-id".to_owned(),
        format!("/api/v1/journeys/{j1}/versions/3"),
        format!("/api/v1/journeys/{j1}/versions/one"),
        format!("/api/v1/journeys/{j2}/versions/1"),
        format!("/api/v1/journeys/{}/stats", Uuid::now_v7()),
        format!("/api/v1/journeys/{j1}/stats?version=5"),
        format!("/api/v1/journeys/{}/executions", Uuid::now_v7()),
    ] {
        let (status, problem) = refused(&app, &path).await;
        assert_eq!(status, 404, "{path}: {problem}");
        assert_eq!(problem["type"], "/problems/not-found");
    }

    // Its versions' definitions.
    let v1 = get(
        &app,
        &format!("/api/v1/journeys/{j1}/versions/1?consistent_after={cursor}"),
    )
    .await;
    assert_eq!(v1["version"], 1);
    assert_eq!(
        v1["definition"],
        serde_json::to_value(welcome_v1()).unwrap()
    );
    assert_eq!(v1["published_at"], d1["versions"][0]["published_at"]);
    assert!(v1["rules"].is_object());
    let v2 = get(&app, &format!("/api/v1/journeys/{j1}/versions/2")).await;
    assert_eq!(
        v2["definition"],
        serde_json::to_value(welcome_v2()).unwrap()
    );

    // Its figures, per version and step.
    let st = get(
        &app,
        &format!("/api/v1/journeys/{j1}/stats?consistent_after={cursor}"),
    )
    .await;
    assert_eq!(counters(&st["totals"]), [7, 1, 3, 2, 1, 2], "{st}");
    let vs = st["versions"].as_array().unwrap();
    assert_eq!(vs.len(), 2);
    let (sv1, sv2) = (&vs[0], &vs[1]);
    assert_eq!(sv1["version"], 1);
    assert_eq!(counters(&sv1["totals"]), [5, 1, 2, 1, 1, 1], "{sv1}");
    assert_eq!(counters(&sv2["totals"]), [2, 0, 1, 1, 0, 1], "{sv2}");
    let order: Vec<&str> = sv1["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["step"].as_str().unwrap())
        .collect();
    assert_eq!(order, ["welcome", "wait", "opened", "sms", "push"]);
    let figures = |v: &Value, s: &str| {
        let f = step(v, s);
        (
            f["runs"].as_i64().unwrap(),
            f["waiting"].as_i64().unwrap(),
            f["branches"].clone(),
            f["conversions"].clone(),
        )
    };
    assert_eq!(figures(sv1, "welcome"), (5, 0, json!({}), json!({})));
    assert_eq!(step(sv1, "welcome")["kind"], "action_email");
    assert_eq!(figures(sv1, "wait"), (4, 1, json!({}), json!({})));
    assert_eq!(
        figures(sv1, "opened"),
        (2, 0, json!({"yes": 1, "no": 1}), json!({"no": 1}))
    );
    assert_eq!(figures(sv1, "sms").0, 1);
    assert_eq!(figures(sv1, "push").0, 1);
    assert_eq!(figures(sv2, "welcome").0, 2);
    assert_eq!(
        figures(sv2, "listen"),
        (2, 0, json!({"timeout": 1, "event": 1}), json!({})),
        "e7 converted before it took `event`"
    );
    assert_eq!(figures(sv2, "thanks").0, 1);
    assert_eq!(figures(sv2, "bye"), (1, 0, json!({}), json!({})));
    assert_eq!(step(sv2, "bye")["kind"], "exit");
    let only2 = get(&app, &format!("/api/v1/journeys/{j1}/stats?version=2")).await;
    assert_eq!(only2["versions"].as_array().unwrap().len(), 1);
    assert_eq!(only2["versions"][0]["version"], 2);
    assert_eq!(counters(&only2["totals"]), [2, 0, 1, 1, 0, 1]);
    let (status, problem) = refused(&app, &format!("/api/v1/journeys/{j1}/stats?version=x")).await;
    assert_eq!(
        (status, problem["errors"][0]["field"].clone()),
        (400, json!("version"))
    );
    // A published journey nobody entered: its steps, all zero.
    let st4 = get(&app, &format!("/api/v1/journeys/{j4}/stats")).await;
    assert_eq!(counters(&st4["totals"]), [0; 6]);
    assert_eq!(st4["versions"][0]["steps"].as_array().unwrap().len(), 5);
    assert_eq!(figures(&st4["versions"][0], "wait").0, 0);

    // Its executions, newest first, by status, in pages.
    let s = |n: usize| e[n].to_string();
    let all = get(&app, &format!("/api/v1/journeys/{j1}/executions")).await;
    assert_eq!(
        ids(&all["items"]),
        [s(7), s(6), s(5), s(4), s(3), s(2), s(1)]
    );
    let (paged, pages) =
        all_pages(&app, &format!("/api/v1/journeys/{j1}/executions?limit=3")).await;
    assert_eq!(paged, ids(&all["items"]));
    assert_eq!(pages, 3);
    let waiting = get(
        &app,
        &format!("/api/v1/journeys/{j1}/executions?status=waiting"),
    )
    .await;
    assert_eq!(ids(&waiting["items"]), [s(1)]);
    let x1 = &waiting["items"][0];
    assert_eq!(x1["step"], "wait");
    assert_eq!(x1["contact_id"], c1.to_string());
    assert_eq!(x1["version"], 1);
    assert_eq!(
        x1["waiting_until"]
            .as_str()
            .map(|t| t.parse::<DateTime<Utc>>().unwrap()),
        Some(at(1) + Duration::days(2))
    );
    let (paged, _) = all_pages(
        &app,
        &format!("/api/v1/journeys/{j1}/executions?status=completed&limit=2"),
    )
    .await;
    assert_eq!(paged, [s(7), s(3), s(2)]);
    let ended = get(
        &app,
        &format!("/api/v1/journeys/{j1}/executions?status=exited,failed"),
    )
    .await;
    assert_eq!(ids(&ended["items"]), [s(6), s(5), s(4)]);
    let items = ended["items"].as_array().unwrap();
    assert_eq!(items[0]["exit_reason"], "exit_step");
    assert_eq!(items[0]["step"], "bye");
    assert_eq!(
        items[0]["branches"],
        json!([{"step": "listen", "branch": "timeout"}])
    );
    assert_eq!(items[1]["status"], "failed");
    assert_eq!(items[1]["error"], "template has no published version");
    assert_eq!(items[2]["exit_reason"], "exit_criteria:unsubscribed_all");
    assert!(items[2]["finished_at"].is_string());
    let (status, problem) = refused(
        &app,
        &format!("/api/v1/journeys/{j1}/executions?status=running&limit=x"),
    )
    .await;
    assert_eq!(status, 400, "{problem}");
    assert_eq!(problem["errors"].as_array().unwrap().len(), 2);
    assert_eq!(
        get(&app, &format!("/api/v1/journeys/{j2}/executions")).await["items"],
        json!([])
    );

    // One execution from the log, and as it was after its third event.
    let h = get(&app, &format!("/api/v1/journeys/{j1}/executions/{}", e[3])).await;
    assert_eq!(h["at_sequence"], 8, "{h}");
    assert_eq!(h["events"].as_array().unwrap().len(), 8);
    let types: Vec<&str> = h["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event_type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        [
            "JourneyEntered",
            "JourneyActionRequested",
            "JourneyWaitStarted",
            "JourneyWoken",
            "JourneyBranchTaken",
            "JourneyConverted",
            "JourneyActionRequested",
            "JourneyCompleted"
        ]
    );
    assert_eq!(h["events"][4]["sequence"], 5);
    assert_eq!(
        h["events"][4]["payload"]["JourneyBranchTaken"]["branch"],
        "no"
    );
    assert!(h["events"][0]["recorded_at"].is_string());
    assert_eq!(h["state"]["status"], "completed");
    assert_eq!(h["state"]["converted"], true);
    let then = get(
        &app,
        &format!("/api/v1/journeys/{j1}/executions/{}?at_sequence=3", e[3]),
    )
    .await;
    assert_eq!(then["at_sequence"], 3);
    assert_eq!(then["state"]["status"], "waiting", "{then}");
    assert_eq!(then["state"]["at"], "wait");
    assert_eq!(then["state"]["converted"], false);
    assert_eq!(
        then["events"].as_array().unwrap().len(),
        8,
        "the whole history"
    );
    let late = get(
        &app,
        &format!("/api/v1/journeys/{j1}/executions/{}?at_sequence=99", e[3]),
    )
    .await;
    assert_eq!(late["at_sequence"], 8);
    for path in [
        format!("/api/v1/journeys/{j2}/executions/{}", e[3]),
        format!("/api/v1/journeys/{j1}/executions/{}", Uuid::now_v7()),
        format!("/api/v1/journeys/{j1}/executions/not-an-id"),
    ] {
        let (status, problem) = refused(&app, &path).await;
        assert_eq!(status, 404, "{path}: {problem}");
    }
    let (status, problem) = refused(
        &app,
        &format!("/api/v1/journeys/{j1}/executions/{}?at_sequence=0", e[3]),
    )
    .await;
    assert_eq!(status, 400, "{problem}");
    assert_eq!(problem["errors"][0]["field"], "at_sequence");

    // A contact's journeys; a merged contact's go with it, and its id answers as the survivor.
    let res = app
        .post(
            &format!("/api/v1/contacts/{c1}/merge"),
            &json!({"from": c3}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    let (_, merged) = mauntic_tests::accepted(res).await;
    for who in [c1, c3] {
        let mine = get(
            &app,
            &format!("/api/v1/contacts/{who}/journeys?consistent_after={merged}"),
        )
        .await;
        assert_eq!(ids(&mine["items"]), [s(6), s(3), s(1)], "{mine}");
        assert_eq!(mine["items"][0]["journey_name"], "Welcome series");
        assert_eq!(mine["items"][1]["contact_id"], c3.to_string());
    }
    let (paged, pages) = all_pages(&app, &format!("/api/v1/contacts/{c1}/journeys?limit=2")).await;
    assert_eq!((paged, pages), (vec![s(6), s(3), s(1)], 2));
    let two = get(&app, &format!("/api/v1/contacts/{c2}/journeys")).await;
    assert_eq!(ids(&two["items"]), [s(2)]);
    let (status, _) = refused(
        &app,
        &format!("/api/v1/contacts/{}/journeys", Uuid::now_v7()),
    )
    .await;
    assert_eq!(status, 404);

    rebuilds_equal_live(&app).await;
    // The rebuilt read models answer the same.
    assert_eq!(
        get(&app, &format!("/api/v1/journeys/{j1}/stats")).await,
        st,
        "stats after the rebuild"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_batch_that_fails_writes_none_of_the_journeys_tables_and_is_applied_once_it_can_be() {
    let app = app().await;
    let w = Journeys::new(&app, app.tenant_id);
    let j = w.create("Welcome series", welcome_v1()).await;
    w.publish(j).await;
    let first = Uuid::now_v7();
    w.record(
        first,
        vec![
            entered(j, 1, Uuid::now_v7(), t0()),
            email("welcome", Some("wait"), t0()),
        ],
    )
    .await;
    app.caught_up("journeys").await;

    // One of the four tables cannot be written: the batch fails whole.
    sqlx::query("ALTER TABLE journey_step_stats RENAME COLUMN runs TO runs_unwritable")
        .execute(&app.pool)
        .await
        .unwrap();
    let second = Uuid::now_v7();
    w.record(
        second,
        vec![
            entered(j, 1, Uuid::now_v7(), t0()),
            email("welcome", Some("wait"), t0()),
        ],
    )
    .await;
    let events: Vec<_> = app
        .all_events()
        .await
        .into_iter()
        .filter(|e| e.aggregate_id.ends_with(&second.to_string()))
        .collect();
    assert_eq!(events.len(), 2);
    let failed = projections::runner::apply_batch(
        &app.pool,
        &JourneysProjection,
        &Target::live(&JourneysProjection),
        &events,
    )
    .await;
    assert!(failed.is_err(), "the batch cannot be applied");
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM journey_executions WHERE id = $1")
        .bind(second)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(rows, 0, "no table took part of the batch");
    let entered: i64 = sqlx::query_scalar("SELECT entered FROM journey_summaries WHERE id = $1")
        .bind(j)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(entered, 1);

    // Repaired, the projector's retry applies it, once.
    sqlx::query("ALTER TABLE journey_step_stats RENAME COLUMN runs_unwritable TO runs")
        .execute(&app.pool)
        .await
        .unwrap();
    app.caught_up("journeys").await;
    let d = get(&app, &format!("/api/v1/journeys/{j}")).await;
    assert_eq!(counters(&d), [2, 2, 0, 0, 0, 0], "{d}");
    let st = get(&app, &format!("/api/v1/journeys/{j}/stats")).await;
    assert_eq!(step(&st["versions"][0], "welcome")["runs"], 2, "{st}");
    rebuilds_equal_live(&app).await;
    app.stop().await;
}
