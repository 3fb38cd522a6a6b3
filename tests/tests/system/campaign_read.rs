//! What users read about campaigns: the list (filters, search, sorts, keyset pages), one
//! campaign's summary, its stats (rollups by hour and day, by variant, link clicks), its
//! recipients — driven by real campaign events (through the executor) and real delivery-job
//! events (requested and recorded through `Jobs`), and each read model rebuilt from the log
//! equal to the live one.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Duration, Utc};
use commands::delivery::jobs::Queue;
use commands::Executor;
use domain::campaign::{
    AbTest, Campaign, CampaignCommand as C, Phase, Pinned, Schedule, Settings, Variant,
    VariantFigures, WinnerMetric,
};
use domain::delivery::{Channel, DeliveryCommand as D, Request, Source, Suppression};
use event_store::EventMetadata;
use mauntic::settings::Role;
use mauntic_tests::{spawn_with, Options, TestApp};
use serde_json::Value;
use uuid::Uuid;

/// The application without workers: nothing but the test records what becomes of jobs.
async fn app() -> TestApp {
    spawn_with(Options {
        roles: [Role::Commands, Role::Queries, Role::Projector].into(),
        ..Options::default()
    })
    .await
}

fn metadata(app: &TestApp) -> EventMetadata {
    EventMetadata {
        tenant_id: Some(app.tenant_id),
        actor: Some("system:test".into()),
        ..Default::default()
    }
}

fn settings(name: &str) -> Settings {
    Settings {
        name: name.into(),
        channel: Channel::Email,
        template_id: Some(Uuid::now_v7()),
        segments: vec![Uuid::now_v7()],
        ..Settings::default()
    }
}

struct Campaigns<'a> {
    app: &'a TestApp,
    exec: Executor<Campaign>,
}

impl<'a> Campaigns<'a> {
    fn new(app: &'a TestApp) -> Self {
        Self {
            app,
            exec: Executor::new(app.pool.clone(), app.admin.notifier.clone(), ()),
        }
    }

    async fn run(&self, id: Uuid, command: C) {
        self.exec
            .execute(self.app.tenant_id, id, command, &metadata(self.app))
            .await
            .unwrap();
    }

    async fn create(&self, s: Settings) -> Uuid {
        let id = Uuid::now_v7();
        self.run(
            id,
            C::Create {
                settings: s,
                cloned_from: None,
            },
        )
        .await;
        id
    }

    async fn schedule(&self, id: Uuid, at: DateTime<Utc>) {
        let schedule = Schedule::At {
            at,
            time_zone: "Europe/Berlin".into(),
        };
        self.run(
            id,
            C::Schedule {
                schedule,
                now: Utc::now(),
            },
        )
        .await;
    }

    async fn start(&self, id: Uuid, s: &Settings, audience: u64) {
        let pinned = s
            .templates()
            .into_iter()
            .map(|(v, t)| Pinned {
                variant: v.map(str::to_owned),
                template_id: t,
                version: 1,
            })
            .collect();
        self.run(
            id,
            C::Start {
                pinned,
                audience,
                test_group: audience,
                now: Utc::now(),
            },
        )
        .await;
    }
}

/// A job of `campaign` for a new contact, with `variant`.
fn request(campaign: Uuid, variant: Option<&str>) -> Request {
    Request {
        channel: Channel::Email,
        contact_id: Some(Uuid::now_v7()),
        to: String::new(),
        template_id: Uuid::now_v7(),
        template_version: 1,
        source: Source::Campaign {
            campaign_id: campaign,
            variant: variant.map(str::to_owned),
        },
        data: Value::Null,
        from: None,
        reply_to: None,
        provider_id: None,
    }
}

async fn job(app: &TestApp, id: Uuid, command: D, queue: Queue) {
    app.admin
        .delivery
        .jobs
        .execute(app.tenant_id, id, command, &metadata(app), queue)
        .await
        .unwrap();
}

async fn sent(app: &TestApp, id: Uuid) {
    job(
        app,
        id,
        D::BeginDispatch {
            provider: "smtp".into(),
        },
        Queue::Keep,
    )
    .await;
    job(
        app,
        id,
        D::RecordSent {
            provider_message_id: format!("m-{id}"),
        },
        Queue::Remove,
    )
    .await;
}

