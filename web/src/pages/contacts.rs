//! Contacts: the list (filters, keyset pages), one contact, creating and editing.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use commands::contacts::body::{CreateContact, UpdateContact};
use commands::contacts::ContactsError;
use domain::field::FieldDefinition;
use domain::identity::Action;
use domain::ContactId;
use event_store::Cursor;
use http_kit::PathIds;
use projections::contacts::{self as read, ContactFilter, ContactRow};
use serde::Deserialize;
use uuid::Uuid;

use crate::page::{humanized, render, render_with, FieldErrors, Frame, PageError};
use crate::visit::{CsrfForm, Member};
use crate::WebState;

const PAGE: i64 = 50;

/// How a contact form shows a refusal (one mapping, like the API's problem+json one).
fn form_errors(e: ContactsError) -> Result<(StatusCode, FieldErrors), PageError> {
    use ContactsError as E;
    match e {
        E::Invalid(i) => Ok((StatusCode::UNPROCESSABLE_ENTITY, FieldErrors::from(&i))),
        E::EmailTaken { existing } => {
            let mut errors = FieldErrors::none();
            errors.set(
                "email",
                format!("Another contact has this email (contact {existing})."),
            );
            Ok((StatusCode::CONFLICT, errors))
        }
        E::FieldTaken { field, existing } => {
            let mut errors = FieldErrors::none();
            errors.set(
                field,
                format!("Another contact has this value (contact {existing})."),
            );
            Ok((StatusCode::CONFLICT, errors))
        }
        E::Rejected(r) => Ok((StatusCode::CONFLICT, FieldErrors::general(r.to_string()))),
        E::NoSuchCompany => Ok((
            StatusCode::UNPROCESSABLE_ENTITY,
            FieldErrors::general("No such company."),
        )),
        E::Conflict => Ok((
            StatusCode::CONFLICT,
            FieldErrors::general("The contact changed while you edited it; try again."),
        )),
        E::Technical(t) => Err(PageError::internal(t.as_ref())),
    }
}

/// A row of the list, ready to show.
pub struct Row {
    pub id: Uuid,
    pub email: String,
    pub name: String,
    pub tags: Vec<String>,
    pub stage: String,
    pub points: i64,
}

impl From<ContactRow> for Row {
    fn from(c: ContactRow) -> Self {
        Self {
            name: full_name(&c),
            id: c.id,
            email: c.email,
            tags: c.tags,
            stage: c.stage.unwrap_or_default(),
            points: c.points,
        }
    }
}

fn full_name(c: &ContactRow) -> String {
    [c.first_name.as_deref(), c.last_name.as_deref()]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" ")
}

#[derive(Deserialize, Default)]
pub struct ListQuery {
    /// The start of an email.
    #[serde(default)]
    q: String,
    #[serde(default)]
    tag: String,
    #[serde(default)]
    stage: String,
    #[serde(default)]
    after: String,
    /// The cursor of the write that led here (read-your-writes).
    #[serde(default)]
    written: Option<String>,
}

#[derive(Template)]
#[template(path = "contacts/list.html")]
struct ListPage {
    frame: Frame,
    q: String,
    tag: String,
    stage: String,
    rows: Rows,
}

#[derive(Template)]
#[template(path = "contacts/rows.html")]
struct Rows {
    rows: Vec<Row>,
    /// The query string of the next page, if there is one.
    next: Option<String>,
    first_page: bool,
}

