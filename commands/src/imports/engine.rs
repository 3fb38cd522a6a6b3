//! Running an import: the file is read and every record validated on a blocking thread,
//! batches flow to the async side, which applies each in one transaction (`batch::apply`)
//! and retries it on conflicts. One process applies an import at a time (a session advisory
//! lock on a dedicated connection, dropped with the process); an import left `running` by a
//! crash is taken up again by [`resume`] from the last committed batch.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sqlx::{Connection, PgConnection};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::batch::{self, Batch, BatchError};
use super::options::{ImportOptions, Plan};
use super::reader::{read_batches, read_header};
use super::store::{self, Counts};
use crate::{CommandError, CommandState, Invalid, Technical};

/// Where uploads go, how large they may be, how many rows a batch holds.
#[derive(Debug, Clone)]
pub struct ImportConfig {
    /// `MAUNTIC_DATA_DIR`: uploads are stored under `<dir>/imports/`.
    pub data_dir: PathBuf,
    /// `MAUNTIC_IMPORT_MAX_BYTES`: larger uploads are refused with 413.
    pub max_bytes: u64,
    /// Records per batch (one transaction each).
    pub batch_rows: usize,
}

impl Default for ImportConfig {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("data"),
            max_bytes: 1 << 30,
            batch_rows: 2000,
        }
    }
}

/// The imports this process is applying (so the resumer does not start one twice).
#[derive(Debug, Default)]
pub struct Imports {
    pub config: ImportConfig,
    active: Mutex<HashSet<Uuid>>,
}

impl Imports {
    pub fn new(config: ImportConfig) -> Self {
        Self {
            config,
            active: Mutex::default(),
        }
    }

    fn begin(&self, id: Uuid) -> bool {
        self.active
            .lock()
            .map(|mut a| a.insert(id))
            .unwrap_or(false)
    }

    fn end(&self, id: Uuid) {
        if let Ok(mut a) = self.active.lock() {
            a.remove(&id);
        }
    }
}

/// Why an import stopped.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("reading the file: {0}")]
    File(String),
    #[error("the options no longer fit: {0}")]
    Options(String),
    #[error("contacts of this import kept changing concurrently; retries exhausted")]
    Contended,
    #[error(transparent)]
    Store(#[from] event_store::StoreError),
}

/// Why an import cannot be planned (its options do not fit the organization's fields or the
/// file's header, or the file is not CSV): nothing is recorded.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error(transparent)]
    Invalid(#[from] Invalid),
    #[error("the import could not be checked")]
    Technical(#[source] Technical),
}

impl<E: std::error::Error + Send + Sync + 'static> From<CommandError<E>> for PlanError {
    fn from(e: CommandError<E>) -> Self {
        match e {
            CommandError::Invalid(e) => Self::Invalid(e),
            other => Self::Technical(Box::new(other)),
        }
    }
}

impl From<sqlx::Error> for ImportError {
    fn from(e: sqlx::Error) -> Self {
        Self::Store(e.into())
    }
}

/// The options checked without the file: the mapping against the organization's fields, and
/// the segment (a live static one). Returns the fields.
pub async fn check(
    s: &CommandState,
    tenant: Uuid,
    options: &ImportOptions,
) -> Result<domain::field::FieldSchema, PlanError> {
    let schema = s.fields.schema(domain::TenantId(tenant)).await?;
    options.targets(&schema)?;
    if let Some(id) = options.segment_id {
        let segment = s
            .segments
            .get(domain::TenantId(tenant), domain::SegmentId(id))
            .await?;
        if !segment.live() {
            return Err(Invalid::one("segment_id", "no such segment").into());
        }
        if segment.kind != domain::segment::SegmentKind::Static {
            let why = "a dynamic segment's members follow its rule; import into a static segment";
            return Err(Invalid::one("segment_id", why).into());
        }
    }
    Ok(schema)
}

/// The plan of an import: its options checked against the organization's fields and the
/// file's header (422 naming each problem).
pub async fn plan(
    s: &CommandState,
    tenant: Uuid,
    options: &ImportOptions,
    path: &Path,
) -> Result<Plan, PlanError> {
    let schema = check(s, tenant, options).await?;
    let p = path.to_owned();
    let header = tokio::task::spawn_blocking(move || read_header(&p))
        .await
        .map_err(|e| PlanError::Technical(Box::new(e)))?
        .map_err(|e| Invalid::one("file", format!("not a CSV file: {e}")))?;
    Ok(options.plan(&schema, &header)?)
}

