use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The channel a template sends on (fixed when the template is created), and so the channel
/// of every message made from it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    #[default]
    Email,
    Sms,
    Push,
    Webhook,
}

impl Channel {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Email => "email",
            Self::Sms => "sms",
            Self::Push => "push",
            Self::Webhook => "webhook",
        }
    }
}

/// What one version of a template holds. Every text is a Handlebars template.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "channel", rename_all = "snake_case")]
pub enum Content {
    Email {
        subject: String,
        #[serde(default)]
        preheader: Option<String>,
        html: String,
        /// The text part; derived from `html` when the author gave none.
        text: String,
        /// Whether `text` was derived from `html`.
        #[serde(default)]
        text_derived: bool,
    },
    Sms {
        body: String,
    },
    Push {
        title: String,
        body: String,
        /// Key → template, sent as the notification's data.
        #[serde(default)]
        data: BTreeMap<String, String>,
    },
    Webhook {
        /// GET, POST, PUT, PATCH or DELETE (not a template).
        method: String,
        url: String,
        #[serde(default)]
        headers: BTreeMap<String, String>,
        #[serde(default)]
        body: Option<String>,
    },
}

impl Content {
    pub fn channel(&self) -> Channel {
        match self {
            Self::Email { .. } => Channel::Email,
            Self::Sms { .. } => Channel::Sms,
            Self::Push { .. } => Channel::Push,
            Self::Webhook { .. } => Channel::Webhook,
        }
    }

    /// Every templated part by name (`subject`, `html`, `data.<key>`, `headers.<name>` …),
    /// and whether it is HTML (escaped) or text.
    pub fn parts(&self) -> Vec<(String, &str, bool)> {
        let mut out = Vec::new();
        match self {
            Self::Email {
                subject,
                preheader,
                html,
                text,
                ..
            } => {
                out.push(("subject".to_owned(), subject.as_str(), false));
                if let Some(p) = preheader {
                    out.push(("preheader".to_owned(), p.as_str(), false));
                }
                out.push(("html".to_owned(), html.as_str(), true));
                out.push(("text".to_owned(), text.as_str(), false));
            }
            Self::Sms { body } => out.push(("body".to_owned(), body.as_str(), false)),
            Self::Push { title, body, data } => {
                out.push(("title".to_owned(), title.as_str(), false));
                out.push(("body".to_owned(), body.as_str(), false));
                for (k, v) in data {
                    out.push((format!("data.{k}"), v.as_str(), false));
                }
            }
            Self::Webhook {
                url, headers, body, ..
            } => {
                out.push(("url".to_owned(), url.as_str(), false));
                for (k, v) in headers {
                    out.push((format!("headers.{k}"), v.as_str(), false));
                }
                if let Some(b) = body {
                    out.push(("body".to_owned(), b.as_str(), false));
                }
            }
        }
        out
    }
}

/// Content that compiled and refers only to values the render context provides: made only
/// by [`crate::template::render::check`], so a saved version always renders.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CheckedContent(pub(crate) Content);

impl CheckedContent {
    pub fn content(&self) -> &Content {
        &self.0
    }

    pub fn into_content(self) -> Content {
        self.0
    }
}

impl Content {
    /// Email content; the text part is derived from the HTML when `text` is absent or blank.
    pub fn email(
        subject: String,
        preheader: Option<String>,
        html: String,
        text: Option<String>,
    ) -> Self {
        let (text, text_derived) = match text.filter(|t| !t.trim().is_empty()) {
            Some(t) => (t, false),
            None => (super::text::from_html(&html), true),
        };
        Self::Email {
            subject,
            preheader: preheader.filter(|p| !p.trim().is_empty()),
            html,
            text,
            text_derived,
        }
    }
}
