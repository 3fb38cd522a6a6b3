//! The suppressions service: add an address (or many, from a CSV file), remove one.

use std::sync::Arc;

use domain::delivery::suppression::{SuppressionCommand, SuppressionEntry, SuppressionError};
use domain::{SuppressionId, TenantId};
use event_store::wakeup::Notifier;
use event_store::{Cursor, EventMetadata};
use sqlx::PgPool;

use super::import::{self, RejectedRow};
use super::many::{suppress_many, NewSuppression, Outcome, SuppressError, SuppressMany};
use crate::executor::{Accepted, Executor};
use crate::{CommandError, Invalid};

/// Why a suppression command was not carried out.
pub type SuppressionsError = CommandError<SuppressionError>;

/// Entries applied per transaction by an import.
const IMPORT_BATCH: usize = 1000;

/// Row errors an import answers with (the counts cover all of them).
const MAX_ROW_ERRORS: usize = 1000;

impl From<SuppressError> for SuppressionsError {
    fn from(e: SuppressError) -> Self {
        match e {
            SuppressError::Conflict => CommandError::Conflict,
            SuppressError::Store(e) => CommandError::Technical(Box::new(e)),
        }
    }
}

/// What an import did.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ImportReport {
    /// Addresses suppressed (new, or for a stronger reason than before).
    pub added: usize,
    /// Addresses suppressed already for as strong a reason (or twice in the file).
    pub already_suppressed: usize,
    /// Records that could not be used.
    pub rejected: usize,
    /// The rejected records' lines and reasons (the first 1000).
    pub errors: Vec<RejectedRow>,
    /// The cursor after the import's events (null when it recorded nothing).
    #[schema(value_type = Option<String>)]
    pub cursor: Option<Cursor>,
}

/// The suppression lists of every organization.
#[derive(Clone)]
pub struct Suppressions {
    pool: PgPool,
    notifier: Notifier,
    executor: Arc<Executor<SuppressionEntry>>,
}

impl Suppressions {
    pub fn new(
        pool: PgPool,
        notifier: Notifier,
        executor: Arc<Executor<SuppressionEntry>>,
    ) -> Self {
        Self {
            pool,
            notifier,
            executor,
        }
    }

    /// Suppresses one address; `(accepted, added)`: `added` is false when it was suppressed
    /// already for as strong a reason (the same entry id answers).
    pub async fn add(
        &self,
        tenant: TenantId,
        entry: NewSuppression,
        meta: &EventMetadata,
    ) -> Result<(Accepted, bool), SuppressionsError> {
        let done = self.suppress(tenant, &[entry], meta).await?;
        let Some((id, outcome)) = done.entries.first().cloned() else {
            return Err(CommandError::Technical(
                "a suppression decided nothing".into(),
            ));
        };
        let added = match outcome {
            Outcome::Added => true,
            Outcome::AlreadySuppressed => false,
            Outcome::Refused(why) => return Err(Invalid::one("address", why).into()),
        };
        let cursor = match done.cursor {
            Some(c) => c,
            None => event_store::reader::stream_cursor(
                &self.pool,
                "suppression",
                &event_store::recorded::stream_id(tenant.0, id),
            )
            .await
            .map_err(|e| CommandError::Technical(Box::new(e)))?
            .unwrap_or(Cursor::ZERO),
        };
        Ok((Accepted { id, cursor }, added))
    }

    /// Removes an address from the list (sending to it is allowed again); `source` is who
    /// removed it.
    pub async fn remove(
        &self,
        tenant: TenantId,
        id: SuppressionId,
        source: Option<String>,
        meta: &EventMetadata,
    ) -> Result<Accepted, SuppressionsError> {
        let command = SuppressionCommand::Remove { source };
        self.executor.execute(tenant.0, id.0, command, meta).await
    }

    /// Suppresses the addresses of a CSV file (a header with `address`, optionally
    /// `channel` and `reason`); records that cannot be used are reported by line, the
    /// others applied. `source` names the importer.
    pub async fn import(
        &self,
        tenant: TenantId,
        file: Vec<u8>,
        source: Option<String>,
        meta: &EventMetadata,
    ) -> Result<ImportReport, SuppressionsError> {
        let (rows, mut errors) = tokio::task::spawn_blocking(move || import::parse(&file))
            .await
            .map_err(|e| CommandError::Technical(Box::new(e)))?
            .map_err(|e| Invalid::one("file", e.to_string()))?;
        let mut report = ImportReport {
            added: 0,
            already_suppressed: 0,
            rejected: 0,
            errors: Vec::new(),
            cursor: None,
        };
        for chunk in rows.chunks(IMPORT_BATCH) {
            let entries: Vec<NewSuppression> = chunk
                .iter()
                .map(|r| (r.channel, r.address.clone(), r.reason, source.clone()))
                .collect();
            let done = self.suppress(tenant, &entries, meta).await?;
            report.added += done.added();
            report.already_suppressed += done.already_suppressed();
            for (row, (_, outcome)) in chunk.iter().zip(&done.entries) {
                if let Outcome::Refused(message) = outcome {
                    errors.push(RejectedRow {
                        line: row.line,
                        message: message.clone(),
                    });
                }
            }
            report.cursor = done.cursor.or(report.cursor);
        }
        errors.sort_by_key(|e| e.line);
        report.rejected = errors.len();
        errors.truncate(MAX_ROW_ERRORS);
        report.errors = errors;
        Ok(report)
    }

    async fn suppress(
        &self,
        tenant: TenantId,
        entries: &[NewSuppression],
        meta: &EventMetadata,
    ) -> Result<SuppressMany, SuppressionsError> {
        Ok(suppress_many(&self.pool, &self.notifier, tenant.0, meta, entries).await?)
    }
}
