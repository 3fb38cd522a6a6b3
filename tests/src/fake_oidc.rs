//! A local OpenID Connect provider that issues real ES256-signed id_tokens, for the tests of
//! "sign in with OpenID Connect": one client, one user at a time, the authorization-code flow.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Form, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rand::distributions::{Alphanumeric, DistString};
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use serde_json::{json, Value};
use tokio_util::sync::{CancellationToken, DropGuard};

/// One defect in the id_tokens issued from now on, to prove the relying party checks it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Tamper {
    /// A well-formed token.
    #[default]
    None,
    /// Signed by a second key that is not in the JWKS, under the same `kid`.
    WrongKey,
    /// `aud` names another client.
    WrongAudience,
    /// `exp` lies ten minutes in the past.
    Expired,
    /// `nonce` is not the one the authorization request carried.
    WrongNonce,
    /// `iss` is not this provider.
    WrongIssuer,
}

#[derive(Debug, Clone)]
struct User {
    sub: String,
    email: String,
    email_verified: bool,
}

/// What an authorization code was issued for.
struct Grant {
    redirect_uri: String,
    nonce: Option<String>,
    user: User,
    client_id: String,
}

struct Provider {
    issuer: String,
    client_id: String,
    client_secret: String,
    kid: String,
    /// PKCS#8 of the key published in the JWKS, and of one that is not.
    key: Vec<u8>,
    wrong_key: Vec<u8>,
    /// The uncompressed public point of `key`: 0x04 || x || y.
    public: Vec<u8>,
    state: Mutex<Session>,
}

struct Session {
    user: User,
    tamper: Tamper,
    codes: HashMap<String, Grant>,
}

/// A running provider on 127.0.0.1; it stops when dropped.
pub struct FakeOidc {
    provider: Arc<Provider>,
    _stop: DropGuard,
}

impl FakeOidc {
    /// Starts a provider that knows one client. The user is `user-1` / `user@example.org`
    /// (verified) until [`FakeOidc::set_user`] says otherwise.
    pub async fn start(client_id: &str, client_secret: &str) -> FakeOidc {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let rng = SystemRandom::new();
        let generate = || {
            let doc = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng);
            doc.unwrap().as_ref().to_vec()
        };
        let (key, wrong_key) = (generate(), generate());
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &key, &rng).unwrap();
        let provider = Arc::new(Provider {
            issuer: format!("http://{}", listener.local_addr().unwrap()),
            client_id: client_id.to_owned(),
            client_secret: client_secret.to_owned(),
            kid: random(16),
            public: pair.public_key().as_ref().to_vec(),
            key,
            wrong_key,
            state: Mutex::new(Session {
                user: User {
                    sub: "user-1".into(),
                    email: "user@example.org".into(),
                    email_verified: true,
                },
                tamper: Tamper::None,
                codes: HashMap::new(),
            }),
        });
        let app = Router::new()
            .route("/.well-known/openid-configuration", get(discovery))
            .route("/authorize", get(authorize))
            .route("/token", post(token))
            .route("/jwks", get(jwks))
            .with_state(provider.clone());
        let cancel = CancellationToken::new();
        let stop = cancel.clone().cancelled_owned();
        tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(stop)
                .await
        });
        FakeOidc {
            provider,
            _stop: cancel.drop_guard(),
        }
    }

    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub fn issuer(&self) -> String {
        self.provider.issuer.clone()
    }

    /// The user that the next `/authorize` calls log in as.
    pub fn set_user(&self, sub: &str, email: &str, email_verified: bool) {
        self.provider.state.lock().unwrap().user = User {
            sub: sub.to_owned(),
            email: email.to_owned(),
            email_verified,
        };
    }

    /// The defect of every id_token the token endpoint issues from now on (until set again).
    pub fn set_tamper(&self, t: Tamper) {
        self.provider.state.lock().unwrap().tamper = t;
    }
}

async fn discovery(State(p): State<Arc<Provider>>) -> Json<Value> {
    let iss = &p.issuer;
    Json(json!({
        "issuer": iss,
        "authorization_endpoint": format!("{iss}/authorize"),
        "token_endpoint": format!("{iss}/token"),
        "jwks_uri": format!("{iss}/jwks"),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["ES256"],
        "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
    }))
}

async fn jwks(State(p): State<Arc<Provider>>) -> Json<Value> {
    let (x, y) = p.public[1..].split_at(32);
    Json(json!({"keys": [{
        "kty": "EC", "crv": "P-256", "x": URL_SAFE_NO_PAD.encode(x), "y": URL_SAFE_NO_PAD.encode(y),
        "kid": p.kid, "alg": "ES256", "use": "sig",
    }]}))
}

