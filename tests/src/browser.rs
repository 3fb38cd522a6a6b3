//! A person using the web API: a cookie-keeping client that sends the session's CSRF token
//! with every write, as the web UI will.

use reqwest::header::HeaderMap;
use reqwest::{Method, RequestBuilder, Response};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::TestApp;

/// A password every policy check accepts.
pub const PASSWORD: &str = "quartz-Lantern-92-vivid";

/// A browser with its own cookie jar.
pub struct Browser {
    pub http: reqwest::Client,
    pub base: String,
    pub csrf: Option<String>,
    pub user_id: Option<Uuid>,
}

impl Browser {
    pub fn new(base: &str) -> Self {
        Self {
            http: reqwest::Client::builder()
                .cookie_store(true)
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            base: base.to_owned(),
            csrf: None,
            user_id: None,
        }
    }

    /// A request carrying the cookies and, once signed in, the CSRF token.
    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        let mut r = self.http.request(method, format!("{}{path}", self.base));
        if let Some(t) = &self.csrf {
            r = r.header("x-csrf-token", t);
        }
        r
    }

    pub async fn get(&self, path: &str) -> Response {
        self.request(Method::GET, path).send().await.unwrap()
    }

    pub async fn post(&self, path: &str, body: Value) -> Response {
        self.request(Method::POST, path)
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    pub async fn patch(&self, path: &str, body: Value) -> Response {
        self.request(Method::PATCH, path)
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    pub async fn delete(&self, path: &str) -> Response {
        self.request(Method::DELETE, path).send().await.unwrap()
    }

    /// Reads a sign-in answer (`{user_id, csrf_token}`) and keeps the token.
    pub async fn signed_in(&mut self, res: Response) -> Value {
        let status = res.status();
        let body: Value = res.json().await.unwrap();
        assert!(status.is_success(), "sign-in failed: {status} {body}");
        self.csrf = body["csrf_token"].as_str().map(str::to_owned);
        self.user_id = body["user_id"].as_str().and_then(|s| s.parse().ok());
        body
    }

    pub async fn sign_up(&mut self, email: &str) -> Uuid {
        let res = self
            .post(
                "/api/v1/auth/signup",
                json!({"email": email, "password": PASSWORD}),
            )
            .await;
        assert_eq!(res.status(), 201);
        self.signed_in(res).await;
        self.user_id.unwrap()
    }

    pub async fn log_in(&self, email: &str, password: &str) -> Response {
        self.post(
            "/api/v1/auth/login",
            json!({"email": email, "password": password}),
        )
        .await
    }
}

/// The session cookie value a response sets, if any.
pub fn session_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|c| c.strip_prefix("mauntic_session="))
        .map(|c| c.split(';').next().unwrap_or("").to_owned())
}

impl TestApp {
    /// A browser pointed at this application.
    pub fn browser(&self) -> Browser {
        Browser::new(&self.base)
    }

    /// A signed-up user who founded an organization named `org`: (browser, org id).
    pub async fn founder(&self, email: &str, org: &str) -> (Browser, Uuid) {
        let mut b = self.browser();
        b.sign_up(email).await;
        let res = b.post("/api/v1/organizations", json!({"name": org})).await;
        assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
        let (id, _) = crate::accepted(res).await;
        (b, id)
    }

    /// Adds `user` to `org` with `role` directly (as an operator would).
    pub async fn add_member(
        &self,
        org: Uuid,
        user: Uuid,
        email: &str,
        role: domain::identity::Role,
    ) {
        use domain::identity::organization::OrganizationCommand;
        let cmd = OrganizationCommand::AddMember {
            user_id: user,
            email: domain::EmailAddress::parse(email).unwrap(),
            role,
        };
        let meta = event_store::EventMetadata {
            tenant_id: Some(org),
            actor: Some("system:test".into()),
            ..Default::default()
        };
        self.admin
            .identity
            .organizations
            .executor()
            .execute(org, org, cmd, &meta)
            .await
            .unwrap();
    }

    /// A signed-up user who is a member of `org` with `role`, working in it.
    pub async fn member(&self, org: Uuid, email: &str, role: domain::identity::Role) -> Browser {
        let mut b = self.browser();
        let user = b.sign_up(email).await;
        self.add_member(org, user, email, role).await;
        let res = b
            .post("/api/v1/me/organization", json!({"organization_id": org}))
            .await;
        assert_eq!(res.status(), 204, "{}", res.text().await.unwrap());
        b
    }
}
