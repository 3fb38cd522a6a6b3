use mauntic_tests::spawn_app;
use serde_json::{json, Value};

#[tokio::test]
async fn time_travel_returns_the_state_at_a_sequence_and_at_a_time() {
    let app = spawn_app().await;
    let (id, _) = app
        .create_contact(json!({"email": "tt@example.org", "first_name": "Before"}))
        .await;
    let t1: chrono::DateTime<chrono::Utc> = sqlx::query_scalar("SELECT now()")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    let r = app
        .patch(
            &format!("/api/v1/contacts/{id}"),
            &json!({"first_name": "After"}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = app
        .post(
            &format!("/api/v1/contacts/{id}/tags"),
            &json!({"tags": ["late"]}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    let audit = |q: String| {
        let req = app.get(&format!("/api/v1/audit/contact/{id}{q}"));
        async move {
            let res = req.send().await.unwrap();
            assert_eq!(res.status(), 200);
            res.json::<Value>().await.unwrap()
        }
    };
    let at1 = audit("?at_sequence=1".into()).await;
    assert_eq!(at1["state"]["first_name"], "Before");
    assert_eq!(at1["events"].as_array().unwrap().len(), 1);
    assert_eq!(at1["events"][0]["event_type"], "ContactCreated");
    assert!(at1["events"][0]["actor"]
        .as_str()
        .unwrap()
        .starts_with("apikey:"));
    assert!(at1["events"][0]["correlation_id"].is_string());

    let at_t1 = audit(format!("?at_time={}", urlencode(&t1.to_rfc3339()))).await;
    assert_eq!(at_t1["state"]["first_name"], "Before");
    assert_eq!(at_t1["version"], 1);

    let now = audit(String::new()).await;
    assert_eq!(now["state"]["first_name"], "After");
    assert_eq!(now["state"]["tags"], json!(["late"]));
    assert_eq!(now["version"], 3);

    // Before the contact existed there is nothing to show.
    let res = app
        .get(&format!(
            "/api/v1/audit/contact/{id}?at_time=2000-01-01T00:00:00Z"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    app.stop().await;
}

fn urlencode(s: &str) -> String {
    s.replace('+', "%2B").replace(':', "%3A")
}
