//! Segments: static lists, dynamic rules kept current as contacts change (SegmentEntered /
//! SegmentExited in the log), rules that refer to other segments, relative dates
//! re-evaluated with a moved clock, previews, deletion, and rule validation.

use std::collections::BTreeSet;
use std::time::Duration;

use mauntic_tests::{accepted, eventually, spawn_app, TestApp};
use serde_json::{json, Value};
use uuid::Uuid;

async fn define_plan(app: &TestApp) {
    let res = app
        .post(
            "/api/v1/fields",
            &json!({"key": "plan", "label": "Plan", "type": "select", "options": ["free", "pro"]}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
}

async fn create_segment(app: &TestApp, body: Value) -> Uuid {
    let res = app.post("/api/v1/segments", &body).send().await.unwrap();
    assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
    accepted(res).await.0
}

/// The members of a segment, as the query API lists them (none while the segment is not
/// yet in the read model).
async fn members(app: &TestApp, segment: Uuid) -> BTreeSet<Uuid> {
    let page: Value = app
        .get(&format!("/api/v1/segments/{segment}/contacts?limit=500"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    if page["type"] == "/problems/not-found" {
        return BTreeSet::new();
    }
    page["items"]
        .as_array()
        .unwrap_or_else(|| panic!("{page}"))
        .iter()
        .map(|c| c["id"].as_str().unwrap().parse().unwrap())
        .collect()
}

async fn wait_members(app: &TestApp, segment: Uuid, want: &[Uuid], what: &str) {
    let want: BTreeSet<Uuid> = want.iter().copied().collect();
    eventually(Duration::from_secs(20), what, || {
        let want = want.clone();
        async move { members(app, segment).await == want }
    })
    .await;
}

/// Membership events of `segment` in the log, as `(event type, contact)` in order.
async fn membership_events(app: &TestApp, segment: Uuid) -> Vec<(String, Uuid)> {
    app.all_events()
        .await
        .into_iter()
        .filter(|e| e.aggregate_type == "segment_membership")
        .filter_map(|e| {
            let v: Value = e.decode().unwrap();
            let body = v.as_object()?.values().next()?.clone();
            (body["segment_id"] == segment.to_string()).then(|| {
                (
                    e.event_type.clone(),
                    body["contact_id"].as_str().unwrap().parse().unwrap(),
                )
            })
        })
        .collect()
}

#[tokio::test]
async fn a_dynamic_segment_fills_in_and_follows_every_contact_change() {
    let app = spawn_app().await;
    define_plan(&app).await;
    let (ada, _) = app
        .create_contact(
            json!({"email": "ada@example.org", "fields": {"plan": "pro"}, "tags": ["vip"]}),
        )
        .await;
    let (bob, _) = app
        .create_contact(
            json!({"email": "bob@example.org", "fields": {"plan": "free"}, "tags": ["vip"]}),
        )
        .await;
    let (cy, _) = app
        .create_contact(json!({"email": "cy@example.org", "fields": {"plan": "pro"}}))
        .await;
    let segment = create_segment(
        &app,
        json!({"name": "Pro VIPs", "rule": {"all": [
            {"field": {"name": "fields.plan", "op": "equals", "value": "pro"}},
            {"tag": "vip"}
        ]}}),
    )
    .await;
    // Existing contacts are evaluated when the segment is created.
    wait_members(&app, segment, &[ada], "the segment fills in").await;

    // A change makes Cy match: Cy enters; Ada loses the tag: Ada leaves.
    let res = app
        .post(
            &format!("/api/v1/contacts/{cy}/tags"),
            &json!({"tags": ["vip"]}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let res = app
        .delete(&format!("/api/v1/contacts/{ada}/tags/vip"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    wait_members(&app, segment, &[cy], "Cy enters and Ada leaves").await;
    // Bob's unrelated change records nothing.
    let res = app
        .patch(
            &format!("/api/v1/contacts/{bob}"),
            &json!({"first_name": "Bob"}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    app.caught_up("segment_evaluator").await;

    // Per contact, in order (contacts decided in one batch have no order among them).
    let mut events = membership_events(&app, segment).await;
    events.sort_by_key(|(_, c)| *c);
    let mut want = vec![
        ("SegmentEntered".to_owned(), ada),
        ("SegmentExited".to_owned(), ada),
        ("SegmentEntered".to_owned(), cy),
    ];
    want.sort_by_key(|(_, c)| *c);
    assert_eq!(events, want);
    // The detail counts members; the timeline of Cy shows the entry.
    let detail: Value = app
        .get(&format!("/api/v1/segments/{segment}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(detail["member_count"], 1);
    assert_eq!(detail["kind"], "dynamic");
    app.caught_up("contact_timeline").await;
    let timeline: Value = app
        .get(&format!("/api/v1/contacts/{cy}/timeline"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        timeline.to_string().contains("SegmentEntered"),
        "{timeline}"
    );

    // Changing the rule re-evaluates everyone.
    let res = app
        .patch(
            &format!("/api/v1/segments/{segment}"),
            &json!({"rule": {"field": {"name": "fields.plan", "op": "equals", "value": "free"}}}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    wait_members(&app, segment, &[bob], "the new rule's members").await;

    // Deleting it empties it, and it is gone from the API.
    let res = app
        .delete(&format!("/api/v1/segments/{segment}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    eventually(
        Duration::from_secs(20),
        "members leave a deleted segment",
        || async {
            let n: i64 =
                sqlx::query_scalar("SELECT count(*) FROM segment_members WHERE segment_id = $1")
                    .bind(segment)
                    .fetch_one(&app.pool)
                    .await
                    .unwrap();
            n == 0
        },
    )
    .await;
    app.caught_up("segments").await;
    let res = app
        .get(&format!("/api/v1/segments/{segment}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    assert_written_state_matches_the_log(&app).await;
    app.stop().await;
}

/// `segment_members` is exactly the fold of the membership streams.
async fn assert_written_state_matches_the_log(app: &TestApp) {
    let mut folded: BTreeSet<(Uuid, Uuid)> = BTreeSet::new();
    for e in app.all_events().await {
        if e.aggregate_type != "segment_membership" {
            continue;
        }
        let v: Value = e.decode().unwrap();
        let (kind, body) = v.as_object().unwrap().iter().next().unwrap();
        let key = (
            body["segment_id"].as_str().unwrap().parse().unwrap(),
            body["contact_id"].as_str().unwrap().parse().unwrap(),
        );
        if kind == "SegmentEntered" {
            assert!(folded.insert(key), "entered twice: {key:?}");
        } else {
            assert!(folded.remove(&key), "left without entering: {key:?}");
        }
    }
    let table: BTreeSet<(Uuid, Uuid)> =
        sqlx::query_as::<_, (Uuid, Uuid)>("SELECT segment_id, contact_id FROM segment_members")
            .fetch_all(&app.pool)
            .await
            .unwrap()
            .into_iter()
            .collect();
    assert_eq!(table, folded);
}

#[tokio::test]
async fn static_segments_take_contacts_by_hand_and_rules_can_refer_to_them() {
    let app = spawn_app().await;
    let (ada, _) = app
        .create_contact(json!({"email": "ada@example.org", "tags": ["beta"]}))
        .await;
    let (bob, _) = app
        .create_contact(json!({"email": "bob@example.org"}))
        .await;
    let list = create_segment(&app, json!({"name": "Webinar attendees"})).await;
    let res = app
        .post(
            &format!("/api/v1/segments/{list}/contacts"),
            &json!({"contact_ids": [ada, bob]}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let changed: Value = res.json().await.unwrap();
    assert_eq!(changed["changed"], 2);
    // Adding again changes nothing; unknown contacts are refused, naming them.
    let res = app
        .post(
            &format!("/api/v1/segments/{list}/contacts"),
            &json!({"contact_ids": [ada]}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.json::<Value>().await.unwrap()["changed"], 0);
    let stranger = Uuid::now_v7();
    let res = app
        .post(
            &format!("/api/v1/segments/{list}/contacts"),
            &json!({"contact_ids": [ada, stranger]}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 422);
    assert!(res.text().await.unwrap().contains(&stranger.to_string()));

    // A dynamic segment over the list: attendees tagged beta.
    let beta = create_segment(
        &app,
        json!({"name": "Beta attendees", "rule": {"all": [{"segment": list}, {"tag": "beta"}]}}),
    )
    .await;
    wait_members(&app, beta, &[ada], "the dependent segment fills in").await;
    // Leaving the list leaves the dependent segment too.
    let res = app
        .post(
            &format!("/api/v1/segments/{list}/contacts:remove"),
            &json!({"contact_ids": [ada]}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.json::<Value>().await.unwrap()["changed"], 1);
    wait_members(&app, list, &[bob], "Ada left the list").await;
    // A segment exports to CSV: its members only.
    let csv = app
        .get(&format!("/api/v1/contacts:export?segment_id={list}"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(csv.lines().count(), 2, "{csv}");
    assert!(csv.contains("bob@example.org") && !csv.contains("ada@example.org"));
    wait_members(&app, beta, &[], "Ada left the dependent segment").await;

    // A dynamic segment's members follow its rule; a rule cannot refer back to itself.
    let res = app
        .post(
            &format!("/api/v1/segments/{beta}/contacts"),
            &json!({"contact_ids": [bob]}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 409);
    let res = app
        .patch(
            &format!("/api/v1/segments/{beta}"),
            &json!({"rule": {"not": {"segment": beta}}}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 422);
    let third = create_segment(&app, json!({"name": "C", "rule": {"segment": beta}})).await;
    let res = app
        .patch(
            &format!("/api/v1/segments/{beta}"),
            &json!({"rule": {"segment": third}}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 422, "a cycle through another segment");
    assert!(res.text().await.unwrap().contains("own segment"));
    // Another organization sees none of it.
    let (_, other_key) = app.other_tenant().await;
    let res = app
        .http
        .get(app.url(&format!("/api/v1/segments/{list}/contacts")))
        .bearer_auth(&other_key)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    app.caught_up("segment_evaluator").await;
    assert_written_state_matches_the_log(&app).await;
    app.stop().await;
}

#[tokio::test]
async fn rules_are_checked_and_previewed_before_they_are_saved() {
    let app = spawn_app().await;
    define_plan(&app).await;
    for (i, plan) in ["pro", "pro", "free"].iter().enumerate() {
        app.create_contact(json!({"email": format!("p{i}@example.org"), "fields": {"plan": plan}}))
            .await;
    }
    let res = app
        .post(
            "/api/v1/segments",
            &json!({"name": "Bad", "rule": {"any": [
                {"field": {"name": "fields.nope", "op": "equals", "value": 1}},
                {"field": {"name": "fields.plan", "op": "gt", "value": 1}}
            ]}}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 422);
    let problem: Value = res.json().await.unwrap();
    let fields: Vec<&str> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(
        fields,
        ["rule/any/0/field", "rule/any/1/field"],
        "{problem}"
    );
    // Nothing was written.
    let page: Value = app
        .get("/api/v1/segments")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(page["items"], json!([]));

    // A preview counts and shows the first matches, before anything is saved.
    app.caught_up("contacts").await;
    let preview: Value = app
        .post(
            "/api/v1/segments:preview",
            &json!({"rule": {"field": {"name": "fields.plan", "op": "equals", "value": "pro"}}, "limit": 1}),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(preview["count"], 2, "{preview}");
    assert_eq!(preview["items"].as_array().unwrap().len(), 1);
    assert!(preview["next"].is_string());
    // And the same for a saved one.
    let seg = create_segment(
        &app,
        json!({"name": "Free", "rule": {"field": {"name": "fields.plan", "op": "not_equals", "value": "pro"}}}),
    )
    .await;
    app.caught_up("segments").await;
    let preview: Value = app
        .get(&format!("/api/v1/segments/{seg}/preview"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(preview["count"], 1, "{preview}");
    app.stop().await;
}

#[tokio::test]
async fn rules_on_relative_dates_follow_the_clock_when_refreshed() {
    let app = spawn_app().await;
    let res = app
        .post(
            "/api/v1/fields",
            &json!({"key": "trial_ends", "label": "Trial ends", "type": "date"}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let today = app.settings.clock.now().date_naive();
    let in_3_days = (today + chrono::Days::new(3)).to_string();
    let in_10_days = (today + chrono::Days::new(10)).to_string();
    let (soon, _) = app
        .create_contact(json!({"email": "soon@example.org", "fields": {"trial_ends": in_3_days}}))
        .await;
    let (later, _) = app
        .create_contact(json!({"email": "later@example.org", "fields": {"trial_ends": in_10_days}}))
        .await;
    let seg = create_segment(
        &app,
        json!({"name": "Trial ending this week", "rule":
            {"field": {"name": "fields.trial_ends", "op": "within_next_days", "days": 7}}}),
    )
    .await;
    wait_members(&app, seg, &[soon], "this week's trials").await;
    // A week later: the first trial has ended, the second ends within the week.
    app.settings.clock.advance(chrono::Duration::days(7));
    let res = app
        .post(&format!("/api/v1/segments/{seg}/refresh"), &json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
    wait_members(&app, seg, &[later], "next week's trials").await;
    app.stop().await;
}

#[tokio::test]
async fn a_merged_contact_leaves_its_segments_and_its_survivor_takes_its_lists() {
    let app = spawn_app().await;
    let (a, _) = app.create_contact(json!({"email": "a@example.org"})).await;
    let (b, _) = app
        .create_contact(json!({"email": "b@example.org", "tags": ["vip"]}))
        .await;
    let list = create_segment(&app, json!({"name": "Newsletter"})).await;
    let vips = create_segment(&app, json!({"name": "VIPs", "rule": {"tag": "vip"}})).await;
    let res = app
        .post(
            &format!("/api/v1/segments/{list}/contacts"),
            &json!({"contact_ids": [b]}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    wait_members(&app, vips, &[b], "B is a VIP").await;

    let res = app
        .post(&format!("/api/v1/contacts/{a}/merge"), &json!({"from": b}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    // A has B's tag now, so A is a VIP; A takes B's list; B is in nothing.
    wait_members(&app, vips, &[a], "the survivor is a VIP").await;
    wait_members(&app, list, &[a], "the survivor takes the list").await;
    app.caught_up("segment_evaluator").await;
    let b_in: i64 =
        sqlx::query_scalar("SELECT count(*) FROM segment_members WHERE contact_id = $1")
            .bind(b)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(b_in, 0);
    assert_written_state_matches_the_log(&app).await;
    app.stop().await;
}
