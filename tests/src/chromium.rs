//! A real browser for the console's tests: Debian's Chromium, headless, driven through
//! chromedriver over WebDriver (fantoccini). One browser per test, on its own driver port.
//!
//! Waiting is on conditions (an element, a text), never on time. A failed expectation saves
//! a screenshot under `target/screenshots/` before it panics.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};
use tokio::process::{Child, Command};

/// How long a page may take to show what a test expects (the suite runs in parallel).
const PATIENCE: Duration = Duration::from_secs(30);

pub struct Chromium {
    pub client: Client,
    pub base: String,
    _driver: Child,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap()
}

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

impl Chromium {
    /// A headless Chromium, at 1280×900, pointed at `base`.
    pub async fn start(base: &str) -> Self {
        // Another test may have installed it already; either way ring is the provider.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let port = free_port();
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run chromedriver (run scripts/services-up): {e}"));
        let deadline = Instant::now() + Duration::from_secs(20);
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            assert!(Instant::now() < deadline, "chromedriver did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": "/usr/bin/chromium",
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                         "--disable-dev-shm-usage", "--window-size=1280,900", "--lang=en-US"],
            }),
        );
        let client = ClientBuilder::rustls()
            .unwrap()
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .unwrap_or_else(|e| panic!("cannot start Chromium through chromedriver: {e}"));
        Self {
            client,
            base: base.to_owned(),
            _driver: driver,
        }
    }

    pub async fn open(&self, path: &str) {
        self.client
            .goto(&format!("{}{path}", self.base))
            .await
            .unwrap();
    }

    /// The path (and query) of the page shown.
    pub async fn path(&self) -> String {
        let url = self.client.current_url().await.unwrap();
        match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_owned(),
        }
    }

    /// Types `value` into the input with id `id` (clearing it first).
    pub async fn fill(&self, id: &str, value: &str) {
        // The page may be replaced between finding the input and typing: find it again.
        let deadline = Instant::now() + PATIENCE;
        loop {
            let input = self.find(&format!("#{id}")).await;
            let typed = match input.clear().await {
                Ok(()) => input.send_keys(value).await,
                Err(e) => Err(e),
            };
            match typed {
                Ok(()) => return,
                Err(e) if Instant::now() > deadline => {
                    self.fail(&format!("#{id} could not be filled: {e}")).await
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }

    /// Chooses the option with value `value` in the select with id `id`.
    pub async fn choose(&self, id: &str, value: &str) {
        let select = self.find(&format!("#{id}")).await;
        select.select_by_value(value).await.unwrap();
    }

    /// The text of the element `css`.
    pub async fn text_of(&self, css: &str) -> String {
        self.find(css).await.text().await.unwrap()
    }

    /// Opens `path` again and again until `css`'s text is `expected` (what a person does
    /// while a background job fills a page).
    pub async fn reload_until(&self, path: &str, css: &str, expected: &str) {
        let deadline = Instant::now() + PATIENCE;
        loop {
            self.open(path).await;
            let shown = self.text_of(css).await;
            if shown.trim() == expected {
                return;
            }
            if Instant::now() > deadline {
                self.fail(&format!("{css} shows {shown:?}, never {expected:?}"))
                    .await;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Clicks the button (or link styled as one) whose text is `text`.
    pub async fn press(&self, text: &str) {
        let xpath =
            format!("//button[normalize-space()='{text}'] | //a[normalize-space()='{text}']");
        self.wait_for(Locator::XPath(&xpath), &format!("a button {text:?}"))
            .await
            .click()
            .await
            .unwrap();
    }

    /// Clicks the element `css` (found again if the page was replaced meanwhile).
    pub async fn find_and_click(&self, css: &str) {
        let deadline = Instant::now() + PATIENCE;
        loop {
            match self.find(css).await.click().await {
                Ok(()) => return,
                Err(e) if Instant::now() > deadline => {
                    self.fail(&format!("{css} could not be clicked: {e}")).await
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }

    /// Clicks the element `css` and waits for the page it leads to (its URL differs).
    pub async fn click_and_follow(&self, css: &str) {
        let before = self.client.current_url().await.unwrap();
        self.find_and_click(css).await;
        let deadline = Instant::now() + PATIENCE;
        while self.client.current_url().await.ok().as_ref() == Some(&before) {
            if Instant::now() > deadline {
                self.fail(&format!("clicking {css} led nowhere")).await;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Clicks the button whose `value` is `value` (one of several with the same text).
    pub async fn press_value(&self, value: &str) {
        self.find(&format!("button[value='{value}']"))
            .await
            .click()
            .await
            .unwrap();
    }

    /// Whether a button or link with this text is on the page now.
    pub async fn has_button(&self, text: &str) -> bool {
        let xpath =
            format!("//button[normalize-space()='{text}'] | //a[normalize-space()='{text}']");
        !self
            .client
            .find_all(Locator::XPath(&xpath))
            .await
            .unwrap()
            .is_empty()
    }

    async fn find(&self, css: &str) -> fantoccini::elements::Element {
        self.wait_for(Locator::Css(css), css).await
    }

    async fn wait_for(&self, l: Locator<'_>, what: &str) -> fantoccini::elements::Element {
        match self
            .client
            .wait()
            .at_most(PATIENCE)
            .every(Duration::from_millis(50))
            .for_element(l)
            .await
        {
            Ok(e) => e,
            Err(e) => self.fail(&format!("{what} never appeared: {e}")).await,
        }
    }

    /// The text of the page's main part.
    pub async fn text(&self) -> String {
        // A page being replaced answers nothing for a moment: ask again.
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(t) = self.try_text().await {
                return t;
            }
            assert!(Instant::now() < deadline, "the page never settled");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The main part's text (all of the body on a page that is not the console's), or
    /// `None` while the page is being replaced.
    async fn try_text(&self) -> Option<String> {
        let part = match self.client.find(Locator::Css("main")).await {
            Ok(main) => main,
            Err(_) => self.client.find(Locator::Css("body")).await.ok()?,
        };
        part.text().await.ok()
    }

    /// Waits until the page's main part shows `text`.
    pub async fn expect_text(&self, text: &str) {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if self.try_text().await.is_some_and(|t| t.contains(text)) {
                return;
            }
            if Instant::now() > deadline {
                let shown = self.text().await;
                self.fail(&format!(
                    "the page never showed {text:?}; it shows:\n{shown}"
                ))
                .await;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The message shown next to the field with id `id` (`#<id>-error`), and whether the
    /// field is marked invalid for assistive technology.
    pub async fn field_error(&self, id: &str) -> (String, bool) {
        let message = self
            .find(&format!("#{id}-error"))
            .await
            .text()
            .await
            .unwrap();
        let input = self.find(&format!("#{id}")).await;
        let invalid = input.attr("aria-invalid").await.unwrap().as_deref() == Some("true");
        (message, invalid)
    }

    /// Runs axe-core (web/node_modules) on the page: every violation of impact serious or
    /// critical, as `rule: help (where)`.
    pub async fn accessibility_violations(&self) -> Vec<String> {
        let axe = std::fs::read_to_string(workspace().join("web/node_modules/axe-core/axe.min.js"))
            .unwrap_or_else(|e| panic!("axe-core is missing (run scripts/services-up): {e}"));
        self.client.execute(&axe, vec![]).await.unwrap();
        let found = self
            .client
            .execute_async(
                "const done = arguments[arguments.length - 1];
                 axe.run(document, {resultTypes: ['violations']})
                   .then(r => done(r.violations.map(v => ({
                       id: v.id, impact: v.impact, help: v.help,
                       nodes: v.nodes.map(n => n.target.join(' '))}))))
                   .catch(e => done([{id: 'axe-error', impact: 'critical', help: String(e), nodes: []}]));",
                vec![],
            )
            .await
            .unwrap();
        let violations: Vec<Value> = serde_json::from_value(found).unwrap();
        violations
            .iter()
            .filter(|v| matches!(v["impact"].as_str(), Some("serious" | "critical")))
            .map(|v| format!("{}: {} ({})", v["id"], v["help"], v["nodes"]))
            .collect()
    }

    /// Asserts axe-core finds nothing serious or critical on the page `screen`.
    pub async fn assert_accessible(&self, screen: &str) {
        let violations = self.accessibility_violations().await;
        if !violations.is_empty() {
            self.fail(&format!(
                "{screen}: accessibility violations:\n{}",
                violations.join("\n")
            ))
            .await;
        }
    }

    /// Saves a screenshot as `target/screenshots/<name>.png` (and, with
    /// `MAUNTIC_SCREENSHOTS=docs`, as `docs/screenshots/<name>.png` for the README).
    pub async fn screenshot(&self, name: &str) {
        let png = self.client.screenshot().await.unwrap();
        let mut dirs = vec![workspace().join("target/screenshots")];
        if std::env::var("MAUNTIC_SCREENSHOTS").as_deref() == Ok("docs") {
            dirs.push(workspace().join("docs/screenshots"));
        }
        for dir in dirs {
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join(format!("{name}.png")), &png).unwrap();
        }
    }

    async fn fail(&self, message: &str) -> ! {
        let name = format!("failed-{}", uuid::Uuid::now_v7());
        self.screenshot(&name).await;
        let shown = self.try_text().await.unwrap_or_default();
        panic!("{message}\n(screenshot: target/screenshots/{name}.png; the page shows:\n{shown})");
    }

    /// Ends the browser session (the driver stops when dropped).
    pub async fn close(self) {
        let _ = self.client.close().await;
    }
}
