//! `bench import`: a generated CSV of `--rows` contacts (default 1,000,000) with 20 columns
//! (email, names, phone and 16 custom fields of several types, defined first) imported
//! through the import engine in this process (`commands::imports::engine`, as the API's
//! background task and `mauntic import contacts` run it). The projectors do not run: the
//! figure is the write side (validation, bulk claims, folding, batched appends).

use std::collections::BTreeMap;
use std::io::Write;
use std::time::Instant;

use anyhow::Context;
use commands::imports::ImportOptions;
use domain::field::{FieldDefinition, FieldType};
use event_store::EventMetadata;
use rand::Rng;

use super::common::{figure, figure_f, fresh_database, header, per_second};
use super::export::rss_kib;
use crate::Settings;

const DATABASE: &str = "mauntic_bench_import";

/// (key, type, options): the custom fields of the file.
fn fields() -> Vec<(&'static str, FieldType, Vec<String>)> {
    use FieldType as T;
    let plans = vec!["free".to_owned(), "pro".into(), "team".into()];
    let langs = vec!["de".to_owned(), "en".into(), "fr".into()];
    vec![
        ("company", T::Text, vec![]),
        ("job_title", T::Text, vec![]),
        ("city", T::Text, vec![]),
        ("street", T::Text, vec![]),
        ("notes", T::LongText, vec![]),
        ("score", T::Number, vec![]),
        ("revenue", T::Number, vec![]),
        ("employees", T::Number, vec![]),
        ("newsletter", T::Boolean, vec![]),
        ("customer", T::Boolean, vec![]),
        ("signed_up", T::Date, vec![]),
        ("last_seen", T::Datetime, vec![]),
        ("plan", T::Select, plans),
        ("languages", T::Multiselect, langs),
        ("country", T::Country, vec![]),
        ("website", T::Url, vec![]),
    ]
}

pub async fn run(settings: &Settings, rows: u64) -> anyhow::Result<()> {
    let mut s = fresh_database(settings, DATABASE).await?;
    s.nats = None;
    let (pool, _) = crate::app::connect(&s).await?;
    let state = crate::http::command_state(&s, pool.clone())?;
    let tenant = commands::identity::admin::create_tenant(&state, "bench").await?;
    let meta = EventMetadata {
        tenant_id: Some(tenant.tenant_id),
        actor: Some("system:bench".into()),
        ..Default::default()
    };
    for (key, field_type, options) in fields() {
        let d = FieldDefinition {
            key: key.into(),
            label: key.into(),
            field_type,
            required: false,
            default: None,
            options,
            unique: false,
        };
        state
            .fields
            .define(domain::TenantId(tenant.tenant_id), d, &meta)
            .await
            .map_err(|e| anyhow::anyhow!("defining a field: {e}"))?;
    }

    let dir = s.imports.data_dir.join("bench");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let path = dir.join("contacts.csv");
    eprintln!("bench import: writing {rows} rows to {}", path.display());
    let t = Instant::now();
    let p = path.clone();
    tokio::task::spawn_blocking(move || write_csv(&p, rows)).await??;
    let bytes = std::fs::metadata(&path)?.len();
    eprintln!(
        "bench import: written in {:.1} s",
        t.elapsed().as_secs_f64()
    );

    let mut mapping: BTreeMap<String, String> = [
        ("Email", "email"),
        ("First name", "first_name"),
        ("Last name", "last_name"),
        ("Phone", "phone"),
    ]
    .into_iter()
    .map(|(a, b)| (a.to_owned(), b.to_owned()))
    .collect();
    for (key, _, _) in fields() {
        mapping.insert(key.to_owned(), format!("fields.{key}"));
    }
    let options = ImportOptions {
        mapping,
        tags: vec!["imported".into()],
        update_existing: true,
        segment_id: None,
    };
    let before = rss_kib("VmRSS:");
    let t = Instant::now();
    let view = crate::import::contacts(&state, tenant.tenant_id, &path, options, true).await?;
    let took = t.elapsed();
    header(&format!(
        "import ({rows} rows, 20 columns, batches of {} rows)",
        s.imports.batch_rows
    ));
    figure("rows", view.rows_done, "rows");
    figure("created", view.created, "contacts");
    figure("failed", view.failed, "rows");
    figure_f("megabytes", bytes as f64 / 1e6, "MB");
    figure_f("seconds", took.as_secs_f64(), "s");
    figure_f(
        "throughput",
        per_second(view.rows_done as u64, took),
        "contacts/s",
    );
    figure_f("rss_before_mb", before as f64 / 1024.0, "MB");
    figure_f("peak_rss_mb", rss_kib("VmHWM:") as f64 / 1024.0, "MB");
    let _ = std::fs::remove_file(&path);
    anyhow::ensure!(
        view.status == "completed" && view.created == rows as i64,
        "the import ended {} with {} of {rows} created",
        view.status,
        view.created
    );
    pool.close().await;
    Ok(())
}

fn write_csv(path: &std::path::Path, rows: u64) -> anyhow::Result<()> {
    let file = std::fs::File::create(path)?;
    let mut w = csv::Writer::from_writer(std::io::BufWriter::with_capacity(1 << 20, file));
    let mut head = vec!["Email", "First name", "Last name", "Phone"];
    let names = fields();
    head.extend(names.iter().map(|(k, _, _)| *k));
    w.write_record(&head)?;
    let mut rng = rand::thread_rng();
    let plans = ["free", "pro", "team"];
    let countries = ["DE", "FR", "US", "JP", "BR"];
    for n in 0..rows {
        let r: u32 = rng.gen();
        let record = [
            format!("contact{n}@bench.example.org"),
            format!("First{}", r % 5000),
            format!("Last{}", r % 7919),
            format!("+4915{:08}", r % 100_000_000),
            format!("Company {}", r % 1000),
            "Engineer".to_owned(),
            format!("City {}", r % 300),
            format!("{} Main Street", r % 2000),
            "Met at the fair; wants a demo.".to_owned(),
            (r % 100).to_string(),
            format!("{}.{}", r % 100_000, r % 100),
            (r % 5000).to_string(),
            if r.is_multiple_of(2) { "true" } else { "false" }.to_owned(),
            if r.is_multiple_of(3) { "yes" } else { "no" }.to_owned(),
            format!("2025-{:02}-{:02}", 1 + r % 12, 1 + r % 28),
            format!("2026-01-{:02}T10:00:00Z", 1 + r % 28),
            plans[(r % 3) as usize].to_owned(),
            "de;en".to_owned(),
            countries[(r % 5) as usize].to_owned(),
            format!("https://example.org/{}", r % 1000),
        ];
        w.write_record(&record)?;
    }
    w.flush()?;
    w.into_inner()
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .flush()?;
    Ok(())
}
