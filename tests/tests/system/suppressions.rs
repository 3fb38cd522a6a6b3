//! The suppression list: adds (idempotent, never downgraded), the list and detail, removal
//! recording who removed, CSV imports with row errors by line and a size limit, the batch
//! path the delivery worker uses (`suppress_many`), both lookups agreeing, a rebuild, and
//! the address sealed in the log.

use std::collections::HashMap;

use commands::suppressions::{
    entry_id, normalize, suppress_many, suppressed_now, NewSuppression, Outcome,
};
use domain::delivery::suppression::SuppressionReason as R;
use domain::delivery::Channel;
use event_store::EventMetadata;
use mauntic_tests::{accepted, spawn_app, TestApp};
use serde_json::{json, Value};
use uuid::Uuid;

async fn get_json(app: &TestApp, path: &str) -> (u16, Value) {
    let res = app.get(path).send().await.unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

fn upload(bytes: Vec<u8>) -> reqwest::multipart::Form {
    reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(bytes).file_name("suppressions.csv"),
    )
}

async fn import(app: &TestApp, bytes: Vec<u8>) -> (u16, Value) {
    let res = app
        .http
        .post(app.url("/api/v1/suppressions/import"))
        .bearer_auth(&app.api_key)
        .multipart(upload(bytes))
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

async fn suppression_events(app: &TestApp) -> Vec<(String, String)> {
    sqlx::query_as(
        "SELECT event_type, payload::text FROM events WHERE aggregate_type = 'suppression' \
         ORDER BY global_position",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn an_address_is_added_once_never_downgraded_listed_and_removed_by_its_actor() {
    let app = spawn_app().await;
    let res = app
        .post(
            "/api/v1/suppressions",
            &json!({"channel": "email", "address": "  Ada@Example.ORG ", "reason": "hard_bounce"}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let (id, _) = accepted(res).await;
    // The same address, written otherwise, is the same entry; the id is the derived one.
    assert_eq!(
        id,
        entry_id(app.tenant_id, Channel::Email, "ada@example.org")
    );

    // Again, as a manual entry: the same id, 200, and the hard bounce stays.
    let res = app
        .post(
            "/api/v1/suppressions",
            &json!({"channel": "email", "address": "ada@example.org"}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let (again, cursor) = accepted(res).await;
    assert_eq!(again, id);
    assert_eq!(suppression_events(&app).await.len(), 1);

    let (status, entry) = get_json(
        &app,
        &format!("/api/v1/suppressions/{id}?consistent_after={cursor}"),
    )
    .await;
    assert_eq!(status, 200, "{entry}");
    assert_eq!(entry["address"], "ada@example.org");
    assert_eq!(entry["reason"], "hard_bounce");
    assert_eq!(entry["active"], true);
    let actor = entry["source"].as_str().unwrap().to_owned();
    assert!(actor.starts_with("apikey:"), "{entry}");

    // The list, its filters and its address-prefix search.
    app.post(
        "/api/v1/suppressions",
        &json!({"channel": "sms", "address": "+49 151 2345678", "reason": "unsubscribe", "source": "twilio:STOP"}),
    )
    .send()
    .await
    .unwrap();
    let res = app
        .post(
            "/api/v1/suppressions",
            &json!({"channel": "email", "address": "bob@example.org"}),
        )
        .send()
        .await
        .unwrap();
    let (_, cursor) = accepted(res).await;
    let addresses = |v: &Value| -> Vec<String> {
        v["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["address"].as_str().unwrap().to_owned())
            .collect()
    };
    let (_, page) = get_json(
        &app,
        &format!("/api/v1/suppressions?consistent_after={cursor}"),
    )
    .await;
    assert_eq!(
        addresses(&page),
        ["bob@example.org", "+491512345678", "ada@example.org"]
    );
    let (_, page) = get_json(&app, "/api/v1/suppressions?q=ADA").await;
    assert_eq!(addresses(&page), ["ada@example.org"]);
    let (_, page) = get_json(&app, "/api/v1/suppressions?channel=sms").await;
    assert_eq!(addresses(&page), ["+491512345678"]);
    assert_eq!(page["items"][0]["source"], "twilio:STOP");
    let (_, page) = get_json(&app, "/api/v1/suppressions?reason=manual").await;
    assert_eq!(addresses(&page), ["bob@example.org"]);
    let (_, first) = get_json(&app, "/api/v1/suppressions?limit=2").await;
    assert_eq!(addresses(&first).len(), 2);
    let next = first["next"].as_str().unwrap();
    let (_, second) = get_json(&app, &format!("/api/v1/suppressions?limit=2&after={next}")).await;
    assert_eq!(addresses(&second), ["ada@example.org"]);
    assert!(second["next"].is_null());
    let (status, _) = get_json(&app, "/api/v1/suppressions?channel=fax").await;
    assert_eq!(status, 400);

    // Removing the hard bounce records who removed it.
    let res = app
        .delete(&format!("/api/v1/suppressions/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let (_, cursor) = accepted(res).await;
    let (_, entry) = get_json(
        &app,
        &format!("/api/v1/suppressions/{id}?consistent_after={cursor}"),
    )
    .await;
    assert_eq!(entry["active"], false);
    assert_eq!(entry["source"], actor.as_str());
    let events = suppression_events(&app).await;
    let (kind, payload) = events.last().unwrap();
    assert_eq!(kind, "AddressUnsuppressed");
    assert!(payload.contains(&actor), "{payload}");
    let (_, page) = get_json(&app, "/api/v1/suppressions?q=ada").await;
    assert!(
        addresses(&page).is_empty(),
        "removed entries are not listed"
    );
    let (_, page) = get_json(&app, "/api/v1/suppressions?q=ada&include_removed=true").await;
    assert_eq!(addresses(&page), ["ada@example.org"]);
    // Removed already, or never there: 404.
    for path in [
        format!("/api/v1/suppressions/{id}"),
        format!("/api/v1/suppressions/{}", Uuid::now_v7()),
    ] {
        let res = app.delete(&path).send().await.unwrap();
        assert_eq!(res.status(), 404, "{path}");
    }
    let (status, _) = get_json(&app, &format!("/api/v1/suppressions/{}", Uuid::now_v7())).await;
    assert_eq!(status, 404);

    // Every bad field at once; nothing written.
    let before = app.event_count().await;
    let res = app
        .post(
            "/api/v1/suppressions",
            &json!({"channel": "email", "address": "nope", "reason": "spam", "source": ""}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 422);
    let problem: Value = res.json().await.unwrap();
    let mut fields: Vec<&str> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    fields.sort_unstable();
    assert_eq!(fields, ["address", "reason", "source"], "{problem}");
    assert_eq!(app.event_count().await, before);

    // The address never reaches the log in clear.
    for (_, payload) in suppression_events(&app).await {
        assert!(!payload.contains("ada@example.org"), "{payload}");
        assert!(!payload.contains("2345678"), "{payload}");
    }
    let sealed = suppression_events(&app)
        .await
        .iter()
        .filter(|(t, p)| t == "AddressSuppressed" && p.contains("$enc"))
        .count();
    assert_eq!(sealed, 3);
    app.stop().await;
}

#[tokio::test]
async fn suppress_many_appends_once_per_address_and_both_lookups_agree() {
    let app = spawn_app().await;
    let tenant = app.tenant_id;
    let metadata = EventMetadata {
        tenant_id: Some(tenant),
        actor: Some("system:delivery".into()),
        ..Default::default()
    };
    let ada = normalize(Channel::Email, "Ada@Example.org").unwrap();
    let bob = normalize(Channel::Email, "bob@example.org").unwrap();
    let entries: Vec<NewSuppression> = vec![
        (
            Channel::Email,
            ada.clone(),
            R::HardBounce,
            Some("job:1".into()),
        ),
        (
            Channel::Email,
            bob.clone(),
            R::Unsubscribe,
            Some("job:2".into()),
        ),
        // The same address twice in a batch: recorded once.
        (
            Channel::Email,
            ada.clone(),
            R::Complaint,
            Some("job:3".into()),
        ),
        // Not normalized: refused, nothing recorded for it.
        (Channel::Email, "Carol@Example.org".into(), R::Manual, None),
    ];
    let notifier = &app.admin.notifier;
    let first = suppress_many(&app.pool, notifier, tenant, &metadata, &entries)
        .await
        .unwrap();
    let outcomes: Vec<&Outcome> = first.entries.iter().map(|(_, o)| o).collect();
    assert_eq!(outcomes[0], &Outcome::Added);
    assert_eq!(outcomes[1], &Outcome::Added);
    assert_eq!(outcomes[2], &Outcome::AlreadySuppressed);
    assert!(matches!(outcomes[3], Outcome::Refused(_)));
    assert_eq!(first.entries[0].0, entry_id(tenant, Channel::Email, &ada));
    assert!(first.cursor.is_some());
    let second = suppress_many(&app.pool, notifier, tenant, &metadata, &entries[..3])
        .await
        .unwrap();
    assert_eq!(second.already_suppressed(), 3);
    assert!(second.cursor.is_none());
    assert_eq!(suppression_events(&app).await.len(), 2);
    // An unsubscribe after the bounce changes nothing; a complaint outranks an unsubscribe.
    let third = suppress_many(
        &app.pool,
        notifier,
        tenant,
        &metadata,
        &[
            (Channel::Email, ada.clone(), R::Unsubscribe, None),
            (Channel::Email, bob.clone(), R::Complaint, None),
        ],
    )
    .await
    .unwrap();
    assert_eq!(third.added(), 1);
    assert_eq!(third.already_suppressed(), 1);

    let asked = vec![ada.clone(), bob.clone(), "carol@example.org".to_owned()];
    let expected: HashMap<String, R> =
        HashMap::from([(ada.clone(), R::HardBounce), (bob.clone(), R::Complaint)]);
    let now = suppressed_now(&app.pool, tenant, Channel::Email, &asked)
        .await
        .unwrap();
    assert_eq!(now, expected);
    // Another channel, or another organization: nothing.
    assert!(suppressed_now(&app.pool, tenant, Channel::Sms, &asked)
        .await
        .unwrap()
        .is_empty());
    let (other, _) = app.other_tenant().await;
    assert!(suppressed_now(&app.pool, other, Channel::Email, &asked)
        .await
        .unwrap()
        .is_empty());
    app.caught_up("suppressions").await;
    let read = projections::suppressions::suppressed(&app.pool, tenant, Channel::Email, &asked)
        .await
        .unwrap();
    assert_eq!(read, expected);

    // Removed: both lookups drop it.
    let id = entry_id(tenant, Channel::Email, &bob);
    let res = app
        .delete(&format!("/api/v1/suppressions/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let expected = HashMap::from([(ada.clone(), R::HardBounce)]);
    assert_eq!(
        suppressed_now(&app.pool, tenant, Channel::Email, &asked)
            .await
            .unwrap(),
        expected
    );
    app.caught_up("suppressions").await;
    assert_eq!(
        projections::suppressions::suppressed(&app.pool, tenant, Channel::Email, &asked)
            .await
            .unwrap(),
        expected
    );

    // A rebuild from the log (the addresses revealed again) gives the same table.
    let before = app.checksum("suppressions").await;
    replay::rebuild::rebuild(
        &app.pool,
        &projections::suppressions::SuppressionsProjection,
        |_| {},
    )
    .await
    .unwrap();
    assert_eq!(app.checksum("suppressions").await, before);
    app.stop().await;
}

#[tokio::test]
async fn a_csv_import_applies_good_rows_and_reports_bad_ones_by_line() {
    let app = spawn_app().await;
    let file = "Address,Channel,Reason,Notes\n\
                bob@example.org,,,first\n\
                BOB@example.org,email,,same address\n\
                not-an-email,,,\n\
                +49 151 2345678,sms,unsubscribe,\n\
                carol@example.org,fax,spam,\n\
                dave@example.org,,complaint,\n";
    let (status, report) = import(&app, file.as_bytes().to_vec()).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["added"], 3, "{report}");
    assert_eq!(report["already_suppressed"], 1, "{report}");
    assert_eq!(report["rejected"], 2, "{report}");
    let lines: Vec<u64> = report["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["line"].as_u64().unwrap())
        .collect();
    assert_eq!(lines, [4, 6], "{report}");
    let carol = report["errors"][1]["message"].as_str().unwrap();
    assert!(
        carol.contains("channel") && carol.contains("reason"),
        "{carol}"
    );
    let cursor = report["cursor"].as_str().unwrap();
    let (_, page) = get_json(
        &app,
        &format!("/api/v1/suppressions?consistent_after={cursor}"),
    )
    .await;
    assert_eq!(page["items"].as_array().unwrap().len(), 3, "{page}");
    let dave = entry_id(app.tenant_id, Channel::Email, "dave@example.org");
    let (_, entry) = get_json(&app, &format!("/api/v1/suppressions/{dave}")).await;
    assert_eq!(entry["reason"], "complaint");
    assert!(entry["source"]
        .as_str()
        .unwrap()
        .starts_with("import:apikey:"));

    // Files that cannot be used: 422, nothing written.
    let before = app.event_count().await;
    for bad in ["email,name\nada@example.org,Ada\n", ""] {
        let (status, problem) = import(&app, bad.as_bytes().to_vec()).await;
        assert_eq!(status, 422, "{bad:?}: {problem}");
        assert_eq!(problem["errors"][0]["field"], "file");
    }
    // Too large: 413.
    let mut big = b"address\n".to_vec();
    while big.len() <= 10 * 1024 * 1024 {
        big.extend_from_slice(b"someone.with.a.long.address@example.org\n");
    }
    let (status, problem) = import(&app, big).await;
    assert_eq!(status, 413, "{problem}");
    // Not multipart.
    let res = app
        .post("/api/v1/suppressions/import", &json!({"address": "x"}))
        .send()
        .await
        .unwrap();
    assert!(res.status().is_client_error());
    assert_eq!(app.event_count().await, before);
    app.stop().await;
}

#[tokio::test]
async fn another_organization_cannot_see_or_remove_an_entry() {
    let app = spawn_app().await;
    let res = app
        .post(
            "/api/v1/suppressions",
            &json!({"channel": "email", "address": "ada@example.org"}),
        )
        .send()
        .await
        .unwrap();
    let (id, cursor) = accepted(res).await;
    let (_, other_key) = app.other_tenant().await;
    let before = app.event_count().await;
    let as_other = |m: reqwest::Method, path: String| {
        app.http.request(m, app.url(&path)).bearer_auth(&other_key)
    };
    let res = as_other(
        reqwest::Method::GET,
        format!("/api/v1/suppressions/{id}?consistent_after={cursor}"),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(res.status(), 404);
    let res = as_other(
        reqwest::Method::DELETE,
        format!("/api/v1/suppressions/{id}"),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(res.status(), 404);
    let res = as_other(
        reqwest::Method::GET,
        format!("/api/v1/suppressions?consistent_after={cursor}"),
    )
    .send()
    .await
    .unwrap();
    let page: Value = res.json().await.unwrap();
    assert_eq!(page["items"], json!([]));
    assert_eq!(app.event_count().await, before);
    // The same address in the other organization is another entry.
    let res = app
        .http
        .post(app.url("/api/v1/suppressions"))
        .bearer_auth(&other_key)
        .json(&json!({"channel": "email", "address": "ada@example.org"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let (theirs, _) = accepted(res).await;
    assert_ne!(theirs, id);
    let (_, ours) = get_json(
        &app,
        &format!("/api/v1/suppressions/{id}?consistent_after={cursor}"),
    )
    .await;
    assert_eq!(ours["active"], true, "{ours}");
    app.stop().await;
}
