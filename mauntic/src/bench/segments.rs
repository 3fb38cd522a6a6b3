//! `bench segments`: dynamic segments at scale.
//!
//! 1. Counts: the contacts read model of a fresh database is filled straight from SQL with
//!    `--events` contacts (default 1,000,000) of 20 custom fields each; then the count of a
//!    rule with three conditions on indexed custom fields (equality on a select, a country
//!    and a boolean: the `fields` GIN index), and of a 33 %-selective rule, each run 15 times
//!    after 3 unmeasured runs.
//! 2. Latency: with 50 dynamic segments defined, a contact's change makes it leave one
//!    segment and enter another; the time from the command's answer to the `SegmentEntered`
//!    event committed in the log, over 300 changes.

use std::time::{Duration, Instant};

use anyhow::Context;
use domain::segment::Rule;
use serde_json::{json, Value};

use super::common::{figure, figure_f, fresh_database, header, Latencies, RunningApp};
use crate::Settings;

pub async fn run(settings: &Settings, contacts: u64) -> anyhow::Result<()> {
    let mut s = fresh_database(settings, "mauntic_bench_segments").await?;
    s.nats = None;
    let app = RunningApp::start(s).await?;
    let outcome = async {
        counts(&app, contacts).await?;
        latency(&app).await
    }
    .await;
    let stopped = app.stop().await;
    outcome?;
    stopped
}

/// Fills the contacts read model of `tenant` straight from SQL with `contacts` contacts of
/// 20 custom fields each (`c<n>@bench.example.org`), and analyzes it.
pub(super) async fn fill_contacts(
    pool: &sqlx::PgPool,
    tenant: uuid::Uuid,
    contacts: u64,
) -> anyhow::Result<()> {
    let step = 100_000u64;
    let mut from = 1u64;
    while from <= contacts {
        let to = (from + step - 1).min(contacts);
        sqlx::query(
            "INSERT INTO contacts (tenant_id, id, email, first_name, last_name, fields, tags, \
                                   stage, points, created_at, updated_at, version) \
             SELECT $1, gen_random_uuid(), 'c' || n || '@bench.example.org', 'First' || n, \
                    'Last' || n, \
                    jsonb_build_object( \
                      'plan', (ARRAY['free','pro','team'])[1 + n % 3], \
                      'country', (ARRAY['FR','DE','US','GB','ES'])[1 + (n / 3) % 5], \
                      'active', (n / 15) % 2 = 0, \
                      'score', n % 100, \
                      'birthday', to_char(date '1960-01-01' + (n % 15000)::int, 'YYYY-MM-DD'), \
                      'bio', 'contact number ' || n) \
                    || (SELECT jsonb_object_agg('f' || k, 'value ' || k || '-' || n) \
                        FROM generate_series(1, 14) k), \
                    CASE WHEN n % 10 = 0 THEN ARRAY['vip'] ELSE ARRAY['bench'] END, \
                    'lead', n % 100, now(), now(), 1 \
             FROM generate_series($2::bigint, $3::bigint) n",
        )
        .bind(tenant)
        .bind(from as i64)
        .bind(to as i64)
        .execute(pool)
        .await
        .context("filling the contacts read model")?;
        from = to + 1;
    }
    sqlx::query("ANALYZE contacts").execute(pool).await?;
    Ok(())
}

async fn counts(app: &RunningApp, contacts: u64) -> anyhow::Result<()> {
    let tenant = app.tenant().await?;
    eprintln!("bench segments: filling the read model with {contacts} contacts");
    let t = Instant::now();
    fill_contacts(&app.pool, tenant.tenant_id, contacts).await?;
    eprintln!(
        "bench segments: filled in {:.1} s",
        t.elapsed().as_secs_f64()
    );

    header(&format!("segments (count over {contacts} contacts)"));
    let rules = [
        (
            "three_indexed",
            json!({"all": [
                {"field": {"name": "fields.plan", "op": "equals", "value": "pro"}},
                {"field": {"name": "fields.country", "op": "equals", "value": "FR"}},
                {"field": {"name": "fields.active", "op": "equals", "value": true}}
            ]}),
        ),
        (
            "selective_33pct",
            json!({"field": {"name": "fields.plan", "op": "equals", "value": "pro"}}),
        ),
        (
            "range_and_tag",
            json!({"all": [
                {"field": {"name": "fields.score", "op": "gte", "value": 50}},
                {"not": {"tag": "vip"}}
            ]}),
        ),
    ];
    let state = crate::http::command_state(&app.settings, app.pool.clone())?;
    for (key, t) in [
        ("plan", "select"),
        ("country", "country"),
        ("active", "boolean"),
        ("score", "number"),
    ] {
        let mut def = json!({"key": key, "label": key, "type": t});
        if t == "select" {
            def["options"] = json!(["free", "pro", "team"]);
        }
        define(app, &tenant.api_key, def).await?;
    }
    let schema = state
        .fields
        .schema(domain::TenantId(tenant.tenant_id))
        .await
        .map_err(|p| anyhow::anyhow!("{p:?}"))?;
    for (name, raw) in rules {
        let rule: Rule = serde_json::from_value(raw)?;
        let checked = rule
            .check(&schema.fields)
            .map_err(|e| anyhow::anyhow!("{e:?}"))?;
        let mut lat = Latencies::new()?;
        let mut matched = 0;
        for i in 0..18 {
            let t = Instant::now();
            matched = projections::segments::count(
                &app.pool,
                tenant.tenant_id,
                &checked,
                chrono::Utc::now(),
            )
            .await?;
            if i >= 3 {
                lat.record(t.elapsed());
            }
        }
        figure(&format!("{name}.matched"), matched, "contacts");
        lat.print(&format!("{name}.count"), &[50, 99]);
    }
    Ok(())
}

