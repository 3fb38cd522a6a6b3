//! Channel providers: configured, listed, changed, made default and removed over HTTP;
//! credentials never in an answer nor in the log, stored encrypted; resolved for delivery
//! with their secrets decrypted; the master key rotated; bad input refused whole; other
//! organizations see nothing.

use commands::providers::{resolve, rotate};
use domain::delivery::Channel;
use event_store::shred::keyring::Keyring;
use mauntic_tests::{accepted, spawn_app, TestApp};
use serde_json::{json, Value};
use uuid::Uuid;

const PASSWORD: &str = "pw-7c1f0e-never-logged";
const API_KEY: &str = "SG.key-93ab21-never-logged";

/// The development master key (what the app under test seals with: no MAUNTIC_MASTER_KEY).
const DEVELOPMENT_KEY: [u8; 32] = *b"mauntic3-development-master-key!";

fn smtp(name: &str) -> Value {
    json!({"name": name, "channel": "email", "kind": "smtp",
           "settings": {"host": "smtp.example.org", "port": 587, "security": "starttls", "username": "mailer"},
           "secrets": {"password": PASSWORD}})
}

async fn create(app: &TestApp, body: &Value) -> (Uuid, event_store::Cursor) {
    let res = app.post("/api/v1/providers", body).send().await.unwrap();
    assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
    accepted(res).await
}

/// Status and body text of a GET after `cursor`.
async fn get(app: &TestApp, path: &str, cursor: &event_store::Cursor) -> (u16, String) {
    let sep = if path.contains('?') { '&' } else { '?' };
    let res = app
        .get(&format!("{path}{sep}consistent_after={cursor}"))
        .send()
        .await
        .unwrap();
    (res.status().as_u16(), res.text().await.unwrap())
}

/// How many rows of `events` hold `text` anywhere (payload, metadata, any column).
async fn events_holding(app: &TestApp, text: &str) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM events e WHERE strpos(e::text, $1) > 0")
        .bind(text)
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

