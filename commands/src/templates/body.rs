//! Request bodies of the template routes, and content checked into a domain value.

use std::collections::BTreeMap;

use domain::contact::InvalidValue;
use domain::template::render::PartError;
use domain::template::{Channel, Content};
use http_kit::problem::FieldProblem;
use http_kit::Problem;
use serde::Deserialize;

use crate::Invalid;

/// `POST /api/v1/templates`
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTemplate {
    #[schema(example = "Welcome")]
    pub name: String,
    /// `email`, `sms`, `push` or `webhook`; fixed for the template's life.
    #[schema(value_type = String, example = "email")]
    pub channel: Channel,
}

/// `PATCH /api/v1/templates/{id}`
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RenameTemplate {
    pub name: String,
}

/// `POST /api/v1/templates/{id}/versions`: the parts of the template's channel, each a
/// Handlebars template. Email: `subject`, `html`, optional `preheader` and `text` (derived
/// from `html` when absent). SMS: `body`. Push: `title`, `body`, optional `data`. Webhook:
/// `method`, `url`, optional `headers` and `body`.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SaveVersion {
    pub subject: Option<String>,
    pub preheader: Option<String>,
    pub html: Option<String>,
    pub text: Option<String>,
    pub body: Option<String>,
    pub title: Option<String>,
    pub data: Option<BTreeMap<String, String>>,
    pub method: Option<String>,
    pub url: Option<String>,
    pub headers: Option<BTreeMap<String, String>>,
}

/// Most characters one part may have.
pub const MAX_PART: usize = 512 * 1024;

const METHODS: &[&str] = &["GET", "POST", "PUT", "PATCH", "DELETE"];

impl SaveVersion {
    /// The content for a template of `channel`: every missing, misplaced or oversized part
    /// reported at once.
    pub fn content(self, channel: Channel) -> Result<Content, Invalid> {
        let mut problems = Vec::new();
        let mut need = |name: &str, v: Option<String>| -> String {
            match v {
                Some(v) if !v.trim().is_empty() => v,
                _ => {
                    problems.push(problem(name, "required"));
                    String::new()
                }
            }
        };
        let allowed: &[&str] = match channel {
            Channel::Email => &["subject", "preheader", "html", "text"],
            Channel::Sms => &["body"],
            Channel::Push => &["title", "body", "data"],
            Channel::Webhook => &["method", "url", "headers", "body"],
        };
        let given = [
            ("subject", self.subject.is_some()),
            ("preheader", self.preheader.is_some()),
            ("html", self.html.is_some()),
            ("text", self.text.is_some()),
            ("body", self.body.is_some()),
            ("title", self.title.is_some()),
            ("data", self.data.is_some()),
            ("method", self.method.is_some()),
            ("url", self.url.is_some()),
            ("headers", self.headers.is_some()),
        ];
        let misplaced: Vec<InvalidValue> = given
            .iter()
            .filter(|(name, present)| *present && !allowed.contains(name))
            .map(|(name, _)| problem(name, &format!("not a part of {} content", channel.as_str())))
            .collect();
        let content = match channel {
            Channel::Email => {
                let subject = need("subject", self.subject);
                let html = need("html", self.html);
                Content::email(subject, self.preheader, html, self.text)
            }
            Channel::Sms => Content::Sms {
                body: need("body", self.body),
            },
            Channel::Push => Content::Push {
                title: need("title", self.title),
                body: need("body", self.body),
                data: self.data.unwrap_or_default(),
            },
            Channel::Webhook => {
                let method = need("method", self.method).to_ascii_uppercase();
                let url = need("url", self.url);
                if !method.is_empty() && !METHODS.contains(&method.as_str()) {
                    problems.push(problem("method", "GET, POST, PUT, PATCH or DELETE"));
                }
                Content::Webhook {
                    method,
                    url,
                    headers: self.headers.unwrap_or_default(),
                    body: self.body,
                }
            }
        };
        problems.extend(misplaced);
        for (part, source, _) in content.parts() {
            if source.chars().count() > MAX_PART {
                problems.push(problem(&part, &format!("at most {MAX_PART} characters")));
            }
        }
        if problems.is_empty() {
            Ok(content)
        } else {
            Err(Invalid(problems))
        }
    }
}

fn problem(field: &str, reason: &str) -> InvalidValue {
    InvalidValue::new(field, reason)
}

/// 422 for template errors: `errors` per part, and `template_errors` with line and column.
pub fn template_problem(errors: &[PartError]) -> Problem {
    let fields = errors
        .iter()
        .map(|e| FieldProblem {
            field: e.part.clone(),
            reason: match (e.line, e.column) {
                (Some(l), Some(c)) => format!("line {l}, column {c}: {}", e.message),
                _ => e.message.clone(),
            },
        })
        .collect();
    Problem::invalid_fields(fields).with(
        "template_errors",
        serde_json::to_value(errors).unwrap_or_default(),
    )
}