async fn define(app: &RunningApp, key: &str, def: Value) -> anyhow::Result<()> {
    let res = reqwest::Client::new()
        .post(format!("{}/api/v1/fields", app.base_url))
        .bearer_auth(key)
        .json(&def)
        .send()
        .await?;
    anyhow::ensure!(
        res.status().is_success(),
        "defining a field: {}",
        res.text().await?
    );
    Ok(())
}

async fn latency(app: &RunningApp) -> anyhow::Result<()> {
    const SEGMENTS: i64 = 50;
    const CONTACTS: usize = 200;
    const SAMPLES: usize = 300;
    let tenant = app.tenant().await?;
    let key = tenant.api_key.clone();
    let http = reqwest::Client::new();
    let url = |p: &str| format!("{}{}", app.base_url, p);
    define(
        app,
        &key,
        json!({"key": "score", "label": "Score", "type": "number"}),
    )
    .await?;
    for k in 0..SEGMENTS {
        let res = http
            .post(url("/api/v1/segments"))
            .bearer_auth(&key)
            .json(&json!({"name": format!("score {k}"), "rule": {"all": [
                {"field": {"name": "fields.score", "op": "equals", "value": k}},
                {"field": {"name": "email", "op": "ends_with", "value": "@bench.example.org"}}
            ]}}))
            .send()
            .await?;
        anyhow::ensure!(
            res.status().is_success(),
            "creating a segment: {}",
            res.text().await?
        );
    }
    let mut ids = Vec::with_capacity(CONTACTS);
    for n in 0..CONTACTS {
        let res = http
            .post(url("/api/v1/contacts"))
            .bearer_auth(&key)
            .json(&json!({"email": format!("l{n}@bench.example.org"), "fields": {"score": -1}}))
            .send()
            .await?;
        let v: Value = res.json().await?;
        ids.push(v["id"].as_str().context("a contact id")?.to_owned());
    }
    eprintln!("bench segments: {SEGMENTS} dynamic segments, {CONTACTS} contacts; measuring");
    let mut lat = Latencies::new()?;
    for i in 0..SAMPLES {
        let id = &ids[i % CONTACTS];
        let stream = format!("{}:{id}", tenant.tenant_id);
        let before: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM events WHERE aggregate_type = 'segment_membership' \
             AND aggregate_id = $1 AND event_type = 'SegmentEntered'",
        )
        .bind(&stream)
        .fetch_one(&app.pool)
        .await?;
        let res = http
            .patch(url(&format!("/api/v1/contacts/{id}")))
            .bearer_auth(&key)
            // A new score every time (a contact's next change moves it to another segment).
            .json(&json!({"fields": {"score": ((i + i / CONTACTS) as i64) % SEGMENTS}}))
            .send()
            .await?;
        anyhow::ensure!(res.status().is_success(), "updating a contact");
        let t = Instant::now();
        loop {
            let now: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM events WHERE aggregate_type = 'segment_membership' \
                 AND aggregate_id = $1 AND event_type = 'SegmentEntered'",
            )
            .bind(&stream)
            .fetch_one(&app.pool)
            .await?;
            if now > before {
                break;
            }
            anyhow::ensure!(
                t.elapsed() < Duration::from_secs(30),
                "no SegmentEntered within 30 s"
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        lat.record(t.elapsed());
    }
    header(&format!(
        "segments (contact change → SegmentEntered, {SEGMENTS} dynamic segments)"
    ));
    lat.print("entered", &[50, 95, 99]);
    figure_f("samples", SAMPLES as f64, "changes");
    Ok(())
}
