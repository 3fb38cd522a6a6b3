//! Sign-up, login, sessions (fixation, CSRF, logout), password reset by mail through a real
//! SMTP server, TOTP, brute-force limits.

use std::time::Duration;

use mauntic_tests::browser::{session_cookie, Browser, PASSWORD};
use mauntic_tests::smtp_sink::{token_in, SmtpSink};
use mauntic_tests::{spawn_app, spawn_with, Options};
use serde_json::{json, Value};

async fn status_of(b: &Browser, path: &str) -> u16 {
    b.get(path).await.status().as_u16()
}

#[tokio::test]
async fn a_user_signs_up_logs_in_and_out_and_a_wrong_password_is_refused() {
    let app = spawn_app().await;
    let mut b = app.browser();
    b.sign_up("ada@example.org").await;
    assert_eq!(status_of(&b, "/api/v1/me").await, 200);

    let res = b.post("/api/v1/auth/logout", json!({})).await;
    assert_eq!(res.status(), 204);
    assert_eq!(status_of(&b, "/api/v1/me").await, 401, "logged out");

    let mut c = app.browser();
    let res = c.log_in("ada@example.org", "not-the-password-at-all").await;
    assert_eq!(res.status(), 401);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["type"], "/problems/invalid-credentials");
    let res = c.log_in("nobody@example.org", PASSWORD).await;
    assert_eq!(
        res.status(),
        401,
        "an unknown email answers like a wrong password"
    );
    let res = c.log_in("ADA@example.org", PASSWORD).await;
    c.signed_in(res).await;
    assert_eq!(status_of(&c, "/api/v1/me").await, 200);

    // Changing the password (knowing the old one) ends the other sessions, not this one.
    let mut other = app.browser();
    let res = other.log_in("ada@example.org", PASSWORD).await;
    other.signed_in(res).await;
    let res = c
        .post("/api/v1/me/password", json!({"current_password": "wrong-one-here", "new_password": "Moonlit-Harbor-47-tangent"}))
        .await;
    assert_eq!(res.status(), 401);
    let res = c
        .post(
            "/api/v1/me/password",
            json!({"current_password": PASSWORD, "new_password": "Moonlit-Harbor-47-tangent"}),
        )
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(
        status_of(&c, "/api/v1/me").await,
        200,
        "the changing session stays"
    );
    assert_eq!(
        status_of(&other, "/api/v1/me").await,
        401,
        "other sessions end"
    );

    // A session idle for longer than the idle timeout (12 h) has ended.
    app.settings.clock.advance(chrono::Duration::hours(13));
    assert_eq!(status_of(&c, "/api/v1/me").await, 401, "idle timeout");

    // The same email cannot sign up twice; a weak password is refused with the field named.
    let res = app
        .browser()
        .post(
            "/api/v1/auth/signup",
            json!({"email": "ada@example.org", "password": PASSWORD}),
        )
        .await;
    assert_eq!(res.status(), 409);
    let res = app
        .browser()
        .post(
            "/api/v1/auth/signup",
            json!({"email": "bob@example.org", "password": "password123"}),
        )
        .await;
    assert_eq!(res.status(), 422);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["errors"][0]["field"], "password");
    app.stop().await;
}

#[tokio::test]
async fn concurrent_sign_ups_with_one_email_make_one_user() {
    let app = spawn_app().await;
    let tries = (0..10).map(|_| {
        let b = app.browser();
        async move {
            b.post(
                "/api/v1/auth/signup",
                json!({"email": "race@example.org", "password": PASSWORD}),
            )
            .await
            .status()
            .as_u16()
        }
    });
    let statuses = futures::future::join_all(tries).await;
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        1,
        "{statuses:?}"
    );
    assert!(
        statuses.iter().all(|s| *s == 201 || *s == 409),
        "{statuses:?}"
    );
    let users: i64 = sqlx::query_scalar(
        "SELECT count(DISTINCT aggregate_id) FROM events WHERE event_type = 'UserSignedUp'",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(users, 1);
    app.stop().await;
}

