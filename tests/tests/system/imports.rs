//! CSV import of contacts: counts and per-row errors, encodings, re-runs, races with the
//! API, bad options, isolation and roles.

use std::time::Duration;

use domain::identity::{KeyKind, Role};
use mauntic_tests::{spawn_app, TestApp};
use serde_json::{json, Value};
use uuid::Uuid;

/// Uploads `csv` with `options` using `key`.
async fn upload(app: &TestApp, key: &str, options: &Value, csv: Vec<u8>) -> reqwest::Response {
    let form = reqwest::multipart::Form::new()
        .text("options", options.to_string())
        .part(
            "file",
            reqwest::multipart::Part::bytes(csv).file_name("contacts.csv"),
        );
    app.http
        .post(app.url("/api/v1/imports"))
        .bearer_auth(key)
        .multipart(form)
        .send()
        .await
        .unwrap()
}

/// Starts an import and waits until it has ended; returns it as `GET /imports/{id}` shows it.
async fn import(app: &TestApp, options: &Value, csv: Vec<u8>) -> Value {
    let res = upload(app, &app.api_key, options, csv).await;
    assert_eq!(
        res.status(),
        202,
        "{}",
        res.text().await.unwrap_or_default()
    );
    let started: Value = res.json().await.unwrap();
    assert_eq!(started["status"], "running");
    let id = started["id"].as_str().unwrap().to_owned();
    finished(app, &id).await
}