async fn authorize(
    State(p): State<Arc<Provider>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let param = |k: &str| q.get(k).map(String::as_str);
    let openid = param("scope").is_some_and(|s| s.split_whitespace().any(|w| w == "openid"));
    let target = param("redirect_uri").and_then(|r| reqwest::Url::parse(r).ok());
    let (true, Some(mut target)) = (
        openid
            && param("client_id") == Some(&p.client_id)
            && param("response_type") == Some("code"),
        target,
    ) else {
        return (StatusCode::BAD_REQUEST, "invalid authorization request").into_response();
    };
    let code = random(32);
    target.query_pairs_mut().append_pair("code", &code);
    if let Some(state) = param("state") {
        target.query_pairs_mut().append_pair("state", state);
    }
    let mut session = p.state.lock().unwrap();
    let grant = Grant {
        redirect_uri: param("redirect_uri").unwrap_or_default().to_owned(),
        nonce: param("nonce").map(str::to_owned),
        user: session.user.clone(),
        client_id: p.client_id.clone(),
    };
    session.codes.insert(code, grant);
    (StatusCode::FOUND, [(header::LOCATION, target.to_string())]).into_response()
}

async fn token(
    State(p): State<Arc<Provider>>,
    headers: HeaderMap,
    Form(f): Form<HashMap<String, String>>,
) -> Response {
    let form = |k: &str| f.get(k).cloned().unwrap_or_default();
    let (id, secret) = basic_auth(&headers).unwrap_or((form("client_id"), form("client_secret")));
    if id != p.client_id || secret != p.client_secret {
        return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client");
    }
    if form("grant_type") != "authorization_code" {
        return oauth_error(StatusCode::BAD_REQUEST, "unsupported_grant_type");
    }
    let (grant, tamper) = {
        let mut session = p.state.lock().unwrap();
        (session.codes.remove(&form("code")), session.tamper)
    };
    let Some(grant) = grant.filter(|g| g.redirect_uri == form("redirect_uri") && g.client_id == id)
    else {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant");
    };
    Json(json!({
        "access_token": random(32),
        "token_type": "Bearer",
        "expires_in": 300,
        "id_token": p.id_token(&grant, tamper),
    }))
    .into_response()
}

impl Provider {
    fn id_token(&self, g: &Grant, tamper: Tamper) -> String {
        let now = chrono::Utc::now().timestamp();
        let other = |s: &str| format!("{s}-other");
        let bad = |t: Tamper| tamper == t;
        let mut claims = json!({
            "iss": if bad(Tamper::WrongIssuer) { other(&self.issuer) } else { self.issuer.clone() },
            "sub": g.user.sub,
            "aud": if bad(Tamper::WrongAudience) { other(&g.client_id) } else { g.client_id.clone() },
            "exp": if bad(Tamper::Expired) { now - 600 } else { now + 300 },
            "iat": now,
            "email": g.user.email,
            "email_verified": g.user.email_verified,
        });
        match (&g.nonce, bad(Tamper::WrongNonce)) {
            (Some(nonce), false) => claims["nonce"] = json!(nonce),
            (Some(nonce), true) => claims["nonce"] = json!(other(nonce)),
            (None, true) => claims["nonce"] = json!("unexpected"),
            (None, false) => {}
        }
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.kid.clone());
        let key = if bad(Tamper::WrongKey) {
            &self.wrong_key
        } else {
            &self.key
        };
        jsonwebtoken::encode(&header, &claims, &EncodingKey::from_ec_der(key)).unwrap()
    }
}

/// client_secret_basic: RFC 6749 §2.3.1 form-urlencodes the id and secret before Base64.
fn basic_auth(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let decoded = STANDARD.decode(value.strip_prefix("Basic ")?.trim()).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (id, secret) = text.split_once(':')?;
    let unescape = |s: &str| {
        let url = reqwest::Url::parse(&format!("http://x/?v={s}")).ok()?;
        url.query_pairs().next().map(|(_, v)| v.into_owned())
    };
    Some((unescape(id)?, unescape(secret)?))
}

fn oauth_error(status: StatusCode, error: &str) -> Response {
    (status, Json(json!({ "error": error }))).into_response()
}

