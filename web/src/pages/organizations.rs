//! Founding an organization, and switching to another one.

use askama::Template;
use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};
use domain::identity::OrgName;
use domain::TenantId;
use serde::Deserialize;

use super::auth::form_errors;
use crate::page::{render, render_with, FieldErrors, Frame, PageError};
use crate::visit::{CsrfForm, SignedIn};
use crate::WebState;

#[derive(Template)]
#[template(path = "organizations/new.html")]
struct NewOrganizationPage {
    frame: Frame,
    name: String,
    errors: FieldErrors,
}

fn frame(me: &SignedIn) -> Frame {
    Frame {
        email: Some(me.email.clone()),
        csrf: me.session.csrf_token.clone(),
        ..Frame::public("Create an organization")
    }
}

/// `GET /organizations/new`
pub async fn new_form(me: SignedIn) -> Response {
    render(&NewOrganizationPage {
        frame: frame(&me),
        name: String::new(),
        errors: FieldErrors::none(),
    })
}

#[derive(Deserialize)]
pub struct NewOrganization {
    name: String,
}

/// `POST /organizations/new`: the user owns it and works in it from now on.
pub async fn create(
    State(s): State<WebState>,
    me: SignedIn,
    CsrfForm(f): CsrfForm<NewOrganization>,
) -> Result<Response, PageError> {
    let outcome = match OrgName::parse(&f.name) {
        Ok(name) => s
            .commands
            .identity
            .accounts
            .create_organization(&me.session, name, &me.visitor.meta)
            .await
            .map(|_| ()),
        Err(e) => Err(commands::Invalid::from(e).into()),
    };
    match outcome {
        Ok(()) => Ok(Redirect::to("/").into_response()),
        Err(e) => {
            let (status, errors) = form_errors(e)?;
            let page = NewOrganizationPage {
                frame: frame(&me),
                name: f.name,
                errors,
            };
            Ok(render_with(status, &page))
        }
    }
}

#[derive(Deserialize)]
pub struct Switch {
    organization_id: uuid::Uuid,
}

/// `POST /organization/switch`: work in another organization the user belongs to.
pub async fn switch(
    State(s): State<WebState>,
    me: SignedIn,
    CsrfForm(f): CsrfForm<Switch>,
) -> Result<Response, PageError> {
    match s
        .commands
        .identity
        .accounts
        .switch_organization(&me.session, TenantId(f.organization_id))
        .await
    {
        Ok(()) => Ok(Redirect::to("/").into_response()),
        Err(commands::identity::accounts::AccountsError::NoSuchOrganization) => Err(
            PageError::NotFound("You are not a member of that organization.".into()),
        ),
        Err(e) => Err(e.into()),
    }
}