async fn finished(app: &TestApp, id: &str) -> Value {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let v: Value = get_json(app, &format!("/api/v1/imports/{id}")).await;
        if v["status"] != "running" {
            return v;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for the import to end: {v}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn get_json(app: &TestApp, path: &str) -> Value {
    app.get(path).send().await.unwrap().json().await.unwrap()
}

fn counts(v: &Value) -> (i64, i64, i64, i64, i64) {
    let n = |k: &str| v[k].as_i64().unwrap();
    (
        n("rows_done"),
        n("created"),
        n("updated"),
        n("unchanged"),
        n("failed"),
    )
}

async fn define_fields(app: &TestApp) {
    for body in [
        json!({"key": "plan", "label": "Plan", "type": "select", "options": ["free", "pro", "team"]}),
        json!({"key": "score", "label": "Score", "type": "number"}),
    ] {
        let res = app.post("/api/v1/fields", &body).send().await.unwrap();
        assert_eq!(
            res.status(),
            201,
            "{}",
            res.text().await.unwrap_or_default()
        );
    }
}

fn mapping() -> Value {
    json!({
        "mapping": {"Email": "email", "First name": "first_name", "Last name": "last_name",
                    "Plan": "fields.plan", "Score": "fields.score", "Tags": "tags"},
        "tags": ["imported"]
    })
}

/// (email, first name, last name, tags) of every contact in the read model.
async fn contacts(app: &TestApp) -> Vec<(String, Option<String>, Option<String>, Vec<String>)> {
    app.caught_up("contacts").await;
    sqlx::query_as(
        "SELECT email, first_name, last_name, tags FROM contacts WHERE tenant_id = $1 ORDER BY email",
    )
    .bind(app.tenant_id)
    .fetch_all(&app.pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn an_import_counts_every_row_reports_bad_ones_by_line_and_reads_both_encodings() {
    let app = spawn_app().await;
    define_fields(&app).await;
    let mut csv: Vec<u8> = Vec::new();
    csv.extend_from_slice(b"\xEF\xBB\xBFEmail,First name,Last name,Plan,Score,Tags,Comment\n"); // 1
    csv.extend_from_slice(b"ada@example.org,Ada,Lovelace,pro,10,vip;early,\"first, with comma\"\n"); // 2
    csv.extend_from_slice(b"not-an-email,Bob,Smith,free,1,,\n"); // 3
    csv.extend_from_slice(b"carl@example.org,Carl,M\xFCller,team,5,,\"spans\ntwo lines\"\n"); // 4-5
    csv.extend_from_slice(b"dora@example.org,Dora,Doe,gold,2,,\n"); // 6
    csv.extend_from_slice(b",Eve,Empty,free,3,,\n"); // 7
    csv.extend_from_slice(b"fay@example.org,Fay\n"); // 8
    csv.extend_from_slice(b"ada@example.org,,Byron,,,,\n"); // 9
    csv.extend_from_slice(b"carl@example.org,Carl,M\xFCller,team,5,,\n"); // 10
    csv.extend_from_slice("gus@example.org,Gus,Jürgen,free,x,,\n".as_bytes()); // 11
    csv.extend_from_slice("hal@example.org,Hal,Zoë,,7,,\n".as_bytes()); // 12
    csv.extend_from_slice("HAL@Example.org,Hal,Zoë,,7,,\n".as_bytes()); // 13

    let done = import(&app, &mapping(), csv).await;

    assert_eq!(done["status"], "completed", "{done}");
    // rows, created, updated, unchanged, failed
    assert_eq!(counts(&done), (11, 3, 1, 2, 5), "{done}");
    let errors: Value = get_json(
        &app,
        &format!("/api/v1/imports/{}/errors", done["id"].as_str().unwrap()),
    )
    .await;
    assert_eq!(
        errors["items"],
        json!([
            {"line": 3, "reason": "email: \"not-an-email\" is not a valid email address: no @"},
            {"line": 6, "reason": "fields.plan: expected one of free, pro, team"},
            {"line": 7, "reason": "email: required"},
            {"line": 8, "reason": "expected 7 columns, found 2"},
            {"line": 11, "reason": "fields.score: expected a number"},
        ])
    );
    // Keyset pages by line.
    let id = done["id"].as_str().unwrap();
    let page = get_json(&app, &format!("/api/v1/imports/{id}/errors?limit=2")).await;
    assert_eq!(
        (page["items"][1]["line"].as_i64(), page["next"].as_str()),
        (Some(6), Some("6"))
    );
    let page = get_json(
        &app,
        &format!("/api/v1/imports/{id}/errors?limit=2&after=6"),
    )
    .await;
    assert_eq!(page["items"][0]["line"], 7);
    let tags = |t: &[&str]| t.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert_eq!(
        contacts(&app).await,
        vec![
            (
                "ada@example.org".into(),
                Some("Ada".into()),
                Some("Byron".into()),
                tags(&["early", "imported", "vip"])
            ),
            (
                "carl@example.org".into(),
                Some("Carl".into()),
                Some("Müller".into()),
                tags(&["imported"])
            ),
            (
                "hal@example.org".into(),
                Some("Hal".into()),
                Some("Zoë".into()),
                tags(&["imported"])
            ),
        ]
    );
    // The events carry the uploader's metadata, like API commands.
    let events = app.all_events().await;
    let created: Vec<_> = events
        .iter()
        .filter(|e| e.event_type == "ContactCreated")
        .collect();
    assert_eq!(created.len(), 3);
    assert!(created
        .iter()
        .all(|e| e.metadata.tenant_id == Some(app.tenant_id)
            && e.metadata
                .actor
                .as_deref()
                .is_some_and(|a| a.starts_with("apikey:"))
            && e.metadata.correlation_id.is_some()));
    // Creations are sealed before the batch's transaction (under a key made for each new
    // contact): the log holds no clear personal value, and each contact has its key.
    let stored: Vec<String> = sqlx::query_scalar(
        "SELECT payload::text FROM events WHERE aggregate_type = 'contact' ORDER BY global_position",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(stored.len(), 4, "3 created and Ada's update: {stored:?}");
    for p in &stored {
        for clear in [
            "ada@", "carl@", "hal@", "Lovelace", "Byron", "Müller", "early", "pro",
        ] {
            assert!(!p.contains(clear), "{clear} in clear in {p}");
        }
    }
    let keys: i64 =
        sqlx::query_scalar("SELECT count(*) FROM contact_keys WHERE wrapped_key IS NOT NULL")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(keys, 3);
    app.stop().await;
}

#[tokio::test]
async fn running_the_same_file_again_creates_nothing_and_records_no_event() {
    let app = spawn_app().await;
    define_fields(&app).await;
    let csv = b"Email,First name,Last name,Plan,Score,Tags\n\
        a@example.org,A,One,pro,1,x\n\
        b@example.org,B,Two,free,2,\n\
        c@example.org,C,Three,team,3,y;z\n\
        d@example.org,D,Four,,4,\n"
        .to_vec();
    let first = import(&app, &mapping(), csv.clone()).await;
    assert_eq!(counts(&first), (4, 4, 0, 0, 0), "{first}");
    let events = app.event_count().await;

    let second = import(&app, &mapping(), csv).await;

    assert_eq!(counts(&second), (4, 0, 0, 4, 0), "{second}");
    assert_eq!(
        app.event_count().await,
        events,
        "unchanged rows record no event"
    );
    assert_eq!(contacts(&app).await.len(), 4);
    let list: Value = get_json(&app, "/api/v1/imports").await;
    assert_eq!(list["items"].as_array().unwrap().len(), 2);
    assert_eq!(list["items"][0]["id"], second["id"], "newest first");
    app.stop().await;
}

#[tokio::test]
async fn an_import_racing_api_creates_never_yields_two_contacts_for_one_email() {
    let app = spawn_app().await;
    let n = 60;
    let mut csv = b"Email,First name\n".to_vec();
    for i in 0..n {
        csv.extend_from_slice(format!("race{i}@example.org,Importer\n").as_bytes());
    }
    let options = json!({"mapping": {"Email": "email", "First name": "first_name"}});
    let res = upload(&app, &app.api_key, &options, csv).await;
    assert_eq!(res.status(), 202);
    let id = res.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // The API creates the same emails, in reverse order, while the import runs.
    let mut api_created = 0;
    for i in (0..n).rev() {
        let res = app
            .post(
                "/api/v1/contacts",
                &json!({"email": format!("race{i}@example.org"), "first_name": "Api"}),
            )
            .send()
            .await
            .unwrap();
        match res.status().as_u16() {
            201 => api_created += 1,
            409 => {}
            other => panic!("create answered {other}"),
        }
    }
    let done = finished(&app, &id).await;

    assert_eq!(done["status"], "completed", "{done}");
    let (rows, created, updated, unchanged, failed) = counts(&done);
    assert_eq!((rows, failed), (n, 0));
    assert_eq!(created + api_created, n, "every email created exactly once");
    assert_eq!(updated + unchanged, n - created);
    let all = contacts(&app).await;
    assert_eq!(all.len() as i64, n, "one contact per email");
    let created_events = app
        .all_events()
        .await
        .into_iter()
        .filter(|e| e.event_type == "ContactCreated")
        .count();
    assert_eq!(created_events as i64, n);
    app.stop().await;
}

#[tokio::test]
async fn bad_options_are_refused_with_422_and_create_nothing() {
    let app = spawn_app().await;
    define_fields(&app).await;
    let events = app.event_count().await;
    let csv = b"Email,Plan\na@example.org,pro\n".to_vec();
    let cases = [
        (
            json!({"mapping": {"Email": "email", "Plan": "fields.nope"}}),
            "mapping.Plan",
            "unknown field fields.nope",
        ),
        (
            json!({"mapping": {"Plan": "fields.plan"}}),
            "mapping",
            "no column is mapped to email",
        ),
        (
            json!({"mapping": {"Email": "email", "Missing": "first_name"}}),
            "mapping.Missing",
            "the file has no column \"Missing\"",
        ),
    ];
    for (options, field, reason) in cases {
        let res = upload(&app, &app.api_key, &options, csv.clone()).await;
        assert_eq!(res.status(), 422, "{options}");
        assert_eq!(
            res.headers()["content-type"],
            "application/problem+json",
            "{options}"
        );
        let p: Value = res.json().await.unwrap();
        assert_eq!(
            p["errors"],
            json!([{"field": field, "reason": reason}]),
            "{options}"
        );
    }
    // Larger than MAUNTIC_IMPORT_MAX_BYTES (1 MiB in tests): 413, nothing kept.
    let mut big = b"Email\n".to_vec();
    while big.len() <= 1 << 20 {
        big.extend_from_slice(b"someone.with.a.long.address@example.org\n");
    }
    let res = upload(
        &app,
        &app.api_key,
        &json!({"mapping": {"Email": "email"}}),
        big,
    )
    .await;
    assert_eq!(res.status(), 413);
    assert_eq!(res.headers()["content-type"], "application/problem+json");
    let list: Value = get_json(&app, "/api/v1/imports").await;
    assert_eq!(list["items"], json!([]));
    assert_eq!(app.event_count().await, events);
    let stored = std::fs::read_dir(app.settings.imports.data_dir.join("imports"))
        .map(|d| {
            d.flat_map(|t| std::fs::read_dir(t.unwrap().path()).unwrap())
                .count()
        })
        .unwrap_or(0);
    assert_eq!(stored, 0, "refused uploads are not kept");
    app.stop().await;
}

#[tokio::test]
async fn imports_are_private_to_their_organization_and_viewers_cannot_import() {
    let app = spawn_app().await;
    let csv = b"Email\na@example.org\n".to_vec();
    let options = json!({"mapping": {"Email": "email"}});
    let done = import(&app, &options, csv.clone()).await;
    let id = done["id"].as_str().unwrap();

    let (_, other_key) = app.other_tenant().await;
    for path in [
        format!("/api/v1/imports/{id}"),
        format!("/api/v1/imports/{id}/errors"),
    ] {
        let res = app
            .http
            .get(app.url(&path))
            .bearer_auth(&other_key)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 404, "{path}");
    }
    let theirs: Value = app
        .http
        .get(app.url("/api/v1/imports"))
        .bearer_auth(&other_key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(theirs["items"], json!([]));

    let viewer = commands::identity::admin::create_api_key(
        &app.admin,
        app.tenant_id,
        "viewer",
        Role::Viewer,
        KeyKind::Secret,
    )
    .await
    .unwrap();
    let res = upload(&app, &viewer.key, &options, csv).await;
    assert_eq!(res.status(), 403);
    let res = app
        .http
        .get(app.url(&format!("/api/v1/imports/{id}")))
        .bearer_auth(&viewer.key)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "viewers may follow an import");
    app.stop().await;
}

#[tokio::test]
async fn an_import_left_running_is_resumed_from_its_last_batch() {
    let app = spawn_app().await;
    let dir = app.settings.imports.data_dir.join("resume");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("left.csv");
    std::fs::write(
        &path,
        "Email\nr1@example.org\nr2@example.org\nr3@example.org\nr4@example.org\nr5@example.org\n",
    )
    .unwrap();
    // As a crash leaves it: running, the first record (line 2, bytes 6..21) already applied.
    let id = Uuid::now_v7();
    sqlx::query(
        "INSERT INTO imports (tenant_id, id, status, options, metadata, path, \"offset\", line, rows_done, failed) \
         VALUES ($1, $2, 'running', $3, $4, $5, 21, 3, 1, 1)",
    )
    .bind(app.tenant_id)
    .bind(id)
    .bind(json!({"mapping": {"Email": "email"}, "tags": [], "update_existing": true}))
    .bind(json!({"tenant_id": app.tenant_id, "actor": "system:test"}))
    .bind(path.to_string_lossy().as_ref())
    .execute(&app.pool)
    .await
    .unwrap();

    let done = finished(&app, &id.to_string()).await;

    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(counts(&done), (5, 4, 0, 0, 1), "{done}");
    let emails: Vec<String> = contacts(&app).await.into_iter().map(|c| c.0).collect();
    assert_eq!(
        emails,
        [
            "r2@example.org",
            "r3@example.org",
            "r4@example.org",
            "r5@example.org"
        ]
    );
    app.stop().await;
}

#[tokio::test]
async fn an_import_adds_its_contacts_to_a_static_segment_once() {
    let app = spawn_app().await;
    define_fields(&app).await;
    let res = app
        .post("/api/v1/segments", &json!({"name": "Imported"}))
        .send()
        .await
        .unwrap();
    let (segment, created) = mauntic_tests::accepted(res).await;
    let dynamic = app
        .post(
            "/api/v1/segments",
            &json!({"name": "D", "rule": {"tag": "x"}}),
        )
        .send()
        .await
        .unwrap();
    let (dynamic, _) = mauntic_tests::accepted(dynamic).await;
    // A dynamic segment cannot be imported into.
    let mut options = mapping();
    options["segment_id"] = json!(dynamic);
    let res = upload(
        &app,
        &app.api_key,
        &options,
        b"Email\na@example.org\n".to_vec(),
    )
    .await;
    assert_eq!(res.status(), 422);

    let csv = b"Email,First name,Last name,Plan,Score,Tags\n\
        a@example.org,A,One,pro,1,\n\
        not-an-email,B,Two,free,2,\n\
        c@example.org,C,Three,team,3,\n"
        .to_vec();
    options["segment_id"] = json!(segment);
    let done = import(&app, &options, csv.clone()).await;
    assert_eq!(done["created"], 2, "{done}");
    // Again: nobody enters twice.
    import(&app, &options, csv).await;
    let entered: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM events WHERE event_type = 'SegmentEntered' \
         AND payload->'SegmentEntered'->>'segment_id' = $1",
    )
    .bind(segment.to_string())
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(entered, 2);
    let members: Value = get_json(
        &app,
        &format!("/api/v1/segments/{segment}/contacts?consistent_after={created}"),
    )
    .await;
    assert_eq!(members["count"], 2, "{members}");
    app.stop().await;
}

#[tokio::test]
async fn unique_field_values_go_to_one_contact_and_an_import_gives_back_what_it_replaced() {
    let app = spawn_app().await;
    let res = app
        .post(
            "/api/v1/fields",
            &json!({"key": "crm_id", "label": "CRM id", "type": "text", "unique": true}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let (held, _) = app
        .create_contact(json!({"email": "held@example.org", "fields": {"crm_id": "C-1"}}))
        .await;
    let (moving, _) = app
        .create_contact(json!({"email": "x@example.org", "fields": {"crm_id": "C-7"}}))
        .await;
    let options = json!({"mapping": {"Email": "email", "CRM": "fields.crm_id"}});
    let csv = b"Email,CRM\n\
        a@example.org,C-1\n\
        b@example.org,C-2\n\
        c@example.org,C-2\n\
        x@example.org,C-9\n\
        d@example.org,C-3\n\
        d@example.org,C-4\n"
        .to_vec();

    let done = import(&app, &options, csv.clone()).await;

    // a: C-1 is held; c: b took C-2 a row earlier; x moves from C-7 to C-9; d takes C-3,
    // then moves to C-4.
    assert_eq!(counts(&done), (6, 2, 2, 0, 2), "{done}");
    let id = done["id"].as_str().unwrap();
    let errors = get_json(&app, &format!("/api/v1/imports/{id}/errors")).await;
    assert_eq!(
        errors["items"],
        json!([
            {"line": 2, "reason": "fields.crm_id: another contact has this value"},
            {"line": 4, "reason": "fields.crm_id: another contact has this value"},
        ])
    );
    let holder = |value: &'static str| {
        let pool = app.pool.clone();
        let key = format!("{}:crm_id:{value}", app.tenant_id);
        async move {
            sqlx::query_scalar::<_, Uuid>(
                "SELECT owner_id FROM reservations WHERE scope = 'contact_field' AND value = $1",
            )
            .bind(key)
            .fetch_optional(&pool)
            .await
            .unwrap()
        }
    };
    assert_eq!(holder("C-1").await, Some(held));
    assert_eq!(holder("C-9").await, Some(moving));
    assert_eq!(holder("C-7").await, None, "x gave C-7 up");
    assert_eq!(holder("C-3").await, None, "d gave C-3 up");
    assert!(holder("C-2").await.is_some() && holder("C-4").await.is_some());
    assert!(holder("C-2").await != holder("C-4").await);
    // What the import gave up, the API can give to someone else; what it took, it cannot.
    let create = |email: &str, v: &str| {
        app.post(
            "/api/v1/contacts",
            &json!({"email": email, "fields": {"crm_id": v}}),
        )
        .send()
    };
    assert_eq!(create("y@example.org", "C-7").await.unwrap().status(), 201);
    assert_eq!(create("z@example.org", "C-9").await.unwrap().status(), 409);

    // The same file again: nothing created, the same two rows refused; d moves to C-3 and
    // back to C-4 (two updates), ending where it was with C-3 free.
    let d = holder("C-4").await;
    let again = import(&app, &options, csv).await;
    assert_eq!(counts(&again), (6, 0, 2, 2, 2), "{again}");
    assert_eq!(holder("C-4").await, d);
    assert_eq!(holder("C-3").await, None);
    assert_eq!(holder("C-1").await, Some(held));
    app.stop().await;
}
