//! Rotating the master key keeps what was derived from it: an address suppressed under the
//! old key is still suppressed once the application runs with the new key alone (the digest
//! key of suppression entry ids lives in `derived_keys`, re-sealed by the rotation).
//!
//! The master key is process-wide (it wraps contact keys), and this test process runs every
//! application with the development key; the restart with the new key therefore runs in a
//! process of its own: this test binary again, running [`restarted_with_the_new_key`].

use std::time::Duration;

use commands::suppressions::entry_id;
use domain::delivery::Channel;
use event_store::shred::derived::Reseal;
use event_store::shred::keyring::Keyring;
use mauntic::settings::MasterKey;
use mauntic_tests::{accepted, drop_database, fresh_settings, spawn_app, start, Options, TestApp};
use serde_json::{json, Value};
use uuid::Uuid;

/// The key the applications of this process run with (`MAUNTIC_MASTER_KEY` unset).
const KEY_A: [u8; 32] = *b"mauntic3-development-master-key!";
const KEY_B: [u8; 32] = [0x5b; 32];
/// Where the restarted phase finds what the first one made (JSON).
const PHASE: &str = "MAUNTIC_TEST_ROTATED";
const WAIT: Duration = Duration::from_secs(20);

async fn get_json(app: &TestApp, path: &str) -> Value {
    let res = app.get(path).send().await.unwrap();
    assert_eq!(res.status(), 200, "{path}");
    res.json().await.unwrap()
}

async fn suppress(app: &TestApp, address: &str) -> reqwest::Response {
    app.post(
        "/api/v1/suppressions",
        &json!({"channel": "email", "address": address, "reason": "hard_bounce"}),
    )
    .send()
    .await
    .unwrap()
}

/// A published email template; its id.
async fn template(app: &TestApp) -> Uuid {
    app.published_template("email", json!({"subject": "News", "html": "<p>Hello</p>"}))
        .await
}