#[tokio::test]
async fn a_pre_login_session_id_is_not_kept_and_cookie_writes_need_the_csrf_token() {
    let app = spawn_app().await;
    let (mut owner, _) = app.founder("owner@example.org", "Acme").await;

    // Fixation: the attacker's own live session id, planted in the victim's browser, is
    // ended by the login, which makes a new id.
    let mut attacker = app.browser();
    let res = attacker.log_in("owner@example.org", PASSWORD).await;
    let planted = session_cookie(res.headers()).unwrap();
    attacker.signed_in(res).await;
    let victim = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let res = victim
        .post(app.url("/api/v1/auth/login"))
        .header("cookie", format!("mauntic_session={planted}"))
        .json(&json!({"email": "owner@example.org", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let fresh = session_cookie(res.headers()).unwrap();
    assert_ne!(fresh, planted, "login must make a new session id");
    let with = |id: &str| {
        victim
            .get(app.url("/api/v1/me"))
            .header("cookie", format!("mauntic_session={id}"))
    };
    assert_eq!(with(&planted).send().await.unwrap().status(), 401);
    assert_eq!(with(&fresh).send().await.unwrap().status(), 200);

    // CSRF: a cross-site POST carries the cookie but cannot know the token.
    let before = app.event_count().await;
    let token = owner.csrf.take();
    let res = owner
        .post("/api/v1/contacts", json!({"email": "c@example.org"}))
        .await;
    assert_eq!(res.status(), 403);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["type"], "/problems/csrf");
    owner.csrf = Some("0".repeat(48));
    let res = owner
        .post("/api/v1/contacts", json!({"email": "c@example.org"}))
        .await;
    assert_eq!(res.status(), 403, "a wrong token is refused too");
    assert_eq!(app.event_count().await, before, "nothing was written");
    owner.csrf = token;
    let res = owner
        .post("/api/v1/contacts", json!({"email": "c@example.org"}))
        .await;
    assert_eq!(
        res.status(),
        201,
        "with the token the same write goes through"
    );
    // Reads need no token.
    owner.csrf = None;
    assert_eq!(status_of(&owner, "/api/v1/contacts").await, 200);
    app.stop().await;
}

#[tokio::test]
async fn a_reset_token_works_once_expires_and_logs_out_every_session() {
    let sink = SmtpSink::start();
    let app = spawn_with(Options {
        smtp_url: Some(sink.url()),
        ..Options::default()
    })
    .await;
    let mut first = app.browser();
    first.sign_up("ada@example.org").await;
    let verify = sink
        .wait_for_message("ada@example.org", Duration::from_secs(10))
        .await;
    assert!(verify.contains("Confirm your email"), "{verify}");
    let res = first
        .post(
            "/api/v1/auth/verify-email",
            json!({"token": token_in(&verify)}),
        )
        .await;
    assert_eq!(res.status(), 200);
    let mut second = app.browser();
    let res = second.log_in("ada@example.org", PASSWORD).await;
    second.signed_in(res).await;

    let anon = app.browser();
    let res = anon
        .post(
            "/api/v1/auth/password/forgot",
            json!({"email": "ada@example.org"}),
        )
        .await;
    assert_eq!(res.status(), 202);
    let res = anon
        .post(
            "/api/v1/auth/password/forgot",
            json!({"email": "nobody@example.org"}),
        )
        .await;
    assert_eq!(res.status(), 202, "unknown accounts answer the same");
    let mail = sink
        .wait_for_message_with(
            "ada@example.org",
            "Reset your password",
            Duration::from_secs(10),
        )
        .await;
    let token = token_in(&mail);
    let new_password = "Moonlit-Harbor-47-tangent";
    let res = anon
        .post(
            "/api/v1/auth/password/reset",
            json!({"token": token, "password": new_password}),
        )
        .await;
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    assert_eq!(
        status_of(&first, "/api/v1/me").await,
        401,
        "sessions end on reset"
    );
    assert_eq!(
        status_of(&second, "/api/v1/me").await,
        401,
        "sessions end on reset"
    );

    // Single use.
    let res = anon
        .post(
            "/api/v1/auth/password/reset",
            json!({"token": token, "password": "Another-Strong-Pass-9981"}),
        )
        .await;
    assert_eq!(res.status(), 400);
    assert_eq!(
        app.browser()
            .log_in("ada@example.org", PASSWORD)
            .await
            .status(),
        401
    );
    let mut b = app.browser();
    let res = b.log_in("ada@example.org", new_password).await;
    b.signed_in(res).await;

    // Expiry: an hour later the link no longer works.
    anon.post(
        "/api/v1/auth/password/forgot",
        json!({"email": "ada@example.org"}),
    )
    .await;
    let mails = sink
        .wait_for_count("ada@example.org", 3, Duration::from_secs(10))
        .await;
    let late = token_in(mails.last().unwrap());
    app.settings.clock.advance(chrono::Duration::minutes(61));
    let res = anon
        .post(
            "/api/v1/auth/password/reset",
            json!({"token": late, "password": "Another-Strong-Pass-9981"}),
        )
        .await;
    assert_eq!(res.status(), 410);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["type"], "/problems/token-expired");
    app.stop().await;
}

fn code_now(secret: &str) -> String {
    let bytes = totp_rs::Secret::Encoded(secret.into()).to_bytes().unwrap();
    totp_rs::TOTP::new(totp_rs::Algorithm::SHA1, 6, 1, 30, bytes)
        .unwrap()
        .generate_current()
        .unwrap()
}

#[tokio::test]
async fn with_totp_on_a_login_needs_a_code_or_a_recovery_code_once() {
    let app = spawn_app().await;
    let mut b = app.browser();
    b.sign_up("ada@example.org").await;
    let res = b.post("/api/v1/me/totp", json!({})).await;
    assert_eq!(res.status(), 200);
    let enrol: Value = res.json().await.unwrap();
    let secret = enrol["secret"].as_str().unwrap().to_owned();
    assert!(enrol["otpauth_url"]
        .as_str()
        .unwrap()
        .starts_with("otpauth://totp/"));
    let res = b
        .post("/api/v1/me/totp/confirm", json!({"code": "000000"}))
        .await;
    assert_eq!(res.status(), 401, "a wrong code does not enable TOTP");
    let res = b
        .post(
            "/api/v1/me/totp/confirm",
            json!({"code": code_now(&secret)}),
        )
        .await;
    assert_eq!(res.status(), 200);
    let codes: Value = res.json().await.unwrap();
    let recovery = codes["recovery_codes"][0].as_str().unwrap().to_owned();
    // Credentials never enter the log (and so never reach the bus or a read model).
    let leaks: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM events WHERE payload::text LIKE '%argon2%' \
         OR payload::text LIKE '%' || $1 || '%' OR payload::text LIKE '%' || $2 || '%'",
    )
    .bind(&secret)
    .bind(&recovery)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(leaks, 0, "a credential is in the event log");
    assert_eq!(codes["recovery_codes"].as_array().unwrap().len(), 10);

    // Password alone is not enough; the pending session is not a session.
    let mut c = app.browser();
    let res = c.log_in("ada@example.org", PASSWORD).await;
    let pending = session_cookie(res.headers()).unwrap();
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["second_factor_required"], true);
    assert_eq!(status_of(&c, "/api/v1/me").await, 401);
    let res = c
        .post(
            "/api/v1/auth/login/second-factor",
            json!({"code": "123456"}),
        )
        .await;
    assert_eq!(res.status(), 401);
    let used = code_now(&secret);
    let res = c
        .post("/api/v1/auth/login/second-factor", json!({"code": used}))
        .await;
    assert_ne!(
        session_cookie(res.headers()).unwrap(),
        pending,
        "a new id after the second factor"
    );
    c.signed_in(res).await;
    assert_eq!(status_of(&c, "/api/v1/me").await, 200);
    // The same code cannot sign in again (a replay within its 30 s).
    let replay = app.browser();
    replay.log_in("ada@example.org", PASSWORD).await;
    let res = replay
        .post("/api/v1/auth/login/second-factor", json!({"code": used}))
        .await;
    assert_eq!(res.status(), 401);

    // A recovery code works once.
    for expected in [200, 401] {
        let d = app.browser();
        d.log_in("ada@example.org", PASSWORD).await;
        let res = d
            .post(
                "/api/v1/auth/login/second-factor",
                json!({"recovery_code": recovery}),
            )
            .await;
        assert_eq!(res.status(), expected);
    }
    app.stop().await;
}

