//! The organization at a glance.

use askama::Template;
use axum::response::Response;

use crate::page::{render, Frame};
use crate::visit::Member;

#[derive(Template)]
#[template(path = "home.html")]
struct HomePage {
    frame: Frame,
}

/// `GET /`
pub async fn show(me: Member) -> Response {
    render(&HomePage {
        frame: me.frame("Home", "home"),
    })
}