async fn get(app: &TestApp, path: &str) -> Value {
    let res = app.get(path).send().await.unwrap();
    let status = res.status();
    let body: Value = res.json().await.unwrap_or(Value::Null);
    assert_eq!(status, 200, "GET {path}: {body}");
    body
}

const READ_MODELS: [&str; 3] = [
    "campaign_summaries",
    "campaign_rollups",
    "campaign_link_clicks",
];

async fn caught_up(app: &TestApp) {
    for p in READ_MODELS.iter().chain(&["deliveries"]) {
        app.caught_up(p).await;
    }
}

/// Each read model rebuilt from the log holds exactly the live one's rows.
async fn rebuilds_equal_live(app: &TestApp) {
    caught_up(app).await;
    for name in READ_MODELS {
        let live = app.checksum(name).await;
        let projection = projections::by_name(name).unwrap();
        replay::rebuild::rebuild(&app.pool, projection.as_ref(), |_| {})
            .await
            .unwrap();
        assert_eq!(app.checksum(name).await, live, "{name} rebuilt differs");
    }
}

#[tokio::test]
async fn a_sends_summary_stats_links_and_recipients_follow_its_jobs_events_and_rebuild_the_same() {
    let app = app().await;
    let campaigns = Campaigns::new(&app);
    let mut s = settings("Spring sale");
    s.template_id = None;
    s.ab_test = Some(AbTest {
        variants: vec![
            Variant {
                name: "A".into(),
                template_id: Uuid::now_v7(),
            },
            Variant {
                name: "B".into(),
                template_id: Uuid::now_v7(),
            },
        ],
        test_percent: 100,
        metric: WinnerMetric::UniqueOpens,
        wait_minutes: 60,
    });
    let id = campaigns.create(s.clone()).await;
    campaigns.start(id, &s, 5).await;

    // Five recipients: a1, a2 (A), b1, b2, b3 (B).
    let jobs: Vec<(Uuid, Request)> = ["A", "A", "B", "B", "B"]
        .iter()
        .map(|v| (Uuid::now_v7(), request(id, Some(v))))
        .collect();
    let ids: Vec<Uuid> = jobs.iter().map(|(j, _)| *j).collect();
    let (a1, a2, b1, b2, b3) = (ids[0], ids[1], ids[2], ids[3], ids[4]);
    app.admin
        .delivery
        .jobs
        .request(
            app.tenant_id,
            &metadata(&app),
            &jobs,
            Utc::now() + Duration::days(1),
        )
        .await
        .unwrap();
    // b3 is opted out; the others are sent.
    job(&app, b3, D::Suppress(Suppression::OptedOut), Queue::Remove).await;
    for j in [a1, a2, b1, b2] {
        sent(&app, j).await;
    }
    let now = Utc::now();
    for j in [a1, b1] {
        job(&app, j, D::RecordDelivered { at: now }, Queue::Keep).await;
    }
    // a1 opens twice and clicks two links; b1 opens once and clicks one; b2 bounces.
    let open = || D::RecordOpen {
        at: now,
        user_agent: None,
    };
    let click = |url: &str| D::RecordClick {
        url: url.into(),
        at: now,
    };
    job(&app, a1, open(), Queue::Keep).await;
    job(&app, a1, open(), Queue::Keep).await;
    job(&app, a1, click("https://shop.example/one"), Queue::Keep).await;
    job(&app, a1, click("https://shop.example/two"), Queue::Keep).await;
    job(&app, b1, open(), Queue::Keep).await;
    job(&app, b1, click("https://shop.example/two"), Queue::Keep).await;
    job(
        &app,
        b2,
        D::RecordBounce {
            kind: domain::delivery::BounceKind::Hard,
            diagnostic: "550 no such user".into(),
            at: now,
        },
        Queue::Keep,
    )
    .await;
    job(&app, a2, D::RecordUnsubscribe { at: now }, Queue::Keep).await;
    // The A/B decision, after the test group's wait.
    let fanned = Utc::now();
    campaigns
        .run(
            id,
            C::RecordFannedOut {
                phase: Phase::Test,
                queued: 5,
                now: fanned,
            },
        )
        .await;
    let figures = vec![
        VariantFigures {
            variant: "A".into(),
            sent: 2,
            unique_opens: 1,
            unique_clicks: 1,
        },
        VariantFigures {
            variant: "B".into(),
            sent: 2,
            unique_opens: 1,
            unique_clicks: 1,
        },
    ];
    campaigns
        .run(
            id,
            C::ChooseWinner {
                figures,
                now: fanned + Duration::hours(2),
            },
        )
        .await;
    caught_up(&app).await;

    // The summary.
    let c = get(&app, &format!("/api/v1/campaigns/{id}")).await;
    assert_eq!(c["status"], "sending", "{c}");
    assert_eq!(c["name"], "Spring sale");
    assert_eq!(c["audience"], 5);
    assert_eq!(c["pinned"].as_array().unwrap().len(), 2, "{c}");
    assert_eq!(c["settings"]["ab_test"]["test_percent"], 100);
    assert_eq!(c["winner"], "A");
    assert_eq!(c["ab_decision"]["figures"][1]["variant"], "B", "{c}");
    for (k, v) in [
        ("queued", 5),
        ("sent", 4),
        ("delivered", 2),
        ("opened", 2),
        ("clicked", 2),
        ("bounced", 1),
        ("complained", 0),
        ("unsubscribed", 1),
        ("suppressed", 1),
        ("failed", 0),
        ("cancelled_jobs", 0),
    ] {
        assert_eq!(c[k], v, "{k}: {c}");
    }
    assert_eq!(c["skipped"], serde_json::json!({"opted_out": 1}));

    // Stats: totals and rates, by variant, by channel, links.
    let st = get(&app, &format!("/api/v1/campaigns/{id}/stats")).await;
    assert_eq!(st["totals"]["sent"], 4, "{st}");
    assert_eq!(st["opens"], 3);
    assert_eq!(st["clicks"], 3);
    assert_eq!(st["rates"]["open_rate"], 0.5);
    assert_eq!(st["rates"]["bounce_rate"], 0.25);
    let variants: BTreeMap<String, Value> = st["by_variant"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["name"].as_str().unwrap().to_owned(), p.clone()))
        .collect();
    assert_eq!(
        variants.keys().cloned().collect::<Vec<_>>(),
        ["A", "B"],
        "{st}"
    );
    let a = &variants["A"];
    assert_eq!(
        (
            a["sent"].clone(),
            a["opens"].clone(),
            a["unique_opens"].clone()
        ),
        (2.into(), 2.into(), 1.into())
    );
    assert_eq!(
        (
            a["clicks"].clone(),
            a["unique_clicks"].clone(),
            a["unsubscribes"].clone()
        ),
        (2.into(), 1.into(), 1.into())
    );
    let b = &variants["B"];
    assert_eq!(
        (
            b["sent"].clone(),
            b["bounced"].clone(),
            b["delivered"].clone()
        ),
        (2.into(), 1.into(), 1.into())
    );
    assert_eq!(b["rates"]["bounce_rate"], 0.5);
    assert_eq!(st["by_channel"][0]["name"], "email");
    assert_eq!(st["by_channel"][0]["sent"], 4);
    let links: BTreeMap<String, (i64, i64)> = st["links"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["url"].as_str().unwrap().to_owned(),
                (
                    l["clicks"].as_i64().unwrap(),
                    l["unique_clicks"].as_i64().unwrap(),
                ),
            )
        })
        .collect();
    assert_eq!(
        links,
        BTreeMap::from([
            ("https://shop.example/one".to_owned(), (1, 1)),
            ("https://shop.example/two".to_owned(), (2, 1)),
        ])
    );

    // The series: every bucket as the log's own times put the events in it.
    let events = app.all_events().await;
    for (granularity, secs) in [("hour", 3600), ("day", 86_400)] {
        let mut expected: BTreeMap<i64, (i64, i64)> = BTreeMap::new();
        for e in events.iter().filter(|e| e.aggregate_type == "delivery_job") {
            let t = e.recorded_at.timestamp();
            let bucket = t - t.rem_euclid(secs);
            let slot = expected.entry(bucket).or_default();
            match e.event_type.as_str() {
                "DeliverySent" => slot.0 += 1,
                "DeliveryOpened" => slot.1 += 1,
                _ => {}
            }
        }
        expected.retain(|_, v| *v != (0, 0));
        let st = get(
            &app,
            &format!("/api/v1/campaigns/{id}/stats?granularity={granularity}"),
        )
        .await;
        assert_eq!(st["granularity"], granularity);
        let got: BTreeMap<i64, (i64, i64)> = st["series"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| {
                let at: DateTime<Utc> = b["bucket"].as_str().unwrap().parse().unwrap();
                (
                    at.timestamp(),
                    (b["sent"].as_i64().unwrap(), b["opens"].as_i64().unwrap()),
                )
            })
            .collect();
        assert_eq!(got, expected, "{granularity}: {st}");
    }
    let res = app
        .get(&format!("/api/v1/campaigns/{id}/stats?granularity=week"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);

    // Recipients, with their variants; a status filter; keyset pages.
    let r = get(&app, &format!("/api/v1/campaigns/{id}/recipients")).await;
    let items = r["items"].as_array().unwrap();
    assert_eq!(items.len(), 5, "{r}");
    let by_job: BTreeMap<String, &Value> = items
        .iter()
        .map(|i| (i["job_id"].as_str().unwrap().to_owned(), i))
        .collect();
    assert_eq!(by_job[&b3.to_string()]["status"], "suppressed");
    assert_eq!(by_job[&b3.to_string()]["variant"], "B");
    assert_eq!(by_job[&a1.to_string()]["variant"], "A");
    assert_eq!(by_job[&a1.to_string()]["status"], "delivered");
    assert!(by_job[&a2.to_string()]["sent_at"].is_string());
    let r = get(
        &app,
        &format!("/api/v1/campaigns/{id}/recipients?status=bounced"),
    )
    .await;
    assert_eq!(r["items"][0]["job_id"], b2.to_string(), "{r}");
    assert_eq!(r["items"].as_array().unwrap().len(), 1);
    let mut seen = BTreeSet::new();
    let mut path = format!("/api/v1/campaigns/{id}/recipients?limit=2");
    loop {
        let page = get(&app, &path).await;
        for i in page["items"].as_array().unwrap() {
            assert!(seen.insert(i["job_id"].as_str().unwrap().to_owned()));
        }
        match page["next"].as_str() {
            Some(n) => path = format!("/api/v1/campaigns/{id}/recipients?limit=2&after={n}"),
            None => break,
        }
    }
    assert_eq!(seen.len(), 5);

    // Another organization sees none of it.
    let (_, other) = app.other_tenant().await;
    for p in ["", "/stats", "/recipients"] {
        let res = app
            .http
            .get(app.url(&format!("/api/v1/campaigns/{id}{p}")))
            .bearer_auth(&other)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 404, "{p}");
    }

    rebuilds_equal_live(&app).await;
    app.stop().await;
}

