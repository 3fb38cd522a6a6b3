//! Custom fields: the organization's typed definitions (options, required, unique).

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use commands::fields::http::DefineField;
use commands::fields::FieldsError;
use commands::CommandError;
use domain::field::{FieldDefinition, FieldType};
use domain::identity::Action;
use serde::Deserialize;

use crate::page::{command_errors, render_with, FieldErrors, Frame, PageError};
use crate::visit::{CsrfForm, Member, NoFields};
use crate::WebState;

/// Every type, as the API names it, with what the form calls it.
pub const TYPES: [(&str, &str); 14] = [
    ("text", "Text"),
    ("long_text", "Long text"),
    ("number", "Number"),
    ("boolean", "Yes / no"),
    ("date", "Date"),
    ("datetime", "Date and time"),
    ("select", "One of a list"),
    ("multiselect", "Any of a list"),
    ("email", "Email"),
    ("url", "URL"),
    ("phone", "Phone"),
    ("country", "Country"),
    ("timezone", "Time zone"),
    ("locale", "Locale"),
];

/// The API's name of a type.
pub fn type_name(t: FieldType) -> &'static str {
    serde_json::to_value(t)
        .ok()
        .and_then(|v| v.as_str().and_then(|s| TYPES.iter().find(|(k, _)| *k == s)))
        .map_or("text", |(k, _)| k)
}

#[derive(Deserialize, Default, Clone)]
pub struct DefineForm {
    #[serde(default)]
    key: String,
    #[serde(default)]
    label: String,
    #[serde(default)]
    field_type: String,
    #[serde(default)]
    required: Option<String>,
    #[serde(default)]
    unique: Option<String>,
    /// Comma-separated.
    #[serde(default)]
    options: String,
}

#[derive(Template)]
#[template(path = "fields/list.html")]
struct FieldsPage {
    frame: Frame,
    fields: Vec<FieldDefinition>,
    form: DefineForm,
    errors: FieldErrors,
    types: [(&'static str, &'static str); 14],
}

impl FieldsPage {
    fn type_of(&self, f: &FieldDefinition) -> &'static str {
        let name = type_name(f.field_type);
        TYPES
            .iter()
            .find(|(k, _)| *k == name)
            .map_or(name, |(_, l)| l)
    }
}

async fn page(
    s: &WebState,
    me: &Member,
    form: DefineForm,
    errors: FieldErrors,
) -> Result<FieldsPage, PageError> {
    let schema = s
        .commands
        .fields
        .schema(me.tenant)
        .await
        .map_err(|e| PageError::internal(&e))?;
    Ok(FieldsPage {
        frame: me.frame("Custom fields", "fields"),
        fields: schema.fields.into_values().collect(),
        form,
        errors,
        types: TYPES,
    })
}

fn form_errors(e: FieldsError) -> Result<(StatusCode, FieldErrors), PageError> {
    match e {
        // A refusal of the schema is about the key (taken, unknown, too many).
        CommandError::Rejected(r) => {
            let mut errors = FieldErrors::none();
            errors.set("key", r.to_string());
            Ok((StatusCode::CONFLICT, errors))
        }
        other => command_errors(other, "fields"),
    }
}

/// `GET /fields`
pub async fn list(State(s): State<WebState>, me: Member) -> Result<Response, PageError> {
    let p = page(&s, &me, DefineForm::default(), FieldErrors::none()).await?;
    Ok(render_with(StatusCode::OK, &p))
}

/// `POST /fields`: the API's body, validated the same way.
pub async fn define(
    State(s): State<WebState>,
    me: Member,
    CsrfForm(f): CsrfForm<DefineForm>,
) -> Result<Response, PageError> {
    me.require(Action::Write)?;
    let field_type: Result<FieldType, _> = serde_json::from_value(f.field_type.clone().into())
        .map_err(|_| commands::Invalid::one("field_type", "choose a type"));
    let outcome = match field_type {
        Ok(field_type) => {
            let body = DefineField {
                key: f.key.trim().to_owned(),
                label: f.label.trim().to_owned(),
                field_type,
                required: f.required.is_some(),
                default: None,
                options: f
                    .options
                    .split(',')
                    .map(str::trim)
                    .filter(|o| !o.is_empty())
                    .map(str::to_owned)
                    .collect(),
                unique: f.unique.is_some(),
            };
            match body.validate() {
                Ok(def) => s.commands.fields.define(me.tenant, def, &me.meta).await,
                Err(i) => Err(i.into()),
            }
        }
        Err(i) => Err(i.into()),
    };
    match outcome {
        Ok(_) => Ok(Redirect::to("/fields").into_response()),
        Err(e) => {
            let (status, errors) = form_errors(e)?;
            let p = page(&s, &me, f, errors).await?;
            Ok(render_with(status, &p))
        }
    }
}

/// `POST /fields/{key}/remove`: values already stored stay on the contacts.
pub async fn remove(
    State(s): State<WebState>,
    me: Member,
    Path(key): Path<String>,
    CsrfForm(_): CsrfForm<NoFields>,
) -> Result<Response, PageError> {
    me.require(Action::Write)?;
    match s.commands.fields.remove(me.tenant, key, &me.meta).await {
        Ok(_) => Ok(Redirect::to("/fields").into_response()),
        Err(e) => {
            let (status, errors) = form_errors(e)?;
            let p = page(&s, &me, DefineForm::default(), errors).await?;
            Ok(render_with(status, &p))
        }
    }
}
