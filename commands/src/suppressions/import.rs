//! A CSV file of addresses to suppress: a header with `address` and optional `channel`
//! (default `email`) and `reason` (default `manual`) columns, any others ignored. Read in
//! memory (the route caps it at [`MAX_BYTES`]), on a blocking thread; each record is
//! validated into an entry or a row error with its line.

use domain::delivery::suppression::SuppressionReason;
use domain::delivery::Channel;

use super::address::normalize;
use super::body::{channel_named, reason_named};

/// Most bytes of an uploaded file.
pub const MAX_BYTES: usize = 10 * 1024 * 1024;

/// A valid record: its line, channel, normalized address and reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub line: u64,
    pub channel: Channel,
    pub address: String,
    pub reason: SuppressionReason,
}

/// A record that cannot be used, and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct RejectedRow {
    /// The physical line where the record starts (the header is line 1).
    pub line: u64,
    pub message: String,
}

/// Why a whole file cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FileError {
    /// Nothing in it, not even a header line.
    #[error("the file is empty: it needs a header line with an address column")]
    Empty,
    /// The header line has no `address` column.
    #[error("the header has no address column (columns: address, and optionally channel, reason)")]
    NoAddressColumn,
    /// The header line is not CSV text.
    #[error("the header line cannot be read: {0}")]
    BadHeader(String),
}

/// The valid rows and the row errors of `bytes`, in file order.
pub fn parse(bytes: &[u8]) -> Result<(Vec<Row>, Vec<RejectedRow>), FileError> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .has_headers(true)
        .from_reader(bytes);
    let header = reader
        .byte_headers()
        .map_err(|e| FileError::BadHeader(e.to_string()))?
        .clone();
    if header.is_empty() {
        return Err(FileError::Empty);
    }
    let column = |name: &str| {
        header
            .iter()
            .position(|h| std::str::from_utf8(h).is_ok_and(|h| h.trim().eq_ignore_ascii_case(name)))
    };
    let address = column("address").ok_or(FileError::NoAddressColumn)?;
    let channel = column("channel");
    let reason = column("reason");

    let mut rows = Vec::new();
    let mut errors = Vec::new();
    let mut record = csv::ByteRecord::new();
    let mut lines = Lines {
        bytes,
        at: 0,
        line: 1,
    };
    loop {
        let start = reader.position().byte();
        match reader.read_byte_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                let start = e.position().map_or(start, |p| p.byte());
                errors.push(RejectedRow {
                    line: lines.of(start),
                    message: format!("not CSV: {e}"),
                });
                continue;
            }
        }
        let line = lines.of(record.position().map_or(start, |p| p.byte()));
        if record.iter().all(|f| f.iter().all(u8::is_ascii_whitespace)) {
            continue; // a blank line
        }
        match row(&record, address, channel, reason) {
            Ok((channel, address, reason)) => rows.push(Row {
                line,
                channel,
                address,
                reason,
            }),
            Err(message) => errors.push(RejectedRow { line, message }),
        }
    }
    Ok((rows, errors))
}

/// Physical line numbers of records by their byte offsets (which come in increasing order).
/// The csv crate's own line of a record counts from before the blank lines it skipped.
struct Lines<'b> {
    bytes: &'b [u8],
    at: usize,
    line: u64,
}

impl Lines<'_> {
    /// The line of the first character at or after `byte` that is not a line break.
    fn of(&mut self, byte: u64) -> u64 {
        let mut start = usize::try_from(byte)
            .unwrap_or(usize::MAX)
            .min(self.bytes.len());
        while start < self.bytes.len() && matches!(self.bytes[start], b'\n' | b'\r') {
            start += 1;
        }
        if start > self.at {
            let breaks = self.bytes[self.at..start].iter().filter(|b| **b == b'\n');
            self.line += breaks.count() as u64;
            self.at = start;
        }
        self.line
    }
}

/// One record's channel, normalized address and reason, or every reason it is refused.
fn row(
    record: &csv::ByteRecord,
    address: usize,
    channel: Option<usize>,
    reason: Option<usize>,
) -> Result<(Channel, String, SuppressionReason), String> {
    let text = |i: Option<usize>, name: &str| -> Result<Option<&str>, String> {
        match i.and_then(|i| record.get(i)) {
            None => Ok(None),
            Some(b) => std::str::from_utf8(b)
                .map(|s| Some(s.trim()).filter(|s| !s.is_empty()))
                .map_err(|_| format!("{name}: not UTF-8 text")),
        }
    };
    let mut problems = Vec::new();
    let channel = match text(channel, "channel") {
        Ok(None) => Some(Channel::Email),
        Ok(Some(c)) => channel_named(c)
            .map_err(|e| problems.push(format!("channel: {e}")))
            .ok(),
        Err(e) => {
            problems.push(e);
            None
        }
    };
    let reason = match text(reason, "reason") {
        Ok(None) => Some(SuppressionReason::Manual),
        Ok(Some(r)) => reason_named(r)
            .map_err(|e| problems.push(format!("reason: {e}")))
            .ok(),
        Err(e) => {
            problems.push(e);
            None
        }
    };
    let address = match (text(Some(address), "address"), channel) {
        (Ok(None), _) => {
            problems.push("address: required".to_owned());
            None
        }
        (Ok(Some(a)), Some(c)) => normalize(c, a)
            .map_err(|e| problems.push(format!("address: {}", e.0)))
            .ok(),
        (Ok(Some(_)), None) => None,
        (Err(e), _) => {
            problems.push(e);
            None
        }
    };
    match (channel, address, reason) {
        (Some(c), Some(a), Some(r)) if problems.is_empty() => Ok((c, a, r)),
        _ => Err(problems.join("; ")),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_validated_with_their_lines() {
        let file = "\u{feff}Address,Reason,Notes\nAda@Example.org,,x\nnot-an-email,bounce,y\n\n\"multi\nline\",manual\n+49 151 2345678,complaint\n";
        let (rows, errors) = parse(file.as_bytes()).unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].line, 2);
        assert_eq!(rows[0].address, "ada@example.org");
        assert_eq!(rows[0].reason, SuppressionReason::Manual);
        let lines: Vec<u64> = errors.iter().map(|e| e.line).collect();
        assert_eq!(lines, vec![3, 5, 7]);
        assert!(errors[0].message.contains("address:"), "{errors:?}");
        assert!(errors[0].message.contains("reason:"), "{errors:?}");
    }

    #[test]
    fn channels_come_from_their_column() {
        let file = "channel,address\nsms,+49 151 2345678\nSMS,+4915123456789\npager,x\n";
        let (rows, errors) = parse(file.as_bytes()).unwrap();
        assert_eq!(rows.len(), 2);
        assert!(rows
            .iter()
            .all(|r| r.address == "+491512345678" || r.address == "+4915123456789"));
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].line, 4);
    }

    #[test]
    fn unusable_files_are_refused() {
        assert_eq!(parse(b"").unwrap_err(), FileError::Empty);
        assert_eq!(
            parse(b"email,name\na@b.c,x\n").unwrap_err(),
            FileError::NoAddressColumn
        );
    }
}