/// `GET /contacts`: the whole page, or (to HTMX) only the rows.
pub async fn list(
    State(s): State<WebState>,
    me: Member,
    headers: HeaderMap,
    Query(q): Query<ListQuery>,
) -> Result<Response, PageError> {
    let filter = ContactFilter {
        tag: Some(q.tag.trim().to_owned()).filter(|t| !t.is_empty()),
        stage: Some(q.stage.trim().to_owned()).filter(|t| !t.is_empty()),
        email_prefix: Some(q.q.trim().to_owned()).filter(|t| !t.is_empty()),
        ..ContactFilter::default()
    };
    caught_up(&s, "contacts", q.written.as_deref()).await?;
    let after = URL_SAFE_NO_PAD
        .decode(q.after.trim())
        .ok()
        .and_then(|b| Uuid::from_slice(&b).ok());
    let mut found = read::list_filtered(&s.pool, me.tenant.0, &filter, after, PAGE + 1).await?;
    let next = (found.len() as i64 > PAGE).then(|| {
        found.truncate(PAGE as usize);
        let last = found
            .last()
            .map(|r| r.id.as_bytes().to_vec())
            .unwrap_or_default();
        let mut query = form_query(&[("q", &q.q), ("tag", &q.tag), ("stage", &q.stage)]);
        query.push_str(&format!("&after={}", URL_SAFE_NO_PAD.encode(last)));
        query
    });
    let rows = Rows {
        rows: found.into_iter().map(Row::from).collect(),
        next,
        first_page: after.is_none(),
    };
    if crate::page::wants_partial(&headers) {
        return Ok(render(&rows));
    }
    Ok(render(&ListPage {
        frame: me.frame("Contacts", "contacts"),
        q: q.q,
        tag: q.tag,
        stage: q.stage,
        rows,
    }))
}

fn form_query(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={}", crate::visit::url_encode(v.trim())))
        .collect::<Vec<_>>()
        .join("&")
}

#[derive(Template)]
#[template(path = "contacts/show.html")]
struct ShowPage {
    frame: Frame,
    contact: ContactRow,
    name: String,
    channels: Vec<ChannelState>,
    fields: Vec<(String, String)>,
    timeline: Vec<Moment>,
    /// The read model has not shown the user's latest change yet.
    stale: bool,
    /// A refused action's reasons.
    errors: FieldErrors,
    notes: Vec<projections::notes::NoteRow>,
}

/// Consent and do-not-contact on one channel.
struct ChannelState {
    channel: &'static str,
    consent: String,
    /// `opted_in`, `opted_out` or `unknown`.
    consent_status: String,
    do_not_contact: String,
}

/// One entry of the contact's timeline.
struct Moment {
    at: String,
    at_iso: String,
    what: String,
    by: String,
}

fn channels(c: &ContactRow) -> Vec<ChannelState> {
    ["email", "sms", "push"]
        .into_iter()
        .map(|channel| ChannelState {
            channel,
            consent: c.consent[channel]["status"]
                .as_str()
                .unwrap_or("not given")
                .replace('_', " "),
            consent_status: c.consent[channel]["status"]
                .as_str()
                .unwrap_or("unknown")
                .to_owned(),
            do_not_contact: c.do_not_contact[channel]["reason"]
                .as_str()
                .map(|r| r.replace('_', " "))
                .unwrap_or_default(),
        })
        .collect()
}

fn field_values(c: &ContactRow) -> Vec<(String, String)> {
    let Some(fields) = c.fields.as_object() else {
        return Vec::new();
    };
    fields
        .iter()
        .map(|(k, v)| {
            let shown = match v {
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Array(items) => items
                    .iter()
                    .map(|i| i.as_str().map_or_else(|| i.to_string(), str::to_owned))
                    .collect::<Vec<_>>()
                    .join(", "),
                other => other.to_string(),
            };
            (k.clone(), shown)
        })
        .collect()
}

const TIMELINE: i64 = 50;

#[derive(Deserialize, Default)]
pub struct AfterWrite {
    /// The cursor of the write that led here (read-your-writes).
    after: Option<String>,
}

/// Waits (a little) until the contacts read model shows the write at `after`; false if it
/// has not by then.
pub async fn caught_up(
    s: &WebState,
    projection: &str,
    after: Option<&str>,
) -> Result<bool, PageError> {
    let Some(cursor) = after.and_then(|a| a.parse::<Cursor>().ok()) else {
        return Ok(true);
    };
    projections::status::wait_for(&s.pool, projection, cursor, s.consistency_timeout)
        .await
        .map_err(|e| PageError::internal(&e))
}

/// `GET /contacts/{id}`
pub async fn show(
    State(s): State<WebState>,
    me: Member,
    PathIds(id): PathIds<ContactId>,
    Query(q): Query<AfterWrite>,
) -> Result<Response, PageError> {
    show_page(&s, &me, id, q.after.as_deref(), FieldErrors::none()).await
}

