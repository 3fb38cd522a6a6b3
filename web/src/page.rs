//! Rendering pages, failures shown as pages, and form errors kept beside their fields.

use std::collections::BTreeMap;

use askama::Template;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use commands::identity::accounts::AccountsError;
use commands::Invalid;

/// What the frame of every page shows: the title, where in the navigation, who is signed
/// in where, the CSRF token forms post, and which buttons the role may see.
#[derive(Debug, Clone, Default)]
pub struct Frame {
    pub title: String,
    /// The navigation entry to mark as current (`contacts`, `home`, …); empty for none.
    pub section: &'static str,
    pub email: Option<String>,
    pub organization: Option<String>,
    pub role: Option<&'static str>,
    pub csrf: String,
    pub can_write: bool,
    pub can_manage: bool,
    /// The organization the session works in.
    pub organization_id: Option<uuid::Uuid>,
    /// Every organization the user belongs to (for the switcher).
    pub organizations: Vec<(uuid::Uuid, String)>,
}

impl Frame {
    /// The frame of a page shown before signing in.
    pub fn public(title: impl Into<String>) -> Self {
        Self {
            title: title.into(),
            ..Self::default()
        }
    }

    /// The URL of an embedded asset.
    pub fn asset(&self, name: &str) -> String {
        crate::assets::url(name)
    }

    /// Whether the session works in organization `id`.
    pub fn works_in(&self, id: &uuid::Uuid) -> bool {
        self.organization_id == Some(*id)
    }

    /// Whether `section` is the current one (for `aria-current`).
    pub fn current(&self, section: &str) -> bool {
        self.section == section
    }
}

/// The page `t`, or the error page if it cannot be rendered.
pub fn render<T: Template>(t: &T) -> Response {
    render_with(StatusCode::OK, t)
}

/// The page `t` with `status` (422 for a form sent back with its errors).
pub fn render_with<T: Template>(status: StatusCode, t: &T) -> Response {
    match t.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(e) => PageError::internal(&e).into_response(),
    }
}

/// Why a field of a form was refused, by the field's name in the form.
#[derive(Debug, Clone, Default)]
pub struct FieldErrors {
    by_field: BTreeMap<String, String>,
    /// What concerns no one field (shown above the form).
    pub general: Option<String>,
}

impl FieldErrors {
    pub fn none() -> Self {
        Self::default()
    }

    /// A message about the form as a whole.
    pub fn general(message: impl Into<String>) -> Self {
        Self {
            by_field: BTreeMap::new(),
            general: Some(message.into()),
        }
    }

    /// The reason `field` was refused, if it was (or one of its parts: `tags[2]`, `rule/all/0/field`).
    pub fn get(&self, field: &str) -> Option<&str> {
        self.by_field
            .iter()
            .find(|(k, _)| {
                k.strip_prefix(field)
                    .is_some_and(|rest| rest.is_empty() || rest.starts_with(['[', '.', '/']))
            })
            .map(|(_, v)| v.as_str())
    }

    /// The reason given for exactly `field` (not its parts).
    pub fn exact(&self, field: &str) -> Option<&str> {
        self.by_field.get(field).map(String::as_str)
    }

    pub fn set(&mut self, field: impl Into<String>, reason: impl Into<String>) {
        self.by_field.insert(field.into(), reason.into());
    }

    pub fn is_empty(&self) -> bool {
        self.by_field.is_empty() && self.general.is_none()
    }
}

impl From<&Invalid> for FieldErrors {
    fn from(e: &Invalid) -> Self {
        let mut errors = Self::none();
        for v in &e.0 {
            errors.set(v.field.clone(), v.reason.clone());
        }
        errors
    }
}

/// A request the console cannot answer with the page asked for.
#[derive(Debug, thiserror::Error)]
pub enum PageError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Forbidden(String),
    /// Something of ours failed; the cause was logged, the page says to retry.
    #[error("something went wrong on our side")]
    Internal,
}

impl PageError {
    /// A failure of ours: logged whole, shown as a page that says to retry.
    pub fn internal(e: &(dyn std::error::Error + 'static)) -> Self {
        tracing::error!(cause = %commands::error::chain(e), "console page failed");
        Self::Internal
    }
}

impl From<sqlx::Error> for PageError {
    fn from(e: sqlx::Error) -> Self {
        Self::internal(&e)
    }
}

impl From<AccountsError> for PageError {
    fn from(e: AccountsError) -> Self {
        Self::internal(&e)
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    frame: Frame,
    status: u16,
    message: String,
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let (status, message) = match &self {
            PageError::NotFound(m) => (StatusCode::NOT_FOUND, m.clone()),
            PageError::Forbidden(m) => (StatusCode::FORBIDDEN, m.clone()),
            PageError::Internal => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "Something went wrong on our side. Nothing was lost; try again in a moment."
                    .to_owned(),
            ),
        };
        let page = ErrorPage {
            frame: Frame::public(status.canonical_reason().unwrap_or("Error")),
            status: status.as_u16(),
            message,
        };
        match page.render() {
            Ok(html) => (status, Html(html)).into_response(),
            Err(_) => (status, self.to_string()).into_response(),
        }
    }
}

/// An event type as words: `ContactTagged` → `Contact tagged`.
pub fn humanized(event_type: &str) -> String {
    let mut out = String::new();
    for (i, ch) in event_type.chars().enumerate() {
        if ch.is_uppercase() && i > 0 {
            out.push(' ');
            out.extend(ch.to_lowercase());
        } else {
            out.push(ch);
        }
    }
    out
}

/// How a form shows a command's refusal: bad fields next to themselves, a rule of the
/// aggregate or a lost race above the form (`what` names what changed meanwhile), a failure
/// of ours as the error page.
pub fn command_errors<E: std::error::Error + 'static>(
    e: commands::CommandError<E>,
    what: &str,
) -> Result<(StatusCode, FieldErrors), PageError> {
    use commands::CommandError as C;
    match e {
        C::Invalid(i) => Ok((StatusCode::UNPROCESSABLE_ENTITY, FieldErrors::from(&i))),
        C::Rejected(r) => Ok((StatusCode::CONFLICT, FieldErrors::general(r.to_string()))),
        C::Conflict => Ok((
            StatusCode::CONFLICT,
            FieldErrors::general(format!("The {what} changed meanwhile; try again.")),
        )),
        C::Technical(t) => Err(PageError::internal(t.as_ref())),
    }
}

/// Whether HTMX asks for a part of the page (not a history restore, which needs it whole).
pub fn wants_partial(headers: &axum::http::HeaderMap) -> bool {
    headers.contains_key("hx-request") && !headers.contains_key("hx-history-restore-request")
}

/// A page token for lists ordered by `(time, id)`.
pub fn time_key(at: chrono::DateTime<chrono::Utc>, id: uuid::Uuid) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{}|{id}", at.to_rfc3339()))
}

/// The `(time, id)` of a page token; `None` for anything else.
pub fn parse_time_key(token: &str) -> Option<(chrono::DateTime<chrono::Utc>, uuid::Uuid)> {
    use base64::Engine;
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token.trim())
        .ok()?;
    let raw = String::from_utf8(raw).ok()?;
    let (at, id) = raw.split_once('|')?;
    Some((
        chrono::DateTime::parse_from_rfc3339(at)
            .ok()?
            .with_timezone(&chrono::Utc),
        uuid::Uuid::parse_str(id).ok()?,
    ))
}
