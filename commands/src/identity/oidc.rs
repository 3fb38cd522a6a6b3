//! Sign in with an OpenID Connect provider (authorization code flow). The provider's
//! discovery document and keys are read on first use; the id token's signature, issuer,
//! audience, expiry and nonce are checked; the `state` is single-use, expires, and is bound
//! to the browser by a cookie (no login CSRF).

use http_kit::ApiQuery;
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use domain::identity::user::{UserCommand, PLATFORM_TENANT};
use domain::EmailAddress;
use event_store::reservation::{self, Holder, Scope};
use http_kit::{secret, Problem};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use tokio::sync::{Mutex, OnceCell};
use uuid::Uuid;

use super::config::OidcConfig;
use super::support;
use crate::context::UserContext;
use crate::CommandState;

const STATE_COOKIE: &str = "mauntic_oidc_state";
const STATE_TTL: Duration = Duration::from_secs(600);

#[derive(Debug, Clone, Deserialize)]
struct Discovery {
    authorization_endpoint: String,
    token_endpoint: String,
    jwks_uri: String,
}

/// A configured provider.
pub struct OidcClient {
    config: OidcConfig,
    redirect_uri: String,
    http: reqwest::Client,
    discovery: OnceCell<Discovery>,
    keys: Mutex<Option<JwkSet>>,
}

#[derive(Debug, Deserialize)]
struct IdClaims {
    sub: String,
    email: Option<String>,
    email_verified: Option<bool>,
    nonce: Option<String>,
    name: Option<String>,
}

fn failed(detail: impl Into<String>) -> Problem {
    Problem::new(
        StatusCode::UNAUTHORIZED,
        "oidc-failed",
        "Sign-in with the provider failed",
    )
    .detail(detail)
}

impl OidcClient {
    pub fn new(config: OidcConfig, public_url: &str) -> Self {
        Self {
            redirect_uri: format!(
                "{}/api/v1/auth/oidc/callback",
                public_url.trim_end_matches('/')
            ),
            config,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap_or_default(),
            discovery: OnceCell::new(),
            keys: Mutex::new(None),
        }
    }

    async fn discovery(&self) -> Result<&Discovery, Problem> {
        self.discovery
            .get_or_try_init(|| async {
                let url = format!(
                    "{}/.well-known/openid-configuration",
                    self.config.issuer.trim_end_matches('/')
                );
                let r = self
                    .http
                    .get(&url)
                    .send()
                    .await
                    .and_then(|r| r.error_for_status());
                match r {
                    Ok(r) => r
                        .json::<Discovery>()
                        .await
                        .map_err(|e| Problem::from_internal(&e)),
                    Err(e) => Err(Problem::from_internal(&e)),
                }
            })
            .await
    }

    /// The provider's key for `kid`, fetching the key set again once if it is unknown.
    async fn key(&self, kid: Option<&str>) -> Result<DecodingKey, Problem> {
        let mut keys = self.keys.lock().await;
        for refresh in [false, true] {
            if refresh || keys.is_none() {
                let url = &self.discovery().await?.jwks_uri;
                let set: JwkSet = self
                    .http
                    .get(url)
                    .send()
                    .await
                    .and_then(|r| r.error_for_status())
                    .map_err(|e| Problem::from_internal(&e))?
                    .json()
                    .await
                    .map_err(|e| Problem::from_internal(&e))?;
                *keys = Some(set);
            }
            let found = keys.as_ref().and_then(|set| match kid {
                Some(k) => set.find(k).cloned(),
                None => set.keys.first().cloned(),
            });
            if let Some(jwk) = found {
                return DecodingKey::from_jwk(&jwk).map_err(|e| failed(e.to_string()));
            }
        }
        Err(failed("the token's key is not among the provider's keys"))
    }

    fn verify(&self, token: &str, key: &DecodingKey, alg: Algorithm) -> Result<IdClaims, Problem> {
        let mut v = Validation::new(alg);
        v.set_audience(&[&self.config.client_id]);
        v.set_issuer(&[self.config.issuer.trim_end_matches('/')]);
        v.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        jsonwebtoken::decode::<IdClaims>(token, key, &v)
            .map(|d| d.claims)
            .map_err(|e| failed(format!("the id token was refused: {e}")))
    }
}