fn random(len: usize) -> String {
    Alphanumeric.sample_string(&mut rand::thread_rng(), len)
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{decode, decode_header, jwk::JwkSet, DecodingKey, Validation};

    const REDIRECT: &str = "http://app.test/callback?from=test";
    const QUERY: &str = "response_type=code&client_id=app&scope=openid%20email&state=a%20b%26c&nonce=n-1&redirect_uri=http%3A%2F%2Fapp.test%2Fcallback%3Ffrom%3Dtest";

    async fn authorize_code(oidc: &FakeOidc) -> String {
        let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none());
        let url = format!("{}/authorize?{QUERY}", oidc.issuer());
        let res = http.build().unwrap().get(url).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::FOUND);
        let location = reqwest::Url::parse(res.headers()[header::LOCATION].to_str().unwrap());
        let q: HashMap<_, _> = location.unwrap().query_pairs().into_owned().collect();
        assert_eq!((&*q["from"], &*q["state"]), ("test", "a b&c"));
        q["code"].clone()
    }

    /// Redeems `code` with client_secret_basic, or client_secret_post if `!basic`.
    async fn exchange(oidc: &FakeOidc, code: &str, secret: &str, basic: bool) -> reqwest::Response {
        let mut form = vec![("grant_type", "authorization_code"), ("code", code)];
        form.push(("redirect_uri", REDIRECT));
        let token = reqwest::Client::new().post(format!("{}/token", oidc.issuer()));
        let token = if basic {
            token.basic_auth("app", Some(secret))
        } else {
            form.extend([("client_id", "app"), ("client_secret", secret)]);
            token
        };
        token.form(&form).send().await.unwrap()
    }

    async fn id_token(oidc: &FakeOidc) -> String {
        let res = exchange(oidc, &authorize_code(oidc).await, "s3cret", true).await;
        let body: Value = res.json().await.unwrap();
        body["id_token"].as_str().unwrap().to_owned()
    }

    async fn verify(oidc: &FakeOidc, token: &str) -> jsonwebtoken::errors::Result<Value> {
        let jwks = reqwest::get(format!("{}/jwks", oidc.issuer()))
            .await
            .unwrap();
        let jwk = jwks.json::<JwkSet>().await.unwrap().keys.remove(0);
        assert_eq!(decode_header(token).unwrap().kid, jwk.common.key_id);
        let mut validation = Validation::new(Algorithm::ES256);
        validation.set_audience(&["app"]);
        validation.set_issuer(&[oidc.issuer()]);
        let key = DecodingKey::from_jwk(&jwk).unwrap();
        decode::<Value>(token, &key, &validation).map(|d| d.claims)
    }

    #[tokio::test]
    async fn a_normal_token_verifies_against_the_jwks_and_a_tampered_one_does_not() {
        let oidc = FakeOidc::start("app", "s3cret").await;
        oidc.set_user("u-42", "ada@example.org", false);
        let claims = verify(&oidc, &id_token(&oidc).await).await.unwrap();
        let expected = json!({"sub": "u-42", "nonce": "n-1", "email": "ada@example.org"});
        for (name, value) in expected.as_object().unwrap() {
            assert_eq!(&claims[name], value);
        }
        assert_eq!(claims["email_verified"], false);
        use Tamper::*;
        for t in [WrongKey, WrongAudience, Expired, WrongIssuer] {
            oidc.set_tamper(t);
            let verified = verify(&oidc, &id_token(&oidc).await).await;
            assert!(verified.is_err(), "{t:?} was accepted");
        }
        oidc.set_tamper(WrongNonce);
        let claims = verify(&oidc, &id_token(&oidc).await).await.unwrap();
        assert_ne!(claims["nonce"], "n-1");
    }

    #[tokio::test]
    async fn codes_are_single_use_and_only_for_the_authenticated_client() {
        let oidc = FakeOidc::start("app", "s3cret").await;
        let code = authorize_code(&oidc).await;
        let status = |r: reqwest::Response| r.status();
        let wrong = exchange(&oidc, &code, "wrong", true).await;
        assert_eq!(status(wrong), StatusCode::UNAUTHORIZED);
        let first = exchange(&oidc, &code, "s3cret", false).await;
        assert_eq!(status(first), StatusCode::OK);
        let reused = exchange(&oidc, &code, "s3cret", true).await;
        assert_eq!(reused.status(), StatusCode::BAD_REQUEST);
        let body: Value = reused.json().await.unwrap();
        assert_eq!(body, json!({"error": "invalid_grant"}));
        let url = format!(
            "{}/authorize?{}",
            oidc.issuer(),
            QUERY.replace("=app", "=x")
        );
        assert_eq!(
            status(reqwest::get(url).await.unwrap()),
            StatusCode::BAD_REQUEST
        );
    }
}
