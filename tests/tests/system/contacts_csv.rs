//! Contacts to CSV, streamed across pages, with filters.

use std::collections::HashSet;

use mauntic_tests::spawn_app;
use serde_json::json;

#[tokio::test]
async fn contacts_export_to_csv_across_pages_and_filters_apply() {
    let app = spawn_app().await;
    // A real contact with every column set, and 12,000 more straight into the read model
    // (the export reads the read model; this is about paging, not projection).
    let (id, cursor) = app
        .create_contact(json!({"email": "first@example.org", "first_name": "Ada, \"the\" first", "tags": ["vip"], "phone": "+4915123456789"}))
        .await;
    app.contact(id, cursor).await;
    sqlx::query(
        "INSERT INTO contacts (tenant_id, id, email, tags, created_at, updated_at, version, stage) \
         SELECT $1, gen_random_uuid(), 'bulk' || n || '@example.org', \
                CASE WHEN n % 3 = 0 THEN ARRAY['third'] ELSE ARRAY[]::text[] END, now(), now(), 1, \
                CASE WHEN n % 2 = 0 THEN 'lead' END \
         FROM generate_series(1, 12000) n",
    )
    .bind(app.tenant_id)
    .execute(&app.pool)
    .await
    .unwrap();
    let res = app.get("/api/v1/contacts:export").send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/csv"));
    let body = res.bytes().await.unwrap();
    let mut reader = csv::Reader::from_reader(body.as_ref());
    let headers = reader.headers().unwrap().clone();
    assert_eq!(&headers[0], "id");
    assert_eq!(&headers[1], "email");
    let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.unwrap()).collect();
    assert_eq!(rows.len(), 12_001);
    let ids: HashSet<&str> = rows.iter().map(|r| r.get(0).unwrap()).collect();
    assert_eq!(ids.len(), 12_001, "no contact twice across pages");
    let ada = rows
        .iter()
        .find(|r| r.get(0) == Some(id.to_string().as_str()))
        .unwrap();
    assert_eq!(ada.get(2), Some("Ada, \"the\" first"), "quoting survives");
    assert_eq!(ada.get(4), Some("+4915123456789"));
    assert_eq!(ada.get(9), Some("vip"));

    let count = |query: &'static str| {
        let req = app.get(&format!("/api/v1/contacts:export?{query}"));
        async move {
            let body = req.send().await.unwrap().bytes().await.unwrap();
            csv::Reader::from_reader(body.as_ref()).records().count()
        }
    };
    assert_eq!(count("tag=third").await, 4_000);
    assert_eq!(count("stage=lead").await, 6_000);
    assert_eq!(count("tag=third&stage=lead").await, 2_000);
    // Another organization's export holds none of these.
    let (_, other) = app.other_tenant().await;
    let body = app
        .http
        .get(app.url("/api/v1/contacts:export"))
        .bearer_auth(other)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(csv::Reader::from_reader(body.as_ref()).records().count(), 0);
    app.stop().await;
}
