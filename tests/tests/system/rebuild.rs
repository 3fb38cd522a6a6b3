use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use mauntic_tests::spawn_app;
use serde_json::json;

#[tokio::test]
async fn a_rebuild_yields_the_live_read_model_while_reads_keep_answering() {
    let app = spawn_app().await;
    let mut ids = Vec::new();
    for i in 0..200 {
        let (id, _) = app
            .create_contact(
                json!({"email": format!("r{i}@example.org"), "tags": ["x"], "fields": {"i": i}}),
            )
            .await;
        ids.push(id);
    }
    for id in ids.iter().step_by(3) {
        let r = app
            .patch(
                &format!("/api/v1/contacts/{id}"),
                &json!({"first_name": "Re"}),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    app.caught_up("contacts").await;
    let live = app.checksum("contacts").await;

    // Reads hammer the API for the whole rebuild.
    let done = Arc::new(AtomicBool::new(false));
    let reads = Arc::new(AtomicUsize::new(0));
    let reader = {
        let (done, reads) = (done.clone(), reads.clone());
        let (http, url, key) = (
            app.http.clone(),
            app.url("/api/v1/contacts?limit=500"),
            app.api_key.clone(),
        );
        tokio::spawn(async move {
            while !done.load(Ordering::SeqCst) {
                let res = http.get(&url).bearer_auth(&key).send().await.unwrap();
                assert_eq!(res.status(), 200);
                let page: serde_json::Value = res.json().await.unwrap();
                assert_eq!(
                    page["items"].as_array().unwrap().len(),
                    200,
                    "a read saw a partial model"
                );
                reads.fetch_add(1, Ordering::SeqCst);
            }
        })
    };
    let mut progress_calls = 0;
    let report = replay::rebuild::rebuild(
        &app.pool,
        &projections::contacts::ContactsProjection,
        |_| progress_calls += 1,
    )
    .await
    .unwrap();
    done.store(true, Ordering::SeqCst);
    reader.await.unwrap();

    assert_eq!(
        app.checksum("contacts").await,
        live,
        "rebuilt model equals the live one"
    );
    assert!(report.events >= 267, "{report:?}");
    assert!(progress_calls >= 1);
    assert!(reads.load(Ordering::SeqCst) > 0);
    let shadow: Option<String> =
        sqlx::query_scalar("SELECT to_regclass('contacts__rebuild')::text")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(shadow, None, "the shadow table was swapped in");

    // The live projector carries on on the swapped-in table.
    let (id, cursor) = app
        .create_contact(json!({"email": "after-rebuild@example.org"}))
        .await;
    assert_eq!(
        app.contact(id, cursor).await["email"],
        "after-rebuild@example.org"
    );
    app.stop().await;
}
