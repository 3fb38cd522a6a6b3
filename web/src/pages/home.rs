//! The organization at a glance: contacts and their growth, the last 30 days of messages as
//! a chart (SVG drawn here: no script, no inline style), and how far the read models trail.

use askama::Template;
use axum::extract::State;
use axum::response::Response;
use chrono::{Duration, NaiveDate, Utc};
use projections::deliveries::Day;

use crate::page::{render, Frame, PageError};
use crate::visit::Member;
use crate::WebState;

const DAYS: i64 = 30;
const CHART_W: i64 = 600;
const CHART_H: i64 = 140;

/// One bar of the chart (one day, requested messages) with its sent part.
struct Bar {
    x: i64,
    width: i64,
    y: i64,
    height: i64,
    sent_y: i64,
    sent_height: i64,
    label: String,
}

#[derive(Template)]
#[template(path = "home.html")]
struct HomePage {
    frame: Frame,
    contacts: i64,
    new_contacts: i64,
    days: Vec<Day>,
    totals: Day,
    bars: Vec<Bar>,
    peak: i64,
    /// Seconds the slowest of the read models this page shows trails the log.
    behind_seconds: f64,
    chart_w: i64,
    chart_h: i64,
}

impl HomePage {
    fn rate(&self, part: &i64) -> String {
        let part = *part;
        if self.totals.sent == 0 {
            "–".into()
        } else {
            format!("{:.1} %", part as f64 * 100.0 / self.totals.sent as f64)
        }
    }
}

fn bars(days: &[Day], since: NaiveDate, peak: i64) -> Vec<Bar> {
    let width = CHART_W / DAYS;
    let scale = |n: i64| (n * CHART_H) / peak.max(1);
    days.iter()
        .map(|d| {
            let i = (d.day - since).num_days().clamp(0, DAYS - 1);
            let (h, sh) = (scale(d.requested), scale(d.sent.min(d.requested)));
            Bar {
                x: i * width,
                width: width - 2,
                y: CHART_H - h,
                height: h,
                sent_y: CHART_H - sh,
                sent_height: sh,
                label: format!("{}: {} requested, {} sent", d.day, d.requested, d.sent),
            }
        })
        .collect()
}

/// `GET /`
pub async fn show(State(s): State<WebState>, me: Member) -> Result<Response, PageError> {
    let since = Utc::now() - Duration::days(DAYS - 1);
    let since_day = since.date_naive();
    let since = since_day
        .and_hms_opt(0, 0, 0)
        .map(|t| t.and_utc())
        .unwrap_or(since);
    let (contacts, new_contacts) =
        projections::contacts::counts(&s.pool, me.tenant.0, since).await?;
    let days = projections::deliveries::per_day(&s.pool, me.tenant.0, since).await?;
    let mut totals = Day {
        day: since_day,
        requested: 0,
        sent: 0,
        opened: 0,
        clicked: 0,
        bounced: 0,
    };
    for d in &days {
        totals.requested += d.requested;
        totals.sent += d.sent;
        totals.opened += d.opened;
        totals.clicked += d.clicked;
        totals.bounced += d.bounced;
    }
    let peak = days.iter().map(|d| d.requested).max().unwrap_or(0);
    let mut behind_seconds: f64 = 0.0;
    for name in ["contacts", "deliveries"] {
        let lag = projections::status::lag(&s.pool, name)
            .await
            .map_err(|e| PageError::internal(&e))?;
        behind_seconds = behind_seconds.max(lag.behind_seconds);
    }
    Ok(render(&HomePage {
        frame: me.frame("Home", "home"),
        contacts,
        new_contacts,
        bars: bars(&days, since_day, peak),
        days,
        totals,
        peak,
        behind_seconds,
        chart_w: CHART_W,
        chart_h: CHART_H,
    }))
}
