//! Tenant isolation and authorization, driven by the API's own description: every route
//! with an id is probed with another organization's credentials, and every route's access
//! rule is checked against the role × action table for every role.

use std::collections::BTreeSet;

use axum::http::Method;
use domain::identity::{allows, KeyKind, Role};
use http_kit::auth::{Access, ROUTES};
use mauntic_tests::spawn_app;
use serde_json::{json, Value};
use uuid::Uuid;

/// Every (method, path) under `/api/v1` that `/openapi.json` describes.
async fn described_routes(app: &mauntic_tests::TestApp) -> BTreeSet<(String, String)> {
    let doc: Value = app
        .http
        .get(app.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut out = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            if path.starts_with("/api/v1/") {
                out.insert((method.to_uppercase(), path.clone()));
            }
        }
    }
    out
}

#[tokio::test]
async fn every_route_has_an_access_rule_and_every_rule_a_described_route() {
    let app = spawn_app().await;
    let described = described_routes(&app).await;
    let ruled: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|(m, p, _)| (m.as_str().to_owned(), (*p).to_owned()))
        .collect();
    let unruled: Vec<_> = described.difference(&ruled).collect();
    assert!(
        unruled.is_empty(),
        "routes without an access rule (they are refused): {unruled:?}"
    );
    let undescribed: Vec<_> = ruled.difference(&described).collect();
    assert!(
        undescribed.is_empty(),
        "rules for routes /openapi.json does not describe: {undescribed:?}"
    );
    app.stop().await;
}