async fn count(app: &TestApp, table: &str) -> i64 {
    sqlx::query_scalar(&format!("SELECT count(*) FROM {table}"))
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn providers_are_configured_listed_changed_made_default_and_removed_without_showing_secrets()
{
    let app = spawn_app().await;
    let mut answers = Vec::new();
    let (relay, _) = create(&app, &smtp("Main relay")).await;
    let (grid, cursor) = create(
        &app,
        &json!({"name": "SendGrid", "channel": "email", "kind": "sendgrid",
                "settings": {}, "secrets": {"api_key": API_KEY}}),
    )
    .await;

    // The first provider of a channel is its default; the second is not.
    let (status, text) = get(&app, "/api/v1/providers", &cursor).await;
    assert_eq!(status, 200, "{text}");
    answers.push(text.clone());
    let list: Value = serde_json::from_str(&text).unwrap();
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 2, "{list}");
    let by_id = |id: Uuid| {
        items
            .iter()
            .find(|p| p["id"] == id.to_string())
            .unwrap()
            .clone()
    };
    assert_eq!(by_id(relay)["is_default"], true);
    assert_eq!(by_id(grid)["is_default"], false);

    let (status, text) = get(&app, &format!("/api/v1/providers/{relay}"), &cursor).await;
    assert_eq!(status, 200);
    answers.push(text.clone());
    let detail: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(detail["name"], "Main relay");
    assert_eq!(detail["kind"], "smtp");
    assert_eq!(detail["settings"]["host"], "smtp.example.org");
    assert_eq!(detail["secret_fields"], json!(["password"]));
    assert_eq!(detail["secrets_set"], true);
    assert!(detail["created_at"].is_string() && detail["updated_at"].is_string());
    assert!(detail.get("secrets").is_none(), "{detail}");

    // Changing settings and replacing secrets.
    let res = app
        .patch(
            &format!("/api/v1/providers/{grid}"),
            &json!({"name": "SendGrid EU", "settings": {"base_url": "https://api.eu.sendgrid.com"},
                    "secrets": {"api_key": format!("{API_KEY}-2")}}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let (_, cursor) = accepted(res).await;
    let (_, text) = get(&app, &format!("/api/v1/providers/{grid}"), &cursor).await;
    answers.push(text.clone());
    let detail: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(detail["name"], "SendGrid EU");
    assert_eq!(
        detail["settings"],
        json!({"base_url": "https://api.eu.sendgrid.com"})
    );

    // A second default on the channel moves the mark.
    let res = app
        .post(&format!("/api/v1/providers/{grid}/default"), &json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let (_, cursor) = accepted(res).await;
    let (_, text) = get(&app, "/api/v1/providers?channel=email", &cursor).await;
    answers.push(text.clone());
    let list: Value = serde_json::from_str(&text).unwrap();
    let defaults: Vec<&Value> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["is_default"] == true)
        .collect();
    assert_eq!(defaults.len(), 1, "{list}");
    assert_eq!(defaults[0]["id"], grid.to_string());
    let (_, text) = get(&app, "/api/v1/providers?channel=sms", &cursor).await;
    assert_eq!(
        serde_json::from_str::<Value>(&text).unwrap()["items"],
        json!([])
    );
    // So does creating one with `default: true`.
    let mut third = smtp("Backup relay");
    third["default"] = json!(true);
    let (backup, cursor) = create(&app, &third).await;
    let (_, text) = get(&app, "/api/v1/providers?channel=email", &cursor).await;
    let list: Value = serde_json::from_str(&text).unwrap();
    let defaults: Vec<String> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["is_default"] == true)
        .map(|p| p["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(defaults, vec![backup.to_string()]);

    // Removing: gone from queries and from the write side, secrets deleted.
    let res = app
        .delete(&format!("/api/v1/providers/{relay}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let (_, cursor) = accepted(res).await;
    let (status, _) = get(&app, &format!("/api/v1/providers/{relay}"), &cursor).await;
    assert_eq!(status, 404);
    let res = app
        .patch(
            &format!("/api/v1/providers/{relay}"),
            &json!({"name": "Again"}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 410);
    assert_eq!(count(&app, "provider_secrets").await, 2);
    assert_eq!(count(&app, "provider_configs").await, 2);

    // Secrets never show: not in any answer, not anywhere in the log, not in clear at rest.
    for secret in [PASSWORD, API_KEY] {
        for text in &answers {
            assert!(!text.contains(secret), "an answer shows a secret: {text}");
        }
        assert_eq!(events_holding(&app, secret).await, 0, "{secret} in the log");
        let clear: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM provider_secrets WHERE position(convert_to($1, 'UTF8') in ciphertext) > 0",
        )
        .bind(secret)
        .fetch_one(&app.pool)
        .await
        .unwrap();
        assert_eq!(clear, 0);
    }
    assert!(
        events_holding(&app, "smtp.example.org").await > 0,
        "settings are logged"
    );

    // Time travel shows the aggregate (names of secrets only).
    let res = app
        .get(&format!("/api/v1/audit/delivery_provider/{grid}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let audit = res.text().await.unwrap();
    assert!(
        audit.contains("\"secrets_version\":2") && !audit.contains(API_KEY),
        "{audit}"
    );

    // Rebuilt from the log, the read model comes out the same.
    app.caught_up("providers").await;
    let live = app.checksum("providers").await;
    let projection = projections::by_name("providers").unwrap();
    replay::rebuild::rebuild(&app.pool, projection.as_ref(), |_| {})
        .await
        .unwrap();
    assert_eq!(app.checksum("providers").await, live);
    app.stop().await;
}

#[tokio::test]
async fn resolve_gives_the_settings_merged_with_the_decrypted_secrets() {
    let app = spawn_app().await;
    let keys = app.admin.delivery.providers.keys().clone();
    let t = app.tenant_id;
    assert!(resolve(&app.pool, &keys, t, Channel::Email, None)
        .await
        .unwrap()
        .is_none());
    let (id, _) = create(&app, &smtp("Relay")).await;

    let r = resolve(&app.pool, &keys, t, Channel::Email, None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (r.id, r.kind.as_str(), r.name.as_str()),
        (id, "smtp", "Relay")
    );
    assert_eq!(
        r.config,
        json!({"host": "smtp.example.org", "port": 587, "security": "starttls",
               "username": "mailer", "password": PASSWORD})
    );
    assert!(
        !format!("{r:?}").contains(PASSWORD),
        "Debug hides the config"
    );
    let by_id = resolve(&app.pool, &keys, t, Channel::Email, Some(id))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(by_id, r);
    // Another channel, or another organization, has none.
    assert!(resolve(&app.pool, &keys, t, Channel::Sms, Some(id))
        .await
        .unwrap()
        .is_none());
    let (other, _) = app.other_tenant().await;
    assert!(resolve(&app.pool, &keys, other, Channel::Email, None)
        .await
        .unwrap()
        .is_none());
    assert!(resolve(&app.pool, &keys, other, Channel::Email, Some(id))
        .await
        .unwrap()
        .is_none());

    // The version moves with the settings and the secrets, not with the default mark.
    let patch = |body: Value| app.patch(&format!("/api/v1/providers/{id}"), &body).send();
    assert_eq!(
        patch(json!({"secrets": {"password": "new-pw"}}))
            .await
            .unwrap()
            .status(),
        200
    );
    let r2 = resolve(&app.pool, &keys, t, Channel::Email, None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(r2.config["password"], "new-pw");
    assert!(r2.version > r.version);
    let (second, _) = create(&app, &smtp("Second")).await;
    let res = app
        .post(&format!("/api/v1/providers/{second}/default"), &json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let res = app
        .post(&format!("/api/v1/providers/{id}/default"), &json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let r3 = resolve(&app.pool, &keys, t, Channel::Email, None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((r3.id, r3.version), (id, r2.version));

    // Removing the default leaves the channel without one.
    let res = app
        .delete(&format!("/api/v1/providers/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(resolve(&app.pool, &keys, t, Channel::Email, None)
        .await
        .unwrap()
        .is_none());
    assert!(resolve(&app.pool, &keys, t, Channel::Email, Some(second))
        .await
        .unwrap()
        .is_some());
    app.stop().await;
}

#[tokio::test]
async fn rotating_the_master_key_reseals_every_secret_under_the_new_key() {
    let app = spawn_app().await;
    let (a, _) = create(&app, &smtp("A")).await;
    let (b, _) = create(
        &app,
        &json!({"name": "B", "channel": "email", "kind": "postmark", "secrets": {"server_token": API_KEY}}),
    )
    .await;
    // A contact, whose key the same master key wraps (read before the rotation: the app
    // under test knows only the development key).
    let (contact, cursor) = app
        .create_contact(json!({"email": "ada@example.org"}))
        .await;
    app.contact(contact, cursor).await;
    let key_b = [42u8; 32];
    let only_a = Keyring::new(Some(DEVELOPMENT_KEY), None);
    let only_b = Keyring::new(Some(key_b), None);
    let rotating = Keyring::new(Some(key_b), Some(DEVELOPMENT_KEY));
    let t = app.tenant_id;
    assert!(
        resolve(&app.pool, &only_b, t, Channel::Email, Some(a))
            .await
            .is_err(),
        "B cannot open what A sealed"
    );

    let report = rotate(&app.pool, &rotating).await.unwrap();
    assert_eq!(
        (report.rotated, report.already_current, report.unreadable),
        (2, 0, 0)
    );
    assert_eq!(report.key_id, only_b.current_id());
    let contact_keys = event_store::shred::keys::rewrap(&app.pool, &rotating)
        .await
        .unwrap();
    assert_eq!((contact_keys.rewrapped, contact_keys.unreadable), (1, 0));
    let contact_keys = event_store::shred::keys::rewrap(&app.pool, &only_b)
        .await
        .unwrap();
    assert_eq!(
        (contact_keys.rewrapped, contact_keys.already_current),
        (0, 1)
    );
    let again = rotate(&app.pool, &rotating).await.unwrap();
    assert_eq!((again.rotated, again.already_current), (0, 2));

    let r = resolve(&app.pool, &only_b, t, Channel::Email, Some(a))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(r.config["password"], PASSWORD);
    let r = resolve(&app.pool, &only_b, t, Channel::Email, Some(b))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(r.config["server_token"], API_KEY);
    assert!(resolve(&app.pool, &only_a, t, Channel::Email, Some(a))
        .await
        .is_err());
    let ids: Vec<String> = sqlx::query_scalar("SELECT DISTINCT key_id FROM provider_secrets")
        .fetch_all(&app.pool)
        .await
        .unwrap();
    assert_eq!(ids, vec![only_b.current_id().to_owned()]);
    app.stop().await;
}

#[tokio::test]
async fn bad_input_is_refused_naming_every_field_and_nothing_is_written() {
    let app = spawn_app().await;
    let before = app.event_count().await;
    for (body, fields) in [
        (
            json!({"name": " ", "channel": "fax", "kind": "smtp", "secrets": "hunter2"}),
            vec!["name", "channel", "secrets"],
        ),
        (
            json!({"name": "X", "channel": "email", "kind": "twilio",
                   "settings": {"host": "h", "password": "in-the-open"}}),
            vec!["kind", "settings"],
        ),
        (
            json!({"name": "X", "channel": "sms", "kind": "nope", "settings": [1]}),
            vec!["kind", "settings"],
        ),
        (
            json!({"name": "X", "channel": "email", "kind": "smtp",
                   "settings": {"host": "h"}, "secrets": {"host": "h2"}}),
            vec!["secrets"],
        ),
    ] {
        let res = app.post("/api/v1/providers", &body).send().await.unwrap();
        assert_eq!(res.status(), 422, "{body}");
        assert_eq!(
            res.headers()["content-type"],
            "application/problem+json",
            "{body}"
        );
        let problem: Value = res.json().await.unwrap();
        let mut named: Vec<&str> = problem["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["field"].as_str().unwrap())
            .collect();
        named.sort();
        let mut expected = fields.clone();
        expected.sort();
        assert_eq!(named, expected, "{problem}");
    }
    let (id, _) = create(&app, &smtp("Relay")).await;
    let after_create = app.event_count().await;
    for body in [
        json!({"secrets": ["pw"]}),
        json!({"name": ""}),
        json!({"settings": {"api_key": "x"}}),
        json!({"secrets": {"host": "shadowing a setting"}}),
    ] {
        let res = app
            .patch(&format!("/api/v1/providers/{id}"), &body)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 422, "{body}");
    }
    assert_eq!(app.event_count().await, after_create);
    assert_eq!(after_create, before + 2, "configured + made default");
    assert_eq!(count(&app, "provider_configs").await, 1);
    let version: i32 = sqlx::query_scalar("SELECT secrets_version FROM provider_secrets")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(version, 1, "no refused change replaced the secrets");
    app.stop().await;
}

#[tokio::test]
async fn another_organization_can_neither_see_nor_change_a_provider() {
    let app = spawn_app().await;
    let (id, cursor) = create(&app, &smtp("Relay")).await;
    let (_, key) = app.other_tenant().await;
    let before = app.event_count().await;
    let path = format!("/api/v1/providers/{id}");
    let calls = [
        app.http.get(app.url(&path)),
        app.http
            .patch(app.url(&path))
            .json(&json!({"name": "pwned"})),
        app.http.delete(app.url(&path)),
        app.http.post(app.url(&format!("{path}/default"))),
    ];
    for req in calls {
        let res = req.bearer_auth(&key).send().await.unwrap();
        assert_eq!(res.status(), 404);
    }
    let res = app
        .http
        .get(app.url(&format!("/api/v1/providers?consistent_after={cursor}")))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    let list: Value = res.json().await.unwrap();
    assert_eq!(list["items"], json!([]));
    assert_eq!(app.event_count().await, before);
    app.stop().await;
}