fn client(s: &CommandState) -> Result<&OidcClient, Problem> {
    s.identity.oidc.as_deref().ok_or_else(|| {
        Problem::new(
            StatusCode::NOT_FOUND,
            "oidc-not-configured",
            "Not configured",
        )
        .detail("no OpenID Connect provider is configured (MAUNTIC_OIDC_ISSUER)")
    })
}

/// Start signing in with the OpenID Connect provider: redirects to it.
#[utoipa::path(get, path = "/api/v1/auth/oidc/start", tag = "auth",
    responses(
        (status = 303, description = "To the provider's authorization page"),
        (status = 404, description = "No provider configured", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn start(State(s): State<CommandState>, jar: CookieJar) -> Result<Response, Problem> {
    let oidc = client(&s)?;
    let d = oidc.discovery().await?;
    let state = secret::random_hex(32);
    let nonce = secret::random_hex(32);
    sqlx::query("INSERT INTO oidc_logins (state_hash, nonce, expires_at) VALUES ($1, $2, $3)")
        .bind(secret::digest_bytes(&state))
        .bind(&nonce)
        .bind(s.auth.clock.now() + super::config::chrono(STATE_TTL))
        .execute(&s.pool)
        .await
        .map_err(|e| Problem::from_internal(&e))?;
    let mut url =
        reqwest::Url::parse(&d.authorization_endpoint).map_err(|e| Problem::from_internal(&e))?;
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", &oidc.config.client_id)
        .append_pair("redirect_uri", &oidc.redirect_uri)
        .append_pair("scope", "openid email profile")
        .append_pair("state", &state)
        .append_pair("nonce", &nonce);
    let cookie = Cookie::build((STATE_COOKIE, state))
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(s.auth.sessions.config.secure)
        .path("/api/v1/auth/oidc")
        .build();
    Ok((jar.add(cookie), Redirect::to(url.as_str())).into_response())
}

/// What the provider sends back.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Callback {
    pub code: Option<String>,
    pub state: Option<String>,
    pub error: Option<String>,
}

#[derive(Debug, Deserialize)]
struct TokenAnswer {
    id_token: String,
}

/// The provider redirects here; the user is signed in (and created on first sign-in).
#[utoipa::path(get, path = "/api/v1/auth/oidc/callback", tag = "auth", params(Callback),
    responses(
        (status = 303, description = "Signed in (session cookie set); to the application"),
        (status = 401, description = "The provider's answer was refused", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No provider configured", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn callback(
    State(s): State<CommandState>,
    ctx: UserContext,
    jar: CookieJar,
    ApiQuery(q): ApiQuery<Callback>,
) -> Result<Response, Problem> {
    let oidc = client(&s)?;
    if let Some(e) = q.error {
        return Err(failed(format!("the provider answered {e}")));
    }
    let (Some(code), Some(state)) = (q.code, q.state) else {
        return Err(failed("code and state are required"));
    };
    let bound = jar.get(STATE_COOKIE).map(|c| c.value().to_owned());
    if bound.as_deref() != Some(state.as_str()) {
        return Err(failed("the sign-in was not started in this browser"));
    }
    let nonce: Option<(String,)> = sqlx::query_as(
        "DELETE FROM oidc_logins WHERE state_hash = $1 AND expires_at > $2 RETURNING nonce",
    )
    .bind(secret::digest_bytes(&state))
    .bind(s.auth.clock.now())
    .fetch_optional(&s.pool)
    .await
    .map_err(|e| Problem::from_internal(&e))?;
    let Some((nonce,)) = nonce else {
        return Err(failed(
            "the sign-in expired or was already used; start again",
        ));
    };
    let d = oidc.discovery().await?;
    let answer = oidc
        .http
        .post(&d.token_endpoint)
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", oidc.redirect_uri.as_str()),
            ("client_id", oidc.config.client_id.as_str()),
            ("client_secret", oidc.config.client_secret.as_str()),
        ])
        .send()
        .await
        .map_err(|e| Problem::from_internal(&e))?;
    if !answer.status().is_success() {
        return Err(failed(format!(
            "the token endpoint answered {}",
            answer.status()
        )));
    }
    let TokenAnswer { id_token } = answer.json().await.map_err(|e| failed(e.to_string()))?;
    let header = jsonwebtoken::decode_header(&id_token).map_err(|e| failed(e.to_string()))?;
    use Algorithm::*;
    if !matches!(
        header.alg,
        RS256 | RS384 | RS512 | PS256 | PS384 | PS512 | ES256 | ES384 | EdDSA
    ) {
        return Err(failed("the id token's algorithm is not allowed"));
    }
    let key = oidc.key(header.kid.as_deref()).await?;
    let claims = oidc.verify(&id_token, &key, header.alg)?;
    if claims.nonce.as_deref() != Some(nonce.as_str()) {
        return Err(failed("the id token's nonce does not match"));
    }
    let user = find_or_create(&s, &ctx, oidc, &claims).await?;
    let jar = jar.remove(
        Cookie::build(STATE_COOKIE)
            .path("/api/v1/auth/oidc")
            .build(),
    );
    let signed = s
        .identity
        .accounts
        .open(support::presented(&jar), user, &ctx.client)
        .await?;
    let mut res = support::signed_in(&s, jar, signed);
    *res.status_mut() = StatusCode::SEE_OTHER;
    let home = format!("{}/", s.identity.config.public_url.trim_end_matches('/'));
    if let Ok(v) = HeaderValue::from_str(&home) {
        res.headers_mut().insert(header::LOCATION, v);
    }
    Ok(res)
}

