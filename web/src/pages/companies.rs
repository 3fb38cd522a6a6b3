//! Companies: the list (search by name, keyset pages), one company with its contacts, creating.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use commands::companies::http::CreateCompany;
use commands::companies::CompaniesError;
use domain::identity::Action;
use domain::CompanyId;
use http_kit::PathIds;
use projections::companies::{self as read, CompanyRow};
use projections::contacts::{self as contacts, ContactFilter};
use serde::Deserialize;

use super::contacts::Row;
use crate::page::{command_errors, render, render_with, FieldErrors, Frame, PageError};
use crate::visit::{url_encode, CsrfForm, Member};
use crate::WebState;

const PAGE: i64 = 50;

#[derive(Deserialize, Default)]
pub struct ListQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    after: String,
}

#[derive(Template)]
#[template(path = "companies/list.html")]
struct ListPage {
    frame: Frame,
    q: String,
    rows: Rows,
}

#[derive(Template)]
#[template(path = "companies/rows.html")]
struct Rows {
    rows: Vec<CompanyRow>,
    next: Option<String>,
    first_page: bool,
}

/// The page key after `row`: its lowercased name and id.
fn key_of(row: &CompanyRow) -> String {
    let mut raw = row.id.as_bytes().to_vec();
    raw.extend(row.name.to_lowercase().into_bytes());
    URL_SAFE_NO_PAD.encode(raw)
}

fn parse_key(token: &str) -> Option<(String, uuid::Uuid)> {
    let raw = URL_SAFE_NO_PAD.decode(token.trim()).ok()?;
    let (id, name) = raw.split_at_checked(16)?;
    Some((
        String::from_utf8(name.to_vec()).ok()?,
        uuid::Uuid::from_slice(id).ok()?,
    ))
}

/// `GET /companies`
pub async fn list(
    State(s): State<WebState>,
    me: Member,
    headers: HeaderMap,
    Query(q): Query<ListQuery>,
) -> Result<Response, PageError> {
    let prefix = Some(q.q.trim()).filter(|p| !p.is_empty());
    let after = parse_key(&q.after);
    let mut found = read::list(&s.pool, me.tenant.0, prefix, after.clone(), PAGE + 1).await?;
    let next = (found.len() as i64 > PAGE).then(|| {
        found.truncate(PAGE as usize);
        let key = found.last().map(key_of).unwrap_or_default();
        format!("q={}&after={key}", url_encode(q.q.trim()))
    });
    let rows = Rows {
        rows: found,
        next,
        first_page: after.is_none(),
    };
    if crate::page::wants_partial(&headers) {
        return Ok(render(&rows));
    }
    Ok(render(&ListPage {
        frame: me.frame("Companies", "companies"),
        q: q.q,
        rows,
    }))
}

#[derive(Template)]
#[template(path = "companies/show.html")]
struct ShowPage {
    frame: Frame,
    company: CompanyRow,
    contact_count: i64,
    contacts: Vec<Row>,
    stale: bool,
}

#[derive(Deserialize, Default)]
pub struct AfterWrite {
    after: Option<String>,
}

/// `GET /companies/{id}`
pub async fn show(
    State(s): State<WebState>,
    me: Member,
    PathIds(id): PathIds<CompanyId>,
    Query(q): Query<AfterWrite>,
) -> Result<Response, PageError> {
    let stale = !super::contacts::caught_up(&s, "companies", q.after.as_deref()).await?;
    let Some((company, contact_count)) = read::get(&s.pool, me.tenant.0, id.0).await? else {
        return Err(PageError::NotFound(if stale {
            "This company is still being saved; reload the page in a moment.".into()
        } else {
            "No such company in this organization.".into()
        }));
    };
    let filter = ContactFilter {
        company_id: Some(id.0),
        ..ContactFilter::default()
    };
    let linked = contacts::list_filtered(&s.pool, me.tenant.0, &filter, None, PAGE).await?;
    Ok(render(&ShowPage {
        frame: me.frame(company.name.clone(), "companies"),
        company,
        contact_count,
        contacts: linked.into_iter().map(Row::from).collect(),
        stale,
    }))
}

#[derive(Deserialize, Default)]
pub struct CompanyForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    domain: String,
}

#[derive(Template)]
#[template(path = "companies/form.html")]
struct FormPage {
    frame: Frame,
    form: CompanyForm,
    errors: FieldErrors,
}

fn form_errors(e: CompaniesError) -> Result<(StatusCode, FieldErrors), PageError> {
    command_errors(e, "company")
}

/// `GET /companies/new`
pub async fn new_form(me: Member) -> Result<Response, PageError> {
    me.require(Action::Write)?;
    Ok(render(&FormPage {
        frame: me.frame("New company", "companies"),
        form: CompanyForm::default(),
        errors: FieldErrors::none(),
    }))
}

/// `POST /companies/new`
pub async fn create(
    State(s): State<WebState>,
    me: Member,
    CsrfForm(f): CsrfForm<CompanyForm>,
) -> Result<Response, PageError> {
    me.require(Action::Write)?;
    let body = CreateCompany {
        name: f.name.trim().to_owned(),
        domain: Some(f.domain.trim().to_owned()).filter(|d| !d.is_empty()),
        fields: serde_json::Map::new(),
    };
    let outcome = match body.validate() {
        Ok(new) => s.commands.companies.create(me.tenant, new, &me.meta).await,
        Err(i) => Err(i.into()),
    };
    match outcome {
        Ok(a) => {
            Ok(Redirect::to(&format!("/companies/{}?after={}", a.id, a.cursor)).into_response())
        }
        Err(e) => {
            let (status, errors) = form_errors(e)?;
            Ok(render_with(
                status,
                &FormPage {
                    frame: me.frame("New company", "companies"),
                    form: f,
                    errors,
                },
            ))
        }
    }
}
