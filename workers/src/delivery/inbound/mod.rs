//! Inbound mail for the bounce domain: DSN bounces (RFC 3464), feedback-loop complaints
//! (RFC 5965 ARF) and mail to the `mailto:` unsubscribe address, piped by the operator's
//! MTA to `POST /inbound/mail`.
//!
//! - [`parse`]: what a raw message says (pure).
//! - [`address`]: our signed addresses and Message-IDs, read.
//! - [`http`]: the endpoint: authenticate, find and verify the job, record.

pub mod address;
pub mod http;
pub mod parse;
