//! Organizations: invites through real mail, API keys (revocation seen by every process at
//! once), blocking, and the owner invariant under concurrency.

use std::time::Duration;

use domain::identity::organization::Organization;
use domain::identity::Role;
use mauntic_tests::smtp_sink::{token_in, SmtpSink};
use mauntic_tests::{spawn_app, spawn_with, start, Options};
use serde_json::{json, Value};
use uuid::Uuid;

/// The organization as its stream says now.
async fn org_state(app: &mauntic_tests::TestApp, org: Uuid) -> Organization {
    app.admin
        .identity
        .organizations
        .executor()
        .load(org, org)
        .await
        .unwrap()
}

#[tokio::test]
async fn invite_tokens_are_single_use_expire_and_belong_to_one_email() {
    let sink = SmtpSink::start();
    let app = spawn_with(Options {
        smtp_url: Some(sink.url()),
        ..Options::default()
    })
    .await;
    let (owner, org) = app.founder("owner@example.org", "Acme").await;
    let invite = |email: &'static str| {
        let owner = &owner;
        async move {
            let res = owner
                .post(
                    "/api/v1/organization/invites",
                    json!({"email": email, "role": "member"}),
                )
                .await;
            assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
            let body: Value = res.json().await.unwrap();
            body["id"].as_str().unwrap().to_owned()
        }
    };
    invite("bob@example.org").await;
    let mail = sink
        .wait_for_message_with("bob@example.org", "Join Acme", Duration::from_secs(10))
        .await;
    let token = token_in(&mail);

    // Someone else cannot use Bob's invite.
    let mut carol = app.browser();
    carol.sign_up("carol@example.org").await;
    let res = carol
        .post("/api/v1/invites/accept", json!({"token": token}))
        .await;
    assert_eq!(res.status(), 403);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["type"], "/problems/invite-for-another-email");

    // Bob joins; accepting again changes nothing.
    let mut bob = app.browser();
    let bob_id = bob.sign_up("bob@example.org").await;
    let res = bob
        .post("/api/v1/invites/accept", json!({"token": token}))
        .await;
    assert_eq!(res.status(), 200);
    let events = app.event_count().await;
    let res = bob
        .post("/api/v1/invites/accept", json!({"token": token}))
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(
        app.event_count().await,
        events,
        "the second acceptance recorded nothing"
    );
    assert_eq!(
        org_state(&app, org).await.role_of(bob_id),
        Some(Role::Member)
    );
    assert_eq!(
        bob.get("/api/v1/organization").await.status(),
        200,
        "Bob works in Acme now"
    );

    // A token with a guessed secret is no invite at all.
    let forged = format!("{}{}", &token[..token.len() - 4], "0000");
    let res = carol
        .post("/api/v1/invites/accept", json!({"token": forged}))
        .await;
    assert_eq!(res.status(), 404);

    // Revoked.
    let id = invite("erin@example.org").await;
    let mail = sink
        .wait_for_message_with("erin@example.org", "Join Acme", Duration::from_secs(10))
        .await;
    assert_eq!(
        owner
            .delete(&format!("/api/v1/organization/invites/{id}"))
            .await
            .status(),
        200
    );
    let mut erin = app.browser();
    erin.sign_up("erin@example.org").await;
    let res = erin
        .post("/api/v1/invites/accept", json!({"token": token_in(&mail)}))
        .await;
    assert_eq!(res.status(), 409);

    // Resent: the old link stops working, the new one works.
    let id = invite("frank@example.org").await;
    let first = sink
        .wait_for_message_with("frank@example.org", "Join Acme", Duration::from_secs(10))
        .await;
    let res = owner
        .post(
            &format!("/api/v1/organization/invites/{id}/resend"),
            json!({}),
        )
        .await;
    assert_eq!(res.status(), 200);
    let mails = sink
        .wait_for_count("frank@example.org", 2, Duration::from_secs(10))
        .await;
    let mut frank = app.browser();
    frank.sign_up("frank@example.org").await;
    let res = frank
        .post("/api/v1/invites/accept", json!({"token": token_in(&first)}))
        .await;
    assert_eq!(res.status(), 404, "the first link no longer works");
    let res = frank
        .post(
            "/api/v1/invites/accept",
            json!({"token": token_in(&mails[1])}),
        )
        .await;
    assert_eq!(res.status(), 200);

    // Expired: a week and a day later.
    invite("dave@example.org").await;
    let mail = sink
        .wait_for_message_with("dave@example.org", "Join Acme", Duration::from_secs(10))
        .await;
    app.settings.clock.advance(chrono::Duration::days(8));
    // (Sessions from before would have idled out too.)
    let mut dave = app.browser();
    dave.sign_up("dave@example.org").await;
    let res = dave
        .post("/api/v1/invites/accept", json!({"token": token_in(&mail)}))
        .await;
    assert_eq!(res.status(), 410);
    assert_eq!(org_state(&app, org).await.members.len(), 3);
    app.stop().await;
}