/// The contact's page, after the write at `after` (if any), with `errors` from an action.
async fn show_page(
    s: &WebState,
    me: &Member,
    id: ContactId,
    after: Option<&str>,
    errors: FieldErrors,
) -> Result<Response, PageError> {
    let stale =
        !caught_up(s, "contacts", after).await? | !caught_up(s, "contact_notes", after).await?;
    let contact = read::get(&s.pool, me.tenant.0, id.0).await?;
    let Some(contact) = contact else {
        return Err(PageError::NotFound(if stale {
            "This contact is still being saved; reload the page in a moment.".into()
        } else {
            "No such contact in this organization.".into()
        }));
    };
    let timeline = projections::timeline::page(&s.pool, me.tenant.0, id.0, None, TIMELINE)
        .await?
        .into_iter()
        .map(|t| Moment {
            at: t.recorded_at.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
            at_iso: t.recorded_at.to_rfc3339(),
            what: humanized(&t.event_type),
            by: t.actor.unwrap_or_default(),
        })
        .collect();
    Ok(render(&ShowPage {
        frame: me.frame(contact.email.clone(), "contacts"),
        name: full_name(&contact),
        channels: channels(&contact),
        fields: field_values(&contact),
        timeline,
        notes: projections::notes::of(&s.pool, me.tenant.0, id.0).await?,
        contact,
        stale,
        errors,
    }))
}

/// What the contact form holds, as typed.
#[derive(Deserialize, Default, Clone)]
pub struct ContactForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    first_name: String,
    #[serde(default)]
    last_name: String,
    #[serde(default)]
    phone: String,
    #[serde(default)]
    time_zone: String,
    #[serde(default)]
    locale: String,
    /// Comma-separated.
    #[serde(default)]
    tags: String,
    /// Custom fields as typed, by input name (`fields.<key>`).
    #[serde(flatten)]
    custom: std::collections::BTreeMap<String, String>,
}

/// One custom field's input on the contact form.
pub struct CustomInput {
    /// `fields.<key>`: the form's name, and the name errors come back under.
    name: String,
    /// `field-<key>`: the input's id.
    id: String,
    label: String,
    kind: &'static str,
    value: String,
    options: Vec<String>,
    required: bool,
}

fn custom_inputs(defs: &[FieldDefinition], form: &ContactForm) -> Vec<CustomInput> {
    use domain::field::FieldType as T;
    defs.iter()
        .map(|d| {
            let name = format!("fields.{}", d.key);
            CustomInput {
                id: format!("field-{}", d.key),
                label: d.label.clone(),
                kind: match d.field_type {
                    T::Number => "number",
                    T::Boolean => "boolean",
                    T::Date => "date",
                    T::Select => "select",
                    T::LongText => "textarea",
                    T::Email => "email",
                    T::Url => "url",
                    T::Phone => "tel",
                    _ => "text",
                },
                value: form.custom.get(&name).cloned().unwrap_or_default(),
                options: d.options.clone(),
                required: d.required,
                name,
            }
        })
        .collect()
}

