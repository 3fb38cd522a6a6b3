//! The API keeps the contract its `/openapi.json` states: every error is problem+json, an
//! unsupported method is a 405 naming the allowed ones, a bad parameter is a 400 wherever it
//! is, and a generated client (schemathesis, the version `scripts/services-up` installs)
//! finds no server error, no undeclared status, content type or response shape.

use mauntic_tests::spawn_app;
use reqwest::Method;
use serde_json::Value;

fn is_problem(res: &reqwest::Response) -> bool {
    res.headers()
        .get("content-type")
        .is_some_and(|v| v == "application/problem+json")
}

#[tokio::test]
async fn unsupported_methods_and_bad_parameters_answer_problems() {
    let app = spawn_app().await;
    // A route that exists, with a method it does not answer: 405 and what it answers.
    for (method, path, allow) in [
        (Method::TRACE, "/api/v1/contacts", "GET, POST, HEAD"),
        (
            Method::PUT,
            "/api/v1/contacts/{id}",
            "GET, PATCH, DELETE, HEAD",
        ),
        (Method::DELETE, "/healthz", "GET,HEAD"),
    ] {
        let path = path.replace("{id}", &uuid::Uuid::now_v7().to_string());
        let res = app
            .http
            .request(method.clone(), app.url(&path))
            .bearer_auth(&app.api_key)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 405, "{method} {path}");
        assert!(is_problem(&res), "{method} {path}: {:?}", res.headers());
        let allowed = res.headers()["allow"].to_str().unwrap().to_owned();
        let mut allowed: Vec<&str> = allowed.split(',').map(str::trim).collect();
        let mut expected: Vec<&str> = allow.split(',').map(str::trim).collect();
        allowed.sort_unstable();
        expected.sort_unstable();
        assert_eq!(allowed, expected, "{method} {path}");
    }
    // HEAD is GET without the body, under GET's access rule.
    let res = app
        .http
        .head(app.url("/api/v1/contacts"))
        .bearer_auth(&app.api_key)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let res = app
        .http
        .head(app.url("/api/v1/contacts"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401, "no key: refused as GET is");

    // A bad query parameter is a 400 naming it, on either kind of list.
    for path in [
        "/api/v1/contacts?limit=abc",
        "/api/v1/contacts?limit=0",
        "/api/v1/journeys?limit=0",
        "/api/v1/campaigns?limit=0",
        "/api/v1/companies?limit=x",
        "/api/v1/deliveries?limit=-1",
    ] {
        let res = app.get(path).send().await.unwrap();
        assert_eq!(res.status(), 400, "{path}");
        assert!(is_problem(&res), "{path}");
        let p: Value = res.json().await.unwrap();
        assert_eq!(p["status"], 400, "{path}: {p}");
        assert_eq!(p["errors"][0]["field"], "limit", "{path}: {p}");
    }
    // A path segment that is not UTF-8.
    let res = app
        .http
        .delete(app.url(&format!(
            "/api/v1/contacts/{}/tags/%FF%FE",
            uuid::Uuid::now_v7()
        )))
        .bearer_auth(&app.api_key)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    assert!(is_problem(&res));
    app.stop().await;
}

#[tokio::test]
async fn a_generated_client_finds_the_api_as_its_document_states() {
    let app = spawn_app().await;
    // Its working files (examples it remembers) in a folder of this run's, not the checkout.
    let dir = std::env::temp_dir().join(format!("schemathesis-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&dir).unwrap();
    // Not `std::process`: the application answers on this test's runtime meanwhile.
    let out = tokio::process::Command::new("schemathesis")
        .current_dir(&dir)
        .args([
            "run",
            &app.url("/openapi.json"),
            "--header",
            &format!("Authorization: Bearer {}", app.api_key),
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance",
            "--max-examples",
            "20",
            // The same cases each run: a failure is reproduced by running the test again.
            "--seed",
            "20261207",
            // The whole suite runs beside it on two cores: a slow answer is not a failure.
            "--request-timeout",
            "30",
            "--no-color",
        ])
        .output()
        .await
        .expect("schemathesis is installed (scripts/services-up)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let summary = text.find("SUMMARY").map_or(text.as_str(), |i| &text[i..]);
    let _ = std::fs::remove_dir_all(&dir);
    assert!(out.status.success(), "{text}");
    println!("{summary}");
    let figure = |name: &str| {
        summary
            .lines()
            .find_map(|l| l.trim().strip_prefix(name))
            .unwrap_or_default()
            .to_owned()
    };
    let selected = figure("Selected: ");
    let all = selected.split('/').nth(1).unwrap_or_default();
    assert_eq!(figure("Tested: "), all, "every operation ran: {summary}");
    app.stop().await;
}
