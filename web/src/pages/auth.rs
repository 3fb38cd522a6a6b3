//! Signing up, in (password, then a second factor when on) and out.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use commands::identity::accounts::{AccountsError, LogIn, SecondFactor};
use commands::identity::body;
use http_kit::auth::session::Stage;
use serde::Deserialize;

use crate::page::{render, render_with, FieldErrors, Frame, PageError};
use crate::visit::{safe_next, url_encode, CsrfForm, NoFields, SignedIn, Visitor};
use crate::WebState;

/// How an account form shows a refusal: bad fields next to themselves, the rest above the
/// form; a failure of ours as the error page.
pub fn form_errors(e: AccountsError) -> Result<(StatusCode, FieldErrors), PageError> {
    use AccountsError as E;
    let general = |status, message: String| Ok((status, FieldErrors::general(message)));
    match e {
        E::Invalid(i) => Ok((StatusCode::UNPROCESSABLE_ENTITY, FieldErrors::from(&i))),
        E::TooManyAttempts { retry_after } => general(
            StatusCode::TOO_MANY_REQUESTS,
            format!(
                "Too many attempts. Try again in {} minutes.",
                retry_after.div_ceil(60)
            ),
        ),
        E::EmailTaken => {
            let mut errors = FieldErrors::none();
            errors.set(
                "email",
                "An account with this email exists. Sign in, or reset its password.",
            );
            Ok((StatusCode::CONFLICT, errors))
        }
        E::BadCredentials => general(
            StatusCode::UNAUTHORIZED,
            "The email or password is wrong.".into(),
        ),
        E::WrongPassword => {
            let mut errors = FieldErrors::none();
            errors.set("password", "The password is wrong.");
            Ok((StatusCode::UNAUTHORIZED, errors))
        }
        E::WrongCode | E::CodeMismatch => general(
            StatusCode::UNAUTHORIZED,
            "The code is wrong or has expired. Try the next one your app shows.".into(),
        ),
        e @ (E::TotpNotEnrolling
        | E::NoSuchOrganization
        | E::NoSuchInvite
        | E::User(_)
        | E::Organization(_)
        | E::Conflict) => general(StatusCode::CONFLICT, capitalized(&e.to_string())),
        E::Technical(t) => Err(PageError::internal(t.as_ref())),
    }
}

fn capitalized(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect::<String>() + ".",
        None => String::new(),
    }
}

/// The answer to a sign-in: the session cookie, and on to `next`.
fn enter(s: &WebState, v: Visitor, cookie: String, stage: Stage, to: &str) -> Response {
    let jar = v.jar.add(s.commands.auth.sessions.cookie(cookie, stage));
    (jar, Redirect::to(to)).into_response()
}

#[derive(Template)]
#[template(path = "auth/login.html")]
struct LoginPage {
    frame: Frame,
    email: String,
    next: String,
    next_encoded: String,
    errors: FieldErrors,
}

#[derive(Deserialize)]
pub struct Next {
    next: Option<String>,
}

/// `GET /login`
pub async fn login_form(v: Visitor, Query(q): Query<Next>) -> Response {
    let next = safe_next(q.next.as_deref());
    if v.session.is_some_and(|s| s.stage == Stage::Active) {
        return Redirect::to(&next).into_response();
    }
    render(&LoginPage {
        frame: Frame::public("Sign in"),
        email: String::new(),
        next_encoded: url_encode(&next),
        next,
        errors: FieldErrors::none(),
    })
}

#[derive(Deserialize)]
pub struct LoginForm {
    email: String,
    password: String,
    next: Option<String>,
}

/// `POST /login`
pub async fn login(
    State(s): State<WebState>,
    v: Visitor,
    Form(f): Form<LoginForm>,
) -> Result<Response, PageError> {
    let next = safe_next(f.next.as_deref());
    let outcome = s
        .commands
        .identity
        .accounts
        .log_in(&f.email, f.password, v.cookie.as_deref(), &v.client)
        .await;
    match outcome {
        Ok(LogIn::SignedIn(signed)) => Ok(enter(
            &s,
            v,
            signed.session.cookie_value,
            Stage::Active,
            &next,
        )),
        Ok(LogIn::SecondFactor(pending)) => {
            let to = format!("/login/second-factor?next={}", url_encode(&next));
            Ok(enter(&s, v, pending.cookie_value, Stage::SecondFactor, &to))
        }
        Err(e) => {
            let (status, errors) = form_errors(e)?;
            let page = LoginPage {
                frame: Frame::public("Sign in"),
                email: f.email,
                next_encoded: url_encode(&next),
                next,
                errors,
            };
            Ok(render_with(status, &page))
        }
    }
}

#[derive(Template)]
#[template(path = "auth/second_factor.html")]
struct SecondFactorPage {
    frame: Frame,
    next: String,
    errors: FieldErrors,
}

