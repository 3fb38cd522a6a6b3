//! The pages mailed links open: verifying an email, resetting a password, accepting an
//! invitation; and asking for a reset link. A link only shows a button: mail scanners that
//! fetch links change nothing.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use commands::identity::body;
use serde::Deserialize;

use super::auth::form_errors;
use crate::page::{render, render_with, FieldErrors, Frame, PageError};
use crate::visit::{CsrfForm, SignedIn, Visitor};
use crate::WebState;

#[derive(Template, Default)]
#[template(path = "auth/token.html")]
struct TokenPage {
    frame: Frame,
    message: String,
    /// Where the form posts; no form when empty.
    action: &'static str,
    token: String,
    button: &'static str,
    ask_email: bool,
    ask_password: bool,
    errors: FieldErrors,
}

impl TokenPage {
    fn done(title: &str, message: &str) -> Response {
        render(&TokenPage {
            frame: Frame::public(title),
            message: message.into(),
            ..Self::default()
        })
    }
}

#[derive(Deserialize, Default)]
pub struct TokenQuery {
    #[serde(default)]
    token: String,
}

#[derive(Deserialize)]
pub struct TokenForm {
    #[serde(default)]
    token: String,
}

/// `GET /verify-email?token=…`
pub async fn verify_form(Query(q): Query<TokenQuery>) -> Response {
    render(&TokenPage {
        frame: Frame::public("Confirm your email address"),
        action: "/verify-email",
        token: q.token,
        button: "Confirm my email address",
        ..TokenPage::default()
    })
}

/// `POST /verify-email`
pub async fn verify(
    State(s): State<WebState>,
    v: Visitor,
    Form(f): Form<TokenForm>,
) -> Result<Response, PageError> {
    match s
        .commands
        .identity
        .accounts
        .verify_email(&f.token, &v.client, &v.meta)
        .await
    {
        Ok(_) => Ok(TokenPage::done(
            "Email confirmed",
            "Thank you: your email address is confirmed.",
        )),
        Err(e) => {
            let (status, errors) = form_errors(e)?;
            Ok(render_with(
                status,
                &TokenPage {
                    frame: Frame::public("Confirm your email address"),
                    errors,
                    ..TokenPage::default()
                },
            ))
        }
    }
}

/// `GET /forgot-password`
pub async fn forgot_form() -> Response {
    render(&TokenPage {
        frame: Frame::public("Reset your password"),
        message: "We will mail you a link to choose a new password.".into(),
        action: "/forgot-password",
        button: "Mail me a link",
        ask_email: true,
        ..TokenPage::default()
    })
}

#[derive(Deserialize)]
pub struct ForgotForm {
    #[serde(default)]
    email: String,
}

/// `POST /forgot-password`: the same answer whether the account exists.
pub async fn forgot(
    State(s): State<WebState>,
    v: Visitor,
    Form(f): Form<ForgotForm>,
) -> Result<Response, PageError> {
    let outcome = match body::email(&f.email) {
        Ok(email) => {
            s.commands
                .identity
                .accounts
                .forgot_password(email, &v.client, &v.meta)
                .await
        }
        Err(i) => Err(i.into()),
    };
    match outcome {
        Ok(()) => Ok(TokenPage::done(
            "Check your mail",
            "If an account has this email, a link to reset its password is on its way. It works once, for an hour.",
        )),
        Err(e) => {
            let (status, errors) = form_errors(e)?;
            Ok(render_with(
                status,
                &TokenPage {
                    frame: Frame::public("Reset your password"),
                    action: "/forgot-password",
                    button: "Mail me a link",
                    ask_email: true,
                    errors,
                    ..TokenPage::default()
                },
            ))
        }
    }
}

/// `GET /reset-password?token=…`
pub async fn reset_form(Query(q): Query<TokenQuery>) -> Response {
    render(&TokenPage {
        frame: Frame::public("Choose a new password"),
        action: "/reset-password",
        token: q.token,
        button: "Set the new password",
        ask_password: true,
        ..TokenPage::default()
    })
}

#[derive(Deserialize)]
pub struct ResetForm {
    #[serde(default)]
    token: String,
    #[serde(default)]
    password: String,
}

/// `POST /reset-password`: every session of the account ends; sign in with the new one.
pub async fn reset(
    State(s): State<WebState>,
    v: Visitor,
    Form(f): Form<ResetForm>,
) -> Result<Response, PageError> {
    match s
        .commands
        .identity
        .accounts
        .reset_password(&f.token, f.password, &v.client, &v.meta)
        .await
    {
        Ok(_) => Ok(Redirect::to("/login").into_response()),
        Err(e) => {
            let (status, errors) = form_errors(e)?;
            Ok(render_with(
                status,
                &TokenPage {
                    frame: Frame::public("Choose a new password"),
                    action: "/reset-password",
                    token: f.token,
                    button: "Set the new password",
                    ask_password: true,
                    errors,
                    ..TokenPage::default()
                },
            ))
        }
    }
}

fn invite_page(me: &SignedIn, token: String, errors: FieldErrors) -> TokenPage {
    TokenPage {
        frame: Frame {
            email: Some(me.email.clone()),
            csrf: me.session.csrf_token.clone(),
            ..Frame::public("Join an organization")
        },
        message: format!(
            "You are signed in as {}. Accept the invitation to join the organization that sent it.",
            me.email
        ),
        action: "/accept-invite",
        token,
        button: "Accept the invitation",
        errors,
        ..TokenPage::default()
    }
}

/// `GET /accept-invite?token=…` (signed in first: the sign-in page comes back here)
pub async fn accept_form(me: SignedIn, Query(q): Query<TokenQuery>) -> Response {
    render(&invite_page(&me, q.token, FieldErrors::none()))
}

/// `POST /accept-invite`: the user joins and works in that organization.
pub async fn accept(
    State(s): State<WebState>,
    me: SignedIn,
    CsrfForm(f): CsrfForm<TokenForm>,
) -> Result<Response, PageError> {
    match s
        .commands
        .identity
        .accounts
        .accept_invite(&me.session, &f.token, &me.visitor.client, &me.visitor.meta)
        .await
    {
        Ok(_) => Ok(Redirect::to("/").into_response()),
        Err(e) => {
            let (status, errors) = form_errors(e)?;
            let status = if status == StatusCode::OK {
                StatusCode::CONFLICT
            } else {
                status
            };
            Ok(render_with(status, &invite_page(&me, f.token, errors)))
        }
    }
}