#[tokio::test]
async fn login_attempts_are_limited_per_account_and_token_attempts_per_address() {
    let app = spawn_app().await;
    app.browser().sign_up("ada@example.org").await;
    let b = app.browser();
    for _ in 0..10 {
        let res = b.log_in("ada@example.org", "wrong-password-xyz").await;
        assert_eq!(res.status(), 401);
    }
    let res = b.log_in("ada@example.org", PASSWORD).await;
    assert_eq!(
        res.status(),
        429,
        "even the right password waits once the limit is hit"
    );
    let retry: u64 = res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=900).contains(&retry), "{retry}");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["type"], "/problems/too-many-attempts");
    // Another account from the same address is not locked out.
    app.browser().sign_up("bob@example.org").await;
    assert_eq!(b.log_in("bob@example.org", PASSWORD).await.status(), 200);

    // Tokens: 30 guesses per address per window.
    let bogus = format!("{}.{}", uuid::Uuid::now_v7(), "ab".repeat(32));
    for _ in 0..30 {
        let res = b
            .post("/api/v1/auth/verify-email", json!({"token": bogus}))
            .await;
        assert_eq!(res.status(), 400);
    }
    let res = b
        .post("/api/v1/auth/verify-email", json!({"token": bogus}))
        .await;
    assert_eq!(res.status(), 429);
    assert!(res.headers().contains_key("retry-after"));
    app.stop().await;
}
