//! Sign-in with an OpenID Connect provider: a local provider that issues real ES256-signed
//! id tokens; tampered tokens, replayed state and unverified emails are refused.

use mauntic_tests::browser::Browser;
use mauntic_tests::fake_oidc::{FakeOidc, Tamper};
use mauntic_tests::{spawn_with, Options, TestApp};
use serde_json::Value;

const CLIENT_ID: &str = "mauntic-test";
const CLIENT_SECRET: &str = "s3cret-for-tests";

fn location(res: &reqwest::Response) -> String {
    res.headers()["location"].to_str().unwrap().to_owned()
}

/// Runs the browser through start → provider → callback; returns the callback's answer.
async fn sign_in(app: &TestApp, b: &Browser) -> reqwest::Response {
    let res = b.get("/api/v1/auth/oidc/start").await;
    assert_eq!(
        res.status(),
        303,
        "{}",
        res.text().await.unwrap_or_default()
    );
    let authorize = location(&res);
    let res = b.http.get(&authorize).send().await.unwrap();
    assert_eq!(res.status(), 302, "the provider redirects back");
    let callback = location(&res);
    assert!(
        callback.starts_with(&app.settings.identity.public_url),
        "{callback}"
    );
    // The callback is on our API; the public URL is where the test app listens.
    let path = callback
        .split_once("/api/")
        .map(|(_, p)| format!("/api/{p}"))
        .unwrap();
    b.get(&path).await
}

async fn app_with(oidc: &FakeOidc) -> TestApp {
    let mut settings_opts = Options {
        oidc: Some(commands::identity::OidcConfig {
            issuer: oidc.issuer(),
            client_id: CLIENT_ID.into(),
            client_secret: CLIENT_SECRET.into(),
        }),
        ..Options::default()
    };
    settings_opts.public_url_from_addr = true;
    spawn_with(settings_opts).await
}

#[tokio::test]
async fn a_provider_signs_a_user_in_and_creates_the_account_once() {
    let provider = FakeOidc::start(CLIENT_ID, CLIENT_SECRET).await;
    let app = app_with(&provider).await;
    provider.set_user("sub-1", "grace@example.org", true);

    let b = app.browser();
    let res = sign_in(&app, &b).await;
    assert_eq!(res.status(), 303, "{}", res.text().await.unwrap());
    let me: Value = b.get("/api/v1/me").await.json().await.unwrap();
    let user = me["user"]["id"].as_str().unwrap().to_owned();
    assert_eq!(me["user"]["email"], "grace@example.org");

    // Again: the same account.
    let b2 = app.browser();
    assert_eq!(sign_in(&app, &b2).await.status(), 303);
    let me2: Value = b2.get("/api/v1/me").await.json().await.unwrap();
    assert_eq!(me2["user"]["id"], user.as_str());
    let accounts: i64 =
        sqlx::query_scalar("SELECT count(*) FROM events WHERE event_type = 'UserSignedUp'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(accounts, 1);
    app.stop().await;
}

#[tokio::test]
async fn tampered_tokens_replayed_state_and_unverified_emails_are_refused() {
    let provider = FakeOidc::start(CLIENT_ID, CLIENT_SECRET).await;
    let app = app_with(&provider).await;
    provider.set_user("sub-2", "heidi@example.org", true);
    for t in [
        Tamper::WrongKey,
        Tamper::WrongAudience,
        Tamper::Expired,
        Tamper::WrongNonce,
        Tamper::WrongIssuer,
    ] {
        provider.set_tamper(t);
        let b = app.browser();
        let res = sign_in(&app, &b).await;
        assert_eq!(res.status(), 401, "{t:?} was accepted");
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["type"], "/problems/oidc-failed");
        assert_eq!(b.get("/api/v1/me").await.status(), 401);
    }
    provider.set_tamper(Tamper::None);

    // A callback replayed (same state) is refused, and so is one from another browser.
    let b = app.browser();
    let res = b.get("/api/v1/auth/oidc/start").await;
    let res = b.http.get(location(&res)).send().await.unwrap();
    let callback = location(&res);
    let path = callback
        .split_once("/api/")
        .map(|(_, p)| format!("/api/{p}"))
        .unwrap();
    let stranger = app.browser();
    assert_eq!(
        stranger.get(&path).await.status(),
        401,
        "not started in this browser"
    );
    assert_eq!(b.get(&path).await.status(), 303);
    assert_eq!(b.get(&path).await.status(), 401, "state is single-use");

    provider.set_user("sub-3", "ivan@example.org", false);
    let res = sign_in(&app, &app.browser()).await;
    assert_eq!(res.status(), 403);
    app.stop().await;
}