#[tokio::test]
async fn a_user_belongs_to_several_organizations_and_switches_between_them() {
    let app = spawn_app().await;
    let (b, first) = app.founder("ada@example.org", "First").await;
    let res = b
        .post("/api/v1/organizations", json!({"name": "Second"}))
        .await;
    assert_eq!(res.status(), 201);
    let (second, cursor) = mauntic_tests::accepted(res).await;
    let me: Value = b
        .get(&format!("/api/v1/me?consistent_after={cursor}"))
        .await
        .json()
        .await
        .unwrap();
    let names: Vec<&str> = me["organizations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["First", "Second"]);
    assert_eq!(me["current_organization_id"], second.to_string());
    let name = |b: &mauntic_tests::browser::Browser| {
        let req = b.request(
            reqwest::Method::GET,
            "/api/v1/organization?consistent_after=0-0",
        );
        async move { req.send().await.unwrap().json::<Value>().await.unwrap()["name"].clone() }
    };
    assert_eq!(name(&b).await, "Second");
    let res = b
        .post("/api/v1/me/organization", json!({"organization_id": first}))
        .await;
    assert_eq!(res.status(), 204);
    assert_eq!(name(&b).await, "First");
    // The next sign-in starts where the user left off.
    let mut again = app.browser();
    let res = again
        .log_in("ada@example.org", mauntic_tests::browser::PASSWORD)
        .await;
    let answer = again.signed_in(res).await;
    assert_eq!(answer["organization_id"], first.to_string());
    app.stop().await;
}

#[tokio::test]
async fn a_revoked_key_fails_on_its_next_request_in_every_process() {
    let app = spawn_app().await;
    let second = start(app.settings.clone()).await;
    let res = app
        .post(
            "/api/v1/api-keys",
            &json!({"name": "website", "role": "member"}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let created: Value = res.json().await.unwrap();
    let key = created["key"].as_str().unwrap().to_owned();
    let id = created["id"].as_str().unwrap().to_owned();
    assert!(key.starts_with(created["prefix"].as_str().unwrap()));
    for base in [&app.base, &second.base] {
        let res = app
            .http
            .get(format!("{base}/api/v1/contacts"))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap();
        assert_eq!(
            res.status(),
            200,
            "both processes know the key (and cache it)"
        );
    }
    let res = app
        .delete(&format!("/api/v1/api-keys/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    for base in [&app.base, &second.base] {
        let res = app
            .http
            .get(format!("{base}/api/v1/contacts"))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap();
        assert_eq!(
            res.status(),
            401,
            "revoked: refused on the very next request"
        );
    }
    // A member key cannot make keys; an expired key is refused.
    let res = app
        .post(
            "/api/v1/api-keys",
            &json!({"name": "short", "role": "viewer", "expires_at": (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339()}),
        )
        .send()
        .await
        .unwrap();
    let short: Value = res.json().await.unwrap();
    let short = short["key"].as_str().unwrap().to_owned();
    let get = |k: String| {
        app.http
            .get(app.url("/api/v1/contacts"))
            .bearer_auth(k)
            .send()
    };
    assert_eq!(get(short.clone()).await.unwrap().status(), 200);
    app.settings.clock.advance(chrono::Duration::hours(2));
    assert_eq!(get(short).await.unwrap().status(), 401);
    second.stop().await;
    app.stop().await;
}

#[tokio::test]
async fn a_blocked_organization_is_refused_on_the_next_request_and_keeps_its_data() {
    let app = spawn_app().await;
    let (id, cursor) = app
        .create_contact(json!({"email": "kept@example.org"}))
        .await;
    app.contact(id, cursor).await;
    let (member, org) = app.founder("owner@example.org", "Acme").await;
    commands::identity::admin::set_blocked(&app.admin, app.tenant_id, Some("abuse".into()))
        .await
        .unwrap();
    let res = app.get("/api/v1/contacts").send().await.unwrap();
    assert_eq!(res.status(), 403);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["type"], "/problems/organization-blocked");
    let res = app
        .post("/api/v1/contacts", &json!({"email": "new@example.org"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    // Another organization is untouched.
    assert_eq!(member.get("/api/v1/contacts").await.status(), 200);
    commands::identity::admin::set_blocked(&app.admin, org, Some("x".into()))
        .await
        .unwrap();
    assert_eq!(
        member.get("/api/v1/contacts").await.status(),
        403,
        "sessions too"
    );
    commands::identity::admin::set_blocked(&app.admin, app.tenant_id, None)
        .await
        .unwrap();
    assert_eq!(app.contact(id, cursor).await["email"], "kept@example.org");
    app.stop().await;
}

#[tokio::test]
async fn concurrent_removals_transfers_and_acceptances_never_leave_an_organization_without_an_owner(
) {
    let sink = SmtpSink::start();
    let app = spawn_with(Options {
        smtp_url: Some(sink.url()),
        ..Options::default()
    })
    .await;
    for round in 0..5 {
        let (a, org) = app.founder(&format!("a{round}@example.org"), "Race").await;
        let a_id = a.user_id.unwrap();
        let b = app
            .member(org, &format!("b{round}@example.org"), Role::Admin)
            .await;
        let b_id = b.user_id.unwrap();
        let res = a
            .patch(
                &format!("/api/v1/organization/members/{b_id}"),
                json!({"role": "owner"}),
            )
            .await;
        assert_eq!(res.status(), 200);
        // Two owners remove each other, while A also hands ownership around.
        let (remove_b, remove_a) = (
            format!("/api/v1/organization/members/{b_id}"),
            format!("/api/v1/organization/members/{a_id}"),
        );
        let (r1, r2, r3) = tokio::join!(
            a.delete(&remove_b),
            b.delete(&remove_a),
            a.post(
                "/api/v1/organization/transfer-ownership",
                json!({"user_id": b_id})
            ),
        );
        let statuses = [r1.status(), r2.status(), r3.status()];
        let org_now = org_state(&app, org).await;
        let owners = org_now
            .members
            .values()
            .filter(|m| m.role == Role::Owner)
            .count();
        assert!(
            owners >= 1,
            "round {round}: no owner left after {statuses:?}"
        );
        assert!(
            statuses
                .iter()
                .all(|s| [200, 403, 404, 409].contains(&s.as_u16())),
            "{statuses:?}"
        );
    }

    // Many invites accepted at once while the owner transfers ownership: every acceptance
    // lands, exactly one owner at the end.
    let (owner, org) = app.founder("boss@example.org", "Crowd").await;
    let mut joiners = Vec::new();
    for i in 0..8 {
        let email = format!("j{i}@example.org");
        let res = owner
            .post(
                "/api/v1/organization/invites",
                json!({"email": email, "role": "admin"}),
            )
            .await;
        assert_eq!(res.status(), 201);
        let mail = sink
            .wait_for_message_with(&email, "Join Crowd", Duration::from_secs(10))
            .await;
        let mut b = app.browser();
        b.sign_up(&email).await;
        joiners.push((b, token_in(&mail)));
    }
    let first = joiners[0].0.user_id.unwrap();
    let res = joiners[0]
        .0
        .post("/api/v1/invites/accept", json!({"token": joiners[0].1}))
        .await;
    assert_eq!(res.status(), 200);
    let accepts = joiners
        .iter()
        .skip(1)
        .map(|(b, t)| b.post("/api/v1/invites/accept", json!({"token": t})));
    let (statuses, transfer) = tokio::join!(
        futures::future::join_all(accepts),
        owner.post(
            "/api/v1/organization/transfer-ownership",
            json!({"user_id": first})
        ),
    );
    assert_eq!(transfer.status(), 200);
    assert!(statuses.iter().all(|r| r.status() == 200));
    let org_now = org_state(&app, org).await;
    assert_eq!(org_now.members.len(), 9);
    let owners: Vec<_> = org_now
        .members
        .iter()
        .filter(|(_, m)| m.role == Role::Owner)
        .map(|(id, _)| *id)
        .collect();
    assert_eq!(owners, vec![first]);
    app.stop().await;
}
