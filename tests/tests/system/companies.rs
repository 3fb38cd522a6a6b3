//! Companies: create, update, list with a name search, detail with its contact count;
//! contacts linked to companies with one primary.

use mauntic_tests::spawn_app;
use serde_json::{json, Value};

#[tokio::test]
async fn companies_are_listed_by_name_and_contacts_link_to_them_with_one_primary() {
    let app = spawn_app().await;
    let mut ids = Vec::new();
    for name in ["Globex", "acme", "Acme Labs", "Initech"] {
        let res = app
            .post("/api/v1/companies", &json!({"name": name, "domain": format!("{}.example", name.to_lowercase().replace(' ', "-")), "fields": {"tier": "gold"}}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 201);
        ids.push(mauntic_tests::accepted(res).await);
    }
    let (acme, _) = ids[1];
    let (labs, _) = ids[2];
    let res = app
        .patch(
            &format!("/api/v1/companies/{acme}"),
            &json!({"name": "Acme", "domain": null, "fields": {"tier": null, "size": 50}}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let (_, cursor) = mauntic_tests::accepted(res).await;

    // A name search, case-insensitive, in keyset pages of 1.
    let page: Value = app
        .get(&format!(
            "/api/v1/companies?q=ACM&limit=1&consistent_after={cursor}"
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(page["items"][0]["name"], "Acme");
    assert_eq!(page["items"][0]["domain"], Value::Null);
    assert_eq!(page["items"][0]["fields"], json!({"size": 50}));
    let next = page["next"].as_str().unwrap();
    let page2: Value = app
        .get(&format!("/api/v1/companies?q=acm&limit=1&after={next}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(page2["items"][0]["name"], "Acme Labs");
    assert_eq!(page2["next"], Value::Null);
    let all: Value = app
        .get("/api/v1/companies")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let names: Vec<&str> = all["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Acme", "Acme Labs", "Globex", "Initech"]);

    // Links: one primary at a time.
    let (contact, _) = app
        .create_contact(json!({"email": "emp@example.org"}))
        .await;
    let link = |company: uuid::Uuid, primary: bool| {
        app.http
            .put(app.url(&format!("/api/v1/contacts/{contact}/companies/{company}")))
            .bearer_auth(&app.api_key)
            .json(&json!({"primary": primary}))
            .send()
    };
    assert_eq!(link(acme, true).await.unwrap().status(), 200);
    let (_, cursor) = mauntic_tests::accepted(link(labs, true).await.unwrap()).await;
    let c = app.contact(contact, cursor).await;
    let mut linked = vec![acme.to_string(), labs.to_string()];
    linked.sort();
    assert_eq!(c["company_ids"], json!(linked));
    assert_eq!(c["primary_company_id"], labs.to_string());
    let detail: Value = app
        .get(&format!(
            "/api/v1/companies/{acme}?consistent_after={cursor}"
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(detail["contact_count"], 1);
    let res = app
        .delete(&format!("/api/v1/contacts/{contact}/companies/{labs}"))
        .send()
        .await
        .unwrap();
    let (_, cursor) = mauntic_tests::accepted(res).await;
    let c = app.contact(contact, cursor).await;
    assert_eq!(c["company_ids"], json!([acme.to_string()]));
    assert_eq!(c["primary_company_id"], Value::Null);

    // A company that does not exist (here or anywhere) cannot be linked; bad input is named.
    let res = link(uuid::Uuid::now_v7(), false).await.unwrap();
    assert_eq!(res.status(), 404);
    let res = app
        .post(
            "/api/v1/companies",
            &json!({"name": " ", "domain": "not a domain", "fields": {"Bad Key": 1}}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 422);
    let p: Value = res.json().await.unwrap();
    let fields: Vec<&str> = p["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["name", "domain", "fields.Bad Key"]);
    app.stop().await;
}