/// `GET /login/second-factor`
pub async fn second_factor_form(v: Visitor, Query(q): Query<Next>) -> Response {
    let next = safe_next(q.next.as_deref());
    if !v.session.is_some_and(|s| s.stage == Stage::SecondFactor) {
        return Redirect::to("/login").into_response();
    }
    render(&SecondFactorPage {
        frame: Frame::public("Two-factor code"),
        next,
        errors: FieldErrors::none(),
    })
}

#[derive(Deserialize)]
pub struct SecondFactorForm {
    #[serde(default)]
    code: String,
    #[serde(default)]
    recovery_code: String,
    next: Option<String>,
}

/// `POST /login/second-factor`
pub async fn second_factor(
    State(s): State<WebState>,
    v: Visitor,
    Form(f): Form<SecondFactorForm>,
) -> Result<Response, PageError> {
    let next = safe_next(f.next.as_deref());
    let present = |t: String| Some(t.trim().to_owned()).filter(|t| !t.is_empty());
    let outcome = match SecondFactor::parse(present(f.code), present(f.recovery_code)) {
        Ok(factor) => {
            s.commands
                .identity
                .accounts
                .second_factor(v.cookie.as_deref(), factor, &v.client, &v.meta)
                .await
        }
        Err(invalid) => Err(AccountsError::Invalid(invalid)),
    };
    match outcome {
        Ok(signed) => Ok(enter(
            &s,
            v,
            signed.session.cookie_value,
            Stage::Active,
            &next,
        )),
        Err(e) => {
            let (status, mut errors) = form_errors(e)?;
            if let Some(reason) = errors.get("code").map(str::to_owned) {
                errors.general = Some(capitalized(&reason));
            }
            let page = SecondFactorPage {
                frame: Frame::public("Two-factor code"),
                next,
                errors,
            };
            Ok(render_with(status, &page))
        }
    }
}

#[derive(Template)]
#[template(path = "auth/signup.html")]
struct SignUpPage {
    frame: Frame,
    next: String,
    next_encoded: String,
    name: String,
    email: String,
    errors: FieldErrors,
}

/// `GET /signup`
pub async fn signup_form(Query(q): Query<Next>) -> Response {
    let next = q
        .next
        .as_deref()
        .map(|n| safe_next(Some(n)))
        .unwrap_or_default();
    render(&SignUpPage {
        frame: Frame::public("Create an account"),
        next_encoded: url_encode(&next),
        next,
        name: String::new(),
        email: String::new(),
        errors: FieldErrors::none(),
    })
}

#[derive(Deserialize)]
pub struct SignUpForm {
    #[serde(default)]
    name: String,
    email: String,
    password: String,
    #[serde(default)]
    next: String,
}

/// `POST /signup`: the account is made and signed in; on to found an organization.
pub async fn signup(
    State(s): State<WebState>,
    v: Visitor,
    Form(f): Form<SignUpForm>,
) -> Result<Response, PageError> {
    let checked = body::email(&f.email).and_then(|email| {
        let name = body::person_name(Some(&f.name))?;
        Ok((email, name))
    });
    let outcome = match checked {
        Ok((email, name)) => {
            s.commands
                .identity
                .accounts
                .sign_up(
                    email,
                    name,
                    f.password,
                    v.cookie.as_deref(),
                    &v.client,
                    &v.meta,
                )
                .await
        }
        Err(invalid) => Err(AccountsError::Invalid(invalid)),
    };
    match outcome {
        Ok(signed) => Ok(enter(
            &s,
            v,
            signed.session.cookie_value,
            Stage::Active,
            // An invitation's link leads back to it; otherwise, found an organization.
            if f.next.is_empty() {
                "/organizations/new".to_owned()
            } else {
                safe_next(Some(&f.next))
            }
            .as_str(),
        )),
        Err(e) => {
            let (status, errors) = form_errors(e)?;
            let next = if f.next.is_empty() {
                String::new()
            } else {
                safe_next(Some(&f.next))
            };
            let page = SignUpPage {
                frame: Frame::public("Create an account"),
                next_encoded: url_encode(&next),
                next,
                name: f.name,
                email: f.email,
                errors,
            };
            Ok(render_with(status, &page))
        }
    }
}

/// `POST /logout`: the session ends on the server and its cookie is cleared.
pub async fn logout(
    State(s): State<WebState>,
    me: SignedIn,
    CsrfForm(_): CsrfForm<NoFields>,
) -> Result<Response, PageError> {
    s.commands.identity.accounts.log_out(&me.session).await?;
    let jar = me.visitor.jar.add(s.commands.auth.sessions.removal());
    Ok((jar, Redirect::to("/login")).into_response())
}
