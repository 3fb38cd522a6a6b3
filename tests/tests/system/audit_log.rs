//! The audit log answers "who changed this, when, from where", and the identity read models
//! rebuild to exactly what the live projectors built.

use mauntic_tests::{spawn_with, Options};
use serde_json::{json, Value};

#[tokio::test]
async fn the_audit_log_says_who_changed_a_contact_when_and_from_where() {
    let app = spawn_with(Options {
        trust_proxy: true,
        ..Options::default()
    })
    .await;
    let (owner, _) = app.founder("owner@example.org", "Acme").await;
    let user = owner.user_id.unwrap();
    let res = owner
        .request(reqwest::Method::POST, "/api/v1/contacts")
        .header("x-forwarded-for", "203.0.113.7")
        .header("user-agent", "AuditTest/1.0")
        .json(&json!({"email": "c@example.org", "fields": {"consent": "unknown"}}))
        .send()
        .await
        .unwrap();
    let (contact, _) = mauntic_tests::accepted(res).await;
    let res = owner
        .request(
            reqwest::Method::PATCH,
            &format!("/api/v1/contacts/{contact}"),
        )
        // The client claims an address; the proxy appends the one it saw.
        .header("x-forwarded-for", "10.9.9.9, 198.51.100.23")
        .header("user-agent", "AuditTest/2.0")
        .header("x-correlation-id", "0190f1c2-0000-7000-8000-0000000000aa")
        .json(&json!({"fields": {"consent": "opted_in"}}))
        .send()
        .await
        .unwrap();
    let (_, cursor) = mauntic_tests::accepted(res).await;
    // A key's change, to filter out.
    app.patch(
        &format!("/api/v1/contacts/{contact}"),
        &json!({"first_name": "X"}),
    )
    .send()
    .await
    .unwrap();

    let page: Value = owner
        .get(&format!(
            "/api/v1/audit?actor=user:{user}&aggregate_type=contact&consistent_after={cursor}"
        ))
        .await
        .json()
        .await
        .unwrap();
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len(), 2, "{page}");
    let change = &items[0];
    assert_eq!(change["event_type"], "ContactUpdated");
    assert_eq!(change["changed"], json!(["fields.consent"]));
    assert_eq!(change["ip"], "198.51.100.23");
    assert_eq!(change["user_agent"], "AuditTest/2.0");
    assert_eq!(
        change["correlation_id"],
        "0190f1c2-0000-7000-8000-0000000000aa"
    );
    assert_eq!(change["aggregate_id"], contact.to_string());
    assert_eq!(items[1]["event_type"], "ContactCreated");
    assert_eq!(items[1]["ip"], "203.0.113.7");

    // Keyset pages and time filters.
    let first: Value = owner
        .get("/api/v1/audit?limit=1")
        .await
        .json()
        .await
        .unwrap();
    let next = first["next"].as_str().unwrap();
    let second: Value = owner
        .get(&format!("/api/v1/audit?limit=1&after={next}"))
        .await
        .json()
        .await
        .unwrap();
    assert_ne!(
        first["items"][0]["event_id"],
        second["items"][0]["event_id"]
    );
    let future = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    let none: Value = owner
        .request(reqwest::Method::GET, "/api/v1/audit")
        .query(&[("from", future.as_str())])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(none["items"], json!([]));
    // Organization events are audited too (the founding, with its owner).
    let org: Value = owner
        .get("/api/v1/audit?aggregate_type=organization")
        .await
        .json()
        .await
        .unwrap();
    let types: Vec<&str> = org["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["event_type"].as_str().unwrap())
        .collect();
    assert!(
        types.contains(&"MemberAdded") && types.contains(&"OrganizationCreated"),
        "{types:?}"
    );
    // Members cannot read it.
    let member = app
        .member(
            owner_org(&owner).await,
            "m@example.org",
            domain::identity::Role::Member,
        )
        .await;
    assert_eq!(member.get("/api/v1/audit").await.status(), 403);
    app.stop().await;
}

async fn owner_org(b: &mauntic_tests::browser::Browser) -> uuid::Uuid {
    let me: Value = b.get("/api/v1/me").await.json().await.unwrap();
    me["current_organization_id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap()
}

#[tokio::test]
async fn identity_and_crm_read_models_rebuild_to_what_the_live_projectors_built() {
    let app = spawn_with(Options::default()).await;
    let (owner, org) = app.founder("owner@example.org", "Acme").await;
    for i in 0..5 {
        let res = owner
            .post(
                "/api/v1/organization/invites",
                json!({"email": format!("i{i}@example.org"), "role": "viewer"}),
            )
            .await;
        assert_eq!(res.status(), 201);
    }
    let res = owner
        .post("/api/v1/api-keys", json!({"name": "k", "role": "member"}))
        .await;
    assert_eq!(res.status(), 201);
    app.member(org, "m@example.org", domain::identity::Role::Member)
        .await;
    owner
        .patch(
            "/api/v1/organization",
            json!({"time_zone": "Europe/Paris", "name": "Acme SA"}),
        )
        .await;
    let (contact, _) = app.create_contact(json!({"email": "t@example.org"})).await;
    let res = owner
        .post("/api/v1/companies", json!({"name": "Initech"}))
        .await;
    let (company, _) = mauntic_tests::accepted(res).await;
    let res = owner
        .request(
            reqwest::Method::PUT,
            &format!("/api/v1/contacts/{contact}/companies/{company}"),
        )
        .json(&json!({"primary": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.status(),
        404,
        "the harness tenant's contact is not in Acme"
    );
    for p in [
        "organizations",
        "users",
        "audit_log",
        "companies",
        "contact_timeline",
        "contacts",
    ] {
        app.caught_up(p).await;
        let live = app.checksum(p).await;
        let projection = projections::by_name(p).unwrap();
        replay::rebuild::rebuild(&app.pool, projection.as_ref(), |_| {})
            .await
            .unwrap();
        assert_eq!(app.checksum(p).await, live, "{p}");
    }
    let o: Value = owner
        .get("/api/v1/organization")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(o["name"], "Acme SA");
    assert_eq!(o["settings"]["time_zone"], "Europe/Paris");
    assert_eq!(o["member_count"], 2);
    let invites: Value = owner
        .get("/api/v1/organization/invites")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(invites.as_array().unwrap().len(), 5);
    let keys: Value = owner.get("/api/v1/api-keys").await.json().await.unwrap();
    let text = keys.to_string();
    assert!(
        !text.contains("digest") && !text.contains("\"key\""),
        "no secrets in lists: {text}"
    );
    app.stop().await;
}
