use mauntic_tests::{spawn_app, spawn_with, Options};
use serde_json::Value;

#[tokio::test]
async fn health_readiness_and_the_api_description_are_served() {
    let app = spawn_with(Options::with_nats()).await;
    let res = app.http.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let ready: Value = app
        .http
        .get(app.url("/readyz"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ready["database"], "ok");
    assert_eq!(ready["nats"], "ok");

    let doc: Value = app
        .http
        .get(app.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for path in [
        "/api/v1/contacts",
        "/api/v1/contacts/{id}",
        "/api/v1/contacts/{id}/tags",
        "/api/v1/contacts/{id}/tags/{tag}",
        "/api/v1/audit/{aggregate_type}/{id}",
        "/api/v1/projections",
    ] {
        assert!(
            doc["paths"][path].is_object(),
            "{path} missing from /openapi.json"
        );
    }
    assert!(doc["components"]["schemas"]["CreateContact"].is_object());
    app.stop().await;
}

#[tokio::test]
async fn projection_lag_is_reported_per_projection() {
    let app = spawn_app().await;
    app.create_contact(serde_json::json!({"email": "lag@example.org"}))
        .await;
    app.caught_up("contacts").await;
    let lag: Value = app
        .get("/api/v1/projections")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let contacts = lag
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["name"] == "contacts")
        .unwrap();
    assert_eq!(contacts["behind_events"], 0);
    assert_eq!(contacts["checkpoint"], contacts["head"]);
    let relay = lag
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["name"] == "relay")
        .unwrap();
    let all: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(
        relay["behind_events"], all,
        "no NATS: the relay is not running"
    );
    app.stop().await;
}