/// A stored value as the form shows it.
fn as_text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Array(items) => items
            .iter()
            .filter_map(|i| i.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        serde_json::Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// The custom fields typed into the form, read by their definitions: (the values, what could
/// not be read). A blank input is absent.
fn typed_fields(
    defs: &[FieldDefinition],
    form: &ContactForm,
) -> (
    serde_json::Map<String, serde_json::Value>,
    Vec<domain::contact::InvalidValue>,
) {
    let mut values = serde_json::Map::new();
    let mut bad = Vec::new();
    for d in defs {
        let raw = form
            .custom
            .get(&format!("fields.{}", d.key))
            .map(|v| v.trim())
            .unwrap_or("");
        if raw.is_empty() {
            values.insert(d.key.clone(), serde_json::Value::Null);
            continue;
        }
        match d.value_from_text(raw) {
            Ok(v) => {
                values.insert(
                    d.key.clone(),
                    serde_json::to_value(v).unwrap_or(serde_json::Value::Null),
                );
            }
            Err(reason) => bad.push(domain::contact::InvalidValue::new(
                format!("fields.{}", d.key),
                reason,
            )),
        }
    }
    (values, bad)
}

/// The validation's refusals and the form's own, as one.
fn with_unreadable<T>(
    checked: Result<T, commands::Invalid>,
    unreadable: Vec<domain::contact::InvalidValue>,
) -> Result<T, commands::Invalid> {
    match (checked, unreadable.is_empty()) {
        (Ok(v), true) => Ok(v),
        (Ok(_), false) => Err(commands::Invalid(unreadable)),
        (Err(mut i), _) => {
            i.0.extend(unreadable);
            Err(i)
        }
    }
}

fn text(v: &str) -> Option<String> {
    Some(v.trim().to_owned()).filter(|v| !v.is_empty())
}

impl ContactForm {
    fn of(c: &ContactRow) -> Self {
        Self {
            email: c.email.clone(),
            first_name: c.first_name.clone().unwrap_or_default(),
            last_name: c.last_name.clone().unwrap_or_default(),
            phone: c.phone.clone().unwrap_or_default(),
            time_zone: c.time_zone.clone().unwrap_or_default(),
            locale: c.locale.clone().unwrap_or_default(),
            tags: c.tags.join(", "),
            custom: c
                .fields
                .as_object()
                .map(|o| {
                    o.iter()
                        .map(|(k, v)| (format!("fields.{k}"), as_text(v)))
                        .collect()
                })
                .unwrap_or_default(),
        }
    }

    /// The API's body for a new contact: the same validation runs on both.
    fn create(&self, fields: serde_json::Map<String, serde_json::Value>) -> CreateContact {
        let fields = fields.into_iter().filter(|(_, v)| !v.is_null()).collect();
        CreateContact {
            email: self.email.trim().to_owned(),
            first_name: text(&self.first_name),
            last_name: text(&self.last_name),
            phone: text(&self.phone),
            time_zone: text(&self.time_zone),
            locale: text(&self.locale),
            fields,
            tags: self.tags.split(',').filter_map(text).collect(),
        }
    }

    /// The API's body for a change: every field of the form is set (blank clears).
    fn update(&self, fields: serde_json::Map<String, serde_json::Value>) -> UpdateContact {
        UpdateContact {
            email: Some(self.email.trim().to_owned()),
            first_name: Some(text(&self.first_name)),
            last_name: Some(text(&self.last_name)),
            phone: Some(text(&self.phone)),
            time_zone: Some(text(&self.time_zone)),
            locale: Some(text(&self.locale)),
            fields,
        }
    }
}

#[derive(Template)]
#[template(path = "contacts/form.html")]
struct FormPage {
    frame: Frame,
    /// `None` for a new contact.
    id: Option<Uuid>,
    form: ContactForm,
    custom: Vec<CustomInput>,
    errors: FieldErrors,
}

/// The organization's field definitions (for the form).
async fn definitions(s: &WebState, me: &Member) -> Result<Vec<FieldDefinition>, PageError> {
    Ok(s.commands
        .fields
        .schema(me.tenant)
        .await
        .map_err(|e| PageError::internal(&e))?
        .fields
        .into_values()
        .collect())
}

impl FormPage {
    /// The text inputs: name, label, value, type, hint.
    fn inputs(&self) -> Vec<(&'static str, &'static str, &str, &'static str, &'static str)> {
        let f = &self.form;
        vec![
            ("email", "Email", f.email.as_str(), "email", ""),
            (
                "first_name",
                "First name",
                f.first_name.as_str(),
                "text",
                "",
            ),
            ("last_name", "Last name", f.last_name.as_str(), "text", ""),
            (
                "phone",
                "Phone",
                f.phone.as_str(),
                "tel",
                "International format, e.g. +44 20 7946 0958",
            ),
            (
                "time_zone",
                "Time zone",
                f.time_zone.as_str(),
                "text",
                "e.g. Europe/Paris; the organization's when blank",
            ),
            ("locale", "Locale", f.locale.as_str(), "text", "e.g. fr-FR"),
        ]
    }
}

/// `GET /contacts/new`
pub async fn new_form(State(s): State<WebState>, me: Member) -> Result<Response, PageError> {
    me.require(Action::Write)?;
    let defs = definitions(&s, &me).await?;
    let form = ContactForm::default();
    Ok(render(&FormPage {
        frame: me.frame("New contact", "contacts"),
        id: None,
        custom: custom_inputs(&defs, &form),
        form,
        errors: FieldErrors::none(),
    }))
}

/// `POST /contacts/new`
pub async fn create(
    State(s): State<WebState>,
    me: Member,
    CsrfForm(f): CsrfForm<ContactForm>,
) -> Result<Response, PageError> {
    me.require(Action::Write)?;
    let defs = definitions(&s, &me).await?;
    let (fields, unreadable) = typed_fields(&defs, &f);
    let outcome = match with_unreadable(f.create(fields).validate(), unreadable) {
        Ok(new) => s.commands.contacts.create(me.tenant, new, &me.meta).await,
        Err(invalid) => Err(invalid.into()),
    };
    match outcome {
        Ok(a) => {
            Ok(Redirect::to(&format!("/contacts/{}?after={}", a.id, a.cursor)).into_response())
        }
        Err(e) => {
            let (status, errors) = form_errors(e)?;
            let page = FormPage {
                frame: me.frame("New contact", "contacts"),
                id: None,
                custom: custom_inputs(&defs, &f),
                form: f,
                errors,
            };
            Ok(render_with(status, &page))
        }
    }
}

/// `GET /contacts/{id}/edit`
pub async fn edit_form(
    State(s): State<WebState>,
    me: Member,
    PathIds(id): PathIds<ContactId>,
) -> Result<Response, PageError> {
    me.require(Action::Write)?;
    let contact = read::get(&s.pool, me.tenant.0, id.0)
        .await?
        .ok_or_else(|| PageError::NotFound("No such contact in this organization.".into()))?;
    let defs = definitions(&s, &me).await?;
    let form = ContactForm::of(&contact);
    Ok(render(&FormPage {
        frame: me.frame(format!("Edit {}", contact.email), "contacts"),
        id: Some(contact.id),
        custom: custom_inputs(&defs, &form),
        form,
        errors: FieldErrors::none(),
    }))
}

/// `POST /contacts/{id}/edit`
pub async fn update(
    State(s): State<WebState>,
    me: Member,
    PathIds(id): PathIds<ContactId>,
    CsrfForm(f): CsrfForm<ContactForm>,
) -> Result<Response, PageError> {
    me.require(Action::Write)?;
    let defs = definitions(&s, &me).await?;
    let (fields, unreadable) = typed_fields(&defs, &f);
    let outcome = match with_unreadable(f.update(fields).validate(), unreadable) {
        Ok(patch) => {
            s.commands
                .contacts
                .update(me.tenant, id, patch, &me.meta)
                .await
        }
        Err(invalid) => Err(invalid.into()),
    };
    match outcome {
        Ok(a) => {
            Ok(Redirect::to(&format!("/contacts/{}?after={}", a.id, a.cursor)).into_response())
        }
        Err(ContactsError::Rejected(domain::contact::ContactError::NotFound)) => Err(
            PageError::NotFound("No such contact in this organization.".into()),
        ),
        Err(e) => {
            let (status, errors) = form_errors(e)?;
            let page = FormPage {
                frame: me.frame(format!("Edit {}", f.email), "contacts"),
                id: Some(id.0),
                custom: custom_inputs(&defs, &f),
                form: f,
                errors,
            };
            Ok(render_with(status, &page))
        }
    }
}

#[derive(Deserialize, Default)]
pub struct TagsForm {
    /// Comma-separated.
    #[serde(default)]
    tags: String,
}

/// Back to the contact after a change to it, waiting for the read model there.
fn to_contact(a: &commands::executor::Accepted) -> Response {
    Redirect::to(&format!("/contacts/{}?after={}", a.id, a.cursor)).into_response()
}

/// A refusal of an action on the contact page, shown on the page it came from.
async fn refused(
    s: &WebState,
    me: &Member,
    id: ContactId,
    e: ContactsError,
) -> Result<Response, PageError> {
    if matches!(
        e,
        ContactsError::Rejected(domain::contact::ContactError::NotFound)
    ) {
        return Err(PageError::NotFound(
            "No such contact in this organization.".into(),
        ));
    }
    let (status, errors) = form_errors(e)?;
    let mut res = show_page(s, me, id, None, errors).await?;
    *res.status_mut() = status;
    Ok(res)
}

/// `POST /contacts/{id}/tags`
pub async fn add_tags(
    State(s): State<WebState>,
    me: Member,
    PathIds(id): PathIds<ContactId>,
    CsrfForm(f): CsrfForm<TagsForm>,
) -> Result<Response, PageError> {
    me.require(Action::Write)?;
    let body = commands::contacts::body::AddTags {
        tags: f.tags.split(',').filter_map(text).collect(),
    };
    let outcome = match body.validate() {
        Ok(tags) => {
            s.commands
                .contacts
                .add_tags(me.tenant, id, tags, &me.meta)
                .await
        }
        Err(i) => Err(i.into()),
    };
    match outcome {
        Ok(a) => Ok(to_contact(&a)),
        Err(e) => refused(&s, &me, id, e).await,
    }
}

#[derive(Deserialize)]
pub struct TagForm {
    tag: String,
}

/// `POST /contacts/{id}/tags/remove`
pub async fn remove_tag(
    State(s): State<WebState>,
    me: Member,
    PathIds(id): PathIds<ContactId>,
    CsrfForm(f): CsrfForm<TagForm>,
) -> Result<Response, PageError> {
    let command = domain::contact::Tag::parse(&f.tag)
        .map(domain::contact::ContactCommand::RemoveTag)
        .map_err(commands::Invalid::from);
    act(&s, &me, id, command).await
}

#[derive(Template)]
#[template(path = "contacts/erase.html")]
struct ErasePage {
    frame: Frame,
    contact: ContactRow,
}

/// `GET /contacts/{id}/erase`: what erasing means, and the button.
pub async fn erase_form(
    State(s): State<WebState>,
    me: Member,
    PathIds(id): PathIds<ContactId>,
) -> Result<Response, PageError> {
    me.require(Action::Write)?;
    let contact = read::get(&s.pool, me.tenant.0, id.0)
        .await?
        .ok_or_else(|| PageError::NotFound("No such contact in this organization.".into()))?;
    Ok(render(&ErasePage {
        frame: me.frame(format!("Erase {}", contact.email), "contacts"),
        contact,
    }))
}

/// `POST /contacts/{id}/erase`: the contact's personal data is destroyed (its key shredded);
/// the list no longer shows it.
pub async fn erase(
    State(s): State<WebState>,
    me: Member,
    PathIds(id): PathIds<ContactId>,
    CsrfForm(_): CsrfForm<crate::visit::NoFields>,
) -> Result<Response, PageError> {
    me.require(Action::Write)?;
    match s.commands.contacts.erase(me.tenant, id, &me.meta).await {
        Ok(a) => Ok(Redirect::to(&format!("/contacts?written={}", a.cursor)).into_response()),
        Err(e) => refused(&s, &me, id, e).await,
    }
}

#[derive(Deserialize)]
pub struct ConsentForm {
    channel: String,
    status: String,
}

/// A value of a closed vocabulary from a form, by its name in the API.
fn named<T: serde::de::DeserializeOwned>(field: &str, raw: &str) -> Result<T, commands::Invalid> {
    serde_json::from_value(raw.trim().into())
        .map_err(|_| commands::Invalid::one(field, format!("{raw:?} is not one of the choices")))
}

/// `POST /contacts/{id}/consent`: what the contact said about a channel, recorded by a member.
pub async fn set_consent(
    State(s): State<WebState>,
    me: Member,
    PathIds(id): PathIds<ContactId>,
    CsrfForm(f): CsrfForm<ConsentForm>,
) -> Result<Response, PageError> {
    let command = named("channel", &f.channel).and_then(|channel| {
        Ok(domain::contact::ContactCommand::SetConsent {
            channel,
            status: named("status", &f.status)?,
            source: format!("console ({})", me.user.email),
            at: chrono::Utc::now(),
        })
    });
    act(&s, &me, id, command).await
}

#[derive(Deserialize)]
pub struct ReachForm {
    channel: String,
    /// `stop` marks the channel do-not-contact; `allow` lifts the mark.
    action: String,
}

/// `POST /contacts/{id}/do-not-contact`
pub async fn do_not_contact(
    State(s): State<WebState>,
    me: Member,
    PathIds(id): PathIds<ContactId>,
    CsrfForm(f): CsrfForm<ReachForm>,
) -> Result<Response, PageError> {
    use domain::contact::ContactCommand as C;
    let command = named("channel", &f.channel).map(|channel| match f.action.as_str() {
        "allow" => C::RemoveDoNotContact(channel),
        _ => C::AddDoNotContact {
            channel,
            reason: domain::contact::DncReason::Manual,
            note: Some(format!("set in the console by {}", me.user.email)),
        },
    });
    act(&s, &me, id, command).await
}

/// Runs `command` on the contact (checked already), back to its page or its refusal.
async fn act(
    s: &WebState,
    me: &Member,
    id: ContactId,
    command: Result<domain::contact::ContactCommand, commands::Invalid>,
) -> Result<Response, PageError> {
    me.require(Action::Write)?;
    let outcome = match command {
        Ok(c) => {
            s.commands
                .contacts
                .execute(me.tenant, id, c, &me.meta)
                .await
        }
        Err(i) => Err(i.into()),
    };
    match outcome {
        Ok(a) => Ok(to_contact(&a)),
        Err(e) => refused(s, me, id, e).await,
    }
}

#[derive(Deserialize)]
pub struct StageForm {
    #[serde(default)]
    stage: String,
}

/// `POST /contacts/{id}/stage`
pub async fn set_stage(
    State(s): State<WebState>,
    me: Member,
    PathIds(id): PathIds<ContactId>,
    CsrfForm(f): CsrfForm<StageForm>,
) -> Result<Response, PageError> {
    let command =
        commands::contacts::body::stage(&f.stage).map(domain::contact::ContactCommand::ChangeStage);
    act(&s, &me, id, command).await
}

#[derive(Deserialize)]
pub struct PointsForm {
    #[serde(default)]
    delta: String,
    #[serde(default)]
    reason: String,
}

/// `POST /contacts/{id}/points`
pub async fn change_points(
    State(s): State<WebState>,
    me: Member,
    PathIds(id): PathIds<ContactId>,
    CsrfForm(f): CsrfForm<PointsForm>,
) -> Result<Response, PageError> {
    let command = match f.delta.trim().parse::<i64>() {
        Ok(delta) => commands::contacts::body::points(delta, &f.reason),
        Err(_) => Err(commands::Invalid::one(
            "delta",
            "a whole number, e.g. 10 or -5",
        )),
    };
    act(&s, &me, id, command).await
}

#[derive(Deserialize)]
pub struct NoteForm {
    #[serde(default)]
    text: String,
}

/// `POST /contacts/{id}/notes`
pub async fn add_note(
    State(s): State<WebState>,
    me: Member,
    PathIds(id): PathIds<ContactId>,
    CsrfForm(f): CsrfForm<NoteForm>,
) -> Result<Response, PageError> {
    let command = commands::contacts::body::note(&f.text).map(|text| {
        domain::contact::ContactCommand::AddNote {
            note_id: Uuid::now_v7(),
            text,
        }
    });
    act(&s, &me, id, command).await
}

/// `POST /contacts/{id}/notes/{note}/remove`
pub async fn remove_note(
    State(s): State<WebState>,
    me: Member,
    PathIds((id, note)): PathIds<(ContactId, domain::NoteId)>,
    CsrfForm(_): CsrfForm<crate::visit::NoFields>,
) -> Result<Response, PageError> {
    act(
        &s,
        &me,
        id,
        Ok(domain::contact::ContactCommand::RemoveNote(note.0)),
    )
    .await
}
