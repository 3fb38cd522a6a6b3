//! Reading an import's file: the header, then records from a byte offset on, validated and
//! sent in batches (on a blocking thread; `csv` parses, `row` decodes and checks).

use std::fs::File;
use std::io::BufReader;
use std::path::Path;

use tokio::sync::mpsc;
use uuid::Uuid;

use super::batch::{self, Batch, Parsed};
use super::options::Plan;
use super::row::decode;

/// The header of a CSV file (BOM removed), decoded like every record.
pub fn read_header(path: &Path) -> Result<Vec<String>, String> {
    let file = File::open(path).map_err(|e| e.to_string())?;
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .from_reader(BufReader::new(file));
    let header = rdr.byte_headers().map_err(|e| e.to_string())?;
    let mut names = decode(header);
    if let Some(first) = names.first_mut() {
        if let Some(rest) = first.strip_prefix('\u{feff}') {
            *first = rest.to_owned();
        }
    }
    Ok(names)
}

/// Reads records from byte `offset` (physical line `line`) on, validates each and sends
/// them in batches of `rows` with the position after the last one.
pub fn read_batches(
    tenant: Uuid,
    path: &Path,
    offset: i64,
    line: i64,
    plan: &Plan,
    rows: usize,
    tx: &mpsc::Sender<Result<Batch, String>>,
) -> Result<(), String> {
    let file = File::open(path).map_err(|e| e.to_string())?;
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .from_reader(BufReader::with_capacity(1 << 20, file));
    rdr.byte_headers().map_err(|e| e.to_string())?;
    if offset > 0 {
        let mut at = csv::Position::new();
        at.set_byte(offset as u64).set_line(line as u64);
        rdr.seek(at).map_err(|e| e.to_string())?;
    }
    let mut record = csv::ByteRecord::new();
    loop {
        let mut batch = Vec::with_capacity(rows);
        while batch.len() < rows {
            if !rdr
                .read_byte_record(&mut record)
                .map_err(|e| e.to_string())?
            {
                break;
            }
            let line = record.position().map_or(0, |p| p.line() as i64);
            let contact = plan.contact(&decode(&record));
            let creation = contact
                .as_ref()
                .ok()
                .and_then(|c| batch::creation(tenant, plan, c));
            batch.push(Parsed {
                line,
                contact,
                creation,
            });
        }
        if batch.is_empty() {
            return Ok(());
        }
        let end = rdr.position();
        let batch = Batch {
            rows: batch,
            end: (end.byte() as i64, end.line() as i64),
        };
        if tx.blocking_send(Ok(batch)).is_err() {
            return Ok(()); // the applier stopped
        }
    }
}