fn names(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn the_list_filters_by_status_and_name_sorts_three_ways_and_pages_by_key() {
    let app = app().await;
    let campaigns = Campaigns::new(&app);
    let day = Duration::days(1);
    let now = Utc::now();
    let mut ids = BTreeMap::new();
    let mut all_settings = BTreeMap::new();
    for name in [
        "Alpha news",
        "beta NEWS",
        "Gamma",
        "Delta 50% off",
        "Delta half off",
        "Epsilon",
        "Zeta",
        "eta",
    ] {
        let s = settings(name);
        ids.insert(name, campaigns.create(s.clone()).await);
        all_settings.insert(name, s);
    }
    // Scheduled: Gamma in 3 days, Epsilon in 1, Zeta in 2 (then cancelled).
    campaigns.schedule(ids["Gamma"], now + day * 3).await;
    campaigns.schedule(ids["Epsilon"], now + day).await;
    campaigns.schedule(ids["Zeta"], now + day * 2).await;
    campaigns
        .run(ids["Zeta"], C::Cancel { now: Utc::now() })
        .await;
    // Sending: Delta half off. Renamed: eta → Theta. Deleted: beta NEWS.
    campaigns
        .start(ids["Delta half off"], &all_settings["Delta half off"], 10)
        .await;
    campaigns
        .run(
            ids["eta"],
            C::Change {
                settings: settings("Theta"),
            },
        )
        .await;
    campaigns.run(ids["beta NEWS"], C::Delete).await;
    caught_up(&app).await;

    let all = get(&app, "/api/v1/campaigns").await;
    assert_eq!(
        names(&all),
        [
            "Alpha news",
            "Gamma",
            "Delta 50% off",
            "Delta half off",
            "Epsilon",
            "Zeta",
            "Theta"
        ],
        "created order, the deleted one left out: {all}"
    );
    assert!(
        all["items"][0].get("settings").is_none(),
        "no settings blob"
    );
    assert_eq!(all["items"][0]["status"], "draft");
    let res = app
        .get(&format!("/api/v1/campaigns/{}", ids["beta NEWS"]))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);

    let page = get(&app, "/api/v1/campaigns?status=scheduled").await;
    assert_eq!(names(&page), ["Gamma", "Epsilon"]);
    let page = get(&app, "/api/v1/campaigns?status=sending,cancelled").await;
    assert_eq!(names(&page), ["Delta half off", "Zeta"]);
    let page = get(
        &app,
        "/api/v1/campaigns?status=sending&status=scheduled&sort=name",
    )
    .await;
    assert_eq!(names(&page), ["Delta half off", "Epsilon", "Gamma"]);
    let res = app
        .get("/api/v1/campaigns?status=bogus")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let res = app.get("/api/v1/campaigns?sort=size").send().await.unwrap();
    assert_eq!(res.status(), 400);

    // Name search: case-insensitive substrings, pattern characters literal.
    let page = get(&app, "/api/v1/campaigns?q=NEWS").await;
    assert_eq!(names(&page), ["Alpha news"]);
    let page = get(&app, "/api/v1/campaigns?q=50%25").await;
    assert_eq!(names(&page), ["Delta 50% off"]);
    let page = get(&app, "/api/v1/campaigns?q=ta&sort=-name").await;
    assert_eq!(
        names(&page),
        ["Zeta", "Theta", "Delta half off", "Delta 50% off"]
    );

    // starts_at: the scheduled ones by their time, the others after them.
    let page = get(&app, "/api/v1/campaigns?sort=starts_at&limit=3").await;
    assert_eq!(names(&page), ["Epsilon", "Zeta", "Gamma"]);
    let page = get(&app, "/api/v1/campaigns?sort=-starts_at").await;
    assert_eq!(names(&page)[4..], ["Gamma", "Zeta", "Epsilon"]);

    // Keyset pages, each sort either way: the pages put together are the whole list.
    for sort in [
        "created_at",
        "-created_at",
        "name",
        "-name",
        "starts_at",
        "-starts_at",
    ] {
        let whole = names(&get(&app, &format!("/api/v1/campaigns?sort={sort}")).await);
        let mut paged = Vec::new();
        let mut path = format!("/api/v1/campaigns?sort={sort}&limit=2");
        loop {
            let page = get(&app, &path).await;
            paged.extend(names(&page));
            match page["next"].as_str() {
                Some(n) => path = format!("/api/v1/campaigns?sort={sort}&limit=2&after={n}"),
                None => break,
            }
        }
        assert_eq!(paged, whole, "{sort}");
        assert_eq!(whole.len(), 7);
    }
    let res = app
        .get("/api/v1/campaigns?after=not-a-token")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);

    // Another organization's list is empty.
    let (_, other) = app.other_tenant().await;
    let res = app
        .http
        .get(app.url("/api/v1/campaigns"))
        .bearer_auth(&other)
        .send()
        .await
        .unwrap();
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["items"], serde_json::json!([]));

    rebuilds_equal_live(&app).await;
    app.stop().await;
}