/// The user this provider subject is: linked before, or the verified email's account
/// (linked now), or a new account.
async fn find_or_create(
    s: &CommandState,
    ctx: &UserContext,
    oidc: &OidcClient,
    c: &IdClaims,
) -> Result<Uuid, Problem> {
    let subject = format!("{} {}", oidc.config.issuer.trim_end_matches('/'), c.sub);
    let internal = |e: event_store::StoreError| Problem::from_internal(&e);
    if let Some(h) = reservation::lookup(&s.pool, Scope::OidcSubject, &subject)
        .await
        .map_err(internal)?
    {
        return Ok(h.owner_id);
    }
    let email = match (&c.email, c.email_verified) {
        (Some(e), Some(true)) => EmailAddress::parse(e).map_err(|e| failed(e.to_string()))?,
        _ => {
            return Err(Problem::new(
                StatusCode::FORBIDDEN,
                "oidc-email-unverified",
                "Email not verified",
            )
            .detail("the provider did not vouch for an email address"))
        }
    };
    let meta = ctx.in_tenant(PLATFORM_TENANT);
    let fresh = Uuid::now_v7();
    let me = Holder {
        tenant_id: PLATFORM_TENANT,
        owner_id: fresh,
    };
    let command = UserCommand::SignUp {
        email: email.clone(),
        name: c
            .name
            .as_deref()
            .and_then(|n| super::body::person_name(Some(n)).ok().flatten()),
        has_password: false,
        verification: None,
    };
    let created = support::reserved(&s.pool, Scope::UserEmail, email.as_str(), me, || async {
        s.identity
            .users
            .execute(PLATFORM_TENANT, fresh, command, &meta)
            .await
            .map_err(Problem::from)
    })
    .await?;
    // A new account, or the existing account of this verified email, linked now.
    let user = created.map_or_else(|existing| existing.owner_id, |_| fresh);
    let link = UserCommand::LinkOidc {
        issuer: oidc.config.issuer.trim_end_matches('/').to_owned(),
        subject: c.sub.clone(),
    };
    s.identity
        .users
        .execute(PLATFORM_TENANT, user, link, &meta)
        .await?;
    reservation::claim(
        &s.pool,
        Scope::OidcSubject,
        &subject,
        Holder {
            tenant_id: PLATFORM_TENANT,
            owner_id: user,
        },
    )
    .await
    .map_err(internal)?;
    Ok(user)
}
