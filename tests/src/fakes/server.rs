//! What every fake shares: the failures it can be told to answer with, the record of what it
//! received, and the server task (stopped when the fake is dropped).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

/// How a fake answers a request it was told to fail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// 429, with `Retry-After: <seconds>` when given, and the provider's throttling body.
    Throttle { retry_after: Option<Duration> },
    /// 500 (SES, SendGrid, Mailgun, Postmark all answer their internal errors so).
    ServerError,
    /// The provider's refusal of the request (400, Postmark 422) with its error body
    /// carrying `message`.
    Rejected { message: String },
    /// No answer for this long (then a success), to exercise the client's timeout.
    Hang(Duration),
}

/// One request as the fake received it, and the status it answered.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: String,
    /// Path and query.
    pub uri: String,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
    /// The fields of a multipart or urlencoded form, in order (Mailgun).
    pub form: Vec<(String, String)>,
    pub status: u16,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The body as JSON (panics if it is not).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }

    /// Every value of form field `name`.
    pub fn fields(&self, name: &str) -> Vec<&str> {
        self.form
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The one value of form field `name`.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields(name).first().copied()
    }
}

/// The state behind a fake's routes.
#[derive(Default)]
pub struct Shared {
    received: Mutex<Vec<Received>>,
    failures: Mutex<VecDeque<Failure>>,
    next_id: Mutex<u64>,
}

impl Shared {
    pub fn record(&self, received: Received) {
        self.received.lock().unwrap().push(received);
    }

    pub fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    pub fn fail_next(&self, n: usize, failure: Failure) {
        let mut failures = self.failures.lock().unwrap();
        failures.extend(std::iter::repeat_n(failure, n));
    }

    /// The failure to answer this request with, if one is queued.
    pub fn take_failure(&self) -> Option<Failure> {
        self.failures.lock().unwrap().pop_front()
    }

    /// A fresh number for the provider's message id.
    pub fn next_id(&self) -> u64 {
        let mut id = self.next_id.lock().unwrap();
        *id += 1;
        *id
    }
}

/// A fake's server: its base URL, its state, its task.
pub struct Running {
    pub base_url: String,
    pub shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl Running {
    /// Serves `router` (built over `shared`) on 127.0.0.1:0.
    pub async fn start(shared: Arc<Shared>, router: axum::Router) -> Running {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base_url = format!("http://{}", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Running {
            base_url,
            shared,
            task,
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A JSON answer with extra headers.
pub fn json(status: StatusCode, headers: &[(&str, String)], body: serde_json::Value) -> Response {
    let mut response = (status, axum::Json(body)).into_response();
    for (name, value) in headers {
        response.headers_mut().insert(
            axum::http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            value.parse().unwrap(),
        );
    }
    response
}

/// `Retry-After` for a throttle, if it has one.
pub fn retry_after_header(retry_after: Option<Duration>) -> Vec<(&'static str, String)> {
    retry_after
        .map(|d| vec![("retry-after", d.as_secs().to_string())])
        .unwrap_or_default()
}