#[tokio::test]
async fn every_route_that_takes_an_id_answers_another_organization_404() {
    let app = spawn_app().await;
    // Organization A, with one resource of every kind.
    let (owner_a, org_a) = app.founder("a@example.org", "A").await;
    let member_a = app.member(org_a, "a2@example.org", Role::Member).await;
    let member_id = member_a.user_id.unwrap();
    let res = owner_a
        .post(
            "/api/v1/contacts",
            json!({"email": "secret@example.org", "tags": ["vip"]}),
        )
        .await;
    assert_eq!(res.status(), 201);
    let (contact, _) = mauntic_tests::accepted(res).await;
    let res = owner_a
        .post("/api/v1/contacts", json!({"email": "twin@example.org"}))
        .await;
    assert_eq!(res.status(), 201);
    let (twin, _) = mauntic_tests::accepted(res).await;
    let res = owner_a
        .post(
            &format!("/api/v1/contacts/{contact}/notes"),
            json!({"text": "private"}),
        )
        .await;
    assert_eq!(res.status(), 201);
    let (note, _) = mauntic_tests::accepted(res).await;
    let res = owner_a
        .post(
            "/api/v1/fields",
            json!({"key": "secret_field", "label": "Secret", "type": "text"}),
        )
        .await;
    assert_eq!(res.status(), 201);
    let res = owner_a
        .post("/api/v1/companies", json!({"name": "A Corp"}))
        .await;
    let (company, _) = mauntic_tests::accepted(res).await;
    let res = owner_a
        .request(
            reqwest::Method::PUT,
            &format!("/api/v1/contacts/{contact}/companies/{company}"),
        )
        .json(&json!({"primary": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let form = reqwest::multipart::Form::new()
        .text(
            "options",
            json!({"mapping": {"Email": "email"}}).to_string(),
        )
        .part(
            "file",
            reqwest::multipart::Part::bytes(b"Email\nsecret2@example.org\n".to_vec()),
        );
    let res = owner_a
        .request(reqwest::Method::POST, "/api/v1/imports")
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
    let import: Value = res.json().await.unwrap();
    let import = import["id"].as_str().unwrap().to_owned();
    // Its events land before the probe counts what B's attempts write.
    mauntic_tests::eventually(
        std::time::Duration::from_secs(30),
        "A's import ends",
        || {
            let req = owner_a.request(reqwest::Method::GET, &format!("/api/v1/imports/{import}"));
            async move {
                let v: Value = req.send().await.unwrap().json().await.unwrap();
                v["status"] == "completed"
            }
        },
    )
    .await;
    let res = owner_a
        .post("/api/v1/segments", json!({"name": "A list"}))
        .await;
    assert_eq!(res.status(), 201);
    let (segment, _) = mauntic_tests::accepted(res).await;
    let res = owner_a
        .post(
            &format!("/api/v1/segments/{segment}/contacts"),
            json!({"contact_ids": [contact]}),
        )
        .await;
    assert_eq!(res.status(), 200);
    let res = owner_a
        .post(
            "/api/v1/templates",
            json!({"name": "A template", "channel": "sms"}),
        )
        .await;
    assert_eq!(res.status(), 201);
    let (template, _) = mauntic_tests::accepted(res).await;
    let res = owner_a
        .post(
            &format!("/api/v1/templates/{template}/versions"),
            json!({"body": "Hi {{contact.first_name}}"}),
        )
        .await;
    assert_eq!(res.status(), 201);
    let res = owner_a
        .post(
            &format!("/api/v1/templates/{template}/versions/1/test"),
            json!({"to": "+4915112345678"}),
        )
        .await;
    assert_eq!(res.status(), 202);
    let (delivery, _) = mauntic_tests::accepted(res).await;
    // The worker decides the test message in the background: its events land before the
    // probe counts what B's attempts write.
    mauntic_tests::eventually(
        std::time::Duration::from_secs(30),
        "A's test message is decided",
        || {
            let req = owner_a.request(
                reqwest::Method::GET,
                &format!("/api/v1/deliveries/{delivery}"),
            );
            async move {
                let res = req.send().await.unwrap();
                if res.status() != 200 {
                    return false;
                }
                let v: Value = res.json().await.unwrap();
                !matches!(v["status"].as_str(), Some("requested" | "dispatching"))
            }
        },
    )
    .await;
    let res = owner_a
        .post(
            "/api/v1/suppressions",
            json!({"channel": "email", "address": "bounced@example.org", "reason": "hard_bounce"}),
        )
        .await;
    assert_eq!(res.status(), 201);
    let (suppression, _) = mauntic_tests::accepted(res).await;
    let res = owner_a
        .post(
            "/api/v1/providers",
            json!({"name": "A relay", "channel": "email", "kind": "smtp",
                   "settings": {"host": "a.example.org", "port": 25}, "secrets": {"password": "a-secret"}}),
        )
        .await;
    assert_eq!(res.status(), 201);
    let (provider, _) = mauntic_tests::accepted(res).await;
    let res = owner_a
        .request(Method::PUT, "/api/v1/warmup/warm-a.example.org")
        .json(&json!({"ramp": [7]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let (warmup, _) = mauntic_tests::accepted(res).await;
    let res = owner_a
        .post(
            "/api/v1/campaigns",
            json!({"name": "A campaign", "channel": "sms", "template_id": template, "segments": [segment]}),
        )
        .await;
    assert_eq!(res.status(), 201);
    let (campaign, _) = mauntic_tests::accepted(res).await;
    // A journey of A's with an execution (written to the log as the journey worker will).
    let journeys = crate::journey_read::Journeys::new(&app, org_a);
    let journey = journeys
        .create("A journey", crate::journey_read::welcome_v1())
        .await;
    journeys.publish(journey).await;
    let execution = Uuid::now_v7();
    let now = chrono::Utc::now();
    journeys
        .record(
            execution,
            vec![
                crate::journey_read::entered(journey, 1, contact, now),
                crate::journey_read::email("welcome", Some("wait"), now),
            ],
        )
        .await;
    let res = owner_a
        .post(
            "/api/v1/organization/invites",
            json!({"email": "x@example.org", "role": "viewer"}),
        )
        .await;
    let (invite, _) = mauntic_tests::accepted(res).await;
    let res = owner_a
        .post("/api/v1/api-keys", json!({"name": "k", "role": "viewer"}))
        .await;
    let key: Value = res.json().await.unwrap();
    let key_id = key["id"].as_str().unwrap().to_owned();

    // Organization B: the harness tenant's admin key, and an owner's session.
    let (owner_b, _) = app.founder("b@example.org", "B").await;
    let before = app.event_count().await;
    let concrete = |template: &str| -> Vec<String> {
        match template {
            "/api/v1/contacts/{id}" => vec![format!("/api/v1/contacts/{contact}")],
            "/api/v1/contacts/{id}/tags" => vec![format!("/api/v1/contacts/{contact}/tags")],
            "/api/v1/contacts/{id}/tags/{tag}" => {
                vec![format!("/api/v1/contacts/{contact}/tags/vip")]
            }
            "/api/v1/contacts/{id}/consent/{channel}" => {
                vec![format!("/api/v1/contacts/{contact}/consent/email")]
            }
            "/api/v1/contacts/{id}/do-not-contact/{channel}" => {
                vec![format!("/api/v1/contacts/{contact}/do-not-contact/email")]
            }
            "/api/v1/contacts/{id}/frequency/{channel}" => {
                vec![format!("/api/v1/contacts/{contact}/frequency/sms")]
            }
            "/api/v1/contacts/{id}/stage" => vec![format!("/api/v1/contacts/{contact}/stage")],
            "/api/v1/contacts/{id}/owner" => vec![format!("/api/v1/contacts/{contact}/owner")],
            "/api/v1/contacts/{id}/notes" => vec![format!("/api/v1/contacts/{contact}/notes")],
            "/api/v1/contacts/{id}/notes/{note_id}" => {
                vec![format!("/api/v1/contacts/{contact}/notes/{note}")]
            }
            "/api/v1/contacts/{id}/export" => vec![format!("/api/v1/contacts/{contact}/export")],
            "/api/v1/contacts/{id}/timeline" => {
                vec![format!("/api/v1/contacts/{contact}/timeline")]
            }
            "/api/v1/contacts/{id}/companies/{company_id}" => {
                vec![format!("/api/v1/contacts/{contact}/companies/{company}")]
            }
            "/api/v1/companies/{id}" => vec![format!("/api/v1/companies/{company}")],
            "/api/v1/segments/{id}" => vec![format!("/api/v1/segments/{segment}")],
            "/api/v1/segments/{id}/contacts" => {
                vec![format!("/api/v1/segments/{segment}/contacts")]
            }
            "/api/v1/segments/{id}/contacts:remove" => {
                vec![format!("/api/v1/segments/{segment}/contacts:remove")]
            }
            "/api/v1/segments/{id}/preview" => vec![format!("/api/v1/segments/{segment}/preview")],
            "/api/v1/segments/{id}/refresh" => vec![format!("/api/v1/segments/{segment}/refresh")],
            "/api/v1/templates/{id}" => vec![format!("/api/v1/templates/{template}")],
            "/api/v1/templates/{id}/versions" => {
                vec![format!("/api/v1/templates/{template}/versions")]
            }
            "/api/v1/templates/{id}/versions/{n}" => {
                vec![format!("/api/v1/templates/{template}/versions/1")]
            }
            "/api/v1/templates/{id}/versions/{n}/publish" => {
                vec![format!("/api/v1/templates/{template}/versions/1/publish")]
            }
            "/api/v1/templates/{id}/versions/{n}/preview" => {
                vec![format!("/api/v1/templates/{template}/versions/1/preview")]
            }
            "/api/v1/deliveries/{id}" => vec![format!("/api/v1/deliveries/{delivery}")],
            "/api/v1/templates/{id}/versions/{n}/test" => {
                vec![format!("/api/v1/templates/{template}/versions/1/test")]
            }
            "/api/v1/suppressions/{id}" => vec![format!("/api/v1/suppressions/{suppression}")],
            "/api/v1/providers/{id}" => vec![format!("/api/v1/providers/{provider}")],
            "/api/v1/providers/{id}/default" => {
                vec![format!("/api/v1/providers/{provider}/default")]
            }
            "/api/v1/warmup/{domain}" => vec!["/api/v1/warmup/warm-a.example.org".to_owned()],
            "/api/v1/campaigns/{id}" => vec![format!("/api/v1/campaigns/{campaign}")],
            t if t.starts_with("/api/v1/campaigns/{id}/") => {
                vec![t.replace("{id}", &campaign.to_string())]
            }
            t if t.starts_with("/api/v1/journeys/{id}") => vec![t
                .replace("{id}", &journey.to_string())
                .replace("{version}", "1")
                .replace("{execution_id}", &execution.to_string())],
            "/api/v1/contacts/{id}/journeys" => {
                vec![format!("/api/v1/contacts/{contact}/journeys")]
            }
            "/api/v1/fields/{key}" => vec!["/api/v1/fields/secret_field".to_owned()],
            "/api/v1/contacts/{id}/points" => vec![format!("/api/v1/contacts/{contact}/points")],
            "/api/v1/contacts/{id}/merge" => vec![format!("/api/v1/contacts/{contact}/merge")],
            "/api/v1/contacts/{id}/events" => vec![format!("/api/v1/contacts/{contact}/events")],
            "/api/v1/audit/{aggregate_type}/{id}" => vec![
                format!("/api/v1/audit/contact/{contact}"),
                format!("/api/v1/audit/organization/{org_a}"),
                format!("/api/v1/audit/user/{member_id}"),
                format!("/api/v1/audit/company/{company}"),
                format!("/api/v1/audit/segment/{segment}"),
                format!("/api/v1/audit/segment_membership/{contact}"),
                format!("/api/v1/audit/template/{template}"),
                format!("/api/v1/audit/suppression/{suppression}"),
                format!("/api/v1/audit/delivery_provider/{provider}"),
                format!("/api/v1/audit/delivery_warmup/{warmup}"),
                format!("/api/v1/audit/campaign/{campaign}"),
                format!("/api/v1/audit/journey/{journey}"),
                format!("/api/v1/audit/journey_execution/{execution}"),
            ],
            "/api/v1/organization/members/{user_id}" => {
                vec![format!("/api/v1/organization/members/{member_id}")]
            }
            "/api/v1/organization/invites/{id}" => {
                vec![format!("/api/v1/organization/invites/{invite}")]
            }
            "/api/v1/organization/invites/{id}/resend" => {
                vec![format!("/api/v1/organization/invites/{invite}/resend")]
            }
            "/api/v1/api-keys/{id}" => vec![format!("/api/v1/api-keys/{key_id}")],
            "/api/v1/imports/{id}" => vec![format!("/api/v1/imports/{import}")],
            "/api/v1/imports/{id}/errors" => vec![format!("/api/v1/imports/{import}/errors")],
            other => {
                panic!("no resource for {other}: add one here so the isolation probe covers it")
            }
        }
    };
    let body = |method: &str, template: &str| -> Option<Value> {
        match (method, template) {
            ("PATCH", "/api/v1/contacts/{id}") => Some(json!({"first_name": "Mallory"})),
            ("POST", "/api/v1/contacts/{id}/tags") => Some(json!({"tags": ["pwned"]})),
            ("PATCH", "/api/v1/organization/members/{user_id}") => Some(json!({"role": "viewer"})),
            ("PUT", "/api/v1/contacts/{id}/consent/{channel}") => {
                Some(json!({"status": "opted_out", "source": "mallory"}))
            }
            ("PUT", "/api/v1/contacts/{id}/do-not-contact/{channel}") => {
                Some(json!({"reason": "manual"}))
            }
            ("PUT", "/api/v1/contacts/{id}/frequency/{channel}") => {
                Some(json!({"max": 1, "per_days": 1}))
            }
            ("PUT", "/api/v1/contacts/{id}/stage") => Some(json!({"stage": "pwned"})),
            ("PUT", "/api/v1/contacts/{id}/owner") => Some(json!({"user_id": null})),
            ("POST", "/api/v1/contacts/{id}/notes") => Some(json!({"text": "pwned"})),
            ("POST", "/api/v1/contacts/{id}/points") => Some(json!({"delta": -5, "reason": "x"})),
            ("POST", "/api/v1/contacts/{id}/merge") => Some(json!({"from": twin})),
            ("POST", "/api/v1/contacts/{id}/events") => Some(json!({"name": "pwned"})),
            ("PUT", "/api/v1/contacts/{id}/companies/{company_id}") => {
                Some(json!({"primary": true}))
            }
            ("PATCH", "/api/v1/companies/{id}") => Some(json!({"name": "Mallory Inc"})),
            ("PATCH", "/api/v1/fields/{key}") => Some(json!({"label": "pwned"})),
            ("PATCH", "/api/v1/templates/{id}") => Some(json!({"name": "pwned"})),
            ("PATCH", "/api/v1/campaigns/{id}") => Some(json!({"name": "pwned"})),
            ("PATCH", "/api/v1/journeys/{id}") => Some(json!({"name": "pwned"})),
            ("POST", "/api/v1/journeys/{id}/entries") => Some(json!({"contact_ids": [contact]})),
            ("POST", "/api/v1/campaigns/{id}/schedule") => Some(json!({"at": "2030-01-01T09:00"})),
            ("POST", "/api/v1/campaigns/{id}/clone") => Some(json!({"name": "pwned"})),
            ("PATCH", "/api/v1/providers/{id}") => {
                Some(json!({"name": "pwned", "secrets": {"password": "pwned"}}))
            }
            ("POST", "/api/v1/templates/{id}/versions") => Some(json!({"body": "pwned"})),
            ("POST", "/api/v1/templates/{id}/versions/{n}/preview") => Some(json!({"context": {}})),
            ("POST", "/api/v1/templates/{id}/versions/{n}/test") => {
                Some(json!({"to": "mallory@example.org"}))
            }
            ("PATCH", "/api/v1/segments/{id}") => Some(json!({"name": "pwned"})),
            (
                "POST",
                "/api/v1/segments/{id}/contacts" | "/api/v1/segments/{id}/contacts:remove",
            ) => Some(json!({"contact_ids": [contact]})),
            _ => None,
        }
    };
    let mut probed = 0;
    for (method, template) in described_routes(&app).await {
        if !template.contains('{') {
            continue;
        }
        // A domain is a name, not an id: B's PUT configures B's own warmup of it (checked
        // below to leave A's alone).
        if method == "PUT" && template == "/api/v1/warmup/{domain}" {
            continue;
        }
        for path in concrete(&template) {
            for who in ["key", "session"] {
                let m = Method::from_bytes(method.as_bytes()).unwrap();
                let mut req = match who {
                    "key" => app
                        .http
                        .request(m, app.url(&path))
                        .bearer_auth(&app.api_key),
                    _ => owner_b.request(m, &path),
                };
                if let Some(b) = body(&method, &template) {
                    req = req.json(&b);
                }
                let res = req.send().await.unwrap();
                let status = res.status();
                let answer: Value = res.json().await.unwrap_or(Value::Null);
                assert_eq!(status, 404, "{who} {method} {path}: {answer}");
                assert_eq!(answer["type"], "/problems/not-found", "{method} {path}");
                probed += 1;
            }
        }
    }
    assert!(probed >= 24, "probed only {probed} calls");

    // Ids in bodies: B cannot switch into A, nor hand ownership to A's member.
    let res = owner_b
        .post("/api/v1/me/organization", json!({"organization_id": org_a}))
        .await;
    assert_eq!(res.status(), 404);
    let res = owner_b
        .post(
            "/api/v1/organization/transfer-ownership",
            json!({"user_id": member_id}),
        )
        .await;
    assert_eq!(res.status(), 404);

    // Nor record events on A's contacts, by id or by email: each item is not found.
    let res = app
        .http
        .post(app.url("/api/v1/events"))
        .bearer_auth(&app.api_key)
        .json(&json!({"events": [
            {"contact_id": contact, "name": "pwned"},
            {"email": "secret@example.org", "name": "pwned"},
        ]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let answer: Value = res.json().await.unwrap();
    for r in answer["results"].as_array().unwrap() {
        assert_eq!(r["status"], "error", "{answer}");
        assert_eq!(r["problem"]["status"], 404, "{answer}");
    }

    // No list B can read names anything of A's.
    let a_ids = [
        contact.to_string(),
        segment.to_string(),
        template.to_string(),
        suppression.to_string(),
        "bounced@example.org".to_owned(),
        provider.to_string(),
        "warm-a.example.org".to_owned(),
        warmup.to_string(),
        campaign.to_string(),
        journey.to_string(),
        execution.to_string(),
        twin.to_string(),
        org_a.to_string(),
        member_id.to_string(),
        invite.to_string(),
        key_id.clone(),
        import.clone(),
    ];
    for (method, path) in described_routes(&app).await {
        if method != "GET" || path.contains('{') || path.starts_with("/api/v1/auth/") {
            continue;
        }
        for req in [app.get(&path), owner_b.request(Method::GET, &path)] {
            let res = req.send().await.unwrap();
            let text = res.text().await.unwrap();
            for id in &a_ids {
                assert!(
                    !text.contains(id.as_str()),
                    "GET {path} shows A's {id}: {text}"
                );
            }
        }
    }
    assert_eq!(
        app.event_count().await,
        before,
        "B's attempts wrote nothing"
    );

    // B warming up a domain of the same name has its own stream; A's stays as it was.
    let res = app
        .http
        .put(app.url("/api/v1/warmup/warm-a.example.org"))
        .bearer_auth(&app.api_key)
        .json(&json!({"ramp": [1]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let (b_warmup, cursor) = mauntic_tests::accepted(res).await;
    assert_ne!(b_warmup, warmup);
    let res = owner_a
        .get(&format!(
            "/api/v1/warmup/warm-a.example.org?consistent_after={cursor}"
        ))
        .await;
    let a_view: Value = res.json().await.unwrap();
    assert_eq!(a_view["ramp"], json!([7]), "{a_view}");
    app.stop().await;
}

/// Someone calling: a signed-in member with a role, or a key.
enum Principal {
    Session(Role, mauntic_tests::browser::Browser),
    Key(Role, KeyKind, String),
}

#[tokio::test]
async fn each_role_may_do_exactly_what_the_role_action_table_allows() {
    let app = spawn_app().await;
    let (owner, org) = app.founder("owner@example.org", "Acme").await;
    let mut principals = Vec::new();
    for (role, email) in [
        (Role::Admin, "ad@example.org"),
        (Role::Member, "me@example.org"),
        (Role::Viewer, "vi@example.org"),
    ] {
        principals.push(Principal::Session(role, app.member(org, email, role).await));
    }
    for (role, kind) in [
        (Role::Admin, KeyKind::Secret),
        (Role::Member, KeyKind::Secret),
        (Role::Viewer, KeyKind::Secret),
        (Role::Member, KeyKind::Public),
    ] {
        let kind_s = if kind == KeyKind::Public {
            "public"
        } else {
            "secret"
        };
        let res = owner
            .post(
                "/api/v1/api-keys",
                json!({"name": "k", "role": role.as_str(), "kind": kind_s}),
            )
            .await;
        assert_eq!(res.status(), 201);
        let k: Value = res.json().await.unwrap();
        principals.push(Principal::Key(
            role,
            kind,
            k["key"].as_str().unwrap().to_owned(),
        ));
    }
    principals.push(Principal::Session(Role::Owner, owner));

    // Leaving is last: it succeeds for whoever may.
    let mut routes: Vec<_> = ROUTES
        .iter()
        .filter_map(|(m, p, a)| match a {
            Access::Org(action) => Some((m.clone(), *p, *action)),
            _ => None,
        })
        .collect();
    routes.sort_by_key(|(_, p, _)| p.ends_with("/leave"));
    let mut checked = 0;
    for (method, template, action) in routes {
        let path = template
            .replace("{aggregate_type}", "contact")
            .replace("{tag}", "t")
            .replace("{channel}", "email")
            .replace("{key}", "k")
            .replace("{domain}", "mail.example.org")
            .replace("{company_id}", &Uuid::now_v7().to_string())
            .replace("{note_id}", &Uuid::now_v7().to_string())
            .replace("{id}", &Uuid::now_v7().to_string())
            .replace("{user_id}", &Uuid::now_v7().to_string());
        for p in &principals {
            let (req, allowed, who) = match p {
                Principal::Session(role, b) => (
                    b.request(method.clone(), &path),
                    allows(*role, action),
                    format!("{role} session"),
                ),
                Principal::Key(role, kind, key) => (
                    app.http
                        .request(method.clone(), app.url(&path))
                        .bearer_auth(key),
                    kind.allows(*role, action),
                    format!("{role} {kind:?} key"),
                ),
            };
            let req = if method == Method::GET {
                req
            } else {
                req.json(&json!({}))
            };
            let res = req.send().await.unwrap();
            let status = res.status();
            let body: Value = res.json().await.unwrap_or(Value::Null);
            if allowed {
                assert_ne!(
                    body["type"], "/problems/forbidden",
                    "{who} {method} {path} ({action:?}) should be allowed: {status} {body}"
                );
                assert_ne!(status, 401, "{who} {method} {path}");
            } else {
                assert_eq!(
                    status, 403,
                    "{who} {method} {path} ({action:?}) should be refused: {body}"
                );
                assert_eq!(body["type"], "/problems/forbidden", "{who} {method} {path}");
            }
            checked += 1;
        }
    }
    assert!(checked > 150, "{checked}");

    // Keys cannot use the signed-in user's routes.
    let res = app.get("/api/v1/me").send().await.unwrap();
    assert_eq!(res.status(), 403);
    app.stop().await;
}