/// The ids of the list's entries for `address`.
async fn listed(app: &TestApp, address: &str, after: &str) -> Vec<String> {
    let mut path = format!("/api/v1/suppressions?q={address}");
    if !after.is_empty() {
        path.push_str(&format!("&consistent_after={after}"));
    }
    let page = get_json(app, &path).await;
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["address"] == address)
        .map(|i| i["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn an_address_suppressed_before_a_master_key_rotation_stays_suppressed_after_it() {
    // Key A: the address is suppressed.
    let app = spawn_app().await;
    let t = template(&app).await;
    let res = suppress(&app, "ada@example.org").await;
    assert_eq!(res.status(), 201);
    let (entry, cursor) = accepted(res).await;
    assert_eq!(
        entry,
        entry_id(app.tenant_id, Channel::Email, "ada@example.org")
    );
    assert_eq!(
        listed(&app, "ada@example.org", &cursor.to_string()).await,
        [entry.to_string()]
    );
    let (tenant, api_key) = (app.tenant_id, app.api_key.clone());
    let settings = app.halt().await;
    let pool = event_store::store::connect(&settings.database_url, 2)
        .await
        .unwrap();

    // The rotation (`mauntic providers rotate-key` with B current and A previous).
    let rotating = Keyring::new(Some(KEY_B), Some(KEY_A));
    let report = mauntic::rotate::rotate_master_key(&pool, &rotating)
        .await
        .unwrap();
    assert_eq!(
        report.derived_keys,
        Reseal {
            resealed: 1,
            already_current: 0,
            unreadable: 0
        }
    );
    assert!(report.contact_keys.rewrapped >= 1, "{report:?}");
    assert_eq!(report.unreadable(), 0);
    let again = mauntic::rotate::rotate_master_key(&pool, &rotating)
        .await
        .unwrap();
    assert_eq!(
        (
            again.derived_keys.resealed,
            again.derived_keys.already_current
        ),
        (0, 1)
    );
    let sealed_by: Vec<String> = sqlx::query_scalar("SELECT key_id FROM derived_keys")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(
        sealed_by,
        [Keyring::new(Some(KEY_B), None).current_id().to_owned()]
    );
    pool.close().await;

    // Key B alone, after a restart, in a process whose master key is B.
    let given = json!({
        "database_url": settings.database_url,
        "tenant": tenant,
        "api_key": api_key,
        "entry": entry,
        "template": t,
    });
    let exe = std::env::current_exe().unwrap();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(exe)
            .args([
                "key_rotation::restarted_with_the_new_key",
                "--exact",
                "--ignored",
                "--nocapture",
            ])
            .env(PHASE, given.to_string())
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    drop_database(&settings.database_url).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "the restarted application failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The second half of the test above, run by it with [`PHASE`] set; does nothing otherwise.
#[tokio::test]
#[ignore = "a phase of an_address_suppressed_before_…, which runs it in a process of its own"]
async fn restarted_with_the_new_key() {
    let Ok(given) = std::env::var(PHASE) else {
        return;
    };
    let given: Value = serde_json::from_str(&given).unwrap();
    let mut settings = fresh_settings(&Options::default());
    settings.database_url = given["database_url"].as_str().unwrap().to_owned();
    settings.master_key = Some(MasterKey(KEY_B));
    settings.master_key_previous = None;
    let mut app = start(settings).await;
    app.tenant_id = given["tenant"].as_str().unwrap().parse().unwrap();
    app.api_key = given["api_key"].as_str().unwrap().to_owned();
    let entry = given["entry"].as_str().unwrap().to_owned();

    // Still listed once, under its id.
    assert_eq!(
        listed(&app, "ada@example.org", "").await,
        std::slice::from_ref(&entry)
    );

    // A message to it is suppressed, and says why.
    let job = app
        .send_message(json!({"template_id": given["template"], "to": "Ada@Example.org"}))
        .await;
    let deadline = std::time::Instant::now() + WAIT;
    let j = loop {
        let j = get_json(&app, &format!("/api/v1/audit/delivery_job/{job}")).await;
        let status = j["state"]["status"].as_str().unwrap_or_default().to_owned();
        if !["", "none", "requested", "failed", "dispatching"].contains(&status.as_str()) {
            break j;
        }
        assert!(std::time::Instant::now() < deadline, "job {job}: {j}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(j["state"]["status"], "suppressed", "{j}");
    assert_eq!(
        j["events"].as_array().unwrap().last().unwrap()["payload"]["DeliverySuppressed"]["reason"],
        json!({"kind": "suppressed_address", "reason": "hard_bounce"})
    );

    // Suppressing it again reaches the same entry: nothing new.
    let res = suppress(&app, "ada@example.org").await;
    assert_eq!(res.status(), 200);
    let (again, cursor) = accepted(res).await;
    assert_eq!(again.to_string(), entry);
    assert_eq!(
        entry_id(app.tenant_id, Channel::Email, "ada@example.org").to_string(),
        entry,
        "the entry id of the address moved"
    );
    assert_eq!(
        listed(&app, "ada@example.org", &cursor.to_string()).await,
        [entry]
    );
    app.halt().await;
}

#[tokio::test]
async fn the_digest_key_is_made_once_from_the_key_ids_were_made_with_and_kept() {
    let app = spawn_app().await;
    let purpose = event_store::shred::derived::SUPPRESSION_ENTRY_ID;
    let get = |keys: Keyring| {
        let pool = app.pool.clone();
        async move { event_store::shred::derived::get_or_create(&pool, &keys, purpose).await }
    };
    let stored = get(Keyring::new(Some(KEY_A), None)).await.unwrap();

    // An installation from before `derived_keys` (no row), started by two processes at once
    // in the middle of a rotation (B current, A previous): both make the key the ids were
    // made with (A's derivation), and agree on one row.
    sqlx::query("DELETE FROM derived_keys")
        .execute(&app.pool)
        .await
        .unwrap();
    let (a, b) = tokio::join!(
        get(Keyring::new(Some(KEY_B), Some(KEY_A))),
        get(Keyring::new(Some(KEY_B), Some(KEY_A)))
    );
    assert_eq!((a.unwrap(), b.unwrap()), (stored, stored));
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM derived_keys")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(rows, 1);

    // Once stored, the master key no longer decides it; a key that cannot open it is refused
    // by name rather than deriving another (which would move every id).
    let err = get(Keyring::new(Some([9; 32]), None)).await.unwrap_err();
    assert!(
        err.to_string().contains("neither MAUNTIC_MASTER_KEY nor"),
        "{err}"
    );
    app.stop().await;
}