/// Records an import of the file at `path` (checked first: bad options → 422, nothing
/// recorded) and returns its id. It runs with [`run`] or [`spawn`].
pub async fn create(
    s: &CommandState,
    tenant: Uuid,
    metadata: &event_store::EventMetadata,
    options: &ImportOptions,
    file_name: Option<&str>,
    path: &Path,
    id: Uuid,
) -> Result<Uuid, PlanError> {
    plan(s, tenant, options, path).await?;
    let bytes = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    store::insert(
        &s.pool,
        tenant,
        id,
        options,
        metadata,
        file_name,
        &path.to_string_lossy(),
        bytes as i64,
    )
    .await
    .map_err(|e| PlanError::Technical(Box::new(e)))?;
    Ok(id)
}

/// Applies the import in the background, unless this process already does.
pub fn spawn(s: CommandState, tenant: Uuid, id: Uuid) {
    if !s.imports.begin(id) {
        return;
    }
    tokio::spawn(async move {
        if let Err(e) = run(&s, tenant, id, |_, _| {}).await {
            tracing::error!(import = %id, error = %e, "import failed");
        }
        s.imports.end(id);
    });
}

/// Takes up every running import no process is applying (at start, then every `every`).
pub async fn resume(s: CommandState, every: Duration, cancel: CancellationToken) {
    loop {
        match store::running(&s.pool).await {
            Ok(running) => {
                for (tenant, id) in running {
                    spawn(s.clone(), tenant, id);
                }
            }
            Err(e) => tracing::warn!(error = %e, "could not list running imports"),
        }
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
    }
}

/// Applies import `id` to its end and returns its counts (`None` if another process is
/// applying it). `progress` sees the counts so far and the byte offset reached after each
/// batch. The import ends `completed`, or `failed` with the reason.
pub async fn run(
    s: &CommandState,
    tenant: Uuid,
    id: Uuid,
    mut progress: impl FnMut(&Counts, i64),
) -> Result<Option<Counts>, ImportError> {
    let mut lock = PgConnection::connect_with(&s.pool.connect_options()).await?;
    let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock(hashtextextended($1, 0))")
        .bind(format!("import:{id}"))
        .fetch_one(&mut lock)
        .await?;
    if !locked {
        return Ok(None);
    }
    let outcome = apply_all(s, tenant, id, &mut progress).await;
    let ended = match &outcome {
        Ok(Some(_)) => store::finish(&s.pool, tenant, id, None).await,
        Ok(None) => Ok(()),
        Err(e) => store::finish(&s.pool, tenant, id, Some(&e.to_string())).await,
    };
    let _ = lock.close().await;
    ended?;
    outcome
}

async fn apply_all(
    s: &CommandState,
    tenant: Uuid,
    id: Uuid,
    progress: &mut impl FnMut(&Counts, i64),
) -> Result<Option<Counts>, ImportError> {
    let Some(job) = store::job(&s.pool, tenant, id).await? else {
        return Ok(None);
    };
    let path = PathBuf::from(&job.path);
    let plan = plan(s, tenant, &job.options.0, &path)
        .await
        .map_err(|e| ImportError::Options(e.to_string()))?;
    let metadata = serde_json::to_value(job.metadata.0.to_map())
        .map_err(|e| ImportError::Options(e.to_string()))?;
    let (tx, mut rx) = mpsc::channel::<Result<Batch, String>>(2);
    let (offset, line, rows) = (job.offset, job.line, s.imports.config.batch_rows.max(1));
    let reader_plan = plan.clone();
    let reader = tokio::task::spawn_blocking(move || {
        if let Err(e) = read_batches(tenant, &path, offset, line, &reader_plan, rows, &tx) {
            let _ = tx.blocking_send(Err(e));
        }
    });
    // Two batches in flight: the next one claims, loads, decides and appends while the one
    // before commits. It cannot commit first (its progress update waits for the import row and
    // then finds the offset it starts from), and it waits for the claims of the one before, so
    // a later row still sees an earlier row's contact. If the one before is rolled back, the
    // next one fails too and both are applied again in order.
    let (job, plan, metadata) = (Arc::new(job), Arc::new(plan), Arc::new(metadata));
    let mut total = Counts::default();
    let mut next_from = job.offset;
    let mut in_flight: Option<InFlight> = None;
    while let Some(batch) = rx.recv().await {
        let batch = Arc::new(batch.map_err(ImportError::File)?);
        let from = next_from;
        next_from = batch.end.0;
        let started = start(s, &job, &plan, &metadata, from, &batch);
        if let Some(before) = in_flight.take() {
            match settle(s, &job, &plan, &metadata, before).await? {
                Some(counts) => {
                    total.add(&counts.0);
                    progress(&total, counts.1);
                }
                None => {
                    started.task.abort();
                    return Ok(None);
                }
            }
        }
        in_flight = Some(started);
    }
    if let Some(last) = in_flight.take() {
        match settle(s, &job, &plan, &metadata, last).await? {
            Some(counts) => {
                total.add(&counts.0);
                progress(&total, counts.1);
            }
            None => return Ok(None),
        }
    }
    let _ = reader.await;
    if let Ok(dir) = uploads_dir(&s.imports.config).canonicalize() {
        if Path::new(&job.path).starts_with(dir) {
            let _ = std::fs::remove_file(&job.path);
        }
    }
    Ok(Some(total))
}

