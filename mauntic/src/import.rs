//! `mauntic import contacts FILE.csv …`: the import engine run directly (no HTTP), with a
//! progress bar on stderr and the final counts as JSON on stdout.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context};
use commands::imports::{engine, store, ImportOptions};
use commands::CommandState;
use event_store::EventMetadata;
use indicatif::{ProgressBar, ProgressStyle};
use uuid::Uuid;

/// `--map 'CSV column=target'` pairs as a mapping.
pub fn mapping(pairs: &[String]) -> anyhow::Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for p in pairs {
        let Some((column, target)) = p.rsplit_once('=') else {
            bail!("--map {p:?}: write it as 'CSV column=target', e.g. 'Email=email'");
        };
        out.insert(column.to_owned(), target.trim().to_owned());
    }
    Ok(out)
}

/// Imports `file` into `tenant` and returns the import as the API shows it.
pub async fn contacts(
    s: &CommandState,
    tenant: Uuid,
    file: &Path,
    options: ImportOptions,
    show_progress: bool,
) -> anyhow::Result<store::ImportView> {
    let path = file
        .canonicalize()
        .with_context(|| format!("reading {}", file.display()))?;
    let bytes = std::fs::metadata(&path)?.len();
    let metadata = EventMetadata {
        tenant_id: Some(tenant),
        actor: Some("system:cli".into()),
        correlation_id: Some(Uuid::now_v7()),
        ..Default::default()
    };
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
    let id = engine::create(
        s,
        tenant,
        &metadata,
        &options,
        name.as_deref(),
        &path,
        Uuid::now_v7(),
    )
    .await
    .map_err(|e| anyhow::anyhow!("{}", commands::error::chain(&e)))?;
    let bar = if show_progress {
        ProgressBar::new(bytes)
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template(
            "{elapsed_precise} [{bar:40}] {bytes}/{total_bytes} ({bytes_per_sec}) {msg}",
        )
        .context("the progress bar template")?
        .progress_chars("=> "),
    );
    let ran = engine::run(s, tenant, id, |c, offset| {
        bar.set_position(offset as u64);
        bar.set_message(format!(
            "{} rows: {} created, {} updated, {} unchanged, {} failed",
            c.rows_done, c.created, c.updated, c.unchanged, c.failed
        ));
    })
    .await?;
    bar.finish();
    if ran.is_none() {
        // Another process (a server's resumer) took it up first: wait for it to end.
        loop {
            let v = store::get(&s.pool, tenant, id)
                .await?
                .context("the import vanished")?;
            if v.status != "running" {
                break;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    store::get(&s.pool, tenant, id)
        .await?
        .context("the import vanished")
}
