use mauntic_tests::spawn_app;
use serde_json::{json, Value};

#[tokio::test]
async fn a_key_of_one_tenant_cannot_read_change_or_detect_another_tenants_contact() {
    let app = spawn_app().await;
    let (id, cursor) = app
        .create_contact(json!({"email": "secret@example.org", "tags": ["a"]}))
        .await;
    app.contact(id, cursor).await;
    let (_, other_key) = app.other_tenant().await;
    let before = app.event_count().await;
    let other = |m: reqwest::Method, path: String| {
        app.http.request(m, app.url(&path)).bearer_auth(&other_key)
    };

    let attempts = vec![
        other(reqwest::Method::GET, format!("/api/v1/contacts/{id}")),
        other(reqwest::Method::GET, format!("/api/v1/audit/contact/{id}")),
        other(reqwest::Method::PATCH, format!("/api/v1/contacts/{id}"))
            .json(&json!({"first_name": "Mallory"})),
        other(reqwest::Method::POST, format!("/api/v1/contacts/{id}/tags"))
            .json(&json!({"tags": ["pwned"]})),
        other(
            reqwest::Method::DELETE,
            format!("/api/v1/contacts/{id}/tags/a"),
        ),
    ];
    // The answer must be the same as for an id that exists nowhere.
    let nowhere = uuid::Uuid::now_v7();
    let control = other(reqwest::Method::GET, format!("/api/v1/contacts/{nowhere}"))
        .send()
        .await
        .unwrap();
    let control_body: Value = control.json().await.unwrap();
    for req in attempts {
        let res = req.send().await.unwrap();
        assert_eq!(res.status(), 404);
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["type"], control_body["type"]);
    }
    let list: Value = other(reqwest::Method::GET, "/api/v1/contacts".into())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["items"], json!([]));

    assert_eq!(
        app.event_count().await,
        before,
        "the other tenant wrote nothing"
    );
    let mine = app.contact(id, cursor).await;
    assert_eq!(mine["tags"], json!(["a"]));
    assert_eq!(mine["first_name"], Value::Null);
    app.stop().await;
}