/// A batch being applied on its own task.
struct InFlight {
    batch: Arc<Batch>,
    from: i64,
    task: tokio::task::JoinHandle<Result<Counts, BatchError>>,
}

fn start(
    s: &CommandState,
    job: &Arc<store::Job>,
    plan: &Arc<Plan>,
    metadata: &Arc<serde_json::Value>,
    from: i64,
    batch: &Arc<Batch>,
) -> InFlight {
    let (s2, job, plan, metadata, b) = (
        s.clone(),
        job.clone(),
        plan.clone(),
        metadata.clone(),
        batch.clone(),
    );
    InFlight {
        batch: batch.clone(),
        from,
        task: tokio::spawn(
            async move { batch::apply(&s2, &job, &plan, from, &b, &metadata).await },
        ),
    }
}

/// The counts of a batch in flight and the offset after it; a first attempt that failed
/// (a conflict, or the batch before it rolled back) is applied again, now alone.
async fn settle(
    s: &CommandState,
    job: &store::Job,
    plan: &Plan,
    metadata: &serde_json::Value,
    f: InFlight,
) -> Result<Option<(Counts, i64)>, ImportError> {
    let first = match f.task.await {
        Ok(r) => r,
        Err(_) => Err(BatchError::Retry),
    };
    let counts = match first {
        Ok(counts) => Some(counts),
        Err(BatchError::Store(e)) => return Err(e.into()),
        Err(BatchError::Retry | BatchError::Lost) => {
            apply_with_retries(s, job, plan, f.from, &f.batch, metadata).await?
        }
    };
    Ok(counts.map(|c| (c, f.batch.end.0)))
}

/// How long a batch keeps retrying: beyond the time after which an abandoned email claim is
/// taken over, so a crashed API create cannot stop an import.
const RETRY_FOR: Duration =
    Duration::from_secs(event_store::reservation::ABANDONED_AFTER_SECS as u64 * 2);

async fn apply_with_retries(
    s: &CommandState,
    job: &store::Job,
    plan: &Plan,
    from: i64,
    batch: &Batch,
    metadata: &serde_json::Value,
) -> Result<Option<Counts>, ImportError> {
    let started = Instant::now();
    let mut attempt = 0u32;
    loop {
        match batch::apply(s, job, plan, from, batch, metadata).await {
            Ok(counts) => return Ok(Some(counts)),
            Err(BatchError::Lost) => return Ok(None),
            Err(BatchError::Store(e)) => return Err(e.into()),
            Err(BatchError::Retry) if started.elapsed() < RETRY_FOR => {
                attempt += 1;
                let ms = (2u64 << attempt.min(8)).min(500);
                tokio::time::sleep(Duration::from_millis(ms)).await;
            }
            Err(BatchError::Retry) => return Err(ImportError::Contended),
        }
    }
}

/// Where uploaded files are kept.
pub fn uploads_dir(config: &ImportConfig) -> PathBuf {
    config.data_dir.join("imports")
}
